//! Each router's ICMP allowance towards this computer, as this process
//! measures it: how many errors (time-exceeded, unreachables) a router will
//! send now, and when it will have the next one.
//!
//! Linux routers keep one bucket per destination for every ICMP error: a
//! burst of six, refilled at one a second over IPv4 and ten a second over
//! IPv6; others have limits of their own, and other traffic of this
//! computer spends the same bucket. So the model starts from Linux's
//! numbers and corrects itself from what answers: an answer is a token the
//! router had; an unanswered canary means its bucket was empty, and the
//! errors it sent since it was last seen empty measure the rate this
//! computer really gets (drifting back to Linux's over minutes, as the
//! traffic that shared the router goes away). Runs that go on at once
//! share one model per router (see `Locator`): each takes tokens before it
//! sends probes that draw errors, so two runs never both count on the
//! router's last one.
//!
//! Pure: every operation is given the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Errors a router sends at once before its limit starts (Linux:
/// `XRLIM_BURST_FACTOR`).
pub(super) const BURST: u32 = 6;
/// The slowest refill the model settles on, errors per second.
const MIN_RATE: f64 = 0.05;
/// The fastest, errors per second.
const MAX_RATE: f64 = 1000.0;
/// How long a rate measured lower takes to drift back to Linux's.
const RECOVERY: Duration = Duration::from_secs(300);
/// Routers remembered at most; the least recently used is forgotten first.
const MAX_ROUTERS: usize = 4096;

/// The refill Linux gives one destination, errors per second: one a second
/// over IPv4 (`icmp_ratelimit` 1000 ms), ten over IPv6 (100 ms).
pub(super) fn linux_rate(v6: bool) -> f64 {
    if v6 { 10.0 } else { 1.0 }
}

/// One router's allowance towards one local address.
#[derive(Clone, Debug)]
pub(super) struct Allowance {
    rate: f64,
    /// Linux's rate, which the model creeps back towards.
    linux: f64,
    tokens: f64,
    at: Instant,
    /// When the bucket was last seen empty, and the errors it sent since.
    emptied: Option<(Instant, u32)>,
}

impl Allowance {
    /// A router not heard from yet: a full burst, at Linux's rate.
    pub(super) fn new(v6: bool, now: Instant) -> Self {
        Allowance {
            rate: linux_rate(v6),
            linux: linux_rate(v6),
            tokens: f64::from(BURST),
            at: now,
            emptied: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.at {
            let elapsed = (now - self.at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(f64::from(BURST));
            // A rate measured lower drifts back towards Linux's over
            // minutes: the traffic that shared the router goes away.
            let back = (elapsed / RECOVERY.as_secs_f64()).min(1.0);
            self.rate += (self.linux - self.rate).max(0.0) * back;
            self.at = now;
        }
    }

    /// The errors the router has for this computer now.
    pub(super) fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        // A token a rounding error short is a token.
        (self.tokens + 1e-6).max(0.0).floor() as u32
    }

    /// When the router will have `n` errors (at most a burst) to spare.
    pub(super) fn ready_at(&mut self, n: u32, now: Instant) -> Instant {
        self.refill(now);
        let missing = f64::from(n.min(BURST)) - self.tokens;
        if missing <= 1e-6 {
            return now;
        }
        // No sooner than a millisecond: the timer's grain.
        now + Duration::from_secs_f64(missing / self.rate).max(Duration::from_millis(1))
    }

    /// Takes `n` errors for probes about to be sent.
    pub(super) fn take(&mut self, n: u32, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - f64::from(n)).max(0.0);
    }

    /// Gives back errors taken for probes sent at `sent` that drew none,
    /// unless the bucket was seen empty since: then what they took is gone
    /// with the rest.
    pub(super) fn give_back(&mut self, n: u32, sent: Instant, now: Instant) {
        self.refill(now);
        if self.emptied.is_some_and(|(at, _)| at > sent) {
            return;
        }
        self.tokens = (self.tokens + f64::from(n)).min(f64::from(BURST));
    }

    /// The router sent `n` errors: counted towards the rate it is measured
    /// at.
    pub(super) fn answered(&mut self, n: u32, now: Instant) {
        self.refill(now);
        if let Some((since, got)) = &mut self.emptied {
            *got += n;
            let elapsed = (now - *since).as_secs_f64();
            if elapsed > 0.0 && f64::from(*got) > 1.0 + elapsed * self.rate {
                // More than the model allowed since it was empty: the
                // router refills faster than thought.
                self.rate = (f64::from(*got - 1) / elapsed).min(MAX_RATE);
            }
        }
    }

