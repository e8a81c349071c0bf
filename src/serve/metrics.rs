//! The exporter's own metrics (`/metrics`): probes served by outcome, in
//! flight, their durations, the shared concurrency limit, and the HTTP
//! connections: open, their caps, and those the exporter closed itself.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a probe request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Probed; `probe_success` 1.
    Success,
    /// Probed (or the target did not resolve); `probe_success` 0.
    Failure,
    /// The target is outside the allow-list (HTTP 403, nothing sent).
    Forbidden,
    /// The request was malformed (HTTP 400).
    BadRequest,
    /// No capacity before the deadline, or too many requests from one
    /// source (HTTP 503 or 429).
    Busy,
}

const OUTCOMES: [(Outcome, &str); 5] = [
    (Outcome::Success, "success"),
    (Outcome::Failure, "failure"),
    (Outcome::Forbidden, "forbidden"),
    (Outcome::BadRequest, "bad_request"),
    (Outcome::Busy, "busy"),
];

/// Why the exporter closed a connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Refused at once: its source already held its share of connections.
    PerSource,
    /// Refused at once: every connection had a request in progress (or
    /// was still closing to make room).
    AllBusy,
    /// Closed, waiting, to make room for new connections.
    Reused,
    /// Its request head was not complete within the header-read timeout.
    HeaderTimeout,
    /// Idle between requests past the idle timeout.
    IdleTimeout,
    /// Its client did not take a response within the send timeout.
    SendTimeout,
    /// Its TLS handshake failed, or was not done within the header-read
    /// timeout (a client speaking plain HTTP to the TLS port among them).
    TlsHandshake,
}

const CLOSED: [(Closed, &str); 7] = [
    (Closed::PerSource, "per_source_limit"),
    (Closed::AllBusy, "all_busy"),
    (Closed::Reused, "reused"),
    (Closed::HeaderTimeout, "header_timeout"),
    (Closed::IdleTimeout, "idle_timeout"),
    (Closed::SendTimeout, "send_timeout"),
    (Closed::TlsHandshake, "tls_handshake"),
];

/// The HTTP connections: open now, the caps, and those closed by each cap
/// or timeout.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicU64,
    closed: [AtomicU64; CLOSED.len()],
    limit: AtomicU64,
    per_source: AtomicU64,
}

impl Connections {
    /// Connections with the caps `all` and `per_source`.
    pub fn with_limits(all: usize, per_source: usize) -> Self {
        let c = Connections::default();
        c.limit.store(all as u64, Ordering::Relaxed);
        c.per_source.store(per_source as u64, Ordering::Relaxed);
        c
    }

