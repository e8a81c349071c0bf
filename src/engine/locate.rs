//! Where a blocked port stops: the same probe sent with a limited IP TTL
//! (IPv6 hop limit), each router's ICMP time-exceeded read from the socket's
//! error queue, as the rest of the engine reads rejections: no raw sockets,
//! no privileges.
//!
//! A router answers a TTL-expired probe before its forward filter sees it,
//! so a blocked port's probes are answered up to the filtering hop and no
//! further, while a port that gets through (the *control*: an open or
//! closed port of the same host) is answered at every hop and then by the
//! host. Routers limit their ICMP errors too (Linux: a burst of six, then
//! one a second, per destination), so a silent hop proves nothing alone: a
//! port's boundary is confirmed by probing the next hop again, immediately
//! followed by the control at the same hop (a *canary*, as in the ICMP
//! rate-limit rounds): if the router answers the control but not the port,
//! the port never reached it.
//!
//! Cost: one probe per hop and traced port, and at most three per hop
//! counting the confirmations; at most [`MAX_HOPS`] hops; a run of blocked
//! ports is traced by a sample (first, last and a few between) and located
//! once when the sample agrees; at most [`MAX_TRACED`] ports per address.

use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Probe;
use super::attempt::{AttemptSpec, Prober, Started};
use super::evidence::{Deadline, Evidence};
use super::outcome::{PortResult, Reason, State};
use super::path::Path;
use crate::port::Transport;

/// The most hops a path is followed.
pub const MAX_HOPS: u8 = 30;
/// The most ports traced per address.
pub const MAX_TRACED: usize = 32;
/// Probes per hop and port, confirmations included.
const PROBES_PER_HOP: u32 = 3;
/// The wait before a confirmation is tried again, for a router's ICMP
/// allowance to refill.
const SPACING: Duration = Duration::from_secs(1);
/// Ports traced between the first and the last of a run.
const BETWEEN: usize = 3;

/// How a blocked port stops where it is located.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stop {
    /// Answered up to `after_hop` and no further, while the control port is
    /// answered at the next hop: dropped by a filter at `after_hop` (after
    /// its TTL check) or at the next hop (before it).
    Dropped,
    /// Rejected with an ICMP error by the node at `after_hop`.
    Rejected(Reason),
    /// Answered by every router up to the host: the last router drops it
    /// after its TTL check, or the host itself is silent or drops it.
    AtHost,
    /// Nothing came back beyond `after_hop`, but nothing shows that the path
    /// goes on there (no control port, or the next hop answers no one, or it
    /// stayed silent to the control too).
    Unconfirmed,
}

/// Where a blocked port stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Located {
    /// The last hop the port demonstrably reached (0 is this computer).
    pub after_hop: u8,
    /// That hop's address: `None` for this computer or a hop that never
    /// answers.
    pub after: Option<IpAddr>,
    /// The next hop's address as the control path shows it (the target
    /// itself when the stop is at the last router), when known.
    pub before: Option<IpAddr>,
    /// How it stops there.
    pub how: Stop,
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

/// What one TTL-limited probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
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

fn answer(evidence: &Evidence, target: IpAddr) -> Answer {
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

/// One TTL-limited probe to send.
#[derive(Clone, Copy, Debug)]
struct Request {
    addr: usize,
    probe: Probe,
    port: u16,
    ttl: u8,
}

/// The addresses being located and how long a probe waits for each.
struct Tracer<'a, P: Prober> {
    prober: &'a mut P,
    paths: &'a [Path],
    timeouts: Vec<watch::Sender<Duration>>,
}

impl<P: Prober> Tracer<'_, P> {
    /// Sends every request in order (a canary right after its port) and
    /// waits for all the answers.
    async fn batch(&mut self, requests: &[Request]) -> Vec<Answer> {
        let mut waiting = Vec::with_capacity(requests.len());
        for r in requests {
            let path = &self.paths[r.addr];
            let spec = AttemptSpec {
                target: path.target.socket(r.port),
                probe: r.probe,
                context: &path.context,
                local: path.local,
                ttl: Some(r.ttl),
            };
            let deadline = Deadline::new(self.timeouts[r.addr].subscribe());
            let target = path.target.ip;
            let started = self.prober.start(&spec, deadline);
            waiting.push(async move {
                match started {
                    Err(_) => Answer::NotSent,
                    Ok(Started::Done(f)) => answer(&f.evidence, target),
                    Ok(Started::Waiting(fut)) => answer(&fut.await.evidence, target),
                }
            });
        }
        join_all(waiting).await
    }
}

