//! One attempt at one port: the socket work, behind the [`Prober`]
//! interface the scheduler drives.
//!
//! An attempt starts synchronously (socket, `IP_RECVERR`, connect or send),
//! so that the scheduler learns at once when the process runs out of
//! sockets, and then waits asynchronously for the evidence: a completed or
//! refused connection, a UDP reply, or an ICMP error from the error queue.
//! At its deadline an attempt takes a last look at its socket, so that a
//! busy process never mistakes an answer it has not yet been told about for
//! silence. A local failure to send is evidence too (`LocalError`), never a
//! reason to stop the run.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nix::libc;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::Probe;
use super::evidence::{Answer, Deadline, Evidence, Finished};
use super::icmp;
use super::ignored::{self, Why};
use super::outcome::Reason;
use super::own_ports::OwnPorts;
use super::responder::Exchange;
use crate::wire::{Match, Nonce, ProbeContext, UdpRequest};

/// What to probe, as the scheduler hands it to a [`Prober`].
#[derive(Clone, Copy, Debug)]
pub struct AttemptSpec<'a> {
    /// The address (with its IPv6 scope) and port.
    pub target: SocketAddr,
    /// TCP, or UDP with its protocol.
    pub probe: Probe,
    /// What a UDP request needs to know.
    pub context: &'a ProbeContext,
    /// The address is this machine's own.
    pub local: bool,
    /// The IP TTL (IPv6 hop limit) to send with, to find where a probe
    /// stops; `None` for the system's default.
    pub ttl: Option<u8>,
}

/// This process cannot open another socket right now (the `errno`): the
/// scheduler lowers its concurrency and tries again later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted(pub i32);

/// An attempt that started.
pub enum Started {
    /// The evidence came at once (loopback, local errors).
    Done(Finished),
    /// Waiting for the network.
    Waiting(Pin<Box<dyn Future<Output = Finished> + Send>>),
}

