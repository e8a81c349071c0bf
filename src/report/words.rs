//! The words every report uses for the engine's data: reasons, notes, what
//! silence from a UDP protocol means, and error chains.

use std::error::Error;
use std::net::IpAddr;

use crate::engine::ignored::{Ignored, Why};
use crate::engine::{Located, Note, Reason, Stop, Translation, Unconfirmed};
use crate::wire::{Silence, UdpProtocol};

/// What a reason means, in words a person reads ("administratively
/// prohibited").
pub fn reason(r: Reason) -> String {
    let s = match r {
        Reason::SynAck => "connection accepted",
        Reason::ConnRefused => "connection refused",
        Reason::Responder => "the responder answered and proved the secret",
        Reason::NotResponder => "something answered, but not the responder",
        Reason::ResponderBusy => "the responder had no room for the connection",
        Reason::NoResponse => "no response",
        Reason::UdpResponse => "service replied",
        Reason::UdpResponseUnrecognised => "unrecognised reply",
        Reason::PortUnreachable => "port unreachable",
        Reason::AdminProhibited => "administratively prohibited",
        Reason::HostUnreachable => "host unreachable",
        Reason::NetUnreachable => "network unreachable",
        Reason::ProtocolUnreachable => "protocol unreachable",
        Reason::HostProhibited => "host administratively prohibited",
        Reason::NetProhibited => "network administratively prohibited",
        Reason::PolicyFailed => "source address failed policy",
        Reason::RejectRoute => "reject route",
        Reason::TimeExceeded => "time exceeded (routing loop?)",
        Reason::LocalFirewall => "refused by this computer's firewall",
        Reason::NoRoute => "no route from this computer",
        Reason::LocalError => "this computer could not send the probe",
        Reason::Icmp(c) => {
            let family = if c.v6 { "ICMPv6" } else { "ICMP" };
            return format!("{family} type {} code {}", c.kind, c.code);
        }
    };
    s.to_string()
}

/// The operating system's message for `errno` ("Invalid argument").
pub fn os_error(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // "Invalid argument (os error 22)": the message, without the number.
    match text.rsplit_once(" (os error") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

/// A note in words.
pub fn note(n: Note) -> String {
    match n {
        Note::SelfConnectOnly => "every connect reached itself (the kernel chose this port as the source port), which happens only when nothing listens".to_string(),
        Note::Unconfirmed(why) => {
            let cause = match why {
                Unconfirmed::OutOfTime => {
                    "--max-time ran out before this port could be re-probed".to_string()
                }
                Unconfirmed::Stopped => {
                    "probing stopped before this port could be re-probed".to_string()
                }
                Unconfirmed::RoundCap { rounds } => format!(
                    "{rounds} slow re-probing round{} (the cap; --retries sets it) did not settle it",
                    if rounds == 1 { "" } else { "s" }
                ),
                Unconfirmed::ResponderLimiting => {
                    return "not confirmed: the responder was limiting its replies (a flood, maybe with forged source addresses): a port it had answered went silent too when probed again, or its replies said so; an open port may hide behind the silence".to_string();
                }
            };
            format!(
                "not confirmed: the host limits ICMP errors and {cause}; a closed port may hide behind the silence"
            )
        }
        Note::Translated(t) => translation(t, false),
        Note::LocalError { errno } => format!("this computer could not send: {}", os_error(errno)),
    }
}

/// What a responder's proof showed that differs from what this computer
/// sent, for one port, or (`many`) for a run of ports whose port numbers
/// differ: "the responder answered from behind a translation: it saw the
/// hello come from 203.0.113.5:40122, not from this computer's
/// 198.18.0.2:40122 (a NAT between, or a relay)".
pub fn translation(t: Translation, many: bool) -> String {
    let hello = if many { "the hellos" } else { "the hello" };
    let mut saw = Vec::new();
    let mut causes = Vec::new();
    if let Some((seen, sent)) = t.source {
        saw.push(match (many, seen.ip() == sent.ip()) {
            (false, _) => format!("come from {seen}, not from this computer's {sent}"),
            (true, true) => format!("come from {} but from other ports than sent", seen.ip()),
            (true, false) => format!(
                "come from {}, not from this computer's {}",
                seen.ip(),
                sent.ip()
            ),
        });
        causes.push("a NAT between");
    }
    if let Some(at) = t.destination {
        saw.push(match (many, at.ip().is_unspecified()) {
            (false, true) => format!("arrive on port {}, not the probed one", at.port()),
            (false, false) => format!("arrive at {at}, not at the address and port probed"),
            (true, true) => "arrive on other ports than probed".to_string(),
            (true, false) => format!(
                "arrive at {}, not at the addresses and ports probed",
                at.ip()
            ),
        });
        causes.push("port forwarding");
    }
    causes.push("or a relay");
    format!(
        "the responder answered from behind a translation: it saw {hello} {} ({})",
        saw.join(" and "),
        causes.join(", ")
    )
}

/// How likely silence from `protocol` is a drop, in a few words.
pub fn silence_likelihood(protocol: UdpProtocol) -> &'static str {
    match protocol.silence() {
        Silence::DropLikelier => "a drop is likelier",
        Silence::ServiceSilent => "an open port looks like this",
        Silence::CannotTell => "cannot tell",
    }
}

