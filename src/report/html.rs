//! The report as HTML, for a help desk reading it in a browser (the
//! exporter's page): the verdict first (blocked or reachable, and a line
//! per service), then each blocked port with where it stops and whom to
//! ask, then the other ports in a table that is collapsed when long, then
//! the path and notes. A fragment for a page to embed, with the style
//! sheet its classes need ([`STYLE`]): semantic HTML in wrapped text, no
//! script, readable on a phone; every piece of text from outside (host
//! names, catalog names, replies, errors) cleaned and escaped.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::Status;
use super::model::{HostVerdict, ProductVerdict, Report, Row, TargetReport};
use super::{service, words};
use crate::clean::clean;
use crate::engine::{Note, Reason, ResolvedBy, State, Stop};
use crate::wire::UdpProtocol;

/// Runs of blocked ports listed one by one; past this, a count.
const BLOCKED_SHOWN: usize = 200;
/// Rows of the other ports' table; past this, a count.
const REST_SHOWN: usize = 1000;
/// The other ports' table is open up to this many rows, collapsed past it.
const REST_OPEN: usize = 15;
/// Services listed in full up to this many; past it, those without a
/// blocked port are collapsed.
const SERVICES_OPEN: usize = 6;

/// The style sheet of the classes [`render`] writes: wrapped text
/// everywhere (a long host name or IPv6 address breaks rather than widens
/// the page), and the ports' table as stacked blocks on a narrow screen.
pub const STYLE: &str = "\
.report{margin:1.5rem 0}\
.target{margin:0 0 2rem}\
.verdict{border-left:.5rem solid var(--c);background:var(--bg);padding:.75rem 1rem;margin:0 0 1rem;border-radius:.25rem}\
.verdict h2{margin:0;font-size:1.35rem;line-height:1.3}\
.verdict .word{color:var(--c)}\
.verdict p{margin:.4rem 0 0}\
.critical{--c:#b3261e;--bg:#fdecea}\
.warning{--c:#8a5a00;--bg:#fff4dc}\
.ok{--c:#1e7b34;--bg:#e6f4ea}\
.unknown{--c:#555;--bg:#eee}\
.meta{color:#444;font-size:.95rem}\
.link a{word-break:break-all}\
.services{list-style:none;padding:0;margin:0 0 1rem}\
.services li{padding:.35rem 0 .35rem .75rem;border-left:.25rem solid var(--c);margin:.25rem 0}\
.services .name{font-weight:600}\
.services .words{color:var(--c)}\
.blocked{padding:0;margin:0 0 1rem;list-style:none}\
.blocked li{border:1px solid #e3b5b1;border-left:.35rem solid #b3261e;border-radius:.25rem;padding:.6rem .9rem;margin:.5rem 0}\
.blocked p{margin:.2rem 0}\
.blocked .port{font-weight:600}\
.blocked .reason{color:#b3261e;font-weight:600}\
.blocked .advice{font-style:italic}\
.rest summary,.more-services summary{cursor:pointer;font-weight:600;padding:.3rem 0}\
.more-services{margin:0 0 1rem}\
.ports{border-collapse:collapse;width:100%;margin:.5rem 0}\
.ports th,.ports td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
.ports td.state{color:var(--c)}\
.ports td.port,.ports td.state{white-space:nowrap}\
.notes{color:#444;font-size:.95rem;padding-left:1.2rem}\
@media (max-width:40rem){\
.ports thead{display:none}\
.ports,.ports tbody,.ports tr,.ports td{display:block;width:auto}\
.ports tr{border:1px solid #ddd;border-radius:.25rem;margin:.5rem 0;padding:.3rem .5rem}\
.ports td{border:0;padding:.1rem 0}\
.ports td.port,.ports td.state{white-space:normal}\
.ports td::before{content:attr(data-label) \": \";font-weight:600;color:#444}\
}";

/// How to render the HTML report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options<'a> {
    /// Where the same report opens again (a URL, already encoded as one),
    /// shown under the verdict so that it can be sent on.
    pub link: Option<&'a str>,
}

/// `s` cleaned of control and reordering characters (as
/// [`crate::clean::clean`] shows them) and escaped for HTML text
/// and attribute values.
pub fn escape(s: &str) -> String {
    let s = clean(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the whole report: a `<section id="report">`, one `<article>`
/// per target, the link (when given) under the first one's verdict.
pub fn render(report: &Report, options: Options<'_>) -> String {
    let mut out = String::from("<section id=\"report\" class=\"report\">\n");
    for (n, t) in report.targets.iter().enumerate() {
        // The first target's elements are `verdict` and `rest`, the
        // second's `verdict-2` and `rest-2`, ...
        let id = if n == 0 {
            String::new()
        } else {
            format!("-{}", n + 1)
        };
        let options = if n == 0 {
            options
        } else {
            Options { link: None }
        };
        target(&mut out, report, t, &id, options);
    }
    out.push_str("</section>\n");
    out
}

/// `n` and the noun in the singular or the plural.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The class of a status: `critical`, `warning`, `ok`, `unknown`.
fn class(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Critical => "critical",
        Status::Unknown => "unknown",
    }
}

/// Whether no address of `t` answered at all.
fn host_level(t: &TargetReport) -> bool {
    !t.addresses.is_empty()
        && t.addresses
            .iter()
            .all(|&a| t.verdict(a) != HostVerdict::Answering)
}

/// The headline: a word (`Blocked`, `Reachable`, ...) and a sentence,
/// both plain text, not yet escaped.
fn headline(report: &Report, t: &TargetReport, status: Status) -> (&'static str, String) {
    let host = &t.host;
    if let Some(e) = &t.error {
        return ("Not probed", format!("{host} could not be probed: {e}"));
    }
    let s = t.summary();
    let total = s.total() + t.unprobed;
    if status == Status::Critical && host_level(t) {
        let a = t.addresses[0];
        let sentence = match t.verdict(a) {
            HostVerdict::Unreachable { reason, from } => {
                let who = from.map_or_else(|| "this computer".to_string(), |f| f.to_string());
                format!(
                    "{who} reports {host} unreachable ({}) for all {total} ports",
                    host_reason(t, a, reason)
                )
            }
            _ => format!(
                "not one of {total} ports of {host} answered: it is down, unreachable, or everything is dropped on the way"
            ),
        };
        return ("Unreachable", sentence);
    }
    let blocked = t.rows.iter().filter(|r| r.result.blocked()).count();
    match status {
        Status::Critical => (
            "Blocked",
            format!(
                "{blocked} of {total} {} blocked on {host}",
                match (total, blocked) {
                    (1, _) => "port is",
                    (_, 1) => "ports is",
                    _ => "ports are",
                }
            ),
        ),
        Status::Warning => {
            let mut parts = Vec::new();
            if s.closed > 0 {
                parts.push(format!(
                    "{} of {total} {} no service listening",
                    s.closed,
                    match (total, s.closed) {
                        (1, _) => "port has",
                        (_, 1) => "ports has",
                        _ => "ports have",
                    }
                ));
            }
            if s.open_filtered > 0 {
                parts.push(format!(
                    "{} did not reply (a silent service or a silent drop)",
                    count(s.open_filtered, "UDP port", "UDP ports")
                ));
            }
            (
                "Reachable",
                format!("nothing is blocked on {host}, but {}", parts.join(" and ")),
            )
        }
        Status::Ok if total == 1 => ("Reachable", format!("the port is reachable on {host}")),
        Status::Ok => (
            "Reachable",
            format!("all {total} ports are reachable on {host}"),
        ),
        Status::Unknown => {
            let why = if report.interrupted {
                "the run was stopped"
            } else {
                "the deadline"
            };
            let mut sentence = format!(
                "{} of {total} ports of {host} were probed before {why}",
                s.total()
            );
            if blocked > 0 {
                let _ = write!(sentence, "; {blocked} blocked so far");
            }
            ("Incomplete", sentence)
        }
    }
}

/// Why a whole address is unreachable, with the operating system's words
/// for a local error.
fn host_reason(t: &TargetReport, address: IpAddr, reason: Reason) -> String {
    let note = t
        .rows
        .iter()
        .find(|r| r.result.address == address && r.result.reason == reason)
        .and_then(|r| r.result.note);
    match (reason, note) {
        (Reason::LocalError, Some(Note::LocalError { errno })) => {
            format!("it cannot send to it: {}", words::os_error(errno))
        }
        _ => words::reason(reason),
    }
}

/// One target's article: the verdict with what was probed (and the link),
/// the services, the blocked ports, the rest, the notes.
fn target(out: &mut String, report: &Report, t: &TargetReport, id: &str, options: Options<'_>) {
    let status = report.target_status(t);
    let (word, sentence) = headline(report, t, status);
    let _ = write!(
        out,
        "<article class=\"target\">\n<header class=\"verdict {}\">\n<h2 id=\"verdict{id}\"><span class=\"word\">{word}:</span> {}</h2>\n",
        class(status),
        escape(&sentence)
    );
    let what = if report.products.is_empty() {
        "the ports asked for".to_string()
    } else {
        report.products.join(", ")
    };
    let (tcp, udp) = report.planned;
    let addresses: Vec<String> = t.addresses.iter().map(ToString::to_string).collect();
    let on = if addresses.is_empty() || (addresses.len() == 1 && addresses[0] == t.host) {
        String::new()
    } else {
        format!(" on {}", addresses.join(", "))
    };
    let mut planned = Vec::new();
    if tcp > 0 {
        planned.push(count(tcp, "TCP port", "TCP ports"));
    }
    if udp > 0 {
        planned.push(count(udp, "UDP port", "UDP ports"));
    }
    let _ = writeln!(
        out,
        "<p class=\"meta\">{}: {}{} · status {} · probed in {:.2} s</p>",
        escape(&what),
        planned.join(" and "),
        escape(&on),
        status.word(),
        report.duration.as_secs_f64()
    );
    if let Some(link) = options.link {
        let _ = writeln!(
            out,
            "<p class=\"link\">The same report, to send on: <a id=\"permalink\" href=\"{0}\">{0}</a></p>",
            escape(link)
        );
    }
    out.push_str("</header>\n");
    if t.error.is_some() {
        out.push_str("</article>\n");
        return;
    }
    services(out, t);
    let verdicts = answering(t);
    blocked(out, t, &verdicts);
    rest(out, t, &verdicts, id);
    notes(out, report, t);
    out.push_str("</article>\n");
}

/// A line per service, blocked ones first, when the host answers at all.
fn services(out: &mut String, t: &TargetReport) {
    let mut groups = t.by_product();
    if groups.is_empty() || host_level(t) {
        return;
    }
    let rank = |s: Status| match s {
        Status::Critical => 0,
        Status::Unknown => 1,
        Status::Warning => 2,
        Status::Ok => 3,
    };
    groups.sort_by_key(|g| rank(g.status));
    let name = |g: &ProductVerdict<'_>| {
        if g.includes_others {
            format!("{} (own ports)", g.product)
        } else {
            g.product.to_string()
        }
    };
    let many = t.addresses.len() > 1;
    let line = |g: &ProductVerdict<'_>| {
        format!(
            "<li class=\"{}\"><span class=\"name\">{}</span>: <span class=\"words\">{}</span></li>\n",
            class(g.status),
            escape(&name(g)),
            escape(&service::verdict(g, many))
        )
    };
    // Many services: those with a blocked port in view, the others a
    // click away.
    let shown = if groups.len() > SERVICES_OPEN {
        groups
            .iter()
            .take_while(|g| matches!(g.status, Status::Critical | Status::Unknown))
            .count()
    } else {
        groups.len()
    };
    if shown > 0 {
        out.push_str("<ul class=\"services\">\n");
        for g in &groups[..shown] {
            out.push_str(&line(g));
        }
        out.push_str("</ul>\n");
    }
    let others = &groups[shown..];
    if !others.is_empty() {
        let n = others.len();
        let what = if shown == 0 {
            count(n, "service", "services")
        } else if n == 1 {
            "1 more service".to_string()
        } else {
            format!("{n} more services")
        };
        let _ = write!(
            out,
            "<details class=\"more-services\"><summary>{what}, none blocked</summary>\n<ul class=\"services\">\n"
        );
        for g in others {
            out.push_str(&line(g));
        }
        out.push_str("</ul></details>\n");
    }
}

/// Consecutive ports of one address and transport that read the same way.
struct Run<'a> {
    first: &'a Row,
    last: u16,
    key: String,
}

/// `rows` as runs of consecutive ports whose `key` and service agree.
fn runs<'a>(rows: impl IntoIterator<Item = &'a Row>, key: impl Fn(&Row) -> String) -> Vec<Run<'a>> {
    let mut out: Vec<Run<'a>> = Vec::new();
    for row in rows {
        let r = &row.result;
        let k = key(row);
        match out.last_mut() {
            Some(run)
                if run.first.result.address == r.address
                    && run.first.result.transport == r.transport
                    && run.first.result.state == r.state
                    && run.first.service == row.service
                    && run.first.products == row.products
                    && u32::from(run.last) + 1 == u32::from(r.port)
                    && run.key == k =>
            {
                run.last = r.port;
            }
            _ => out.push(Run {
                first: row,
                last: r.port,
                key: k,
            }),
        }
    }
    out
}

