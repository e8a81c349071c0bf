//! The Prometheus text exposition format (version 0.0.4): for node_exporter's
//! textfile collector (`--format prometheus --output
//! /var/lib/node_exporter/portprobe.prom`, written atomically), and as the
//! exporter's answer to a scrape of `/probe`.
//!
//! Every series carries `target`. A port's 0/1 gauge carries only the
//! labels that name the port (target, address, protocol, port, and the
//! catalog's service and products), so a port whose outcome changes stays
//! one series; what changes from one probe to the next (the state, the
//! reason, who sent it, where the port stops) is on the port's
//! `portprobe_port_info` series, whose value is always 1. A label without a
//! value is left out, never written empty.

use std::fmt::Write as _;

use super::Status;
use super::json::located_how;
use super::model::{Report, Row, TargetReport};
use crate::clean;

/// Every label a series of the exposition may carry: a constant label
/// added to them all must be named otherwise.
pub const LABELS: &[&str] = &[
    "target",
    "address",
    "protocol",
    "port",
    "service",
    "product",
    "state",
    "reason",
    "reason_from",
    "located_how",
    "located_after_hop",
    "located_before_hop",
    "located_after",
    "located_before",
];

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// What an exposition adds to the series every one has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Answer as a multi-target exporter: `probe_success` and
    /// `probe_duration_seconds`, the names blackbox_exporter's users'
    /// alerts read, in place of `portprobe_probe_success` and
    /// `portprobe_probe_duration_seconds`.
    pub probe_metrics: bool,
    /// What a target's success series says.
    pub success: Success,
}

/// When a target's `probe_success` (or `portprobe_probe_success`) is 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Success {
    /// No required port is blocked and the run completed (status OK or
    /// WARNING): a closed port is an answer, not a block.
    #[default]
    NotBlocked,
    /// Every port probed is open, as blackbox_exporter's `tcp_connect`
    /// says of its one port: a connection completed.
    Open,
}

/// `target="..."`, the label every series has.
fn target_label(t: &TargetReport) -> String {
    format!("target=\"{}\"", clean::prometheus_label(&t.host))
}

/// The labels that name one port: its target, address, protocol and port,
/// the catalog's service, and the products that need it (comma-separated;
/// none for a port no product asked for needs).
fn port_labels(t: &TargetReport, row: &Row) -> String {
    let r = &row.result;
    let mut labels = format!(
        "{},address=\"{}\",protocol=\"{}\",port=\"{}\",service=\"{}\"",
        target_label(t),
        r.address,
        r.transport,
        r.port,
        clean::prometheus_label(&row.service),
    );
    if !row.products.is_empty() {
        let _ = write!(
            labels,
            ",product=\"{}\"",
            clean::prometheus_label(&row.products.join(","))
        );
    }
    labels
}

/// What one port's probe found: the state and the reason; who sent the
/// reason, when something did; and where the port stops, when it was
/// located: how (`dropped`, `rejected`, `at-host`, `unconfirmed`, as JSON's
/// `located.how`), the last hop it demonstrably reached (0 is this
/// computer), the first it is known not to reach, and their addresses,
/// when known.
fn outcome_labels(row: &Row) -> String {
    let r = &row.result;
    let mut labels = format!("state=\"{}\",reason=\"{}\"", r.state, r.reason);
    if let Some(from) = r.reason_from {
        let _ = write!(labels, ",reason_from=\"{from}\"");
    }
    if let Some(l) = r.located {
        let _ = write!(
            labels,
            ",located_how=\"{}\",located_after_hop=\"{}\",located_before_hop=\"{}\"",
            located_how(l.how),
            l.after_hop,
            l.before_hop
        );
        if let Some(after) = l.after {
            let _ = write!(labels, ",located_after=\"{after}\"");
        }
        if let Some(before) = l.before {
            let _ = write!(labels, ",located_before=\"{before}\"");
        }
    }
    labels
}

/// The whole exposition, as `--format prometheus` writes it.
pub fn render(report: &Report) -> String {
    render_with(report, Options::default())
}