/// Why silence from `protocol` means what [`silence_likelihood`] says.
pub fn silence_explanation(protocol: UdpProtocol) -> &'static str {
    match protocol {
        UdpProtocol::Syslog => "syslog receivers never reply, so an open syslog port is silent too",
        UdpProtocol::DhcpClient => "a DHCP client never answers a datagram sent to it",
        UdpProtocol::NetbiosDgm => {
            "the NetBIOS datagram service does not answer unsolicited datagrams"
        }
        UdpProtocol::Mdns => {
            "mDNS responders ignore queries from other links, so silence through a router is expected even when Bonjour runs"
        }
        UdpProtocol::Generic => {
            "this port's protocol is private or session-bound, so a live service may ignore a probe"
        }
        UdpProtocol::Rpc => {
            "an RPC service answers any call, but these ports are often unused without sending port-unreachable"
        }
        UdpProtocol::Snmp => {
            "an SNMPv3 agent answers engine discovery whatever its communities, but a v1/v2c-only agent ignores a wrong community"
        }
        UdpProtocol::SerialNumberd | UdpProtocol::NetAssistant => {
            "the Apple service answers this request when it runs; silence points to a drop"
        }
        _ => {
            "a server of this protocol answers the request portprobe sends, so silence points to a drop"
        }
    }
}

/// What the run does while it confirms silent UDP ports, and why it takes
/// its time: "confirming 36 silent UDP ports of 1 address: ...".
pub fn confirming(ports: usize, addresses: usize, round: u32, max_rounds: u32) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let round = if round == 0 {
        "first round in a second".to_string()
    } else {
        format!("round {round} of at most {max_rounds}")
    };
    format!(
        "confirming {ports} silent UDP port{} of {addresses} address{}: the host limits ICMP errors to about one a second, so each round waits for its allowance ({round})",
        plural(ports),
        if addresses == 1 { "" } else { "es" },
    )
}

/// A hop named as a help desk reads it: `198.18.21.2 (hop 2)`.
fn hop(address: Option<IpAddr>, n: u8) -> String {
    match address {
        Some(a) => format!("{a} (hop {n})"),
        None => format!("hop {n}, which answers no one"),
    }
}

/// The hops strictly between `after` and `before` that answer no one:
/// `hop 2`, `hops 2-4`.
fn silent_between(after: u8, before: u8) -> String {
    let (first, last) = (after + 1, before - 1);
    if first == last {
        format!("hop {first}")
    } else {
        format!("hops {first}-{last}")
    }
}

/// The router (by address, else by hop) a port passes last.
fn router(address: Option<IpAddr>, n: u8) -> String {
    address.map_or_else(|| format!("hop {n}"), |a| a.to_string())
}

