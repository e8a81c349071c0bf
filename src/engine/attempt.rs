//! One attempt at one port: the socket work.
//!
//! An attempt starts synchronously (socket, `IP_RECVERR`, connect or send),
//! so that the scheduler learns at once when the process runs out of
//! sockets, and then waits asynchronously for the evidence: a completed or
//! refused connection, a UDP reply, or an ICMP error from the error queue.
//! The scheduler cancels attempts that take longer than the path's timeout.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::libc;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

use super::icmp::{self, IcmpError};
use super::outcome::Reason;
use crate::wire::{Reply, UdpRequest};

/// What an attempt found.
#[derive(Debug)]
pub enum Evidence {
    /// TCP: the connection completed.
    Connected,
    /// TCP: the connection reached itself (the kernel chose the target port
    /// as the source port on loopback): no evidence, probe again.
    SelfConnect,
    /// TCP: refused by a reset.
    Refused,
    /// UDP: a reply arrived; `Some` when recognised as the protocol asked.
    Datagram {
        /// The recognised reply, if the bytes were one.
        reply: Option<Reply>,
        /// Where it came from.
        from: SocketAddr,
    },
    /// An ICMP error.
    Icmp(IcmpError),
    /// This host refused to send or has no route.
    Local(Reason),
    /// Nothing came back before the deadline.
    Silent,
}

/// The evidence and when it arrived.
#[derive(Debug)]
pub struct Finished {
    /// What was found.
    pub evidence: Evidence,
    /// Time from the start of the attempt to the evidence.
    pub rtt: Duration,
}

/// An attempt that started and waits for its evidence.
pub enum Started {
    /// The evidence came at once (loopback, local errors).
    Done(Finished),
    /// Waiting for the network.
    Waiting(std::pin::Pin<Box<dyn std::future::Future<Output = Finished> + Send>>),
}

/// When an attempt gives up: its timeout after its start, where the timeout
/// follows the path's measured round-trip times and may change (usually
/// shrink) while the attempt waits.
#[derive(Clone, Debug)]
pub struct Deadline {
    start: Instant,
    timeout: watch::Receiver<Duration>,
}

impl Deadline {
    /// A deadline starting now.
    pub fn new(timeout: watch::Receiver<Duration>) -> Self {
        Deadline {
            start: Instant::now(),
            timeout,
        }
    }

    /// Completes when the deadline has passed.
    async fn passed(mut self) {
        loop {
            let at = self.start + *self.timeout.borrow_and_update();
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(at));
            tokio::select! {
                () = sleep => {
                    if Instant::now() >= self.start + *self.timeout.borrow() {
                        return;
                    }
                }
                changed = self.timeout.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                        return;
                    }
                }
            }
        }
    }
}

/// Errors that mean "this process cannot open another socket right now":
/// the scheduler lowers its concurrency and tries again, instead of failing.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::EADDRNOTAVAIL
                | libc::EAGAIN
        )
    )
}

fn new_socket(addr: IpAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, ty.nonblocking().cloexec(), Some(protocol))?;
    icmp::enable_recverr(&socket, addr.is_ipv6())?;
    Ok(socket)
}

/// Maps a failed connect or send to evidence, reading the error queue for the
/// ICMP message behind it. `None` for errors that are not evidence.
fn classify_error<F: AsRawFd>(e: &io::Error, socket: &F, immediate: bool) -> Option<Evidence> {
    if let Some(icmp) = icmp::drain(socket).into_iter().last() {
        return Some(Evidence::Icmp(icmp));
    }
    match e.raw_os_error()? {
        libc::ECONNREFUSED => Some(Evidence::Refused),
        libc::EPERM => Some(Evidence::Local(Reason::LocalFirewall)),
        libc::ENETUNREACH if immediate => Some(Evidence::Local(Reason::NoRoute)),
        libc::ENETUNREACH => Some(Evidence::Local(Reason::NetUnreachable)),
        libc::EHOSTUNREACH | libc::EHOSTDOWN => Some(Evidence::Local(Reason::HostUnreachable)),
        libc::EACCES if !immediate => Some(Evidence::Local(Reason::AdminProhibited)),
        _ => None,
    }
}

fn failed(e: io::Error, what: &str, addr: SocketAddr) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {addr}: {e}"))
}

/// Starts a TCP connect to `addr`.
pub fn tcp(addr: SocketAddr, deadline: Deadline) -> io::Result<Started> {
    let start = deadline.start;
    let socket = new_socket(addr.ip(), Type::STREAM, Protocol::TCP)
        .map_err(|e| failed(e, "cannot create a TCP socket for", addr))?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => Ok(Started::Done(Finished {
            evidence: connected(
                socket.local_addr().ok().and_then(|a| a.as_socket()),
                socket.peer_addr().ok().and_then(|a| a.as_socket()),
            ),
            rtt: start.elapsed(),
        })),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            // On loopback the answer is often there before connect returns:
            // take it without registering the socket with the reactor.
            match socket.take_error() {
                Ok(Some(e)) => {
                    if let Some(evidence) = classify_error(&e, &socket, false) {
                        return Ok(Started::Done(Finished {
                            evidence,
                            rtt: start.elapsed(),
                        }));
                    }
                }
                Ok(None) => {
                    if let Ok(peer) = socket.peer_addr() {
                        return Ok(Started::Done(Finished {
                            evidence: connected(
                                socket.local_addr().ok().and_then(|a| a.as_socket()),
                                peer.as_socket(),
                            ),
                            rtt: start.elapsed(),
                        }));
                    }
                }
                Err(_) => {}
            }
            let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
            Ok(Started::Waiting(Box::pin(async move {
                tokio::select! {
                    finished = tcp_wait(&stream, start) => finished,
                    () = deadline.passed() => tcp_last_look(&stream, start),
                }
            })))
        }
        Err(e) if is_resource_exhaustion(&e) => Err(e),
        Err(e) => match classify_error(&e, &socket, true) {
            Some(evidence) => Ok(Started::Done(Finished {
                evidence,
                rtt: start.elapsed(),
            })),
            None => Err(failed(e, "cannot connect to", addr)),
        },
    }
}

