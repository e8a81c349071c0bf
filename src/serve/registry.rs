//! The open HTTP connections, by source address: a new one is admitted
//! within the caps, refused at once when its source holds its share, and,
//! when the connections run out, given the place of those that have waited
//! longest with no request in progress (as nginx reuses idle keep-alive
//! connections, a few at a time), so that a scrape from another source
//! still gets through. Sockets still closing count until they are closed:
//! the cap is on descriptors. Shutdown asks every connection to close.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::metrics::{Closed, Connections};
use super::phase::{Close, Track};

/// The most waiting connections closed at once when the connections run
/// out: an eighth of the cap, up to this.
const REUSE_AT_ONCE: usize = 32;

/// The connections open now.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
    epoch: Instant,
    all: usize,
    per_source: usize,
    /// How many waiting connections are closed at once to make room, and
    /// how many places below the cap that begins.
    reuse: usize,
    /// Told when a socket closes.
    closed: Notify,
    stats: Arc<Connections>,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAdmitted {
    /// To be closed at once, for this reason (already counted).
    Refused(Closed),
    /// The cap is reached with sockets still closing to make room: ask
    /// again once one has ([`Registry::room`]).
    Closing,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// The open connections, in no order: a slice, to scan quickly.
    open: Vec<Entry>,
    /// Where each connection is in `open`.
    at: HashMap<u64, usize>,
    sources: HashMap<IpAddr, usize>,
    /// Sockets open: those in `open`, and those asked to close that have
    /// not closed yet.
    sockets: usize,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    source: IpAddr,
    track: Arc<Track>,
}

/// A connection's place in the registry, given up on drop.
#[derive(Debug)]
pub struct Ticket {
    registry: Arc<Registry>,
    id: u64,
    /// The connection's phase.
    pub track: Arc<Track>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        inner.remove(self.id);
        inner.sockets -= 1;
        self.registry.stats.ended();
        self.registry.closed.notify_one();
    }
}

impl Inner {
    fn insert(&mut self, entry: Entry) {
        *self.sources.entry(entry.source).or_insert(0) += 1;
        self.at.insert(entry.id, self.open.len());
        self.open.push(entry);
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let i = self.at.remove(&id)?;
        let entry = self.open.swap_remove(i);
        if let Some(moved) = self.open.get(i) {
            self.at.insert(moved.id, i);
        }
        if let Some(n) = self.sources.get_mut(&entry.source) {
            *n -= 1;
            if *n == 0 {
                self.sources.remove(&entry.source);
            }
        }
        Some(entry)
    }

    /// Up to `n` of the connections that have waited longest with nothing
    /// in progress, the longest first.
    fn longest_waiting(&self, n: usize) -> Vec<u64> {
        let mut waiting: Vec<(u64, u64)> = self
            .open
            .iter()
            .filter_map(|e| Some((e.track.waiting_since()?, e.id)))
            .collect();
        if waiting.len() > n {
            waiting.select_nth_unstable(n);
            waiting.truncate(n);
        }
        waiting.sort_unstable();
        waiting.into_iter().map(|(_, id)| id).collect()
    }
}

