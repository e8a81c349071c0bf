//! The probe engine: resolving, scheduling, timeouts, retries and the socket
//! work of TCP connects, UDP probes and ICMP errors.
//!
//! The engine knows nothing of Apple products or of terminals, and never
//! prints: it takes the addresses and ports to probe and returns a
//! [`PortResult`] for each, reporting progress through a callback. Outcomes
//! are data (states, reasons and notes as enums); the report puts them into
//! words. It needs no privileges: TCP uses ordinary connects and ICMP errors
//! are read from each socket's error queue.
//!
//! Its parts, each the one owner of its state:
//!
//! - `scheduler`: the loop that launches attempts under the concurrency and
//!   rate bounds, settles their evidence, retries silent ports and runs the
//!   ICMP rate-limit rounds;
//! - `share`: a bound on attempts in flight shared by runs at once;
//! - `slot`: every port's state, as one enum per port, and the counts that
//!   follow from it;
//! - `path`: per address, the measured round-trip time, the timeouts that
//!   follow it, loss, and the rounds (`pacing`, a pure state machine);
//! - `attempt`: the socket work behind the small `Prober` interface, which
//!   the scheduler's unit tests replace with scripted outcomes;
//! - `verdict`: evidence judged into states and reasons, beside `outcome`;
//! - `responder`: the client side of the responder protocol (the TCP
//!   exchange, and what a proof says about the path).
//!
//! The types a check is made of and returns (`Target`, `Config`,
//! `RunOutcome`, ...) live in `types`, the outcomes in `outcome` and
//! `located`; this module is the facade, with the one run beneath
//! [`check`].

mod attempt;
mod check;
mod evidence;
mod icmp;
#[cfg(test)]
mod icmp_allowance;
pub mod ignored;
pub mod interfaces;
mod limits;
mod locate;
mod located;
mod mdns;
mod outcome;
mod own_ports;
mod pacing;
mod path;
mod probe;
mod rate;
mod resolve;
mod responder;
mod rtt;
mod scheduler;
mod share;
mod slot;
mod types;
mod verdict;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

pub use check::{Check, check};
pub use limits::{DEFAULT_CONCURRENCY, raise_nofile_limit};
pub use locate::{KEEP, Locator, MAX_HOPS, MAX_TRACED, REUSE};
pub use located::{Located, Route, Stop};
pub use outcome::{IcmpCode, Note, PortResult, Reason, State, Translation, Unconfirmed};
pub use pacing::{DEFAULT_ROUNDS, RESPONDER_ROUNDS};
pub use resolve::{
    Family, NotOneHost, ResolveError, Resolved, ResolvedBy, is_literal, literal, one_host, resolve,
    resolve_all,
};
pub use rtt::TCP_FLOOR;
pub use types::{AddressNote, Config, Job, Phase, Progress, RunOutcome, Target};

use crate::wire::ProbeContext;
pub use probe::Probe;

/// `t + d`, or a far future (thirty years on) when that overflows: a
/// caller's duration, however large, never panics a timer.
pub fn later(t: tokio::time::Instant, d: Duration) -> tokio::time::Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(86400 * 365 * 30))
}

/// The local address that probes to `target` leave from (no packet is sent:
/// a UDP socket is connected, which only consults the routing table).
pub fn source_address(target: Target) -> IpAddr {
    let unspecified: IpAddr = if target.ip.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .and_then(|s| {
            s.connect(target.socket(9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(unspecified)
}

/// The concurrency a run will use: the configured one, bounded by what the
/// open-file limit allows (raised to the hard limit first).
pub fn effective_concurrency(cfg: &Config) -> usize {
    let budget = limits::raise_nofile_limit();
    cfg.concurrency
        .unwrap_or(DEFAULT_CONCURRENCY)
        .min(budget)
        .max(1)
}

/// Probes every port of `ports` on every target and returns the results.
/// `progress` is called after each result; when `stop` completes the run
/// ends early with what it has. Nothing a single port or target does (a
/// local error, an unreachable network) ends the run.
async fn run(
    targets: &[Target],
    ports: &[(Probe, u16)],
    cfg: &Config,
    progress: &mut (dyn FnMut(Progress) + Send),
    stop: impl Future<Output = ()>,
) -> RunOutcome {
    let limit = effective_concurrency(cfg);
    let interfaces = interfaces::addresses();
    let mut unique: Vec<Target> = Vec::new();
    for t in targets {
        if !unique.iter().any(|u| u.ip == t.ip) {
            unique.push(*t);
        }
    }
    let paths = unique
        .into_iter()
        .map(|target| {
            let context = ProbeContext {
                target: target.ip,
                source: source_address(target),
                snmp_community: cfg.snmp_community.clone(),
                responder_secret: cfg.responder.clone(),
            };
            let local = interfaces::is_local(target.ip, &interfaces);
            path::Path::new(target, context, local, cfg.timeout, cfg.max_rounds())
        })
        .collect();
    let log = Arc::new(ignored::Log::default());
    let sockets = attempt::Sockets::new(Arc::clone(&log));
    let mut outcome = scheduler::Scheduler::new(paths, ports, cfg, sockets, limit)
        .run(progress, stop)
        .await;
    outcome.ignored = log.take();
    outcome
}
