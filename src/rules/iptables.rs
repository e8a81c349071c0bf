//! iptables and ip6tables: a shell script of `-I CHAIN` commands, each
//! inserting one ACCEPT at the top of the chain (FORWARD on a router,
//! INPUT on the server itself), so that it comes before the rule that
//! drops the port. More than 15 ports of one rule (a range counts two) are
//! split over several commands, multiport's limit.

use std::fmt::Write as _;

use super::model::{Rule, Rules};
use crate::port::PortRange;

/// The most bytes iptables keeps of a comment (`-m comment`).
const MAX_COMMENT: usize = 255;

/// The most port slots of one `-m multiport` match; a range takes two.
const MULTIPORT_SLOTS: usize = 15;

/// A `--chain` value as iptables takes it: letters, digits, `_`, `-`, `.`;
/// a letter or digit first; at most 28 bytes.
pub fn chain_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 28
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an iptables chain name (letters, digits, _, - or ., at most 28, e.g. FORWARD or INPUT)"
        ))
    }
}

/// `s` as one word for a POSIX shell: in single quotes, each `'` written
/// as `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The port ranges of a rule in groups that fit one multiport match.
fn chunks(ranges: &[PortRange]) -> Vec<&[PortRange]> {
    let mut out = Vec::new();
    let (mut start, mut slots) = (0, 0);
    for (i, r) in ranges.iter().enumerate() {
        let need = if r.start() == r.end() { 1 } else { 2 };
        if slots + need > MULTIPORT_SLOTS {
            out.push(&ranges[start..i]);
            (start, slots) = (i, 0);
        }
        slots += need;
    }
    out.push(&ranges[start..]);
    out
}

/// The port match: `--dport 5900`, `--dport 49152:65535`, or
/// `-m multiport --dports 5900,49152:65535`.
fn port_match(ranges: &[PortRange]) -> String {
    let spell = |r: &PortRange| {
        if r.start() == r.end() {
            r.start().to_string()
        } else {
            format!("{}:{}", r.start(), r.end())
        }
    };
    match ranges {
        [one] => format!("--dport {}", spell(one)),
        _ => {
            let list: Vec<String> = ranges.iter().map(spell).collect();
            format!("-m multiport --dports {}", list.join(","))
        }
    }
}

fn commands(out: &mut String, rules: &Rules, r: &Rule, chain: &str) {
    let program = if r.is_v6() { "ip6tables" } else { "iptables" };
    let source = rules
        .sources
        .of(r.destination)
        .map_or_else(String::new, |s| format!(" -s {s}"));
    let comment = sh_quote(&r.label(MAX_COMMENT));
    for part in chunks(&r.ports) {
        let _ = writeln!(
            out,
            "{program} -I {chain} -p {}{source} -d {} {} -m comment --comment {comment} -j ACCEPT",
            r.transport.as_str(),
            r.destination,
            port_match(part)
        );
    }
}

/// The rules as a shell script for chain `chain`.
pub fn render(rules: &Rules, chain: &str) -> String {
    let mut out = String::from("#!/bin/sh\n");
    for line in rules.header() {
        let _ = writeln!(out, "# {line}");
    }
    if rules.rules.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "# Run as root where the ports are blocked (sh FILE): each command inserts\n\
         # its rule at the top of chain {chain}, before the rule that blocks the port.\n\
         set -e"
    );
    for r in &rules.rules {
        let _ = writeln!(out, "# {}", r.describe());
        commands(&mut out, rules, r, chain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Transport;
    use crate::rules::model::{Sources, Wanted, parse_source};

    fn wanted(d: &str, t: Transport, ports: impl IntoIterator<Item = u16>) -> Vec<Wanted> {
        ports
            .into_iter()
            .map(|port| Wanted {
                destination: d.parse().unwrap(),
                transport: t,
                port,
                what: "it's".into(),
                found: None,
            })
            .collect()
    }

    #[test]
    fn one_port_a_range_and_a_list() {
        let mut w = wanted("198.18.1.2", Transport::Tcp, [5900]);
        w.extend(wanted("198.18.1.2", Transport::Udp, 6970..=9999));
        w.extend(wanted("2001:db8:1::2", Transport::Tcp, [22, 80, 443]));
        let sources = Sources::new(&[
            parse_source("198.18.0.0/24").unwrap(),
            parse_source("::/0").unwrap(),
        ])
        .unwrap();
        let rules = Rules::new(w, sources, vec![]).unwrap();
        let text = render(&rules, "FORWARD");
        let commands: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            commands,
            [
                "set -e",
                "iptables -I FORWARD -p tcp -s 198.18.0.0/24 -d 198.18.1.2 --dport 5900 -m comment --comment 'portprobe: it'\\''s' -j ACCEPT",
                "iptables -I FORWARD -p udp -s 198.18.0.0/24 -d 198.18.1.2 --dport 6970:9999 -m comment --comment 'portprobe: it'\\''s' -j ACCEPT",
                "ip6tables -I FORWARD -p tcp -d 2001:db8:1::2 -m multiport --dports 22,80,443 -m comment --comment 'portprobe: it'\\''s' -j ACCEPT",
            ]
        );
    }

    #[test]
    fn more_than_fifteen_slots_split() {
        let ports: Vec<u16> = (0..20).map(|i| 1000 + 2 * i).collect();
        let mut w = wanted("198.18.1.2", Transport::Tcp, ports);
        w.extend(wanted("198.18.1.2", Transport::Tcp, 2000..=2001));
        let rules = Rules::new(w, Sources::default(), vec![]).unwrap();
        let text = render(&rules, "INPUT");
        let lists: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split("--dports ").nth(1)?.split(' ').next())
            .collect();
        assert_eq!(lists.len(), 2);
        assert_eq!(lists[0].split(',').count(), 15);
        assert_eq!(lists[1], "1030,1032,1034,1036,1038,2000:2001");
    }

    #[test]
    fn chain_names_are_checked() {
        assert_eq!(chain_name("FORWARD").unwrap(), "FORWARD");
        assert!(chain_name("LAN_in-2").is_ok());
        for bad in ["", "-j", "a b", "x;reboot", &"A".repeat(29)] {
            assert!(chain_name(bad).is_err(), "{bad}");
        }
    }
}
