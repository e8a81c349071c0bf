//! Regenerates the examples of portprobe's output that README.md and
//! docs/*.md show: each test builds the lab an example's text describes
//! (the one-router lab, or the chain of three routers), with the listeners
//! and nftables rules it names, runs portprobe as the example says (as
//! `nobody` where it says an ordinary user), and prints the command and
//! its output, to be pasted into the documentation as it is (keeping the
//! cuts the documentation marks). The tests assert only that each run
//! finished; they are ignored, as they regenerate text rather than check
//! behaviour. Run them as root, one at a time:
//!
//! ```text
//! CI=true cargo test --test examples -- --ignored --nocapture --test-threads=1
//! ```
//!
//! The Prometheus query API's answer and the alert's description in
//! docs/monitoring.md come from a real Prometheus in `tests/serve_lab.rs`
//! (`prometheus_scrapes_the_exporter_and_finds_where_ports_stop`, which
//! prints both with `--nocapture`).

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::chain::{Chain, Hook};
use support::lab::{Lab, Ns};
use support::peers::{MDNS_HOST, Peer, Peers};
use support::proc::KillOnDrop;
use support::responder::{Keys, Responder, listen_cmd};

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

/// Prints an example: its place in the documentation, the command line as
/// the documentation shows it, and what the run printed.
fn show(place: &str, prompt: &str, shown: &str, out: &Output) {
    println!("===== {place} =====");
    println!("{prompt} {shown}");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.is_empty() {
        println!("--- stderr ---");
        print!("{err}");
    }
    println!("--- exit code {:?} ---\n", out.status.code());
    assert!(
        out.status.code().is_some_and(|c| c < 3),
        "{place}: the run failed: {err}"
    );
}

/// Lets routers' ICMP error allowances (six at once, then one a second)
/// fill again, so that each run starts as a first run does.
fn refill() {
    std::thread::sleep(Duration::from_secs(7));
}

/// A directory `nobody` can write in, and run from.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// The JSON report laid out for reading: each field of the top level on a
/// line, each object of its arrays on a line of its own, and
/// `", "` and `": "` between items as the documentation writes them. Only
/// white space outside strings differs from what portprobe printed; the
/// order of the fields is kept.
fn lay_out(json: &str) -> String {
    let mut out = String::new();
    let mut depth: Vec<char> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = json.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' if chars.peek() == Some(&if c == '{' { '}' } else { ']' }) => {
                out.push(c);
                out.push(chars.next().unwrap());
            }
            '{' | '[' => {
                out.push(c);
                // 'B': an array of objects at the top level, one per line.
                match depth.as_slice() {
                    [] => out.push_str("\n  "),
                    ['{'] if c == '[' && chars.peek() == Some(&'{') => {
                        out.push_str("\n    ");
                        depth.push('B');
                        continue;
                    }
                    _ => {}
                }
                depth.push(c);
            }
            '}' | ']' => {
                match depth.as_slice() {
                    ['{'] => out.push('\n'),
                    ['{', 'B'] => out.push_str("\n  "),
                    _ => {}
                }
                depth.pop();
                out.push(c);
            }
            ',' => match depth.as_slice() {
                ['{'] => out.push_str(",\n  "),
                ['{', 'B'] => out.push_str(",\n    "),
                _ => out.push_str(", "),
            },
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// README.md, the first example: a Mac OS X Server behind three routers;
/// the second drops SMTP after routing, the third rejects HTTPS.
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn readme_mac_os_x_server_behind_three_routers() {
    if !support::require_lab("readme_mac_os_x_server_behind_three_routers") {
        return;
    }
    let chain = Chain::new(3).unwrap();
    // What such a server runs: mail (SMTP, submission, IMAP), the web,
    // Open Directory (Kerberos, LDAP, Password Server), Server Admin and
    // Workgroup Manager, file sharing, iChat, Xgrid, Podcast Capture.
    let _open = chain
        .tcp_listeners(
            &[
                25, 80, 88, 106, 139, 143, 311, 389, 443, 445, 548, 587, 625, 636, 993, 3659, 4111,
                5222, 5223, 5269, 8080, 8170, 8175, 16080,
            ],
            false,
        )
        .unwrap();
    chain
        .nft(2, Hook::Forward, &["tcp dport { 25, 587 } drop"])
        .unwrap();
    chain
        .nft(
            3,
            Hook::Forward,
            &["tcp dport 443 reject with icmpx type admin-prohibited"],
        )
        .unwrap();
    let server = chain.server(false).to_string();
    let out = chain
        .client_as_nobody(BIN)
        .unwrap()
        .args([server.as_str(), "--product", "Mac OS X Server"])
        .output()
        .unwrap();
    show(
        "README.md: the first example",
        "$",
        &format!("portprobe {server} --product \"Mac OS X Server\""),
        &out,
    );
}

