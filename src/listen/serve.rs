//! Answering hellos: one task per bound socket. A UDP datagram is read into
//! a buffer one byte longer than a hello, so anything longer is seen as
//! oversized and ignored; a TCP connection gets a second to send its hello,
//! then the reply and a close, and a connection there is no room for (the
//! pool, or its source's share of it, is taken) gets the busy notice and a
//! close at once. Every answer passes the limits (`limit.rs`); the reply
//! (68 bytes) and the notice (8) are always shorter than the hello (80).

use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::bind::Bound;
use super::limit::{Refusal, TcpLimiter, UdpLimiter};
use super::pktinfo::{self, Local};
use super::summary::{Event, Tally};
use crate::port::Transport;
use crate::wire::responder::{BUSY_NOTICE, HELLO_LEN, Hello, Secret, Seen, reply};

/// TCP connections open at once, over every source (fewer when the
/// open-file limit leaves fewer descriptors).
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a TCP client has to send its hello: a silent connection holds
/// its slot no longer.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the reply may take to leave.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A pause after a failed accept (such as running out of descriptors), so
/// a persistent error does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// What every task shares.
#[derive(Debug)]
pub struct Shared {
    secret: Secret,
    udp_limiter: Mutex<UdpLimiter>,
    tcp_limiter: Mutex<TcpLimiter>,
    tally: Mutex<Tally>,
    connections: Arc<Semaphore>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// The state shared by the tasks of one responder, which may hold
    /// `connections` TCP connections at once.
    pub fn new(secret: Secret, connections: usize) -> Shared {
        Shared {
            secret,
            udp_limiter: Mutex::new(UdpLimiter::new(Instant::now())),
            tcp_limiter: Mutex::new(TcpLimiter::default()),
            tally: Mutex::new(Tally::default()),
            connections: Arc::new(Semaphore::new(connections)),
        }
    }

    /// What was seen so far.
    pub fn take_tally(&self) -> Tally {
        std::mem::take(&mut *lock(&self.tally))
    }

    fn record(&self, transport: Transport, port: u16, source: IpAddr, event: Event) {
        lock(&self.tally).record(transport, port, source, event);
    }

    /// The kernel dropped `count` datagrams on UDP `port` (a full buffer).
    fn lost(&self, port: u16, count: u64) {
        lock(&self.udp_limiter).lost(Instant::now());
        lock(&self.tally).lost(port, count);
    }

    /// Whether a UDP hello from `from` may be answered; `Ok(limiting)`
    /// says whether the total cap refused hellos lately.
    fn allow_udp(&self, from: SocketAddr) -> Result<bool, Refusal> {
        let now = Instant::now();
        let mut limiter = lock(&self.udp_limiter);
        limiter.hello(from, now)?;
        Ok(limiter.limiting(now))
    }

    /// Whether a TCP hello from `source` may be answered, as for UDP.
    fn allow_tcp(&self, source: IpAddr) -> Result<bool, Refusal> {
        let now = Instant::now();
        lock(&self.tcp_limiter).hello(source, now)?;
        Ok(lock(&self.udp_limiter).limiting(now))
    }
}

/// Starts a task for every bound socket. Must run inside the runtime.
pub fn spawn_all(bound: Vec<Bound>, shared: &Arc<Shared>) -> io::Result<JoinSet<()>> {
    let mut tasks = JoinSet::new();
    for b in bound {
        let shared = Arc::clone(shared);
        match b.transport {
            Transport::Udp => {
                let socket = UdpSocket::from_std(b.socket.into())?;
                let bound = socket.local_addr()?.ip();
                tasks.spawn(udp(socket, b.port, bound, shared));
            }
            Transport::Tcp => {
                let listener = TcpListener::from_std(b.socket.into())?;
                tasks.spawn(tcp(listener, b.port, shared));
            }
        }
    }
    Ok(tasks)
}

/// The source address as people write it (an IPv4 client of a dual-stack
/// socket shows as IPv4).
fn source_of(from: SocketAddr) -> IpAddr {
    from.ip().to_canonical()
}