/// Where a port stops on the way, as a phrase that follows the port:
/// `passes 198.18.21.2 (hop 2) and is dropped before 198.18.22.2 (hop 3)`.
/// Every hop is named with its address where the path shows one; no
/// phrase names hop 0 (this computer), calls the host a router, or says
/// more than the probes showed.
pub fn located(l: Located) -> String {
    let (k, b) = (l.after_hop, l.before_hop);
    match l.how {
        Stop::Dropped if k == 0 && b <= 1 => format!(
            "is dropped at or before {}, before that router's TTL check",
            hop(l.before, 1)
        ),
        Stop::Dropped if k == 0 => format!(
            "never reaches {} ({} before it answer{} no one)",
            hop(l.before, b),
            silent_between(0, b),
            if b == 2 { "s" } else { "" }
        ),
        Stop::Dropped if b > k.saturating_add(1) => format!(
            "passes {} and never reaches {} ({} between answer{} no one)",
            hop(l.after, k),
            hop(l.before, b),
            silent_between(k, b),
            if b == k + 2 { "s" } else { "" }
        ),
        Stop::Dropped => format!(
            "passes {} and is dropped before {}",
            hop(l.after, k),
            hop(l.before, b)
        ),
        Stop::Rejected(r) => match l.after {
            Some(a) if k > 0 => format!("is rejected by {a} at hop {k} ({})", reason(r)),
            Some(a) => format!(
                "is rejected by {a} ({}), which the path does not show",
                reason(r)
            ),
            None => format!(
                "is rejected on the way by a sender the ICMP error does not name ({})",
                reason(r)
            ),
        },
        Stop::AtHost if k == 0 => {
            "goes straight to the host (no router on the way), which does not answer: the host's own firewall drops it, or the service is silent".to_string()
        }
        Stop::AtHost => format!(
            "passes every router up to {} and gets no answer from the host: {} after its TTL check, or the host's own firewall, drops it",
            hop(l.after, k),
            router(l.after, k)
        ),
        Stop::Unconfirmed if k == 0 => match l.before {
            Some(_) => format!(
                "gets no answer from any router on the way: whether it reaches {} could not be confirmed",
                hop(l.before, b)
            ),
            None => {
                "gets no answer from any router on the way (where it stops could not be confirmed)"
                    .to_string()
            }
        },
        Stop::Unconfirmed => match l.before {
            Some(next) => format!(
                "passes {}; whether it reaches {} could not be confirmed ({next} had no ICMP error to spare in time)",
                hop(l.after, k),
                hop(l.before, b)
            ),
            None => format!(
                "passes {} and nothing answers beyond it (where it stops could not be confirmed)",
                hop(l.after, k)
            ),
        },
    }
}

/// How far a UDP port without a reply was seen to get, to follow what its
/// silence likely means: `it passes every router, up to 198.18.22.2 (hop 3)`.
pub fn located_silence(l: Located) -> String {
    match l.how {
        Stop::AtHost if l.after_hop == 0 => "it goes straight to the host".to_string(),
        Stop::AtHost => format!(
            "it passes every router, up to {}: the host gets it, unless {} drops it after its TTL check",
            hop(l.after, l.after_hop),
            router(l.after, l.after_hop)
        ),
        _ => located(l),
    }
}

/// Who to ask about a port that stops where `l` says.
pub fn located_advice(l: Located) -> String {
    let (k, b) = (l.after_hop, l.before_hop);
    match (l.how, l.after, l.before) {
        (Stop::Dropped, Some(a), Some(n)) if b == k + 1 => format!(
            "the filter is on {a} (a forward rule) or on {n} (a rule before routing): ask whoever runs them to allow it"
        ),
        (Stop::Dropped, Some(a), Some(n)) => format!(
            "the filter is on {a} (a forward rule), on {} between, or on {n} (a rule before routing): ask whoever runs them to allow it",
            silent_between(k, b)
        ),
        (Stop::Dropped, None, Some(n)) => format!(
            "the filter is on {n} (a rule before routing) or before it: ask whoever runs {n} to allow it"
        ),
        (Stop::Dropped, Some(a), None) | (Stop::Rejected(_), Some(a), _) => {
            format!("ask whoever runs {a} to allow it")
        }
        (Stop::AtHost, Some(a), _) if k > 0 => format!(
            "check the host's own firewall and that the service runs, and ask whoever runs {a} whether it drops it after routing"
        ),
        (Stop::AtHost, _, _) => {
            "check the host's own firewall, and that the service runs".to_string()
        }
        _ => "ask whoever runs the firewalls on the way to allow it".to_string(),
    }
}

/// Where a located port is blocked, in the few words of a service's
/// verdict ("dropped before 198.18.22.2", "rejected by 198.18.0.1 at hop 1
/// (administratively prohibited)"); `None` when where is not confirmed.
pub fn blocked_where(l: Located) -> Option<String> {
    let name = |a: Option<IpAddr>, k: u8| a.map_or_else(|| format!("hop {k}"), |a| a.to_string());
    match l.how {
        Stop::Dropped if l.after_hop == 0 => Some(format!(
            "dropped at or before {}",
            name(l.before, l.before_hop)
        )),
        Stop::Dropped => Some(format!("dropped before {}", name(l.before, l.before_hop))),
        Stop::Rejected(r) if l.after_hop > 0 => Some(format!(
            "rejected by {} at hop {} ({})",
            name(l.after, l.after_hop),
            l.after_hop,
            reason(r)
        )),
        Stop::AtHost if l.after_hop > 0 => Some(format!(
            "dropped past {}, the last router (by it or by the host)",
            name(l.after, l.after_hop)
        )),
        Stop::Rejected(_) | Stop::AtHost | Stop::Unconfirmed => None,
    }
}

