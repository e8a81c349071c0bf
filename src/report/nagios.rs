//! The Nagios / Icinga / Sensu plugin format: one status line with
//! performance data, and the plugin exit codes (0 OK, 1 WARNING,
//! 2 CRITICAL, 3 UNKNOWN).
//!
//! `PORTPROBE CRITICAL - 3 of 41 ports blocked (Mail, Web Service): tcp/25,
//! ... | open=37;;;0 ...`

use std::fmt::Write as _;

use super::Status;
use super::model::{Report, Row};
use super::service;
use crate::clean;

/// Up to this many blocked ports are named in the status line.
const NAMED: usize = 8;

fn port_name(row: &Row, many_targets: bool, host: &str) -> String {
    let r = &row.result;
    if many_targets {
        format!("{} {}/{}", clean::nagios(host), r.transport, r.port)
    } else {
        format!("{}/{}", r.transport, r.port)
    }
}

/// The status line.
pub fn render(report: &Report) -> String {
    let status = report.status();
    let s = report.summary();
    let many = report.targets.len() > 1;
    let total: usize = s.total() + report.targets.iter().map(|t| t.unprobed).sum::<usize>();
    let blocked: Vec<String> = report
        .targets
        .iter()
        .flat_map(|t| {
            t.rows
                .iter()
                .filter(|r| r.result.blocked())
                .map(move |r| port_name(r, many, &t.host))
        })
        .collect();
    let mut text = format!("PORTPROBE {} - ", status.word());
    if many {
        let _ = write!(text, "{} targets, ", report.targets.len());
    }
    let errors: Vec<String> = report
        .targets
        .iter()
        .filter_map(|t| {
            t.error
                .as_ref()
                .map(|e| format!("{}: {}", clean::nagios(&t.host), clean::nagios(e)))
        })
        .collect();
    let services = clean::nagios(&service::in_parentheses(&blocked_services(report)));
    match status {
        Status::Critical => {
            let _ = write!(
                text,
                "{} of {total} ports blocked{services}: {}",
                blocked.len(),
                name_list(&blocked)
            );
        }
        Status::Warning => {
            let _ = write!(
                text,
                "no port blocked; {} closed, {} UDP without reply, of {total} ports",
                s.closed, s.open_filtered
            );
        }
        Status::Ok => {
            let _ = write!(text, "all {total} ports reachable");
        }
        Status::Unknown if !errors.is_empty() => {
            let _ = write!(text, "{}", errors.join("; "));
        }
        Status::Unknown => {
            let _ = write!(text, "incomplete: {} of {total} ports probed", s.total());
            if !blocked.is_empty() {
                let _ = write!(
                    text,
                    "; {} blocked so far{services}: {}",
                    blocked.len(),
                    name_list(&blocked)
                );
            }
        }
    }
    let _ = writeln!(
        text,
        " | open={};;;0 closed={};;;0 filtered={};;;0 open_filtered={};;;0 blocked={};;;0 time={:.3}s;;;0",
        s.open,
        s.closed,
        s.filtered,
        s.open_filtered,
        s.blocked(),
        report.duration.as_secs_f64()
    );
    text
}

/// The services with a blocked port on any target, each once, in the order
/// the targets and their plans give.
fn blocked_services(report: &Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &report.targets {
        for name in service::blocked_services(t) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

fn name_list(names: &[String]) -> String {
    if names.len() <= NAMED {
        names.join(", ")
    } else {
        format!(
            "{}, and {} more",
            names[..NAMED].join(", "),
            names.len() - NAMED
        )
    }
}
