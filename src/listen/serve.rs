//! Answering hellos: one task per bound socket, and what the tasks share
//! (the secret, the limits, the tally, the TCP connection slots). A UDP
//! datagram is read into a buffer one byte longer than a hello, so anything
//! longer is seen as oversized and ignored; TCP connections are answered in
//! `tcp.rs`. Every answer passes the limits (`limit.rs`); the reply (68
//! bytes) and the busy notice (8) are always shorter than the hello (80).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::io::Interest;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::bind::Bound;
use super::limit::{Refusal, TcpLimiter, UdpLimiter};
use super::pktinfo::{self, Local};
use super::summary::{Event, Tally};
use super::tcp;
use crate::port::Transport;
use crate::wire::responder::{HELLO_LEN, Hello, Secret, Seen, reply};

/// TCP connections waiting for their hello at once, over every source
/// (fewer when the open-file limit leaves fewer descriptors).
pub const MAX_CONNECTIONS: usize = 1024;

/// What every task shares.
#[derive(Debug)]
pub struct Shared {
    pub(super) secret: Secret,
    udp_limiter: Mutex<UdpLimiter>,
    pub(super) tcp_limiter: Mutex<TcpLimiter>,
    tally: Mutex<Tally>,
    pub(super) connections: Arc<Semaphore>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

    pub(super) fn record(&self, transport: Transport, port: u16, source: IpAddr, event: Event) {
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
    pub(super) fn allow_tcp(&self, source: IpAddr) -> Result<bool, Refusal> {
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
                tasks.spawn(tcp::serve(listener, b.port, shared));
            }
        }
    }
    Ok(tasks)
}

/// The source address as people write it (an IPv4 client of a dual-stack
/// socket shows as IPv4).
pub(super) fn source_of(from: SocketAddr) -> IpAddr {
    from.ip().to_canonical()
}

/// An address and port as people write them (IPv4 as IPv4).
pub(super) fn canonical(at: SocketAddr) -> SocketAddr {
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
