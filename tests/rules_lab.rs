//! `portprobe rules` proven on real firewalls: the lab's router blocks
//! ports (drops and rejects, IPv4 and IPv6), a probe through it writes
//! its JSON report, `portprobe rules --from` that report writes the rules,
//! they are loaded into the router as its operator would load them, and
//! the same probe finds nothing blocked. The router's filter is nftables
//! (the rules inserted into the chain that drops), iptables (the rules
//! inserted before the DROP), and a default-deny policy compiled by
//! aerleon's `aclgen` (portprobe's terms included in that policy). The
//! tests need root for the namespaces; without it each prints one line
//! saying it was skipped; under CI they must run.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::lab::{Lab, Listeners, Ns};

const PORTPROBE: &str = env!("CARGO_BIN_EXE_portprobe");

/// The ports every probe here asks for: SSH open, TELNET closed, the rest
/// blocked by the router in each test.
const PORTS: &str = "22,23,445,5900-5902,3283/udp";

/// The lab's chain, as `--nft-chain` names it.
const LAB_CHAIN: &str = "inet lab forward";

/// SSH listening on the server, IPv4 and IPv6.
fn ssh(lab: &Lab) -> Vec<Listeners> {
    vec![
        lab.tcp_listeners(&[22], false).unwrap(),
        lab.tcp_listeners(&[22], true).unwrap(),
    ]
}

/// Runs a probe of both server addresses from the client, as `nobody`.
fn probe(lab: &Lab, ports: &str, extra: &[&str]) -> Output {
    lab.client_cmd_as_nobody(PORTPROBE)
        .unwrap()
        .args([&lab.server_v4().to_string(), &lab.server_v6().to_string()])
        .args(["--ports", ports])
        .args(extra)
        .output()
        .unwrap()
}

/// The JSON report of a probe of `ports`, written to `dir/name`.
fn report(lab: &Lab, ports: &str, dir: &Path, name: &str) -> (Value, PathBuf) {
    let o = probe(lab, ports, &["--json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&o.stderr));
    });
    let path = dir.join(name);
    std::fs::write(&path, &o.stdout).unwrap();
    (doc, path)
}

/// Every blocked result of a report, as `ADDRESS PROTOCOL/PORT`, sorted.
fn blocked(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["results"].as_array().unwrap().iter())
        .filter(|r| r["blocked"] == true)
        .map(|r| {
            format!(
                "{} {}/{}",
                r["address"].as_str().unwrap(),
                r["protocol"].as_str().unwrap(),
                r["port"]
            )
        })
        .collect();
    out.sort();
    out
}

/// What the router of these tests blocks, on both addresses.
fn expected_blocked(lab: &Lab, ports: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = [lab.server_v4().to_string(), lab.server_v6().to_string()]
        .iter()
        .flat_map(|a| ports.iter().map(move |p| format!("{a} {p}")))
        .collect();
    out.sort();
    out
}

/// Runs `portprobe rules` with `args` (no network: it reads a file) and
/// returns what it wrote on stdout.
fn rules(args: &[&str]) -> String {
    let o = Command::new(PORTPROBE)
        .arg("rules")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "portprobe rules {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The lines of `text` that are no comments.
fn commands(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.is_empty())
        .collect()
}

