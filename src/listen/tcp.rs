//! Answering TCP hellos. A connection whose hello has arrived by the time
//! it is accepted (the usual case: the client sends it with the end of the
//! handshake) is answered at once, taking nothing; only a connection still
//! waiting for its hello takes one of the connection slots, for at most a
//! second, within its source's share. A connection there is no slot for
//! gets the busy notice and a close at once, so that its client tells a
//! full responder from another program.

use std::net::{IpAddr, Shutdown};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::socket::{MsgFlags, recv, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::limit::Refusal;
use super::serve::{Shared, canonical, lock, source_of};
use super::summary::Event;
use crate::port::Transport;
use crate::wire::responder::{BUSY_NOTICE, HELLO_LEN, Hello, REPLY_LEN, Seen, reply};

/// How long a TCP client has to send its hello: a silent connection holds
/// its slot no longer.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the reply may take to leave.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A pause after a failed accept (such as running out of descriptors), so
/// a persistent error does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// How much of a hello has arrived.
enum Arrived {
    /// All of it.
    Whole,
    /// This many bytes, and more may come.
    Partly(usize),
    /// Never all of it: the connection ended or failed first.
    Never,
}

/// Reads what has arrived into `buf`, without waiting (the socket itself,
/// whatever the runtime has been told of it yet).
fn read_now(fd: RawFd, buf: &mut [u8; HELLO_LEN]) -> Arrived {
    let mut got = 0;
    while got < HELLO_LEN {
        match recv(fd, &mut buf[got..], MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return Arrived::Never,
            Ok(n) => got += n,
            Err(nix::errno::Errno::EAGAIN) => return Arrived::Partly(got),
            Err(_) => return Arrived::Never,
        }
    }
    Arrived::Whole
}

/// Writes `bytes` without waiting (a fresh connection's send buffer holds
/// them), then ends the sending side: the client reads them, then the end.
fn write_now(stream: &TcpStream, bytes: &[u8]) {
    let _ = send(
        stream.as_raw_fd(),
        bytes,
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    );
    let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Write);
}

/// The answer to `hello` from `source` on `stream`, or the refusal.
fn answer(
    stream: &TcpStream,
    hello: &Hello,
    source: IpAddr,
    shared: &Shared,
) -> Result<[u8; REPLY_LEN], Event> {
    let limiting = shared.allow_tcp(source).map_err(Event::Refused)?;
    let (Ok(from), Ok(to)) = (stream.peer_addr(), stream.local_addr()) else {
        return Err(Event::Ignored);
    };
    let seen = Seen {
        transport: Transport::Tcp,
        from: canonical(from),
        to: canonical(to),
        limiting,
    };
    Ok(reply(&shared.secret, hello, &seen))
}

/// Accepts and answers the connections of one port.
pub async fn serve(listener: TcpListener, port: u16, shared: Arc<Shared>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => {
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let source = source_of(from);
        let mut buf = [0u8; HELLO_LEN];
        let got = match read_now(stream.as_raw_fd(), &mut buf) {
            Arrived::Whole => {
                let event = match Hello::parse(&buf).ok_or(Event::Ignored) {
                    Ok(hello) => match answer(&stream, &hello, source, &shared) {
                        Ok(bytes) => {
                            write_now(&stream, &bytes);
                            Event::Answered
                        }
                        Err(event) => event,
                    },
                    Err(event) => event,
                };
                shared.record(Transport::Tcp, port, source, event);
                continue;
            }
            Arrived::Never => {
                shared.record(Transport::Tcp, port, source, Event::Ignored);
                continue;
            }
            Arrived::Partly(got) => got,
        };
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
            let event = converse(stream, buf, got, source, &shared).await;
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
        if !matches!(read_now(stream.as_raw_fd(), &mut buf), Arrived::Whole) {
            break;
        }
    }
    write_now(stream, &BUSY_NOTICE);
}

/// Reads the rest of one hello (`got` bytes of it are in `buf`) within
/// [`HELLO_TIMEOUT`] and answers it.
async fn converse(
    mut stream: TcpStream,
    mut buf: [u8; HELLO_LEN],
    got: usize,
    source: IpAddr,
    shared: &Shared,
) -> Event {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, stream.read_exact(&mut buf[got..])).await
    {
        Ok(Ok(_)) => Hello::parse(&buf),
        _ => None,
    };
    let Some(hello) = hello else {
        return Event::Ignored;
    };
    let bytes = match answer(&stream, &hello, source, shared) {
        Ok(bytes) => bytes,
        Err(event) => return event,
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    Event::Answered
}
