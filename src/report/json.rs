//! The JSON report. The schema is documented field by field in docs/json.md
//! and kept stable: fields may be added, never renamed or removed.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::model::{HostVerdict, ProductVerdict, Report, Row, Summary, TargetReport};
use super::words;
use crate::catalog::NotProbed;
use crate::clean;
use crate::engine::{
    Located, Note, Reason, ResolvedBy, Route, State, Stop, Translation, Unconfirmed,
};
use crate::port::Transport;
use crate::wire::UdpProtocol;

#[derive(Serialize)]
struct Target<'a> {
    host: &'a str,
    addresses: &'a [IpAddr],
    resolved_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mdns_interfaces: Option<&'a [String]>,
}

#[derive(Serialize)]
struct Reply<'a> {
    protocol: &'a str,
    detail: &'a str,
}

#[derive(Serialize)]
struct Result<'a> {
    address: IpAddr,
    protocol: Transport,
    port: u16,
    service: &'a str,
    products: &'a [String],
    state: State,
    reason: Reason,
    reason_from: Option<IpAddr>,
    rtt_ms: Option<f64>,
    attempts: u32,
    blocked: bool,
    udp_probe: Option<&'static str>,
    reply: Option<Reply<'a>>,
    reply_from: Option<SocketAddr>,
    note: Option<String>,
    translation: Option<TranslationJson>,
    located: Option<LocatedJson>,
}

/// What a responder saw of the hello, where it differs from what was sent.
#[derive(Serialize)]
struct TranslationJson {
    seen_from: Option<SocketAddr>,
    sent_from: Option<SocketAddr>,
    seen_at: Option<SocketAddr>,
}

impl From<Translation> for TranslationJson {
    fn from(t: Translation) -> Self {
        TranslationJson {
            seen_from: t.source.map(|(seen, _)| seen),
            sent_from: t.source.map(|(_, sent)| sent),
            seen_at: t.destination,
        }
    }
}

#[derive(Serialize)]
struct LocatedJson {
    after_hop: u8,
    after: Option<IpAddr>,
    before_hop: u8,
    before: Option<IpAddr>,
    how: &'static str,
    age_s: u64,
}

/// How a located port stops, as `located.how` (and Prometheus'
/// `located_how`) names it.
pub(super) fn located_how(how: Stop) -> &'static str {
    match how {
        Stop::Dropped => "dropped",
        Stop::Rejected(_) => "rejected",
        Stop::AtHost => "at-host",
        Stop::Unconfirmed => "unconfirmed",
    }
}

impl From<Located> for LocatedJson {
    fn from(l: Located) -> Self {
        LocatedJson {
            after_hop: l.after_hop,
            after: l.after,
            before_hop: l.before_hop,
            before: l.before,
            how: located_how(l.how),
            age_s: l.age.as_secs(),
        }
    }
}

#[derive(Serialize)]
struct Hop {
    hop: usize,
    address: Option<IpAddr>,
}

#[derive(Serialize)]
struct Counts {
    open: usize,
    closed: usize,
    filtered: usize,
    #[serde(rename = "open|filtered")]
    open_filtered: usize,
    blocked: usize,
}

#[derive(Serialize)]
struct IcmpRateLimit<'a> {
    senders: &'a [IpAddr],
    rounds: u32,
    revealed: u32,
    unconfirmed: usize,
    unconfirmed_why: Option<&'static str>,
    seconds: f64,
}

#[derive(Serialize)]
struct Host<'a> {
    address: IpAddr,
    verdict: &'static str,
    reason: Option<Reason>,
    reason_from: Option<IpAddr>,
    srtt_ms: Option<f64>,
    lossy_path: bool,
    icmp_rate_limit: Option<IcmpRateLimit<'a>>,
    path: Vec<Hop>,
}

/// One service group's verdict on one target.
#[derive(Serialize)]
struct ByProduct<'a> {
    product: &'a str,
    status: &'static str,
    ports: usize,
    blocked: Vec<String>,
}

#[derive(Serialize)]
struct TargetObject<'a> {
    target: Target<'a>,
    products: &'a [String],
    not_probed: &'a [NotProbed],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    results: Vec<Result<'a>>,
    summary: Counts,
    by_product: Vec<ByProduct<'a>>,
    hosts: Vec<Host<'a>>,
    status: &'static str,
    exit_code: u8,
    complete: bool,
    duration_ms: f64,
    probing_ms: f64,
}

#[derive(Serialize)]
struct Many<'a> {
    targets: Vec<TargetObject<'a>>,
    products: &'a [String],
    not_probed: &'a [NotProbed],
    summary: Counts,
    status: &'static str,
    exit_code: u8,
    complete: bool,
    duration_ms: f64,
    probing_ms: f64,
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn counts(s: Summary) -> Counts {
    Counts {
        open: s.open,
        closed: s.closed,
        filtered: s.filtered,
        open_filtered: s.open_filtered,
        blocked: s.blocked(),
    }
}

