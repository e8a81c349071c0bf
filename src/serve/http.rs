//! The exporter's HTTP server: an accept loop that admits each connection
//! within the caps ([`Registry`]), runs its TLS handshake when the server
//! has TLS (within the header-read timeout, counted from the connection's
//! opening), and serves it with hyper, closing it when one of its phase's
//! timeouts runs out; and the shutdown on SIGTERM or
//! SIGINT: stop accepting, close every connection that is idle or still
//! sending its request head, let the requests being answered finish, and
//! return within the grace period whatever is left (at once on a second
//! signal).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_rustls::TlsAcceptor;

use super::metrics::{Closed, Connections};
use super::phase::{Answered, Answering, Close, Expired, Timeouts, Watched, deadline};
use super::registry::{NotAdmitted, Registry, Ticket};

/// The most a connection's read buffer grows to, and so the longest
/// request head (431 past it): a scrape's head is a few hundred bytes.
const MAX_BUFFER: usize = 16 * 1024;
/// The queue of connections the kernel completes before they are accepted
/// (it caps this at `net.core.somaxconn`): deep enough that a burst, or
/// the accept loop kept off the CPU for a moment, drops no SYN (a dropped
/// SYN costs the client a second).
const BACKLOG: i32 = 4096;
/// How long a new connection waits for the sockets closing to make room
/// for it: they close as soon as their tasks run.
const ROOM_WAIT: Duration = Duration::from_secs(1);
/// How long the accept loop pauses when the system has no descriptor or
/// memory for a new connection, rather than spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// SIGTERM and SIGINT.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Catches SIGTERM and SIGINT from now on.
    pub fn catch() -> Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// A listening socket on `addr`, with a deep backlog.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// How the server holds its connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long each waiting phase may last.
    pub timeouts: Timeouts,
    /// The most a shutdown waits for the requests being answered.
    pub grace: Duration,
}

/// What the server speaks on its connections.
#[derive(Clone)]
pub enum Transport {
    /// Plain HTTP.
    Plain,
    /// HTTP over TLS, after this handshake.
    Tls(TlsAcceptor),
}

/// Serves `app` on `listener` until a signal, then shuts down within
/// `limits.grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    registry: Arc<Registry>,
    stats: Arc<Connections>,
    limits: Limits,
    transport: Transport,
    mut signals: Signals,
) -> Result<()> {
    let app = TowerToHyperService::new(app);
    let mut tasks = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = signals.next() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if out_of_resources(&e) => {
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
                // The client went away before it was accepted, or the like.
                Err(_) => continue,
            },
        };
        // Refused: dropped, so closed at once.
        if let Some(ticket) = admit(&registry, peer).await {
            let stats = Arc::clone(&stats);
            let app = app.clone();
            tasks.spawn(connection(
                stream,
                peer,
                ticket,
                app,
                limits.timeouts,
                transport.clone(),
                stats,
            ));
        }
    }
    drop(listener);
    registry.stop();
    let drained = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(limits.grace) => {}
        () = signals.next() => {}
    }
    // Whatever is left is cut off as the tasks are dropped.
    tasks.abort_all();
    Ok(())
}

/// The connection from `peer` admitted, or `None` to close it at once.
/// When the sockets closing to make room have not closed yet, it waits for
/// them a little, as nginx stops accepting while it frees connections.
async fn admit(registry: &Arc<Registry>, peer: SocketAddr) -> Option<Ticket> {
    let deadline = Instant::now() + ROOM_WAIT;
    loop {
        match registry.admit(peer.ip(), Instant::now()) {
            Ok(ticket) => return Some(ticket),
            Err(NotAdmitted::Refused(_)) => return None,
            Err(NotAdmitted::Closing) => {
                if tokio::time::timeout_at(deadline, registry.room())
                    .await
                    .is_err()
                {
                    registry.no_room();
                    return None;
                }
            }
        }
    }
}