/// The control port of an address's results: one that got through (a TCP
/// port that answered, preferably closed, or a UDP port its host answered).
fn control(results: &[&PortResult]) -> Option<(Probe, u16)> {
    let rank = |r: &PortResult| match (r.transport, r.reason) {
        (Transport::Tcp, Reason::ConnRefused) => Some(0),
        (Transport::Tcp, Reason::SynAck) => Some(1),
        (Transport::Udp, Reason::PortUnreachable) if r.state == State::Closed => Some(2),
        (Transport::Udp, Reason::UdpResponse) if r.reply_from.is_none() => Some(3),
        _ => None,
    };
    results
        .iter()
        .filter_map(|r| rank(r).map(|k| (k, r)))
        .min_by_key(|(k, _)| *k)
        .map(|(_, r)| (r.probe, r.port))
}

/// Whether a result is one to locate: blocked on the way (not by this
/// computer), or a UDP port left without a reply.
pub(super) fn wanted(r: &PortResult) -> bool {
    match r.state {
        State::Filtered => !matches!(
            r.reason,
            Reason::LocalError | Reason::LocalFirewall | Reason::NoRoute
        ),
        State::OpenFiltered => true,
        State::Open | State::Closed => false,
    }
}

/// Runs of results to locate (consecutive ports with one outcome), and the
/// sample traced for each: first, last and a few between.
fn samples(results: &[&PortResult]) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if !wanted(r) {
            continue;
        }
        let extends = runs.last().and_then(|run| run.last()).is_some_and(|&j| {
            let p = results[j];
            j + 1 == i
                && p.transport == r.transport
                && u32::from(p.port) + 1 == u32::from(r.port)
                && (p.state, p.reason, p.reason_from) == (r.state, r.reason, r.reason_from)
        });
        if extends {
            runs.last_mut().expect("a run").push(i);
        } else {
            runs.push(vec![i]);
        }
    }
    let mut budget = MAX_TRACED;
    let mut out = Vec::new();
    for run in runs {
        if budget == 0 {
            break;
        }
        let mut picked = vec![run[0]];
        if run.len() > 1 {
            let between = BETWEEN.min(run.len() - 2);
            for n in 1..=between {
                picked.push(run[n * (run.len() - 1) / (between + 1)]);
            }
            picked.push(run[run.len() - 1]);
        }
        picked.dedup();
        picked.truncate(budget);
        budget -= picked.len();
        out.push((run, picked));
    }
    out
}

/// What is known of one traced port.
#[derive(Clone, Debug)]
struct Trace {
    addr: usize,
    result: usize,
    probe: Probe,
    port: u16,
    /// The main scan's ICMP rejection, if it was one.
    rejected: Option<(Option<IpAddr>, Reason)>,
    /// The TTL to try next: the search goes down from the last router.
    ttl: u8,
    /// Probes sent at `ttl` so far.
    tries: u32,
    /// The lowest hop the port is confirmed not to reach.
    not_reached: Option<u8>,
    /// A hop was passed over unconfirmed on the way down.
    gap: bool,
    /// The target answered it: not blocked after all.
    through: bool,
    located: Option<Located>,
}

/// The last router of `route` that answers, where a search starts.
fn top(route: &Route) -> u8 {
    below(route, route.hops.len() as u8 + 1)
}

