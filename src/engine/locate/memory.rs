//! Located answers kept across runs: a firewall's place does not change
//! between two scrapes of an exporter or two rounds of `--watch`, and
//! locating it again would spend the routers' ICMP errors, which every run
//! from this computer to any target behind them shares.
//!
//! An answer is kept per local address and target, transport, the run of
//! ports that behaved alike (first and last port) and that behaviour (the
//! scan's state, reason and who sent the reason). It answers the same
//! behaviour on the same ports, or on part of them, for [`REUSE`]; then
//! it is still given (with its age) but re-checked when the routers have
//! errors to spare, and forgotten after [`KEEP`]. A scan that shows any of
//! its ports behaving otherwise forgets it at once. The path of each
//! target is kept the same way.
//!
//! Pure: every operation is given the time; bounded in size.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{Located, Route};
use crate::engine::outcome::{PortResult, Reason, State};
use crate::port::Transport;

/// How long an answer is given without being checked again.
pub const REUSE: Duration = Duration::from_secs(5 * 60);
/// How long an answer is kept at all (re-checked after [`REUSE`]).
pub const KEEP: Duration = Duration::from_secs(30 * 60);
/// Answers kept at most, over every target; the oldest go first.
const MAX_ANSWERS: usize = 4096;
/// Paths kept at most.
const MAX_ROUTES: usize = 1024;

/// How a run of ports behaved in the scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Outcome {
    pub state: State,
    pub reason: Reason,
    pub reason_from: Option<IpAddr>,
}

impl Outcome {
    pub(super) fn of(r: &PortResult) -> Self {
        Outcome {
            state: r.state,
            reason: r.reason,
            reason_from: r.reason_from,
        }
    }
}

/// A run of ports that behaved alike: what is located.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Behaviour {
    pub transport: Transport,
    pub first: u16,
    pub last: u16,
    pub outcome: Outcome,
}

/// What locating made of a behaviour: where it stops, and the outcome its
/// ports take from that (a UDP port a router drops is blocked; a rejection
/// the scan missed, because the router was out of ICMP errors then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Found {
    pub located: Located,
    pub outcome: Outcome,
}

/// Where the answer is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Given as it is.
    Fresh,
    /// Given, and to be checked again when the routers have errors to
    /// spare.
    Stale,
}

/// An answer recalled: what was found, how long ago, and whether it is
/// still given as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Recalled {
    pub found: Found,
    pub age: Duration,
    pub freshness: Freshness,
}

#[derive(Clone, Debug)]
struct Entry {
    source: IpAddr,
    target: IpAddr,
    behaviour: Behaviour,
    found: Found,
    at: Instant,
}

/// The answers and paths kept.
#[derive(Debug, Default)]
pub(super) struct Memory {
    answers: Vec<Entry>,
    routes: Vec<(IpAddr, IpAddr, Route, Instant)>,
}

fn freshness(age: Duration) -> Option<Freshness> {
    if age < REUSE {
        Some(Freshness::Fresh)
    } else if age < KEEP {
        Some(Freshness::Stale)
    } else {
        None
    }
}

impl Memory {
    /// Forgets what is too old, and every answer of `target` that a port
    /// of this scan contradicts: a port in its run that behaved otherwise.
    /// `results` are the scan's results for `target`, sorted by transport
    /// and port.
    pub(super) fn forget_changed(
        &mut self,
        source: IpAddr,
        target: IpAddr,
        results: &[&PortResult],
        now: Instant,
    ) {
        self.answers.retain(|e| {
            if freshness(now.saturating_duration_since(e.at)).is_none() {
                return false;
            }
            if e.source != source || e.target != target {
                return true;
            }
            let b = e.behaviour;
            let start = results.partition_point(|r| (r.transport, r.port) < (b.transport, b.first));
            results[start..]
                .iter()
                .take_while(|r| r.transport == b.transport && r.port <= b.last)
                .all(|r| Outcome::of(r) == b.outcome)
        });
        self.routes
            .retain(|(_, _, _, at)| freshness(now.saturating_duration_since(*at)).is_some());
    }

    /// The answer kept for `behaviour` of `target` (one whose run holds
    /// this one), its age and freshness.
    pub(super) fn recall(
        &self,
        source: IpAddr,
        target: IpAddr,
        behaviour: &Behaviour,
        now: Instant,
    ) -> Option<Recalled> {
        self.answers
            .iter()
            .filter(|e| {
                e.source == source
                    && e.target == target
                    && e.behaviour.transport == behaviour.transport
                    && e.behaviour.outcome == behaviour.outcome
                    && e.behaviour.first <= behaviour.first
                    && behaviour.last <= e.behaviour.last
            })
            .max_by_key(|e| e.at)
            .and_then(|e| {
                let age = now.saturating_duration_since(e.at);
                freshness(age).map(|freshness| Recalled {
                    found: e.found,
                    age,
                    freshness,
                })
            })
    }

    /// Keeps `found` for `behaviour`, in place of any answer for ports of
    /// its run.
    pub(super) fn remember(
        &mut self,
        source: IpAddr,
        target: IpAddr,
        behaviour: Behaviour,
        found: Found,
        now: Instant,
    ) {
        self.answers.retain(|e| {
            !(e.source == source
                && e.target == target
                && e.behaviour.transport == behaviour.transport
                && e.behaviour.first <= behaviour.last
                && behaviour.first <= e.behaviour.last)
        });
        if self.answers.len() >= MAX_ANSWERS
            && let Some(oldest) = (0..self.answers.len()).min_by_key(|&i| self.answers[i].at)
        {
            self.answers.swap_remove(oldest);
        }
        self.answers.push(Entry {
            source,
            target,
            behaviour,
            found,
            at: now,
        });
    }

