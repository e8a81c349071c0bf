//! The scheduler: one loop that starts attempts under the concurrency and
//! rate bounds, expires them when the path's adaptive timeout passes, retries
//! silent ports, and re-probes UDP ports that ICMP rate limiting may have
//! silenced.
//!
//! Every attempt owns one socket. Attempts start synchronously in the loop
//! (so that running out of sockets is seen at once and answered by lowering
//! the concurrency), and wait for their evidence in tasks of their own, each
//! with a deadline that follows the timeout the loop publishes per address
//! and transport: as round-trip times are measured, the timeout shrinks for
//! attempts already waiting too. At its deadline an attempt takes a last
//! look at its socket, so that a busy process never mistakes an answer it has
//! not yet been told about for silence.
//!
//! **ICMP rate limiting.** Linux sends about one ICMP error per second to
//! each destination after a burst of six, so a range of closed UDP ports goes
//! silent after a few port-unreachables. Silence alone cannot tell such a port
//! from a dropped one. When a UDP port of an address stays silent and some
//! router or host has sent ICMP errors about that address, portprobe probes
//! the silent ports again in rounds, each started at least a second after the
//! last ICMP error from every sender, and each ending with a *canary*: a port
//! that drew an ICMP error from that sender before. The canary goes last, so
//! if it is answered, the sender still had capacity after every silent port of
//! the round, and a closed port among them would have been answered too: the
//! silent ports are confirmed. If the canary is not answered, another round
//! follows, until `--max-time`.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::attempt::{self, Deadline, Evidence, Finished, Started};
use super::outcome::{PortResult, Reason, State};
use super::rtt::{RttEstimator, TCP_FLOOR, UDP_FLOOR};
use super::{AddressNote, Config, EngineError, Job, Progress, RunOutcome};
use crate::port::Transport;
use crate::wire::{Nonce, ProbeContext, UdpProtocol};

/// Attempts started per pass of the loop before it looks at completions.
const LAUNCH_BATCH: usize = 256;
/// How many times a self-connect is re-probed before concluding.
const SELF_CONNECT_LIMIT: u32 = 10;
/// Attempts per port once the path has shown loss (unless --retries is given).
const LOSSY_ATTEMPTS: u32 = 6;
/// Least spacing between ICMP rate-limit rounds for one address.
const ROUND_SPACING: Duration = Duration::from_secs(1);

struct Slot {
    job: Job,
    addr: usize,
    attempts: u32,
    self_connects: u32,
    /// The running attempt's sequence number.
    current: Option<u64>,
    /// The result so far.
    result: Option<PortResult>,
    /// The result so far is "no answer" and may still change.
    silent: bool,
    counted: bool,
}

/// An ICMP sender seen for an address, and a port it answered.
struct Sender {
    ip: Option<IpAddr>,
    last: Instant,
    canary: usize,
}

/// Where an address stands in its ICMP rate-limit rounds.
enum Pacing {
    /// Normal probing of the address is not over yet.
    NotStarted,
    /// Waiting for the senders' rate limits to recover.
    Waiting { until: Instant },
    /// A round is running.
    Running {
        members: Vec<usize>,
        answered: Vec<Option<IpAddr>>,
        started: Instant,
    },
    /// Nothing (more) to do.
    Done,
}

struct Address {
    ip: IpAddr,
    context: ProbeContext,
    rtt: RttEstimator,
    /// The timeout published to waiting attempts, per transport.
    timeouts: [watch::Sender<Duration>; 2],
    /// Slots of this address.
    slots: Vec<usize>,
    /// Slots of this address queued or running.
    busy: usize,
    loss_seen: bool,
    /// The address itself answered some port (open or closed).
    answered: bool,
    senders: Vec<Sender>,
    pacing: Pacing,
    rounds: u32,
    revealed: u32,
    pacing_started: Option<Instant>,
    pacing_time: Duration,
}

fn floor(transport: Transport) -> Duration {
    match transport {
        Transport::Tcp => TCP_FLOOR,
        Transport::Udp => UDP_FLOOR,
    }
}

fn timer_index(t: Transport) -> usize {
    match t {
        Transport::Tcp => 0,
        Transport::Udp => 1,
    }
}

