//! What to locate: the runs of an address's blocked ports that behave
//! alike (one question each, whatever services the catalog names inside
//! a run), the one port traced for each, and the control port.

use super::MAX_TRACED;
use super::memory::{Behaviour, Outcome};
use crate::engine::Probe;
use crate::engine::outcome::{PortResult, Reason, State};
use crate::port::Transport;

/// The control port of an address's results: one that got through (a TCP
/// port that answered, preferably closed, or a UDP port its host answered;
/// against a responder, a port it answered on).
pub(super) fn control(results: &[&PortResult]) -> Option<(Probe, u16)> {
    let rank = |r: &PortResult| match (r.transport, r.reason) {
        (Transport::Tcp, Reason::ConnRefused) => Some(0),
        (
            Transport::Tcp,
            Reason::SynAck | Reason::Responder | Reason::NotResponder | Reason::ResponderBusy,
        ) => Some(1),
        (Transport::Udp, Reason::PortUnreachable) if r.state == State::Closed => Some(2),
        (Transport::Udp, Reason::UdpResponse | Reason::Responder) if r.reply_from.is_none() => {
            Some(3)
        }
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
pub(crate) fn wanted(r: &PortResult) -> bool {
    match r.state {
        State::Filtered => !matches!(
            r.reason,
            Reason::LocalError | Reason::LocalFirewall | Reason::NoRoute
        ),
        State::OpenFiltered => true,
        State::Open | State::Closed => false,
    }
}

/// One run of consecutive ports with one outcome, and the port traced for
/// it.
#[derive(Clone, Debug)]
pub(super) struct Run {
    /// Indexes of the run's results.
    pub members: Vec<usize>,
    /// The result traced: the run's first port.
    pub sample: usize,
    /// The run as memory keys it.
    pub behaviour: Behaviour,
}

/// The runs of `results` (one address's, sorted by transport and port) to
/// locate, at most [`MAX_TRACED`].
pub(super) fn runs(results: &[&PortResult]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if !wanted(r) {
            continue;
        }
        let extends = out.last().is_some_and(|run| {
            let j = *run.members.last().expect("a run has a port");
            let p = results[j];
            j + 1 == i
                && p.transport == r.transport
                && u32::from(p.port) + 1 == u32::from(r.port)
                && Outcome::of(p) == Outcome::of(r)
        });
        if extends {
            let run = out.last_mut().expect("a run");
            run.members.push(i);
            run.behaviour.last = r.port;
        } else {
            if out.len() == MAX_TRACED {
                break;
            }
            out.push(Run {
                members: vec![i],
                sample: i,
                behaviour: Behaviour {
                    transport: r.transport,
                    first: r.port,
                    last: r.port,
                    outcome: Outcome::of(r),
                },
            });
        }
    }
    out
}