/// Runs a shell script in the router, as root.
fn sh_in_router(lab: &Lab, script: &str) {
    use std::io::Write;
    let mut child = lab
        .cmd(Ns::Router, "sh")
        .arg("-s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sh in the router failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn router_cmd(lab: &Lab, program: &str, args: &[&str]) -> String {
    support::run(lab.cmd(Ns::Router, program).args(args)).unwrap()
}

/// The ports the lab's nftables router blocks: VNC dropped, SMB and Net
/// Assistant rejected, for both families.
const NFT_BLOCKS: &[&str] = &[
    "tcp dport 5900-5902 drop",
    "tcp dport 445 reject with icmpx type admin-prohibited",
    "udp dport 3283 reject with icmpx type admin-prohibited",
];

const BLOCKED: &[&str] = &["tcp/445", "tcp/5900", "tcp/5901", "tcp/5902", "udp/3283"];

#[test]
fn nftables_rules_inserted_into_the_dropping_chain_unblock_exactly_what_was_found() {
    let name = "nftables_rules_inserted_into_the_dropping_chain_unblock_exactly_what_was_found";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let _ssh = ssh(&lab);
    lab.nft(NFT_BLOCKS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (before, path) = report(&lab, PORTS, dir.path(), "report.json");
    assert_eq!(blocked(&before), expected_blocked(&lab, BLOCKED));
    let path = path.to_str().unwrap();

    // A table of its own loads, and, as its comment says, unblocks nothing
    // that the lab's chain drops.
    let table = rules(&["--from", path]);
    assert!(table.contains("# An accept here does not override a drop elsewhere"));
    lab.nft_script(&table).unwrap();
    let (still, _) = report(&lab, PORTS, dir.path(), "still.json");
    assert_eq!(blocked(&still), expected_blocked(&lab, BLOCKED));
    lab.nft_script("delete table inet portprobe\n").unwrap();

    // Inserted into the chain that drops, the rules unblock every port
    // found blocked, and are no wider: one rule per address, transport,
    // service and where found, naming exactly those ports (5901-5902 are
    // no service of the catalog's).
    let inserted = rules(&[
        "--from",
        path,
        "--format",
        "nftables",
        "--nft-chain",
        LAB_CHAIN,
    ]);
    let (v4, v6) = (lab.server_v4(), lab.server_v6());
    let mut lines = commands(&inserted);
    lines.sort();
    let mut want: Vec<String> = [("ip", v4.to_string()), ("ip6", v6.to_string())]
        .iter()
        .flat_map(|(ip, a)| {
            [
                format!("{ip} daddr {a} tcp dport 445 accept comment \"portprobe: SMB (Microsoft-DS)\""),
                format!(
                    "{ip} daddr {a} tcp dport 5900 accept comment \"portprobe: Screen Sharing (VNC)\""
                ),
                format!("{ip} daddr {a} tcp dport 5901-5902 accept comment \"portprobe: unlisted\""),
                format!(
                    "{ip} daddr {a} udp dport 3283 accept comment \"portprobe: Net Assistant (ARD)\""
                ),
            ]
        })
        .map(|r| format!("insert rule {LAB_CHAIN} {r}"))
        .collect();
    want.sort();
    assert_eq!(lines, want, "{inserted}");
    // Each rule says where its ports were found blocked: past the router.
    let said = inserted
        .lines()
        .find(|l| l.starts_with(&format!("# Screen Sharing (VNC), TCP 5900 to {v4} ")))
        .unwrap_or_else(|| panic!("{inserted}"));
    assert!(said.contains(&lab.router_v4().to_string()), "{said}");
    lab.nft_script(&inserted).unwrap();
    let (after, _) = report(&lab, PORTS, dir.path(), "after.json");
    assert_eq!(
        blocked(&after),
        Vec::<String>::new(),
        "{}",
        lab.nft_ruleset().unwrap()
    );

    // Nothing blocked: no rules, and it says so.
    let none = rules(&[
        "--from",
        dir.path().join("after.json").to_str().unwrap(),
        "--nft-chain",
        LAB_CHAIN,
    ]);
    assert!(commands(&none).is_empty(), "{none}");
    assert!(none.contains("# nothing to allow: no rules"), "{none}");
}

#[test]
fn the_text_reports_closing_command_writes_rules_that_unblock() {
    let name = "the_text_reports_closing_command_writes_rules_that_unblock";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let _ssh = ssh(&lab);
    lab.nft(NFT_BLOCKS).unwrap();
    let o = probe(&lab, PORTS, &["--color", "never"]);
    let text = String::from_utf8(o.stdout).unwrap();
    // The command as the report spells it, for each target's address and
    // exactly the ports blocked there.
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  - portprobe rules "))
        .filter_map(|l| l.split(" writes the firewall rules").next())
        .collect();
    assert_eq!(
        lines,
        [lab.server_v4().to_string(), lab.server_v6().to_string()]
            .map(|a| format!("--to {a} --ports 445,5900-5902,3283/udp")),
        "{text}"
    );
    for command in lines {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.extend(["--nft-chain", LAB_CHAIN]);
        let written = rules(&args);
        // From the catalog, each rule names the service.
        assert!(
            written.contains("comment \"portprobe: Screen Sharing (VNC)\""),
            "{written}"
        );
        lab.nft_script(&written).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (after, _) = report(&lab, PORTS, dir.path(), "after.json");
    assert_eq!(blocked(&after), Vec::<String>::new());
}

#[test]
fn iptables_rules_inserted_before_the_drop_unblock_exactly_what_was_found() {
    let name = "iptables_rules_inserted_before_the_drop_unblock_exactly_what_was_found";
    let Some(lab) = support::lab_or_skip_with(name, &["iptables", "ip6tables"]) else {
        return;
    };
    let _ssh = ssh(&lab);
    // The router's filter is iptables this time; the lab's own chain is
    // left empty.
    sh_in_router(
        &lab,
        "set -e\n\
         for t in iptables ip6tables; do\n\
           $t -A FORWARD -p tcp --dport 5900:5902 -j DROP\n\
         done\n\
         iptables -A FORWARD -p tcp --dport 445 -j REJECT --reject-with icmp-admin-prohibited\n\
         iptables -A FORWARD -p udp --dport 3283 -j REJECT --reject-with icmp-admin-prohibited\n\
         ip6tables -A FORWARD -p tcp --dport 445 -j REJECT --reject-with icmp6-adm-prohibited\n\
         ip6tables -A FORWARD -p udp --dport 3283 -j REJECT --reject-with icmp6-adm-prohibited\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (before, path) = report(&lab, PORTS, dir.path(), "report.json");
    assert_eq!(blocked(&before), expected_blocked(&lab, BLOCKED));

    let script = rules(&["--from", path.to_str().unwrap(), "--format", "iptables"]);
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    let lines = commands(&script);
    assert_eq!(lines.len(), 1 + 8, "{script}");
    assert!(lines.contains(&format!(
        "iptables -I FORWARD -p tcp -d {} --dport 5901:5902 -m comment --comment 'portprobe: unlisted' -j ACCEPT",
        lab.server_v4()
    ).as_str()), "{script}");
    sh_in_router(&lab, &script);
    // Inserted at the top, before the drops.
    let listed = router_cmd(&lab, "ip6tables", &["-S", "FORWARD"]);
    let accept = listed.find("-j ACCEPT").unwrap();
    let drop = listed.find("-j DROP").unwrap();
    assert!(accept < drop, "{listed}");

    let (after, _) = report(&lab, PORTS, dir.path(), "after.json");
    assert_eq!(blocked(&after), Vec::<String>::new(), "{listed}");
}

/// aerleon's `aclgen`: `$ACLGEN` (`.ci/run` installs aerleon from PyPI),
/// else `aclgen` on `PATH`.
fn aclgen() -> String {
    std::env::var("ACLGEN").unwrap_or_else(|_| "aclgen".into())
}

/// Compiles every policy under `dir/policies` with the definitions of
/// `dir/def` into `dir/out`, failing on any error aclgen reports.
fn compile(dir: &Path) {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new(aclgen())
        .arg(format!(
            "--base_directory={}",
            dir.join("policies").display()
        ))
        .arg(format!(
            "--definitions_directory={}",
            dir.join("def").display()
        ))
        .arg(format!("--output_directory={}", out.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "aclgen failed: {}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The network team's own policy: everything forwarded is denied but SSH
/// to the server, so that VNC is found blocked; with `include`, the terms
/// portprobe wrote too.
fn site_policy(include: bool) -> String {
    let mut s = String::from(
        "filters:\n\
         \x20 - header:\n\
         \x20     comment: 'the site'\n\
         \x20     targets:\n\
         \x20       nftables: mixed forward\n\
         \x20   terms:\n\
         \x20     - name: allow-ssh\n\
         \x20       destination-address: SERVER\n\
         \x20       destination-port: SSH\n\
         \x20       protocol: tcp\n\
         \x20       action: accept\n",
    );
    if include {
        s.push_str("      - include: includes/portprobe-terms.yaml\n");
    }
    s
}

#[test]
fn aerleon_compiles_the_terms_and_its_nftables_unblocks_what_was_found() {
    let name = "aerleon_compiles_the_terms_and_its_nftables_unblocks_what_was_found";
    let Some(lab) = support::lab_or_skip_with(name, &[&aclgen()]) else {
        return;
    };
    let _ssh = ssh(&lab);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["def", "policies/pol", "out"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("def/site.yaml"),
        format!(
            "networks:\n  SERVER:\n    values:\n      - address: {}/32\n      - address: {}/128\n\
             services:\n  SSH:\n    - port: 22\n      protocol: tcp\n",
            lab.server_v4(),
            lab.server_v6()
        ),
    )
    .unwrap();
    let site = root.join("policies/pol/site.yaml");
    std::fs::write(&site, site_policy(false)).unwrap();
    compile(root);
    let load = |lab: &Lab| {
        let compiled = std::fs::read_to_string(root.join("out/site.nft")).unwrap();
        lab.nft_script(&format!(
            "table inet filtering_policies\ndelete table inet filtering_policies\n{compiled}"
        ))
        .unwrap();
    };
    load(&lab);
    let ports = "22,5900-5902";
    let (before, path) = report(&lab, ports, root, "report.json");
    assert_eq!(
        blocked(&before),
        expected_blocked(&lab, &["tcp/5900", "tcp/5901", "tcp/5902"])
    );

    let said = rules(&[
        "--from",
        path.to_str().unwrap(),
        "--format",
        "aerleon",
        "-o",
        root.to_str().unwrap(),
    ]);
    assert!(
        said.contains("- include: includes/portprobe-terms.yaml"),
        "{said}"
    );
    // portprobe's own policy compiles for each of its targets, with the
    // site's; its nftables table accepts by default and so blocks nothing.
    compile(root);
    for out in [
        "portprobe.nft",
        "portprobe.acl",
        "portprobe.jcl",
        "portprobe.pf",
    ] {
        assert!(root.join("out").join(out).exists(), "{out}");
    }
    let own = std::fs::read_to_string(root.join("out/portprobe.nft")).unwrap();
    assert!(own.contains("policy accept;"), "{own}");
    assert!(
        own.contains(&format!(
            "ip daddr {}/32 tcp dport 5901-5902 ct state new accept",
            lab.server_v4()
        )),
        "{own}"
    );

    // What the network team does: include the terms in the filter that
    // blocks, compile, load.
    std::fs::write(&site, site_policy(true)).unwrap();
    compile(root);
    load(&lab);
    let (after, _) = report(&lab, ports, root, "after.json");
    assert_eq!(
        blocked(&after),
        Vec::<String>::new(),
        "{}",
        lab.nft_ruleset().unwrap()
    );
    // And no wider: a port the report did not find blocked stays blocked.
    let (other, _) = report(&lab, "5903", root, "other.json");
    assert_eq!(blocked(&other), expected_blocked(&lab, &["tcp/5903"]));
}
