//! The report for people at a terminal: blocked ports first, then ports
//! without a reply, then reachable ports with no service, then open ones;
//! runs of consecutive ports with the same outcome on one line; a verdict
//! sentence and, where it is clear, what to do next.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::Status;
use super::model::{HostVerdict, ProductVerdict, Report, Row, TargetReport};
use super::{service, words};
use crate::clean::clean;
use crate::engine::{
    AddressNote, Note, PortResult, Reason, ResolvedBy, Route, State, Stop, Translation, Unconfirmed,
};
use crate::port::Transport;
use crate::wire::UdpProtocol;

/// How to render the text report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextOptions {
    /// Use ANSI colours.
    pub color: bool,
    /// List every port on its own line.
    pub verbose: bool,
    /// Print only the summary line.
    pub quiet: bool,
}

/// ANSI styling, or none.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn red(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn yellow(self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn status(self, status: Status) -> String {
        match status {
            Status::Ok => self.wrap("1;32", status.word()),
            Status::Warning => self.wrap("1;33", status.word()),
            Status::Critical | Status::Unknown => self.red(status.word()),
        }
    }
}

/// The groups of the report, in the order they are shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Blocked,
    NoReply,
    NoService,
    Open,
}

impl Group {
    fn of(state: State) -> Group {
        match state {
            State::Filtered => Group::Blocked,
            State::OpenFiltered => Group::NoReply,
            State::Closed => Group::NoService,
            State::Open => Group::Open,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Group::Blocked => "BLOCKED",
            Group::NoReply => "NO REPLY (UDP: a silent service or a silent drop)",
            Group::NoService => "REACHABLE, NO SERVICE",
            Group::Open => "OPEN",
        }
    }
}

/// Consecutive ports with the same outcome.
struct Run<'a> {
    first: &'a Row,
    last_port: u16,
    count: usize,
}

fn same_run(a: &Row, b: &Row) -> bool {
    let (x, y) = (&a.result, &b.result);
    x.address == y.address
        && x.transport == y.transport
        && x.state == y.state
        && x.reason == y.reason
        && x.reason_from == y.reason_from
        && same_note(x.note, y.note)
        && x.located == y.located
        && a.service == b.service
        && a.products == b.products
        && x.reply.as_ref().map(|r| &r.detail) == y.reply.as_ref().map(|r| &r.detail)
        && u32::from(y.port) == u32::from(x.port) + 1
}

/// Notes that read the same for a run of ports: equal, or translations
/// between the same addresses (each port's own port numbers differ).
fn same_note(a: Option<Note>, b: Option<Note>) -> bool {
    match (a, b) {
        (Some(Note::Translated(x)), Some(Note::Translated(y))) => {
            let ips = |t: Translation| {
                (
                    t.source
                        .map(|(seen, sent)| (seen.ip(), sent.ip(), seen.port() == sent.port())),
                    t.destination.map(|at| at.ip()),
                )
            };
            ips(x) == ips(y)
        }
        _ => a == b,
    }
}

fn runs<'a>(rows: &[&'a Row], collapse: bool) -> Vec<Run<'a>> {
    let mut out: Vec<Run<'a>> = Vec::new();
    let mut prev: Option<&Row> = None;
    for &row in rows {
        let extend = collapse && prev.is_some_and(|p| same_run(p, row));
        match out.last_mut() {
            Some(run) if extend => {
                run.last_port = row.result.port;
                run.count += 1;
            }
            _ => out.push(Run {
                first: row,
                last_port: row.result.port,
                count: 1,
            }),
        }
        prev = Some(row);
    }
    out
}

fn ms(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Why a whole address is unreachable: the reason, with the operating
/// system's own words for a local error.
fn host_reason(t: &TargetReport, address: IpAddr, reason: Reason) -> String {
    let note = t
        .rows
        .iter()
        .find(|r| r.result.address == address && r.result.reason == reason)
        .and_then(|r| r.result.note);
    match (reason, note) {
        (Reason::LocalError, Some(Note::LocalError { errno })) => {
            format!(
                "this computer cannot send to it ({})",
                words::os_error(errno)
            )
        }
        _ => words::reason(reason),
    }
}

/// `s`, cut to at most `max` characters with `...` when longer.
fn shortened(s: String, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}...", s.chars().take(max - 3).collect::<String>())
    } else {
        s
    }
}