/// "TCP 5900" or "TCP 8000-8999", after the address when `many_addresses`.
fn label(run: &Run<'_>, many_addresses: bool) -> String {
    service::ports_label(&run.first.result, run.last, many_addresses)
}

/// What to do about one blocked port, where the evidence makes it clear.
fn advice(row: &Row) -> String {
    let r = &row.result;
    if let Some(l) = r.located {
        return words::located_advice(l);
    }
    match (r.reason, r.reason_from) {
        (Reason::NoResponse, _) => {
            "a firewall on the way drops it, or the host is down: ask whoever runs the firewalls between this computer and the host".to_string()
        }
        (Reason::LocalFirewall, _) => "the firewall of the computer that probed refuses it".to_string(),
        (Reason::NoRoute, _) => format!("the computer that probed has no route to {}", r.address),
        (Reason::LocalError, _) => r
            .note
            .map_or_else(|| words::reason(Reason::LocalError), words::note),
        (_, Some(from)) if from != r.address => format!("ask whoever runs {from} to allow it"),
        _ => "check the host's own firewall".to_string(),
    }
}

/// Where a blocked port stops, in a sentence that starts with its label,
/// when locating found out more than [`service::blocked_phrase`] says.
fn where_it_stops(row: &Row, label: &str) -> Option<String> {
    let r = &row.result;
    match r.located {
        Some(l) if !matches!(l.how, Stop::Rejected(_)) => {
            Some(format!("{label} {}.", words::located(l)))
        }
        None if r.reason == Reason::NoResponse => Some(format!(
            "{label} got no response after {}.",
            count(r.attempts as usize, "attempt", "attempts")
        )),
        _ => None,
    }
}

