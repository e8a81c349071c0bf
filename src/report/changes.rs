//! What changed between two runs, for `--watch`: one line per port whose
//! state or reason changed ("12:03:10 tcp/548 open -> filtered
//! (no-response)"), and per target whose addresses or resolution changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::Report;
use crate::clean::clean;
use crate::engine::{PortResult, Reason, State};
use crate::port::Transport;

type Key = (IpAddr, Transport, u16);

fn outcome(r: &PortResult) -> (State, Reason, Option<IpAddr>) {
    (r.state, r.reason, r.reason_from)
}

fn describe(state: State, reason: Reason, from: Option<IpAddr>) -> String {
    match from {
        Some(f) => format!("{state} ({reason} from {f})"),
        None => format!("{state} ({reason})"),
    }
}

/// The change lines between `before` and `after`, each starting with `time`.
/// Addresses are named only when the runs probed more than one.
pub fn render(before: &Report, after: &Report, time: &str) -> String {
    let mut out = String::new();
    let index = |report: &Report| -> BTreeMap<Key, (State, Reason, Option<IpAddr>)> {
        report
            .targets
            .iter()
            .flat_map(|t| t.rows.iter())
            .map(|row| {
                let r = &row.result;
                ((r.address, r.transport, r.port), outcome(r))
            })
            .collect()
    };
    for t in &after.targets {
        let Some(old) = before.targets.iter().find(|o| o.host == t.host) else {
            continue;
        };
        match (&old.error, &t.error) {
            (None, Some(e)) => {
                let _ = writeln!(out, "{time} {}: {}", clean(&t.host), clean(e));
            }
            (Some(_), None) => {
                let _ = writeln!(out, "{time} {}: resolves again", clean(&t.host));
            }
            _ => {}
        }
        if old.error.is_none() && t.error.is_none() && old.addresses != t.addresses {
            let list = |a: &[IpAddr]| {
                a.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "{time} {}: addresses changed: {} -> {}",
                clean(&t.host),
                list(&old.addresses),
                list(&t.addresses)
            );
        }
    }
    let (old, new) = (index(before), index(after));
    let addresses: std::collections::BTreeSet<IpAddr> =
        old.keys().chain(new.keys()).map(|k| k.0).collect();
    let name = |k: &Key| {
        if addresses.len() > 1 {
            format!("{} {}/{}", k.0, k.1, k.2)
        } else {
            format!("{}/{}", k.1, k.2)
        }
    };
    for (key, now) in &new {
        match old.get(key) {
            Some(was) if was.0 != now.0 || was.1 != now.1 || was.2 != now.2 => {
                let _ = writeln!(
                    out,
                    "{time} {} {} -> {}",
                    name(key),
                    was.0,
                    describe(now.0, now.1, now.2)
                );
            }
            Some(_) => {}
            None => {
                let _ = writeln!(
                    out,
                    "{time} {} now probed: {}",
                    name(key),
                    describe(now.0, now.1, now.2)
                );
            }
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(k)) {
        let _ = writeln!(out, "{time} {} no longer probed", name(key));
    }
    out
}