/// The sentence that explains one run's outcome.
fn explain(run: &Run<'_>) -> String {
    let r = &run.first.result;
    let many = if run.count > 1 {
        format!("{} ports, ", run.count)
    } else {
        String::new()
    };
    let mut s = match r.state {
        State::Open => format!("{many}{}", open_words(run)),
        State::Closed => format!("{many}{}", closed_words(r)),
        State::Filtered => format!("{many}{}", filtered_words(r)),
        State::OpenFiltered => format!("{many}{}", silent_words(r)),
    };
    s.push_str(&qualifiers(run));
    s
}

/// "2 attempts", as a result's line counts them.
fn attempts(r: &PortResult) -> String {
    if r.attempts == 1 {
        "1 attempt".to_string()
    } else {
        format!("{} attempts", r.attempts)
    }
}

/// What answered an open port.
fn open_words(run: &Run<'_>) -> String {
    let r = &run.first.result;
    match r.reason {
        Reason::SynAck => match r.rtt {
            Some(rtt) if run.count == 1 => format!("connected in {}", ms(rtt)),
            _ => "connection accepted".to_string(),
        },
        Reason::UdpResponse => {
            let detail = r
                .reply
                .as_ref()
                .map_or("service replied", |p| p.detail.as_str());
            clean(detail).into_owned()
        }
        Reason::Responder => "the responder answered and proved the secret".to_string(),
        Reason::NotResponder => "something answered, but not the responder: another program holds the port (the path is open)".to_string(),
        Reason::ResponderBusy => "the connection was accepted, but the responder had no room for it each time it was tried (other clients, or idle connections, held its slots): open as far as a handshake shows, not proven".to_string(),
        _ => format!(
            "replied, but not as {} would (unrecognised reply)",
            r.probe.udp().unwrap_or(UdpProtocol::Generic).name()
        ),
    }
}

/// What said a port is closed.
fn closed_words(r: &PortResult) -> String {
    match r.reason {
        _ if r.probe.is_responder() => format!(
            "{}: something else answered, nothing of ours listens there (the responder skipped it, or a firewall answers for the host)",
            words::reason(r.reason)
        ),
        Reason::ConnRefused => {
            "connection refused: nothing listens (or a firewall forges resets)".to_string()
        }
        _ => "port unreachable: nothing listens".to_string(),
    }
}

/// Why a port is blocked, and where it stops when it was located.
fn filtered_words(r: &PortResult) -> String {
    let attempts = attempts(r);
    match r.reason {
        Reason::LocalError => match r.note {
            Some(Note::LocalError { errno }) => format!(
                "this computer could not send the probe: {}",
                words::os_error(errno)
            ),
            _ => words::reason(Reason::LocalError),
        },
        Reason::NoResponse if r.probe.is_responder() && r.transport == Transport::Udp => {
            let located = r
                .located
                .map_or_else(|| "dropped on the way".to_string(), words::located);
            format!("no reply after {attempts}, and the responder always answers: {located}")
        }
        Reason::NoResponse => match r.located {
            Some(l) => format!("no response after {attempts}: {}", words::located(l)),
            None => format!("no response after {attempts}: dropped on the way"),
        },
        reason => match (r.located, r.reason_from) {
            (Some(l), _) if matches!(l.how, Stop::Rejected(_)) => words::rejected(l, reason),
            (_, Some(from)) if from != r.address => {
                format!("rejected by {from}: {}", words::reason(reason))
            }
            (_, Some(_)) => format!("rejected by the host itself: {}", words::reason(reason)),
            (_, None) => words::reason(reason),
        },
    }
}

/// What a UDP port's silence likely means.
fn silent_words(r: &PortResult) -> String {
    let attempts = attempts(r);
    if r.probe.is_responder() {
        return format!(
            "no reply after {attempts}, but the responder may have been silent on its own"
        );
    }
    let protocol = r.probe.udp().unwrap_or(UdpProtocol::Generic);
    let mut text = format!(
        "no reply after {attempts}; {}: {}",
        words::silence_likelihood(protocol),
        words::silence_explanation(protocol)
    );
    if let Some(l) = r.located {
        let _ = write!(text, " ({})", words::located_silence(l));
    }
    text
}

