//! Where a blocked port stops: the same probe sent with a limited IP TTL
//! (IPv6 hop limit), each router's ICMP time-exceeded read from the socket's
//! error queue, as the rest of the engine reads rejections: no raw sockets,
//! no privileges.
//!
//! A router answers a TTL-expired probe before its forward filter sees it,
//! so a blocked port's probes are answered up to the filtering hop and no
//! further, while a port that gets through (the *control*: an open or
//! closed port of the same host) is answered at every hop and then by the
//! host. First the control's path is followed (TTL 1 to [`MAX_HOPS`]); then
//! every blocked port is searched down from the last router, one hop per
//! round, with the control sent last at that hop. Routers limit their ICMP
//! errors (Linux: a burst of six, then one a second, per destination), so a
//! silent hop proves nothing alone; but a router that answers the control
//! had an error to spare for every port probe that reached it before, so a
//! port probe it left silent never reached it.
//!
//! - `sample`: which ports to trace (a run of blocked ports by a sample,
//!   first, last and a few between, at most [`MAX_TRACED`] per address) and
//!   which port is the control;
//! - `search`: one port's search down the path, as a pure state machine;
//! - this module: sending the probes and putting the answers together.
//!
//! Cost: at most three probes per hop and port, confirmations included;
//! at most [`MAX_HOPS`] hops; within the run's deadline. Each probe holds a
//! ticket of the run's shared bound while it waits, like any attempt.

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Probe;
use super::attempt::{AttemptSpec, Prober, Started};
use super::evidence::Deadline;
use super::outcome::{PortResult, Reason, State};
use super::path::Path;
use super::share::Share;
use search::{Answer, Trace, address_at, answer, hop_of, step, top};

mod sample;
mod search;

pub(super) use sample::wanted;

/// The most hops a path is followed.
pub const MAX_HOPS: u8 = 30;
/// The most ports traced per address.
pub const MAX_TRACED: usize = 32;
/// Probes per hop and port, confirmations included.
pub(super) const PROBES_PER_HOP: u32 = 3;
/// The wait before a confirmation is tried again, for a router's ICMP
/// allowance to refill.
const SPACING: Duration = Duration::from_secs(1);
/// Ports traced between the first and the last of a run.
pub(super) const BETWEEN: usize = 3;

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
    share: &'a mut Share,
    deadline: Option<Instant>,
}

impl<P: Prober> Tracer<'_, P> {
    /// Sends every request in order (a canary right after its port), each
    /// once it has a ticket of the shared bound, and waits for all the
    /// answers; requests without a ticket by the deadline are not sent.
    async fn batch(&mut self, requests: &[Request]) -> Vec<Answer> {
        let mut answers = vec![Answer::NotSent; requests.len()];
        let mut waiting = FuturesUnordered::new();
        let deadline = self.deadline;
        let passed = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(passed);
        for (i, r) in requests.iter().enumerate() {
            let ticket = loop {
                if let Some(ticket) = self.share.take() {
                    break Some(ticket);
                }
                tokio::select! {
                    () = self.share.wait() => {}
                    Some((at, answer)) = waiting.next(), if !waiting.is_empty() => {
                        answers[at] = answer;
                    }
                    () = &mut passed => break None,
                }
            };
            let Some(ticket) = ticket else {
                break;
            };
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
            match self.prober.start(&spec, deadline) {
                Err(_) => {}
                Ok(Started::Done(f)) => answers[i] = answer(&f.evidence, target),
                Ok(Started::Waiting(fut)) => waiting.push(async move {
                    let finished = fut.await;
                    drop(ticket);
                    (i, answer(&finished.evidence, target))
                }),
            }
        }
        while let Some((at, answer)) = waiting.next().await {
            answers[at] = answer;
        }
        answers
    }
}

/// Locates the blocked ports of every address in `results` (sorted by
/// address, transport and port), within `deadline` and the run's `share`
/// of the bound on attempts in flight; returns each address's
/// route, and sets `located` (and, for a UDP port that a router drops, the
/// state `filtered`) on the results it could locate.
pub(super) async fn locate<P: Prober>(
    prober: &mut P,
    paths: &[Path],
    results: &mut [PortResult],
    deadline: Option<Instant>,
    share: &mut Share,
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
        share,
        deadline,
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
        let chosen = sample::samples(&rs);
        if chosen.is_empty() {
            continue;
        }
        routes[a] = Some(Route {
            control: sample::control(&rs),
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
