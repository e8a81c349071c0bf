//! What the scheduler knows about the path to one address: its measured
//! round-trip time and the timeouts derived from it (published to every
//! attempt waiting on that address), whether it loses packets, whether the
//! address answered at all, and its ICMP rate-limit rounds.

use std::time::Duration;

use tokio::sync::watch;

use super::Target;
use super::pacing::Pacing;
use super::rtt::{RttEstimator, TCP_FLOOR, UDP_FLOOR};
use crate::port::Transport;
use crate::wire::ProbeContext;

/// Attempts per port once the path has shown loss (unless `--retries` is given).
pub const LOSSY_ATTEMPTS: u32 = 6;
/// Attempts per port on a path without loss (unless `--retries` is given).
pub const DEFAULT_ATTEMPTS: u32 = 2;

fn floor(transport: Transport) -> Duration {
    match transport {
        Transport::Tcp => TCP_FLOOR,
        Transport::Udp => UDP_FLOOR,
    }
}

fn index(t: Transport) -> usize {
    match t {
        Transport::Tcp => 0,
        Transport::Udp => 1,
    }
}

/// One address and its path.
#[derive(Debug)]
pub struct Path {
    /// The address.
    pub target: Target,
    /// What wire requests need to know about it.
    pub context: ProbeContext,
    /// The address is this machine's own (loopback or a local interface).
    pub local: bool,
    rtt: RttEstimator,
    fixed: Option<Duration>,
    timeouts: [watch::Sender<Duration>; 2],
    /// A port answered only on a retry.
    pub loss_seen: bool,
    /// The address itself answered some port (open or closed).
    pub answered: bool,
    /// The ICMP rate-limit rounds.
    pub pacing: Pacing,
}

impl Path {
    /// A path with no measurement yet; `fixed` is `--timeout`.
    pub fn new(
        target: Target,
        context: ProbeContext,
        local: bool,
        fixed: Option<Duration>,
        max_rounds: u32,
    ) -> Self {
        let rtt = RttEstimator::default();
        Path {
            target,
            context,
            local,
            rtt,
            fixed,
            timeouts: [Transport::Tcp, Transport::Udp]
                .map(|t| watch::Sender::new(fixed.unwrap_or_else(|| rtt.timeout(floor(t))))),
            loss_seen: false,
            answered: false,
            pacing: Pacing::new(max_rounds),
        }
    }

    /// Attempts a port gets before it counts as silent.
    pub fn max_attempts(&self, retries: Option<u32>) -> u32 {
        match retries {
            Some(r) => r.saturating_add(1),
            None if self.loss_seen => LOSSY_ATTEMPTS,
            None => DEFAULT_ATTEMPTS,
        }
    }

    /// The current timeout for `transport`, which follows every change.
    pub fn timeout(&self, transport: Transport) -> watch::Receiver<Duration> {
        self.timeouts[index(transport)].subscribe()
    }

    /// Feeds a measured round trip and republishes the timeouts when they
    /// change by more than a tenth (waiting attempts wake on each change).
    pub fn sample(&mut self, rtt: Duration) {
        if self.fixed.is_some() {
            return;
        }
        self.rtt.sample(rtt);
        for t in [Transport::Tcp, Transport::Udp] {
            let new = self.rtt.timeout(floor(t));
            self.timeouts[index(t)].send_if_modified(|old| {
                let change = old.as_secs_f64() - new.as_secs_f64();
                if change.abs() > old.as_secs_f64() / 10.0 {
                    *old = new;
                    true
                } else {
                    false
                }
            });
        }
    }

    /// The smoothed round-trip time, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }
}