impl Registry {
    /// A registry for at most `all` connections, `per_source` from one
    /// address, counting in `stats`.
    pub fn new(all: usize, per_source: usize, stats: Arc<Connections>) -> Registry {
        let all = all.max(1);
        Registry {
            inner: Mutex::new(Inner::default()),
            epoch: Instant::now(),
            all,
            per_source: per_source.max(1),
            reuse: (all / 8).clamp(1, REUSE_AT_ONCE),
            closed: Notify::new(),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `source` opened at `now`, or says why not.
    pub fn admit(self: &Arc<Self>, source: IpAddr, now: Instant) -> Result<Ticket, NotAdmitted> {
        let source = source.to_canonical();
        let mut inner = self.lock();
        if inner.sources.get(&source).copied().unwrap_or(0) >= self.per_source {
            self.stats.closed(Closed::PerSource);
            return Err(NotAdmitted::Refused(Closed::PerSource));
        }
        if inner.open.len() + self.reuse >= self.all {
            // Room is made a few places before the cap, so that the
            // sockets closing meanwhile fit below it.
            for id in inner.longest_waiting(self.reuse) {
                if let Some(entry) = inner.remove(id) {
                    entry.track.close(Close::Reuse);
                    self.stats.closed(Closed::Reused);
                }
            }
        }
        if inner.sockets >= self.all {
            if inner.sockets > inner.open.len() {
                return Err(NotAdmitted::Closing);
            }
            self.stats.closed(Closed::AllBusy);
            return Err(NotAdmitted::Refused(Closed::AllBusy));
        }
        let id = inner.next;
        inner.next += 1;
        inner.sockets += 1;
        let track = Arc::new(Track::new(self.epoch, now));
        inner.insert(Entry {
            id,
            source,
            track: Arc::clone(&track),
        });
        self.stats.opened();
        Ok(Ticket {
            registry: Arc::clone(self),
            id,
            track,
        })
    }

    /// Completes once a socket has closed since the last time it did (at
    /// once if one has meanwhile).
    pub async fn room(&self) {
        self.closed.notified().await;
    }

    /// Counts a connection that found no room, even once the sockets
    /// closing had time to: it is to be closed at once.
    pub fn no_room(&self) {
        self.stats.closed(Closed::AllBusy);
    }

    /// Asks every connection to close: at once if it is waiting, after its
    /// answer if not.
    pub fn stop(&self) {
        for entry in &self.lock().open {
            entry.track.close(Close::Shutdown);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;
    use crate::serve::phase::{Answering, Phase};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn registry(all: usize, per_source: usize) -> (Arc<Registry>, Arc<Connections>) {
        let stats = Arc::new(Connections::default());
        (
            Arc::new(Registry::new(all, per_source, Arc::clone(&stats))),
            stats,
        )
    }

    #[test]
    fn one_source_gets_its_share_and_an_ipv4_mapped_address_is_the_same_source() {
        let (r, stats) = registry(10, 2);
        let now = Instant::now();
        let _a = r.admit(ip("192.0.2.1"), now).unwrap();
        let _b = r.admit(ip("::ffff:192.0.2.1"), now).unwrap();
        assert_eq!(
            r.admit(ip("192.0.2.1"), now).unwrap_err(),
            NotAdmitted::Refused(Closed::PerSource)
        );
        let c = r.admit(ip("192.0.2.2"), now).unwrap();
        assert_eq!(stats.open(), 3);
        drop(c);
        assert_eq!(stats.open(), 2);
        drop(_a);
        let _d = r.admit(ip("::ffff:192.0.2.1"), now).unwrap();
        assert_eq!(stats.closed_count(Closed::PerSource), 1);
    }

    fn closed(tickets: &[Ticket]) -> Vec<bool> {
        tickets
            .iter()
            .map(|t| t.track.closing().now_or_never().is_some())
            .collect()
    }

    #[test]
    fn when_connections_run_out_those_waiting_longest_make_room() {
        let all = 8 * REUSE_AT_ONCE;
        let (r, stats) = registry(all, all);
        let t0 = Instant::now();
        let secs = |n: usize| t0 + Duration::from_secs(n as u64);
        // The oldest has a request in progress.
        let busy = r.admit(ip("192.0.2.1"), t0).unwrap();
        let _answering = Answering::begin(&busy.track, t0);
        let waiting: Vec<Ticket> = (1..all - REUSE_AT_ONCE)
            .map(|n| r.admit(ip("192.0.2.2"), secs(n)).unwrap())
            .collect();
        assert_eq!(stats.closed_count(Closed::Reused), 0);
        // One, kept alive, went idle again just now.
        let idle = &waiting[0];
        drop(Answering::begin(&idle.track, secs(all)).responded(secs(all)));
        idle.track.flushed(secs(all));
        let fresh = r.admit(ip("2001:db8::1"), secs(all + 1)).unwrap();
        let closed = closed(&waiting);
        assert_eq!(stats.closed_count(Closed::Reused), REUSE_AT_ONCE as u64);
        assert!(!closed[0], "the one idle since just now");
        assert!(closed[1..=REUSE_AT_ONCE].iter().all(|c| *c), "{closed:?}");
        assert!(
            !closed[REUSE_AT_ONCE + 1..].iter().any(|c| *c),
            "{closed:?}"
        );
        assert_eq!(busy.track.get().0, Phase::Handling);
        assert!(fresh.track.get().0.waiting());
        assert_eq!(stats.open(), (all - REUSE_AT_ONCE + 1) as u64);
    }

    #[test]
    fn sockets_still_closing_count_against_the_cap() {
        // A cap of 16 makes room 2 at a time, from 14 connections on.
        let (r, stats) = registry(16, 16);
        let t0 = Instant::now();
        let mut tickets: Vec<Ticket> = (0..14)
            .map(|_| r.admit(ip("192.0.2.1"), t0).unwrap())
            .collect();
        assert_eq!(stats.closed_count(Closed::Reused), 0);
        tickets.push(r.admit(ip("192.0.2.2"), t0).unwrap());
        assert_eq!(stats.closed_count(Closed::Reused), 2);
        tickets.push(r.admit(ip("192.0.2.2"), t0).unwrap());
        assert_eq!(stats.closed_count(Closed::Reused), 2);
        // Two more are asked to close, but the first two have not closed
        // yet: 16 sockets, and no room until they have.
        assert_eq!(
            r.admit(ip("192.0.2.3"), t0).unwrap_err(),
            NotAdmitted::Closing
        );
        assert!(r.room().now_or_never().is_none());
        assert_eq!(stats.closed_count(Closed::Reused), 4);
        let asked = closed(&tickets);
        assert_eq!(asked.iter().filter(|c| **c).count(), 4);
        assert_eq!(stats.open(), 16);
        // Once they have, there is.
        let mut asked = asked.into_iter();
        tickets.retain(|_| !asked.next().unwrap());
        assert_eq!(stats.open(), 12);
        assert!(r.room().now_or_never().is_some());
        assert!(r.admit(ip("192.0.2.3"), t0).is_ok());
        assert_eq!(stats.closed_count(Closed::AllBusy), 0);
    }

    #[test]
    fn with_every_connection_answering_a_new_one_is_refused() {
        let (r, stats) = registry(2, 2);
        let t0 = Instant::now();
        let a = r.admit(ip("192.0.2.1"), t0).unwrap();
        let _a = Answering::begin(&a.track, t0);
        let b = r.admit(ip("192.0.2.1"), t0).unwrap();
        let _b = Answering::begin(&b.track, t0);
        assert_eq!(
            r.admit(ip("192.0.2.4"), t0).unwrap_err(),
            NotAdmitted::Refused(Closed::AllBusy)
        );
        assert_eq!(stats.closed_count(Closed::AllBusy), 1);
        assert_eq!(stats.closed_count(Closed::Reused), 0);
        assert_eq!(stats.open(), 2);
    }

    #[tokio::test]
    async fn stop_asks_every_connection() {
        let (r, _) = registry(3, 3);
        let a = r.admit(ip("192.0.2.1"), Instant::now()).unwrap();
        let b = r.admit(ip("192.0.2.2"), Instant::now()).unwrap();
        r.stop();
        assert_eq!(a.track.closing().await, Close::Shutdown);
        assert_eq!(b.track.closing().await, Close::Shutdown);
    }
}