/// A located rejection, as a port's line says it: `rejected by 198.18.0.1
/// at hop 1: administratively prohibited`.
pub fn rejected(l: Located, r: Reason) -> String {
    match l.after {
        Some(a) if l.after_hop > 0 => {
            format!("rejected by {a} at hop {}: {}", l.after_hop, reason(r))
        }
        Some(a) => format!(
            "rejected by {a}, which the path does not show: {}",
            reason(r)
        ),
        None => format!(
            "rejected on the way by a sender the ICMP error does not name: {}",
            reason(r)
        ),
    }
}

/// The advice for a blocked port that timed out and could not be located:
/// the host answered other ports, so it is not down.
pub fn timed_out() -> &'static str {
    "times out: a firewall between you and the host drops it (the host answers other ports)"
}

/// What the run does while it locates blocked ports, and, while it waits
/// for a router's next ICMP error, which router and why.
pub fn locating(ports: usize, waiting_for: Option<IpAddr>) -> String {
    let what = format!(
        "locating where {ports} blocked port{} stop on the way (probes with a limited TTL, answered by each router)",
        if ports == 1 { "" } else { "s" }
    );
    match waiting_for {
        None => what,
        Some(r) => format!(
            "{what}: waiting for {r}'s next ICMP error (routers send about one a second{}, and the answer needs it)",
            if r.is_ipv6() { ", ten over IPv6" } else { "" }
        ),
    }
}

/// One datagram the engine heard and did not count, for `-v`:
/// `ignored a 48-byte datagram from 198.18.0.9:53 to the probe of
/// 198.18.1.2:53: ...`.
pub fn ignored(i: &Ignored) -> String {
    let why = match i.why {
        Why::OwnSocket => "it came from one of portprobe's own sockets",
        Why::NotOurs => {
            "it is the protocol's reply, but not to this request (its IDs, or where it came from, do not match)"
        }
        Why::AnotherRequest => {
            "it answers another request of the protocol (a late reply to an earlier attempt, or another client's)"
        }
        Why::Stranger => {
            "it is no reply of the protocol, and did not come from the probed address and port"
        }
    };
    format!(
        "ignored a {}-byte datagram from {} to the probe of {}: {why}",
        i.len, i.from, i.target
    )
}

/// The closing line of `-v`'s ignored datagrams when more came than were
/// kept.
pub fn ignored_more(more: usize) -> String {
    format!(
        "ignored {more} more datagram{} like these",
        if more == 1 { "" } else { "s" }
    )
}

