//! Where a blocked port stops: the same probe sent with a limited IP TTL
//! (IPv6 hop limit), each router's ICMP time-exceeded read from the socket's
//! error queue, as the rest of the engine reads rejections: no raw sockets,
//! no privileges.
//!
//! A router answers a TTL-expired probe before its forward filter sees it,
//! so a blocked port's probes are answered up to the filtering hop and no
//! further, while a port that gets through (the *control*: an open or
//! closed port of the same host) is answered at every hop and then by the
//! host. Routers limit their ICMP errors (Linux: a burst of six, then one
//! a second over IPv4 and ten over IPv6, per destination, time-exceeded and
//! unreachables alike), so every error is spent knowingly:
//!
//! - a run of ports that behaved alike in the scan is one question, asked
//!   of one port (`sample`);
//! - what the scan showed is used first: a rejection from a router on the
//!   path places itself;
//! - each router's allowance is modelled and shared by runs at once
//!   (`budget`); a volley waits for the router it needs, and the progress
//!   says so;
//! - a silent probe means something only when the router answers the
//!   control right after it (the canary), and a canary is sent only when
//!   a probe was left silent (`work`, `search`);
//! - answers are kept across runs that share a [`Locator`] (`memory`).
//!
//! The rooms: `sample` (what to locate), `search` (one port's search, pure),
//! `work` (one address's volleys, pure), `budget` and `memory` (pure
//! models), `locator` (what runs share), `flight` (sending), and this
//! module (the loop, and the answers put into the results).
//!
//! Cost: at most [`PROBES_PER_HOP`] confirmations per hop and port, up to
//! [`MAX_HOPS`] hops, [`MAX_TRACED`] questions per address, within the run's
//! deadline; each probe holds a ticket of the run's shared bound while it
//! waits, like any attempt.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::attempt::Prober;
use super::outcome::{PortResult, Reason, State};
use super::path::Path;
use super::share::Share;
use flight::Flights;
use memory::{Found, Freshness, Outcome, Recalled};
use search::Rejection;
use work::{Sample, Step, Work};

mod budget;
mod flight;
mod locator;
mod memory;
mod sample;
mod search;
mod work;

pub use crate::engine::located::{Located, Route, Stop};
pub use locator::Locator;
pub use memory::{KEEP, REUSE};
pub(super) use sample::wanted;

/// The most hops a path is followed.
pub const MAX_HOPS: u8 = 30;
/// The most questions (runs of ports that behaved alike) per address.
pub const MAX_TRACED: usize = 32;
/// Confirmations per hop and port before a router out of ICMP errors is
/// passed over.
pub(super) const PROBES_PER_HOP: u32 = 3;

/// One address's questions: the runs, where each one's answer comes from.
struct Asked {
    addr: usize,
    /// Results of each run, and the answer remembered for it.
    runs: Vec<(sample::Run, Option<Recalled>)>,
    /// The work locating some of them (`samples[k]` asks `runs[asked[k]]`).
    work: Option<usize>,
    asked: Vec<usize>,
    remembered_route: Option<Route>,
}

