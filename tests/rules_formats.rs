//! `portprobe rules` as a whole program, on a fixed report (no network):
//! every format compared with reviewed output in `tests/snapshots/rules/`
//! (regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test rules_formats`
//! and review the diff), the points of each grammar checked on their own,
//! a service name written to break out of its quotes kept inside them,
//! and the refusals (one line, exit 3). The formats no test loads into a
//! real device (pf, Windows, Cisco IOS) follow pf.conf(5), Microsoft's
//! New-NetFirewallRule reference and Cisco's IOS IP access-list command
//! reference; nftables, iptables and aerleon are loaded in
//! `tests/rules_lab.rs`.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::snapshot;

const PORTPROBE: &str = env!("CARGO_BIN_EXE_portprobe");

/// A report on a server with two addresses: VNC dropped on both, Net
/// Assistant rejected by a router, four Xsan ports dropped, AFP open, and
/// a blocked port whose service name tries every way out of a comment.
const REPORT: &str = r#"{
  "target": {"host": "server.example", "addresses": ["192.0.2.10", "2001:db8::10"], "resolved_by": "system"},
  "products": ["Apple Remote Desktop"], "not_probed": [],
  "results": [
    {"address": "192.0.2.10", "protocol": "tcp", "port": 548, "service": "AFP", "products": ["File Sharing"],
     "state": "open", "reason": "syn-ack", "reason_from": null, "blocked": false, "located": null},
    {"address": "192.0.2.10", "protocol": "tcp", "port": 3283, "service": "Net Assistant (ARD)",
     "products": ["Apple Remote Desktop"], "state": "filtered", "reason": "admin-prohibited",
     "reason_from": "192.0.2.1", "blocked": true, "located": null},
    {"address": "192.0.2.10", "protocol": "tcp", "port": 5900, "service": "Screen Sharing (VNC)",
     "products": ["Apple Remote Desktop"], "state": "filtered", "reason": "no-response",
     "reason_from": null, "blocked": true, "located": null},
    {"address": "192.0.2.10", "protocol": "tcp", "port": 8080, "service": "x\" accept; # $(reboot) `id` */ \n exit",
     "products": [], "state": "filtered", "reason": "no-response",
     "reason_from": null, "blocked": true, "located": null},
    {"address": "192.0.2.10", "protocol": "tcp", "port": 49152, "service": "Xsan", "products": ["Xsan"],
     "state": "filtered", "reason": "no-response", "reason_from": null, "blocked": true, "located": null},
    {"address": "192.0.2.10", "protocol": "tcp", "port": 49153, "service": "Xsan", "products": ["Xsan"],
     "state": "filtered", "reason": "no-response", "reason_from": null, "blocked": true, "located": null},
    {"address": "192.0.2.10", "protocol": "tcp", "port": 49154, "service": "Xsan", "products": ["Xsan"],
     "state": "filtered", "reason": "no-response", "reason_from": null, "blocked": true, "located": null},
    {"address": "192.0.2.10", "protocol": "tcp", "port": 49155, "service": "Xsan", "products": ["Xsan"],
     "state": "filtered", "reason": "no-response", "reason_from": null, "blocked": true, "located": null},
    {"address": "192.0.2.10", "protocol": "udp", "port": 3283, "service": "Net Assistant (ARD)",
     "products": ["Apple Remote Desktop"], "state": "filtered", "reason": "admin-prohibited",
     "reason_from": "192.0.2.1", "blocked": true, "located": null},
    {"address": "2001:db8::10", "protocol": "tcp", "port": 5900, "service": "Screen Sharing (VNC)",
     "products": ["Apple Remote Desktop"], "state": "filtered", "reason": "no-response",
     "reason_from": null, "blocked": true, "located": null}
  ],
  "hosts": [{"address": "192.0.2.10", "verdict": "answering"}, {"address": "2001:db8::10", "verdict": "answering"}],
  "status": "CRITICAL", "exit_code": 2, "complete": true
}"#;