pub(super) struct Scheduler<'a> {
    cfg: &'a Config,
    slots: Vec<Slot>,
    addrs: Vec<Address>,
    queue: VecDeque<usize>,
    inflight: JoinSet<(usize, u64, Finished)>,
    /// Evidence that came at once, waiting to be settled.
    immediate: Vec<(usize, u64, Finished)>,
    limit: usize,
    next_seq: u64,
    next_launch: Option<Instant>,
    done: usize,
    blocked: usize,
    deadline: Option<Instant>,
}

impl<'a> Scheduler<'a> {
    /// A scheduler for `jobs`; `addresses` pairs every target address with
    /// the local address probes leave from; `limit` bounds attempts in flight.
    pub(super) fn new(
        jobs: Vec<Job>,
        cfg: &'a Config,
        addresses: Vec<(IpAddr, IpAddr)>,
        limit: usize,
    ) -> Self {
        let mut addrs: Vec<Address> = addresses
            .into_iter()
            .map(|(ip, source)| Address {
                ip,
                context: ProbeContext {
                    target: ip,
                    source,
                    snmp_community: cfg.snmp_community.clone(),
                },
                rtt: RttEstimator::default(),
                timeouts: [Transport::Tcp, Transport::Udp].map(|t| {
                    watch::Sender::new(
                        cfg.timeout
                            .unwrap_or_else(|| RttEstimator::default().timeout(floor(t))),
                    )
                }),
                slots: Vec::new(),
                busy: 0,
                loss_seen: false,
                answered: false,
                senders: Vec::new(),
                pacing: Pacing::NotStarted,
                rounds: 0,
                revealed: 0,
                pacing_started: None,
                pacing_time: Duration::ZERO,
            })
            .collect();
        let mut slots = Vec::with_capacity(jobs.len());
        for job in jobs {
            let addr = addrs
                .iter()
                .position(|a| a.ip == job.address)
                .expect("every job's address is listed");
            addrs[addr].slots.push(slots.len());
            addrs[addr].busy += 1;
            slots.push(Slot {
                job,
                addr,
                attempts: 0,
                self_connects: 0,
                current: None,
                result: None,
                silent: false,
                counted: false,
            });
        }
        // Interleave addresses so that many targets progress together.
        let mut queue = VecDeque::with_capacity(slots.len());
        let longest = addrs.iter().map(|a| a.slots.len()).max().unwrap_or(0);
        for i in 0..longest {
            for a in &addrs {
                if let Some(&s) = a.slots.get(i) {
                    queue.push_back(s);
                }
            }
        }
        Scheduler {
            cfg,
            slots,
            addrs,
            queue,
            inflight: JoinSet::new(),
            immediate: Vec::new(),
            limit: limit.max(1),
            next_seq: 0,
            next_launch: None,
            done: 0,
            blocked: 0,
            deadline: cfg.max_time.map(|d| Instant::now() + d),
        }
    }

    fn max_attempts(&self, addr: usize) -> u32 {
        match self.cfg.retries {
            Some(r) => r + 1,
            None if self.addrs[addr].loss_seen => LOSSY_ATTEMPTS,
            None => 2,
        }
    }

    /// Feeds a measured round trip and republishes the timeouts when they
    /// change by more than a tenth (waiting attempts wake on each change).
    fn sample(&mut self, addr: usize, rtt: Duration) {
        if self.cfg.timeout.is_some() {
            return;
        }
        let a = &mut self.addrs[addr];
        a.rtt.sample(rtt);
        for t in [Transport::Tcp, Transport::Udp] {
            let new = a.rtt.timeout(floor(t));
            a.timeouts[timer_index(t)].send_if_modified(|old| {
                let change = old.as_secs_f64() - new.as_secs_f64();
                if change.abs() > old.as_secs_f64() / 10.0 {
                    *old = new;
                    true
                } else {
                    false
                }
            });
        }
    }