/// Locates the blocked ports of every address in `results` (sorted by
/// address, transport and port), within `deadline` and the run's `share`
/// of the bound on attempts in flight, with what `locator` keeps and
/// shares; `waiting` is told which router's ICMP allowance locating waits
/// for, and when it stops waiting. Returns each address's route, and sets
/// `located` on the results it could locate (a UDP port a router drops
/// becomes `filtered`, and a port a router rejected while the scan found
/// it out of ICMP errors takes that rejection).
pub(super) async fn locate<P: Prober>(
    prober: &mut P,
    paths: &[Path],
    results: &mut [PortResult],
    deadline: Option<Instant>,
    share: &mut Share,
    locator: &Locator,
    waiting: &mut (dyn FnMut(Option<IpAddr>) + Send),
) -> Vec<Option<Route>> {
    let now = Instant::now();
    let mut routes: Vec<Option<Route>> = vec![None; paths.len()];
    let mut asked: Vec<Asked> = Vec::new();
    let mut works: Vec<Work> = Vec::new();
    for (a, p) in paths.iter().enumerate() {
        let target = p.target.ip;
        let source = p.context.source;
        let idx: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].address == target)
            .collect();
        let rs: Vec<&PortResult> = idx.iter().map(|&i| &results[i]).collect();
        let runs = sample::runs(&rs);
        if runs.is_empty() {
            continue;
        }
        spent_by_scan(locator, source, &rs, now);
        let mut memory = locator.memory();
        memory.forget_changed(source, target, &rs, now);
        let runs: Vec<(sample::Run, Option<Recalled>)> = runs
            .into_iter()
            .map(|mut run| {
                run.members = run.members.iter().map(|&k| idx[k]).collect();
                run.sample = idx[run.sample];
                let recalled = memory.recall(source, target, &run.behaviour, now);
                (run, recalled)
            })
            .collect();
        let remembered = memory.route(source, target, now);
        drop(memory);
        let control = sample::control(&rs);
        drop(rs);
        let unknown: Vec<usize> = (0..runs.len()).filter(|&k| runs[k].1.is_none()).collect();
        let stale: Vec<usize> = (0..runs.len())
            .filter(|&k| runs[k].1.is_some_and(|r| r.freshness == Freshness::Stale))
            .collect();
        let route_stale = !matches!(remembered, Some((_, _, Freshness::Fresh)));
        // Remembered answers stand unless a run locates them anew.
        for (run, recalled) in &runs {
            if let Some(r) = recalled {
                apply(results, &run.members, &r.found, r.age);
            }
        }
        let patient = !unknown.is_empty();
        let asks: Vec<usize> = if patient {
            unknown.iter().chain(&stale).copied().collect()
        } else if (!stale.is_empty() || route_stale)
            && spare(locator, source, remembered.as_ref().map(|r| &r.0), now)
        {
            (0..runs.len()).collect()
        } else {
            Vec::new()
        };
        let mut entry = Asked {
            addr: a,
            runs,
            work: None,
            asked: asks.clone(),
            remembered_route: remembered.map(|(r, _, _)| r),
        };
        if !asks.is_empty() {
            let samples = asks
                .iter()
                .map(|&k| {
                    let r = &results[entry.runs[k].0.sample];
                    let rejected = (r.state == State::Filtered && r.reason != Reason::NoResponse)
                        .then_some(Rejection {
                            from: r.reason_from,
                            reason: r.reason,
                            ttl: None,
                        });
                    Sample::new(r.probe, r.port, rejected)
                })
                .collect();
            entry.work = Some(works.len());
            works.push(Work::new(target, source, control, samples, patient));
        }
        asked.push(entry);
    }
    let addr: Vec<usize> = asked
        .iter()
        .filter(|q| q.work.is_some())
        .map(|q| q.addr)
        .collect();
    if !works.is_empty() {
        drive(
            prober, paths, &mut works, &addr, deadline, share, locator, waiting,
        )
        .await;
    }
    let now = Instant::now();
    for q in asked {
        let p = &paths[q.addr];
        let (source, target) = (p.context.source, p.target.ip);
        let mut memory = locator.memory();
        let route = q.work.and_then(|w| works[w].route.clone());
        if let Some(r) = route.as_ref().filter(|r| r.reached) {
            memory.remember_route(source, target, r.clone(), now);
        }
        routes[q.addr] = route.or(q.remembered_route);
        let Some(w) = q.work else { continue };
        let work = &works[w];
        for (m, &k) in q.asked.iter().enumerate() {
            let (run, recalled) = &q.runs[k];
            let located = work.located(m);
            let confirmed = located.is_some_and(|l| l.how != Stop::Unconfirmed);
            if recalled.is_some() && !confirmed {
                // A re-check that could not settle: the remembered stands.
                continue;
            }
            let sweep = Outcome::of(&results[run.sample]);
            let Some(located) = located else {
                for &i in &run.members {
                    results[i].located = None;
                }
                continue;
            };
            let found = Found {
                located,
                outcome: outcome(sweep, located, work.samples[m].search.rejected),
            };
            apply(results, &run.members, &found, Duration::ZERO);
            if confirmed {
                memory.remember(source, target, run.behaviour, found, now);
            }
        }
    }
    routes
}