/// The control path, hop 1 first, ending with the target when it answered.
fn path(route: &Route, target: IpAddr) -> Vec<Hop> {
    let mut hops: Vec<Hop> = route
        .hops
        .iter()
        .enumerate()
        .map(|(i, a)| Hop {
            hop: i + 1,
            address: *a,
        })
        .collect();
    if route.reached {
        hops.push(Hop {
            hop: hops.len() + 1,
            address: Some(target),
        });
    }
    hops
}

fn result(row: &Row) -> Result<'_> {
    let r = &row.result;
    Result {
        address: r.address,
        protocol: r.transport,
        port: r.port,
        service: &row.service,
        products: &row.products,
        state: r.state,
        reason: r.reason,
        reason_from: r.reason_from,
        rtt_ms: r.rtt.map(ms),
        attempts: r.attempts,
        blocked: r.blocked(),
        udp_probe: r.probe.udp().map(UdpProtocol::name),
        reply: r.reply.as_ref().map(|p| Reply {
            protocol: p.protocol,
            detail: &p.detail,
        }),
        reply_from: r.reply_from,
        note: r.note.map(words::note),
        translation: match r.note {
            Some(Note::Translated(t)) => Some(t.into()),
            _ => None,
        },
        located: r.located.map(LocatedJson::from),
    }
}

/// Each service group's verdict, its blocked ports as `"tcp/25"`, or as
/// `"198.18.1.2 tcp/25"` when the target has several addresses.
fn by_product<'a>(t: &'a TargetReport) -> Vec<ByProduct<'a>> {
    let many = t.addresses.len() > 1;
    let name = |row: &Row| {
        let r = &row.result;
        if many {
            format!("{} {}/{}", r.address, r.transport, r.port)
        } else {
            format!("{}/{}", r.transport, r.port)
        }
    };
    t.by_product()
        .into_iter()
        .map(|g: ProductVerdict<'a>| ByProduct {
            product: g.product,
            status: g.status.word(),
            ports: g.rows.len(),
            blocked: g.blocked().map(name).collect(),
        })
        .collect()
}

fn target<'a>(report: &'a Report, t: &'a TargetReport) -> TargetObject<'a> {
    let hosts = t
        .addresses
        .iter()
        .map(|&address| {
            let note = t.notes.iter().find(|n| n.address == address);
            let (verdict, reason, reason_from) = match t.verdict(address) {
                HostVerdict::Answering => ("answering", None, None),
                HostVerdict::Silent => ("silent", None, None),
                HostVerdict::Unreachable { reason, from } => ("unreachable", Some(reason), from),
            };
            Host {
                address,
                verdict,
                reason,
                reason_from,
                srtt_ms: note.and_then(|n| n.srtt).map(ms),
                lossy_path: note.is_some_and(|n| n.loss_seen),
                icmp_rate_limit: note
                    .filter(|n| n.icmp_rounds > 0 || n.icmp_unconfirmed > 0)
                    .map(|n| IcmpRateLimit {
                        senders: &n.icmp_senders,
                        rounds: n.icmp_rounds,
                        revealed: n.icmp_revealed,
                        unconfirmed: n.icmp_unconfirmed,
                        unconfirmed_why: n.icmp_unconfirmed_why.map(|w| match w {
                            Unconfirmed::OutOfTime => "max-time",
                            Unconfirmed::Stopped => "stopped",
                            Unconfirmed::RoundCap { .. } => "round-cap",
                            Unconfirmed::ResponderLimiting => "responder-limiting",
                        }),
                        seconds: (n.icmp_time.as_secs_f64() * 1000.0).round() / 1000.0,
                    }),
                path: note
                    .and_then(|n| n.route.as_ref())
                    .map(|r| path(r, address))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let status = report.target_status(t);
    TargetObject {
        target: Target {
            host: &t.host,
            addresses: &t.addresses,
            resolved_by: t.resolved_by.as_ref().map(|by| match by {
                ResolvedBy::Literal => "literal",
                ResolvedBy::System => "system",
                ResolvedBy::Mdns { .. } => "mdns",
            }),
            mdns_interfaces: match &t.resolved_by {
                Some(ResolvedBy::Mdns { interfaces }) => Some(interfaces),
                _ => None,
            },
        },
        products: &report.products,
        not_probed: &report.not_probed,
        error: t.error.as_deref(),
        results: t.rows.iter().map(result).collect(),
        summary: counts(t.summary()),
        by_product: by_product(t),
        hosts,
        status: status.word(),
        exit_code: status.code(),
        complete: report.target_complete(t),
        duration_ms: ms(report.duration),
        probing_ms: ms(report.probing),
    }
}

/// The report as one JSON document: the target object for one target, or
/// `{"targets": [...], ...}` for several.
pub fn render(report: &Report) -> String {
    let text = if report.targets.len() == 1 {
        serde_json::to_string(&target(report, &report.targets[0]))
    } else {
        let status = report.status();
        serde_json::to_string(&Many {
            targets: report.targets.iter().map(|t| target(report, t)).collect(),
            products: &report.products,
            not_probed: &report.not_probed,
            summary: counts(report.summary()),
            status: status.word(),
            exit_code: status.code(),
            complete: report.complete(),
            duration_ms: ms(report.duration),
            probing_ms: ms(report.probing),
        })
    };
    clean::json(text.unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the report: {e}\"}}")))
}