/// docs/guide.md, Install and run: the machine itself, where nothing
/// listens (a namespace of its own, as an ordinary user).
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn guide_localhost_mac_os_x() {
    let Some(lab) = support::lab_or_skip("guide_localhost_mac_os_x") else {
        return;
    };
    let out = lab
        .client_cmd_as_nobody(BIN)
        .unwrap()
        .args(["localhost", "--product", "Mac OS X"])
        .output()
        .unwrap();
    show(
        "docs/guide.md: Install and run",
        "$",
        "portprobe localhost --product \"Mac OS X\"",
        &out,
    );
}

/// The one-router lab of docs/guide.md's "For people" example and of
/// docs/monitoring.md's samples: Apple Remote Desktop and File Sharing on
/// 198.18.1.2; the router drops TCP 5900 and UDP 3283 and rejects TCP 445.
fn ard_and_file_sharing_lab(name: &str) -> Option<(Lab, Vec<support::lab::Listeners>)> {
    let lab = support::lab_or_skip(name)?;
    let tcp = lab
        .tcp_listeners(&[139, 445, 548, 3283, 5900, 5988], false)
        .unwrap();
    let udp = lab.udp_sockets(&[3283], false).unwrap();
    lab.nft(&[
        "tcp dport 5900 drop",
        "udp dport 3283 drop",
        "tcp dport 445 reject with icmpx type admin-prohibited",
    ])
    .unwrap();
    Some((lab, vec![tcp, udp]))
}

/// docs/guide.md, For people: the terminal; docs/monitoring.md and
/// README.md, the Nagios line and the Prometheus sample, each from a run
/// of its own that starts with the router's ICMP allowance full.
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn guide_and_monitoring_ard_and_file_sharing() {
    let Some((lab, _held)) = ard_and_file_sharing_lab("guide_and_monitoring_ard_and_file_sharing")
    else {
        return;
    };
    for (place, args, shown) in [
        (
            "docs/guide.md: For people: the terminal",
            &[
                "198.18.1.2",
                "--product",
                "ARD",
                "--product",
                "File Sharing",
            ][..],
            "portprobe 198.18.1.2 --product ARD --product \"File Sharing\"",
        ),
        (
            "README.md and docs/monitoring.md: the Nagios line",
            &[
                "198.18.1.2",
                "--product",
                "ARD",
                "--product",
                "File Sharing",
                "--format",
                "nagios",
                "--max-time",
                "50s",
            ][..],
            "portprobe 198.18.1.2 --product ARD --product \"File Sharing\" --format nagios --max-time 50s",
        ),
        (
            "docs/monitoring.md: the Prometheus sample",
            &[
                "198.18.1.2",
                "-p",
                "ARD",
                "-p",
                "File Sharing",
                "--format",
                "prometheus",
            ][..],
            "portprobe 198.18.1.2 -p ARD -p \"File Sharing\" --format prometheus",
        ),
    ] {
        refill();
        let out = lab
            .client_cmd_as_nobody(BIN)
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        show(place, "$", shown, &out);
    }
}