/// A completed connection, unless it reached itself.
fn connected(local: Option<SocketAddr>, peer: Option<SocketAddr>) -> Evidence {
    if local.is_some() && local == peer {
        Evidence::SelfConnect
    } else {
        Evidence::Connected
    }
}

async fn tcp_wait(stream: &TcpStream, start: Instant) -> Finished {
    loop {
        let ready = stream.ready(Interest::WRITABLE | Interest::ERROR).await;
        let rtt = start.elapsed();
        let error = match ready {
            Err(e) => Some(e),
            Ok(_) => match stream.take_error() {
                Ok(None) => match stream.peer_addr() {
                    Ok(peer) => {
                        return Finished {
                            evidence: connected(stream.local_addr().ok(), Some(peer)),
                            rtt,
                        };
                    }
                    // Not connected yet: the wakeup was early.
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => None,
                    Err(e) => Some(e),
                },
                Ok(Some(e)) | Err(e) => Some(e),
            },
        };
        if let Some(e) = error {
            if let Some(evidence) = classify_error(&e, stream, false) {
                return Finished { evidence, rtt };
            }
            // An error that is no evidence (e.g. ETIMEDOUT after the kernel's
            // own retries): the scheduler's timeout decides.
            std::future::pending::<()>().await;
        }
        // An early wakeup: clear the readiness and wait again.
        let _ = stream.try_io(Interest::WRITABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
}

/// At the deadline: whatever the socket knows now, even if its readiness has
/// not been delivered yet (a busy process may lag behind its sockets).
fn tcp_last_look(stream: &TcpStream, start: Instant) -> Finished {
    let rtt = start.elapsed();
    let evidence = match stream.take_error() {
        Ok(Some(e)) => classify_error(&e, stream, false).unwrap_or(Evidence::Silent),
        Ok(None) => match stream.peer_addr() {
            Ok(peer) => connected(stream.local_addr().ok(), Some(peer)),
            Err(_) => Evidence::Silent,
        },
        Err(_) => Evidence::Silent,
    };
    Finished { evidence, rtt }
}

/// Sends `request`'s datagrams to `addr` from a new unconnected socket.
pub fn udp(
    addr: SocketAddr,
    request: Box<dyn UdpRequest>,
    deadline: Deadline,
) -> io::Result<Started> {
    let start = deadline.start;
    let socket = new_socket(addr.ip(), Type::DGRAM, Protocol::UDP)
        .map_err(|e| failed(e, "cannot create a UDP socket for", addr))?;
    let target = SockAddr::from(addr);
    for datagram in request.datagrams() {
        if let Err(e) = socket.send_to(&datagram, &target) {
            if is_resource_exhaustion(&e) {
                return Err(e);
            }
            return match classify_error(&e, &socket, true) {
                Some(evidence) => Ok(Started::Done(Finished {
                    evidence,
                    rtt: start.elapsed(),
                })),
                None => Err(failed(e, "cannot send to", addr)),
            };
        }
    }
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
    Ok(Started::Waiting(Box::pin(async move {
        let mut buf = vec![0u8; 65536];
        let found = tokio::select! {
            found = udp_wait(&socket, addr, request.as_ref(), &mut buf) => Some(found),
            () = deadline.passed() => None,
        };
        let evidence = found
            .or_else(|| udp_look(&socket, addr, request.as_ref(), &mut buf))
            .unwrap_or(Evidence::Silent);
        Finished {
            evidence,
            rtt: start.elapsed(),
        }
    })))
}

/// Waits until the socket has evidence.
async fn udp_wait(
    socket: &UdpSocket,
    target: SocketAddr,
    request: &dyn UdpRequest,
    buf: &mut [u8],
) -> Evidence {
    loop {
        // The error queue raises EPOLLERR, which only ERROR interest sees.
        if socket
            .ready(Interest::READABLE | Interest::ERROR)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
        if let Some(evidence) = udp_look(socket, target, request, buf) {
            return evidence;
        }
        // Nothing for us: clear the readiness and wait again.
        let _ = socket.try_io(Interest::ERROR, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
}

/// Reads what the socket holds without waiting: an ICMP error from the error
/// queue, or a reply that counts. Datagrams that do not count are dropped.
fn udp_look(
    socket: &UdpSocket,
    target: SocketAddr,
    request: &dyn UdpRequest,
    buf: &mut [u8],
) -> Option<Evidence> {
    if let Some(icmp) = icmp::drain(socket).into_iter().next() {
        return Some(Evidence::Icmp(icmp));
    }
    loop {
        match socket.try_recv_from(buf) {
            Ok((n, from)) => {
                let from = normalise(from);
                let reply = request.recognise(&buf[..n]);
                // A reply carrying our IDs counts from any address (a host may
                // answer from another of its addresses, TFTP from a new port);
                // anything else only from the target itself.
                if reply.is_some() || from.ip() == target.ip() {
                    return Some(Evidence::Datagram { reply, from });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(_) => {
                // A pending socket error: the ICMP error behind it is queued.
                if let Some(icmp) = icmp::drain(socket).into_iter().next() {
                    return Some(Evidence::Icmp(icmp));
                }
            }
        }
    }
}

/// An IPv4-mapped address reported by a dual-stack socket becomes IPv4.
fn normalise(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}
