//! Windows Defender Firewall on the server: PowerShell `New-NetFirewallRule`
//! commands (module NetSecurity), one inbound Allow rule per rule, with
//! `-Protocol TCP|UDP`, the probed address as `-LocalAddress`, the ports as
//! `-LocalPort "5900","49152-65535"` and the clients as `-RemoteAddress`.
//! Names go in single-quoted strings, which PowerShell expands nothing in.

use std::fmt::Write as _;

use super::model::{Rule, Rules};

/// `s` as a PowerShell single-quoted string: each quote character doubled,
/// the typographic single quotes too (PowerShell reads them as quotes),
/// control characters dropped.
pub fn ps_quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars().filter(|c| !c.is_control()) {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn command(rules: &Rules, r: &Rule) -> String {
    let ports: Vec<String> = r.ports.iter().map(|p| format!("\"{p}\"")).collect();
    let remote = rules
        .sources
        .of(r.destination)
        .map_or_else(|| "Any".to_string(), |s| ps_quote(&s.to_string()));
    format!(
        "New-NetFirewallRule -DisplayName {} -Description {} -Direction Inbound -Action Allow -Protocol {} -LocalAddress {} -LocalPort {} -RemoteAddress {remote}",
        ps_quote(&r.label(200)),
        ps_quote(&r.describe()),
        r.transport.label(),
        ps_quote(&r.destination.to_string()),
        ports.join(",")
    )
}

/// The rules as a PowerShell script.
pub fn render(rules: &Rules) -> String {
    let mut out = String::new();
    for line in rules.header() {
        let _ = writeln!(out, "# {line}");
    }
    if rules.rules.is_empty() {
        return out;
    }
    out.push_str(
        "# Run in PowerShell as Administrator on the server: inbound rules for its own firewall.\n",
    );
    for r in &rules.rules {
        let _ = writeln!(out, "{}", command(rules, r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Transport;
    use crate::rules::model::{Sources, Wanted, parse_source};

    #[test]
    fn quotes_are_doubled_and_nothing_expands() {
        assert_eq!(ps_quote("it's $(x) `n"), "'it''s $(x) `n'");
        assert_eq!(ps_quote("a\u{2019}b\nc"), "'a\u{2019}\u{2019}bc'");
    }

    #[test]
    fn one_inbound_rule_per_rule() {
        let w = |d: &str, t, port| Wanted {
            destination: d.parse().unwrap(),
            transport: t,
            port,
            what: "ARD: VNC".into(),
            found: Some("is dropped".into()),
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
        let text = render(&Rules::new(wanted, sources, vec![]).unwrap());
        let commands: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            commands,
            [
                "New-NetFirewallRule -DisplayName 'portprobe: ARD: VNC' -Description 'ARD: VNC, TCP 5900, 49152-65535 to 198.18.1.2 is dropped' -Direction Inbound -Action Allow -Protocol TCP -LocalAddress '198.18.1.2' -LocalPort \"5900\",\"49152-65535\" -RemoteAddress '198.18.0.0/24'",
                "New-NetFirewallRule -DisplayName 'portprobe: ARD: VNC' -Description 'ARD: VNC, UDP 3283 to 2001:db8:1::2 is dropped' -Direction Inbound -Action Allow -Protocol UDP -LocalAddress '2001:db8:1::2' -LocalPort \"3283\" -RemoteAddress Any",
            ]
        );
    }
}
