//! What the engine heard and did not count, kept for a support engineer:
//! a datagram from another address, a reply to another request, one of
//! portprobe's own datagrams. The engine drops them (a reply counts only
//! when it matches the request and comes from the target); this log says
//! which, so a port that came out `open|filtered` can be explained. It is
//! bounded: the first [`KEPT`] are kept, the rest only counted.

use std::net::SocketAddr;
use std::sync::Mutex;

/// How many ignored datagrams a run keeps; past that, it only counts them.
pub const KEPT: usize = 100;

/// Why a datagram did not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// It came from one of portprobe's own sockets (probing this machine).
    OwnSocket,
    /// It is the protocol's reply, but to another request: its IDs, or
    /// where it came from, do not match this one.
    NotOurs,
    /// It answers another request of the same protocol (a late reply to an
    /// earlier attempt, or another client's).
    AnotherRequest,
    /// Not a reply of the protocol, and not from the probed address and
    /// port, where anything at all would count.
    Stranger,
}

/// One datagram the engine did not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// The probed address and port.
    pub target: SocketAddr,
    /// Where the datagram came from.
    pub from: SocketAddr,
    /// Its length in bytes.
    pub len: usize,
    /// Why it did not count.
    pub why: Why,
}

/// The ignored datagrams of a run: the first [`KEPT`], and how many more.
#[derive(Debug, Default)]
pub struct Log {
    inner: Mutex<(Vec<Ignored>, usize)>,
}

impl Log {
    /// Records one ignored datagram.
    pub fn push(&self, ignored: Ignored) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.0.len() < KEPT {
            inner.0.push(ignored);
        } else {
            inner.1 = inner.1.saturating_add(1);
        }
    }

    /// What was recorded, and how many more were only counted; the log is
    /// empty afterwards.
    pub fn take(&self) -> (Vec<Ignored>, usize) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_first_and_counts_the_rest() {
        let log = Log::default();
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        for port in 1..=(KEPT as u16 + 5) {
            log.push(Ignored {
                target: at(53),
                from: at(port),
                len: 12,
                why: Why::Stranger,
            });
        }
        let (kept, more) = log.take();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].from, at(1));
        assert_eq!(more, 5);
        assert_eq!(log.take(), (Vec::new(), 0));
    }
}