/// Whether an address answered at all, per address.
fn answering(t: &TargetReport) -> Vec<(IpAddr, HostVerdict)> {
    t.addresses.iter().map(|&a| (a, t.verdict(a))).collect()
}

/// Whether `row` is listed among the blocked ports: blocked, on an
/// address that answers (a silent one is a single item).
fn listed(row: &Row, verdicts: &[(IpAddr, HostVerdict)]) -> bool {
    row.result.blocked()
        && verdicts
            .iter()
            .any(|(a, v)| *a == row.result.address && *v == HostVerdict::Answering)
}

/// The blocked ports, each with where it stops and what to do; a whole
/// address that answers nothing is one item.
fn blocked(out: &mut String, t: &TargetReport, verdicts: &[(IpAddr, HostVerdict)]) {
    let many = t.addresses.len() > 1;
    let several = t.services.len() > 1;
    let mut items: Vec<String> = Vec::new();
    for (address, verdict) in verdicts {
        let ports = count(
            t.rows
                .iter()
                .filter(|r| r.result.address == *address)
                .count(),
            "port",
            "ports",
        );
        match verdict {
            HostVerdict::Silent => items.push(format!(
                "<li><p class=\"port\">All {ports} of {address}</p>\n<p class=\"reason\">not one answered: the host is down, unreachable, or everything is dropped on the way</p>\n<p class=\"advice\">What to do: check that it is up and that this is its address; a firewall may drop everything on the way</p></li>"
            )),
            HostVerdict::Unreachable { reason, from } => {
                let (who, what) = match from {
                    Some(f) => (
                        format!("reported unreachable by {f}"),
                        format!(
                            "{f} cannot deliver to {address}: the host may be down, or a route or firewall on {f} stops it"
                        ),
                    ),
                    None => (
                        "unreachable from this computer".to_string(),
                        format!("{address} cannot be reached from this computer: check its route"),
                    ),
                };
                items.push(format!(
                    "<li><p class=\"port\">All {ports} of {address}</p>\n<p class=\"reason\">{who} ({})</p>\n<p class=\"advice\">What to do: {}</p></li>",
                    escape(&host_reason(t, *address, *reason)),
                    escape(&what)
                ));
            }
            HostVerdict::Answering => {}
        }
    }
    let rows = t.rows.iter().filter(|r| listed(r, verdicts));
    let runs = runs(rows, |r| {
        format!("{}\n{}", service::blocked_phrase(r), advice(r))
    });
    for run in runs.iter().take(BLOCKED_SHOWN) {
        let label = label(run, many);
        let row = run.first;
        let mut item = format!(
            "<li><p class=\"port\">{} <span class=\"service\">{}</span>",
            escape(&label),
            escape(&row.service)
        );
        if several && !row.products.is_empty() {
            let _ = write!(
                item,
                " <span class=\"products\">(for {})</span>",
                escape(&row.products.join(", "))
            );
        }
        let _ = write!(
            item,
            "</p>\n<p class=\"reason\">{}</p>\n",
            escape(&service::blocked_phrase(row))
        );
        if let Some(s) = where_it_stops(row, &label) {
            let _ = writeln!(item, "<p class=\"where\">{}</p>", escape(&s));
        }
        let _ = write!(
            item,
            "<p class=\"advice\">What to do: {}</p></li>",
            escape(&advice(row))
        );
        items.push(item);
    }
    if items.is_empty() {
        return;
    }
    out.push_str("<h3>Blocked ports</h3>\n<ol class=\"blocked\">\n");
    for item in items {
        out.push_str(&item);
        out.push('\n');
    }
    out.push_str("</ol>\n");
    if runs.len() > BLOCKED_SHOWN {
        let more = runs.len() - BLOCKED_SHOWN;
        let _ = writeln!(
            out,
            "<p>and {more} more blocked {} not listed here</p>",
            if more == 1 { "range" } else { "ranges" }
        );
    }
}

