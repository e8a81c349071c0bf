//! A scripted Linux ICMP allowance, for the tests of the scheduler and of
//! locating: a burst, refilled at one error a second (or at another rate),
//! as Linux limits the ICMP errors a host or router sends to one
//! destination.

use tokio::time::Instant;

/// One sender's allowance towards this computer.
#[derive(Clone, Debug)]
pub struct Allowance {
    tokens: f64,
    at: Instant,
    burst: f64,
    rate: f64,
}

impl Allowance {
    /// A full allowance of `burst` errors at `at`.
    pub fn new(burst: f64, at: Instant) -> Self {
        Allowance {
            tokens: burst,
            at,
            burst,
            rate: 1.0,
        }
    }

    /// Refilled at `rate` errors a second instead (Linux over IPv6: ten).
    pub fn with_rate(self, rate: f64) -> Self {
        Allowance { rate, ..self }
    }

    /// Linux's: a burst of six.
    pub fn linux(at: Instant) -> Self {
        Allowance::new(6.0, at)
    }

    /// Spends one error at `now` if the allowance has one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Sets the errors left, for a sender that spent some before.
    pub fn set_left(&mut self, tokens: f64) {
        self.tokens = tokens;
    }
}
