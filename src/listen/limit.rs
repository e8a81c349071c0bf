//! What the responder answers, and how much, with memory fixed whatever
//! arrives.
//!
//! A UDP hello's source address and port are whatever its sender wrote, so
//! no allowance is keyed to an address alone: a flood forged with a
//! client's address would spend that client's allowance and make its open
//! ports look blocked. Each hello instead spends from the allowance of its
//! (address, source port), kept in a fixed table of [`SLOTS`] buckets
//! chosen by a keyed hash (a random key per run, so no one can aim at
//! another's bucket), and from a total that caps every UDP reply. A client
//! sends each probe from a new socket, hence a new port no forger knows,
//! so a forged flood reaches that client's bucket only by chance and
//! spends only the total: the responder then answers no one until the
//! total refills, says so in every reply it still sends (so a client
//! re-checks before calling a port blocked), and never answers more than
//! the total. A flood faster than the responder reads loses hellos in the
//! kernel before any limit sees them; the kernel counts them, and replies
//! say that too.
//!
//! A TCP peer has completed a handshake, so its address is its own: TCP
//! hellos and connections are limited per address, in a bounded table.
//! A source may hold a share of the connection slots well below all of
//! them, so a handful of addresses holding idle connections cannot fill
//! the pool.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// UDP hellos answered per second in all, once the burst is spent.
pub const TOTAL_RATE: f64 = 10_000.0;
/// UDP hellos that may be answered at once, in all: a client sweeping
/// every UDP port of QuickTime Streaming and Xsan (3 032) many times over.
pub const TOTAL_BURST: f64 = 40_000.0;
/// UDP hellos answered per second from one (address, source port), once
/// its burst is spent: a client sends each probe from a new port, so only
/// a flood from one socket meets this.
pub const SOURCE_RATE: f64 = 32.0;
/// UDP hellos one (address, source port) may have answered at once.
pub const SOURCE_BURST: f64 = 64.0;
/// Buckets for UDP sources; sources whose keyed hash picks the same one
/// share it.
pub const SLOTS: usize = 16_384;
/// How long after the total cap refused a hello (or the kernel lost some)
/// the replies say so.
pub const LIMITING_WINDOW: Duration = Duration::from_secs(10);
/// TCP hellos answered per second per address, once its burst is spent.
pub const TCP_RATE: f64 = 5000.0;
/// TCP hellos an address may have answered at once (a sweep of every TCP
/// port of QuickTime Streaming and Xsan, 16 391).
pub const TCP_BURST: f64 = 25_000.0;
/// TCP connections one address may hold open at once: well below the
/// pool (1 024), so that 16 addresses are needed to fill it.
pub const CONNECTIONS_PER_SOURCE: u32 = 64;
/// TCP addresses tracked at once; past this, new addresses are refused
/// until tracked ones go idle.
pub const MAX_SOURCES: usize = 4096;

/// Why a hello or connection was not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The source spent its allowance.
    RateLimited,
    /// Every UDP source together spent the total allowance.
    Capped,
    /// The source holds as many connections as it may.
    TooManyConnections,
    /// Every connection slot is taken.
    Full,
    /// The table of TCP sources is full of active ones.
    TooManySources,
}

/// An allowance that refills at `rate` per second up to `burst`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
    }
}

/// The allowances of UDP hellos: a bucket per slot of (address, source
/// port), and the total.
#[derive(Debug)]
pub struct UdpLimiter {
    slots: Vec<Bucket>,
    key: RandomState,
    total: Bucket,
    limited_at: Option<Instant>,
}

impl UdpLimiter {
    /// Every allowance full at `now`.
    pub fn new(now: Instant) -> UdpLimiter {
        UdpLimiter {
            slots: vec![Bucket::full(SOURCE_BURST, now); SLOTS],
            key: RandomState::new(),
            total: Bucket::full(TOTAL_BURST, now),
            limited_at: None,
        }
    }

