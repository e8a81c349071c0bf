//! The scheduler: one loop that starts attempts under the concurrency and
//! rate bounds, settles their evidence, retries silent ports, and runs the
//! ICMP rate-limit rounds each address's `Pacing` asks for.
//!
//! Every attempt owns one socket. Attempts start synchronously in the loop
//! (so that running out of sockets is seen at once and answered by lowering
//! the concurrency), and wait for their evidence in tasks of their own, each
//! with a deadline that follows the timeout its `Path` publishes: as
//! round-trip times are measured, the timeout shrinks for attempts already
//! waiting too.
//!
//! With a bound shared among runs (`Config::shared_limit`), each attempt
//! also holds a ticket of it (`share`) while it waits, and a run that finds
//! none free waits for its turn in the loop, as it waits for evidence.
//!
//! The socket work is behind the `Prober` interface, so the loop runs in
//! unit tests (`tests.rs`) under tokio's paused clock with scripted outcomes.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::attempt::{AttemptSpec, Exhausted, Prober, Started};
use super::evidence::{Deadline, Evidence, Finished};
use super::locate;
use super::outcome::{Note, PortResult, State, Unconfirmed};
use super::pacing::{End, Step, Who};
use super::path::Path;
use super::rate::RateLimit;
use super::share::{Share, Ticket};
use super::slot::{SlotState, Slots, Stage};
use super::verdict::{self, is_silence};
use super::{AddressNote, Config, Job, Phase, Probe, Progress, RunOutcome};
use crate::port::Transport;

/// Attempts started per pass of the loop before it looks at completions.
const LAUNCH_BATCH: usize = 256;
/// How many times a self-connect is probed again before concluding.
const SELF_CONNECT_LIMIT: u32 = 10;
/// How long a port held by one of portprobe's own sockets waits before it
/// is tried again, and how many times.
const OWN_PORT_DELAY: Duration = Duration::from_millis(100);
const OWN_PORT_LIMIT: u32 = 50;

type Joined = (usize, u64, Finished);

pub(super) struct Scheduler<'a, P: Prober> {
    cfg: &'a Config,
    prober: P,
    slots: Slots,
    paths: Vec<Path>,
    queue: VecDeque<usize>,
    /// Ports held by portprobe's own sockets, waiting to be tried again.
    deferred: VecDeque<(Instant, usize)>,
    inflight: JoinSet<Joined>,
    /// Evidence that came at once, waiting to be settled.
    immediate: Vec<Joined>,
    limit: usize,
    next_seq: u64,
    rate: Option<RateLimit>,
    /// The bound shared with other runs.
    share: Share,
    deadline: Option<Instant>,
    phase: Phase,
}

impl<'a, P: Prober> Scheduler<'a, P> {
    /// A scheduler probing `ports` on every path; `limit` bounds attempts in
    /// flight.
    pub(super) fn new(
        paths: Vec<Path>,
        ports: &[(Probe, u16)],
        cfg: &'a Config,
        prober: P,
        limit: usize,
    ) -> Self {
        let mut slots = Slots::new(paths.len());
        // Interleave addresses so that many targets progress together.
        let mut queue = VecDeque::with_capacity(paths.len() * ports.len());
        for &(probe, port) in ports {
            for (addr, path) in paths.iter().enumerate() {
                let job = Job {
                    address: path.target.ip,
                    port,
                    probe,
                };
                queue.push_back(slots.push(job, addr));
            }
        }
        Scheduler {
            cfg,
            prober,
            slots,
            paths,
            queue,
            deferred: VecDeque::new(),
            inflight: JoinSet::new(),
            immediate: Vec::new(),
            limit: limit.max(1),
            next_seq: 0,
            rate: cfg.rate.map(RateLimit::new),
            share: Share::new(cfg.shared_limit.clone()),
            deadline: cfg.max_time.and_then(|d| Instant::now().checked_add(d)),
            phase: Phase::Probing,
        }
    }

