//! Every report format rendered from fixed results (no network) and compared
//! with reviewed output in `tests/snapshots/`. After a deliberate change,
//! regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test report_formats` and
//! review the diff. The Prometheus output is also checked by a parser of the
//! text exposition format. The Nagios plugin's exit codes are checked on
//! whole runs: on loopback, and through the lab's firewall for a blocked
//! port (root only).

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use portprobe::catalog::Catalog;
use portprobe::engine::{
    AddressNote, IcmpCode, Note, PortResult, Reason, Resolved, ResolvedBy, RunOutcome, State,
    Target, Unconfirmed,
};
use portprobe::port::{Probe, Transport, parse_port_list};
use portprobe::report::{self, Report, TextOptions};
use portprobe::wire::Reply;

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

fn result(transport: Transport, port: u16, state: State, reason: Reason) -> PortResult {
    PortResult {
        address: SERVER,
        transport,
        port,
        udp_probe: Probe::for_port(transport, port).udp(),
        state,
        reason,
        reason_from: None,
        rtt: Some(Duration::from_micros(420)),
        attempts: 1,
        reply: None,
        reply_from: None,
        note: None,
        located: None,
    }
}

fn silent(transport: Transport, port: u16) -> PortResult {
    let state = if transport == Transport::Tcp {
        State::Filtered
    } else {
        State::OpenFiltered
    };
    PortResult {
        rtt: None,
        attempts: 2,
        ..result(transport, port, state, Reason::NoResponse)
    }
}

/// Apple Remote Desktop and File Sharing on one server: some ports open, one
/// closed, one dropped, one rejected by a router, UDP replies and silence.
fn report(interrupted: bool) -> Report {
    let c = Catalog::builtin();
    let products = vec![
        c.find_product("ARD").unwrap(),
        c.find_product("File Sharing").unwrap(),
    ];
    let plan = c.plan(&products, &parse_port_list("53/udp").unwrap());
    let mut results = vec![
        result(Transport::Tcp, 139, State::Closed, Reason::ConnRefused),
        PortResult {
            reason_from: Some(ROUTER),
            ..result(
                Transport::Tcp,
                445,
                State::Filtered,
                Reason::AdminProhibited,
            )
        },
        result(Transport::Tcp, 548, State::Open, Reason::SynAck),
        result(Transport::Tcp, 3283, State::Open, Reason::SynAck),
        result(Transport::Tcp, 5432, State::Closed, Reason::ConnRefused),
        silent(Transport::Tcp, 5900),
        result(Transport::Tcp, 5988, State::Open, Reason::SynAck),
        PortResult {
            reply: Some(Reply::new("dns", "DNS response, rcode REFUSED")),
            ..result(Transport::Udp, 53, State::Open, Reason::UdpResponse)
        },
        PortResult {
            reply: Some(Reply::new(
                "netbios-ns",
                "NetBIOS node status: PEERS<00>, PPLAB<00>",
            )),
            reply_from: Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3)),
                137,
            )),
            ..result(Transport::Udp, 137, State::Open, Reason::UdpResponse)
        },
        PortResult {
            note: Some(Note::Unconfirmed(Unconfirmed::OutOfTime)),
            ..silent(Transport::Udp, 138)
        },
        PortResult {
            reason_from: Some(SERVER),
            attempts: 4,
            ..result(Transport::Udp, 626, State::Closed, Reason::PortUnreachable)
        },
        PortResult {
            reason_from: Some(ROUTER),
            ..result(
                Transport::Udp,
                3283,
                State::Filtered,
                Reason::from_icmp(IcmpCode {
                    v6: false,
                    kind: 3,
                    code: 5,
                }),
            )
        },
    ];
    let unprobed = if interrupted {
        results.retain(|r| r.port != 5988 && r.port != 138);
        2
    } else {
        0
    };
    let outcome = RunOutcome {
        results,
        unprobed,
        interrupted,
        out_of_time: false,
        addresses: vec![AddressNote {
            address: SERVER,
            icmp_senders: vec![SERVER, ROUTER],
            icmp_rounds: 3,
            icmp_revealed: 1,
            icmp_unconfirmed: 1,
            icmp_unconfirmed_why: Some(Unconfirmed::OutOfTime),
            icmp_time: Duration::from_millis(3120),
            loss_seen: false,
            srtt: Some(Duration::from_micros(420)),
            route: None,
        }],
        duration: Duration::from_millis(4321),
    };
    Report::new(
        vec![(
            "server.local".to_string(),
            Ok(Resolved {
                targets: vec![Target::new(SERVER)],
                by: ResolvedBy::Mdns {
                    interfaces: vec!["eth0".to_string()],
                },
            }),
        )],
        products.iter().map(|p| p.name.clone()).collect(),
        &plan,
        outcome,
    )
}

/// Compares with (or, with UPDATE_SNAPSHOTS=1, rewrites) a reviewed snapshot.
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its snapshot.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

const PLAIN: TextOptions = TextOptions {
    color: false,
    verbose: false,
    quiet: false,
};

#[test]
fn text() {
    snapshot("text.txt", &report::text::render(&report(false), PLAIN));
}

#[test]
fn text_in_colour() {
    let text = report::text::render(
        &report(false),
        TextOptions {
            color: true,
            ..PLAIN
        },
    );
    assert!(text.contains("\x1b[1;31mBLOCKED\x1b[0m"));
    snapshot("text-colour.txt", &text);
}

