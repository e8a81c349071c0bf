//! aerleon (the maintained fork of capirca): YAML that its `aclgen`
//! compiles for some thirty platforms. Three files: network and service
//! definitions (`def/`), the terms alone as an include file, which a
//! filter of the user's own policy takes in with one line, and a policy
//! of its own that includes them, with targets for nftables, Cisco IOS,
//! Junos and pf. The policy's nftables table accepts by default and so
//! changes nothing by itself: to unblock ports that a filter drops, the
//! terms must be in that filter.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{Hook, Rules};
use super::text;

/// The definitions file, under the output directory.
pub const DEFINITIONS: &str = "def/portprobe.yaml";
/// The terms, as an include file, under the output directory.
pub const TERMS: &str = "policies/includes/portprobe-terms.yaml";
/// The terms' path as an include line names it, from the policies
/// directory (aclgen's `--base_directory`).
pub const TERMS_INCLUDE: &str = "includes/portprobe-terms.yaml";
/// The policy, under the output directory.
pub const POLICY: &str = "policies/pol/portprobe.yaml";

/// The most characters of a term's comment: nftables keeps 128 bytes of a
/// chain's comment, IOS 100 of a remark.
const MAX_COMMENT: usize = 100;

/// One file to write: its path under the output directory, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// The path, relative to the output directory.
    pub path: &'static str,
    /// What it holds.
    pub text: String,
}

/// `s` as a YAML single-quoted scalar: each `'` doubled.
pub fn yaml_quote(s: &str) -> String {
    let kept: String = s.chars().filter(|c| !c.is_control()).collect();
    format!("'{}'", kept.replace('\'', "''"))
}

fn header(rules: &Rules) -> String {
    rules.header().iter().map(|l| format!("# {l}\n")).collect()
}

/// The network that names the source of rules to `destination`, if the
/// rules have one.
fn source_name(rules: &Rules, destination: IpAddr) -> Option<(&'static str, IpNet)> {
    let net = rules.sources.of(destination)?;
    Some((
        if net.addr().is_ipv4() {
            "PORTPROBE_SOURCE_V4"
        } else {
            "PORTPROBE_SOURCE_V6"
        },
        net,
    ))
}

