//! Serving the page. A request without a target, or one refused (a
//! malformed query, a target outside the allow-list), gets the whole page
//! at once with its status. A probe gets it in two parts: at once the form
//! and a line saying what is being probed, which a browser shows while
//! the probe runs (seconds) with no script, then the report when the probe
//! ends. The work runs in a task of its own that holds the request's slot
//! and its count in flight, and stops when the visitor goes away.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::{Form, Probing, Shown, end, head, probing, render, shown};
use crate::report::html;
use crate::serve::metrics::Outcome;
use crate::serve::query::{self, ProbeQuery};
use crate::serve::{Shared, lock, plain, prepare_probe, probe, too_many};

/// How the task answers the handler.
enum Answer {
    /// The whole response, at once.
    Whole(Response),
    /// A page whose parts follow on the channel.
    Streamed,
}

/// `GET /`: the page, with the report of the probe its query asks for.
pub async fn handler(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let form = Form::read(&raw);
    if form.target.is_empty() {
        let products = products(&shared);
        let history = lock(&shared.history).list();
        let body = render(&products, &form, &Shown::Nothing, &history);
        return page(StatusCode::OK, Body::from(body));
    }
    let (answer_tx, answer_rx) = oneshot::channel();
    let (parts_tx, parts_rx) = mpsc::channel::<String>(2);
    tokio::spawn(probe_page(
        shared,
        peer.ip(),
        raw,
        form,
        answer_tx,
        parts_tx,
    ));
    match answer_rx.await {
        Ok(Answer::Whole(response)) => response,
        Ok(Answer::Streamed) => {
            let parts = futures::stream::unfold(parts_rx, |mut rx| async move {
                rx.recv().await.map(|part| (Ok::<_, Infallible>(part), rx))
            });
            page(StatusCode::OK, Body::from_stream(parts))
        }
        Err(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_string(),
        ),
    }
}

/// The catalog's product names, for the form.
fn products(shared: &Shared) -> Vec<String> {
    shared
        .prober
        .catalog
        .products()
        .iter()
        .map(|p| p.name.clone())
        .collect()
}

/// A page response: HTML, not to be sniffed as anything else, and a policy
/// that allows no script, nothing from elsewhere, and forms sent here only.
fn page(status: StatusCode, body: Body) -> Response {
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

/// The work of one page with a target: checks it, answers the handler,
/// and sends the parts of a streamed page.
async fn probe_page(
    shared: Arc<Shared>,
    source: IpAddr,
    raw: String,
    mut form: Form,
    mut answer: oneshot::Sender<Answer>,
    parts: mpsc::Sender<String>,
) {
    let shared = &*shared;
    let Some(_slot) = shared.slot(source) else {
        shared.metrics.record(Outcome::Busy, None);
        let _ = answer.send(Answer::Whole(too_many(shared.per_source)));
        return;
    };
    let products = products(shared);
    let whole = |status: StatusCode, form: &Form, what: Shown| {
        let history = lock(&shared.history).list();
        Answer::Whole(page(
            status,
            Body::from(render(&products, form, &what, &history)),
        ))
    };
    let live = shared.config.current();
    let ask = match query::parse(&raw).and_then(|q| live.ask(q)) {
        Ok(ask) => ask,
        Err(why) => {
            shared.metrics.record(Outcome::BadRequest, None);
            let _ = answer.send(whole(StatusCode::BAD_REQUEST, &form, Shown::Refused(why)));
            return;
        }
    };
    let q = ask.query;
    let checked = tokio::select! {
        p = prepare_probe(shared, &q, live.max_time, ask.options, &live.allow) => p,
        () = answer.closed() => return,
    };
    let pending = match checked {
        Ok(p) => p,
        Err((status, why)) => {
            let _ = answer.send(whole(status, &form, Shown::Refused(why)));
            return;
        }
    };
    let prepared = pending.prepared();
    // The form shows what is probed by the catalog's name, as the link to
    // the same report names it.
    if let Some(p) = prepared.products().first() {
        form.product = p.clone();
    }
    let link = format!(
        "/?{}",
        ProbeQuery {
            products: prepared.products().to_vec(),
            ..q.clone()
        }
        .encode()
    );
    let ports: Vec<String> = q.ports.iter().map(ToString::to_string).collect();
    let first = head(&products, &form)
        + &probing(&Probing {
            target: &q.target,
            products: prepared.products(),
            ports: &ports.join(","),
            planned: prepared.ports(),
            addresses: prepared.addresses(),
            budget: live.max_time,
        });
    if answer.send(Answer::Streamed).is_err() || parts.send(first).await.is_err() {
        return;
    }
    let result = tokio::select! {
        r = pending.finish() => r,
        () = parts.closed() => return,
    };
    let what = match result {
        Ok(report) => {
            let fragment =
                probe::blocking(move || html::render(&report, html::Options { link: Some(&link) }));
            match fragment.await {
                Ok(fragment) => Shown::Report(fragment),
                Err(_) => Shown::Refused("shutting down".to_string()),
            }
        }
        Err((_, why)) => Shown::Refused(why),
    };
    let history = lock(&shared.history).list();
    let _ = parts.send(shown(&what) + &end(&history)).await;
}
