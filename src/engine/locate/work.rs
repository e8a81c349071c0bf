//! One address's locating as a state machine, driven by the loop in
//! `mod.rs`: the volleys of probes to send next, and what their answers
//! mean for the path, each behaviour's search and the routers'
//! allowances. No socket and no clock of its own: the time is handed in.
//!
//! In order:
//!
//! 1. every sample at the system's TTL, then the control at TTL 1 to
//!    [`MAX_HOPS`] right after: the control's answers give the path, and
//!    each router that answers the control vouches that it rejects none of
//!    the samples (it had an error to spare for them); a sample rejected
//!    now, where the scan saw silence because the router was out of
//!    errors then, is rejected after all;
//! 2. silent hops of the path tried again, a router's refill interval
//!    apart, while that brings answers;
//! 3. samples vouched again at routers that had no error to spare in 1.;
//! 4. each sample's search down the path: first a *look* at a hop (the
//!    samples alone, with a short timeout: a router that answers needs no
//!    canary), then, for those left silent, a *confirmation* (the samples
//!    again and the canary right after them);
//! 5. a sample vouched at its last hop if it still needs to be.
//!
//! Before each volley the router it draws errors from must have them, by
//! the model in `budget`; otherwise the volley waits for its next error,
//! and says so. A re-check of remembered answers never waits: it gives up
//! instead, and the remembered answers stand.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::budget::{BURST, Budgets, linux_rate};
use super::search::{Answer, Rejection, Search, address_at, hop_of};
use super::{Located, MAX_HOPS, PROBES_PER_HOP, Route, Stop};
use crate::engine::Probe;

/// One probe: a sample or the control, at a TTL (`None`: the system's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Request {
    pub probe: Probe,
    pub port: u16,
    pub ttl: Option<u8>,
}

/// A volley's answers, each with the time its probe was sent.
pub(super) type Answers = Vec<(Answer, Instant)>;

/// What a volley is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Samples at the system's TTL, before the trace.
    Beyond(Vec<usize>),
    /// The control at these TTLs.
    Trace(Vec<u8>),
    /// Samples at `ttl`, with a short timeout and no canary.
    Look(u8, Vec<usize>),
    /// Samples at `ttl`, then the canary.
    Confirm(u8, Vec<usize>),
    /// Samples at the system's TTL, then the canary at hop `.0`.
    Vouch(u8, Vec<usize>),
    /// Without a control: each sample at every TTL.
    Blind(Vec<usize>),
}

/// Probes sent one right after another, answered together.
#[derive(Clone, Debug)]
pub(super) struct Volley {
    pub kind: Kind,
    pub requests: Vec<Request>,
    /// With the short timeout of a look.
    pub quick: bool,
    /// The router the volley took errors from, and how many.
    taken: Option<(IpAddr, u32)>,
}

/// What a volley takes errors for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taking {
    Look,
    /// A confirmation or a vouching.
    Canary,
}

/// The most samples one canary vouches for.
const MAX_BEHIND_CANARY: usize = 16;

/// Keeps the earliest of the waits.
fn hold(wait: &mut Option<(Instant, Option<IpAddr>)>, at: Instant, router: IpAddr) {
    if wait.is_none_or(|(t, _)| at < t) {
        *wait = Some((at, Some(router)));
    }
}

/// What an address's locating does next.
#[derive(Debug)]
pub(super) enum Step {
    /// Send these volleys now.
    Send(Vec<Volley>),
    /// Nothing to send before `.0`; `.1` is the router whose allowance it
    /// waits for, when it is one.
    Wait(Instant, Option<IpAddr>),
    /// Waiting for answers.
    Busy,
    /// Located as far as it goes.
    Done,
}

/// One behaviour's sample.
#[derive(Clone, Debug)]
pub(super) struct Sample {
    pub probe: Probe,
    pub port: u16,
    pub search: Search,
    /// Its answer at the system's TTL, and when it was sent.
    beyond: Option<(Answer, Instant)>,
    /// The hop where its look went unanswered: it is confirmed there next.
    looked: Option<u8>,
    /// That look's error is still held: a confirmation takes it over, and
    /// gives it back once the port is shown never to reach the router.
    owes: bool,
    busy: bool,
    /// Without a control: where it stops, as far as answers show.
    blind: Option<Located>,
}

