//! Where each HTTP connection stands, and since when: waiting for a request
//! head, idle between requests, or being answered. hyper serves the
//! connection; its reads, its flushes, the service call and the response
//! body report here ([`Watched`], [`Answering`], [`Answered`]), and the
//! timeouts, the choice of a connection to reuse when all are taken, and
//! shutdown read it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Opened and nothing of a request yet, or part of a request head:
    /// the header-read timeout runs.
    Head,
    /// Kept alive after a response, nothing of the next request yet: the
    /// idle timeout runs.
    Idle,
    /// A request is being answered (a probe may be running): no timeout
    /// here, the probe's own deadline bounds it.
    Handling,
    /// The response is ready and being sent: the send timeout runs.
    Sending,
    /// The response body is written; waiting for it to leave the buffer.
    Flushing,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Head,
        Phase::Idle,
        Phase::Handling,
        Phase::Sending,
        Phase::Flushing,
    ];

    /// Whether no request is in progress: the connection can be closed
    /// without cutting an answer short.
    pub fn waiting(self) -> bool {
        matches!(self, Phase::Head | Phase::Idle)
    }
}

/// How long each waiting phase may last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From the connection's opening, or from the first byte of a later
    /// request, until the request head is complete.
    pub header: Duration,
    /// From the end of a response until the first byte of the next
    /// request.
    pub idle: Duration,
    /// From the moment a response is ready until the client has taken it.
    pub send: Duration,
}

/// Which timeout closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// The request head was not complete in time.
    Header,
    /// Nothing of a next request came in time.
    Idle,
    /// The client did not take the response in time.
    Send,
}

/// When a connection in `phase` since `since` runs out of time, and which
/// timeout that is; `None` while a request is being handled.
pub fn deadline(phase: Phase, since: Instant, t: &Timeouts) -> Option<(Instant, Expired)> {
    let (limit, why) = match phase {
        Phase::Head => (t.header, Expired::Header),
        Phase::Idle => (t.idle, Expired::Idle),
        Phase::Handling => return None,
        Phase::Sending | Phase::Flushing => (t.send, Expired::Send),
    };
    // A limit too far to represent never comes.
    since.checked_add(limit).map(|at| (at, why))
}

/// Why a connection is asked to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// Every connection is in use: this one, waiting, is closed for a new
    /// one.
    Reuse,
    /// The exporter is stopping: close if waiting, else after the answer.
    Shutdown,
}

/// One connection's phase, shared by the task serving it and the registry.
#[derive(Debug)]
pub struct Track {
    /// The phase in the low 3 bits, the microseconds since `epoch` it
    /// began in the rest: one load reads both.
    state: AtomicU64,
    epoch: Instant,
    close: Notify,
    why: AtomicU8,
}

const PHASE_BITS: u32 = 3;

impl Track {
    /// A connection opened at `now`: in [`Phase::Head`].
    pub fn new(epoch: Instant, now: Instant) -> Track {
        let t = Track {
            state: AtomicU64::new(0),
            epoch,
            close: Notify::new(),
            why: AtomicU8::new(0),
        };
        t.set(Phase::Head, now);
        t
    }

    /// When the connection began waiting (in [`Phase::Head`] or
    /// [`Phase::Idle`]), as a number that orders those moments; `None`
    /// while a request is in progress. One load, for a scan of every
    /// connection.
    pub fn waiting_since(&self) -> Option<u64> {
        let v = self.state.load(Ordering::Relaxed);
        (v & 0b111 <= 1).then_some(v >> PHASE_BITS)
    }

    /// The phase and when it began.
    pub fn get(&self) -> (Phase, Instant) {
        let v = self.state.load(Ordering::Relaxed);
        let phase = Phase::ALL[usize::try_from(v & 0b111).unwrap_or(0).min(4)];
        (phase, self.epoch + Duration::from_micros(v >> PHASE_BITS))
    }

    fn set(&self, phase: Phase, at: Instant) {
        let micros = u64::try_from(at.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(u64::MAX >> PHASE_BITS);
        let code = Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0) as u64;
        self.state
            .store((micros << PHASE_BITS) | code, Ordering::Relaxed);
    }

    /// Bytes came in: the first of a next request starts its head.
    pub fn read(&self, now: Instant) {
        if self.get().0 == Phase::Idle {
            self.set(Phase::Head, now);
        }
    }

    /// Everything written has left the buffer: a finished response makes
    /// the connection idle.
    pub fn flushed(&self, now: Instant) {
        if self.get().0 == Phase::Flushing {
            self.set(Phase::Idle, now);
        }
    }

    /// Asks the task serving the connection to close it.
    pub fn close(&self, why: Close) {
        self.why.store(
            match why {
                Close::Reuse => 1,
                Close::Shutdown => 2,
            },
            Ordering::Relaxed,
        );
        self.close.notify_one();
    }

    /// Completes when [`Track::close`] is called (also before this was
    /// first polled), with the reason.
    pub async fn closing(&self) -> Close {
        self.close.notified().await;
        match self.why.load(Ordering::Relaxed) {
            1 => Close::Reuse,
            _ => Close::Shutdown,
        }
    }
}

/// A request being answered on a connection, from the service call until
/// the response body is dropped.
#[derive(Debug)]
pub struct Answering(Arc<Track>);

impl Answering {
    /// The service was called with a complete request head.
    pub fn begin(track: &Arc<Track>, now: Instant) -> Answering {
        track.set(Phase::Handling, now);
        Answering(Arc::clone(track))
    }

    /// The response is ready: sending begins.
    pub fn responded(self, now: Instant) -> Answering {
        self.0.set(Phase::Sending, now);
        self
    }

