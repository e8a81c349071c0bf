//! Per-source limits: how many hellos a source may have answered per second
//! and how many TCP connections it may hold at once, with a bounded table
//! of sources whatever addresses arrive.
//!
//! A legitimate client sweeping every port of QuickTime Streaming and Xsan
//! (19 414 ports) sends one hello per port plus retries for the silent
//! ones, so the burst covers such a sweep; a flood from one address is cut
//! to the sustained rate, and every other source keeps being answered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Hellos answered per second per source, once its burst is spent.
pub const RATE: f64 = 5000.0;
/// Hellos a source may have answered at once before the rate applies.
pub const BURST: f64 = 25_000.0;
/// TCP connections one source may hold open at once.
pub const CONNECTIONS_PER_SOURCE: u32 = 256;
/// Sources tracked at once; past this, new sources are refused until
/// tracked ones go idle.
pub const MAX_SOURCES: usize = 4096;

/// One source's allowance.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    connections: u32,
}

impl Bucket {
    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
    }

    /// Whether the source is back to a full allowance and holds nothing:
    /// forgetting it changes nothing.
    fn idle(&self, now: Instant, rate: f64, burst: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.connections == 0 && self.tokens + elapsed * rate >= burst
    }
}

/// Why a source was not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The source spent its allowance.
    RateLimited,
    /// The source holds as many connections as it may.
    TooManyConnections,
    /// The table of sources is full of active ones.
    TooManySources,
}

/// The allowances of every source seen recently.
#[derive(Debug)]
pub struct Limiter {
    sources: HashMap<IpAddr, Bucket>,
    rate: f64,
    burst: f64,
    per_source: u32,
    max_sources: usize,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(RATE, BURST, CONNECTIONS_PER_SOURCE, MAX_SOURCES)
    }
}

impl Limiter {
    /// A limiter with these limits.
    pub fn new(rate: f64, burst: f64, per_source: u32, max_sources: usize) -> Limiter {
        Limiter {
            sources: HashMap::new(),
            rate,
            burst,
            per_source,
            max_sources,
        }
    }

    /// The bucket of `source`, made when there is room for it.
    fn bucket(&mut self, source: IpAddr, now: Instant) -> Result<&mut Bucket, Refusal> {
        if !self.sources.contains_key(&source) && self.sources.len() >= self.max_sources {
            let (rate, burst) = (self.rate, self.burst);
            self.sources.retain(|_, b| !b.idle(now, rate, burst));
            if self.sources.len() >= self.max_sources {
                return Err(Refusal::TooManySources);
            }
        }
        Ok(self.sources.entry(source).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            connections: 0,
        }))
    }

    /// Takes one hello's worth of allowance from `source`.
    pub fn hello(&mut self, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        let (rate, burst) = (self.rate, self.burst);
        let b = self.bucket(source, now)?;
        b.refill(now, rate, burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Refusal::RateLimited)
        }
    }

    /// Counts a connection from `source` as open; each `Ok` must be
    /// followed by one [`Limiter::closed`].
    pub fn opened(&mut self, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        let per_source = self.per_source;
        let b = self.bucket(source, now)?;
        if b.connections >= per_source {
            return Err(Refusal::TooManyConnections);
        }
        b.connections += 1;
        Ok(())
    }

    /// Counts a connection from `source` as closed.
    pub fn closed(&mut self, source: IpAddr) {
        if let Some(b) = self.sources.get_mut(&source) {
            b.connections = b.connections.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_burst_then_the_rate() {
        let mut l = Limiter::new(10.0, 5.0, 2, 8);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.hello(ip(1), t0), Ok(()));
        }
        assert_eq!(l.hello(ip(1), t0), Err(Refusal::RateLimited));
        // Another source is untouched by the first one's flood.
        assert_eq!(l.hello(ip(2), t0), Ok(()));
        // A tenth of a second later, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.hello(ip(1), t1), Ok(()));
        assert_eq!(l.hello(ip(1), t1), Err(Refusal::RateLimited));
        // The allowance never grows past the burst.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..5 {
            assert_eq!(l.hello(ip(1), t2), Ok(()));
        }
        assert_eq!(l.hello(ip(1), t2), Err(Refusal::RateLimited));
    }

    #[test]
    fn connections_per_source() {
        let mut l = Limiter::new(10.0, 5.0, 2, 8);
        let t = Instant::now();
        assert_eq!(l.opened(ip(1), t), Ok(()));
        assert_eq!(l.opened(ip(1), t), Ok(()));
        assert_eq!(l.opened(ip(1), t), Err(Refusal::TooManyConnections));
        assert_eq!(l.opened(ip(2), t), Ok(()));
        l.closed(ip(1));
        assert_eq!(l.opened(ip(1), t), Ok(()));
        // Closing what was never opened changes nothing.
        l.closed(ip(9));
        l.closed(ip(9));
    }

    #[test]
    fn the_table_of_sources_is_bounded() {
        let mut l = Limiter::new(10.0, 5.0, 2, 3);
        let t0 = Instant::now();
        for n in 0..3 {
            assert_eq!(l.hello(ip(n), t0), Ok(()));
        }
        // Three active sources fill the table.
        assert_eq!(l.hello(ip(3), t0), Err(Refusal::TooManySources));
        assert_eq!(l.sources.len(), 3);
        // Once they are idle (allowance full again), they make room.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(l.hello(ip(3), later), Ok(()));
        assert!(l.sources.len() <= 3);
        // A source holding a connection is never forgotten.
        let mut l = Limiter::new(10.0, 5.0, 2, 1);
        assert_eq!(l.opened(ip(1), t0), Ok(()));
        assert_eq!(l.hello(ip(2), later), Err(Refusal::TooManySources));
        l.closed(ip(1));
        assert_eq!(l.hello(ip(2), later), Ok(()));
    }
}
