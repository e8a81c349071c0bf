//! The Prometheus text exposition format (version 0.0.4), e.g. for
//! node_exporter's textfile collector (`--format prometheus --output
//! /var/lib/node_exporter/portprobe.prom`, written atomically).

use std::fmt::Write as _;

use super::Status;
use super::clean;
use super::model::{Report, Summary};

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// What an exposition adds to the series every one has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `reason` and `reason_from` labels on the per-port series (the
    /// exporter's answers).
    pub reasons: bool,
    /// The unprefixed `probe_success` and `probe_duration_seconds` that
    /// Prometheus users expect of a probe (blackbox_exporter's names).
    pub probe_metrics: bool,
}

/// The labels of one port's series.
fn port_labels(host: &str, row: &super::model::Row, options: Options) -> String {
    let r = &row.result;
    let mut labels = format!(
        "target=\"{}\",address=\"{}\",protocol=\"{}\",port=\"{}\",service=\"{}\"",
        clean::prometheus_label(host),
        r.address,
        r.transport,
        r.port,
        clean::prometheus_label(&row.service),
    );
    if options.reasons {
        let _ = write!(
            labels,
            ",reason=\"{}\",reason_from=\"{}\"",
            r.reason,
            r.reason_from.map(|a| a.to_string()).unwrap_or_default()
        );
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

    header(
        &mut out,
        "portprobe_port_state",
        "State of a probed port: 1 for the state it is in (open, closed, filtered, open|filtered).",
    );
    for t in &report.targets {
        for row in &t.rows {
            let _ = writeln!(
                out,
                "portprobe_port_state{{{},state=\"{}\"}} 1",
                port_labels(&t.host, row, options),
                row.result.state
            );
        }
    }

    header(
        &mut out,
        "portprobe_port_blocked",
        "1 when the port is blocked (filtered), else 0.",
    );
    for t in &report.targets {
        for row in &t.rows {
            let _ = writeln!(
                out,
                "portprobe_port_blocked{{{}}} {}",
                port_labels(&t.host, row, options),
                u8::from(row.result.blocked())
            );
        }
    }

    header(
        &mut out,
        "portprobe_ports",
        "Number of probed ports per state.",
    );
    for t in &report.targets {
        let s: Summary = t.summary();
        for (state, n) in [
            ("open", s.open),
            ("closed", s.closed),
            ("filtered", s.filtered),
            ("open|filtered", s.open_filtered),
        ] {
            let _ = writeln!(
                out,
                "portprobe_ports{{target=\"{}\",state=\"{state}\"}} {n}",
                clean::prometheus_label(&t.host)
            );
        }
    }

    header(
        &mut out,
        "portprobe_probe_duration_seconds",
        "Wall time of the run.",
    );
    let _ = writeln!(
        out,
        "portprobe_probe_duration_seconds {}",
        report.duration.as_secs_f64()
    );

    header(
        &mut out,
        "portprobe_probe_success",
        "1 when no required port of the target is blocked and the run completed (status OK or WARNING), else 0.",
    );
    for t in &report.targets {
        let ok = matches!(report.target_status(t), Status::Ok | Status::Warning);
        let _ = writeln!(
            out,
            "portprobe_probe_success{{target=\"{}\"}} {}",
            clean::prometheus_label(&t.host),
            u8::from(ok)
        );
    }

    header(
        &mut out,
        "portprobe_product_status",
        "Status of each product checked on the target (a product asked for, or one it includes), over the ports whose products name it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    for t in &report.targets {
        for g in t.by_product() {
            let _ = writeln!(
                out,
                "portprobe_product_status{{target=\"{}\",product=\"{}\"}} {}",
                clean::prometheus_label(&t.host),
                clean::prometheus_label(g.product),
                g.status.code()
            );
        }
    }

    header(
        &mut out,
        "portprobe_status",
        "Exit status of the run: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    let _ = writeln!(out, "portprobe_status {}", report.status().code());

    if options.probe_metrics {
        header(
            &mut out,
            "probe_success",
            "1 when the probe succeeded: no required port blocked, the run complete (status OK or WARNING).",
        );
        let ok = matches!(report.status(), Status::Ok | Status::Warning);
        let _ = writeln!(out, "probe_success {}", u8::from(ok));
        header(
            &mut out,
            "probe_duration_seconds",
            "How long the probe took, in seconds.",
        );
        let _ = writeln!(
            out,
            "probe_duration_seconds {}",
            report.duration.as_secs_f64()
        );
    }
    out
}
