//! One behaviour's search down the path, as a pure state machine: what each
//! answer means, which hop to try next, and where the port is located when
//! the search ends. No socket, no clock.
//!
//! The search goes down from the last router that answers the control,
//! one answering hop at a time: a probe of the port at TTL k that the
//! router at hop k answers reached it; one it leaves silent while it
//! answers the control sent right after (the canary) never reached it.
//! Going down costs each router errors only for the ports that reach it.
//! A hop whose router stays out of errors for [`PROBES_PER_HOP`] tries is
//! passed over, and the answer says what could not be confirmed.
//!
//! A port that passes hop k's TTL check and gets no answer further could
//! still be rejected by hop k's forward filter with an error the router
//! had no allowance for: a probe at the system's TTL, followed by a canary
//! at hop k, rules that out (the port is *vouched* at hop k).

use std::net::IpAddr;
use std::time::Duration;

use super::{Located, PROBES_PER_HOP, Route, Stop};
use crate::engine::evidence::Evidence;
use crate::engine::outcome::Reason;

/// What one probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// A router's time-exceeded.
    Expired(Option<IpAddr>),
    /// An ICMP error other than time-exceeded, and who sent it.
    Rejected(Option<IpAddr>, Reason),
    /// The target itself answered.
    Target,
    /// Nothing before the timeout.
    Silent,
    /// This computer could not send it.
    NotSent,
}

impl Answer {
    /// The router or host that spent an ICMP error on this answer.
    pub(super) fn sender(self) -> Option<IpAddr> {
        match self {
            Answer::Expired(from) | Answer::Rejected(from, _) => from,
            _ => None,
        }
    }
}

pub(super) fn answer(evidence: &Evidence, target: IpAddr) -> Answer {
    match evidence {
        Evidence::Icmp(e) => match Reason::from_icmp(e.icmp) {
            Reason::TimeExceeded => Answer::Expired(e.from),
            Reason::PortUnreachable if e.from.is_none_or(|f| f == target) => Answer::Target,
            reason => Answer::Rejected(e.from, reason),
        },
        Evidence::Connected
        | Evidence::Responder { .. }
        | Evidence::Refused
        | Evidence::SelfConnect
        | Evidence::Datagram { .. } => Answer::Target,
        Evidence::Silent => Answer::Silent,
        Evidence::Local(_) | Evidence::LocalError(_) | Evidence::OwnPort => Answer::NotSent,
    }
}

/// An ICMP rejection of the port, and the TTL of the probe that drew it
/// (`None`: the system's, as in the scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rejection {
    pub from: Option<IpAddr>,
    pub reason: Reason,
    pub ttl: Option<u8>,
}

/// What is known of one behaviour's sample port.
#[derive(Clone, Debug, Default)]
pub(super) struct Search {
    /// The hop to try next (0: the search is over).
    ttl: u8,
    /// The highest hop the port is known to reach (0: this computer).
    lo: u8,
    /// The lowest hop it is known not to reach.
    hi: Option<u8>,
    /// Confirmations at `ttl` a router out of errors left unsettled.
    tries: u32,
    /// Hops passed over unsettled.
    skipped: u64,
    /// Hops at which a probe at the system's TTL was vouched.
    vouched: u64,
    /// Tries to vouch the port at its last hop.
    vouch_tries: u32,
    /// It was rejected with an ICMP error.
    pub rejected: Option<Rejection>,
    /// The target answered it: it gets through now.
    pub through: bool,
}

fn bit(hop: u8) -> u64 {
    1u64 << u32::from(hop.min(63))
}

impl Search {
    /// A search from the last router of `route` that answers; one already
    /// `rejected` (by the scan) keeps that.
    pub(super) fn new(route: &Route, rejected: Option<Rejection>) -> Self {
        Search {
            ttl: top(route),
            rejected,
            ..Search::default()
        }
    }

    /// The hop to probe next, if the search goes on.
    pub(super) fn hop(&self) -> Option<u8> {
        (self.ttl > 0 && !self.through).then_some(self.ttl)
    }

    /// The hop the port still needs to be vouched at (its last hop), once
    /// the search is over.
    pub(super) fn to_vouch(&self) -> Option<u8> {
        let wanted = self.hop().is_none()
            && !self.through
            && self.rejected.is_none()
            && self.lo >= 1
            && self.vouched & bit(self.lo) == 0
            && self.vouch_tries < PROBES_PER_HOP;
        wanted.then_some(self.lo)
    }

    /// Whether the port is vouched at `hop`.
    pub(super) fn is_vouched(&self, hop: u8) -> bool {
        self.vouched & bit(hop) != 0
    }

    /// A probe at the system's TTL went unanswered while hop `hop`'s
    /// router answered the canary right after: it does not reject it.
    pub(super) fn vouch(&mut self, hop: u8) {
        self.vouched |= bit(hop);
    }

    /// A try to vouch the port at its last hop found the router out of
    /// errors.
    pub(super) fn vouch_failed(&mut self) {
        self.vouch_tries += 1;
    }