/// An address and port as people write them (IPv4 as IPv4).
fn canonical(at: SocketAddr) -> SocketAddr {
    SocketAddr::new(at.ip().to_canonical(), at.port())
}

/// Where a datagram arrived: the address the kernel says it was sent to,
/// else the one the socket is bound to (unspecified for every address).
fn arrival(to: Option<Local>, bound: IpAddr, port: u16) -> SocketAddr {
    let ip = match to {
        Some(Local::V4(a)) => IpAddr::V4(a),
        Some(Local::V6(a, _)) => IpAddr::V6(a).to_canonical(),
        None => bound.to_canonical(),
    };
    SocketAddr::new(ip, port)
}

async fn udp(socket: UdpSocket, port: u16, bound: IpAddr, shared: Arc<Shared>) {
    let fd = socket.as_raw_fd();
    let mut buf = [0u8; HELLO_LEN + 1];
    let mut dropped = 0u32;
    loop {
        let Ok(got) = socket
            .async_io(Interest::READABLE, || pktinfo::recv(fd, &mut buf))
            .await
        else {
            continue;
        };
        if let Some(now) = got.dropped
            && now != dropped
        {
            shared.lost(port, u64::from(now.wrapping_sub(dropped)));
            dropped = now;
        }
        let source = source_of(got.from);
        let event = match Hello::parse(&buf[..got.len]) {
            None => Event::Ignored,
            Some(hello) => match shared.allow_udp(got.from) {
                Ok(limiting) => {
                    let seen = Seen {
                        transport: Transport::Udp,
                        from: canonical(got.from),
                        to: arrival(got.to, bound, port),
                        limiting,
                    };
                    let answer = reply(&shared.secret, &hello, &seen);
                    // From the address the hello was sent to; a full send
                    // buffer loses the reply as a network would.
                    let _ = socket.try_io(Interest::WRITABLE, || {
                        pktinfo::send(fd, &answer, got.from, got.to)
                    });
                    Event::Answered
                }
                Err(r) => Event::Refused(r),
            },
        };
        shared.record(Transport::Udp, port, source, event);
    }
}

async fn tcp(listener: TcpListener, port: u16, shared: Arc<Shared>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let source = source_of(from);
        let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
            turn_away(&stream);
            shared.record(Transport::Tcp, port, source, Event::Busy(Refusal::Full));
            continue;
        };
        if let Err(r) = lock(&shared.tcp_limiter).opened(source, Instant::now()) {
            turn_away(&stream);
            shared.record(Transport::Tcp, port, source, Event::Busy(r));
            continue;
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let event = converse(stream, source, &shared).await;
            lock(&shared.tcp_limiter).closed(source);
            shared.record(Transport::Tcp, port, source, event);
            drop(permit);
        });
    }
}

/// Tells a connection there is no room for it, without waiting: what it
/// sent so far is read first, so that the close that follows sends the
/// notice and a FIN rather than a reset (a hello arriving later still
/// draws one, after the notice, which the client reads all the same).
fn turn_away(stream: &TcpStream) {
    let mut buf = [0u8; HELLO_LEN];
    for _ in 0..4 {
        match stream.try_read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = stream.try_write(&BUSY_NOTICE);
    let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Write);
}

/// Reads one hello and answers it.
async fn converse(mut stream: TcpStream, source: IpAddr, shared: &Shared) -> Event {
    let mut buf = [0u8; HELLO_LEN];
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Hello::parse(&buf),
        _ => None,
    };
    let Some(hello) = hello else {
        return Event::Ignored;
    };
    let limiting = match shared.allow_tcp(source) {
        Ok(limiting) => limiting,
        Err(r) => return Event::Refused(r),
    };
    let (Ok(from), Ok(to)) = (stream.peer_addr(), stream.local_addr()) else {
        return Event::Ignored;
    };
    let seen = Seen {
        transport: Transport::Tcp,
        from: canonical(from),
        to: canonical(to),
        limiting,
    };
    let answer = reply(&shared.secret, &hello, &seen);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
    Event::Answered
}
