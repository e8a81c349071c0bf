//! `portprobe serve`: a Prometheus exporter in the multi-target pattern
//! (`/probe?target=HOST&product=NAME`), its own metrics at `/metrics`, and a
//! page for people at `/`. A front end over the engine, like the command
//! line: every probe goes through `probe::Prober`, which refuses targets
//! outside the allow-list before a packet is sent and shares one
//! concurrency limit among all requests. The HTTP server beneath the routes
//! (`http`) holds connections within caps and timeouts, and shuts down
//! within a grace period. A configuration file (`config`) adds named
//! modules and constant labels (`labels`), laid under the flags into what
//! each request reads (`live`), and SIGHUP reads it again (`reload`).
//! within a grace period. A web configuration file (`webconfig`) adds TLS
//! (`tls`) and HTTP Basic authentication in front of every route (`auth`).

pub mod allow;
mod auth;
mod caps;
pub mod config;
mod http;
mod labels;
pub mod live;
mod metrics;
mod page;
mod phase;
mod probe;
pub mod query;
mod registry;
pub mod reload;
pub mod target;
mod tls;
pub mod webconfig;

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Semaphore;

pub use allow::AllowList;

use crate::catalog::Catalog;
use crate::clean::clean;
use crate::report::{Report, Status, prometheus};
use caps::Caps;
use metrics::{Connections, Metrics, Outcome};
use page::{History, Recent};
use phase::Timeouts;
use probe::{NotRun, Prober};

/// The time taken off Prometheus' scrape timeout, so that the answer is
/// written before Prometheus gives up.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
/// The shortest probe deadline: the least `--max-time` accepts.
pub const MIN_BUDGET: Duration = crate::input::duration::SERVE_MAX_TIME.least;
/// How long a client may take to receive a response once it is ready.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// What a shutdown allows beyond the longest probe deadline, for the
/// answers to be written.
const GRACE_MARGIN: Duration = Duration::from_secs(5);
/// The Prometheus text format's content type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything an exporter needs.
#[derive(Debug)]
pub struct Config {
    /// The address to serve on, the concurrency limit, and what requests
    /// read (the allow-list, the deadline, labels and modules).
    pub settled: live::Settled,
    /// The file and the flags, for SIGHUP to read again; `None` without
    /// `--config`.
    pub source: Option<reload::Source>,
    /// How long a connection may take to send a request head, from its
    /// opening or from the first byte of a later request.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait between requests.
    pub idle_timeout: Duration,
    /// TLS and authentication, from the web configuration file.
    pub web: Web,
}

/// What a web configuration file sets up: TLS and the users allowed in.
#[derive(Default)]
pub struct Web {
    tls: Option<tokio_rustls::TlsAcceptor>,
    users: Option<Arc<auth::Users>>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.is_some())
            .finish()
    }
}

impl Web {
    /// Reads the web configuration file at `path` and loads the
    /// certificates, key and CAs it names. The error names the file, the
    /// field and what would be right.
    pub fn load(path: &Path) -> Result<Web> {
        let name = path.display();
        let config =
            webconfig::load(path).map_err(|e| anyhow::anyhow!("--web.config.file {name}: {e}"))?;
        let tls = match &config.tls {
            Some(settings) => Some(
                tls::acceptor(settings)
                    .map_err(|e| anyhow::anyhow!("--web.config.file {name}: {e}"))?,
            ),
            None => None,
        };
        Ok(Web {
            tls,
            users: auth::Users::new(&config.users).map(Arc::new),
        })
    }
}

impl Config {
    /// How long a shutdown may wait for the requests being answered: the
    /// longest probe deadline and a margin.
    pub fn grace(&self) -> Duration {
        self.settled
            .live
            .max_time
            .max(MIN_BUDGET)
            .saturating_add(GRACE_MARGIN)
    }
}

/// What the handlers share.
#[derive(Debug)]
struct Shared {
    prober: Prober,
    metrics: Metrics,
    history: Mutex<History>,
    sources: Mutex<HashMap<IpAddr, usize>>,
    /// Requests one source address may have in progress at once.
    per_source: usize,
    connections: Arc<Connections>,
    /// The configuration in force.
    config: reload::State,
}

/// One request in progress from a source, until dropped.
struct SourceSlot<'a> {
    shared: &'a Shared,
    source: IpAddr,
}