    /// The path kept for `target`, its age and freshness.
    pub(super) fn route(
        &self,
        source: IpAddr,
        target: IpAddr,
        now: Instant,
    ) -> Option<(Route, Duration, Freshness)> {
        self.routes
            .iter()
            .find(|(s, t, _, _)| *s == source && *t == target)
            .and_then(|(_, _, route, at)| {
                let age = now.saturating_duration_since(*at);
                freshness(age).map(|f| (route.clone(), age, f))
            })
    }

    /// Keeps the path to `target`.
    pub(super) fn remember_route(
        &mut self,
        source: IpAddr,
        target: IpAddr,
        route: Route,
        now: Instant,
    ) {
        self.routes
            .retain(|(s, t, _, _)| !(*s == source && *t == target));
        if self.routes.len() >= MAX_ROUTES
            && let Some(oldest) = (0..self.routes.len()).min_by_key(|&i| self.routes[i].3)
        {
            self.routes.swap_remove(oldest);
        }
        self.routes.push((source, target, route, now));
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::engine::Probe;
    use crate::engine::Stop;

    const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

    fn dropped() -> Outcome {
        Outcome {
            state: State::Filtered,
            reason: Reason::NoResponse,
            reason_from: None,
        }
    }

    fn behaviour(first: u16, last: u16) -> Behaviour {
        Behaviour {
            transport: Transport::Tcp,
            first,
            last,
            outcome: dropped(),
        }
    }

    fn found() -> Found {
        Found {
            located: Located {
                after_hop: 1,
                after: Some(ROUTER),
                before_hop: 2,
                before: Some(HOST),
                how: Stop::AtHost,
                age: Duration::ZERO,
            },
            outcome: dropped(),
        }
    }

    fn port(port: u16, state: State, reason: Reason) -> PortResult {
        PortResult {
            attempts: 2,
            ..PortResult::new(HOST, Probe::Tcp, port, state, reason)
        }
    }

    #[test]
    fn an_answer_is_given_for_its_run_and_part_of_it_until_it_is_too_old() {
        let t0 = Instant::now();
        let mut m = Memory::default();
        m.remember(SOURCE, HOST, behaviour(49152, 65535), found(), t0);
        let later = t0 + Duration::from_secs(15);
        let r = m
            .recall(SOURCE, HOST, &behaviour(49152, 65535), later)
            .unwrap();
        assert_eq!(
            (r.found, r.age, r.freshness),
            (found(), Duration::from_secs(15), Freshness::Fresh)
        );
        assert!(
            m.recall(SOURCE, HOST, &behaviour(50000, 50010), later)
                .is_some()
        );
        assert!(
            m.recall(SOURCE, HOST, &behaviour(40000, 50010), later)
                .is_none()
        );
        assert!(
            m.recall(HOST, HOST, &behaviour(49152, 65535), later)
                .is_none()
        );
        let rejected = Behaviour {
            outcome: Outcome {
                reason: Reason::AdminProhibited,
                ..dropped()
            },
            ..behaviour(49152, 65535)
        };
        assert!(m.recall(SOURCE, HOST, &rejected, later).is_none());
        let stale = t0 + REUSE;
        assert_eq!(
            m.recall(SOURCE, HOST, &behaviour(49152, 65535), stale)
                .map(|x| x.freshness),
            Some(Freshness::Stale)
        );
        assert!(
            m.recall(SOURCE, HOST, &behaviour(49152, 65535), t0 + KEEP)
                .is_none()
        );
    }

    #[test]
    fn a_port_of_the_run_that_behaves_otherwise_forgets_the_answer() {
        let t0 = Instant::now();
        let mut m = Memory::default();
        m.remember(SOURCE, HOST, behaviour(5900, 5900), found(), t0);
        m.remember(SOURCE, HOST, behaviour(49152, 65535), found(), t0);
        let same: Vec<PortResult> = vec![
            port(5900, State::Filtered, Reason::NoResponse),
            port(60000, State::Filtered, Reason::NoResponse),
        ];
        m.forget_changed(SOURCE, HOST, &same.iter().collect::<Vec<_>>(), t0);
        assert!(m.recall(SOURCE, HOST, &behaviour(5900, 5900), t0).is_some());
        let changed: Vec<PortResult> = vec![
            port(5900, State::Filtered, Reason::NoResponse),
            port(60000, State::Open, Reason::SynAck),
        ];
        m.forget_changed(SOURCE, HOST, &changed.iter().collect::<Vec<_>>(), t0);
        assert!(m.recall(SOURCE, HOST, &behaviour(5900, 5900), t0).is_some());
        assert!(
            m.recall(SOURCE, HOST, &behaviour(49152, 65535), t0)
                .is_none()
        );
    }

    #[test]
    fn a_new_answer_replaces_the_ones_it_overlaps_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut m = Memory::default();
        m.remember(SOURCE, HOST, behaviour(100, 200), found(), t0);
        m.remember(SOURCE, HOST, behaviour(150, 300), found(), t0);
        assert!(m.recall(SOURCE, HOST, &behaviour(100, 120), t0).is_none());
        for i in 0..(MAX_ANSWERS as u16 + 10) {
            m.remember(
                SOURCE,
                HOST,
                behaviour(i * 2 + 1000, i * 2 + 1000),
                found(),
                t0,
            );
        }
        assert_eq!(m.answers.len(), MAX_ANSWERS);
        let route = Route::default();
        for i in 0..(MAX_ROUTES as u32 + 5) {
            m.remember_route(SOURCE, IpAddr::V4(Ipv4Addr::from(i)), route.clone(), t0);
        }
        assert_eq!(m.routes.len(), MAX_ROUTES);
    }
}