    /// A streamed body waits for its next part from the exporter (a page
    /// whose report is still being probed): the client is not slow, so no
    /// send timeout runs until the part comes.
    fn body_waits(&self) {
        if self.0.get().0 == Phase::Sending {
            self.0.set(Phase::Handling, Instant::now());
        }
    }

    /// A part of the body is ready to send: the send timeout runs from now.
    fn body_part(&self, now: Instant) {
        if self.0.get().0 == Phase::Handling {
            self.0.set(Phase::Sending, now);
        }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let (phase, since) = self.0.get();
        if matches!(phase, Phase::Handling | Phase::Sending) {
            // The send timeout keeps running until the flush.
            let since = if phase == Phase::Handling {
                Instant::now()
            } else {
                since
            };
            self.0.set(Phase::Flushing, since);
        }
    }
}

/// A response body that keeps its request [`Answering`] until hyper has
/// written it and drops it.
#[derive(Debug)]
pub struct Answered<B> {
    body: B,
    answering: Answering,
}

impl<B> Answered<B> {
    /// `body`, answering the request `answering` tracks.
    pub fn new(body: B, answering: Answering) -> Self {
        Answered { body, answering }
    }
}

impl<B: Body + Unpin> Body for Answered<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Pending => self.answering.body_waits(),
            Poll::Ready(Some(Ok(_))) => self.answering.body_part(Instant::now()),
            Poll::Ready(_) => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket, reporting reads and flushes to its [`Track`].
#[derive(Debug)]
pub struct Watched<T> {
    io: T,
    track: Arc<Track>,
}

impl<T> Watched<T> {
    /// `io`, reporting to `track`.
    pub fn new(io: T, track: Arc<Track>) -> Self {
        Watched { io, track }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.track.read(Instant::now());
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        // hyper flushes the socket once its own buffer is empty.
        self.track.flushed(Instant::now());
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(30),
        send: Duration::from_secs(10),
    };

    fn at(epoch: Instant, ms: u64) -> Instant {
        epoch + Duration::from_millis(ms)
    }

    #[test]
    fn a_request_goes_round_the_phases() {
        let epoch = Instant::now();
        let track = Arc::new(Track::new(epoch, at(epoch, 5)));
        assert_eq!(track.get(), (Phase::Head, at(epoch, 5)));
        // Bytes of the first head do not restart its timeout.
        track.read(at(epoch, 900));
        assert_eq!(track.get(), (Phase::Head, at(epoch, 5)));
        let answering = Answering::begin(&track, at(epoch, 1000));
        assert_eq!(track.get().0, Phase::Handling);
        // A flush while handling (of nothing) changes nothing.
        track.flushed(at(epoch, 1500));
        assert_eq!(track.get().0, Phase::Handling);
        let answering = answering.responded(at(epoch, 3000));
        assert_eq!(track.get(), (Phase::Sending, at(epoch, 3000)));
        drop(answering);
        assert_eq!(track.get(), (Phase::Flushing, at(epoch, 3000)));
        track.flushed(at(epoch, 3100));
        assert_eq!(track.get(), (Phase::Idle, at(epoch, 3100)));
        track.read(at(epoch, 9000));
        assert_eq!(track.get(), (Phase::Head, at(epoch, 9000)));
        assert_eq!(track.waiting_since(), Some(9_000_000));
        let _answering = Answering::begin(&track, at(epoch, 9500));
        assert_eq!(track.waiting_since(), None);
    }

    /// A body that is pending for its first poll, then has one part.
    struct Later(bool);

    impl Body for Later {
        type Data = axum::body::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            if self.0 {
                return Poll::Ready(None);
            }
            self.0 = true;
            Poll::Pending
        }
    }

    #[test]
    fn a_streamed_body_waiting_for_its_report_is_no_slow_client() {
        let epoch = Instant::now();
        let track = Arc::new(Track::new(epoch, epoch));
        let answering = Answering::begin(&track, epoch).responded(at(epoch, 10));
        let mut body = Answered::new(Later(false), answering);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
        // The exporter is still probing: no send timeout runs.
        assert_eq!(track.get().0, Phase::Handling);
        assert_eq!(deadline(track.get().0, track.get().1, &T), None);
        body.answering.body_part(at(epoch, 20_000));
        assert_eq!(track.get(), (Phase::Sending, at(epoch, 20_000)));
    }

    #[test]
    fn each_phase_has_its_deadline() {
        let epoch = Instant::now();
        let s = at(epoch, 1000);
        assert_eq!(
            deadline(Phase::Head, s, &T),
            Some((at(epoch, 11_000), Expired::Header))
        );
        assert_eq!(
            deadline(Phase::Idle, s, &T),
            Some((at(epoch, 31_000), Expired::Idle))
        );
        assert_eq!(deadline(Phase::Handling, s, &T), None);
        for p in [Phase::Sending, Phase::Flushing] {
            assert_eq!(deadline(p, s, &T), Some((at(epoch, 11_000), Expired::Send)));
        }
        let forever = Timeouts {
            idle: Duration::MAX,
            ..T
        };
        assert_eq!(deadline(Phase::Idle, s, &forever), None);
        assert!(Phase::Head.waiting() && Phase::Idle.waiting());
        assert!(!Phase::Handling.waiting() && !Phase::Sending.waiting());
        assert!(!Phase::Flushing.waiting());
    }

    #[tokio::test]
    async fn a_close_asked_before_the_wait_is_not_lost() {
        let track = Track::new(Instant::now(), Instant::now());
        track.close(Close::Reuse);
        assert_eq!(track.closing().await, Close::Reuse);
        track.close(Close::Shutdown);
        assert_eq!(track.closing().await, Close::Shutdown);
    }
}