/// A port's state in a few words, for the table.
fn state_words(state: State) -> &'static str {
    match state {
        State::Open => "open",
        State::Closed => "reachable, no service",
        State::OpenFiltered => "no reply",
        State::Filtered => "blocked",
    }
}

/// What one port of the table showed, in a sentence.
fn detail(row: &Row) -> String {
    let r = &row.result;
    let mut s = match (r.state, r.reason) {
        (State::Open, Reason::UdpResponse) => clean(
            r.reply
                .as_ref()
                .map_or("service replied", |p| p.detail.as_str()),
        )
        .into_owned(),
        (State::Open, Reason::UdpResponseUnrecognised) => format!(
            "replied, but not as {} would (unrecognised reply)",
            r.probe.udp().unwrap_or(UdpProtocol::Generic).name()
        ),
        (State::Closed, Reason::ConnRefused) => {
            "connection refused: nothing listens (or a firewall forges resets)".to_string()
        }
        (State::Closed, Reason::PortUnreachable) => "port unreachable: nothing listens".to_string(),
        (State::OpenFiltered, _) => {
            let protocol = r.probe.udp().unwrap_or(UdpProtocol::Generic);
            let mut text = format!(
                "no reply after {}; {}: {}",
                count(r.attempts as usize, "attempt", "attempts"),
                words::silence_likelihood(protocol),
                words::silence_explanation(protocol)
            );
            if let Some(l) = r.located {
                let _ = write!(text, " ({})", words::located_silence(l));
            }
            text
        }
        (State::Filtered, _) => service::blocked_phrase(row),
        (_, reason) => words::reason(reason),
    };
    if let Some(from) = r.reply_from
        && from.ip() != r.address
    {
        let _ = write!(s, " (answered from {from})");
    }
    if let Some(note) = r.note.filter(|n| !matches!(n, Note::LocalError { .. })) {
        let _ = write!(s, " ({})", words::note(note));
    }
    s
}