#[test]
fn text_quiet_and_verbose() {
    let quiet = report::text::render(
        &report(false),
        TextOptions {
            quiet: true,
            ..PLAIN
        },
    );
    assert_eq!(quiet.lines().count(), 1);
    snapshot("text-quiet.txt", &quiet);
    snapshot(
        "text-verbose.txt",
        &report::text::render(
            &report(false),
            TextOptions {
                verbose: true,
                ..PLAIN
            },
        ),
    );
}

#[test]
fn text_interrupted() {
    let text = report::text::render(&report(true), PLAIN);
    assert!(text.contains("INCOMPLETE: interrupted; 2 ports were never probed"));
    snapshot("text-interrupted.txt", &text);
}

#[test]
fn json() {
    let text = report::json::render(&report(false));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["status"], "CRITICAL");
    assert_eq!(doc["summary"]["blocked"], 3);
    snapshot("report.json", &format!("{text}\n"));
    let partial: serde_json::Value =
        serde_json::from_str(&report::json::render(&report(true))).unwrap();
    assert_eq!(
        (partial["complete"].as_bool(), partial["exit_code"].as_u64()),
        (Some(false), Some(3))
    );
}

#[test]
fn nagios() {
    let line = report::nagios::render(&report(false));
    assert!(
        line.starts_with(
            "PORTPROBE CRITICAL - 3 of 12 ports blocked: tcp/445, tcp/5900, udp/3283 | "
        )
    );
    snapshot("nagios.txt", &line);
    snapshot(
        "nagios-interrupted.txt",
        &report::nagios::render(&report(true)),
    );
}

#[test]
fn prometheus_parses_and_matches() {
    let text = report::prometheus::render(&report(false));
    snapshot("prometheus.txt", &text);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid text exposition format");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: unexpected {other:?}"),
        }
    };
    assert_eq!(
        value(
            "portprobe_port_blocked",
            &[("protocol", "tcp"), ("port", "445")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "portprobe_port_blocked",
            &[("protocol", "tcp"), ("port", "548")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "portprobe_port_state",
            &[("port", "138"), ("state", "open|filtered")]
        ),
        1.0
    );
    assert_eq!(value("portprobe_ports", &[("state", "filtered")]), 3.0);
    assert_eq!(
        value("portprobe_probe_success", &[("target", "server.local")]),
        0.0
    );
    assert_eq!(value("portprobe_probe_duration_seconds", &[]), 4.321);
    assert_eq!(value("portprobe_status", &[]), 2.0);
    let series = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "portprobe_port_state")
        .count();
    assert_eq!(series, 12);
}

#[test]
fn watch_changes() {
    let before = report(false);
    let mut after = report(false);
    let t = &mut after.targets[0];
    for row in &mut t.rows {
        if row.result.port == 548 {
            row.result.state = State::Filtered;
            row.result.reason = Reason::NoResponse;
            row.result.rtt = None;
        }
        if row.result.port == 445 {
            row.result.state = State::Open;
            row.result.reason = Reason::SynAck;
            row.result.reason_from = None;
        }
    }
    let lines = report::changes::render(&before, &after, "12:03:10");
    assert_eq!(
        lines,
        "12:03:10 tcp/445 filtered -> open (syn-ack)\n12:03:10 tcp/548 open -> filtered (no-response)\n"
    );
    assert_eq!(report::changes::render(&before, &before, "12:03:10"), "");
}

/// A `--format nagios` run: one line starting `PORTPROBE WORD - `, and the
/// plugin exit code that goes with WORD.
fn assert_plugin(o: &Output, word: &str, code: i32) -> String {
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(line.lines().count(), 1, "{line}{err}");
    assert!(
        line.starts_with(&format!("PORTPROBE {word} - ")),
        "{line}{err}"
    );
    assert_eq!(o.status.code(), Some(code), "{word}: {line}{err}");
    line
}

fn run_nagios(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(args)
        .args(["--format", "nagios"])
        .output()
        .expect("run portprobe")
}

#[test]
fn nagios_exit_codes_agree_with_the_status_word() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let open = listener.local_addr().unwrap().port().to_string();
    let closed = {
        let gone = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        gone.local_addr().unwrap().port().to_string()
    };
    assert_plugin(&run_nagios(&["127.0.0.1", "--ports", &open]), "OK", 0);
    let both = format!("{open},{closed}");
    assert_plugin(&run_nagios(&["127.0.0.1", "--ports", &both]), "WARNING", 1);
    // `@` cannot be in a host name: refused before any lookup is made.
    let line = assert_plugin(
        &run_nagios(&["127.0.0.1", "bad@host", "--ports", &open]),
        "UNKNOWN",
        3,
    );
    assert!(line.contains("bad@host: "), "{line}");
    // The only target is bad input: exit 3, one line on stderr, no report.
    let bad = run_nagios(&["bad@host", "--ports", &open]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(3), "{err}");
    assert!(bad.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("portprobe: "), "{err}");
}

#[test]
fn nagios_exit_code_is_critical_for_a_blocked_port() {
    let Some(lab) = support::lab_or_skip("nagios_exit_code_is_critical_for_a_blocked_port") else {
        return;
    };
    let _open = lab.tcp_listeners(&[548, 5900], false).unwrap();
    lab.nft(&["tcp dport 5900 drop"]).unwrap();
    let o = lab
        .client_cmd_as_nobody(env!("CARGO_BIN_EXE_portprobe"))
        .unwrap()
        .arg(lab.server_v4().to_string())
        .args([
            "--ports",
            "548,5900",
            "--timeout",
            "300ms",
            "--format",
            "nagios",
        ])
        .output()
        .unwrap();
    let line = assert_plugin(&o, "CRITICAL", 2);
    assert!(line.contains("1 of 2 ports blocked: tcp/5900"), "{line}");
}
