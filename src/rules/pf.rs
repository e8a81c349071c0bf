//! pf (OpenBSD, FreeBSD, macOS): `pass in quick` rules as pf.conf(5)
//! writes them, `inet` or `inet6`, a port, an inclusive range `lo:hi`, or
//! a list `{ 5900, 49152:65535 }`; `quick` ends the evaluation at the
//! first match, so the rule wins over a `block` that follows it.

use std::fmt::Write as _;

use super::model::{Rule, Rules};
use crate::port::PortRange;

/// `5900`, `49152:65535`, or `{ 5900, 49152:65535 }`.
fn ports(ranges: &[PortRange]) -> String {
    let spell = |r: &PortRange| {
        if r.start() == r.end() {
            r.start().to_string()
        } else {
            format!("{}:{}", r.start(), r.end())
        }
    };
    let list: Vec<String> = ranges.iter().map(spell).collect();
    match &list[..] {
        [one] => one.clone(),
        _ => format!("{{ {} }}", list.join(", ")),
    }
}

fn rule(rules: &Rules, r: &Rule) -> String {
    let source = rules
        .sources
        .of(r.destination)
        .map_or_else(|| "any".to_string(), |s| s.to_string());
    format!(
        "pass in quick {} proto {} from {source} to {} port {}",
        if r.is_v6() { "inet6" } else { "inet" },
        r.transport.as_str(),
        r.destination,
        ports(&r.ports)
    )
}

/// The rules as lines for pf.conf.
pub fn render(rules: &Rules) -> String {
    let mut out = String::new();
    for line in rules.header() {
        let _ = writeln!(out, "# {line}");
    }
    if rules.rules.is_empty() {
        return out;
    }
    out.push_str(
        "# Add to pf.conf where the ports are blocked, then load it (pfctl -f /etc/pf.conf).\n",
    );
    for r in &rules.rules {
        let _ = writeln!(out, "# {}", r.describe());
        let _ = writeln!(out, "{}", rule(rules, r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Transport;
    use crate::rules::model::{Sources, Wanted, parse_source};

    #[test]
    fn pass_in_quick_with_family_ports_and_lists() {
        let w = |d: &str, t, port| Wanted {
            destination: d.parse().unwrap(),
            transport: t,
            port,
            what: "ARD".into(),
            found: None,
        };
        let mut wanted = vec![
            w("198.18.1.2", Transport::Tcp, 5900),
            w("2001:db8:1::2", Transport::Udp, 3283),
        ];
        wanted.extend((49152..=65535).map(|p| w("198.18.1.2", Transport::Tcp, p)));
        wanted.push(w("198.18.1.2", Transport::Udp, 5353));
        let sources = Sources::new(&[
            parse_source("198.18.0.0/24").unwrap(),
            parse_source("2001:db8::/64").unwrap(),
        ])
        .unwrap();
        let text = render(&Rules::new(wanted, sources, vec![]).unwrap());
        let rules: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rules,
            [
                "pass in quick inet proto tcp from 198.18.0.0/24 to 198.18.1.2 port { 5900, 49152:65535 }",
                "pass in quick inet proto udp from 198.18.0.0/24 to 198.18.1.2 port 5353",
                "pass in quick inet6 proto udp from 2001:db8::/64 to 2001:db8:1::2 port 3283",
            ]
        );
        assert!(text.contains("\n# ARD, TCP 5900, 49152-65535 to 198.18.1.2\n"));
    }
}
