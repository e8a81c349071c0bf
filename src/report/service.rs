//! Per-service words for the reports: how and where a blocked port is
//! blocked, a service group's verdict in a few words a help desk
//! understands ("blocked: TCP 25 dropped (no response)", "reachable, 1 UDP
//! port unconfirmed"), which services a run finds blocked, and the ranges
//! that were left out.

use super::Status;
use super::model::{ProductVerdict, Row, TargetReport};
use super::words;
use crate::catalog::NotProbed;
use crate::engine::{Note, PortResult, Reason, State};
use crate::port::Transport;

/// Up to this many ports (or runs of ports) are named in a verdict.
const NAMED: usize = 3;

/// How and where one blocked port is blocked: "dropped (no response)",
/// "rejected by 198.18.0.1 (administratively prohibited)". Every report line
/// that says why a port is blocked takes its words from here.
pub fn blocked_phrase(row: &Row) -> String {
    let r = &row.result;
    if let Some(phrase) = r.located.and_then(words::blocked_where) {
        return phrase;
    }
    match (r.reason, r.reason_from) {
        (Reason::NoResponse, _) => "dropped (no response)".to_string(),
        (Reason::LocalFirewall | Reason::NoRoute, _) => words::reason(r.reason),
        (Reason::LocalError, _) => match r.note {
            Some(Note::LocalError { errno }) => {
                format!("not sent by this computer ({})", words::os_error(errno))
            }
            _ => words::reason(Reason::LocalError),
        },
        (reason, Some(from)) if from != r.address => {
            format!("rejected by {from} ({})", words::reason(reason))
        }
        (reason, Some(_)) => format!("rejected by the host ({})", words::reason(reason)),
        (reason, None) => format!("rejected ({})", words::reason(reason)),
    }
}

/// Consecutive ports of one address and transport that read the same way.
struct Run<'a> {
    first: &'a Row,
    last: u16,
    words: String,
}

/// The rows as runs of consecutive ports whose `words` agree.
fn runs<'a>(rows: &[&'a Row], words: impl Fn(&Row) -> String) -> Vec<Run<'a>> {
    let mut out: Vec<Run<'a>> = Vec::new();
    for &row in rows {
        let r = &row.result;
        let text = words(row);
        match out.last_mut() {
            Some(run)
                if run.first.result.address == r.address
                    && run.first.result.transport == r.transport
                    && u32::from(run.last) + 1 == u32::from(r.port)
                    && run.words == text =>
            {
                run.last = r.port;
            }
            _ => out.push(Run {
                first: row,
                last: r.port,
                words: text,
            }),
        }
    }
    out
}

/// "TCP 25" or "TCP 8000-8999" for the ports of `first`'s result up to
/// `last`, after the address when `many_addresses`.
pub(super) fn ports_label(first: &PortResult, last: u16, many_addresses: bool) -> String {
    let ports = if last == first.port {
        first.port.to_string()
    } else {
        format!("{}-{last}", first.port)
    };
    if many_addresses {
        format!("{} {} {ports}", first.address, first.transport.label())
    } else {
        format!("{} {ports}", first.transport.label())
    }
}

/// A run's ports, as [`ports_label`] says them.
fn run_label(run: &Run<'_>, many_addresses: bool) -> String {
    ports_label(&run.first.result, run.last, many_addresses)
}

/// Up to [`NAMED`] items, then "and N more".
fn at_most(mut items: Vec<String>) -> String {
    if items.len() > NAMED {
        let more = items.len() - NAMED;
        items.truncate(NAMED);
        items.push(format!("and {more} more"));
    }
    items.join(", ")
}

/// The blocked ports, each with how and where it is blocked; consecutive
/// ports blocked the same way as one range: "TCP 25 dropped (no
/// response), TCP 8000-8999 rejected by 198.18.0.1 (administratively
/// prohibited)".
pub fn blocked_ports(rows: &[&Row], many_addresses: bool) -> String {
    at_most(
        runs(rows, blocked_phrase)
            .iter()
            .map(|run| format!("{} {}", run_label(run, many_addresses), run.words))
            .collect(),
    )
}