    /// Probes until every port has its answer, `stop` completes, or
    /// `--max-time` passes.
    pub(super) async fn run(
        mut self,
        progress: &mut dyn FnMut(Progress),
        stop: impl Future<Output = ()>,
    ) -> Result<RunOutcome, EngineError> {
        let started = Instant::now();
        progress(Progress {
            done: 0,
            total: self.slots.len(),
            blocked: 0,
        });
        tokio::pin!(stop);
        let mut interrupted = false;
        let mut out_of_time = false;
        loop {
            self.launch()?;
            for (slot, seq, finished) in std::mem::take(&mut self.immediate) {
                self.settle(slot, seq, finished, progress);
            }
            let now = Instant::now();
            self.advance(now);
            if self.queue.is_empty()
                && self.inflight.is_empty()
                && self.immediate.is_empty()
                && self.addrs.iter().all(|a| matches!(a.pacing, Pacing::Done))
            {
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
            if wake <= now {
                // More to launch at once: let other tasks run, without a
                // timer (whose millisecond granularity would stall us).
                tokio::task::yield_now().await;
                while let Some(joined) = self.inflight.try_join_next() {
                    if let Ok((slot, seq, finished)) = joined {
                        self.settle(slot, seq, finished, progress);
                    }
                }
                if stop_requested(&mut stop) {
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
                () = sleep_until(wake) => {}
            }
            // Take whatever else has completed, without waiting.
            while let Some(joined) = self.inflight.try_join_next() {
                if let Ok((slot, seq, finished)) = joined {
                    self.settle(slot, seq, finished, progress);
                }
            }
        }
        let unprobed = self.abandon();
        let addresses = self.notes(out_of_time);
        let mut results: Vec<PortResult> =
            self.slots.into_iter().filter_map(|s| s.result).collect();
        results.sort_by_key(|r| (r.address, r.transport, r.port));
        Ok(RunOutcome {
            results,
            unprobed,
            interrupted,
            out_of_time,
            addresses,
            duration: started.elapsed(),
        })
    }

    /// Starts attempts from the queue within the concurrency and rate bounds.
    fn launch(&mut self) -> Result<(), EngineError> {
        let mut started = 0;
        while started < LAUNCH_BATCH && self.inflight.len() < self.limit && !self.queue.is_empty() {
            if let Some(rate) = self.cfg.rate {
                let now = Instant::now();
                let interval = Duration::from_secs_f64(1.0 / rate);
                match self.next_launch {
                    Some(next) if now < next => break,
                    Some(next) => self.next_launch = Some((next + interval).max(now)),
                    None => self.next_launch = Some(now + interval),
                }
            }
            let slot = self.queue.pop_front().expect("queue is not empty");
            match self.start(slot) {
                Ok(()) => started += 1,
                Err(e) if attempt::is_resource_exhaustion(&e) && !self.inflight.is_empty() => {
                    // Out of sockets: run with fewer in flight from now on.
                    self.queue.push_front(slot);
                    self.limit = (self.inflight.len() * 7 / 8).max(1);
                    break;
                }
                Err(e) => return Err(EngineError::Socket(e)),
            }
        }
        Ok(())
    }

    fn start(&mut self, slot: usize) -> io::Result<()> {
        let job = self.slots[slot].job;
        let addr = self.slots[slot].addr;
        let target = SocketAddr::new(job.address, job.port);
        let deadline =
            Deadline::new(self.addrs[addr].timeouts[timer_index(job.transport)].subscribe());
        let started = match job.transport {
            Transport::Tcp => attempt::tcp(target, deadline)?,
            Transport::Udp => {
                let nonce = Nonce(rand::random());
                let request =
                    UdpProtocol::for_port(job.port).request(&self.addrs[addr].context, &nonce);
                attempt::udp(target, request, deadline)?
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let s = &mut self.slots[slot];
        s.attempts += 1;
        s.current = Some(seq);
        match started {
            Started::Done(finished) => self.immediate.push((slot, seq, finished)),
            Started::Waiting(fut) => {
                self.inflight.spawn(async move { (slot, seq, fut.await) });
            }
        }
        Ok(())
    }

    /// An attempt got no answer in time.
    fn silence(&mut self, slot: usize, progress: &mut dyn FnMut(Progress)) {
        let addr = self.slots[slot].addr;
        if self.in_round(addr, slot) {
            let attempts = self.slots[slot].attempts;
            if let Some(r) = self.slots[slot].result.as_mut() {
                r.attempts = attempts;
            }
            self.leave_round(addr, slot);
            return;
        }
        if self.slots[slot].attempts < self.max_attempts(addr) {
            self.queue.push_back(slot);
        } else {
            let result = self.silent_result(slot);
            self.record(slot, result, true, progress);
            self.addrs[addr].busy -= 1;
        }
    }

    fn silent_result(&self, slot: usize) -> PortResult {
        let s = &self.slots[slot];
        PortResult {
            address: s.job.address,
            transport: s.job.transport,
            port: s.job.port,
            state: match s.job.transport {
                Transport::Tcp => State::Filtered,
                Transport::Udp => State::OpenFiltered,
            },
            reason: Reason::NoResponse,
            reason_from: None,
            rtt: None,
            attempts: s.attempts,
            reply: None,
            reply_from: None,
            note: None,
        }
    }

    fn record(
        &mut self,
        slot: usize,
        result: PortResult,
        silent: bool,
        progress: &mut dyn FnMut(Progress),
    ) {
        let s = &mut self.slots[slot];
        let was_blocked = s.result.as_ref().is_some_and(PortResult::blocked);
        let now_blocked = result.blocked();
        s.result = Some(result);
        s.silent = silent;
        if !s.counted {
            s.counted = true;
            self.done += 1;
        }
        match (was_blocked, now_blocked) {
            (false, true) => self.blocked += 1,
            (true, false) => self.blocked -= 1,
            _ => {}
        }
        progress(Progress {
            done: self.done,
            total: self.slots.len(),
            blocked: self.blocked,
        });
    }

    /// An attempt brought evidence.
    fn settle(
        &mut self,
        slot: usize,
        seq: u64,
        finished: Finished,
        progress: &mut dyn FnMut(Progress),
    ) {
        if self.slots[slot].current != Some(seq) {
            return; // it had expired already
        }
        self.slots[slot].current = None;
        let addr = self.slots[slot].addr;
        if matches!(finished.evidence, Evidence::Silent) {
            self.silence(slot, progress);
            return;
        }
        if matches!(finished.evidence, Evidence::SelfConnect)
            && self.slots[slot].self_connects + 1 < SELF_CONNECT_LIMIT
        {
            // The connection reached itself: no evidence; probe again at once.
            let s = &mut self.slots[slot];
            s.self_connects += 1;
            s.attempts -= 1;
            self.queue.push_front(slot);
            return;
        }
        // ICMP errors from a router time a shorter path than the target's,
        // so only answers from the target itself time the path.
        let from_target = match &finished.evidence {
            Evidence::Icmp(e) => e.from == Some(self.addrs[addr].ip),
            _ => true,
        };
        if from_target {
            self.sample(addr, finished.rtt);
        }
        // A rate-limited ICMP error answering a retry is no sign of loss.
        if !matches!(finished.evidence, Evidence::Icmp(_))
            && self.slots[slot].attempts > 1
            && !self.in_round(addr, slot)
        {
            self.addrs[addr].loss_seen = true;
        }
        let sender = match &finished.evidence {
            Evidence::Icmp(e) if self.slots[slot].job.transport == Transport::Udp => Some(e.from),
            _ => None,
        };
        let result = judge(&self.slots[slot], finished);
        if matches!(result.state, State::Open | State::Closed) {
            self.addrs[addr].answered = true;
        }
        if let Some(from) = sender {
            self.note_sender(addr, from, slot);
        }
        if self.in_round(addr, slot) {
            if self.slots[slot].silent {
                // A port silenced before now answers: the limit had hidden it.
                self.addrs[addr].revealed += 1;
                self.record(slot, result, false, progress);
            } else {
                // A canary: its answer shows the sender still had capacity.
                let attempts = self.slots[slot].attempts;
                if let Some(r) = self.slots[slot].result.as_mut() {
                    r.attempts = attempts;
                }
                if let (Some(sender), Pacing::Running { answered, .. }) =
                    (sender, &mut self.addrs[addr].pacing)
                {
                    answered.push(sender);
                }
            }
            self.leave_round(addr, slot);
            return;
        }
        self.record(slot, result, false, progress);
        self.addrs[addr].busy -= 1;
    }

    fn note_sender(&mut self, addr: usize, from: Option<IpAddr>, slot: usize) {
        let now = Instant::now();
        let a = &mut self.addrs[addr];
        match a.senders.iter_mut().find(|s| s.ip == from) {
            Some(s) => s.last = now,
            None => a.senders.push(Sender {
                ip: from,
                last: now,
                canary: slot,
            }),
        }
    }

    fn in_round(&self, addr: usize, slot: usize) -> bool {
        matches!(&self.addrs[addr].pacing, Pacing::Running { members, .. } if members.contains(&slot))
    }

    fn leave_round(&mut self, addr: usize, slot: usize) {
        let a = &mut self.addrs[addr];
        if let Pacing::Running { members, .. } = &mut a.pacing {
            members.retain(|&s| s != slot);
        }
        a.busy -= 1;
    }

    /// Moves every idle address forward: more attempts for silent ports once
    /// the path has shown loss, then ICMP rate-limit rounds.
    fn advance(&mut self, now: Instant) {
        for a in 0..self.addrs.len() {
            if self.addrs[a].busy > 0 {
                continue;
            }
            match &self.addrs[a].pacing {
                Pacing::Done => {}
                Pacing::NotStarted => {
                    let max = self.max_attempts(a);
                    let retry: Vec<usize> = self.addrs[a]
                        .slots
                        .iter()
                        .copied()
                        .filter(|&i| self.slots[i].silent && self.slots[i].attempts < max)
                        .collect();
                    if !retry.is_empty() {
                        self.addrs[a].busy += retry.len();
                        self.queue.extend(retry);
                    } else if self.silent_udp(a).is_empty()
                        || (self.addrs[a].senders.is_empty() && !self.addrs[a].answered)
                    {
                        // Nothing silent, or a host that answered nothing at
                        // all: no ICMP limit can have hidden anything.
                        self.addrs[a].pacing = Pacing::Done;
                    } else {
                        // Some ICMP sender may have been out of capacity for
                        // the whole first pass (a blind round finds out).
                        self.addrs[a].pacing_started = Some(now);
                        self.addrs[a].pacing = Pacing::Waiting {
                            until: self.round_start(a, now, now + ROUND_SPACING),
                        };
                    }
                }
                Pacing::Waiting { until } => {
                    if now >= *until {
                        self.start_round(a, now);
                    }
                }
                Pacing::Running {
                    answered, started, ..
                } => {
                    // Every sender, including one first heard during this
                    // round, must have answered its canary after the silent
                    // ports; with no sender at all, the blind round revealed
                    // nothing.
                    let senders = &self.addrs[a].senders;
                    let confirmed = senders.iter().all(|s| answered.contains(&s.ip));
                    let started = *started;
                    if confirmed || self.silent_udp(a).is_empty() {
                        self.addrs[a].pacing_time = self.addrs[a]
                            .pacing_started
                            .map_or(Duration::ZERO, |s| now - s);
                        self.addrs[a].pacing = Pacing::Done;
                    } else {
                        self.addrs[a].pacing = Pacing::Waiting {
                            until: self.round_start(a, now, started + ROUND_SPACING),
                        };
                    }
                }
            }
        }
    }

    fn silent_udp(&self, a: usize) -> Vec<usize> {
        self.addrs[a]
            .slots
            .iter()
            .copied()
            .filter(|&i| self.slots[i].silent && self.slots[i].job.transport == Transport::Udp)
            .collect()
    }

    /// A round re-probes every silent UDP port, then one canary per sender
    /// (none in a blind round, before any sender is known).
    fn start_round(&mut self, a: usize, now: Instant) {
        let mut members = self.silent_udp(a);
        members.extend(self.addrs[a].senders.iter().map(|s| s.canary));
        self.queue.extend(members.iter().copied());
        let addr = &mut self.addrs[a];
        addr.busy += members.len();
        addr.rounds += 1;
        addr.pacing = Pacing::Running {
            members,
            answered: Vec::new(),
            started: now,
        };
    }

    /// When the next round may start: a round spacing after the last ICMP
    /// error from every sender, and not before `earliest`.
    fn round_start(&self, a: usize, now: Instant, earliest: Instant) -> Instant {
        self.addrs[a]
            .senders
            .iter()
            .map(|s| s.last + ROUND_SPACING)
            .fold(earliest.max(now), Instant::max)
    }

    fn next_wake(&self, now: Instant) -> Instant {
        if !self.queue.is_empty()
            && self.inflight.len() < self.limit
            && self.next_launch.is_none_or(|n| n <= now)
        {
            return now;
        }
        let mut wake = now + Duration::from_secs(1);
        for addr in &self.addrs {
            if let Pacing::Waiting { until } = addr.pacing {
                wake = wake.min(until);
            }
        }
        if let (Some(next), false) = (self.next_launch, self.queue.is_empty()) {
            wake = wake.min(next);
        }
        if let Some(deadline) = self.deadline {
            wake = wake.min(deadline);
        }
        wake.max(now)
    }

    /// Stops everything still running; returns how many ports were never probed.
    fn abandon(&mut self) -> usize {
        self.inflight.abort_all();
        let mut unprobed = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].result.is_none() {
                if self.slots[i].attempts > 0 {
                    self.slots[i].result = Some(self.silent_result(i));
                    self.slots[i].silent = true;
                } else {
                    unprobed += 1;
                }
            }
        }
        unprobed
    }

    /// What each address's run showed, and notes on ports the ICMP rate
    /// limit left unconfirmed.
    fn notes(&mut self, out_of_time: bool) -> Vec<AddressNote> {
        let now = Instant::now();
        let mut notes = Vec::with_capacity(self.addrs.len());
        for a in 0..self.addrs.len() {
            let limited = !self.addrs[a].senders.is_empty() || self.addrs[a].answered;
            let unfinished = limited && !matches!(self.addrs[a].pacing, Pacing::Done);
            let mut unconfirmed = 0;
            if unfinished {
                self.addrs[a].pacing_time = self.addrs[a]
                    .pacing_started
                    .map_or(Duration::ZERO, |s| now - s);
                let why = if out_of_time {
                    "not confirmed: the host limits ICMP errors and --max-time ran out before this port could be re-probed; a closed port may hide behind the silence"
                } else {
                    "not confirmed: the host limits ICMP errors and probing stopped before this port could be re-probed; a closed port may hide behind the silence"
                };
                for i in self.silent_udp(a) {
                    if let Some(r) = self.slots[i].result.as_mut() {
                        r.note = Some(why.to_string());
                        unconfirmed += 1;
                    }
                }
            }
            let addr = &self.addrs[a];
            notes.push(AddressNote {
                address: addr.ip,
                icmp_senders: addr.senders.iter().filter_map(|s| s.ip).collect(),
                icmp_rounds: addr.rounds,
                icmp_revealed: addr.revealed,
                icmp_unconfirmed: unconfirmed,
                icmp_time: addr.pacing_time,
                loss_seen: addr.loss_seen,
                srtt: addr.rtt.srtt(),
            });
        }
        notes
    }
}

/// Turns evidence into a state and reason.
fn judge(slot: &Slot, finished: Finished) -> PortResult {
    let job = slot.job;
    let mut r = PortResult {
        address: job.address,
        transport: job.transport,
        port: job.port,
        state: State::Filtered,
        reason: Reason::NoResponse,
        reason_from: None,
        rtt: Some(finished.rtt),
        attempts: slot.attempts,
        reply: None,
        reply_from: None,
        note: None,
    };
    match finished.evidence {
        Evidence::Connected => {
            r.state = State::Open;
            r.reason = Reason::SynAck;
        }
        Evidence::SelfConnect => {
            r.state = State::Closed;
            r.reason = Reason::ConnRefused;
            r.note = Some(
                "every connect reached itself (the kernel chose this port as the source port), which happens only when nothing listens".to_string(),
            );
        }
        Evidence::Refused => {
            r.state = State::Closed;
            r.reason = match job.transport {
                Transport::Tcp => Reason::ConnRefused,
                Transport::Udp => Reason::PortUnreachable,
            };
        }
        Evidence::Datagram { reply, from } => {
            r.state = State::Open;
            r.reason = if reply.is_some() {
                Reason::UdpResponse
            } else {
                Reason::UdpResponseUnrecognised
            };
            r.reply = reply;
            if from != SocketAddr::new(job.address, job.port) {
                r.reply_from = Some(from);
            }
        }
        Evidence::Icmp(e) => {
            r.reason = Reason::from_icmp(e.icmp);
            r.reason_from = e.from;
            let from_target = e.from.is_none_or(|f| f == job.address);
            r.state = if r.reason == Reason::PortUnreachable && from_target {
                State::Closed
            } else {
                State::Filtered
            };
        }
        Evidence::Local(reason) => r.reason = reason,
        Evidence::Silent => {
            r.state = match job.transport {
                Transport::Tcp => State::Filtered,
                Transport::Udp => State::OpenFiltered,
            };
            r.rtt = None;
        }
    }
    r
}

/// Whether `stop` has completed, without waiting for it.
fn stop_requested<F: Future<Output = ()>>(stop: &mut std::pin::Pin<&mut F>) -> bool {
    futures::FutureExt::now_or_never(stop.as_mut()).is_some()
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
}
