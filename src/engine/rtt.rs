//! Per-address round-trip time estimation and the timeout derived from it.
//!
//! The same scheme as TCP's retransmission timer (RFC 6298) and nmap's: a
//! smoothed RTT and its mean deviation, with timeout = srtt + 4 × rttvar,
//! held between a floor and a ceiling, starting from a conservative value
//! until the first answer is measured.

use std::time::Duration;

/// Timeout before any round-trip time has been measured.
pub const INITIAL_TIMEOUT: Duration = Duration::from_millis(1000);
/// The timeout never drops below this, for TCP.
pub const TCP_FLOOR: Duration = Duration::from_millis(100);
/// The timeout never drops below this, for UDP: services take time to answer.
pub const UDP_FLOOR: Duration = Duration::from_millis(300);
/// The timeout never rises above this.
pub const CEILING: Duration = Duration::from_millis(3000);

/// Smoothed round-trip time of one path.
#[derive(Clone, Copy, Debug, Default)]
pub struct RttEstimator {
    srtt: Option<f64>,
    rttvar: f64,
    samples: u64,
}

impl RttEstimator {
    /// Feeds one measured round trip.
    pub fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
        self.samples += 1;
    }

    /// The smoothed round-trip time, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt.map(Duration::from_secs_f64)
    }

    /// How long to wait for an answer, given the floor for the transport.
    pub fn timeout(&self, floor: Duration) -> Duration {
        match self.srtt {
            None => INITIAL_TIMEOUT.max(floor),
            Some(s) => Duration::from_secs_f64(s + 4.0 * self.rttvar).clamp(floor, CEILING),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_conservative_then_follows_the_path() {
        let mut e = RttEstimator::default();
        assert_eq!(e.timeout(TCP_FLOOR), INITIAL_TIMEOUT);
        for _ in 0..20 {
            e.sample(Duration::from_micros(80));
        }
        assert_eq!(e.timeout(TCP_FLOOR), TCP_FLOOR);
        assert_eq!(e.timeout(UDP_FLOOR), UDP_FLOOR);
        for _ in 0..50 {
            e.sample(Duration::from_millis(400));
        }
        let t = e.timeout(TCP_FLOOR);
        assert!(
            t >= Duration::from_millis(400) && t < Duration::from_millis(600),
            "{t:?}"
        );
        for _ in 0..50 {
            e.sample(Duration::from_secs(10));
        }
        assert_eq!(e.timeout(TCP_FLOOR), CEILING);
        assert_eq!(e.samples, 120);
    }

    #[test]
    fn variance_widens_the_timeout() {
        let mut steady = RttEstimator::default();
        let mut jittery = RttEstimator::default();
        for i in 0..40 {
            steady.sample(Duration::from_millis(200));
            jittery.sample(Duration::from_millis(if i % 2 == 0 { 50 } else { 350 }));
        }
        assert!(jittery.timeout(TCP_FLOOR) > steady.timeout(TCP_FLOOR));
    }
}