/// docs/json.md: Apple Remote Desktop on 198.18.1.2; the router rejects
/// TCP 5900 and drops UDP 3283.
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn json_reference_sample() {
    let Some(lab) = support::lab_or_skip("json_reference_sample") else {
        return;
    };
    let _tcp = lab.tcp_listeners(&[3283, 5432, 5900, 5988], false).unwrap();
    let _udp = lab.udp_sockets(&[3283], false).unwrap();
    lab.nft(&[
        "tcp dport 5900 reject with icmpx type admin-prohibited",
        "udp dport 3283 drop",
    ])
    .unwrap();
    let out = lab
        .client_cmd_as_nobody(BIN)
        .unwrap()
        .args(["198.18.1.2", "--product", "ARD", "--json"])
        .output()
        .unwrap();
    show(
        "docs/json.md: the sample (as printed)",
        "$",
        "portprobe 198.18.1.2 --product ARD --json",
        &out,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let laid_out = lay_out(&text);
    let (a, b): (Value, Value) = (
        serde_json::from_str(&text).unwrap(),
        serde_json::from_str(&laid_out).unwrap(),
    );
    assert_eq!(a, b, "laying the report out changed it");
    println!("===== docs/json.md: the sample, laid out =====");
    print!("{laid_out}");
    println!();
}

/// docs/guide.md, From a report to a firewall rule: Apple Remote Desktop
/// on 198.18.1.2; the router drops VNC and rejects UDP 3283. The same run
/// saved as JSON, and the rules written from it.
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn guide_from_a_report_to_a_firewall_rule() {
    let Some(lab) = support::lab_or_skip("guide_from_a_report_to_a_firewall_rule") else {
        return;
    };
    let _tcp = lab.tcp_listeners(&[3283], false).unwrap();
    lab.nft(&[
        "tcp dport 5900 drop",
        "udp dport 3283 reject with icmpx type admin-prohibited",
    ])
    .unwrap();
    let dir = scratch();
    let out = lab
        .client_cmd_as_nobody(BIN)
        .unwrap()
        .current_dir(dir.path())
        .args(["198.18.1.2", "-p", "ARD"])
        .output()
        .unwrap();
    show(
        "docs/guide.md: From a report to a firewall rule",
        "$",
        "portprobe 198.18.1.2 -p ARD",
        &out,
    );
    refill();
    let out = lab
        .client_cmd_as_nobody(BIN)
        .unwrap()
        .current_dir(dir.path())
        .args(["198.18.1.2", "-p", "ARD", "--json", "-o", "report.json"])
        .output()
        .unwrap();
    show(
        "docs/guide.md: the same run as JSON",
        "$",
        "portprobe 198.18.1.2 -p ARD --json -o report.json",
        &out,
    );
    let rules = [
        "rules",
        "--from",
        "report.json",
        "--format",
        "nftables",
        "--nft-chain",
        "inet filter forward",
        "--source",
        "198.18.0.0/24",
    ];
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(rules)
        .output()
        .unwrap();
    show(
        "docs/guide.md: the rules from the report",
        "$",
        "portprobe rules --from report.json --format nftables --nft-chain \"inet filter forward\" --source 198.18.0.0/24",
        &out,
    );
}

/// docs/guide.md, Watching: File Sharing on 198.18.1.2 every 30 s, while
/// the router starts, then stops, dropping AFP.
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn guide_watching() {
    let Some(lab) = support::lab_or_skip("guide_watching") else {
        return;
    };
    let _tcp = lab.tcp_listeners(&[139, 445, 548], false).unwrap();
    let mut child = KillOnDrop::spawn(
        lab.client_cmd_as_nobody(BIN)
            .unwrap()
            .args(["198.18.1.2", "-p", "File Sharing", "--watch", "30s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    println!("===== docs/guide.md: Watching =====");
    println!("$ portprobe 198.18.1.2 -p \"File Sharing\" --watch 30s");
    // The first report ends with its timing line; then the rule changes.
    let wait_for = |done: &dyn Fn(&str) -> bool, limit: Duration| {
        let end = Instant::now() + limit;
        while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            println!("{line}");
            if done(&line) {
                return true;
            }
        }
        false
    };
    assert!(wait_for(
        &|l| l.starts_with("probed in"),
        Duration::from_secs(60)
    ));
    lab.nft(&["tcp dport 548 drop"]).unwrap();
    assert!(wait_for(
        &|l| l.contains("tcp/548"),
        Duration::from_secs(90)
    ));
    lab.nft_flush().unwrap();
    assert!(wait_for(
        &|l| l.contains("tcp/548"),
        Duration::from_secs(90)
    ));
    println!("--- stopped ---\n");
}

/// docs/guide.md, Testing a firewall before the service exists: the
/// responder in the server namespace (as root, then `nobody`; socat holds
/// TCP 554), a router that drops 8000-9999/udp and rejects TCP 7070, the
/// client as an ordinary user; and the responder's summary when stopped.
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn guide_responder() {
    let Some(lab) = support::lab_or_skip_with("guide_responder", &["socat"]) else {
        return;
    };
    let _socat = KillOnDrop::spawn(
        lab.server_cmd("socat")
            .args(["TCP-LISTEN:554,reuseaddr,fork", "EXEC:true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    wait_until_listening(&lab, 554);
    lab.nft(&[
        "udp dport 8000-9999 drop",
        "tcp dport 7070 reject with icmpx type admin-prohibited",
    ])
    .unwrap();
    let keys = Keys::new();
    let responder = Responder::start(
        listen_cmd(
            &lab,
            &keys,
            &[
                "--product",
                "QuickTime Streaming Server",
                "--user",
                "nobody",
            ],
        )
        .current_dir(keys.path("key").parent().unwrap()),
    );
    println!("===== docs/guide.md: the responder starts =====");
    println!(
        "server# portprobe listen --product \"QuickTime Streaming Server\" --secret-file key --user nobody"
    );
    print!("{}", responder.started);
    println!();
    // The client's own copy of the secret, private to it.
    let client_dir = scratch();
    let key = client_dir.path().join("key");
    std::fs::copy(keys.path("key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    nix::unistd::chown(&key, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let out = lab
        .client_cmd_as_nobody(BIN)
        .unwrap()
        .current_dir(client_dir.path())
        .args([
            "198.18.1.2",
            "--product",
            "QuickTime Streaming Server",
            "--responder",
            "--secret-file",
            "key",
        ])
        .output()
        .unwrap();
    show(
        "docs/guide.md: the client",
        "client$",
        "portprobe 198.18.1.2 --product \"QuickTime Streaming Server\" --responder --secret-file key",
        &out,
    );
    let (status, summary) = responder.stop();
    println!("===== docs/guide.md: the responder's summary =====");
    print!("{summary}");
    println!("--- exit {status} ---\n");
}

/// Waits until something listens on TCP `port` in the server namespace.
fn wait_until_listening(lab: &Lab, port: u16) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let bound =
            support::netns::bound_ports(lab.server_ns(), support::netns::Proto::Tcp).unwrap();
        if bound.contains(&port) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on TCP {port} in the server namespace");
}

/// docs/guide.md, `.local` names: `macserver.local` answered by avahi on
/// the server's link, resolved from the router (the other end of that
/// link), whose resolver knows no multicast DNS; and a name no device
/// answers.
#[test]
#[ignore = "regenerates documentation; run as root with --ignored --nocapture"]
fn guide_local_names() {
    let Some(lab) = support::lab_or_skip_with("guide_local_names", &["avahi-daemon"]) else {
        return;
    };
    let _peers = Peers::start(lab.server_ns(), lab.server_v4(), &[Peer::Mdns]).unwrap();
    let _etc = support::netns::EtcWithoutMdns::new(lab.router_ns());
    let host = format!("{MDNS_HOST}.local");
    let _v4 = lab.tcp_listeners(&[3283, 5900, 5988], false).unwrap();
    let _v6 = lab.tcp_listeners(&[3283, 5900, 5988], true).unwrap();
    for (name, place) in [
        (host.as_str(), "docs/guide.md: a .local name"),
        (
            "nosuch.local",
            "docs/guide.md: a .local name no device answers",
        ),
    ] {
        let out = lab
            .cmd_as_nobody(Ns::Router, BIN)
            .unwrap()
            .args([name, "--product", "ARD"])
            .output()
            .unwrap();
        println!("===== {place} =====");
        println!("$ portprobe {name} --product ARD");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        println!("--- exit code {:?} ---\n", out.status.code());
    }
}
