//! Cisco IOS: named extended access lists, `ip access-list extended` for
//! IPv4 (a source as `any`, `host A` or a network and its wildcard mask)
//! and `ipv6 access-list` for IPv6 (prefixes, not masks), one `permit` per
//! port (`eq`) or range (`range lo hi`), each rule after a `remark` of at
//! most 100 characters, as IOS takes them.

use std::fmt::Write as _;

use ipnet::IpNet;

use super::model::{Rule, Rules};
use super::text;

/// The most characters IOS keeps of a remark.
const MAX_REMARK: usize = 100;

/// The access list the lines go into, unless `--chain` names one.
pub const DEFAULT_NAME: &str = "PORTPROBE-ALLOW";

/// A `--chain` value as an IOS access-list name: letters, digits, `_`,
/// `-`, `.`; a letter first (a number would name a numbered list); at most
/// 64 bytes.
pub fn list_name(s: &str) -> Result<String, String> {
    let ok = s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an access-list name (a letter, then letters, digits, _, - or ., e.g. {DEFAULT_NAME})"
        ))
    }
}

/// A source as IOS writes it: `any`, `host A`, `NET WILDCARD` (IPv4) or
/// `NET/LEN` (IPv6).
fn source(net: Option<IpNet>) -> String {
    match net {
        None => "any".to_string(),
        Some(n) if n.prefix_len() == n.max_prefix_len() => format!("host {}", n.addr()),
        Some(IpNet::V4(n)) => format!("{} {}", n.network(), n.hostmask()),
        Some(IpNet::V6(n)) => n.to_string(),
    }
}

fn permits(out: &mut String, rules: &Rules, r: &Rule) {
    let _ = writeln!(out, " remark {}", text::fit(&r.describe(), MAX_REMARK));
    let from = source(rules.sources.of(r.destination));
    for p in &r.ports {
        let ports = if p.start() == p.end() {
            format!("eq {}", p.start())
        } else {
            format!("range {} {}", p.start(), p.end())
        };
        let _ = writeln!(
            out,
            " permit {} {from} host {} {ports}",
            r.transport.as_str(),
            r.destination
        );
    }
}

/// The rules as IOS configuration lines for access list `name` (and
/// `name-V6` for IPv6).
pub fn render(rules: &Rules, name: &str) -> String {
    let mut out = String::new();
    for line in rules.header() {
        let _ = writeln!(out, "! {line}");
    }
    if rules.rules.is_empty() {
        return out;
    }
    out.push_str(
        "! Put these lines in the access list applied where the ports are blocked,\n\
         ! before the line that denies them (a lower sequence number), not after it.\n",
    );
    for (v6, header) in [
        (false, format!("ip access-list extended {name}")),
        (true, format!("ipv6 access-list {name}-V6")),
    ] {
        let family: Vec<&Rule> = rules.rules.iter().filter(|r| r.is_v6() == v6).collect();
        if family.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{header}");
        for r in family {
            permits(&mut out, rules, r);
        }
        out.push_str("!\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Transport;
    use crate::rules::model::{Sources, Wanted, parse_source};

    #[test]
    fn wildcard_masks_from_prefixes() {
        let net = |s: &str| source(Some(parse_source(s).unwrap()));
        assert_eq!(net("198.18.0.0/24"), "198.18.0.0 0.0.0.255");
        assert_eq!(net("10.0.0.0/8"), "10.0.0.0 0.255.255.255");
        assert_eq!(net("172.16.0.0/12"), "172.16.0.0 0.15.255.255");
        assert_eq!(net("198.18.0.128/25"), "198.18.0.128 0.0.0.127");
        assert_eq!(net("198.18.0.7/32"), "host 198.18.0.7");
        assert_eq!(net("2001:db8::/64"), "2001:db8::/64");
        let one: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(source(Some(IpNet::from(one))), "host 2001:db8::1");
        assert_eq!(source(None), "any");
    }

    #[test]
    fn eq_for_a_port_range_for_a_range() {
        let w = |d: &str, t, port| Wanted {
            destination: d.parse().unwrap(),
            transport: t,
            port,
            what: "ARD".into(),
            found: Some("x".repeat(200)),
        };
        let mut wanted = vec![
            w("198.18.1.2", Transport::Tcp, 5900),
            w("2001:db8:1::2", Transport::Udp, 3283),
        ];
        wanted.extend((49152..=65535).map(|p| w("198.18.1.2", Transport::Tcp, p)));
        let sources = Sources::new(&[
            parse_source("198.18.0.0/24").unwrap(),
            parse_source("::/0").unwrap(),
        ])
        .unwrap();
        let text = render(&Rules::new(wanted, sources, vec![]).unwrap(), DEFAULT_NAME);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('!')).collect();
        assert_eq!(lines.len(), 7, "{text}");
        assert_eq!(lines[0], "ip access-list extended PORTPROBE-ALLOW");
        assert!(lines[1].starts_with(" remark ARD, TCP 5900, 49152-65535 to 198.18.1.2 xxx"));
        assert_eq!(lines[1].len(), " remark ".len() + 100);
        assert_eq!(
            lines[2],
            " permit tcp 198.18.0.0 0.0.0.255 host 198.18.1.2 eq 5900"
        );
        assert_eq!(
            lines[3],
            " permit tcp 198.18.0.0 0.0.0.255 host 198.18.1.2 range 49152 65535"
        );
        assert_eq!(lines[4], "ipv6 access-list PORTPROBE-ALLOW-V6");
        assert_eq!(lines[6], " permit udp any host 2001:db8:1::2 eq 3283");
    }

    #[test]
    fn list_names_are_checked() {
        assert!(list_name("OUTSIDE_IN").is_ok());
        for bad in ["", "101", "a b", "x\nexit"] {
            assert!(list_name(bad).is_err(), "{bad}");
        }
    }
}
