//! The open HTTP connections, by source address: a new one is admitted
//! within the caps, refused at once when its source holds its share, and,
//! when every connection is taken, given the place of those that have
//! waited longest with no request in progress (as nginx reuses idle
//! keep-alive connections, a few at a time), so that a scrape from another
//! source still gets through. Shutdown asks every connection to close.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

use super::metrics::{Closed, Connections};
use super::phase::{Close, Track};

/// How many waiting connections are closed at once when every connection
/// is taken.
const REUSE_AT_ONCE: usize = 32;

/// The connections open now.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
    epoch: Instant,
    all: usize,
    per_source: usize,
    stats: Arc<Connections>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// The open connections, in no order: a slice, to scan quickly.
    open: Vec<Entry>,
    /// Where each connection is in `open`.
    at: HashMap<u64, usize>,
    sources: HashMap<IpAddr, usize>,
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
        self.registry.stats.ended();
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
        Registry {
            inner: Mutex::new(Inner::default()),
            epoch: Instant::now(),
            all: all.max(1),
            per_source: per_source.max(1),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `source` opened at `now`, or says why it is
    /// to be closed at once.
    pub fn admit(self: &Arc<Self>, source: IpAddr, now: Instant) -> Result<Ticket, Closed> {
        let source = source.to_canonical();
        let mut inner = self.lock();
        let refused = if inner.sources.get(&source).copied().unwrap_or(0) >= self.per_source {
            Some(Closed::PerSource)
        } else if inner.open.len() >= self.all {
            // As nginx does, a few at once, so that a flood of new
            // connections does not scan them all for each one.
            let reused = inner.longest_waiting(REUSE_AT_ONCE);
            for id in &reused {
                if let Some(entry) = inner.remove(*id) {
                    entry.track.close(Close::Reuse);
                    self.stats.closed(Closed::Reused);
                }
            }
            reused.is_empty().then_some(Closed::AllBusy)
        } else {
            None
        };
        if let Some(why) = refused {
            self.stats.closed(why);
            return Err(why);
        }
        let id = inner.next;
        inner.next += 1;
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
            Closed::PerSource
        );
        let c = r.admit(ip("192.0.2.2"), now).unwrap();
        assert_eq!(stats.open(), 3);
        drop(c);
        assert_eq!(stats.open(), 2);
        drop(_a);
        let _d = r.admit(ip("::ffff:192.0.2.1"), now).unwrap();
        assert_eq!(stats.closed_count(Closed::PerSource), 1);
    }

    #[test]
    fn when_all_are_taken_those_waiting_longest_make_room() {
        let all = REUSE_AT_ONCE + 8;
        let (r, stats) = registry(all, all);
        let t0 = Instant::now();
        let secs = |n: usize| t0 + Duration::from_secs(n as u64);
        // The oldest has a request in progress.
        let busy = r.admit(ip("192.0.2.1"), t0).unwrap();
        let _answering = Answering::begin(&busy.track, t0);
        let waiting: Vec<Ticket> = (1..all)
            .map(|n| r.admit(ip("192.0.2.2"), secs(n)).unwrap())
            .collect();
        // One, kept alive, went idle again just now.
        let idle = &waiting[0];
        drop(Answering::begin(&idle.track, secs(all)).responded(secs(all)));
        idle.track.flushed(secs(all));
        let fresh = r.admit(ip("2001:db8::1"), secs(all + 1)).unwrap();
        let closed: Vec<bool> = waiting
            .iter()
            .map(|t| t.track.closing().now_or_never().is_some())
            .collect();
        assert_eq!(stats.closed_count(Closed::Reused), REUSE_AT_ONCE as u64);
        assert!(!closed[0], "the one idle since just now");
        assert!(closed[1..=REUSE_AT_ONCE].iter().all(|c| *c), "{closed:?}");
        assert!(
            !closed[REUSE_AT_ONCE + 1..].iter().any(|c| *c),
            "{closed:?}"
        );
        assert_eq!(busy.track.get().0, Phase::Handling);
        // Their tasks still hold them until they close, but they no longer
        // count: there is room for as many again.
        let more: Vec<Ticket> = (0..REUSE_AT_ONCE - 1)
            .map(|n| r.admit(ip("192.0.2.3"), secs(all + 2 + n)).unwrap())
            .collect();
        assert_eq!(stats.closed_count(Closed::Reused), REUSE_AT_ONCE as u64);
        // Full again: the next one makes room again.
        let _last = r.admit(ip("192.0.2.3"), secs(all * 2)).unwrap();
        assert_eq!(stats.closed_count(Closed::Reused), 2 * REUSE_AT_ONCE as u64);
        assert_eq!(busy.track.get().0, Phase::Handling);
        drop((waiting, more, fresh));
        // Every connection has a request in progress: the new one is
        // refused.
        let (r, stats) = registry(2, 2);
        let a = r.admit(ip("192.0.2.1"), t0).unwrap();
        let b = r.admit(ip("192.0.2.1"), t0).unwrap();
        let _busy = (
            Answering::begin(&a.track, t0),
            Answering::begin(&b.track, t0),
        );
        assert_eq!(r.admit(ip("192.0.2.4"), t0).unwrap_err(), Closed::AllBusy);
        assert_eq!(stats.closed_count(Closed::AllBusy), 1);
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
