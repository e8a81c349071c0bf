//! Which ports to trace, and which port of the same host is the control.

use super::{BETWEEN, MAX_TRACED};
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

/// Runs of results to locate (consecutive ports with one outcome), and the
/// sample traced for each: first, last and a few between.
pub(super) fn samples(results: &[&PortResult]) -> Vec<(Vec<usize>, Vec<usize>)> {
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
