//! The bound on probes started per second (`--rate`).

use std::time::Duration;

use tokio::time::Instant;

use super::later;

/// The longest gap between two launches, whatever the rate: beyond it a
/// rate means nothing within any run's `--max-time`.
const LONGEST_GAP: Duration = Duration::from_secs(24 * 3600);

/// Spaces launches evenly at a rate, allowing no burst.
#[derive(Clone, Debug)]
pub struct RateLimit {
    gap: Duration,
    next: Option<Instant>,
}

impl RateLimit {
    /// A limit of `per_second` launches per second. Any positive rate works:
    /// tiny rates give at most one launch a day, huge ones no gap at all.
    pub fn new(per_second: f64) -> Self {
        let gap = if per_second.is_finite() && per_second > 0.0 {
            Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(LONGEST_GAP)
        } else {
            LONGEST_GAP
        };
        RateLimit {
            gap: gap.min(LONGEST_GAP),
            next: None,
        }
    }

    /// Takes a launch slot at `now` if one is free.
    pub fn take(&mut self, now: Instant) -> bool {
        match self.next {
            Some(next) if now < next => false,
            Some(next) => {
                // On time or a little late: keep the cadence. After a pause
                // longer than a gap: start afresh, with no burst to catch up.
                let base = if now - next > self.gap { now } else { next };
                self.next = Some(later(base, self.gap));
                true
            }
            None => {
                self.next = Some(later(now, self.gap));
                true
            }
        }
    }

    /// When the next launch slot frees.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_are_spaced_by_the_rate() {
        let t = Instant::now();
        let mut r = RateLimit::new(10.0);
        assert!(r.take(t));
        assert!(!r.take(t + Duration::from_millis(99)));
        assert!(r.take(t + Duration::from_millis(100)));
        assert_eq!(r.next(), Some(t + Duration::from_millis(200)));
        // After a pause, no burst: the next slot is a gap after now.
        assert!(r.take(t + Duration::from_secs(5)));
        assert!(!r.take(t + Duration::from_millis(5050)));
    }

    #[test]
    fn extreme_rates_never_panic() {
        let t = Instant::now();
        for rate in [
            1e-300,
            1e-19,
            1e-9,
            0.01,
            1e9,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut r = RateLimit::new(rate);
            assert!(r.take(t), "{rate}");
            let _ = r.take(t + Duration::from_secs(1));
            assert!(r.next().is_some());
        }
        let mut slow = RateLimit::new(1e-300);
        slow.take(t);
        assert_eq!(slow.next(), Some(t + LONGEST_GAP));
        let mut fast = RateLimit::new(1e300);
        assert!(fast.take(t) && fast.take(t) && fast.take(t));
    }
}
