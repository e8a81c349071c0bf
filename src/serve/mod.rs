//! `portprobe serve`: a Prometheus exporter in the multi-target pattern
//! (`/probe?target=HOST&product=NAME`), its own metrics at `/metrics`, and a
//! page for people at `/`. A front end over the engine, like the command
//! line: every probe goes through [`probe::Prober`], which refuses targets
//! outside the allow-list before a packet is sent and shares one
//! concurrency limit among all requests.

pub mod allow;
mod metrics;
mod page;
mod probe;
pub mod query;

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

pub use allow::AllowList;

use crate::catalog::Catalog;
use crate::report::clean::clean;
use crate::report::{Report, Status, TextOptions, prometheus, text};
use metrics::{Metrics, Outcome};
use page::{Form, History, Recent, Shown};
use probe::{NotRun, Prober};

/// The time taken off Prometheus' scrape timeout, so that the answer is
/// written before Prometheus gives up.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
/// The shortest probe deadline.
pub const MIN_BUDGET: Duration = Duration::from_millis(500);
/// Requests one source address may have in progress at once: enough for a
/// Prometheus that scrapes hundreds of targets in the same second.
const PER_SOURCE: u32 = 256;
/// The Prometheus text format's content type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything an exporter needs.
#[derive(Debug)]
pub struct Config {
    /// The address to serve on.
    pub listen: SocketAddr,
    /// The targets that may be probed.
    pub allow: AllowList,
    /// Probes in flight at once, over every request.
    pub concurrency: usize,
    /// The deadline of a probe without Prometheus' timeout header, and the
    /// most any probe may take.
    pub max_time: Duration,
}

/// What the handlers share.
#[derive(Debug)]
struct Shared {
    prober: Prober,
    metrics: Metrics,
    history: Mutex<History>,
    sources: Mutex<HashMap<IpAddr, u32>>,
    max_time: Duration,
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
        if *n >= PER_SOURCE {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            shared: self,
            source,
        })
    }

    /// The probe's deadline: Prometheus' scrape timeout less a margin,
    /// within the configured most.
    fn budget(&self, headers: &HeaderMap) -> Duration {
        headers
            .get("x-prometheus-scrape-timeout-seconds")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e6)
            .map_or(self.max_time, |v| {
                Duration::from_secs_f64(v)
                    .saturating_sub(TIMEOUT_MARGIN)
                    .clamp(MIN_BUDGET, self.max_time.max(MIN_BUDGET))
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
/// serves once it does.
pub fn run(config: Config, catalog: Catalog, out: &mut dyn Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, catalog, out))
}

async fn serve(config: Config, catalog: Catalog, out: &mut dyn Write) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;
    let mut term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let shared = Arc::new(Shared {
        prober: Prober {
            catalog: Arc::new(catalog),
            allow: config.allow,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            limit: config.concurrency,
        },
        metrics: Metrics::default(),
        history: Mutex::new(History::default()),
        sources: Mutex::new(HashMap::new()),
        max_time: config.max_time,
    });
    let app = Router::new()
        .route("/probe", get(probe_handler))
        .route("/metrics", get(metrics_handler))
        .route("/", get(page_handler))
        .fallback(not_found)
        .with_state(shared);
    writeln!(
        out,
        "serving on http://{local}: /probe?target=HOST&product=NAME for Prometheus, /metrics, and a page at /"
    )
    .and_then(|()| out.flush())?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
    .await
    .context("the HTTP server failed")
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

fn too_many() -> Response {
    plain(
        StatusCode::TOO_MANY_REQUESTS,
        format!("more than {PER_SOURCE} requests from this address at once\n"),
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
        return too_many();
    };
    let q = match query::parse(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(why) => {
            shared.metrics.record(Outcome::BadRequest, None);
            return plain(StatusCode::BAD_REQUEST, format!("{why}\n"));
        }
    };
    let report = match run_probe(&shared, &q, shared.budget(&headers), q.locate).await {
        Ok(report) => report,
        Err((status, why)) => return plain(status, format!("{why}\n")),
    };
    let options = prometheus::Options {
        probe_metrics: true,
    };
    match probe::blocking(move || prometheus::render_with(&report, options)).await {
        Ok(body) => exposition(body),
        Err(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_string(),
        ),
    }
}

/// Probes `q` as one request: counted in flight, timed, and recorded in
/// the metrics however it ends, and in the page's list when it probed an
/// allowed target (what others asked for, refused or unresolved, is not
/// shown to every visitor); a probe not run comes back as its HTTP status
/// and the reason.
async fn run_probe(
    shared: &Shared,
    q: &query::ProbeQuery,
    budget: Duration,
    locate: bool,
) -> Result<Report, (StatusCode, String)> {
    let _in_flight = shared.metrics.start();
    let started = std::time::Instant::now();
    let result = shared.prober.probe(q, budget, locate).await;
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
    exposition(shared.metrics.render(limit, in_use))
}

async fn page_handler(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
) -> Response {
    let products: Vec<String> = shared
        .prober
        .catalog
        .products()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let raw = raw.unwrap_or_default();
    let mut form = Form::default();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()).take(8) {
        let v: String = v.chars().take(253).collect();
        match &*k {
            "target" => form.target = v,
            "product" => form.product = v,
            "ports" => form.ports = v,
            _ => {}
        }
    }
    let (status, shown) = if form.target.is_empty() {
        (StatusCode::OK, Shown::Nothing)
    } else {
        let Some(_slot) = shared.slot(peer.ip()) else {
            shared.metrics.record(Outcome::Busy, None);
            return too_many();
        };
        match query::parse(&raw) {
            Err(why) => {
                shared.metrics.record(Outcome::BadRequest, None);
                (StatusCode::BAD_REQUEST, Shown::Refused(why))
            }
            Ok(q) => match run_probe(&shared, &q, shared.max_time, true).await {
                Ok(report) => {
                    let options = TextOptions {
                        color: false,
                        verbose: false,
                        quiet: false,
                    };
                    match probe::blocking(move || text::render(&report, options)).await {
                        Ok(text) => (StatusCode::OK, Shown::Report(text)),
                        Err(_) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Shown::Refused("shutting down".to_string()),
                        ),
                    }
                }
                Err((code, why)) => (code, Shown::Refused(why)),
            },
        }
    };
    let history = lock(&shared.history).list();
    let body = page::render(&products, &form, &shown, &history);
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    response
}

async fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "not found: /probe?target=HOST&product=NAME, /metrics or /\n".to_string(),
    )
}
