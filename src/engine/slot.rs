//! The ports of a run and where each stands. A port's state is one enum,
//! changed only through [`Slots::set`], which keeps the counts that depend
//! on it (ports of each address still in progress, ports with a result,
//! ports blocked) in step.

use super::Job;
use super::outcome::PortResult;
use super::verdict::is_silence;
use crate::port::Transport;

/// Why a port is queued or probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Its first attempt, or a retry of a silent port.
    Pass,
    /// A re-probe of a silent UDP port in an ICMP rate-limit round.
    Round,
    /// A port that drew an ICMP error before, probed last in a round to
    /// show that its sender still had capacity.
    Canary,
}

/// Where one port stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Waiting in the queue; `last` is what is known so far.
    Queued {
        stage: Stage,
        last: Option<PortResult>,
    },
    /// An attempt is out; `seq` identifies it.
    Running {
        stage: Stage,
        seq: u64,
        last: Option<PortResult>,
    },
    /// Not in progress; the result may still be revisited by a later retry
    /// or round when it records silence.
    Settled(PortResult),
}

impl SlotState {
    /// The result known so far.
    pub fn result(&self) -> Option<&PortResult> {
        match self {
            SlotState::Queued { last, .. } | SlotState::Running { last, .. } => last.as_ref(),
            SlotState::Settled(r) => Some(r),
        }
    }

    fn in_progress(&self) -> bool {
        !matches!(self, SlotState::Settled(_))
    }
}

/// One port of one address.
#[derive(Clone, Debug)]
pub struct Slot {
    /// What to probe.
    pub job: Job,
    /// Index of the address.
    pub addr: usize,
    /// Attempts sent.
    pub attempts: u32,
    /// Attempts that proved nothing because they reached portprobe's own
    /// sockets (a TCP self-connect, a UDP port held by a probe socket).
    pub own_hits: u32,
    /// Attempts after which the port waited because a far-side responder
    /// answered busy (no room), or not at all in time.
    pub waits: u32,
    state: SlotState,
}

impl Slot {
    /// Where the port stands.
    pub fn state(&self) -> &SlotState {
        &self.state
    }
}

/// What the counts need to know of one state.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Weight {
    in_progress: bool,
    with_result: bool,
    blocked: bool,
    silent_udp: bool,
}

impl Weight {
    fn of(slot: &Slot) -> Weight {
        let result = slot.state.result();
        Weight {
            in_progress: slot.state.in_progress(),
            with_result: result.is_some(),
            blocked: result.is_some_and(PortResult::blocked),
            silent_udp: matches!(&slot.state, SlotState::Settled(r)
                if is_silence(r) && r.transport == Transport::Udp),
        }
    }
}

fn adjust(count: &mut usize, was: bool, is: bool) {
    match (was, is) {
        (false, true) => *count += 1,
        (true, false) => *count -= 1,
        _ => {}
    }
}

/// Every port of a run.
#[derive(Debug, Default)]
pub struct Slots {
    slots: Vec<Slot>,
    by_addr: Vec<Vec<usize>>,
    in_progress: Vec<usize>,
    silent_udp: Vec<usize>,
    with_result: usize,
    blocked: usize,
}

impl Slots {
    /// A table for `addresses` addresses.
    pub fn new(addresses: usize) -> Self {
        Slots {
            by_addr: vec![Vec::new(); addresses],
            in_progress: vec![0; addresses],
            silent_udp: vec![0; addresses],
            ..Slots::default()
        }
    }

    /// Adds a port, queued for its first attempt; returns its index.
    pub fn push(&mut self, job: Job, addr: usize) -> usize {
        self.in_progress[addr] += 1;
        self.by_addr[addr].push(self.slots.len());
        self.slots.push(Slot {
            job,
            addr,
            attempts: 0,
            own_hits: 0,
            waits: 0,
            state: SlotState::Queued {
                stage: Stage::Pass,
                last: None,
            },
        });
        self.slots.len() - 1
    }

    /// The port at `i`.
    pub fn get(&self, i: usize) -> &Slot {
        &self.slots[i]
    }

    /// The port at `i`, for its counters; its state changes only with
    /// [`Slots::set`].
    pub fn get_mut(&mut self, i: usize) -> &mut Slot {
        &mut self.slots[i]
    }

    /// Moves the port at `i` to `state`, keeping the counts in step.
    pub fn set(&mut self, i: usize, state: SlotState) {
        self.update(i, |_| state);
    }

    /// Moves the port at `i` to the state `change` makes of its current
    /// one, keeping the counts in step. The only way a state changes.
    pub fn update(&mut self, i: usize, change: impl FnOnce(SlotState) -> SlotState) {
        let slot = &mut self.slots[i];
        let was = Weight::of(slot);
        let placeholder = SlotState::Queued {
            stage: Stage::Pass,
            last: None,
        };
        slot.state = change(std::mem::replace(&mut slot.state, placeholder));
        let is = Weight::of(slot);
        let addr = slot.addr;
        adjust(&mut self.in_progress[addr], was.in_progress, is.in_progress);
        adjust(&mut self.silent_udp[addr], was.silent_udp, is.silent_udp);
        adjust(&mut self.with_result, was.with_result, is.with_result);
        adjust(&mut self.blocked, was.blocked, is.blocked);
    }

    /// Ports of address `addr` queued or running.
    pub fn in_progress(&self, addr: usize) -> usize {
        self.in_progress[addr]
    }

    /// Settled UDP ports of address `addr` whose result is silence.
    pub fn silent_udp(&self, addr: usize) -> usize {
        self.silent_udp[addr]
    }

    /// The ports of address `addr`.
    pub fn of_addr(&self, addr: usize) -> &[usize] {
        &self.by_addr[addr]
    }

    /// Ports with a result.
    pub fn with_result(&self) -> usize {
        self.with_result
    }

    /// Ports whose result so far is blocked.
    pub fn blocked(&self) -> usize {
        self.blocked
    }

    /// Number of ports.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every port, for the results.
    pub fn into_inner(self) -> Vec<Slot> {
        self.slots
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::engine::Probe;
    use crate::engine::outcome::{Reason, State};

    fn result(state: State) -> PortResult {
        PortResult::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Probe::Tcp,
            1,
            state,
            Reason::NoResponse,
        )
    }

    #[test]
    fn counts_follow_every_change() {
        let mut slots = Slots::new(2);
        let job = Job {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 1,
            probe: Probe::Tcp,
        };
        let a = slots.push(job, 0);
        let b = slots.push(job, 1);
        assert_eq!((slots.in_progress(0), slots.in_progress(1)), (1, 1));
        slots.set(
            a,
            SlotState::Running {
                stage: Stage::Pass,
                seq: 0,
                last: None,
            },
        );
        slots.set(a, SlotState::Settled(result(State::Filtered)));
        assert_eq!(
            (slots.in_progress(0), slots.with_result(), slots.blocked()),
            (0, 1, 1)
        );
        // A retry keeps the result known so far, and with it the counts.
        slots.set(
            a,
            SlotState::Queued {
                stage: Stage::Pass,
                last: Some(result(State::Filtered)),
            },
        );
        assert_eq!(
            (slots.in_progress(0), slots.with_result(), slots.blocked()),
            (1, 1, 1)
        );
        slots.set(a, SlotState::Settled(result(State::Open)));
        slots.set(b, SlotState::Settled(result(State::Closed)));
        assert_eq!(
            (
                slots.in_progress(0),
                slots.in_progress(1),
                slots.with_result(),
                slots.blocked()
            ),
            (0, 0, 2, 0)
        );
    }
}