/// An error and its causes, each once: `cannot resolve x: Name or service
/// not known`. A cause whose text its parent already ends with is skipped.
pub fn error_chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_explains_its_silence() {
        for port in [7, 53, 68, 138, 161, 514, 626, 700, 3283, 5353, 6970] {
            let p = crate::catalog::udp_protocol(port);
            assert!(!silence_explanation(p).is_empty());
            assert!(!silence_likelihood(p).is_empty());
        }
        assert_eq!(
            silence_likelihood(UdpProtocol::Syslog),
            "an open port looks like this"
        );
    }

    #[test]
    fn os_errors_lose_their_number() {
        assert_eq!(os_error(nix::libc::EINVAL), "Invalid argument");
        assert_eq!(
            note(Note::LocalError {
                errno: nix::libc::EACCES
            }),
            "this computer could not send: Permission denied"
        );
    }

    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn ip(last: u8, net: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(198, 18, net, last)))
    }

    fn at(
        after_hop: u8,
        after: Option<IpAddr>,
        before_hop: u8,
        before: Option<IpAddr>,
        how: Stop,
    ) -> Located {
        Located {
            after_hop,
            after,
            before_hop,
            before,
            how,
            age: Duration::ZERO,
        }
    }

    #[test]
    fn located_words_name_every_hop_by_address_and_never_mislead() {
        let (r1, r2, r3, host) = (ip(2, 20), ip(2, 21), ip(2, 22), ip(2, 23));
        let cases = [
            (
                at(0, None, 1, r1, Stop::Dropped),
                "is dropped at or before 198.18.20.2 (hop 1), before that router's TTL check",
            ),
            (
                at(0, None, 3, r3, Stop::Dropped),
                "never reaches 198.18.22.2 (hop 3) (hops 1-2 before it answer no one)",
            ),
            (
                at(1, r1, 3, r3, Stop::Dropped),
                "passes 198.18.20.2 (hop 1) and never reaches 198.18.22.2 (hop 3) (hop 2 between answers no one)",
            ),
            (
                at(2, r2, 3, r3, Stop::Dropped),
                "passes 198.18.21.2 (hop 2) and is dropped before 198.18.22.2 (hop 3)",
            ),
            (
                at(2, r2, 3, r3, Stop::Rejected(Reason::AdminProhibited)),
                "is rejected by 198.18.21.2 at hop 2 (administratively prohibited)",
            ),
            (
                at(0, r2, 1, None, Stop::Rejected(Reason::AdminProhibited)),
                "is rejected by 198.18.21.2 (administratively prohibited), which the path does not show",
            ),
            (
                at(0, None, 1, None, Stop::Rejected(Reason::AdminProhibited)),
                "is rejected on the way by a sender the ICMP error does not name (administratively prohibited)",
            ),
            (
                at(3, r3, 4, host, Stop::AtHost),
                "passes every router up to 198.18.22.2 (hop 3) and gets no answer from the host: 198.18.22.2 after its TTL check, or the host's own firewall, drops it",
            ),
            (
                at(0, None, 1, r1, Stop::Unconfirmed),
                "gets no answer from any router on the way: whether it reaches 198.18.20.2 (hop 1) could not be confirmed",
            ),
            (
                at(1, r1, 2, r2, Stop::Unconfirmed),
                "passes 198.18.20.2 (hop 1); whether it reaches 198.18.21.2 (hop 2) could not be confirmed (198.18.21.2 had no ICMP error to spare in time)",
            ),
            (
                at(1, r1, 2, None, Stop::Unconfirmed),
                "passes 198.18.20.2 (hop 1) and nothing answers beyond it (where it stops could not be confirmed)",
            ),
        ];
        for (l, says) in cases {
            let words = [
                located(l),
                located_advice(l),
                located_silence(l),
                rejected(l, Reason::AdminProhibited),
                blocked_where(l).unwrap_or_default(),
            ];
            assert_eq!(words[0], says);
            for w in words {
                for wrong in [
                    "hop 0",
                    "the next router",
                    "that last router",
                    "host is down",
                ] {
                    assert!(!w.contains(wrong), "{l:?}: {w}");
                }
            }
        }
        assert!(!timed_out().contains("down"));
    }

    #[test]
    fn locating_says_which_router_it_waits_for() {
        assert_eq!(
            locating(3, None),
            "locating where 3 blocked ports stop on the way (probes with a limited TTL, answered by each router)"
        );
        let waiting = locating(1, ip(1, 0));
        assert!(
            waiting.ends_with(
                ": waiting for 198.18.0.1's next ICMP error (routers send about one a second, and the answer needs it)"
            ),
            "{waiting}"
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(locating(1, Some(v6)).contains("ten over IPv6"));
    }

    #[test]
    fn a_translation_names_what_the_responder_saw() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let nat = Translation {
            source: Some((at("203.0.113.5:40122"), at("198.18.0.2:40122"))),
            destination: None,
        };
        assert_eq!(
            note(Note::Translated(nat)),
            "the responder answered from behind a translation: it saw the hello come from 203.0.113.5:40122, not from this computer's 198.18.0.2:40122 (a NAT between, or a relay)"
        );
        assert_eq!(
            translation(nat, true),
            "the responder answered from behind a translation: it saw the hellos come from 203.0.113.5, not from this computer's 198.18.0.2 (a NAT between, or a relay)"
        );
        let both = Translation {
            source: Some((at("198.18.0.2:50001"), at("198.18.0.2:40122"))),
            destination: Some(at("10.0.0.5:7001")),
        };
        assert_eq!(
            translation(both, true),
            "the responder answered from behind a translation: it saw the hellos come from 198.18.0.2 but from other ports than sent and arrive at 10.0.0.5, not at the addresses and ports probed (a NAT between, port forwarding, or a relay)"
        );
        let unknown = Translation {
            source: None,
            destination: Some(at("0.0.0.0:7001")),
        };
        assert_eq!(
            translation(unknown, false),
            "the responder answered from behind a translation: it saw the hello arrive on port 7001, not the probed one (port forwarding, or a relay)"
        );
    }

    #[test]
    fn a_limiting_responder_leaves_silence_unconfirmed_in_words() {
        let words = note(Note::Unconfirmed(Unconfirmed::ResponderLimiting));
        assert!(words.starts_with("not confirmed: the responder was limiting its replies"));
        assert!(words.ends_with("an open port may hide behind the silence"));
        assert_eq!(
            reason(Reason::ResponderBusy),
            "the responder had no room for the connection"
        );
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot resolve server.local: {}", self.0)
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::other("Name or service not known");
        assert_eq!(
            error_chain(&Outer(io)),
            "cannot resolve server.local: Name or service not known"
        );
        let anyhow =
            anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write x");
        assert_eq!(error_chain(anyhow.as_ref()), "cannot write x: disk full");
    }
}