/// Whether accept(2) failed for want of a descriptor or memory.
fn out_of_resources(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().map(Errno::from_raw).is_some_and(|n| {
        matches!(
            n,
            Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM
        )
    })
}

/// How a connection's task ended.
enum End {
    /// The client closed it, hyper did (after an answer during shutdown,
    /// or on an error), or the exporter asked it to close while waiting.
    Done,
    /// A timeout ran out.
    Expired(Expired),
}

/// Serves one connection, after its TLS handshake when there is one.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    app: TowerToHyperService<Router>,
    timeouts: Timeouts,
    transport: Transport,
    stats: Arc<Connections>,
) {
    match transport {
        Transport::Plain => serve_http(stream, peer, &ticket, app, timeouts, &stats).await,
        Transport::Tls(acceptor) => {
            // The handshake is part of the wait for the request head: the
            // header-read timeout runs from the opening through both. A
            // connection asked to close meanwhile (for room, or shutdown)
            // closes at once.
            let (_, opened) = ticket.track.get();
            let until = opened.checked_add(timeouts.header);
            let handshake = super::tls::handshake(&acceptor, stream);
            let done = tokio::select! {
                done = async {
                    match until {
                        Some(at) => tokio::time::timeout_at(at, handshake).await.map_err(|_| ()),
                        None => Ok(handshake.await),
                    }
                } => done,
                _ = ticket.track.closing() => return,
            };
            match done {
                Ok(Some(tls)) => serve_http(tls, peer, &ticket, app, timeouts, &stats).await,
                Ok(None) | Err(()) => stats.closed(Closed::TlsHandshake),
            }
        }
    }
    drop(ticket);
}

/// Serves HTTP on one connection until it ends, is asked to close, or runs
/// out of time in its phase.
async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    ticket: &Ticket,
    app: TowerToHyperService<Router>,
    timeouts: Timeouts,
    stats: &Connections,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let track = Arc::clone(&ticket.track);
    let service = {
        let track = Arc::clone(&track);
        service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let answering = Answering::begin(&track, Instant::now());
            let call = app.call(request);
            async move {
                let response = call.await?;
                let answering = answering.responded(Instant::now());
                Ok::<_, Infallible>(response.map(|body| Answered::new(body, answering)))
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(MAX_BUFFER)
        // A backstop behind the phases' own timeouts: hyper 1.12 runs this
        // one from the connection's start and again from the moment a
        // kept-alive connection goes idle, until a complete head, so it
        // covers the idle wait and the head together.
        .header_read_timeout(
            timeouts
                .idle
                .checked_add(timeouts.header)
                .and_then(|d| d.checked_add(Duration::from_secs(1))),
        );
    let mut conn = pin!(builder.serve_connection(
        TokioIo::new(Watched::new(stream, Arc::clone(&track))),
        service
    ));
    let mut closing = pin!(track.closing());
    let mut timer = pin!(sleep_until(Instant::now()));
    let mut stopping = false;
    let end = std::future::poll_fn(|cx| {
        loop {
            if conn.as_mut().poll(cx).is_ready() {
                return Poll::Ready(End::Done);
            }
            if !stopping && let Poll::Ready(why) = closing.as_mut().poll(cx) {
                match why {
                    Close::Reuse => return Poll::Ready(End::Done),
                    Close::Shutdown => {
                        // An answer in progress is finished, with
                        // `Connection: close`; hyper closes an idle
                        // connection at once.
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                        continue;
                    }
                }
            }
            break;
        }
        let (phase, since) = track.get();
        if stopping && phase.waiting() {
            return Poll::Ready(End::Done);
        }
        if let Some((at, why)) = deadline(phase, since, &timeouts) {
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(End::Expired(why));
            }
        }
        Poll::Pending
    })
    .await;
    if let End::Expired(why) = end {
        stats.closed(match why {
            Expired::Header => Closed::HeaderTimeout,
            Expired::Idle => Closed::IdleTimeout,
            Expired::Send => Closed::SendTimeout,
        });
    }
}