/// What follows a result's words: its round trip, where a reply came
/// from, and the note that qualifies it.
fn qualifiers(run: &Run<'_>) -> String {
    let r = &run.first.result;
    let mut s = String::new();
    if let (Some(rtt), 1, false) = (r.rtt, run.count, r.reason == Reason::SynAck) {
        let _ = write!(s, " ({})", ms(rtt));
    }
    if let Some(from) = r.reply_from
        && from.ip() != r.address
    {
        let _ = write!(s, " (answered from {from})");
    }
    match r.note {
        Some(Note::Translated(t)) => {
            let _ = write!(s, " ({})", words::translation(t, run.count > 1));
        }
        Some(Note::LocalError { .. }) | None => {}
        Some(note) => {
            let _ = write!(s, " ({})", words::note(note));
        }
    }
    s
}

fn port_label(run: &Run<'_>) -> String {
    let r = &run.first.result;
    if run.count > 1 {
        format!("{} {}-{}", r.transport.label(), r.port, run.last_port)
    } else {
        format!("{} {}", r.transport.label(), r.port)
    }
}

/// One address's section: its verdict in one line when it answers nothing
/// (unless `-v`), else its ports by group; then its path and notes.
fn address_lines(
    out: &mut String,
    t: &TargetReport,
    address: IpAddr,
    opts: TextOptions,
    paint: Paint,
    show_products: bool,
) {
    let rows: Vec<&Row> = t
        .rows
        .iter()
        .filter(|r| r.result.address == address)
        .collect();
    let _ = writeln!(out, "\n{}", paint.bold(&address.to_string()));
    if !opts.verbose && host_line(out, t, address, rows.len(), paint) {
        return;
    }
    port_lines(out, &rows, opts, paint, show_products);
    if let Some(note) = t.notes.iter().find(|n| n.address == address) {
        if let Some(route) = &note.route {
            path_line(out, route, address, paint);
        }
        let responder = rows.iter().any(|r| r.result.probe.is_responder());
        if responder && note.icmp_senders.is_empty() {
            responder_note(out, note, paint);
        } else {
            rate_limit_note(out, note, paint);
        }
    }
}

/// The line that stands for all `ports` of an address that answers
/// nothing; false (and nothing written) when it answers.
fn host_line(
    out: &mut String,
    t: &TargetReport,
    address: IpAddr,
    ports: usize,
    paint: Paint,
) -> bool {
    match t.verdict(address) {
        HostVerdict::Silent => {
            let _ = writeln!(
                out,
                "  {} not one of {ports} ports answered: the host is down, unreachable, or entirely filtered (-v lists them)",
                paint.red("HOST UNREACHABLE OR ENTIRELY FILTERED:"),
            );
            true
        }
        HostVerdict::Unreachable { reason, from } => {
            let by = from.map(|f| format!(" by {f}")).unwrap_or_default();
            let why = host_reason(t, address, reason);
            let _ = if from.is_some() {
                writeln!(
                    out,
                    "  {} reported{by} ({why}) for all {ports} ports (-v lists them)",
                    paint.red("HOST UNREACHABLE:"),
                )
            } else {
                writeln!(
                    out,
                    "  {} {why}, for all {ports} ports (-v lists them)",
                    paint.red("HOST UNREACHABLE:"),
                )
            };
            true
        }
        HostVerdict::Answering => false,
    }
}