impl Sample {
    /// A sample port; `rejected` when the scan saw it rejected.
    pub(super) fn new(probe: Probe, port: u16, rejected: Option<Rejection>) -> Self {
        Sample {
            probe,
            port,
            search: Search::new(&Route::default(), rejected),
            beyond: None,
            looked: None,
            owes: false,
            busy: false,
            blind: None,
        }
    }
}

#[derive(Debug, Default)]
struct Trace {
    /// Per TTL (index TTL - 1).
    answers: Vec<Answer>,
    /// When each TTL first went unanswered.
    silent_at: Vec<Option<Instant>>,
    /// When the first round's control at each TTL was sent, if its router
    /// answered: the canary of every sample sent before it.
    canary_at: Vec<Option<Instant>>,
    rounds: u32,
    fruitless: u32,
    next: Option<Instant>,
    busy: bool,
    done: bool,
}

/// One address being located.
#[derive(Debug)]
pub(super) struct Work {
    target: IpAddr,
    source: IpAddr,
    v6: bool,
    control: Option<(Probe, u16)>,
    pub samples: Vec<Sample>,
    trace: Trace,
    pub route: Option<Route>,
    /// Tries to vouch the samples at each hop before the search.
    vouch_tries: HashMap<u8, u32>,
    in_flight: usize,
    /// The samples' probes at the system's TTL are still out.
    beyond_out: bool,
    /// A re-check: never wait for a router's allowance.
    patient: bool,
    /// No path to search down: each sample at every TTL instead.
    blind: bool,
    blind_sent: bool,
}

/// The gap after which a canary no longer vouches for the probes before
/// it: a fiftieth of the router's refill interval, so that a router out of
/// errors for them has less than a 2 % chance of one by the canary.
fn canary_gap(interval: Duration) -> Duration {
    interval / 50
}

/// Linux's refill interval, for routers not heard from yet.
fn linux_interval(v6: bool) -> Duration {
    Duration::from_secs_f64(1.0 / linux_rate(v6))
}

impl Work {
    /// Locating `samples` of `target` from `source`, with `control` (none:
    /// blind), waiting for routers' allowances when `patient`.
    pub(super) fn new(
        target: IpAddr,
        source: IpAddr,
        control: Option<(Probe, u16)>,
        samples: Vec<Sample>,
        patient: bool,
    ) -> Self {
        Work {
            target,
            source,
            v6: target.is_ipv6(),
            control,
            samples,
            trace: Trace {
                answers: vec![Answer::Silent; usize::from(MAX_HOPS)],
                silent_at: vec![None; usize::from(MAX_HOPS)],
                canary_at: vec![None; usize::from(MAX_HOPS)],
                ..Trace::default()
            },
            // Without a control, a path of nothing known.
            route: control.is_none().then(Route::default),
            vouch_tries: HashMap::new(),
            in_flight: 0,
            beyond_out: false,
            patient,
            blind: control.is_none(),
            blind_sent: false,
        }
    }

    fn at(&self, ttl: Option<u8>, s: &Sample) -> Request {
        Request {
            probe: s.probe,
            port: s.port,
            ttl,
        }
    }

    fn canary(&self, ttl: u8) -> Request {
        let (probe, port) = self.control.expect("a canary needs a control");
        Request {
            probe,
            port,
            ttl: Some(ttl),
        }
    }