/// The clients' networks the snapshots are written for.
const SOURCES: [&str; 4] = [
    "--source",
    "198.51.100.0/24",
    "--source",
    "2001:db8:100::/48",
];

fn portprobe(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(PORTPROBE)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The rules for REPORT (from standard input) in `format`, with `extra`.
fn rules(format: &str, extra: &[&str]) -> String {
    let mut args = vec!["rules", "--from", "-", "--format", format];
    args.extend(SOURCES);
    args.extend(extra);
    let o = portprobe(&args, Some(REPORT));
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The lines of `text` that are not comments (`comment` starts them).
fn body<'a>(text: &'a str, comment: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with(comment))
        .collect()
}

#[test]
fn pf_rules_follow_pf_conf() {
    let text = rules("pf", &[]);
    snapshot("rules/pf.conf", &text);
    assert_eq!(
        body(&text, "#"),
        [
            "pass in quick inet proto tcp from 198.51.100.0/24 to 192.0.2.10 port 3283",
            "pass in quick inet proto tcp from 198.51.100.0/24 to 192.0.2.10 port 5900",
            "pass in quick inet proto tcp from 198.51.100.0/24 to 192.0.2.10 port 8080",
            "pass in quick inet proto tcp from 198.51.100.0/24 to 192.0.2.10 port 49152:49155",
            "pass in quick inet proto udp from 198.51.100.0/24 to 192.0.2.10 port 3283",
            "pass in quick inet6 proto tcp from 2001:db8:100::/48 to 2001:db8::10 port 5900",
        ]
    );
}

#[test]
fn windows_rules_follow_new_netfirewallrule() {
    let text = rules("windows", &[]);
    snapshot("rules/windows.ps1", &text);
    let commands = body(&text, "#");
    assert_eq!(commands.len(), 6);
    assert!(
        commands
            .iter()
            .all(|c| c.starts_with("New-NetFirewallRule -DisplayName '")
                && c.contains(" -Direction Inbound -Action Allow -Protocol "))
    );
    assert!(
        commands[3].contains(
            "-Protocol TCP -LocalAddress '192.0.2.10' -LocalPort \"49152-49155\" -RemoteAddress '198.51.100.0/24'"
        ),
        "{text}"
    );
    assert!(
        commands[5].contains("-LocalAddress '2001:db8::10'"),
        "{text}"
    );
    // Every single-quoted string closes where it should: an even number of
    // quotes, and nothing a shell would expand outside them.
    for c in &commands {
        assert_eq!(c.matches('\'').count() % 2, 0, "{c}");
    }
}

#[test]
fn cisco_rules_follow_the_ios_access_list_grammar() {
    let text = rules("cisco", &[]);
    snapshot("rules/cisco.txt", &text);
    let lines = body(&text, "!");
    assert_eq!(lines[0], "ip access-list extended PORTPROBE-ALLOW");
    let permits: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with(" permit "))
        .collect();
    assert_eq!(
        permits,
        [
            " permit tcp 198.51.100.0 0.0.0.255 host 192.0.2.10 eq 3283",
            " permit tcp 198.51.100.0 0.0.0.255 host 192.0.2.10 eq 5900",
            " permit tcp 198.51.100.0 0.0.0.255 host 192.0.2.10 eq 8080",
            " permit tcp 198.51.100.0 0.0.0.255 host 192.0.2.10 range 49152 49155",
            " permit udp 198.51.100.0 0.0.0.255 host 192.0.2.10 eq 3283",
            " permit tcp 2001:db8:100::/48 host 2001:db8::10 eq 5900",
        ]
    );
    assert!(lines.contains(&"ipv6 access-list PORTPROBE-ALLOW-V6"));
    for remark in lines.iter().filter(|l| l.starts_with(" remark ")) {
        assert!(remark.len() <= " remark ".len() + 100, "{remark}");
    }
    let named = rules("cisco", &["--chain", "OUTSIDE-IN"]);
    assert!(named.contains("\nip access-list extended OUTSIDE-IN\n"));
}