    /// Takes one hello's worth from `source`'s bucket and from the total;
    /// a refused hello takes nothing, so a flood held back by the total
    /// spends no source's bucket.
    pub fn hello(&mut self, source: SocketAddr, now: Instant) -> Result<(), Refusal> {
        let source = SocketAddr::new(source.ip().to_canonical(), source.port());
        let at = (self.key.hash_one(source) % SLOTS as u64) as usize;
        let slot = &mut self.slots[at];
        slot.refill(now, SOURCE_RATE, SOURCE_BURST);
        if slot.tokens < 1.0 {
            return Err(Refusal::RateLimited);
        }
        self.total.refill(now, TOTAL_RATE, TOTAL_BURST);
        if self.total.tokens < 1.0 {
            self.limited_at = Some(now);
            return Err(Refusal::Capped);
        }
        slot.tokens -= 1.0;
        self.total.tokens -= 1.0;
        Ok(())
    }

    /// The kernel dropped datagrams it could not queue (a full socket
    /// buffer): hellos were lost, as if refused.
    pub fn lost(&mut self, now: Instant) {
        self.limited_at = Some(now);
    }

    /// Whether the total refused a hello, or the kernel lost some, within
    /// [`LIMITING_WINDOW`] of `now`.
    pub fn limiting(&self, now: Instant) -> bool {
        self.limited_at
            .is_some_and(|at| now.saturating_duration_since(at) < LIMITING_WINDOW)
    }
}

/// One TCP address's allowance.
#[derive(Debug)]
struct Source {
    hellos: Bucket,
    connections: u32,
}

impl Source {
    /// Whether the address is back to a full allowance and holds nothing:
    /// forgetting it changes nothing.
    fn idle(&self, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.hellos.last)
            .as_secs_f64();
        self.connections == 0 && self.hellos.tokens + elapsed * TCP_RATE >= TCP_BURST
    }
}

/// The allowances of every TCP address seen recently.
#[derive(Debug)]
pub struct TcpLimiter {
    sources: HashMap<IpAddr, Source>,
    per_source: u32,
    max_sources: usize,
}

impl Default for TcpLimiter {
    fn default() -> Self {
        TcpLimiter::new(CONNECTIONS_PER_SOURCE, MAX_SOURCES)
    }
}

impl TcpLimiter {
    /// A limiter with these limits.
    pub fn new(per_source: u32, max_sources: usize) -> TcpLimiter {
        TcpLimiter {
            sources: HashMap::new(),
            per_source,
            max_sources,
        }
    }

    /// The allowance of `source`, made when there is room for it.
    fn source(&mut self, source: IpAddr, now: Instant) -> Result<&mut Source, Refusal> {
        if !self.sources.contains_key(&source) && self.sources.len() >= self.max_sources {
            self.sources.retain(|_, s| !s.idle(now));
            if self.sources.len() >= self.max_sources {
                return Err(Refusal::TooManySources);
            }
        }
        Ok(self.sources.entry(source).or_insert(Source {
            hellos: Bucket::full(TCP_BURST, now),
            connections: 0,
        }))
    }

    /// Takes one hello's worth of allowance from `source`.
    pub fn hello(&mut self, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        let s = self.source(source, now)?;
        s.hellos.refill(now, TCP_RATE, TCP_BURST);
        if s.hellos.tokens >= 1.0 {
            s.hellos.tokens -= 1.0;
            Ok(())
        } else {
            Err(Refusal::RateLimited)
        }
    }

    /// Counts a connection from `source` as open; each `Ok` must be
    /// followed by one [`TcpLimiter::closed`].
    pub fn opened(&mut self, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        let per_source = self.per_source;
        let s = self.source(source, now)?;
        if s.connections >= per_source {
            return Err(Refusal::TooManyConnections);
        }
        s.connections += 1;
        Ok(())
    }