/// One address's ports, group by group (blocked first), in columns; runs
/// of alike consecutive ports on one line unless `-v`.
fn port_lines(
    out: &mut String,
    rows: &[&Row],
    opts: TextOptions,
    paint: Paint,
    show_products: bool,
) {
    let label_w = 4 + 1 + 11;
    let service = |row: &Row| shortened(clean(&row.service).into_owned(), 32);
    let service_w = rows
        .iter()
        .map(|r| service(r).chars().count())
        .max()
        .unwrap_or(7);
    let products = |row: &Row| {
        let p = if row.products.is_empty() {
            "-".to_string()
        } else {
            clean(&row.products.join(", ")).into_owned()
        };
        shortened(p, 28)
    };
    let products_w = if show_products {
        rows.iter()
            .map(|r| products(r).chars().count())
            .max()
            .unwrap_or(0)
            + 2
    } else {
        0
    };
    for group in [
        Group::Blocked,
        Group::NoReply,
        Group::NoService,
        Group::Open,
    ] {
        let members: Vec<&Row> = rows
            .iter()
            .copied()
            .filter(|r| Group::of(r.result.state) == group)
            .collect();
        if members.is_empty() {
            continue;
        }
        let title = match group {
            Group::Blocked => paint.red(group.title()),
            Group::NoReply | Group::NoService => paint.yellow(group.title()),
            Group::Open => paint.green(group.title()),
        };
        let _ = writeln!(out, "  {title}");
        for run in runs(&members, !opts.verbose) {
            let state = run.first.result.state.as_str();
            let needed_by = if show_products {
                products(run.first)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "    {:<label_w$}  {:<service_w$}  {:<products_w$}{:<13}  {}",
                port_label(&run),
                service(run.first),
                needed_by,
                state,
                explain(&run)
            );
        }
    }
}

/// Against a responder that sent no ICMP errors, what the re-check of its
/// silent UDP ports showed.
fn responder_note(out: &mut String, n: &AddressNote, paint: Paint) {
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    let revealed = n.icmp_revealed as usize;
    let mut parts = Vec::new();
    if revealed > 0 {
        parts.push(format!(
            "{revealed} UDP port{} silent at first answered when probed again",
            plural(revealed)
        ));
    }
    if n.icmp_unconfirmed > 0 {
        let why = match n.icmp_unconfirmed_why {
            Some(Unconfirmed::ResponderLimiting) => "the responder was limiting its replies (a port it had answered went silent too, or its replies said so: a flood, maybe with forged source addresses); run again once it is over".to_string(),
            Some(Unconfirmed::Stopped) => "probing stopped first".to_string(),
            Some(Unconfirmed::OutOfTime) | None => "--max-time ran out first".to_string(),
            Some(Unconfirmed::RoundCap { .. }) => "the re-check found nothing to compare with (--retries N sets the rounds)".to_string(),
        };
        parts.push(format!(
            "{} silent UDP port{} could not be confirmed: {why}",
            n.icmp_unconfirmed,
            plural(n.icmp_unconfirmed)
        ));
    }
    if parts.is_empty() {
        return;
    }
    let s = format!("  note: {}", parts.join("; "));
    let _ = writeln!(out, "{}", paint.dim(&s));
}

/// The path the control port's probes showed: `path: 1 198.18.20.2, 2
/// 198.18.21.2, 3 *, 4 198.18.1.2 (the host)`.
fn path_line(out: &mut String, route: &Route, address: IpAddr, paint: Paint) {
    if route.hops.is_empty() && !route.reached {
        return;
    }
    let mut hops: Vec<String> = route
        .hops
        .iter()
        .enumerate()
        .map(|(i, a)| match a {
            Some(a) => format!("{} {a}", i + 1),
            None => format!("{} *", i + 1),
        })
        .collect();
    if route.reached {
        hops.push(format!("{} {address} (the host)", route.hops.len() + 1));
    }
    let _ = writeln!(
        out,
        "{}",
        paint.dim(&format!("  path: {}", hops.join(", ")))
    );
}