#[test]
fn nftables_iptables_and_aerleon_match_their_snapshots() {
    snapshot(
        "rules/nftables-insert.nft",
        &rules("nftables", &["--nft-chain", "inet filter forward"]),
    );
    snapshot(
        "rules/nftables-table.nft",
        &rules("nftables", &["--chain", "INPUT"]),
    );
    snapshot("rules/iptables.sh", &rules("iptables", &[]));
    let dir = tempfile::tempdir().unwrap();
    let said = rules("aerleon", &["-o", dir.path().to_str().unwrap()]);
    assert!(
        said.contains("- include: includes/portprobe-terms.yaml"),
        "{said}"
    );
    for (file, name) in [
        ("def/portprobe.yaml", "rules/aerleon-def.yaml"),
        (
            "policies/includes/portprobe-terms.yaml",
            "rules/aerleon-terms.yaml",
        ),
        ("policies/pol/portprobe.yaml", "rules/aerleon-policy.yaml"),
    ] {
        snapshot(
            name,
            &std::fs::read_to_string(dir.path().join(file)).unwrap(),
        );
    }
}

/// The hostile service name stays inside its quotes, comment or remark in
/// every format: no line of any output runs a command of its own.
#[test]
fn a_service_name_cannot_break_out_of_its_comment() {
    let shapes: [(&str, &[&str], &str, &[&str]); 5] = [
        (
            "nftables",
            &["--nft-chain", "inet filter forward"],
            "#",
            &["insert rule "],
        ),
        (
            "iptables",
            &[],
            "#",
            &["set -e", "iptables -I ", "ip6tables -I "],
        ),
        ("pf", &[], "#", &["pass in quick "]),
        ("windows", &[], "#", &["New-NetFirewallRule "]),
        (
            "cisco",
            &[],
            "!",
            &[
                "ip access-list ",
                "ipv6 access-list ",
                " remark ",
                " permit ",
            ],
        ),
    ];
    for (format, extra, comment, starts) in shapes {
        let text = rules(format, extra);
        for line in body(&text, comment) {
            assert!(
                starts.iter().any(|s| line.starts_with(s)),
                "{format}: {line:?}"
            );
            assert!(
                !line.contains("$(") && !line.contains('`') && !line.contains("*/"),
                "{format}: {line:?}"
            );
        }
    }
    let nft = rules("nftables", &["--nft-chain", "inet filter forward"]);
    let line = nft.lines().find(|l| l.contains("dport 8080")).unwrap();
    assert!(
        line.ends_with(" accept comment \"portprobe: x? accept? ? ?(reboot) ?id? ?/ exit\""),
        "{line}"
    );
}

/// Runs `portprobe ARGS`, expects exit 3 and one line on stderr, and
/// returns that line.
fn refused(args: &[&str]) -> String {
    let o = portprobe(args, None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}");
    err
}

