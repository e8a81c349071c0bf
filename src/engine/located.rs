//! Where a blocked port stops, and the path that shows it: outcome types,
//! beside the states and reasons of `outcome`, which the locating
//! algorithm (`locate`) fills in and the reports read.

use std::net::IpAddr;
use std::time::Duration;

use super::Probe;
use super::outcome::Reason;

/// How a blocked port stops where it is located.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stop {
    /// Answered up to `after_hop` and no further, while the control port is
    /// answered at `before_hop`: dropped by a filter at `after_hop` (after
    /// its TTL check), at a hop between that answers no one, or at
    /// `before_hop` (before its TTL check).
    Dropped,
    /// Rejected with an ICMP error by `after`, the node at `after_hop`.
    Rejected(Reason),
    /// Answered by every router up to the host: the last router drops it
    /// after its TTL check, or the host itself is silent or drops it.
    AtHost,
    /// Answered up to `after_hop`; beyond it nothing could be confirmed (no
    /// control port, hops that answer no one, routers out of ICMP errors,
    /// or out of time).
    Unconfirmed,
}

/// Where a blocked port stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Located {
    /// The last hop the port demonstrably reached (0 is this computer); for
    /// a rejection, the hop of the node that sent it.
    pub after_hop: u8,
    /// That hop's address: `None` for this computer or a hop that never
    /// answers.
    pub after: Option<IpAddr>,
    /// The first hop the port is known not to reach, or the next one (the
    /// target itself, one past the last router).
    pub before_hop: u8,
    /// Its address as the control path shows it, when known.
    pub before: Option<IpAddr>,
    /// How it stops there.
    pub how: Stop,
    /// How long ago it was located: zero in the run that located it, more
    /// for an answer a [`Locator`](super::Locator) kept from an earlier run.
    pub age: Duration,
}

/// The path to one address, as the control port's probes showed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    /// The routers, hop 1 first; `None` for a hop that never answered.
    pub hops: Vec<Option<IpAddr>>,
    /// The target answered the control at the hop after the last router.
    pub reached: bool,
    /// The control port, when the address had one.
    pub control: Option<(Probe, u16)>,
}