/// The socket work: starts one attempt.
pub trait Prober {
    /// Starts an attempt at `spec`, giving up at `deadline`.
    fn start(&mut self, spec: &AttemptSpec<'_>, deadline: Deadline) -> Result<Started, Exhausted>;
}

/// The real [`Prober`]: sockets, connects, datagrams and error queues.
#[derive(Debug, Default)]
pub struct Sockets {
    own: Arc<OwnPorts>,
    ignored: Arc<ignored::Log>,
}

impl Sockets {
    /// Sockets that record the datagrams they do not count in `ignored`.
    pub fn new(ignored: Arc<ignored::Log>) -> Self {
        Sockets {
            own: Arc::default(),
            ignored,
        }
    }
}

impl Prober for Sockets {
    fn start(&mut self, spec: &AttemptSpec<'_>, deadline: Deadline) -> Result<Started, Exhausted> {
        match spec.probe {
            Probe::Tcp => tcp(spec.target, spec.ttl, deadline, None),
            Probe::TcpResponder => {
                let exchange =
                    Exchange::new(spec.target.port(), spec.context.responder_secret.clone());
                tcp(spec.target, spec.ttl, deadline, Some(exchange))
            }
            Probe::Udp(protocol) => {
                let request =
                    protocol.request(spec.context, &Nonce(rand::random()), spec.target.port());
                udp(spec, request, deadline, &self.own, &self.ignored)
            }
        }
    }
}

/// Errors that mean "this process cannot open another socket right now".
fn is_resource_exhaustion(e: &io::Error) -> bool {
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

/// A failure to start: exhaustion for the scheduler to handle, or a local
/// error that is this attempt's evidence.
fn failed(e: &io::Error, start: Instant) -> Result<Started, Exhausted> {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    if is_resource_exhaustion(e) {
        return Err(Exhausted(errno));
    }
    Ok(done(Evidence::LocalError(errno), start))
}

fn done(evidence: Evidence, start: Instant) -> Started {
    Started::Done(Finished {
        evidence,
        rtt: start.elapsed(),
    })
}

fn new_socket(addr: IpAddr, ty: Type, protocol: Protocol, ttl: Option<u8>) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, ty.nonblocking().cloexec(), Some(protocol))?;
    icmp::enable_recverr(&socket, addr.is_ipv6())?;
    match (ttl, addr.is_ipv6()) {
        (Some(ttl), false) => socket.set_ttl_v4(u32::from(ttl))?,
        (Some(hops), true) => socket.set_unicast_hops_v6(u32::from(hops))?,
        (None, _) => {}
    }
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

/// An error at the start of an attempt: evidence, exhaustion, or a local error.
fn start_error<F: AsRawFd>(
    e: &io::Error,
    socket: &F,
    start: Instant,
) -> Result<Started, Exhausted> {
    if is_resource_exhaustion(e) {
        return failed(e, start);
    }
    match classify_error(e, socket, true) {
        Some(evidence) => Ok(done(evidence, start)),
        None => failed(e, start),
    }
}

/// Starts a TCP connect to `addr` (and, for a responder, its hello).
fn tcp(
    addr: SocketAddr,
    ttl: Option<u8>,
    deadline: Deadline,
    exchange: Option<Exchange>,
) -> Result<Started, Exhausted> {
    let start = deadline.start();
    let socket = match new_socket(addr.ip(), Type::STREAM, Protocol::TCP, ttl) {
        Ok(s) => s,
        Err(e) => return failed(&e, start),
    };
    // On loopback the answer is often there before connect returns: take it
    // without registering the socket with the reactor.
    let at_once = match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => Some(connected(
            socket.local_addr().ok().and_then(|a| a.as_socket()),
            socket.peer_addr().ok().and_then(|a| a.as_socket()),
        )),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => match socket.take_error() {
            Ok(Some(e)) => classify_error(&e, &socket, false),
            Ok(None) => socket.peer_addr().ok().map(|peer| {
                connected(
                    socket.local_addr().ok().and_then(|a| a.as_socket()),
                    peer.as_socket(),
                )
            }),
            Err(_) => None,
        },
        Err(e) => return start_error(&e, &socket, start),
    };
    let at_once = match (at_once, &exchange) {
        (Some(evidence), None) => return Ok(done(evidence, start)),
        (Some(evidence), Some(_)) if evidence != Evidence::Connected => {
            return Ok(done(evidence, start));
        }
        (at_once, _) => at_once,
    };
    let stream = match TcpStream::from_std(std::net::TcpStream::from(socket)) {
        Ok(s) => s,
        Err(e) => return failed(&e, start),
    };
    Ok(Started::Waiting(Box::pin(async move {
        let finished = match at_once {
            Some(evidence) => Finished {
                evidence,
                rtt: start.elapsed(),
            },
            None => tokio::select! {
                finished = tcp_wait(&stream, start) => finished,
                () = deadline.clone().passed() => tcp_last_look(&stream, start),
            },
        };
        match (finished.evidence, exchange) {
            // The connect's round trip times the path; the hello gets a
            // timeout of its own, long enough for a busy responder.
            (Evidence::Connected, Some(exchange)) => Finished {
                evidence: exchange
                    .run(&stream, deadline.restart_with_floor(EXCHANGE_FLOOR))
                    .await,
                rtt: finished.rtt,
            },
            (evidence, _) => Finished {
                evidence,
                rtt: finished.rtt,
            },
        }
    })))
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

/// The least time a responder's TCP port gets to answer the hello: a
/// responder busy with a flood answers late, and silence until then reads
/// as another program's.
const EXCHANGE_FLOOR: Duration = Duration::from_secs(1);

/// How many new sockets a UDP attempt at this machine's own port tries
/// before giving up, when the kernel keeps choosing the probed port as the
/// socket's own.
const OWN_PORT_TRIES: usize = 8;

/// A bound UDP socket whose port is not the probed one when probing this
/// machine (a socket sending to itself proves nothing).
fn udp_socket(spec: &AttemptSpec<'_>) -> io::Result<(Socket, u16)> {
    let any: IpAddr = if spec.target.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let mut tries = 0;
    loop {
        let socket = new_socket(spec.target.ip(), Type::DGRAM, Protocol::UDP, spec.ttl)?;
        socket.bind(&SockAddr::from(SocketAddr::new(any, 0)))?;
        let port = socket.local_addr()?.as_socket().map_or(0, |a| a.port());
        tries += 1;
        if !spec.local || port != spec.target.port() || tries >= OWN_PORT_TRIES {
            return Ok((socket, port));
        }
    }
}

/// Sends `request`'s datagrams to the target from a new unconnected socket.
fn udp(
    spec: &AttemptSpec<'_>,
    request: Box<dyn UdpRequest>,
    deadline: Deadline,
    own: &Arc<OwnPorts>,
    ignored: &Arc<ignored::Log>,
) -> Result<Started, Exhausted> {
    let start = deadline.start();
    let addr = spec.target;
    let v6 = addr.is_ipv6();
    if spec.local && own.holds(v6, addr.port()) {
        return Ok(done(Evidence::OwnPort, start));
    }
    let (socket, port) = match udp_socket(spec) {
        Ok(s) => s,
        Err(e) => return failed(&e, start),
    };
    let held = own.hold(v6, port);
    let target = SockAddr::from(addr);
    // A responder's proof counts only from the probed address and port: a
    // connected socket takes nothing else, and knows its own address.
    let sent_from = if spec.probe.is_responder() {
        if let Err(e) = socket.connect(&target) {
            return start_error(&e, &socket, start);
        }
        socket.local_addr().ok().and_then(|a| a.as_socket())
    } else {
        None
    };
    for datagram in request.datagrams() {
        if let Err(e) = socket.send_to(&datagram, &target) {
            return start_error(&e, &socket, start);
        }
    }
    let socket = match UdpSocket::from_std(std::net::UdpSocket::from(socket)) {
        Ok(s) => s,
        Err(e) => return failed(&e, start),
    };
    let receive = Receive {
        target: addr,
        sent_from,
        local: spec.local,
        own: Arc::clone(own),
        ignored: Arc::clone(ignored),
        request,
    };
    Ok(Started::Waiting(Box::pin(async move {
        let found = tokio::select! {
            found = receive.wait(&socket) => Some(found),
            () = deadline.passed() => None,
        };
        let evidence = found
            .or_else(|| receive.look(&socket))
            .unwrap_or(Evidence::Silent);
        drop(held);
        Finished {
            evidence,
            rtt: start.elapsed(),
        }
    })))
}

thread_local! {
    /// One receive buffer per thread, large enough for any datagram: an
    /// attempt reads without waiting in between, so attempts never need a
    /// buffer of their own while they wait.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 65536]);
}

/// What a UDP attempt needs to tell a reply from other datagrams.
struct Receive {
    target: SocketAddr,
    /// The socket's own address, when connected (a responder probe).
    sent_from: Option<SocketAddr>,
    local: bool,
    own: Arc<OwnPorts>,
    ignored: Arc<ignored::Log>,
    request: Box<dyn UdpRequest>,
}

impl Receive {
    /// Waits until the socket has evidence.
    async fn wait(&self, socket: &UdpSocket) -> Evidence {
        loop {
            // The error queue raises EPOLLERR, which only ERROR interest sees.
            if socket
                .ready(Interest::READABLE | Interest::ERROR)
                .await
                .is_err()
            {
                std::future::pending::<()>().await;
            }
            if let Some(evidence) = self.look(socket) {
                return evidence;
            }
            // Nothing for us: clear the readiness and wait again.
            let _ = socket.try_io(Interest::ERROR, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// Reads what the socket holds without waiting: an ICMP error from the
    /// error queue, or a reply that counts. Datagrams that do not count are
    /// dropped.
    fn look(&self, socket: &UdpSocket) -> Option<Evidence> {
        if let Some(icmp) = icmp::drain(socket).into_iter().next() {
            return Some(Evidence::Icmp(icmp));
        }
        BUFFER.with_borrow_mut(|buf| {
            loop {
                match socket.try_recv_from(buf) {
                    Ok((n, from)) => {
                        if let Some(evidence) = self.judge_datagram(&buf[..n], normalise(from)) {
                            return Some(evidence);
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
        })
    }

    /// Whether a datagram counts: never one from portprobe's own sockets; a
    /// reply carrying our IDs from any sender; a reply recognised by shape
    /// alone, or a responder's proof, only from where its protocol answers;
    /// never the protocol's answer to another request; anything else only
    /// from the probed address and port.
    fn judge_datagram(&self, bytes: &[u8], from: SocketAddr) -> Option<Evidence> {
        let probed = SocketAddr::new(self.target.ip(), self.target.port());
        let judged = self.judge(bytes, from, probed);
        if let Err(why) = judged {
            self.ignored.push(ignored::Ignored {
                target: probed,
                from,
                len: bytes.len(),
                why,
            });
        }
        judged.ok()
    }

    /// The evidence a datagram gives, or why it gives none.
    fn judge(&self, bytes: &[u8], from: SocketAddr, probed: SocketAddr) -> Result<Evidence, Why> {
        if self.local
            && (from.ip().is_loopback() || from.ip() == self.target.ip())
            && self.own.holds(from.is_ipv6(), from.port())
        {
            return Err(Why::OwnSocket);
        }
        let reply = match self.request.recognise(bytes) {
            Some(reply) if reply.matched.accepts(probed, from) => {
                if let Match::Responder(seen) = reply.matched {
                    return Ok(Evidence::Responder {
                        answer: Answer::Proved(seen),
                        sent_from: self.sent_from,
                    });
                }
                Some(reply)
            }
            Some(_) => return Err(Why::NotOurs),
            None if self.request.answers_another(bytes) => return Err(Why::AnotherRequest),
            None if same_endpoint(probed, from) => None,
            None => return Err(Why::Stranger),
        };
        Ok(Evidence::Datagram { reply, from })
    }
}

/// The same address and port, whatever the IPv6 scope or flow label.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
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