#[test]
fn bad_reports_and_options_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let good = file("report.json", REPORT);
    let zero = file(
        "zero.json",
        &REPORT.replacen("\"port\": 548", "\"port\": 0", 1),
    );
    let e = refused(&["rules", "--from", &zero]);
    assert!(
        e.starts_with(&format!(
            "portprobe: report {zero} is not a portprobe JSON report as `portprobe HOST --json -o report.json` writes it: results[0].port: invalid value: integer `0`, expected a nonzero u16"
        )),
        "{e}"
    );
    let text = file(
        "report.txt",
        "CRITICAL: server.example: 1 of 6 required ports are blocked\n",
    );
    assert!(refused(&["rules", "--from", &text]).contains("expected value at line 1 column 1"));
    let missing = dir.path().join("missing.json");
    let e = refused(&["rules", "--from", missing.to_str().unwrap()]);
    assert!(e.contains("cannot read report"), "{e}");
    let e = refused(&["rules", "--from", dir.path().to_str().unwrap()]);
    assert!(
        e.contains("is a directory: give the JSON report a run wrote"),
        "{e}"
    );
    let e = refused(&["rules", "--from", "/dev/zero"]);
    assert!(e.contains("is larger than 268435456 bytes"), "{e}");

    for (args, says) in [
        (
            vec!["--format", "aerleon"],
            "--format aerleon writes three files",
        ),
        (
            vec!["--format", "pf", "--chain", "FORWARD"],
            "--chain has no meaning for --format pf",
        ),
        (
            vec!["--format", "iptables", "--nft-chain", "inet filter forward"],
            "--nft-chain is for --format nftables",
        ),
        (
            vec!["--chain", "LAN"],
            "`LAN` is not a hook for a chain of its own",
        ),
        (
            vec!["--format", "iptables", "--chain", "a;b"],
            "is not an iptables chain name",
        ),
        (
            vec!["--source", "198.51.100.0/24"],
            "covers IPv4 only, but a rule is for 2001:db8::10",
        ),
        (
            vec!["--source", "198.51.100.7/24"],
            "has host bits set: the network is 198.51.100.0/24",
        ),
        (
            vec!["--nft-chain", "bridge filter forward"],
            "not a family whose chains filter IP traffic",
        ),
        (
            vec!["--nft-chain", "ip filter forward"],
            "cannot hold a rule for 2001:db8::10",
        ),
        (vec!["--to", "192.0.2.10"], "cannot be used with"),
    ] {
        let mut all = vec!["rules", "--from", good.as_str()];
        all.extend(args.iter().copied());
        let e = refused(&all);
        assert!(e.contains(says), "{all:?}: {e}");
    }
    for (args, says) in [
        (vec!["rules", "-p", "ARD"], "--to <ADDR>"),
        (
            vec!["rules", "-p", "ARD", "--to", "224.0.0.1"],
            "is not one host's address",
        ),
        (
            vec!["rules", "-p", "ARD", "--to", "server.example"],
            "is not an IP address",
        ),
        (
            vec!["rules", "-p", "No Such Product", "--to", "192.0.2.10"],
            "No Such Product",
        ),
        (vec!["rules"], "required"),
    ] {
        let e = refused(&args);
        assert!(e.contains(says), "{args:?}: {e}");
    }
}

#[test]
fn a_report_with_nothing_blocked_gives_no_rules_and_says_so() {
    let open = REPORT.replace("\"blocked\": true", "\"blocked\": false");
    let o = portprobe(
        &["rules", "--from", "-", "--format", "iptables"],
        Some(&open),
    );
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        out,
        "#!/bin/sh\n# portprobe rules: allow exactly these ports\n# from a report on server.example (192.0.2.10, 2001:db8::10)\n# nothing to allow: no rules\n"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to allow"));
    let dir = tempfile::tempdir().unwrap();
    let o = portprobe(
        &[
            "rules",
            "--from",
            "-",
            "--format",
            "aerleon",
            "-o",
            dir.path().to_str().unwrap(),
        ],
        Some(&open),
    );
    assert!(o.status.success());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_product_gets_its_ports_without_probing() {
    let o = portprobe(
        &[
            "rules",
            "-p",
            "ARD",
            "--to",
            "192.0.2.10",
            "-6",
            "--to",
            "2001:db8::10",
            "--format",
            "pf",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let rules = body(&text, "#");
    assert!(
        rules
            .iter()
            .all(|r| r.contains(" inet6 ") && r.contains(" to 2001:db8::10 ")),
        "{text}"
    );
    assert!(
        rules.contains(&"pass in quick inet6 proto tcp from any to 2001:db8::10 port 5900"),
        "{text}"
    );
    assert!(
        text.contains("# for Apple Remote Desktop, without probing: every port, blocked or not\n")
    );
    assert!(
        text.contains("# Apple Remote Desktop: Screen Sharing (VNC), TCP 5900 to 2001:db8::10\n")
    );
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("ard.nft");
    let o = portprobe(
        &[
            "rules",
            "-p",
            "ARD",
            "--to",
            "192.0.2.10",
            "-o",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success() && o.stdout.is_empty());
    assert!(
        std::fs::read_to_string(Path::new(&path))
            .unwrap()
            .contains("tcp dport 5900 accept")
    );
}