    /// What to do next at `now`.
    pub(super) fn next(&mut self, now: Instant, budgets: &mut Budgets) -> Step {
        if self.blind {
            if self.blind_sent {
                return if self.in_flight > 0 {
                    Step::Busy
                } else {
                    Step::Done
                };
            }
            self.blind_sent = true;
            let members: Vec<usize> = (0..self.samples.len()).collect();
            let requests = members
                .iter()
                .flat_map(|&m| (1..=MAX_HOPS).map(move |t| (m, t)))
                .map(|(m, t)| self.at(Some(t), &self.samples[m]))
                .collect();
            return self.send(vec![Volley {
                kind: Kind::Blind(members),
                requests,
                quick: false,
                taken: None,
            }]);
        }
        let (probe, port) = self.control.expect("a control, when not blind");
        if !self.trace.done {
            if self.trace.busy {
                return Step::Busy;
            }
            if self.trace.rounds == 0 {
                let members: Vec<usize> = (0..self.samples.len())
                    .filter(|&m| self.samples[m].search.rejected.is_none())
                    .collect();
                let beyond = members
                    .iter()
                    .map(|&m| self.at(None, &self.samples[m]))
                    .collect();
                let ttls: Vec<u8> = (1..=MAX_HOPS).collect();
                let trace = ttls
                    .iter()
                    .map(|&t| Request {
                        probe,
                        port,
                        ttl: Some(t),
                    })
                    .collect();
                let mut volleys = Vec::new();
                if !members.is_empty() {
                    self.beyond_out = true;
                    volleys.push(Volley {
                        kind: Kind::Beyond(members),
                        requests: beyond,
                        quick: false,
                        taken: None,
                    });
                }
                volleys.push(Volley {
                    kind: Kind::Trace(ttls),
                    requests: trace,
                    quick: false,
                    taken: None,
                });
                self.trace.busy = true;
                return self.send(volleys);
            }
            let at = self.trace.next.unwrap_or(now);
            if now < at {
                return Step::Wait(at, None);
            }
            let ttls = self.silent_ttls();
            let requests = ttls.iter().map(|&t| self.canary(t)).collect();
            self.trace.busy = true;
            return self.send(vec![Volley {
                kind: Kind::Trace(ttls),
                requests,
                quick: false,
                taken: None,
            }]);
        }
        let route = self.route.clone().unwrap_or_default();
        let beyond_done = !self.beyond_out;
        let all_vouched = (1..=route.hops.len() as u8)
            .filter(|&h| address_at(&route, self.target, h).is_some())
            .all(|h| self.trace.canary_at[usize::from(h) - 1].is_some());
        let mut volleys = Vec::new();
        let mut wait: Option<(Instant, Option<IpAddr>)> = None;
        if !beyond_done && !all_vouched {
            // Rejections the scan missed may hide among the samples: they
            // are looked for before the search spends errors on them.
            return Step::Busy;
        }
        // 3. Vouching at routers the first round found out of errors.
        let mut vouching = false;
        if beyond_done {
            for h in 1..=route.hops.len() as u8 {
                let Some(router) = address_at(&route, self.target, h) else {
                    continue;
                };
                if self.vouch_tries.get(&h).copied().unwrap_or(0) >= PROBES_PER_HOP {
                    continue;
                }
                let members: Vec<usize> = (0..self.samples.len())
                    .filter(|&m| {
                        let s = &self.samples[m];
                        s.search.hop().is_some()
                            && s.search.rejected.is_none()
                            && matches!(s.beyond, Some((Answer::Silent | Answer::NotSent, _)))
                            && !s.search.is_vouched(h)
                    })
                    .collect();
                if members.is_empty() {
                    continue;
                }
                vouching = true;
                if members.iter().any(|&m| self.samples[m].busy) {
                    continue;
                }
                match self.take(budgets, router, members.len(), Taking::Canary, 0, now) {
                    Ok((k, taken)) => volleys.push(self.vouch_volley(h, &members[..k], taken)),
                    Err(at) => hold(&mut wait, at, router),
                }
            }
        }
        if !vouching {
            // 4. The searches, grouped by hop; 5. vouching at the last hop.
            let mut groups: Vec<((u8, u8), Vec<usize>)> = Vec::new();
            for (m, s) in self.samples.iter().enumerate() {
                if s.busy {
                    continue;
                }
                let key = match (s.search.hop(), s.search.to_vouch()) {
                    (Some(t), _) if s.looked == Some(t) => (1, t),
                    (Some(t), _) => (0, t),
                    // Vouched at its last hop, once its first probe at the
                    // system's TTL is back.
                    (None, Some(h)) if beyond_done => (2, h),
                    (None, _) => continue,
                };
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, g)) => g.push(m),
                    None => groups.push((key, vec![m])),
                }
            }
            for ((phase, t), members) in groups {
                let Some(router) = address_at(&route, self.target, t) else {
                    continue;
                };
                let taking = if phase == 0 {
                    Taking::Look
                } else {
                    Taking::Canary
                };
                // A confirmation takes over the errors its samples' looks
                // still hold: if they never reached the router, those
                // errors are there for its canary.
                let credit = members
                    .iter()
                    .take(MAX_BEHIND_CANARY)
                    .filter(|&&m| phase == 1 && self.samples[m].owes)
                    .count() as u32;
                match self.take(budgets, router, members.len(), taking, credit, now) {
                    Ok((k, taken)) => {
                        let members = &members[..k];
                        for &m in members {
                            self.samples[m].owes = false;
                        }
                        volleys.push(match phase {
                            0 => Volley {
                                kind: Kind::Look(t, members.to_vec()),
                                requests: members
                                    .iter()
                                    .map(|&m| self.at(Some(t), &self.samples[m]))
                                    .collect(),
                                quick: true,
                                taken,
                            },
                            1 => {
                                let mut requests: Vec<Request> = members
                                    .iter()
                                    .map(|&m| self.at(Some(t), &self.samples[m]))
                                    .collect();
                                requests.push(self.canary(t));
                                Volley {
                                    kind: Kind::Confirm(t, members.to_vec()),
                                    requests,
                                    quick: false,
                                    taken,
                                }
                            }
                            _ => self.vouch_volley(t, members, taken),
                        });
                    }
                    Err(at) => hold(&mut wait, at, router),
                }
            }
        }
        if !volleys.is_empty() {
            return self.send(volleys);
        }
        if let Some((at, router)) = wait {
            if !self.patient {
                // A re-check waits for no router: what is remembered stands.
                for s in &mut self.samples {
                    s.search.stop();
                }
                return if self.in_flight > 0 {
                    Step::Busy
                } else {
                    Step::Done
                };
            }
            return Step::Wait(at, router);
        }
        if self.in_flight > 0 {
            Step::Busy
        } else {
            Step::Done
        }
    }

    /// Takes errors of `router` for a volley of up to `members` samples:
    /// how many samples go and what was taken, or when the router will have
    /// enough. A look takes one error per sample: each may reach the router
    /// and draw one. A confirmation or a vouching needs one for its canary,
    /// takes one per sample as well if there are, and sends every sample:
    /// those a look left silent mostly never reach the router, and probes
    /// at the system's TTL draw an error only when something rejects them.
    /// If some do draw one and the canary goes unanswered, those that reach
    /// the router have shown it; the others are looked at again.
    fn take(
        &self,
        budgets: &mut Budgets,
        router: IpAddr,
        members: usize,
        kind: Taking,
        credit: u32,
        now: Instant,
    ) -> Result<(usize, Option<(IpAddr, u32)>), Instant> {
        let a = budgets.of(self.source, router, now);
        let room = a.available(now).min(BURST);
        let (k, n) = match kind {
            Taking::Look => {
                let k = (room as usize).min(members);
                (k, k as u32)
            }
            Taking::Canary => {
                let k = members.min(MAX_BEHIND_CANARY);
                (k, (room + credit).min(k as u32 + 1))
            }
        };
        if k == 0 || n == 0 {
            return Err(a.ready_at(1, now));
        }
        a.take(n.saturating_sub(credit), now);
        Ok((k, Some((router, n))))
    }

    fn vouch_volley(&self, hop: u8, members: &[usize], taken: Option<(IpAddr, u32)>) -> Volley {
        let mut requests: Vec<Request> = members
            .iter()
            .map(|&m| self.at(None, &self.samples[m]))
            .collect();
        requests.push(self.canary(hop));
        Volley {
            kind: Kind::Vouch(hop, members.to_vec()),
            requests,
            quick: false,
            taken,
        }
    }

    fn send(&mut self, volleys: Vec<Volley>) -> Step {
        for v in &volleys {
            let members = match &v.kind {
                Kind::Look(_, m) | Kind::Confirm(_, m) | Kind::Vouch(_, m) | Kind::Blind(m) => {
                    m.as_slice()
                }
                Kind::Trace(_) | Kind::Beyond(_) => &[],
            };
            for &m in members {
                self.samples[m].busy = true;
            }
        }
        self.in_flight += volleys.len();
        Step::Send(volleys)
    }

    /// The TTLs below the first the target answered (all, if it never did)
    /// that no router has answered yet.
    fn silent_ttls(&self) -> Vec<u8> {
        let answers = &self.trace.answers;
        let last = answers
            .iter()
            .position(|a| *a == Answer::Target)
            .unwrap_or(answers.len());
        (0..last)
            .filter(|&i| !matches!(answers[i], Answer::Expired(_)))
            .map(|i| i as u8 + 1)
            .collect()
    }

    /// Takes the answers to `volley`, each with the time its probe was
    /// sent.
    pub(super) fn answered(
        &mut self,
        volley: Volley,
        answers: &[(Answer, Instant)],
        now: Instant,
        budgets: &mut Budgets,
    ) {
        self.in_flight -= 1;
        let route = self.route.clone().unwrap_or_default();
        let target = self.target;
        let gap = canary_gap(volley.taken.map_or(linux_interval(self.v6), |(router, _)| {
            budgets.of(self.source, router, now).interval()
        }));
        // The canary, last of a confirmation or a vouching, answered in
        // time for the probes before it.
        let canary = answers.last().copied();
        let heard = canary.is_some_and(|(a, _)| matches!(a, Answer::Expired(_)));
        let vouches =
            |sent: Instant| heard && canary.is_some_and(|(_, at)| at >= sent && at - sent <= gap);
        let mut drew = 0;
        if let Some((router, _)) = volley.taken {
            drew = answers
                .iter()
                .filter(|(a, _)| a.sender() == Some(router))
                .count() as u32;
        }
        match &volley.kind {
            Kind::Beyond(members) => {
                self.beyond_out = false;
                for (&m, &(a, sent)) in members.iter().zip(answers) {
                    let s = &mut self.samples[m];
                    s.beyond = Some((a, sent));
                    match a {
                        Answer::Rejected(from, reason) => {
                            if let Some(from) = from {
                                budgets.spent(self.source, from, 1, now);
                            }
                            let r = Rejection {
                                from,
                                reason,
                                ttl: None,
                            };
                            if self.route.is_some() {
                                s.search.reject(r, &route, target);
                            } else {
                                s.search.rejected = Some(r);
                            }
                        }
                        Answer::Target => s.search.through(),
                        _ => {}
                    }
                }
                self.vouch_by_trace();
            }
            Kind::Trace(ttls) => {
                self.trace.busy = false;
                let first = self.trace.rounds == 0;
                self.trace.rounds += 1;
                let mut news = false;
                for (&t, &(a, sent)) in ttls.iter().zip(answers) {
                    let i = usize::from(t) - 1;
                    match a {
                        Answer::Expired(from) => {
                            if let Some(from) = from {
                                if let Some(silent) = self.trace.silent_at[i] {
                                    budgets.found_empty(self.source, from, silent);
                                }
                                budgets.spent(self.source, from, 1, now);
                            }
                            if first {
                                self.trace.canary_at[i] = Some(sent);
                            }
                            self.trace.answers[i] = a;
                            news = true;
                        }
                        Answer::Target => {
                            self.trace.answers[i] = a;
                            news = true;
                        }
                        _ => {
                            self.trace.silent_at[i].get_or_insert(sent);
                        }
                    }
                }
                if !news {
                    self.trace.fruitless += 1;
                }
                let pending = !self.silent_ttls().is_empty();
                if pending && self.trace.fruitless < PROBES_PER_HOP - 1 && self.trace.rounds < 8 {
                    self.trace.next = Some(now + linux_interval(self.v6));
                } else {
                    self.finish_trace();
                }
            }
            Kind::Look(t, members) => {
                for (&m, &(a, _)) in members.iter().zip(answers) {
                    let s = &mut self.samples[m];
                    s.busy = false;
                    match a {
                        Answer::Expired(_) => s.search.expired(*t),
                        Answer::Rejected(from, reason) => s.search.reject(
                            Rejection {
                                from,
                                reason,
                                ttl: Some(*t),
                            },
                            &route,
                            target,
                        ),
                        Answer::Target => s.search.through(),
                        Answer::Silent | Answer::NotSent => {
                            s.looked = Some(*t);
                            s.owes = true;
                        }
                    }
                }
                // A silent look may have met a router out of errors: its
                // error stays taken until a confirmation tells.
                settle(budgets, self.source, &volley, answers, drew, None, now);
            }
            Kind::Confirm(t, members) => {
                for (&m, &(a, sent)) in members.iter().zip(answers) {
                    let s = &mut self.samples[m];
                    s.busy = false;
                    s.looked = None;
                    match a {
                        Answer::Expired(_) => s.search.expired(*t),
                        Answer::Rejected(from, reason) => s.search.reject(
                            Rejection {
                                from,
                                reason,
                                ttl: Some(*t),
                            },
                            &route,
                            target,
                        ),
                        Answer::Target => s.search.through(),
                        Answer::Silent | Answer::NotSent if vouches(sent) => {
                            s.search.not_reached(*t, &route);
                        }
                        // The router answered others of the volley: they
                        // reach it, and it ran out of errors for the rest,
                        // which are looked at again.
                        Answer::Silent | Answer::NotSent if drew > 0 => {}
                        // The router had no error even for the canary: the
                        // silence says nothing, and the port is looked at
                        // again once the router has errors.
                        Answer::Silent | Answer::NotSent => {
                            s.search.unsettled(*t, &route);
                        }
                    }
                }
                settle(
                    budgets,
                    self.source,
                    &volley,
                    answers,
                    drew,
                    Some(heard),
                    now,
                );
            }
            Kind::Vouch(h, members) => {
                let searching = members
                    .iter()
                    .any(|&m| self.samples[m].search.hop().is_some());
                let mut failed = false;
                for (&m, &(a, sent)) in members.iter().zip(answers) {
                    let s = &mut self.samples[m];
                    s.busy = false;
                    match a {
                        Answer::Rejected(from, reason) => s.search.reject(
                            Rejection {
                                from,
                                reason,
                                ttl: None,
                            },
                            &route,
                            target,
                        ),
                        Answer::Target => s.search.through(),
                        _ if vouches(sent) => s.search.vouch(*h),
                        // The router answered others of the volley: it ran
                        // out of errors on the way, and the volley goes again.
                        _ if drew > 0 => {}
                        _ => {
                            failed = true;
                            if s.search.hop().is_none() {
                                s.search.vouch_failed();
                            }
                        }
                    }
                }
                if failed && searching {
                    *self.vouch_tries.entry(*h).or_default() += 1;
                }
                settle(
                    budgets,
                    self.source,
                    &volley,
                    answers,
                    drew,
                    Some(heard),
                    now,
                );
            }
            Kind::Blind(members) => {
                let per = usize::from(MAX_HOPS);
                for (&m, answers) in members.iter().zip(answers.chunks(per)) {
                    let s = &mut self.samples[m];
                    s.busy = false;
                    s.blind = Some(blind(answers, s.search.rejected));
                    for (a, _) in answers {
                        if let Some(from) = a.sender() {
                            budgets.spent(self.source, from, 1, now);
                        }
                    }
                }
            }
        }
    }

    /// The samples' probes at the system's TTL that the first round's
    /// canaries vouch for.
    fn vouch_by_trace(&mut self) {
        let gap = canary_gap(linux_interval(self.v6));
        for s in &mut self.samples {
            let Some((Answer::Silent | Answer::NotSent, sent)) = s.beyond else {
                continue;
            };
            for (i, at) in self.trace.canary_at.iter().enumerate() {
                if let Some(at) = *at
                    && at >= sent
                    && at - sent <= gap
                {
                    s.search.vouch(i as u8 + 1);
                }
            }
        }
    }

    fn finish_trace(&mut self) {
        self.trace.done = true;
        let answers = &self.trace.answers;
        let first_target = answers.iter().position(|x| *x == Answer::Target);
        let last_router = answers
            .iter()
            .rposition(|x| matches!(x, Answer::Expired(_)))
            .map_or(0, |i| i + 1);
        let hops = first_target.unwrap_or(last_router);
        let route = Route {
            hops: answers[..hops]
                .iter()
                .map(|x| match x {
                    Answer::Expired(from) => *from,
                    _ => None,
                })
                .collect(),
            reached: first_target.is_some(),
            control: self.control,
        };
        for s in &mut self.samples {
            let mut search = Search::new(&route, s.search.rejected);
            if s.search.through {
                search.through();
            }
            for h in 1..=route.hops.len() as u8 {
                if s.search.is_vouched(h) {
                    search.vouch(h);
                }
            }
            if let Some(r) = search.rejected
                && hop_of(&route, self.target, r.from).is_some()
            {
                search.stop();
            }
            s.search = search;
        }
        // Without a path that reaches the target, nothing to search down
        // from or compare with: each sample at every TTL instead.
        self.blind = !route.reached;
        self.route = Some(route);
        self.vouch_by_trace();
    }

    /// Where sample `m` stops, as far as its search went.
    pub(super) fn located(&self, m: usize) -> Option<Located> {
        let s = &self.samples[m];
        if let Some(l) = s.blind {
            return Some(l);
        }
        let route = self.route.clone().unwrap_or_default();
        s.search.located(&route, self.target)
    }

    /// Stops every search: out of time.
    pub(super) fn stop(&mut self) {
        if !self.trace.done && !self.blind {
            self.finish_trace();
        }
        self.blind_sent = true;
        for s in &mut self.samples {
            s.search.stop();
        }
    }
}