fn rate_limit_note(out: &mut String, n: &AddressNote, paint: Paint) {
    if n.icmp_revealed == 0 && n.icmp_unconfirmed == 0 {
        return;
    }
    let senders: Vec<String> = n.icmp_senders.iter().map(ToString::to_string).collect();
    let who = if senders.is_empty() {
        "the path".to_string()
    } else {
        senders.join(" and ")
    };
    let mut s = format!(
        "  note: {who} {} ICMP errors (as Linux does: about one per second after a burst); {} UDP port{} silent at first answered when re-probed slowly ({} round{}, {:.1} s)",
        if n.icmp_senders.len() > 1 {
            "limit"
        } else {
            "limits"
        },
        n.icmp_revealed,
        if n.icmp_revealed == 1 { "" } else { "s" },
        n.icmp_rounds,
        if n.icmp_rounds == 1 { "" } else { "s" },
        n.icmp_time.as_secs_f64()
    );
    if n.icmp_unconfirmed > 0 {
        let why = match n.icmp_unconfirmed_why {
            Some(Unconfirmed::RoundCap { rounds }) => format!(
                "in {rounds} round{}, the cap (--retries N sets it)",
                if rounds == 1 { "" } else { "s" }
            ),
            Some(Unconfirmed::Stopped) => "before probing stopped".to_string(),
            Some(Unconfirmed::OutOfTime) | None => "in time (raise --max-time)".to_string(),
            Some(Unconfirmed::ResponderLimiting) => {
                "while the responder was limiting its replies too".to_string()
            }
        };
        let _ = write!(
            s,
            "; {} silent UDP port{} could not be confirmed {why}",
            n.icmp_unconfirmed,
            if n.icmp_unconfirmed == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "{}", paint.dim(&s));
}

/// "TCP 5900 (Screen Sharing (VNC))" for up to `max` blocked ports.
fn list_ports(rows: &[&Row], max: usize) -> String {
    let mut runs_text: Vec<String> = runs(rows, true)
        .iter()
        .map(|run| format!("{} ({})", port_label(run), clean(&run.first.service)))
        .collect();
    if runs_text.len() > max {
        let more = runs_text.len() - max;
        runs_text.truncate(max);
        runs_text.push(format!("and {more} more"));
    }
    runs_text.join(", ")
}

/// The verdict sentence of one target, starting with its status word.
fn verdict_sentence(t: &TargetReport, status: Status) -> String {
    if let Some(e) = &t.error {
        return format!("UNKNOWN: {}: {}", clean(&t.host), clean(e));
    }
    let s = t.summary();
    let total = s.total() + t.unprobed;
    let rows: Vec<&Row> = t.rows.iter().collect();
    let blocked: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| r.result.blocked())
        .collect();
    let first = t.verdicts().next();
    let mut text = match (status, first) {
        (Status::Critical, Some((address, verdict))) if t.host_level() => match verdict {
            HostVerdict::Unreachable { reason, from } => format!(
                "host unreachable: {}{} for all {total} required ports",
                host_reason(t, address, *reason),
                from.map(|f| format!(" reported by {f}"))
                    .unwrap_or_default()
            ),
            _ => format!(
                "host unreachable or entirely filtered: not one of {total} required ports answered"
            ),
        },
        (Status::Critical, _) => format!(
            "{} of {total} required ports are blocked{}: {}",
            blocked.len(),
            clean(&service::in_parentheses(&service::blocked_services(t))),
            list_ports(&blocked, 5)
        ),
        (Status::Warning, _) => {
            let mut parts = Vec::new();
            if s.closed > 0 {
                parts.push(format!("{} reachable with no service", s.closed));
            }
            if s.open_filtered > 0 {
                parts.push(format!("{} UDP without a reply", s.open_filtered));
            }
            format!(
                "no required port is blocked, but of {total} ports {}",
                parts.join(" and ")
            )
        }
        (Status::Ok, _) => format!("all {total} required ports are reachable"),
        (Status::Unknown, _) => {
            let probed = s.total();
            format!("incomplete: {probed} of {total} ports probed before the run stopped")
        }
    };
    if status == Status::Unknown && s.blocked() > 0 {
        let _ = write!(
            text,
            "; {} blocked so far{}: {}",
            blocked.len(),
            clean(&service::in_parentheses(&service::blocked_services(t))),
            list_ports(&blocked, 5)
        );
    }
    format!("{}: {}: {text}", status.word(), clean(&t.host))
}