    /// Counts a connection from `source` as closed.
    pub fn closed(&mut self, source: IpAddr) {
        if let Some(s) = self.sources.get_mut(&source) {
            s.connections = s.connections.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn from(n: u32, port: u16) -> SocketAddr {
        SocketAddr::new(ip(n), port)
    }

    fn ms(t: Instant, n: u64) -> Instant {
        t + Duration::from_millis(n)
    }

    #[test]
    fn one_socket_gets_its_burst_then_its_rate_and_another_port_is_untouched() {
        let t0 = Instant::now();
        let mut l = UdpLimiter::new(t0);
        for _ in 0..SOURCE_BURST as usize {
            assert_eq!(l.hello(from(1, 40000), t0), Ok(()));
        }
        assert_eq!(l.hello(from(1, 40000), t0), Err(Refusal::RateLimited));
        // The same address from another port (a client's next probe) is
        // served, unless its keyed slot happens to be the same one.
        let others = (40001..40101)
            .filter(|&p| l.hello(from(1, p), t0).is_ok())
            .count();
        assert!(others >= 95, "{others} of 100 other ports served");
        // A second later, the rate's worth more.
        let t1 = ms(t0, 1000);
        let again = (0..100)
            .filter(|_| l.hello(from(1, 40000), t1).is_ok())
            .count();
        assert_eq!(again, SOURCE_RATE as usize);
        assert!(!l.limiting(t1), "no source's limit is the total's");
    }

    #[test]
    fn a_forged_flood_from_a_clients_address_spends_the_total_not_the_client() {
        let t0 = Instant::now();
        let mut l = UdpLimiter::new(t0);
        let victim = 198;
        // Forged hellos "from" the victim, every port, faster than the total.
        let mut answered = 0u64;
        let mut n = 0u32;
        for step in 0..2000u64 {
            let now = ms(t0, step);
            for _ in 0..100 {
                n += 1;
                if l.hello(from(victim, (n % 60_000) as u16 + 1024), now)
                    .is_ok()
                {
                    answered += 1;
                }
            }
        }
        // Never more than the total allowance over the two seconds.
        assert!(
            answered as f64 <= TOTAL_BURST + 2.0 * TOTAL_RATE + 1.0,
            "{answered}"
        );
        let now = ms(t0, 2000);
        assert!(l.limiting(now));
        let mut quiet = UdpLimiter::new(t0);
        assert!(!quiet.limiting(t0));
        quiet.lost(t0);
        assert!(quiet.limiting(now), "hellos lost in the kernel count too");
        assert!(!l.limiting(now + LIMITING_WINDOW), "the news grows old");
        // The refused hellos spent no bucket: once the total refills, the
        // victim's next probe (a new port) is served, and so is the very
        // port the forger used most.
        let later = now + Duration::from_secs(1);
        assert_eq!(l.hello(from(victim, 51234), later), Ok(()));
        assert_eq!(l.hello(from(victim, 1024), later), Ok(()));
    }

    #[test]
    fn ipv4_mapped_sources_share_the_ipv4_bucket() {
        let t0 = Instant::now();
        let mut l = UdpLimiter::new(t0);
        let v4 = from(1, 5000);
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
        for i in 0..SOURCE_BURST as usize {
            let source = if i % 2 == 0 { v4 } else { mapped };
            assert_eq!(l.hello(source, t0), Ok(()));
        }
        assert_eq!(l.hello(mapped, t0), Err(Refusal::RateLimited));
    }

    #[test]
    fn tcp_hellos_a_burst_then_the_rate() {
        let mut l = TcpLimiter::new(2, 8);
        let t0 = Instant::now();
        for _ in 0..TCP_BURST as usize {
            assert_eq!(l.hello(ip(1), t0), Ok(()));
        }
        assert_eq!(l.hello(ip(1), t0), Err(Refusal::RateLimited));
        assert_eq!(l.hello(ip(2), t0), Ok(()));
        let t1 = ms(t0, 1);
        let again = (0..100).filter(|_| l.hello(ip(1), t1).is_ok()).count();
        assert_eq!(again, (TCP_RATE / 1000.0) as usize);
    }

    #[test]
    fn connections_per_source() {
        let mut l = TcpLimiter::new(2, 8);
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
        let pool = crate::listen::serve::MAX_CONNECTIONS as u32;
        assert!(
            CONNECTIONS_PER_SOURCE * 16 <= pool,
            "a few sources cannot fill the pool"
        );
    }

    #[test]
    fn the_table_of_tcp_sources_is_bounded() {
        let mut l = TcpLimiter::new(2, 3);
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
        let mut l = TcpLimiter::new(2, 1);
        assert_eq!(l.opened(ip(1), t0), Ok(()));
        assert_eq!(l.hello(ip(2), later), Err(Refusal::TooManySources));
        l.closed(ip(1));
        assert_eq!(l.hello(ip(2), later), Ok(()));
    }
}