/// Settles what a volley took of its router's errors. With a canary
/// answered (`heard`), the errors taken but not drawn are given back (a
/// confirmation's include those its samples' looks held); with a canary
/// unanswered, the router's bucket was empty. A look (`None`) gives back
/// nothing: a silent one may have met an empty bucket, and its error is
/// held until a confirmation tells.
fn settle(
    budgets: &mut Budgets,
    source: IpAddr,
    volley: &Volley,
    answers: &[(Answer, Instant)],
    drew: u32,
    heard: Option<bool>,
    now: Instant,
) {
    let Some((router, taken)) = volley.taken else {
        return;
    };
    let sent = answers.iter().map(|(_, at)| *at).min().unwrap_or(now);
    let a = budgets.of(source, router, now);
    a.answered(drew, now);
    match heard {
        Some(true) => a.give_back(taken.saturating_sub(drew), sent, now),
        Some(false) => a.empty(now),
        None => {}
    }
}

/// Where a port stops from its answers at TTL 1, 2, ... with no control
/// to compare with: only what answered is claimed.
fn blind(answers: &[(Answer, Instant)], rejected: Option<Rejection>) -> Located {
    let senders: Vec<Option<IpAddr>> = answers
        .iter()
        .map(|(a, _)| match a {
            Answer::Expired(from) => *from,
            _ => None,
        })
        .collect();
    let last = senders.iter().rposition(Option::is_some);
    let rejection = answers.iter().find_map(|(a, _)| match a {
        Answer::Rejected(from, reason) => Some((*from, *reason)),
        _ => None,
    });
    let reached = last.map_or(0, |i| i as u8 + 1);
    let unconfirmed = Located {
        after_hop: reached,
        after: last.and_then(|i| senders[i]),
        before_hop: reached + 1,
        before: None,
        how: Stop::Unconfirmed,
        age: Duration::ZERO,
    };
    let by = rejection.or(rejected.map(|r| (r.from, r.reason)));
    match by {
        // A rejection placed by a sender that also answered a TTL.
        Some((Some(from), reason)) => match senders.iter().position(|s| *s == Some(from)) {
            Some(i) => Located {
                after_hop: i as u8 + 1,
                after: Some(from),
                before_hop: i as u8 + 2,
                before: senders.get(i + 1).copied().flatten(),
                how: Stop::Rejected(reason),
                age: Duration::ZERO,
            },
            None => unconfirmed,
        },
        _ => unconfirmed,
    }
}
