//! One blocked port's search down the path: what each answer means, where
//! the search goes next, and where the port is located when it ends. Pure:
//! no socket, no clock.

use std::net::IpAddr;

use super::{Located, PROBES_PER_HOP, Route, Stop};
use crate::engine::Probe;
use crate::engine::evidence::Evidence;
use crate::engine::outcome::Reason;

/// What one TTL-limited probe found.
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

/// What is known of one traced port.
#[derive(Clone, Debug)]
pub(super) struct Trace {
    pub(super) addr: usize,
    pub(super) result: usize,
    pub(super) probe: Probe,
    pub(super) port: u16,
    /// The main scan's ICMP rejection, if it was one.
    pub(super) rejected: Option<(Option<IpAddr>, Reason)>,
    /// The TTL to try next: the search goes down from the last router.
    pub(super) ttl: u8,
    /// Probes sent at `ttl` so far.
    pub(super) tries: u32,
    /// The lowest hop the port is confirmed not to reach.
    pub(super) not_reached: Option<u8>,
    /// A hop was passed over unconfirmed on the way down.
    pub(super) gap: bool,
    /// The target answered it: not blocked after all.
    pub(super) through: bool,
    pub(super) located: Option<Located>,
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

/// The nearest hop above `hop` that answers the control (the target one
/// past the last router).
pub(super) fn above(route: &Route, hop: u8) -> u8 {
    (hop + 1..=route.hops.len() as u8)
        .find(|&h| route.hops[usize::from(h) - 1].is_some())
        .unwrap_or(route.hops.len() as u8 + 1)
}

/// Takes one answer of the search down the path; returns whether a router
/// on the way needs time to refill its ICMP allowance.
pub(super) fn step(
    tr: &mut Trace,
    answer: Answer,
    canary: bool,
    route: &Route,
    target: IpAddr,
) -> bool {
    let ttl = tr.ttl;
    let at = |hop: u8, after: Option<IpAddr>, how: Stop| Located {
        after_hop: hop,
        after,
        before: address_at(route, target, hop + 1),
        how,
    };
    match answer {
        Answer::Expired(from) => {
            let how = if usize::from(ttl) == route.hops.len() {
                Stop::AtHost
            } else if let Some((_, reason)) = tr.rejected {
                Stop::Rejected(reason)
            } else if !tr.gap && tr.not_reached == Some(above(route, ttl)) {
                Stop::Dropped
            } else {
                Stop::Unconfirmed
            };
            tr.located = Some(at(ttl, from, how));
            false
        }
        Answer::Rejected(from, reason) => {
            let hop = hop_of(route, target, from).unwrap_or(ttl.saturating_sub(1));
            tr.located = Some(at(hop, from, Stop::Rejected(reason)));
            false
        }
        Answer::Target => {
            // It got through after all: it is not blocked now.
            tr.through = true;
            false
        }
        Answer::Silent if canary => {
            tr.not_reached = Some(ttl);
            tr.tries = 0;
            descend(tr, route, target);
            false
        }
        Answer::Silent | Answer::NotSent => {
            tr.tries += 1;
            if tr.tries >= PROBES_PER_HOP {
                tr.tries = 0;
                tr.gap = true;
                descend(tr, route, target);
            }
            true
        }
    }
}

/// Moves the search one answering hop down; below the first router, the
/// port stops before it.
pub(super) fn descend(tr: &mut Trace, route: &Route, target: IpAddr) {
    tr.ttl = below(route, tr.ttl);
    if tr.ttl == 0 {
        let confirmed = !tr.gap && tr.not_reached == Some(above(route, 0));
        tr.located = Some(Located {
            after_hop: 0,
            after: None,
            before: address_at(route, target, 1),
            how: if confirmed {
                Stop::Dropped
            } else {
                Stop::Unconfirmed
            },
        });
    }
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
