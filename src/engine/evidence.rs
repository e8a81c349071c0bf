//! What one attempt found, before it is judged: the evidence the socket work
//! hands to the scheduler, and the deadline an attempt waits under.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::icmp::IcmpError;
use super::outcome::Reason;
use crate::wire::Reply;
use crate::wire::responder::Seen;

/// What an attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// TCP: the connection completed.
    Connected,
    /// TCP: the connection reached itself (the kernel chose the target port
    /// as the source port on loopback): no evidence, probe again.
    SelfConnect,
    /// UDP: the probed port of this machine is held by another of
    /// portprobe's own probe sockets right now, so a datagram sent to it
    /// would prove nothing: probe it again once that socket is gone.
    OwnPort,
    /// TCP: refused by a reset.
    Refused,
    /// A port of a far-side `portprobe listen` answered our hello: over a
    /// TCP connection, or (for a proof) by a UDP datagram from the probed
    /// address and port.
    Responder {
        /// What the answer was.
        answer: Answer,
        /// The address and port this computer sent the hello from (the
        /// socket's own), when known.
        sent_from: Option<SocketAddr>,
    },
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
    /// This host could not send the probe at all: the `errno`.
    LocalError(i32),
    /// Nothing came back before the deadline.
    Silent,
}

/// A responder port's answer to a hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A reply with a valid tag: the responder, and what it saw of the hello.
    Proved(Seen),
    /// The responder's (untagged) notice that it had no room for the
    /// connection: nothing proved, try again later.
    Busy,
    /// TCP: connected, the hello sent, and not a byte nor a close before
    /// the deadline: a responder too busy to answer yet, or another
    /// program that waits for more; try again later.
    Nothing,
    /// Something answered, but not with a valid tag.
    Not,
}

/// The evidence and when it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// What was found.
    pub evidence: Evidence,
    /// Time from the start of the attempt to the evidence.
    pub rtt: Duration,
}

/// When an attempt gives up: its timeout after its start, where the timeout
/// follows the path's measured round-trip times and may change (usually
/// shrink) while the attempt waits.
#[derive(Clone, Debug)]
pub struct Deadline {
    start: Instant,
    timeout: watch::Receiver<Duration>,
    floor: Duration,
}

impl Deadline {
    /// A deadline starting now.
    pub fn new(timeout: watch::Receiver<Duration>) -> Self {
        Deadline {
            start: Instant::now(),
            timeout,
            floor: Duration::ZERO,
        }
    }

    /// When the attempt started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// A deadline of the same timeout, but never shorter than `floor`,
    /// starting now.
    pub fn restart_with_floor(&self, floor: Duration) -> Deadline {
        Deadline {
            floor,
            ..Deadline::new(self.timeout.clone())
        }
    }

    /// Completes when the deadline has passed.
    pub async fn passed(mut self) {
        loop {
            let at = super::later(self.start, self.timeout.borrow_and_update().max(self.floor));
            tokio::select! {
                () = tokio::time::sleep_until(at) => {
                    if Instant::now() >= super::later(self.start, self.timeout.borrow().max(self.floor)) {
                        return;
                    }
                }
                changed = self.timeout.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(at).await;
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_timeout_of_any_length_never_panics() {
        let (_tx, rx) = watch::channel(Duration::MAX);
        let deadline = Deadline::new(rx);
        let waited = tokio::time::timeout(Duration::from_secs(3600), deadline.passed()).await;
        assert!(
            waited.is_err(),
            "a deadline of Duration::MAX does not pass in an hour"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_follows_a_shrinking_timeout() {
        let (tx, rx) = watch::channel(Duration::from_secs(1));
        let deadline = Deadline::new(rx);
        let start = deadline.start();
        let waiting = tokio::spawn(deadline.passed());
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(Duration::from_millis(300)).unwrap();
        waiting.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_floor_holds_a_restarted_deadline_up() {
        let (tx, rx) = watch::channel(Duration::from_millis(100));
        let deadline = Deadline::new(rx).restart_with_floor(Duration::from_secs(1));
        let start = deadline.start();
        let waiting = tokio::spawn(deadline.passed());
        tx.send(Duration::from_millis(50)).unwrap();
        waiting.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_passed_after_a_shrink_ends_at_once() {
        let (tx, rx) = watch::channel(Duration::from_secs(1));
        let deadline = Deadline::new(rx);
        let start = deadline.start();
        let waiting = tokio::spawn(deadline.passed());
        tokio::time::sleep(Duration::from_millis(500)).await;
        tx.send(Duration::from_millis(200)).unwrap();
        waiting.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }
}