impl Drop for SourceSlot<'_> {
    fn drop(&mut self) {
        let mut sources = lock(&self.shared.sources);
        if let Some(n) = sources.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                sources.remove(&self.source);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn slot(&self, source: IpAddr) -> Option<SourceSlot<'_>> {
        let source = source.to_canonical();
        let mut sources = lock(&self.sources);
        let n = sources.entry(source).or_insert(0);
        if *n >= self.per_source {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            shared: self,
            source,
        })
    }

    /// The probe's deadline: Prometheus' scrape timeout less a margin,
    /// within the configured most, `max_time`.
    fn budget(headers: &HeaderMap, max_time: Duration) -> Duration {
        headers
            .get("x-prometheus-scrape-timeout-seconds")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e6)
            .map_or(max_time, |v| {
                Duration::from_secs_f64(v)
                    .saturating_sub(TIMEOUT_MARGIN)
                    .clamp(MIN_BUDGET, max_time.max(MIN_BUDGET))
            })
    }

    fn remember(&self, target: &str, what: String, status: String, took: Duration) {
        lock(&self.history).push(Recent {
            at: jiff::Zoned::now().strftime("%H:%M:%S").to_string(),
            target: clean(target).into_owned(),
            what,
            status,
            seconds: took.as_secs_f64(),
        });
    }
}

/// Runs the exporter until SIGINT or SIGTERM, saying on `out` where it
/// serves once it does; SIGHUP reads the configuration file again.
pub fn run(config: Config, catalog: Catalog, out: &mut dyn Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config, catalog, out));
    // A name being resolved on a blocking thread does not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

async fn serve(config: Config, catalog: Catalog, out: &mut dyn Write) -> Result<()> {
    let listen = config.settled.listen;
    let listener = http::listen(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let signals = http::Signals::catch()?;
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot catch SIGHUP")?;
    let caps = Caps::derive(
        crate::engine::raise_nofile_limit(),
        config.settled.concurrency as usize,
    );
    let connections = Arc::new(Connections::with_limits(caps.connections, caps.per_source));
    let registry = Arc::new(registry::Registry::new(
        caps.connections,
        caps.per_source,
        Arc::clone(&connections),
    ));
    let limits = http::Limits {
        timeouts: Timeouts {
            header: config.header_timeout,
            idle: config.idle_timeout,
            send: SEND_TIMEOUT,
        },
        grace: config.grace(),
    };
    let shared = Arc::new(Shared {
        prober: Prober {
            catalog: Arc::new(catalog),
            permits: Arc::new(Semaphore::new(caps.probes)),
            limit: caps.probes,
            locator: Arc::default(),
        },
        metrics: Metrics::default(),
        history: Mutex::new(History::default()),
        sources: Mutex::new(HashMap::new()),
        per_source: caps.requests_per_source,
        connections: Arc::clone(&connections),
        config: reload::State::new(&config.settled, config.source),
    });
    tokio::spawn(reload_on_hangup(hangups, Arc::clone(&shared)));
    let mut app = Router::new()
        .route("/probe", get(probe_handler))
        .route("/metrics", get(metrics_handler))
        .route("/", get(page::handler))
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    if let Some(users) = config.web.users {
        // Every route, the fallback too, answers only to a user.
        app = app.layer(axum::middleware::from_fn_with_state(users, auth::require));
    }
    let (scheme, transport) = match config.web.tls {
        Some(acceptor) => ("https", http::Transport::Tls(acceptor)),
        None => ("http", http::Transport::Plain),
    };
    writeln!(
        out,
        "serving on {scheme}://{local}: /probe?target=HOST&product=NAME for Prometheus, /metrics, and a page at /"
    )
    .and_then(|()| out.flush())?;
    http::serve(
        listener,
        app,
        registry,
        connections,
        limits,
        transport,
        signals,
    )
    .await
}

/// Reads the configuration file again on every SIGHUP, off the async
/// workers, and says what came of it on stderr.
async fn reload_on_hangup(mut hangups: tokio::signal::unix::Signal, shared: Arc<Shared>) {
    while hangups.recv().await.is_some() {
        let s = Arc::clone(&shared);
        let said = probe::blocking(move || s.config.reload(&s.prober.catalog)).await;
        let Ok(said) = said else { return };
        let mut err = std::io::stderr().lock();
        for line in said {
            let _ = writeln!(err, "{line}");
        }
    }
}

fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn exposition(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, EXPOSITION),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn too_many(limit: usize) -> Response {
    plain(
        StatusCode::TOO_MANY_REQUESTS,
        format!("more than {limit} requests from this address at once\n"),
    )
}

/// What a probe checked, in a few words for the page's list: the
/// catalog's names of its products (never the words a request used), and
/// its ports.
fn what(report: &Report, q: &query::ProbeQuery) -> String {
    let mut parts: Vec<String> = report
        .products
        .iter()
        .map(|p| clean(p).into_owned())
        .collect();
    if !q.ports.is_empty() {
        let ports: Vec<String> = q.ports.iter().map(ToString::to_string).collect();
        parts.push(ports.join(","));
    }
    parts.join(", ")
}

async fn probe_handler(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(_slot) = shared.slot(peer.ip()) else {
        shared.metrics.record(Outcome::Busy, None);
        return too_many(shared.per_source);
    };
    let live = shared.config.current();
    let ask = match query::parse(raw.as_deref().unwrap_or("")).and_then(|q| live.ask(q)) {
        Ok(ask) => ask,
        Err(why) => {
            shared.metrics.record(Outcome::BadRequest, None);
            return plain(StatusCode::BAD_REQUEST, format!("{}\n", clean(&why)));
        }
    };
    let budget = Shared::budget(&headers, live.max_time);
    let report = match run_probe(&shared, &ask.query, budget, ask.options, &live.allow).await {
        Ok(report) => report,
        Err((status, why)) => return plain(status, format!("{why}\n")),
    };
    let options = prometheus::Options {
        probe_metrics: true,
        success: ask.success,
    };
    let render = move || {
        live.labels
            .apply(&prometheus::render_with(&report, options))
    };
    match probe::blocking(render).await {
        Ok(body) => exposition(body),
        Err(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_string(),
        ),
    }
}

/// Probes `q` as one request: [`prepare_probe`], then [`Pending::finish`].
async fn run_probe(
    shared: &Shared,
    q: &query::ProbeQuery,
    budget: Duration,
    options: probe::Options,
    allow: &AllowList,
) -> Result<Report, (StatusCode, String)> {
    prepare_probe(shared, q, budget, options, allow)
        .await?
        .finish()
        .await
}

/// A probe request checked and planned, counted in flight until it ends.
struct Pending<'a> {
    shared: &'a Shared,
    q: &'a query::ProbeQuery,
    _in_flight: metrics::InFlight<'a>,
    started: std::time::Instant,
    prepared: probe::Prepared,
}