/// The ports not listed as blocked, in a table: open when short,
/// collapsed when long.
fn rest(out: &mut String, t: &TargetReport, verdicts: &[(IpAddr, HostVerdict)], id: &str) {
    let rows: Vec<&Row> = t.rows.iter().filter(|r| !listed(r, verdicts)).collect();
    if rows.is_empty() {
        return;
    }
    let s = super::Summary::of(rows.iter().copied());
    let mut parts = Vec::new();
    for (n, what) in [
        (s.open, "open"),
        (s.closed, "reachable with no service"),
        (s.open_filtered, "UDP without a reply"),
        (s.filtered, "blocked"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let many = t.addresses.len() > 1;
    let several = t.services.len() > 1;
    // Ports that need attention before open ones.
    let rank = |state: State| match state {
        State::Filtered => 0,
        State::OpenFiltered => 1,
        State::Closed => 2,
        State::Open => 3,
    };
    let mut ordered = rows.clone();
    ordered.sort_by_key(|r| rank(r.result.state));
    let runs = runs(ordered, detail);
    let open = if runs.len() <= REST_OPEN { " open" } else { "" };
    let other = if rows.len() < t.rows.len() {
        "other "
    } else {
        ""
    };
    let ports = match rows.len() {
        1 => "port".to_string(),
        n => format!("{n} ports"),
    };
    let _ = write!(
        out,
        "<details id=\"rest{id}\" class=\"rest\"{open}><summary>The {other}{ports}: {}</summary>\n<table class=\"ports\"><thead><tr><th>Port</th><th>Service</th>{}<th>State</th><th>Detail</th></tr></thead>\n<tbody>\n",
        parts.join(", "),
        if several { "<th>Needed by</th>" } else { "" }
    );
    for run in runs.iter().take(REST_SHOWN) {
        let row = run.first;
        let state = row.result.state;
        let class = match state {
            State::Open => "ok",
            State::Closed | State::OpenFiltered => "warning",
            State::Filtered => "critical",
        };
        let needed = if several {
            format!(
                "<td data-label=\"Needed by\">{}</td>",
                escape(&row.products.join(", "))
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td data-label=\"Port\" class=\"port\">{}</td><td data-label=\"Service\">{}</td>{needed}<td data-label=\"State\" class=\"state\">{}</td><td data-label=\"Detail\">{}</td></tr>",
            escape(&label(run, many)),
            escape(&row.service),
            state_words(state),
            escape(&run.key)
        );
    }
    out.push_str("</tbody></table>\n");
    if runs.len() > REST_SHOWN {
        let more = runs.len() - REST_SHOWN;
        let _ = writeln!(
            out,
            "<p>and {more} more {} not listed here</p>",
            if more == 1 { "row" } else { "rows" }
        );
    }
    out.push_str("</details>\n");
}

/// How it was resolved, what was left out, the path, ICMP rate limits.
fn notes(out: &mut String, report: &Report, t: &TargetReport) {
    let mut lines: Vec<String> = Vec::new();
    if let Some(ResolvedBy::Mdns { interfaces }) = &t.resolved_by {
        lines.push(format!(
            "resolved by multicast DNS on {}",
            interfaces.join(", ")
        ));
    }
    if report.interrupted || t.unprobed > 0 {
        lines.push(format!(
            "incomplete: {} never probed",
            count(t.unprobed, "port was", "ports were")
        ));
    }
    if let Some(line) = service::not_probed_line(&report.not_probed) {
        lines.push(line);
    }
    let many = t.addresses.len() > 1;
    for n in &t.notes {
        let to = if many {
            format!(" to {}", n.address)
        } else {
            String::new()
        };
        if let Some(route) = &n.route
            && (route.reached || !route.hops.is_empty())
        {
            let mut hops: Vec<String> = route
                .hops
                .iter()
                .enumerate()
                .map(|(i, a)| match a {
                    Some(a) => format!("{} {a}", i + 1),
                    None => format!("{} * (answers no one)", i + 1),
                })
                .collect();
            if route.reached {
                hops.push(format!("{} {} (the host)", route.hops.len() + 1, n.address));
            }
            lines.push(format!("path{to}: {}", hops.join(", ")));
        }
        if n.icmp_revealed > 0 || n.icmp_unconfirmed > 0 {
            let mut s = format!(
                "the path{to} limits ICMP errors: {} silent at first answered when probed again slowly ({:.1} s)",
                count(n.icmp_revealed as usize, "UDP port", "UDP ports"),
                n.icmp_time.as_secs_f64()
            );
            if n.icmp_unconfirmed > 0 {
                let _ = write!(
                    s,
                    "; {} could not be confirmed",
                    count(n.icmp_unconfirmed, "port", "ports")
                );
            }
            lines.push(s);
        }
    }
    if lines.is_empty() {
        return;
    }
    out.push_str("<ul class=\"notes\">\n");
    for line in lines {
        let _ = writeln!(out, "<li>{}</li>", escape(&line));
    }
    out.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::catalog::{NotProbed, ServiceGroup};
    use crate::engine::{AddressNote, Located, PortResult, Route};
    use crate::port::Transport;
    use crate::wire::Reply;

    const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    const EVIL: &str = "<script>alert('x')</script>&\"\u{1b}[2J\u{202e}";

    fn row(transport: Transport, port: u16, state: State, reason: Reason) -> Row {
        Row {
            result: PortResult {
                attempts: 2,
                ..PortResult::new(
                    HOST,
                    crate::catalog::probe_for(transport, port),
                    port,
                    state,
                    reason,
                )
            },
            service: "svc".to_string(),
            products: vec!["Mail".to_string()],
        }
    }

    fn target(rows: Vec<Row>, products: &[&str]) -> TargetReport {
        let services = products
            .iter()
            .map(|p| ServiceGroup {
                product: p.to_string(),
                ports: rows
                    .iter()
                    .filter(|r| r.products.iter().any(|x| x == p))
                    .count(),
                includes_others: false,
            })
            .collect();
        TargetReport::probed(
            HOST.to_string(),
            vec![HOST],
            ResolvedBy::Literal,
            rows,
            services,
            Vec::new(),
            0,
        )
    }

    fn report(t: TargetReport) -> Report {
        let tcp = t
            .rows
            .iter()
            .filter(|r| r.result.transport == Transport::Tcp)
            .count();
        Report {
            planned: (tcp, t.rows.len() - tcp),
            products: t.services.iter().map(|g| g.product.clone()).collect(),
            targets: vec![t],
            not_probed: Vec::new(),
            probing: Duration::from_millis(1500),
            duration: Duration::from_millis(1500),
            interrupted: false,
            out_of_time: false,
        }
    }

    fn verdict_of(html: &str) -> &str {
        let start = html.find("<h2 id=\"verdict\">").expect("a verdict");
        let end = html[start..].find("</h2>").unwrap();
        &html[start..start + end]
    }

    #[test]
    fn every_string_from_outside_is_escaped() {
        // Names from a user's catalog, a host name as typed, a reply from
        // the network, interfaces and the catalog's words on what was left
        // out: each carries markup, a terminal escape and a bidi override.
        let mut open = row(Transport::Udp, 53, State::Open, Reason::UdpResponse);
        open.result.reply = Some(Reply::new("dns", EVIL));
        open.service = EVIL.to_string();
        open.products = vec![EVIL.to_string()];
        let mut blocked = row(Transport::Tcp, 25, State::Filtered, Reason::AdminProhibited);
        blocked.result.reason_from = Some(ROUTER);
        blocked.service = EVIL.to_string();
        blocked.products = vec![EVIL.to_string()];
        let mut t = target(vec![blocked, open], &[EVIL, "Mail"]);
        t.host = EVIL.to_string();
        t.resolved_by = Some(ResolvedBy::Mdns {
            interfaces: vec![EVIL.to_string()],
        });
        let mut r = report(t);
        r.not_probed = vec![NotProbed {
            protocol: Transport::Udp,
            port_start: 6970,
            port_end: 9999,
            service: EVIL.to_string(),
            product: EVIL.to_string(),
            why: EVIL.to_string(),
        }];
        let link = format!("/?target={EVIL}");
        let html = render(&r, Options { link: Some(&link) });
        let mut unresolved = report(target(Vec::new(), &[]));
        unresolved.targets[0].host = EVIL.to_string();
        unresolved.targets[0].error = Some(EVIL.to_string());
        let html = html + &render(&unresolved, Options::default());
        for raw in ["<script", "alert('x')", "\"\u{1b}", "\u{1b}", "\u{202e}"] {
            assert!(!html.contains(raw), "{raw:?} in {html}");
        }
        let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\x1b[2J\\u{202e}";
        // The host (verdict, error), the service and product names (the
        // services, the blocked port, the table), the reply, the
        // interfaces, the left-out range and the link.
        assert!(html.matches(escaped).count() >= 10, "{html}");
        assert!(
            html.contains(&format!("href=\"/?target={escaped}\"")),
            "{html}"
        );
        assert!(
            html.contains(&format!("<h2 id=\"verdict\"><span class=\"word\">Not probed:</span> {escaped} could not be probed: {escaped}</h2>")),
            "{html}"
        );
    }

    #[test]
    fn the_verdict_comes_first_in_words_for_each_status() {
        let open = row(Transport::Tcp, 110, State::Open, Reason::SynAck);
        let closed = row(Transport::Tcp, 995, State::Closed, Reason::ConnRefused);
        let silent = row(Transport::Udp, 500, State::OpenFiltered, Reason::NoResponse);
        let dropped = row(Transport::Tcp, 25, State::Filtered, Reason::NoResponse);
        let cases = [
            (
                vec![open.clone()],
                "Reachable:</span> the port is reachable on 198.18.1.2",
                "ok",
            ),
            (
                vec![open.clone(), closed.clone(), silent.clone()],
                "Reachable:</span> nothing is blocked on 198.18.1.2, but 1 of 3 ports has no service listening and 1 UDP port did not reply (a silent service or a silent drop)",
                "warning",
            ),
            (
                vec![open.clone(), dropped.clone()],
                "Blocked:</span> 1 of 2 ports is blocked on 198.18.1.2",
                "critical",
            ),
            (
                vec![dropped.clone(), dropped.clone()],
                "Unreachable:</span> not one of 2 ports of 198.18.1.2 answered",
                "critical",
            ),
        ];
        for (rows, says, class) in cases {
            let html = render(&report(target(rows, &["Mail"])), Options::default());
            assert!(verdict_of(&html).contains(says), "{html}");
            assert!(
                html.contains(&format!("<header class=\"verdict {class}\">")),
                "{html}"
            );
            // The verdict before anything else of the report.
            let verdict = html.find("id=\"verdict\"").unwrap();
            for part in ["class=\"services\"", "class=\"blocked\"", "id=\"rest\""] {
                assert!(html.find(part).is_none_or(|at| verdict < at), "{html}");
            }
        }
        let mut incomplete = target(vec![open, dropped], &["Mail"]);
        incomplete.unprobed = 3;
        let html = render(&report(incomplete), Options::default());
        assert!(
            verdict_of(&html).contains(
                "Incomplete:</span> 2 of 5 ports of 198.18.1.2 were probed before the deadline; 1 blocked so far"
            ),
            "{html}"
        );
    }

    #[test]
    fn each_target_has_ids_of_its_own_and_the_link_is_given_once() {
        let open = row(Transport::Tcp, 110, State::Open, Reason::SynAck);
        let mut r = report(target(vec![open.clone()], &["Mail"]));
        r.targets.push(target(vec![open], &["Mail"]));
        let html = render(&r, Options { link: Some("/?x") });
        for id in ["verdict", "verdict-2", "rest", "rest-2", "permalink"] {
            assert_eq!(
                html.matches(&format!(" id=\"{id}\"")).count(),
                1,
                "{id}: {html}"
            );
        }
    }

    #[test]
    fn a_blocked_port_says_where_it_stops_and_whom_to_ask() {
        let open = row(Transport::Tcp, 548, State::Open, Reason::SynAck);
        let mut rejected = row(
            Transport::Udp,
            3283,
            State::Filtered,
            Reason::AdminProhibited,
        );
        rejected.result.reason_from = Some(ROUTER);
        rejected.result.located = Some(Located {
            after_hop: 1,
            after: Some(ROUTER),
            before_hop: 2,
            before: None,
            how: Stop::Rejected(Reason::AdminProhibited),
            age: Duration::ZERO,
        });
        let mut dropped = row(Transport::Tcp, 5900, State::Filtered, Reason::NoResponse);
        dropped.result.located = Some(Located {
            after_hop: 1,
            after: Some(ROUTER),
            before_hop: 2,
            before: Some(HOST),
            how: Stop::Dropped,
            age: Duration::ZERO,
        });
        let mut t = target(vec![open, dropped, rejected], &["Mail"]);
        t.notes = vec![AddressNote {
            address: HOST,
            icmp_senders: Vec::new(),
            icmp_rounds: 0,
            icmp_revealed: 0,
            icmp_unconfirmed: 0,
            icmp_unconfirmed_why: None,
            icmp_time: Duration::ZERO,
            loss_seen: false,
            srtt: None,
            route: Some(Route {
                hops: vec![Some(ROUTER)],
                reached: true,
                control: None,
            }),
        }];
        let html = render(&report(t), Options::default());
        for says in [
            "<li><p class=\"port\">TCP 5900 <span class=\"service\">svc</span></p>\n<p class=\"reason\">dropped before 198.18.1.2</p>\n<p class=\"where\">TCP 5900 passes 198.18.0.1 (hop 1) and is dropped before 198.18.1.2 (hop 2).</p>\n<p class=\"advice\">What to do: the filter is on 198.18.0.1 (a forward rule) or on 198.18.1.2 (a rule before routing): ask whoever runs them to allow it</p></li>",
            "<p class=\"reason\">rejected by 198.18.0.1 at hop 1 (administratively prohibited)</p>\n<p class=\"advice\">What to do: ask whoever runs 198.18.0.1 to allow it</p>",
            "<li>path: 1 198.18.0.1, 2 198.18.1.2 (the host)</li>",
            "<summary>The other port: 1 open</summary>",
        ] {
            assert!(html.contains(says), "{says}\n{html}");
        }
        // Blocked ports come before the rest.
        assert!(html.find("class=\"blocked\"") < html.find("id=\"rest\""));
    }

    #[test]
    fn many_services_keep_the_blocked_ones_in_view() {
        let names: Vec<String> = (1..=8).map(|n| format!("Service {n}")).collect();
        let rows: Vec<Row> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let port = 100 + 2 * i as u16;
                let mut r = if i == 5 {
                    row(Transport::Tcp, port, State::Filtered, Reason::NoResponse)
                } else {
                    row(Transport::Tcp, port, State::Open, Reason::SynAck)
                };
                r.products = vec![name.clone()];
                r
            })
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let html = render(&report(target(rows, &names)), Options::default());
        assert!(
            html.contains(
                "<ul class=\"services\">\n<li class=\"critical\"><span class=\"name\">Service 6</span>: <span class=\"words\">blocked: TCP 110 dropped (no response)</span></li>\n</ul>\n\
<details class=\"more-services\"><summary>7 more services, none blocked</summary>"
            ),
            "{html}"
        );
        // The blocked port names the service that needs it.
        assert!(
            html.contains("TCP 110 <span class=\"service\">svc</span> <span class=\"products\">(for Service 6)</span>"),
            "{html}"
        );
    }

    #[test]
    fn the_rest_is_open_when_short_collapsed_when_long_and_bounded() {
        let few: Vec<Row> = (1..=3)
            .map(|p| row(Transport::Tcp, p * 2, State::Open, Reason::SynAck))
            .collect();
        let html = render(&report(target(few, &["Mail"])), Options::default());
        assert!(
            html.contains("<details id=\"rest\" class=\"rest\" open>"),
            "{html}"
        );
        // Every other port open: no two make a range.
        let many: Vec<Row> = (1..=3000)
            .map(|p| row(Transport::Tcp, p * 2, State::Open, Reason::SynAck))
            .collect();
        let html = render(&report(target(many, &["Mail"])), Options::default());
        assert!(
            html.contains(
                "<details id=\"rest\" class=\"rest\"><summary>The 3000 ports: 3000 open</summary>"
            ),
            "{}",
            &html[..2000]
        );
        assert_eq!(html.matches("<tr class=").count(), REST_SHOWN);
        assert!(
            html.contains("<p>and 2000 more rows not listed here</p>"),
            "{}",
            &html[html.len() - 500..]
        );
        // Consecutive ports that read the same are one row.
        let range: Vec<Row> = (8000..=8999)
            .map(|p| row(Transport::Tcp, p, State::Closed, Reason::ConnRefused))
            .collect();
        let html = render(&report(target(range, &["Mail"])), Options::default());
        assert!(
            html.contains("<td data-label=\"Port\" class=\"port\">TCP 8000-8999</td>"),
            "{html}"
        );
    }
}