    /// One more connection open.
    pub fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// One connection fewer open.
    pub fn ended(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a connection closed by the exporter, and why.
    pub fn closed(&self, why: Closed) {
        if let Some(i) = CLOSED.iter().position(|(c, _)| *c == why) {
            self.closed[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed for `why` so far.
    #[cfg(test)]
    pub fn closed_count(&self, why: Closed) -> u64 {
        CLOSED
            .iter()
            .position(|(c, _)| *c == why)
            .map_or(0, |i| self.closed[i].load(Ordering::Relaxed))
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_connections HTTP connections open now.\n# TYPE portprobe_exporter_connections gauge\nportprobe_exporter_connections {}",
            self.open()
        );
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_connections_limit Most HTTP connections open at once, in all and from one source address.\n# TYPE portprobe_exporter_connections_limit gauge\nportprobe_exporter_connections_limit{{scope=\"all\"}} {}\nportprobe_exporter_connections_limit{{scope=\"per_source\"}} {}",
            self.limit.load(Ordering::Relaxed),
            self.per_source.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_connections_closed_total HTTP connections the exporter closed itself, by cap or timeout.\n# TYPE portprobe_exporter_connections_closed_total counter"
        );
        for (i, (_, name)) in CLOSED.iter().enumerate() {
            let _ = writeln!(
                out,
                "portprobe_exporter_connections_closed_total{{reason=\"{name}\"}} {}",
                self.closed[i].load(Ordering::Relaxed)
            );
        }
    }
}

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    outcomes: [AtomicU64; OUTCOMES.len()],
    in_flight: AtomicU64,
    durations: Mutex<Histogram>,
}

/// Counts a probe as in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one more probe in flight.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records how a request ended and, for a probe that ran, how long it
    /// took.
    pub fn record(&self, outcome: Outcome, took: Option<Duration>) {
        if let Some(i) = OUTCOMES.iter().position(|(o, _)| *o == outcome) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(took) = took {
            let secs = took.as_secs_f64();
            let mut h = self
                .durations
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// The exposition, with the limit, the sockets in use now and the
    /// connections.
    pub fn render(&self, limit: usize, in_use: usize, connections: &Connections) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_probes_total Probe requests served, by how they ended.\n# TYPE portprobe_exporter_probes_total counter"
        );
        for (i, (_, name)) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "portprobe_exporter_probes_total{{result=\"{name}\"}} {}",
                self.outcomes[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_probes_in_flight Probe requests being served now.\n# TYPE portprobe_exporter_probes_in_flight gauge\nportprobe_exporter_probes_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_concurrency_limit Most probes in flight at once, over every request.\n# TYPE portprobe_exporter_concurrency_limit gauge\nportprobe_exporter_concurrency_limit {limit}"
        );
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_concurrency_in_use Probes in flight now, over every request.\n# TYPE portprobe_exporter_concurrency_in_use gauge\nportprobe_exporter_concurrency_in_use {in_use}"
        );
        let h = self
            .durations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP portprobe_exporter_probe_duration_seconds How long probe requests took.\n# TYPE portprobe_exporter_probe_duration_seconds histogram"
        );
        for (le, n) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "portprobe_exporter_probe_duration_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "portprobe_exporter_probe_duration_seconds_bucket{{le=\"+Inf\"}} {}\nportprobe_exporter_probe_duration_seconds_sum {}\nportprobe_exporter_probe_duration_seconds_count {}",
            h.count, h.sum, h.count
        );
        drop(h);
        connections.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets() {
        let m = Metrics::default();
        let c = Connections::with_limits(4096, 512);
        {
            let _a = m.start();
            let _b = m.start();
            assert!(
                m.render(8, 3, &c)
                    .contains("portprobe_exporter_probes_in_flight 2\n")
            );
        }
        m.record(Outcome::Success, Some(Duration::from_millis(300)));
        m.record(Outcome::Forbidden, None);
        let text = m.render(8, 0, &c);
        assert!(text.contains("portprobe_exporter_probes_in_flight 0\n"));
        assert!(text.contains("portprobe_exporter_probes_total{result=\"success\"} 1\n"));
        assert!(text.contains("portprobe_exporter_probes_total{result=\"forbidden\"} 1\n"));
        assert!(text.contains("portprobe_exporter_probe_duration_seconds_bucket{le=\"0.25\"} 0\n"));
        assert!(text.contains("portprobe_exporter_probe_duration_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("portprobe_exporter_probe_duration_seconds_count 1\n"));
        assert!(text.contains("portprobe_exporter_concurrency_limit 8\n"));
    }

    #[test]
    fn connections_and_why_they_were_closed() {
        let c = Connections::with_limits(4096, 512);
        c.opened();
        c.opened();
        c.ended();
        c.closed(Closed::Reused);
        c.closed(Closed::Reused);
        c.closed(Closed::HeaderTimeout);
        let text = Metrics::default().render(8, 0, &c);
        for line in [
            "portprobe_exporter_connections 1",
            "portprobe_exporter_connections_limit{scope=\"all\"} 4096",
            "portprobe_exporter_connections_limit{scope=\"per_source\"} 512",
            "portprobe_exporter_connections_closed_total{reason=\"reused\"} 2",
            "portprobe_exporter_connections_closed_total{reason=\"header_timeout\"} 1",
            "portprobe_exporter_connections_closed_total{reason=\"idle_timeout\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}: {text}");
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let parsed = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).unwrap();
        assert!(parsed.samples.len() > 10);
    }
}