/// The SERVICES section: one line per service group with its verdict,
/// blocked services first, when the run judges more than one service.
fn services_lines(out: &mut String, t: &TargetReport, paint: Paint) {
    // A host that answers nothing is said once, not once per service.
    let host_level = t.verdicts().all(|(_, v)| *v != HostVerdict::Answering);
    if t.services.len() < 2 || host_level {
        return;
    }
    let mut groups = t.by_product();
    let rank = |s: Status| match s {
        Status::Critical => 0,
        Status::Unknown => 1,
        Status::Warning => 2,
        Status::Ok => 3,
    };
    groups.sort_by_key(|g| rank(g.status));
    // A product that includes others has a line of its own for the ports
    // it needs itself.
    let name = |g: &ProductVerdict<'_>| {
        if g.includes_others {
            format!("{} (own ports)", clean(g.product))
        } else {
            clean(g.product).into_owned()
        }
    };
    let name_w = groups
        .iter()
        .map(|g| name(g).chars().count())
        .max()
        .unwrap_or(0)
        .min(28);
    let many = t.addresses.len() > 1;
    let _ = writeln!(out, "\n{}", paint.bold("SERVICES"));
    for g in &groups {
        let words = service::verdict(g, many);
        let words = match g.status {
            Status::Critical | Status::Unknown => paint.red(&clean(&words)),
            Status::Warning => paint.yellow(&clean(&words)),
            Status::Ok => paint.green(&clean(&words)),
        };
        let _ = writeln!(out, "  {:<name_w$}  {words}", name(g));
    }
}

/// What to do next, where the evidence makes it clear: for each address
/// that answers nothing, then, unless none answers, for the first blocked
/// ports of those that do, and the `portprobe rules` that allows them.
fn advice(t: &TargetReport) -> Vec<String> {
    let mut out: Vec<String> = t
        .verdicts()
        .filter_map(|(address, verdict)| host_advice(address, verdict))
        .collect();
    if t.host_level() {
        return out;
    }
    let answering: Vec<IpAddr> = t
        .verdicts()
        .filter(|(_, v)| **v == HostVerdict::Answering)
        .map(|(a, _)| a)
        .collect();
    let rows: Vec<&Row> = t
        .rows
        .iter()
        .filter(|r| r.result.blocked() && answering.contains(&r.result.address))
        .collect();
    out.extend(runs(&rows, true).iter().take(5).map(port_advice));
    out.extend(crate::rules::hint::line(t));
    out
}

/// What to do about an address that answers nothing; `None` when it
/// answers.
fn host_advice(address: IpAddr, verdict: &HostVerdict) -> Option<String> {
    match verdict {
        HostVerdict::Silent => Some(format!(
            "nothing answers from {address}: check that it is up and that this is its address; a firewall may drop everything on the way"
        )),
        HostVerdict::Unreachable {
            from: Some(from), ..
        } => Some(format!(
            "{from} cannot deliver to {address}: the host may be down, or a route or firewall on {from} stops it"
        )),
        HostVerdict::Unreachable { from: None, .. } => Some(format!(
            "{address} cannot be reached from this computer: check its route"
        )),
        HostVerdict::Answering => None,
    }
}

/// What to do about one run of blocked ports, from where it stops or what
/// answered it.
fn port_advice(run: &Run<'_>) -> String {
    let r = &run.first.result;
    let what = format!("{} ({})", port_label(run), clean(&run.first.service));
    match (r.reason, r.reason_from) {
        _ if r.located.is_some_and(|l| l.how != Stop::Unconfirmed) => {
            let l = r.located.expect("located");
            format!("{what} {}: {}", words::located(l), words::located_advice(l))
        }
        (Reason::NoResponse, _) => format!("{what} {}", words::timed_out()),
        (Reason::LocalFirewall, _) => {
            format!("{what} is refused by this computer's own firewall")
        }
        (Reason::NoRoute, _) => format!("this computer has no route to {}", r.address),
        (Reason::LocalError, _) => format!(
            "{what} could not be probed: {}",
            r.note
                .map_or_else(|| words::reason(Reason::LocalError), words::note)
        ),
        (reason, Some(from)) if from != r.address => format!(
            "{what} is rejected by {from} ({}): ask whoever runs that router or firewall to allow it",
            words::reason(reason)
        ),
        (reason, _) => format!(
            "{what} is rejected by the host ({}): check its own firewall",
            words::reason(reason)
        ),
    }
}