/// Checks and plans `q` as one request, counted in flight from here; a
/// probe that may not run comes back as its HTTP status and the reason,
/// counted.
async fn prepare_probe<'a>(
    shared: &'a Shared,
    q: &'a query::ProbeQuery,
    budget: Duration,
    options: probe::Options,
    allow: &AllowList,
) -> Result<Pending<'a>, (StatusCode, String)> {
    let in_flight = shared.metrics.start();
    let started = std::time::Instant::now();
    match shared.prober.prepare(q, budget, options, allow).await {
        Ok(prepared) => Ok(Pending {
            shared,
            q,
            _in_flight: in_flight,
            started,
            prepared,
        }),
        Err(not_run) => Err(refusal(shared, not_run)),
    }
}

impl Pending<'_> {
    /// What is about to be probed.
    fn prepared(&self) -> &probe::Prepared {
        &self.prepared
    }

    /// Runs the probe: timed and recorded in the metrics however it ends,
    /// and in the page's list when it probed an allowed target (what
    /// others asked for, refused or unresolved, is not shown to every
    /// visitor).
    async fn finish(self) -> Result<Report, (StatusCode, String)> {
        let Pending {
            shared,
            q,
            _in_flight,
            started,
            prepared,
        } = self;
        let result = shared.prober.run(prepared).await;
        let took = started.elapsed();
        match result {
            Ok(probed) => {
                let report = probed.report;
                let status = report.status();
                let outcome = if matches!(status, Status::Ok | Status::Warning) {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                shared.metrics.record(outcome, Some(took));
                if probed.allowed {
                    shared.remember(&q.target, what(&report, q), status.word().to_string(), took);
                }
                Ok(report)
            }
            Err(not_run) => Err(refusal(shared, not_run)),
        }
    }
}

/// The status and words of a probe that was not run, counted.
fn refusal(shared: &Shared, not_run: NotRun) -> (StatusCode, String) {
    let (status, outcome, why) = match not_run {
        NotRun::BadRequest(why) => (StatusCode::BAD_REQUEST, Outcome::BadRequest, why),
        NotRun::Forbidden(why) => (StatusCode::FORBIDDEN, Outcome::Forbidden, why),
        NotRun::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            Outcome::Busy,
            "not one probe could start before the deadline: other requests held every slot of the concurrency limit".to_string(),
        ),
    };
    shared.metrics.record(outcome, None);
    (status, clean(&why).into_owned())
}

async fn metrics_handler(State(shared): State<Arc<Shared>>) -> Response {
    let limit = shared.prober.limit;
    let in_use = limit - shared.prober.permits.available_permits();
    let mut body = shared.metrics.render(limit, in_use, &shared.connections);
    body.push_str(&shared.config.render());
    exposition(body)
}

async fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "not found: /probe?target=HOST&product=NAME (or module=NAME, or target=HOST:PORT), /metrics or /\n".to_string(),
    )
}