/// The whole exposition, with `options`.
pub fn render_with(report: &Report, options: Options) -> String {
    let mut out = String::new();
    port_series(&mut out, report);
    target_series(&mut out, report);
    let (success, duration) = if options.probe_metrics {
        ("probe_success", "probe_duration_seconds")
    } else {
        (
            "portprobe_probe_success",
            "portprobe_probe_duration_seconds",
        )
    };
    let help = match options.success {
        Success::NotBlocked => {
            "1 when no required port of the target is blocked and the run completed (status OK or WARNING), else 0."
        }
        Success::Open => {
            "1 when the port is open (a TCP connection completed), else 0, as blackbox_exporter's tcp_connect says."
        }
    };
    header(&mut out, success, help);
    for t in &report.targets {
        let ok = match options.success {
            Success::NotBlocked => matches!(report.target_status(t), Status::Ok | Status::Warning),
            Success::Open => {
                let s = t.summary();
                report.target_complete(t) && s.open > 0 && s.open == t.rows.len()
            }
        };
        let _ = writeln!(out, "{success}{{{}}} {}", target_label(t), u8::from(ok));
    }
    header(
        &mut out,
        duration,
        "Seconds from the start of the run until its report was ready.",
    );
    for t in &report.targets {
        let _ = writeln!(
            out,
            "{duration}{{{}}} {}",
            target_label(t),
            report.duration.as_secs_f64()
        );
    }
    out
}

/// Two series per port: whether it is blocked, and what was found.
fn port_series(out: &mut String, report: &Report) {
    header(
        out,
        "portprobe_port_blocked",
        "1 when the port is blocked (filtered), else 0. What blocks it, and where, is on portprobe_port_info.",
    );
    for t in &report.targets {
        for row in &t.rows {
            let _ = writeln!(
                out,
                "portprobe_port_blocked{{{}}} {}",
                port_labels(t, row),
                u8::from(row.result.blocked())
            );
        }
    }
    header(
        out,
        "portprobe_port_info",
        "Always 1: what the probe of the port found: state, reason, reason_from (who sent the reason) and, for a located port, where it stops: located_how, located_after_hop, located_after, located_before_hop, located_before.",
    );
    for t in &report.targets {
        for row in &t.rows {
            let _ = writeln!(
                out,
                "portprobe_port_info{{{},{}}} 1",
                port_labels(t, row),
                outcome_labels(row)
            );
        }
    }
    header(
        out,
        "portprobe_port_located_age_seconds",
        "For a located port: how long ago where it stops was found (0 in this run; more for an answer the exporter kept from an earlier scrape).",
    );
    for t in &report.targets {
        for row in &t.rows {
            if let Some(l) = row.result.located {
                let _ = writeln!(
                    out,
                    "portprobe_port_located_age_seconds{{{}}} {}",
                    port_labels(t, row),
                    l.age.as_secs()
                );
            }
        }
    }
}

/// The series per target: its counts, each product's status, its own.
fn target_series(out: &mut String, report: &Report) {
    header(
        out,
        "portprobe_ports",
        "Number of probed ports of the target per state.",
    );
    for t in &report.targets {
        let s = t.summary();
        for (state, n) in [
            ("open", s.open),
            ("closed", s.closed),
            ("filtered", s.filtered),
            ("open|filtered", s.open_filtered),
        ] {
            let _ = writeln!(
                out,
                "portprobe_ports{{{},state=\"{state}\"}} {n}",
                target_label(t)
            );
        }
    }
    header(
        out,
        "portprobe_product_status",
        "Status of each product checked on the target (a product asked for, or one it includes), over the ports whose products name it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    for t in &report.targets {
        for g in t.by_product() {
            let _ = writeln!(
                out,
                "portprobe_product_status{{{},product=\"{}\"}} {}",
                target_label(t),
                clean::prometheus_label(g.product),
                g.status.code()
            );
        }
    }
    header(
        out,
        "portprobe_status",
        "Status of the target in this run, as the exit code says it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. The run's exit code is the largest.",
    );
    for t in &report.targets {
        let _ = writeln!(
            out,
            "portprobe_status{{{}}} {}",
            target_label(t),
            report.target_status(t).code()
        );
    }
}