/// Renders the whole report.
pub fn render(report: &Report, opts: TextOptions) -> String {
    let paint = Paint(opts.color);
    let mut out = String::new();
    if opts.quiet {
        for t in &report.targets {
            let _ = writeln!(out, "{}", verdict_sentence(t, report.target_status(t)));
        }
        return out;
    }
    for (i, t) in report.targets.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        target_header(&mut out, report, t, paint);
        let several = report.products.len() > 1 || t.services.len() > 1;
        for &address in &t.addresses {
            address_lines(&mut out, t, address, opts, paint, several);
        }
        services_lines(&mut out, t, paint);
        out.push('\n');
        let status = report.target_status(t);
        let sentence = verdict_sentence(t, status);
        let rest = sentence
            .split_once(": ")
            .map_or(sentence.as_str(), |(_, r)| r);
        let _ = writeln!(out, "{}: {rest}", paint.status(status));
        for line in advice(t) {
            let _ = writeln!(out, "  - {line}");
        }
    }
    if report.targets.len() > 1 {
        let s = report.summary();
        let _ = writeln!(
            out,
            "\n{}: {} targets, {} ports: {} open, {} closed, {} filtered, {} open|filtered",
            paint.status(report.status()),
            report.targets.len(),
            s.total(),
            s.open,
            s.closed,
            s.filtered,
            s.open_filtered
        );
    }
    let _ = writeln!(
        out,
        "{}",
        paint.dim(&format!(
            "probed in {:.2} s, report ready after {:.2} s",
            report.probing.as_secs_f64(),
            report.duration.as_secs_f64()
        ))
    );
    out
}

/// A target's first lines: the host and its addresses, how they were
/// found, what was probed and what was left out, and whether the run is
/// incomplete.
fn target_header(out: &mut String, report: &Report, t: &TargetReport, paint: Paint) {
    let addrs: Vec<String> = t.addresses.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "{} {}{}",
        paint.bold("portprobe"),
        paint.bold(&clean(&t.host)),
        if addrs.is_empty() || (addrs.len() == 1 && addrs[0] == t.host) {
            String::new()
        } else {
            format!(" ({})", addrs.join(", "))
        }
    );
    if let Some(ResolvedBy::Mdns { interfaces }) = &t.resolved_by {
        let _ = writeln!(
            out,
            "{}",
            paint.dim(&format!(
                "resolved by multicast DNS on {}",
                clean(&interfaces.join(", "))
            ))
        );
    }
    let (tcp, udp) = report.planned;
    let what = if report.products.is_empty() {
        "ports given with --ports".to_string()
    } else {
        clean(&report.products.join(", ")).into_owned()
    };
    let _ = writeln!(
        out,
        "{}",
        paint.dim(&format!(
            "{what}: {tcp} TCP and {udp} UDP ports per address"
        ))
    );
    if let Some(line) = service::not_probed_line(&report.not_probed) {
        let _ = writeln!(out, "{}", clean(&line));
    }
    if report.interrupted || t.unprobed > 0 {
        let why = if report.interrupted {
            "interrupted"
        } else {
            "out of time (--max-time)"
        };
        let _ = writeln!(
            out,
            "{}",
            paint.red(&format!(
                "INCOMPLETE: {why}; {} ports were never probed",
                t.unprobed
            ))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translations_between_the_same_addresses_read_as_one_run() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let nat = |seen: &str, sent: &str| {
            Some(Note::Translated(Translation {
                source: Some((at(seen), at(sent))),
                destination: None,
            }))
        };
        // Each port's hello left from a port of its own: still one run.
        assert!(same_note(
            nat("203.0.113.5:40001", "198.18.0.2:40001"),
            nat("203.0.113.5:51234", "198.18.0.2:51234")
        ));
        assert!(!same_note(
            nat("203.0.113.5:40001", "198.18.0.2:40001"),
            nat("203.0.113.6:40001", "198.18.0.2:40001")
        ));
        // Ports kept, or ports rewritten, read differently.
        assert!(!same_note(
            nat("203.0.113.5:40001", "198.18.0.2:40001"),
            nat("203.0.113.5:61000", "198.18.0.2:40002")
        ));
        assert!(!same_note(nat("203.0.113.5:1", "198.18.0.2:1"), None));
        assert!(same_note(
            Some(Note::SelfConnectOnly),
            Some(Note::SelfConnectOnly)
        ));
    }
}
