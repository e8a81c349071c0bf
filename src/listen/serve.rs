//! Answering hellos: one task per bound socket. A UDP datagram is read into
//! a buffer one byte longer than a hello, so anything longer is seen as
//! oversized and ignored; a TCP connection gets a few seconds to send its
//! hello, then the reply and a close. Every answer passes the per-source
//! limits; the reply (40 bytes) is always shorter than the hello (48).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::bind::Bound;
use super::limit::{Limiter, Refusal};
use super::pktinfo;
use super::summary::{Event, Tally};
use crate::port::Transport;
use crate::wire::responder::{HELLO_LEN, Hello, Secret, reply};

/// TCP connections open at once, over every source (fewer when the
/// open-file limit leaves fewer descriptors).
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a TCP client has to send its hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the reply may take to leave.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A pause after a failed accept (such as running out of descriptors), so
/// a persistent error does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// What every task shares.
#[derive(Debug)]
pub struct Shared {
    secret: Secret,
    limiter: Mutex<Limiter>,
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
            limiter: Mutex::new(Limiter::default()),
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

    fn allow_hello(&self, source: IpAddr) -> Result<(), Refusal> {
        lock(&self.limiter).hello(source, Instant::now())
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
                tasks.spawn(udp(socket, b.port, shared));
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

async fn udp(socket: UdpSocket, port: u16, shared: Arc<Shared>) {
    let fd = socket.as_raw_fd();
    let mut buf = [0u8; HELLO_LEN + 1];
    loop {
        let Ok(got) = socket
            .async_io(Interest::READABLE, || pktinfo::recv(fd, &mut buf))
            .await
        else {
            continue;
        };
        let source = source_of(got.from);
        let event = match Hello::parse(&buf[..got.len]) {
            None => Event::Ignored,
            Some(hello) => match shared.allow_hello(source) {
                Ok(()) => {
                    let answer = reply(&shared.secret, &hello, Transport::Udp, port);
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
            shared.record(
                Transport::Tcp,
                port,
                source,
                Event::Refused(Refusal::TooManyConnections),
            );
            continue;
        };
        if let Err(r) = lock(&shared.limiter).opened(source, Instant::now()) {
            shared.record(Transport::Tcp, port, source, Event::Refused(r));
            continue;
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let event = converse(stream, port, source, &shared).await;
            lock(&shared.limiter).closed(source);
            shared.record(Transport::Tcp, port, source, event);
            drop(permit);
        });
    }
}

/// Reads one hello and answers it.
async fn converse(mut stream: TcpStream, port: u16, source: IpAddr, shared: &Shared) -> Event {
    let mut buf = [0u8; HELLO_LEN];
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Hello::parse(&buf),
        _ => None,
    };
    let Some(hello) = hello else {
        return Event::Ignored;
    };
    if let Err(r) = shared.allow_hello(source) {
        return Event::Refused(r);
    }
    let answer = reply(&shared.secret, &hello, Transport::Tcp, port);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
    Event::Answered
}