/// Whether every router of `route` has errors to spare for a re-check:
/// two each, for the control's trace and a look or a canary.
fn spare(locator: &Locator, source: IpAddr, route: Option<&Route>, now: Instant) -> bool {
    let mut budgets = locator.budgets();
    route.is_none_or(|r| {
        r.hops
            .iter()
            .flatten()
            .all(|&router| budgets.of(source, router, now).available(now) >= 2)
    })
}

/// The scan's ICMP errors came out of the same allowances as locating's.
fn spent_by_scan(locator: &Locator, source: IpAddr, results: &[&PortResult], now: Instant) {
    let mut by: Vec<(IpAddr, u32)> = Vec::new();
    for from in results.iter().filter_map(|r| r.reason_from) {
        match by.iter_mut().find(|(f, _)| *f == from) {
            Some((_, n)) => *n += 1,
            None => by.push((from, 1)),
        }
    }
    let mut budgets = locator.budgets();
    for (from, n) in by {
        budgets.spent(source, from, n, now);
    }
}

/// The outcome a run's ports take from where they stop: a UDP port a
/// router drops or rejects is blocked; a rejection the scan missed is the
/// port's reason.
fn outcome(sweep: Outcome, located: Located, rejected: Option<Rejection>) -> Outcome {
    let mut o = sweep;
    if let Some(r) = rejected
        && sweep.reason == Reason::NoResponse
    {
        o.state = State::Filtered;
        o.reason = r.reason;
        o.reason_from = r.from;
    }
    if o.state == State::OpenFiltered && matches!(located.how, Stop::Dropped | Stop::Rejected(_)) {
        o.state = State::Filtered;
    }
    o
}

fn apply(results: &mut [PortResult], members: &[usize], found: &Found, age: Duration) {
    for &i in members {
        let r = &mut results[i];
        r.located = Some(Located {
            age,
            ..found.located
        });
        r.state = found.outcome.state;
        r.reason = found.outcome.reason;
        r.reason_from = found.outcome.reason_from;
    }
}

/// Sends every work's volleys as they come due, until every work is done
/// or `deadline` passes.
#[allow(clippy::too_many_arguments)]
async fn drive<P: Prober>(
    prober: &mut P,
    paths: &[Path],
    works: &mut [Work],
    addr: &[usize],
    deadline: Option<Instant>,
    share: &mut Share,
    locator: &Locator,
    waiting: &mut (dyn FnMut(Option<IpAddr>) + Send),
) {
    let mut flights = Flights::new(prober, paths, share);
    let mut told: Option<IpAddr> = None;
    let mut stopped = false;
    loop {
        let now = Instant::now();
        while let Some((w, volley, answers)) = flights.landed() {
            works[w].answered(volley, &answers, now, &mut locator.budgets());
        }
        if !stopped && deadline.is_some_and(|d| now >= d) {
            stopped = true;
            flights.drop_queued();
            for w in works.iter_mut() {
                w.stop();
            }
            continue;
        }
        let mut wake: Option<Instant> = None;
        let mut waits_for: Option<IpAddr> = None;
        let mut done = true;
        if !stopped {
            let mut budgets = locator.budgets();
            for (i, w) in works.iter_mut().enumerate() {
                match w.next(now, &mut budgets) {
                    Step::Send(volleys) => {
                        done = false;
                        for v in volleys {
                            flights.launch(i, v);
                        }
                    }
                    Step::Wait(at, router) => {
                        done = false;
                        wake = Some(wake.map_or(at, |t| t.min(at)));
                        waits_for = waits_for.or(router);
                    }
                    Step::Busy => done = false,
                    Step::Done => {}
                }
            }
        }
        if waits_for != told {
            told = waits_for;
            waiting(told);
        }
        flights.send(addr);
        if flights.idle() && (done || stopped) {
            break;
        }
        // Answers that came at once are taken before waiting.
        if flights.landed_any() {
            continue;
        }
        let wake = match (wake, deadline.filter(|_| !stopped)) {
            (Some(w), Some(d)) => Some(w.min(d)),
            (w, d) => w.or(d),
        };
        tokio::select! {
            () = flights.progress() => {}
            () = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
    if told.is_some() {
        waiting(None);
    }
}

#[cfg(test)]
mod tests;