/// The ports alone, consecutive ones as ranges: "TCP 554, TCP 7070, UDP 554".
fn port_list(rows: &[&Row], many_addresses: bool) -> String {
    at_most(
        runs(rows, |_| String::new())
            .iter()
            .map(|run| run_label(run, many_addresses))
            .collect(),
    )
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A service group's verdict in a few words: `reachable`, `blocked: ...`,
/// `nothing listening: ...`, `partly reachable: ...`, `unconfirmed: ...`,
/// or, when some of its ports were never probed, `not fully probed`.
pub fn verdict(v: &ProductVerdict<'_>, many_addresses: bool) -> String {
    let blocked: Vec<&Row> = v.blocked().collect();
    let closed: Vec<&Row> = v
        .rows
        .iter()
        .copied()
        .filter(|r| r.result.state == State::Closed)
        .collect();
    let silent: Vec<&Row> = v
        .rows
        .iter()
        .copied()
        .filter(|r| r.result.state == State::OpenFiltered)
        .collect();
    let unconfirmed = plural(
        silent.len(),
        "UDP port unconfirmed",
        "UDP ports unconfirmed",
    );
    match v.status {
        Status::Critical => format!("blocked: {}", blocked_ports(&blocked, many_addresses)),
        Status::Unknown if !blocked.is_empty() => {
            format!(
                "not fully probed; blocked so far: {}",
                blocked_ports(&blocked, many_addresses)
            )
        }
        Status::Unknown => "not fully probed".to_string(),
        Status::Warning if !closed.is_empty() => {
            let list = port_list(&closed, many_addresses);
            let mut text = if v.summary.open == 0 {
                format!("nothing listening: {list}")
            } else {
                format!("partly reachable: nothing listening on {list}")
            };
            if !silent.is_empty() {
                text.push_str(&format!("; {unconfirmed}"));
            }
            text
        }
        Status::Warning if v.summary.open > 0 => format!("reachable, {unconfirmed}"),
        Status::Warning => format!(
            "unconfirmed: no reply from {}",
            port_list(&silent, many_addresses)
        ),
        Status::Ok => "reachable".to_string(),
    }
}

/// The services of `t` with a blocked port, in the plan's order, when the
/// run judges more than one service; else none.
pub fn blocked_services(t: &TargetReport) -> Vec<String> {
    if t.services.len() < 2 {
        return Vec::new();
    }
    t.blocked_products().map(str::to_string).collect()
}

/// " (Mail, Web Service)" for the services named, up to three and then
/// "and N more"; empty for none. Callers clean the names for their format.
pub fn in_parentheses(services: &[String]) -> String {
    if services.is_empty() {
        String::new()
    } else {
        format!(" ({})", at_most(services.to_vec()))
    }
}

/// `-p Xsan`, or `-p "QuickTime Streaming Server"` when the name needs
/// quoting for a shell.
fn product_option(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'));
    if plain {
        format!("-p {name}")
    } else {
        let mut quoted = String::from("-p \"");
        for c in name.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    }
}

/// "A", "A and B", "A, B and C".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The line that says which ranges were not probed and how to include
/// them: `not probed: UDP 6970-9999 (QuickTime Streaming Server RTP media):
/// add -p "QuickTime Streaming Server" to include them`. None when nothing
/// was left out. Callers clean it for their format.
pub fn not_probed_line(not_probed: &[NotProbed]) -> Option<String> {
    if not_probed.is_empty() {
        return None;
    }
    let ranges: Vec<String> = not_probed
        .iter()
        .map(|n| {
            let ports = if n.port_start == n.port_end {
                n.port_start.to_string()
            } else {
                format!("{}-{}", n.port_start, n.port_end)
            };
            let transport = match n.protocol {
                Transport::Tcp => "TCP",
                Transport::Udp => "UDP",
            };
            format!("{transport} {ports} ({})", n.why)
        })
        .collect();
    let mut options: Vec<String> = Vec::new();
    for n in not_probed {
        let option = product_option(&n.product);
        if !options.contains(&option) {
            options.push(option);
        }
    }
    Some(format!(
        "not probed: {}: add {} to include them",
        and_list(&ranges),
        options.join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::catalog::ServiceGroup;
    use crate::engine::{PortResult, ResolvedBy};
    use crate::report::Summary;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3));
    const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

    fn row(address: IpAddr, transport: Transport, port: u16, state: State, reason: Reason) -> Row {
        Row {
            result: PortResult::new(
                address,
                crate::catalog::probe_for(transport, port),
                port,
                state,
                reason,
            ),
            service: "svc".to_string(),
            products: vec!["Mail".to_string()],
        }
    }

    fn verdict_of(rows: &[&Row], status: Status) -> String {
        let rows: Vec<&Row> = rows.to_vec();
        let v = ProductVerdict {
            product: "Mail",
            includes_others: false,
            summary: Summary::of(rows.iter().copied()),
            rows,
            status,
        };
        verdict(&v, false)
    }

    #[test]
    fn blocked_ports_say_how_and_where() {
        let dropped = row(A, Transport::Tcp, 25, State::Filtered, Reason::NoResponse);
        assert_eq!(blocked_phrase(&dropped), "dropped (no response)");
        let mut rejected = row(
            A,
            Transport::Tcp,
            443,
            State::Filtered,
            Reason::AdminProhibited,
        );
        rejected.result.reason_from = Some(ROUTER);
        assert_eq!(
            blocked_phrase(&rejected),
            "rejected by 198.18.0.1 (administratively prohibited)"
        );
        rejected.result.reason_from = Some(A);
        assert_eq!(
            blocked_phrase(&rejected),
            "rejected by the host (administratively prohibited)"
        );
        let mut local = row(A, Transport::Tcp, 80, State::Filtered, Reason::LocalError);
        local.result.note = Some(Note::LocalError {
            errno: nix::libc::EPERM,
        });
        assert_eq!(
            blocked_phrase(&local),
            "not sent by this computer (Operation not permitted)"
        );
    }

    #[test]
    fn consecutive_ports_blocked_alike_are_one_range() {
        let rows: Vec<Row> = (8000..=8999)
            .map(|p| row(A, Transport::Tcp, p, State::Filtered, Reason::NoResponse))
            .chain([row(
                B,
                Transport::Tcp,
                9000,
                State::Filtered,
                Reason::NoResponse,
            )])
            .collect();
        let refs: Vec<&Row> = rows.iter().collect();
        assert_eq!(
            blocked_ports(&refs, false),
            "TCP 8000-8999 dropped (no response), TCP 9000 dropped (no response)"
        );
        assert_eq!(
            blocked_ports(&refs, true),
            "198.18.1.2 TCP 8000-8999 dropped (no response), 198.18.1.3 TCP 9000 dropped (no response)"
        );
        let many: Vec<Row> = [1, 3, 5, 7, 9]
            .iter()
            .map(|&p| row(A, Transport::Tcp, p, State::Closed, Reason::ConnRefused))
            .collect();
        let many: Vec<&Row> = many.iter().collect();
        assert_eq!(
            verdict_of(&many, Status::Warning),
            "nothing listening: TCP 1, TCP 3, TCP 5, and 2 more"
        );
    }

    #[test]
    fn each_kind_of_verdict_has_its_words() {
        let open = row(A, Transport::Tcp, 110, State::Open, Reason::SynAck);
        let closed = row(A, Transport::Tcp, 995, State::Closed, Reason::ConnRefused);
        let silent = row(
            A,
            Transport::Udp,
            500,
            State::OpenFiltered,
            Reason::NoResponse,
        );
        let dropped = row(A, Transport::Tcp, 25, State::Filtered, Reason::NoResponse);
        assert_eq!(verdict_of(&[&open], Status::Ok), "reachable");
        assert_eq!(
            verdict_of(&[&open, &dropped], Status::Critical),
            "blocked: TCP 25 dropped (no response)"
        );
        assert_eq!(
            verdict_of(&[&closed], Status::Warning),
            "nothing listening: TCP 995"
        );
        assert_eq!(
            verdict_of(&[&open, &closed, &silent], Status::Warning),
            "partly reachable: nothing listening on TCP 995; 1 UDP port unconfirmed"
        );
        assert_eq!(
            verdict_of(&[&open, &silent], Status::Warning),
            "reachable, 1 UDP port unconfirmed"
        );
        assert_eq!(
            verdict_of(&[&silent], Status::Warning),
            "unconfirmed: no reply from UDP 500"
        );
        assert_eq!(
            verdict_of(&[&open, &dropped], Status::Unknown),
            "not fully probed; blocked so far: TCP 25 dropped (no response)"
        );
    }

    #[test]
    fn by_product_groups_rows_per_address_and_product() {
        let mut web = row(A, Transport::Tcp, 80, State::Open, Reason::SynAck);
        web.products = vec!["NetBoot".to_string(), "Web Service".to_string()];
        let mut web_b = web.clone();
        web_b.result.address = B;
        web_b.result.state = State::Filtered;
        web_b.result.reason = Reason::NoResponse;
        let mail = row(A, Transport::Tcp, 25, State::Open, Reason::SynAck);
        let mut mail_b = mail.clone();
        mail_b.result.address = B;
        let services: Vec<ServiceGroup> = ["Mail", "NetBoot", "Web Service", "Xgrid"]
            .iter()
            .map(|p| ServiceGroup {
                product: p.to_string(),
                ports: usize::from(*p != "Xgrid"),
                includes_others: false,
            })
            .collect();
        let target = |rows: Vec<Row>| {
            TargetReport::probed(
                "server.local".to_string(),
                vec![A, B],
                ResolvedBy::Literal,
                rows,
                services.clone(),
                Vec::new(),
                0,
            )
        };
        let mut rows = vec![mail, web, mail_b, web_b];
        let t = target(rows.clone());
        let groups = t.by_product();
        let seen: Vec<(&str, Status, usize)> = groups
            .iter()
            .map(|g| (g.product, g.status, g.rows.len()))
            .collect();
        assert_eq!(
            seen,
            [
                ("Mail", Status::Ok, 2),
                ("NetBoot", Status::Critical, 2),
                ("Web Service", Status::Critical, 2),
                ("Xgrid", Status::Ok, 0),
            ]
        );
        assert_eq!(
            verdict(&groups[2], true),
            "blocked: 198.18.1.3 TCP 80 dropped (no response)"
        );
        assert_eq!(blocked_services(&t), ["NetBoot", "Web Service"]);
        assert_eq!(
            in_parentheses(&blocked_services(&t)),
            " (NetBoot, Web Service)"
        );
        // A port without a result leaves its group's verdict open.
        rows.pop();
        assert_eq!(target(rows).by_product()[2].status, Status::Unknown);
    }

    #[test]
    fn the_not_probed_line_says_how_to_include_the_ranges() {
        let rtp = NotProbed {
            protocol: Transport::Udp,
            port_start: 6970,
            port_end: 9999,
            service: "QTSS RTP streams".to_string(),
            product: "QuickTime Streaming Server".to_string(),
            why: "QuickTime Streaming Server RTP media".to_string(),
        };
        let xsan = NotProbed {
            protocol: Transport::Tcp,
            port_start: 49152,
            port_end: 65535,
            service: "Xsan".to_string(),
            product: "Xsan".to_string(),
            why: "Xsan file system".to_string(),
        };
        assert_eq!(not_probed_line(&[]), None);
        assert_eq!(
            not_probed_line(&[rtp.clone(), xsan]).unwrap(),
            "not probed: UDP 6970-9999 (QuickTime Streaming Server RTP media) and TCP 49152-65535 (Xsan file system): add -p \"QuickTime Streaming Server\" or -p Xsan to include them"
        );
        let odd = NotProbed {
            product: "Say \"$HOME\"".to_string(),
            ..rtp
        };
        assert!(
            not_probed_line(&[odd])
                .unwrap()
                .ends_with("add -p \"Say \\\"\\$HOME\\\"\" to include them")
        );
    }
}