/// The nearest router below hop `hop` that answers (0: none).
fn below(route: &Route, hop: u8) -> u8 {
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
fn above(route: &Route, hop: u8) -> u8 {
    (hop + 1..=route.hops.len() as u8)
        .find(|&h| route.hops[usize::from(h) - 1].is_some())
        .unwrap_or(route.hops.len() as u8 + 1)
}

/// Takes one answer of the search down the path; returns whether a router
/// on the way needs time to refill its ICMP allowance.
fn step(tr: &mut Trace, answer: Answer, canary: bool, route: &Route, target: IpAddr) -> bool {
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
fn descend(tr: &mut Trace, route: &Route, target: IpAddr) {
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
fn hop_of(route: &Route, target: IpAddr, ip: Option<IpAddr>) -> Option<u8> {
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
fn address_at(route: &Route, target: IpAddr, hop: u8) -> Option<IpAddr> {
    let i = usize::from(hop);
    if i == 0 {
        return None;
    }
    if route.reached && i == route.hops.len() + 1 {
        return Some(target);
    }
    route.hops.get(i - 1).copied().flatten()
}

/// Locates the blocked ports of every address in `results` (sorted by
/// address, transport and port), within `deadline`; returns each address's
/// route, and sets `located` (and, for a UDP port that a router drops, the
/// state `filtered`) on the results it could locate.
pub(super) async fn locate<P: Prober>(
    prober: &mut P,
    paths: &[Path],
    results: &mut [PortResult],
    deadline: Option<Instant>,
) -> Vec<Option<Route>> {
    let timeouts: Vec<watch::Sender<Duration>> = paths
        .iter()
        .map(|p| {
            let t = p.srtt().map_or(Duration::from_secs(1), |rtt| {
                (rtt * 3 + Duration::from_millis(100))
                    .clamp(Duration::from_millis(300), Duration::from_secs(2))
            });
            watch::Sender::new(t)
        })
        .collect();
    let mut tracer = Tracer {
        prober,
        paths,
        timeouts,
    };
    let by_addr: Vec<Vec<usize>> = paths
        .iter()
        .map(|p| {
            (0..results.len())
                .filter(|&i| results[i].address == p.target.ip)
                .collect()
        })
        .collect();
    let mut routes: Vec<Option<Route>> = vec![None; paths.len()];
    let mut traces: Vec<Trace> = Vec::new();
    let mut runs: Vec<(usize, Vec<usize>, Vec<usize>)> = Vec::new();
    for (a, idx) in by_addr.iter().enumerate() {
        let rs: Vec<&PortResult> = idx.iter().map(|&i| &results[i]).collect();
        let chosen = samples(&rs);
        if chosen.is_empty() {
            continue;
        }
        routes[a] = Some(Route {
            control: control(&rs),
            ..Route::default()
        });
        for (run, picked) in chosen {
            let run: Vec<usize> = run.iter().map(|&k| idx[k]).collect();
            let picked: Vec<usize> = picked.iter().map(|&k| idx[k]).collect();
            for &i in &picked {
                let r = &results[i];
                let rejected = (r.state == State::Filtered && r.reason != Reason::NoResponse)
                    .then_some((r.reason_from, r.reason));
                traces.push(Trace {
                    addr: a,
                    result: i,
                    probe: r.probe,
                    port: r.port,
                    rejected,
                    ttl: 0,
                    tries: 0,
                    not_reached: None,
                    gap: false,
                    through: false,
                    located: None,
                });
            }
            runs.push((a, run, picked));
        }
    }
    if traces.is_empty() {
        return routes;
    }
    let in_time = |now: Instant| deadline.is_none_or(|d| now < d);

    // The control paths, retrying silent hops (routers limit ICMP errors).
    let mut answers: Vec<Vec<Answer>> =
        vec![vec![Answer::Silent; usize::from(MAX_HOPS)]; paths.len()];
    for round in 0..PROBES_PER_HOP {
        if !in_time(Instant::now()) {
            break;
        }
        let mut requests = Vec::new();
        for (a, route) in routes.iter().enumerate() {
            let Some((probe, port)) = route.as_ref().and_then(|r| r.control) else {
                continue;
            };
            let first_target = answers[a].iter().position(|x| *x == Answer::Target);
            let last = first_target.unwrap_or(usize::from(MAX_HOPS));
            for ttl in 1..=last {
                if round == 0 || matches!(answers[a][ttl - 1], Answer::Silent | Answer::NotSent) {
                    requests.push(Request {
                        addr: a,
                        probe,
                        port,
                        ttl: ttl as u8,
                    });
                }
            }
        }
        if requests.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(SPACING).await;
        }
        let got = tracer.batch(&requests).await;
        for (r, a) in requests.iter().zip(got) {
            let slot = &mut answers[r.addr][usize::from(r.ttl) - 1];
            if matches!(slot, Answer::Silent | Answer::NotSent) {
                *slot = a;
            }
        }
    }
    for (a, route) in routes.iter_mut().enumerate() {
        let Some(route) = route else { continue };
        if route.control.is_none() {
            continue;
        }
        let first_target = answers[a].iter().position(|x| *x == Answer::Target);
        let last_router = answers[a]
            .iter()
            .rposition(|x| matches!(x, Answer::Expired(_)))
            .map_or(0, |i| i + 1);
        let hops = first_target.unwrap_or(last_router);
        route.hops = answers[a][..hops]
            .iter()
            .map(|x| match x {
                Answer::Expired(from) => *from,
                _ => None,
            })
            .collect();
        route.reached = first_target.is_some();
    }

    for tr in &mut traces {
        let route = routes[tr.addr].clone().unwrap_or_default();
        let target = paths[tr.addr].target.ip;
        if let Some((from, reason)) = tr.rejected
            && let Some(hop) = hop_of(&route, target, from)
        {
            // The control path names the router that rejected it.
            tr.located = Some(Located {
                after_hop: hop,
                after: from,
                before: address_at(&route, target, hop + 1),
                how: Stop::Rejected(reason),
            });
        } else if route.reached {
            tr.ttl = top(&route);
            if tr.ttl == 0 {
                // No router that answers: nothing to search down from.
                tr.located = Some(Located {
                    after_hop: 0,
                    after: None,
                    before: address_at(&route, target, 1),
                    how: if route.hops.is_empty() {
                        Stop::AtHost
                    } else {
                        Stop::Unconfirmed
                    },
                });
            }
        }
    }
    let top_down = |tr: &Trace| routes[tr.addr].as_ref().is_some_and(|r| r.reached);

    // Without a control path to follow, one probe at every hop, with no
    // canary to confirm anything: only what answered is claimed.
    let blind: Vec<usize> = (0..traces.len())
        .filter(|&t| traces[t].located.is_none() && !top_down(&traces[t]))
        .collect();
    if !blind.is_empty() && in_time(Instant::now()) {
        let mut requests = Vec::new();
        for &t in &blind {
            let tr = &traces[t];
            for ttl in 1..=MAX_HOPS {
                requests.push(Request {
                    addr: tr.addr,
                    probe: tr.probe,
                    port: tr.port,
                    ttl,
                });
            }
        }
        let got = tracer.batch(&requests).await;
        for (&t, answers) in blind.iter().zip(got.chunks(usize::from(MAX_HOPS))) {
            let tr = &mut traces[t];
            let last = answers
                .iter()
                .rposition(|a| matches!(a, Answer::Expired(_)));
            let rejection = answers.iter().enumerate().find_map(|(i, a)| match a {
                Answer::Rejected(from, reason) => Some((i, *from, *reason)),
                _ => None,
            });
            tr.located = Some(match (rejection, tr.rejected) {
                (Some((i, from, reason)), _) => Located {
                    after_hop: i as u8,
                    after: from,
                    before: None,
                    how: Stop::Rejected(reason),
                },
                (None, rejected) => Located {
                    after_hop: last.map_or(0, |i| i as u8 + 1),
                    after: last.and_then(|i| match answers[i] {
                        Answer::Expired(from) => from,
                        _ => None,
                    }),
                    before: None,
                    how: rejected.map_or(Stop::Unconfirmed, |(_, reason)| Stop::Rejected(reason)),
                },
            });
        }
    }

    // Down from the last router, every port still searched at one hop per
    // round, then the control at that hop last, as a canary: a router that
    // answers the control had an ICMP error to spare for every port probe
    // that reached it before.
    loop {
        let active: Vec<usize> = (0..traces.len())
            .filter(|&t| traces[t].located.is_none() && !traces[t].through && top_down(&traces[t]))
            .collect();
        if active.is_empty() || !in_time(Instant::now()) {
            break;
        }
        let mut order = active.clone();
        order.sort_by_key(|&t| (traces[t].addr, traces[t].ttl));
        let mut requests = Vec::new();
        let mut groups: Vec<(Vec<usize>, usize)> = Vec::new(); // traces, canary index
        for chunk in order
            .chunk_by(|&x, &y| (traces[x].addr, traces[x].ttl) == (traces[y].addr, traces[y].ttl))
        {
            let (addr, ttl) = (traces[chunk[0]].addr, traces[chunk[0]].ttl);
            for &t in chunk {
                requests.push(Request {
                    addr,
                    probe: traces[t].probe,
                    port: traces[t].port,
                    ttl,
                });
            }
            let (probe, port) = routes[addr]
                .as_ref()
                .and_then(|r| r.control)
                .expect("a route has a control");
            requests.push(Request {
                addr,
                probe,
                port,
                ttl,
            });
            groups.push((chunk.to_vec(), requests.len() - 1));
        }
        let got = tracer.batch(&requests).await;
        let mut waited_for = false;
        let mut at = 0;
        for (members, canary) in groups {
            let heard = matches!(got[canary], Answer::Expired(_) | Answer::Target);
            for t in members {
                let answer = got[at];
                at += 1;
                let tr = &mut traces[t];
                let route = routes[tr.addr].clone().expect("a route");
                let target = paths[tr.addr].target.ip;
                waited_for |= step(tr, answer, heard, &route, target);
            }
            at += 1;
        }
        if waited_for {
            tokio::time::sleep(SPACING).await;
        }
    }

    // A run's sample that agrees locates the whole run.
    for (a, run, picked) in runs {
        let found: Vec<Option<Located>> = picked
            .iter()
            .map(|i| {
                traces
                    .iter()
                    .find(|t| t.addr == a && t.result == *i)
                    .and_then(|t| t.located)
            })
            .collect();
        let agreed = found.windows(2).all(|w| w[0] == w[1]);
        let targets: Vec<(usize, Option<Located>)> = if agreed {
            run.iter().map(|&i| (i, found[0])).collect()
        } else {
            picked.iter().copied().zip(found).collect()
        };
        for (i, located) in targets {
            let r = &mut results[i];
            r.located = located;
            if let Some(l) = located
                && r.state == State::OpenFiltered
                && matches!(l.how, Stop::Dropped | Stop::Rejected(_))
            {
                r.state = State::Filtered;
            }
        }
    }
    routes
}

#[cfg(test)]
mod tests;