    /// The router at `ttl` answered the probe: the port reaches it, and the
    /// search (down from above) is over.
    pub(super) fn expired(&mut self, ttl: u8) {
        self.lo = self.lo.max(ttl);
        self.ttl = 0;
    }

    /// The probe at `rejection.ttl` (`None`: the system's) was rejected.
    /// A sender on the path places it; one that is not leaves the search
    /// going down from below that TTL, to find how far the port gets.
    pub(super) fn reject(&mut self, rejection: Rejection, route: &Route, target: IpAddr) {
        self.rejected = Some(rejection);
        if hop_of(route, target, rejection.from).is_some() {
            self.ttl = 0;
        } else if let Some(ttl) = rejection.ttl {
            self.ttl = below(route, ttl).min(self.ttl);
        }
    }

    /// The target answered: the port gets through.
    pub(super) fn through(&mut self) {
        self.through = true;
        self.ttl = 0;
    }

    /// The probe at `ttl` went unanswered while its router answered the
    /// canary right after: the port never reaches that hop.
    pub(super) fn not_reached(&mut self, ttl: u8, route: &Route) {
        self.hi = Some(self.hi.map_or(ttl, |h| h.min(ttl)));
        self.tries = 0;
        self.ttl = below(route, ttl);
    }

    /// The probe and the canary at `ttl` went unanswered: the router was
    /// out of errors. Returns whether the hop is passed over.
    pub(super) fn unsettled(&mut self, ttl: u8, route: &Route) -> bool {
        self.tries += 1;
        if self.tries < PROBES_PER_HOP {
            return false;
        }
        self.tries = 0;
        self.skipped |= bit(ttl);
        self.ttl = below(route, ttl);
        true
    }

    /// Gives up: what is known is the answer.
    pub(super) fn stop(&mut self) {
        self.ttl = 0;
        self.vouch_tries = PROBES_PER_HOP;
    }

    /// Where the port stops, once the search is over (`None` when it got
    /// through after all).
    pub(super) fn located(&self, route: &Route, target: IpAddr) -> Option<Located> {
        if self.through {
            return None;
        }
        let n = route.hops.len() as u8;
        let at = |after_hop: u8, before_hop: u8, how: Stop| Located {
            after_hop,
            after: address_at(route, target, after_hop),
            before_hop,
            before: address_at(route, target, before_hop),
            how,
            age: Duration::ZERO,
        };
        let lo = self.lo;
        let unconfirmed = at(lo, lo + 1, Stop::Unconfirmed);
        if let Some(r) = self.rejected {
            let placed = hop_of(route, target, r.from).or_else(|| {
                // The only hop that answers no one between the last one it
                // reaches and the probe that drew the rejection.
                let bound = r.ttl.unwrap_or(n + 1).min(self.hi.unwrap_or(u8::MAX));
                let mut silent =
                    (lo + 1..=bound.min(n)).filter(|&h| address_at(route, target, h).is_none());
                match (silent.next(), silent.next()) {
                    (Some(h), None) if r.from.is_some() => Some(h),
                    _ => None,
                }
            });
            return Some(match placed {
                Some(h) => Located {
                    after: r.from,
                    ..at(h, h + 1, Stop::Rejected(r.reason))
                },
                None => unconfirmed,
            });
        }
        if !route.reached {
            return Some(unconfirmed);
        }
        // Hops between the last one reached and `upto` passed over
        // unsettled.
        let unsettled = |upto: u8| (lo + 1..upto).any(|h| self.skipped & bit(h) != 0);
        Some(match self.hi {
            Some(hi) if !unsettled(hi) => at(lo, hi, Stop::Dropped),
            // Every router answered it, up to the last: on to the host.
            None if lo == n => at(lo, n + 1, Stop::AtHost),
            // Past the last that answers, hops that answer no one, or
            // that never had an error to spare.
            _ => unconfirmed,
        })
    }
}

/// The last router of `route` that answers, where a search starts.
pub(super) fn top(route: &Route) -> u8 {
    below(route, route.hops.len() as u8 + 1)
}

/// The nearest router below hop `hop` that answers (0: none).
pub(super) fn below(route: &Route, hop: u8) -> u8 {
    (1..hop)
        .rev()
        .find(|&h| {
            route
                .hops
                .get(usize::from(h) - 1)
                .is_some_and(Option::is_some)
        })
        .unwrap_or(0)
}

/// The hop (1-based) of `ip` on `route`, or the target's own hop.
pub(super) fn hop_of(route: &Route, target: IpAddr, ip: Option<IpAddr>) -> Option<u8> {
    let ip = ip?;
    if ip == target && route.reached {
        return u8::try_from(route.hops.len() + 1).ok();
    }
    route
        .hops
        .iter()
        .position(|h| *h == Some(ip))
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// The address at `hop` on `route` (the target one past the last router).
pub(super) fn address_at(route: &Route, target: IpAddr, hop: u8) -> Option<IpAddr> {
    let i = usize::from(hop);
    if i == 0 {
        return None;
    }
    if route.reached && i == route.hops.len() + 1 {
        return Some(target);
    }
    route.hops.get(i - 1).copied().flatten()
}