    /// A probe the router had to answer (a canary) went unanswered at
    /// `now`: its bucket was empty. When the model had given it time for
    /// an error since it was last seen empty, the errors it sent in that
    /// time measure the rate this computer really gets (with what other
    /// traffic spends): about `got` in that time (at least half an error,
    /// for one that sent none), and the model takes it when it is slower.
    pub(super) fn empty(&mut self, now: Instant) {
        if let Some((since, got)) = self.emptied {
            let elapsed = (now - since).as_secs_f64();
            if elapsed * self.rate >= 1.0 {
                let measured = f64::from(got).max(0.5) / elapsed;
                self.rate = self.rate.min(measured).max(MIN_RATE);
            }
        }
        self.tokens = 0.0;
        self.at = self.at.max(now);
        self.emptied = Some((now, 0));
    }

    /// The refill interval: one error every this long.
    pub(super) fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate)
    }
}

/// Every router's allowance, per local address (each router keeps one
/// bucket per destination).
#[derive(Debug, Default)]
pub(super) struct Budgets {
    routers: HashMap<(IpAddr, IpAddr), Allowance>,
}

impl Budgets {
    /// The allowance of `router` towards `source`.
    pub(super) fn of(&mut self, source: IpAddr, router: IpAddr, now: Instant) -> &mut Allowance {
        if self.routers.len() >= MAX_ROUTERS
            && !self.routers.contains_key(&(source, router))
            && let Some(oldest) = self
                .routers
                .iter()
                .min_by_key(|(_, a)| a.at)
                .map(|(k, _)| *k)
        {
            self.routers.remove(&oldest);
        }
        self.routers
            .entry((source, router))
            .or_insert_with(|| Allowance::new(router.is_ipv6(), now))
    }

    /// A router first heard from at `now` whose hop was silent at `silent`:
    /// its bucket was empty then.
    pub(super) fn found_empty(&mut self, source: IpAddr, router: IpAddr, silent: Instant) {
        if !self.routers.contains_key(&(source, router)) {
            self.of(source, router, silent).empty(silent);
        }
    }

    /// `router` sent an error nothing was taken for (the control's path,
    /// the scan's rejections): one token less.
    pub(super) fn spent(&mut self, source: IpAddr, router: IpAddr, n: u32, now: Instant) {
        let a = self.of(source, router, now);
        a.take(n, now);
        a.answered(n, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1));

    #[test]
    fn a_new_router_has_a_burst_then_one_a_second() {
        let t0 = Instant::now();
        let mut a = Allowance::new(false, t0);
        assert_eq!(a.available(t0), 6);
        a.take(6, t0);
        assert_eq!(a.available(t0), 0);
        assert_eq!(a.ready_at(2, t0), t0 + Duration::from_secs(2));
        assert_eq!(a.available(t0 + Duration::from_millis(2500)), 2);
        let mut v6 = Allowance::new(true, t0);
        v6.take(6, t0);
        assert_eq!(v6.ready_at(1, t0), t0 + Duration::from_millis(100));
    }

    #[test]
    fn an_empty_bucket_after_a_wait_measures_the_rate_this_computer_gets() {
        // Other traffic spends most of the router's errors: in six seconds
        // after it was empty, two answers, then a canary unanswered: about
        // one error every three seconds.
        let t0 = Instant::now();
        let mut a = Allowance::new(false, t0);
        a.empty(t0);
        let t = t0 + Duration::from_secs(6);
        a.answered(2, t);
        a.empty(t);
        assert_eq!(a.interval(), Duration::from_secs(3));
        // An empty bucket right after another says nothing new.
        a.empty(t + Duration::from_millis(10));
        assert_eq!(a.interval(), Duration::from_secs(3));
        // Minutes later it is back to Linux's rate.
        let later = t + Duration::from_secs(60);
        a.available(later);
        assert!(a.interval() < Duration::from_secs(3));
        a.available(later + RECOVERY);
        assert_eq!(a.interval(), Duration::from_secs(1));
    }

    #[test]
    fn more_answers_than_modelled_raise_the_rate() {
        let t0 = Instant::now();
        let mut a = Allowance::new(false, t0);
        a.empty(t0);
        a.answered(5, t0 + Duration::from_secs(1));
        assert_eq!(a.interval(), Duration::from_millis(250));
    }

    #[test]
    fn taking_and_giving_back_stay_within_the_burst() {
        let t0 = Instant::now();
        let mut b = Budgets::default();
        let a = b.of(ROUTER, ROUTER, t0);
        a.take(4, t0);
        a.give_back(10, t0, t0);
        assert_eq!(a.available(t0), 6);
        b.spent(ROUTER, ROUTER, 9, t0);
        assert_eq!(b.of(ROUTER, ROUTER, t0).available(t0), 0);
    }

    #[test]
    fn a_router_found_on_a_retry_was_empty_when_its_hop_was_silent() {
        let t0 = Instant::now();
        let mut b = Budgets::default();
        b.found_empty(ROUTER, ROUTER, t0);
        let t1 = t0 + Duration::from_secs(1);
        b.spent(ROUTER, ROUTER, 1, t1);
        assert_eq!(b.of(ROUTER, ROUTER, t1).available(t1), 0);
        assert_eq!(
            b.of(ROUTER, ROUTER, t1).ready_at(1, t1),
            t1 + Duration::from_secs(1)
        );
    }
}