/// The three files for `rules`; nothing when there are no rules.
pub fn render(rules: &Rules, hook: Hook) -> Vec<File> {
    if rules.rules.is_empty() {
        return Vec::new();
    }
    let mut destinations: Vec<IpAddr> = Vec::new();
    for r in &rules.rules {
        if !destinations.contains(&r.destination) {
            destinations.push(r.destination);
        }
    }
    let to_name = |d: IpAddr| {
        let i = destinations.iter().position(|&x| x == d).expect("listed");
        format!("PORTPROBE_TO_{}", i + 1)
    };

    let mut def = header(rules);
    def.push_str("networks:\n");
    let mut sources: Vec<(&str, IpNet)> = Vec::new();
    for r in &rules.rules {
        if let Some(s) = source_name(rules, r.destination)
            && !sources.contains(&s)
        {
            sources.push(s);
        }
    }
    for (name, net) in &sources {
        let _ = writeln!(def, "  {name}:\n    values:\n      - address: {net}");
    }
    for &d in &destinations {
        let _ = writeln!(
            def,
            "  {}:\n    values:\n      - address: {}",
            to_name(d),
            IpNet::from(d)
        );
    }
    def.push_str("services:\n");
    for (i, r) in rules.rules.iter().enumerate() {
        let _ = writeln!(def, "  PORTPROBE_{}:", i + 1);
        for p in &r.ports {
            let _ = writeln!(
                def,
                "    - port: {}\n      protocol: {}",
                yaml_quote(&p.to_string()),
                r.transport.as_str()
            );
        }
    }

    let mut terms = header(rules);
    let _ = writeln!(
        terms,
        "# Include these terms in the filter that blocks the ports, before the term\n\
         # that denies them:   - include: {TERMS_INCLUDE}\n\
         terms:"
    );
    for (i, r) in rules.rules.iter().enumerate() {
        let _ = writeln!(
            terms,
            "  - name: portprobe-{}\n    comment: {}",
            i + 1,
            yaml_quote(&text::fit(&r.describe(), MAX_COMMENT))
        );
        if let Some((name, _)) = source_name(rules, r.destination) {
            let _ = writeln!(terms, "    source-address: {name}");
        }
        let _ = writeln!(
            terms,
            "    destination-address: {}\n    destination-port: PORTPROBE_{}\n    protocol: {}\n    action: accept",
            to_name(r.destination),
            i + 1,
            r.transport.as_str()
        );
    }

    let mut policy = header(rules);
    policy.push_str(
        "# A policy of its own, which aclgen compiles for each target below. Its\n\
         # nftables table accepts what it does not match, so it changes nothing by\n\
         # itself: an accept in one table does not override a drop in another. To\n\
         # unblock the ports, include the terms in the filter that blocks them.\n",
    );
    let lines = [
        "filters:".to_string(),
        "  - header:".to_string(),
        "      comment: 'portprobe rules'".to_string(),
        "      targets:".to_string(),
        format!("        nftables: mixed {} ACCEPT", hook.nft()),
        "        cisco: portprobe-allow mixed".to_string(),
        "        juniper: portprobe-allow mixed".to_string(),
        "        packetfilter: portprobe mixed".to_string(),
        "    terms:".to_string(),
        format!("      - include: {TERMS_INCLUDE}"),
    ];
    for line in lines {
        let _ = writeln!(policy, "{line}");
    }

    vec![
        File {
            path: DEFINITIONS,
            text: def,
        },
        File {
            path: TERMS,
            text: terms,
        },
        File {
            path: POLICY,
            text: policy,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Transport;
    use crate::rules::model::{Sources, Wanted, parse_source};

    #[test]
    fn definitions_terms_and_a_policy() {
        let w = |d: &str, t, port| Wanted {
            destination: d.parse().unwrap(),
            transport: t,
            port,
            what: "ARD: VNC".into(),
            found: None,
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
        let files = render(&Rules::new(wanted, sources, vec![]).unwrap(), Hook::Forward);
        let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
        assert_eq!(paths, [DEFINITIONS, TERMS, POLICY]);
        let body = |f: &File| -> String {
            f.text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        assert_eq!(
            body(&files[0]),
            "networks:\n  PORTPROBE_SOURCE_V4:\n    values:\n      - address: 198.18.0.0/24\n  PORTPROBE_TO_1:\n    values:\n      - address: 198.18.1.2/32\n  PORTPROBE_TO_2:\n    values:\n      - address: 2001:db8:1::2/128\nservices:\n  PORTPROBE_1:\n    - port: '5900'\n      protocol: tcp\n    - port: '49152-65535'\n      protocol: tcp\n  PORTPROBE_2:\n    - port: '3283'\n      protocol: udp\n"
        );
        assert_eq!(
            body(&files[1]),
            "terms:\n  - name: portprobe-1\n    comment: 'ARD: VNC, TCP 5900, 49152-65535 to 198.18.1.2'\n    source-address: PORTPROBE_SOURCE_V4\n    destination-address: PORTPROBE_TO_1\n    destination-port: PORTPROBE_1\n    protocol: tcp\n    action: accept\n  - name: portprobe-2\n    comment: 'ARD: VNC, UDP 3283 to 2001:db8:1::2'\n    destination-address: PORTPROBE_TO_2\n    destination-port: PORTPROBE_2\n    protocol: udp\n    action: accept\n"
        );
        assert!(
            files[2]
                .text
                .contains("        nftables: mixed forward ACCEPT\n")
        );
        assert!(
            files[2]
                .text
                .ends_with("      - include: includes/portprobe-terms.yaml\n")
        );
        assert_eq!(yaml_quote("it's"), "'it''s'");
        assert!(
            render(
                &Rules::new(vec![], Sources::default(), vec![]).unwrap(),
                Hook::Input
            )
            .is_empty()
        );
    }
}