    /// Probes until every port has its answer, `stop` completes, or
    /// `--max-time` passes.
    pub(super) async fn run(
        mut self,
        progress: &mut (dyn FnMut(Progress) + Send),
        stop: impl Future<Output = ()>,
    ) -> RunOutcome {
        let started = Instant::now();
        self.report(progress);
        tokio::pin!(stop);
        let mut interrupted = false;
        let mut out_of_time = false;
        loop {
            self.launch();
            for (slot, seq, finished) in std::mem::take(&mut self.immediate) {
                self.settle(slot, seq, finished, progress);
            }
            let now = Instant::now();
            self.release_deferred(now);
            self.advance(now, progress);
            if self.finished() {
                break;
            }
            if self.deadline.is_some_and(|d| now >= d) {
                out_of_time = true;
                break;
            }
            if !self.immediate.is_empty() {
                continue;
            }
            let wake = self.next_wake(now);
            let turn = self.can_launch(now) && !self.share.ready();
            if wake <= now {
                // More to launch at once: let other tasks run, without a
                // timer (whose millisecond granularity would stall us).
                tokio::task::yield_now().await;
                self.collect(progress);
                if futures::FutureExt::now_or_never(stop.as_mut()).is_some() {
                    interrupted = true;
                    break;
                }
                continue;
            }
            tokio::select! {
                biased;
                () = &mut stop => {
                    interrupted = true;
                    break;
                }
                Some(joined) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    if let Ok((slot, seq, finished)) = joined {
                        self.settle(slot, seq, finished, progress);
                    }
                }
                () = self.share.wait(), if turn => {}
                () = tokio::time::sleep_until(wake) => {}
            }
            self.collect(progress);
        }
        let mut outcome = self.finish(interrupted, out_of_time, started);
        if self.cfg.locate && !interrupted && !out_of_time {
            let ports = outcome.results.iter().filter(|r| locate::wanted(r)).count();
            if ports > 0 {
                let total = outcome.results.len() + outcome.unprobed;
                let blocked = outcome.results.iter().filter(|r| r.blocked()).count();
                let done = outcome.results.len();
                let mut tell = |waiting_for| {
                    progress(Progress {
                        done,
                        total,
                        blocked,
                        phase: Phase::Locating { ports, waiting_for },
                    });
                };
                tell(None);
                let own;
                let locator = match &self.cfg.locator {
                    Some(l) => l.as_ref(),
                    None => {
                        own = locate::Locator::new();
                        &own
                    }
                };
                // Ctrl-C while locating keeps the results, unlocated.
                let routes = tokio::select! {
                    biased;
                    () = &mut stop => None,
                    routes = locate::locate(
                        &mut self.prober,
                        &self.paths,
                        &mut outcome.results,
                        self.deadline,
                        &mut self.share,
                        locator,
                        &mut tell,
                    ) => Some(routes),
                };
                for (note, route) in outcome.addresses.iter_mut().zip(routes.unwrap_or_default()) {
                    note.route = route;
                }
            }
        }
        outcome.duration = started.elapsed();
        outcome
    }

    fn finished(&self) -> bool {
        self.queue.is_empty()
            && self.deferred.is_empty()
            && self.inflight.is_empty()
            && self.immediate.is_empty()
            && self.paths.iter().all(|p| p.pacing.end_state().is_some())
    }

    /// Settles whatever has completed, without waiting.
    fn collect(&mut self, progress: &mut (dyn FnMut(Progress) + Send)) {
        while let Some(joined) = self.inflight.try_join_next() {
            if let Ok((slot, seq, finished)) = joined {
                self.settle(slot, seq, finished, progress);
            }
        }
    }

    fn report(&self, progress: &mut (dyn FnMut(Progress) + Send)) {
        progress(Progress {
            done: self.slots.with_result(),
            total: self.slots.len(),
            blocked: self.slots.blocked(),
            phase: self.phase,
        });
    }

    /// Starts attempts from the queue within the concurrency and rate bounds.
    fn launch(&mut self) {
        let mut started = 0;
        while started < LAUNCH_BATCH && self.inflight.len() < self.limit {
            let Some(&slot) = self.queue.front() else {
                break;
            };
            let Some(ticket) = self.share.take() else {
                break;
            };
            if let Some(rate) = &mut self.rate
                && !rate.take(Instant::now())
            {
                self.share.put_back(ticket);
                break;
            }
            self.queue.pop_front();
            match self.start(slot, ticket) {
                Ok(()) => started += 1,
                Err(_) if !self.inflight.is_empty() => {
                    // Out of sockets: run with fewer in flight from now on.
                    self.queue.push_front(slot);
                    self.limit = (self.inflight.len() * 7 / 8).max(1);
                    break;
                }
                Err(Exhausted(errno)) => {
                    // Nothing in flight whose end would free a socket: this
                    // port cannot be probed from here.
                    let seq = self.begin(slot);
                    self.immediate.push((
                        slot,
                        seq,
                        Finished {
                            evidence: Evidence::LocalError(errno),
                            rtt: Duration::ZERO,
                        },
                    ));
                }
            }
        }
    }

    /// Marks the port's attempt as running; returns its sequence number.
    fn begin(&mut self, slot: usize) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.slots.get_mut(slot).attempts += 1;
        self.slots.update(slot, |state| match state {
            SlotState::Queued { stage, last } | SlotState::Running { stage, last, .. } => {
                SlotState::Running { stage, seq, last }
            }
            SlotState::Settled(r) => SlotState::Running {
                stage: Stage::Pass,
                seq,
                last: Some(r),
            },
        });
        seq
    }

    /// Starts the port's attempt, which holds `ticket` until it ends.
    fn start(&mut self, slot: usize, ticket: Ticket) -> Result<(), Exhausted> {
        let s = self.slots.get(slot);
        let (job, addr) = (s.job, s.addr);
        let path = &self.paths[addr];
        let deadline = Deadline::new(path.timeout(job.probe.transport()));
        let spec = AttemptSpec {
            target: path.target.socket(job.port),
            probe: job.probe,
            context: &path.context,
            local: path.local,
            ttl: None,
        };
        let started = self.prober.start(&spec, deadline)?;
        let seq = self.begin(slot);
        match started {
            Started::Done(finished) => {
                // Evidence at once: the ticket goes back at once.
                drop(ticket);
                self.immediate.push((slot, seq, finished));
            }
            Started::Waiting(fut) => {
                self.inflight.spawn(async move {
                    let finished = fut.await;
                    drop(ticket);
                    (slot, seq, finished)
                });
            }
        }
        Ok(())
    }

    /// Queues a port again at the back (or, for a self-connect, the front).
    fn requeue(&mut self, slot: usize, stage: Stage, last: Option<PortResult>, front: bool) {
        self.slots.set(slot, SlotState::Queued { stage, last });
        if front {
            self.queue.push_front(slot);
        } else {
            self.queue.push_back(slot);
        }
    }

    /// Moves ports whose own-port wait is over back to the queue.
    fn release_deferred(&mut self, now: Instant) {
        while let Some(&(at, slot)) = self.deferred.front() {
            if at > now {
                break;
            }
            self.deferred.pop_front();
            self.queue.push_back(slot);
        }
    }

    /// An attempt brought evidence (silence included).
    fn settle(
        &mut self,
        slot: usize,
        seq: u64,
        finished: Finished,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) {
        let (stage, last) = match self.slots.get(slot).state() {
            SlotState::Running {
                seq: s,
                stage,
                last,
            } if *s == seq => (*stage, last.clone()),
            _ => return, // it had expired already
        };
        let own_hits = self.slots.get(slot).own_hits;
        match finished.evidence {
            Evidence::Silent => self.silence(slot, stage, last),
            Evidence::SelfConnect if own_hits + 1 < SELF_CONNECT_LIMIT => {
                // The connection reached itself: no evidence; probe again at once.
                let s = self.slots.get_mut(slot);
                s.own_hits += 1;
                s.attempts -= 1;
                self.requeue(slot, stage, last, true);
            }
            Evidence::OwnPort if own_hits + 1 < OWN_PORT_LIMIT => {
                // The port is one of our own sockets': try once it is gone.
                let s = self.slots.get_mut(slot);
                s.own_hits += 1;
                s.attempts -= 1;
                self.slots.set(slot, SlotState::Queued { stage, last });
                self.defer(Instant::now() + OWN_PORT_DELAY, slot);
            }
            _ => self.answer(slot, stage, last, finished),
        }
        self.report(progress);
    }

    /// An attempt got no answer in time.
    fn silence(&mut self, slot: usize, stage: Stage, last: Option<PortResult>) {
        let s = self.slots.get(slot);
        let (job, addr, attempts) = (s.job, s.addr, s.attempts);
        let settled = match (stage, last) {
            // A canary keeps the answer it gave before.
            (Stage::Canary, Some(mut r)) => {
                r.attempts = attempts;
                r
            }
            (Stage::Pass, last) if attempts < self.paths[addr].max_attempts(self.cfg.retries) => {
                self.requeue(slot, Stage::Pass, last, false);
                return;
            }
            _ => verdict::silent(&job, attempts),
        };
        self.slots.set(slot, SlotState::Settled(settled));
    }

    /// An attempt brought an answer.
    fn answer(&mut self, slot: usize, stage: Stage, last: Option<PortResult>, finished: Finished) {
        let now = Instant::now();
        let s = self.slots.get(slot);
        let (job, addr, attempts, waits) = (s.job, s.addr, s.attempts, s.waits);
        self.responder_news(addr, slot, stage, &finished.evidence, now);
        let path = &mut self.paths[addr];
        // ICMP errors from a router time a shorter path than the target's,
        // and local errors time nothing: only answers from the target itself
        // time the path.
        let (times_path, network) = match &finished.evidence {
            Evidence::Icmp(e) => (e.from == Some(path.target.ip), true),
            Evidence::Local(_) | Evidence::LocalError(_) | Evidence::OwnPort => (false, false),
            _ => (true, true),
        };
        if times_path {
            path.sample(finished.rtt);
        }
        // A rate-limited ICMP error answering a retry is no sign of loss,
        // nor an answer after a responder's busy one or none.
        if network
            && !matches!(finished.evidence, Evidence::Icmp(_))
            && attempts > 1
            && waits == 0
            && stage == Stage::Pass
        {
            path.loss_seen = true;
        }
        if let Evidence::Icmp(e) = &finished.evidence
            && job.probe.transport() == Transport::Udp
        {
            path.pacing.icmp_error(e.from, slot, now);
            if stage == Stage::Canary {
                path.pacing.canary_answered(Who::Icmp(e.from));
            }
        }
        let responder_answer = match finished.evidence {
            Evidence::Responder { answer, .. } => Some(answer),
            _ => None,
        };
        let result = verdict::judge(&job, attempts, finished);
        if matches!(result.state, State::Open | State::Closed) {
            path.answered = true;
        }
        let settled = match (stage, last) {
            (Stage::Canary, Some(mut before)) => {
                before.attempts = attempts;
                before
            }
            (Stage::Round, _) => {
                // A port silenced before now answers: the limit had hidden it.
                path.pacing.revealed();
                result
            }
            _ => result,
        };
        if let Some(settled) = self.retry_unanswered(slot, responder_answer, settled) {
            self.slots.set(slot, SlotState::Settled(settled));
        }
    }

    fn current_phase(&self) -> Phase {
        let mut ports = 0;
        let mut addresses = 0;
        let mut round = 0;
        for (a, p) in self.paths.iter().enumerate() {
            if p.pacing.active() {
                addresses += 1;
                ports += self.slots.silent_udp(a)
                    + self
                        .slots
                        .of_addr(a)
                        .iter()
                        .filter(|&&i| {
                            matches!(
                                self.slots.get(i).state(),
                                SlotState::Queued {
                                    stage: Stage::Round,
                                    ..
                                } | SlotState::Running {
                                    stage: Stage::Round,
                                    ..
                                }
                            )
                        })
                        .count();
                round = round.max(p.pacing.rounds());
            }
        }
        if addresses == 0 {
            Phase::Probing
        } else {
            Phase::Confirming {
                ports,
                addresses,
                round,
                max_rounds: self.cfg.max_rounds(),
            }
        }
    }

    /// Whether an attempt may start now, but for the shared bound.
    fn can_launch(&self, now: Instant) -> bool {
        !self.queue.is_empty()
            && self.inflight.len() < self.limit
            && self
                .rate
                .as_ref()
                .is_none_or(|r| r.next().is_none_or(|n| n <= now))
    }

    fn next_wake(&self, now: Instant) -> Instant {
        if self.can_launch(now) && self.share.ready() {
            return now;
        }
        let mut wake = now + Duration::from_secs(1);
        for p in &self.paths {
            if let Some(until) = p.pacing.wake() {
                wake = wake.min(until);
            }
        }
        if let Some(&(at, _)) = self.deferred.front() {
            wake = wake.min(at);
        }
        if let (Some(next), false) = (
            self.rate.as_ref().and_then(RateLimit::next),
            self.queue.is_empty(),
        ) {
            wake = wake.min(next);
        }
        if let Some(deadline) = self.deadline {
            wake = wake.min(deadline);
        }
        wake.max(now)
    }
}

mod finish;
mod responder;
mod rounds;
#[cfg(test)]
mod tests;
