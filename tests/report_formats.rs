//! Every report format rendered from fixed results (no network) and compared
//! with reviewed output in `tests/snapshots/`. After a deliberate change,
//! regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test report_formats` and
//! review the diff. The Prometheus output is also checked by a parser of the
//! text exposition format. The Nagios plugin's exit codes are checked on
//! whole runs: on loopback, and through the lab's firewall for a blocked
//! port (root only).

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::time::Duration;

use portprobe::catalog::Catalog;
use portprobe::engine::Probe;
use portprobe::engine::{
    AddressNote, IcmpCode, Located, Note, PortResult, Reason, Resolved, ResolvedBy, Route,
    RunOutcome, State, Stop, Target, Unconfirmed,
};
use portprobe::port::{Transport, parse_port_list};
use portprobe::report::{self, Report, TextOptions};
use portprobe::wire::Reply;
use support::snapshot;

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

fn result(transport: Transport, port: u16, state: State, reason: Reason) -> PortResult {
    PortResult {
        rtt: Some(Duration::from_micros(420)),
        ..PortResult::new(
            SERVER,
            portprobe::catalog::probe_for(transport, port),
            port,
            state,
            reason,
        )
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

/// A target given as its address.
fn literal(address: IpAddr) -> Resolved {
    Resolved {
        targets: vec![Target::new(address)],
        by: ResolvedBy::Literal,
    }
}

/// The second router on the way, after ROUTER.
const FAR_ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 9, 1));

/// Where a port stops, after ROUTER (hop 1) and before FAR_ROUTER.
fn after_router(how: Stop) -> Option<Located> {
    Some(Located {
        after_hop: 1,
        after: Some(ROUTER),
        before_hop: 2,
        before: Some(FAR_ROUTER),
        how,
        age: Duration::ZERO,
    })
}

/// Apple Remote Desktop and File Sharing on one server: some ports open, one
/// closed, one dropped, one rejected by a router, UDP replies and silence;
/// the blocked ports located on a path of two routers.
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
            located: after_router(Stop::Rejected(Reason::AdminProhibited)),
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
        PortResult {
            located: after_router(Stop::Dropped),
            ..silent(Transport::Tcp, 5900)
        },
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
            route: Some(Route {
                hops: vec![Some(ROUTER), Some(FAR_ROUTER)],
                reached: true,
                control: Some((Probe::Tcp, 139)),
            }),
        }],
        duration: Duration::from_millis(4321),
        ignored: (Vec::new(), 0),
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

/// Mac OS X Server on one address, every service it includes probed: Mail's
/// SMTP port dropped on the way, Web Service's HTTPS rejected by a router,
/// nothing listening for QuickTime Streaming Server or Macintosh Manager,
/// File Sharing without SMB over NetBIOS, VPN and NetBoot with silent UDP
/// ports, everything else open.
fn server_report() -> Report {
    let c = Catalog::builtin();
    let server = c.find_product("Mac OS X Server").unwrap();
    let plan = c.plan(&[server], &[]);
    let results = plan
        .ports
        .iter()
        .map(|p| {
            let closed = |t: Transport, port: u16| {
                let reason = if t == Transport::Tcp {
                    Reason::ConnRefused
                } else {
                    Reason::PortUnreachable
                };
                PortResult {
                    reason_from: (t == Transport::Udp).then_some(SERVER),
                    ..result(t, port, State::Closed, reason)
                }
            };
            match (p.transport, p.port) {
                (Transport::Tcp, 25) => silent(Transport::Tcp, 25),
                (Transport::Tcp, 443) => PortResult {
                    reason_from: Some(ROUTER),
                    ..result(
                        Transport::Tcp,
                        443,
                        State::Filtered,
                        Reason::AdminProhibited,
                    )
                },
                (t, 554 | 1220 | 7070 | 2236) | (t @ Transport::Tcp, 139) => closed(t, p.port),
                (Transport::Udp, port @ (500 | 1701 | 4500 | 68)) => silent(Transport::Udp, port),
                (Transport::Tcp, port) => result(Transport::Tcp, port, State::Open, Reason::SynAck),
                (Transport::Udp, port) => {
                    result(Transport::Udp, port, State::Open, Reason::UdpResponse)
                }
            }
        })
        .collect();
    let outcome = RunOutcome {
        results,
        unprobed: 0,
        interrupted: false,
        out_of_time: false,
        addresses: Vec::new(),
        duration: Duration::from_millis(1234),
        ignored: (Vec::new(), 0),
    };
    Report::new(
        vec![("server.local".to_string(), Ok(literal(SERVER)))],
        vec![server.name.clone()],
        &plan,
        outcome,
    )
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

/// The time each format states is the whole wait, until the report was
/// ready; text and JSON state the probing apart.
#[test]
fn every_format_states_the_whole_wait() {
    let mut r = report(false);
    r.ready_after(Duration::from_millis(4400));
    let text = report::text::render(&r, PLAIN);
    assert!(
        text.ends_with("\nprobed in 4.32 s, report ready after 4.40 s\n"),
        "{text}"
    );
    let doc: serde_json::Value = serde_json::from_str(&report::json::render(&r)).unwrap();
    assert_eq!(
        (doc["duration_ms"].as_f64(), doc["probing_ms"].as_f64()),
        (Some(4400.0), Some(4321.0))
    );
    assert!(report::nagios::render(&r).contains(" time=4.400s;;;0"));
    assert!(
        report::prometheus::render(&r)
            .contains("\nportprobe_probe_duration_seconds{target=\"server.local\"} 4.4\n")
    );
}

#[test]
fn nagios() {
    let line = report::nagios::render(&report(false));
    assert!(
        line.starts_with(
            "PORTPROBE CRITICAL - 3 of 12 ports blocked (Apple Remote Desktop, File Sharing): tcp/445, tcp/5900, udp/3283 | "
        ),
        "{line}"
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
    let sample = |name: &str, labels: &[(&str, &str)]| -> &prometheus_parse::Sample {
        let found: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0]
    };
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        match sample(name, labels).value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: unexpected {other:?}"),
        }
    };
    let port = |protocol, port| [("protocol", protocol), ("port", port)];
    assert_eq!(value("portprobe_port_blocked", &port("tcp", "445")), 1.0);
    assert_eq!(value("portprobe_port_blocked", &port("tcp", "548")), 0.0);
    // The gauge names the port and nothing that changes between probes.
    let blocked = sample("portprobe_port_blocked", &port("tcp", "5900"));
    let names: Vec<&str> = {
        let mut n: Vec<&str> = blocked.labels.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    };
    assert_eq!(
        names,
        [
            "address", "port", "product", "protocol", "service", "target"
        ]
    );
    assert_eq!(blocked.labels.get("product"), Some("Apple Remote Desktop"));
    // What changes is on the info series: who rejected 445, and where 5900
    // is dropped (after the router at hop 1, before the next).
    let info = |protocol, p| &sample("portprobe_port_info", &port(protocol, p)).labels;
    let rejected = info("tcp", "445");
    assert_eq!(
        [
            rejected.get("state"),
            rejected.get("reason"),
            rejected.get("reason_from"),
            rejected.get("located_how"),
            rejected.get("located_after_hop"),
            rejected.get("located_after"),
        ],
        [
            Some("filtered"),
            Some("admin-prohibited"),
            Some("198.18.0.1"),
            Some("rejected"),
            Some("1"),
            Some("198.18.0.1"),
        ]
    );
    let dropped = info("tcp", "5900");
    assert_eq!(
        [
            dropped.get("reason"),
            dropped.get("reason_from"),
            dropped.get("located_how"),
            dropped.get("located_after_hop"),
            dropped.get("located_after"),
            dropped.get("located_before"),
        ],
        [
            Some("no-response"),
            None,
            Some("dropped"),
            Some("1"),
            Some("198.18.0.1"),
            Some("198.18.9.1"),
        ]
    );
    assert_eq!(info("udp", "138").get("state"), Some("open|filtered"));
    assert_eq!(info("tcp", "548").get("located_how"), None);
    assert_eq!(value("portprobe_port_info", &port("tcp", "548")), 1.0);
    assert_eq!(value("portprobe_ports", &[("state", "filtered")]), 3.0);
    let target = [("target", "server.local")];
    assert_eq!(value("portprobe_probe_success", &target), 0.0);
    assert_eq!(value("portprobe_probe_duration_seconds", &target), 4.321);
    assert_eq!(value("portprobe_status", &target), 2.0);
    // One series of each per port; every series names its target; no label
    // is written empty.
    for metric in ["portprobe_port_blocked", "portprobe_port_info"] {
        let series = scrape.samples.iter().filter(|s| s.metric == metric).count();
        assert_eq!(series, 12, "{metric}");
    }
    for s in &scrape.samples {
        assert_eq!(s.labels.get("target"), Some("server.local"), "{s:?}");
        assert!(s.labels.values().all(|v| !v.is_empty()), "{s:?}");
    }
    // The exporter's answer: blackbox_exporter's two names instead.
    let exporter = report::prometheus::render_with(
        &report(false),
        report::prometheus::Options {
            probe_metrics: true,
            ..Default::default()
        },
    );
    assert!(exporter.contains("\nprobe_success{target=\"server.local\"} 0\n"));
    assert!(exporter.contains("\nprobe_duration_seconds{target=\"server.local\"} 4.321\n"));
    assert!(!exporter.contains("portprobe_probe_"));
    if support::require_programs("prometheus_parses_and_matches (promtool)", &["promtool"]) {
        for exposition in [&text, &exporter] {
            lint(exposition);
        }
    }
}

/// `promtool check metrics` finds nothing to say about `exposition`.
fn lint(exposition: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn whole_server_text_answers_per_service() {
    let text = report::text::render(&server_report(), PLAIN);
    assert!(text.contains(
        "\nnot probed: UDP 6970-9999 (QuickTime Streaming Server RTP media) and TCP 49152-65535 (Xsan file system): add -p \"QuickTime Streaming Server\" or -p Xsan to include them\n"
    ), "{text}");
    let services: Vec<(&str, &str)> = text
        .lines()
        .skip_while(|l| *l != "SERVICES")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (name, verdict) = l.trim().split_once("  ").unwrap();
            (name, verdict.trim())
        })
        .collect();
    // Blocked services first, then those with closed or silent ports, then
    // the reachable ones; in the plan's order within each. The server's own
    // line covers only the ports it needs itself.
    let expected = [
        ("Mail", "blocked: TCP 25 dropped (no response)"),
        (
            "Web Service",
            "blocked: TCP 443 rejected by 198.18.0.1 (administratively prohibited)",
        ),
        ("VPN", "reachable, 3 UDP ports unconfirmed"),
        (
            "File Sharing",
            "partly reachable: nothing listening on TCP 139",
        ),
        ("NetBoot", "reachable, 1 UDP port unconfirmed"),
        (
            "QuickTime Streaming Server",
            "nothing listening: TCP 554, TCP 1220, TCP 7070, and 2 more",
        ),
        ("Macintosh Manager", "nothing listening: TCP 2236"),
        ("Mac OS X Server (own ports)", "reachable"),
        ("Password Server", "reachable"),
    ];
    assert_eq!(services[..expected.len()], expected);
    assert_eq!(
        services.len(),
        19,
        "the server and the 18 products it includes"
    );
    assert!(
        text.contains(
            "\nCRITICAL: server.local: 2 of 2055 required ports are blocked (Mail, Web Service): TCP 25 (SMTP), TCP 443 (HTTPS)\n"
        ),
        "{text}"
    );
    snapshot("server-text.txt", &text);
}

#[test]
fn whole_server_json_names_products_and_ranges_left_out() {
    let text = report::json::render(&server_report());
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["products"], serde_json::json!(["Mac OS X Server"]));
    let find = |protocol: &str, port: u64| {
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["protocol"] == protocol && r["port"] == port)
            .unwrap_or_else(|| panic!("no {protocol}/{port}"))
            .clone()
    };
    // Each result names the most specific products that need the port.
    assert_eq!(find("tcp", 25)["products"], serde_json::json!(["Mail"]));
    assert_eq!(
        find("tcp", 80)["products"],
        serde_json::json!(["Web Service", "NetBoot", "Software Update"])
    );
    assert_eq!(
        find("udp", 626)["products"],
        serde_json::json!(["Mac OS X Server", "Xsan"])
    );
    let results = doc["results"].as_array().unwrap();
    assert!(!results.iter().any(|r| {
        let port = r["port"].as_u64().unwrap();
        (r["protocol"] == "tcp" && port >= 49152)
            || (r["protocol"] == "udp" && (6970..=9999).contains(&port) && port != 7070)
    }));
    // by_product: one object per service group, its ports counted from the
    // results that name it.
    let by_product = doc["by_product"].as_array().unwrap();
    assert_eq!(by_product.len(), 19);
    for g in by_product {
        let named = results
            .iter()
            .filter(|r| {
                r["products"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| *p == g["product"])
            })
            .count();
        assert_eq!(g["ports"].as_u64(), Some(named as u64), "{g}");
    }
    let mail = by_product.iter().find(|g| g["product"] == "Mail").unwrap();
    assert_eq!(
        mail,
        &serde_json::json!({"product": "Mail", "status": "CRITICAL", "ports": 8, "blocked": ["tcp/25"]})
    );
    // The review copy: what was left out, and the verdict per product.
    let part = serde_json::json!({
        "not_probed": doc["not_probed"],
        "by_product": doc["by_product"],
        "summary": doc["summary"],
        "status": doc["status"],
    });
    snapshot(
        "server-json-parts.json",
        &format!("{}\n", serde_json::to_string_pretty(&part).unwrap()),
    );
}

#[test]
fn whole_server_monitoring_formats_name_the_services() {
    let report = server_report();
    let line = report::nagios::render(&report);
    assert!(
        line.starts_with(
            "PORTPROBE CRITICAL - 2 of 2055 ports blocked (Mail, Web Service): tcp/25, tcp/443 | "
        ),
        "{line}"
    );
    assert_eq!(line.matches('|').count(), 1, "{line}");
    snapshot("server-nagios.txt", &line);

    let text = report::prometheus::render(&report);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid text exposition format");
    let status = |product: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "portprobe_product_status" && s.labels.get("product") == Some(product)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{other:?}"),
            })
    };
    assert_eq!(status("Mail"), Some(2.0));
    assert_eq!(status("Web Service"), Some(2.0));
    assert_eq!(status("VPN"), Some(1.0));
    assert_eq!(status("Xgrid"), Some(0.0));
    assert_eq!(status("Application Server"), None);
}

/// A user's catalog whose product names carry a terminal escape, a
/// right-to-left override and the Nagios perfdata separator.
const HOSTILE: &str = r#"
[[entry]]
id = "smtp"
row = 1
label = "SMTP"
table_port = "25"
ports = ["25"]
table_protocol = "TCP"

[[entry]]
id = "web"
row = 2
label = "Web"
table_port = "80"
ports = ["80"]
table_protocol = "TCP"

[[entry]]
id = "bulk"
row = 3
label = "Bulk"
table_port = "9000-9009"
ports = ["9000-9009"]
table_protocol = "UDP"

[[product]]
name = "Mail|x=1\u001b[2J"
needs = [{ entry = "smtp" }]

[[product]]
name = "Web \u202eevil"
needs = [{ entry = "web" }, { entry = "bulk" }]

[[product]]
name = "Suite"
includes = ["Mail|x=1\u001b[2J", "Web \u202eevil"]
leaves_out = [{ entry = "bulk", product = "Web \u202eevil", why = "bulk data\u001b[31m" }]
"#;

const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 9));

/// The hostile catalog's suite on two targets: SMTP dropped on the first,
/// everything open on the second.
fn hostile_report() -> Report {
    let c = Catalog::parse(HOSTILE, "site.toml").unwrap();
    let suite = c.find_product("Suite").unwrap();
    let plan = c.plan(&[suite], &[]);
    let open = |address: IpAddr, port: u16| PortResult {
        address,
        ..result(Transport::Tcp, port, State::Open, Reason::SynAck)
    };
    let outcome = RunOutcome {
        results: vec![
            silent(Transport::Tcp, 25),
            open(SERVER, 80),
            open(OTHER, 25),
            open(OTHER, 80),
        ],
        unprobed: 0,
        interrupted: false,
        out_of_time: false,
        addresses: Vec::new(),
        duration: Duration::from_millis(10),
        ignored: (Vec::new(), 0),
    };
    Report::new(
        vec![
            ("one".to_string(), Ok(literal(SERVER))),
            ("two".to_string(), Ok(literal(OTHER))),
        ],
        vec![suite.name.clone()],
        &plan,
        outcome,
    )
}

#[test]
fn hostile_product_names_keep_every_format_intact() {
    let report = hostile_report();
    let text = report::text::render(&report, PLAIN);
    let nagios = report::nagios::render(&report);
    let prometheus = report::prometheus::render(&report);
    let json = report::json::render(&report);
    for (format, out) in [
        ("text", &text),
        ("nagios", &nagios),
        ("prometheus", &prometheus),
        ("json", &json),
    ] {
        for raw in ['\u{1b}', '\u{202e}'] {
            assert!(!out.contains(raw), "{format}: {raw:?} in {out}");
        }
    }
    assert!(
        text.contains("\nnot probed: UDP 9000-9009 (bulk data\\x1b[31m): add -p \"Web \\u{202e}evil\" to include them\n"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("  Mail|x=1\\x1b[2J ")
            && l.ends_with(" blocked: TCP 25 dropped (no response)")),
        "{text}"
    );
    assert_eq!(nagios.matches('|').count(), 1, "{nagios}");
    assert!(
        nagios.starts_with(
            "PORTPROBE CRITICAL - 2 targets, 1 of 4 ports blocked (Mail\u{a6}x=1\\x1b[2J): one tcp/25 | "
        ),
        "{nagios}"
    );
    let lines = prometheus.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("valid text exposition format");
    // The parser above splits label values at `=`, so the values are
    // checked as the text format writes them.
    for (target, status) in [("one", 2), ("two", 0)] {
        let line = format!(
            "portprobe_product_status{{target=\"{target}\",product=\"Mail|x=1\\\\x1b[2J\"}} {status}\n"
        );
        assert!(prometheus.contains(&line), "{line} in {prometheus}");
    }
    assert!(
        prometheus.contains(
            "portprobe_product_status{target=\"one\",product=\"Web \\\\u{202e}evil\"} 0\n"
        )
    );

    // Several targets: the ranges left out once at the top, a verdict per
    // product in each target's object; the names as the catalog spells them.
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["not_probed"][0]["product"], "Web \u{202e}evil");
    assert_eq!(doc["not_probed"][0]["why"], "bulk data\u{1b}[31m");
    assert_eq!(doc["targets"][0]["not_probed"], doc["not_probed"]);
    assert_eq!(
        doc["targets"][0]["by_product"],
        serde_json::json!([
            {"product": "Mail|x=1\u{1b}[2J", "status": "CRITICAL", "ports": 1, "blocked": ["tcp/25"]},
            {"product": "Web \u{202e}evil", "status": "OK", "ports": 1, "blocked": []},
        ])
    );
    assert_eq!(doc["targets"][1]["by_product"][0]["status"], "OK");
    assert!(doc.get("by_product").is_none());
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

/// Every TCP port of the server as the lab's router leaves it: TCP 5900 and
/// 49152-65535 dropped, 311 and 625 rejected by the router, five open, the
/// rest closed.
fn whole_range_report() -> Report {
    let plan = Catalog::builtin().plan(&[], &parse_port_list("1-65535").unwrap());
    let results = plan
        .ports
        .iter()
        .map(|p| match p.port {
            5900 | 49152.. => silent(Transport::Tcp, p.port),
            311 | 625 => PortResult {
                reason_from: Some(ROUTER),
                ..result(
                    Transport::Tcp,
                    p.port,
                    State::Filtered,
                    Reason::AdminProhibited,
                )
            },
            22 | 80 | 443 | 548 | 631 => {
                result(Transport::Tcp, p.port, State::Open, Reason::SynAck)
            }
            port => result(Transport::Tcp, port, State::Closed, Reason::ConnRefused),
        })
        .collect();
    let outcome = RunOutcome {
        results,
        unprobed: 0,
        interrupted: false,
        out_of_time: false,
        addresses: Vec::new(),
        duration: Duration::from_millis(1090),
        ignored: (Vec::new(), 0),
    };
    Report::new(
        vec![(SERVER.to_string(), Ok(literal(SERVER)))],
        Vec::new(),
        &plan,
        outcome,
    )
}

/// A report of all 65 535 TCP ports renders in every format in time linear
/// in its results. The bound on the renders is generous (a debug build on a
/// busy two-core machine takes a few seconds), where renderers that judge
/// the host once per row take minutes.
#[test]
fn every_format_renders_a_whole_port_range() {
    let r = whole_range_report();
    let started = std::time::Instant::now();
    let verbose = TextOptions {
        verbose: true,
        ..PLAIN
    };
    let (text, verbose) = (
        report::text::render(&r, PLAIN),
        report::text::render(&r, verbose),
    );
    let (json, line, exposition) = (
        report::json::render(&r),
        report::nagios::render(&r),
        report::prometheus::render(&r),
    );
    let took = started.elapsed();
    eprintln!("65 535 results rendered in every format in {took:.2?}");
    assert!(
        took < Duration::from_secs(30),
        "rendering 65 535 results in every format took {took:.1?}"
    );

    let tail = &text[text.len().saturating_sub(2000)..];
    assert!(
        tail.contains(
            "\nCRITICAL: 198.18.1.2: 16387 of 65535 required ports are blocked: TCP 311 (Server Admin (servermgrd)), TCP 625 "
        ),
        "{tail}"
    );
    // Advice for the first five runs of blocked ports, the dropped ones
    // included: the host answers; then the rules for them, the ports
    // spelled out as ranges.
    let advice: Vec<&str> = tail.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(advice.len(), 6, "{tail}");
    assert!(
        advice[5].starts_with(
            "  - portprobe rules --to 198.18.1.2 --ports 311,625,5900,49152-65535 writes the firewall rules"
        ),
        "{tail}"
    );
    assert!(
        advice[2].starts_with("  - TCP 5900 (Screen Sharing (VNC)) times out"),
        "{tail}"
    );
    assert!(verbose.lines().count() > 65535);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["results"].as_array().unwrap().len(), 65535);
    assert_eq!(doc["summary"]["blocked"], 16387);
    assert!(
        line.starts_with(
            "PORTPROBE CRITICAL - 16387 of 65535 ports blocked: tcp/311, tcp/625, tcp/5900, tcp/49152,"
        ),
        "{}",
        &line[..line.len().min(300)]
    );
    let scrape = prometheus_parse::Scrape::parse(exposition.lines().map(|l| Ok(l.to_string())))
        .expect("valid text exposition format");
    let blocked = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "portprobe_port_blocked")
        .filter(|s| matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0))
        .count();
    assert_eq!(blocked, 16387);
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

/// The text report states both how long probing took and when the report
/// was ready: for every TCP port through the lab's router, building the
/// report of 65 535 results takes a visible part of the wait, and the time
/// stated never exceeds the wait itself.
#[test]
fn the_report_says_when_it_was_ready() {
    let Some(lab) = support::lab_or_skip("the_report_says_when_it_was_ready") else {
        return;
    };
    let _open = lab.tcp_listeners(&[22, 548], false).unwrap();
    let server = lab.server_v4();
    lab.nft(&[
        &format!("ip daddr {server} tcp dport {{ 5900, 49152-65535 }} drop"),
        &format!(
            "ip daddr {server} tcp dport {{ 311, 625 }} reject with icmpx type admin-prohibited"
        ),
    ])
    .unwrap();
    let started = std::time::Instant::now();
    let o = lab
        .client_cmd_as_nobody(env!("CARGO_BIN_EXE_portprobe"))
        .unwrap()
        .arg(server.to_string())
        .args(["--ports", "1-65535", "--no-locate", "--timeout", "300ms"])
        .output()
        .unwrap();
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let last = text.lines().last().unwrap_or_default();
    let seconds: Vec<f64> = last
        .strip_prefix("probed in ")
        .and_then(|rest| rest.strip_suffix(" s"))
        .and_then(|rest| rest.split_once(" s, report ready after "))
        .map(|(p, t)| vec![p.parse().unwrap(), t.parse().unwrap()])
        .unwrap_or_else(|| panic!("the last line: {last}"));
    let (probing, ready) = (seconds[0], seconds[1]);
    eprintln!("{last} (the test waited {waited:.2?})");
    assert!(ready > probing, "{last}");
    assert!(
        ready <= waited.as_secs_f64() + 0.005,
        "{last}, waited {waited:?}"
    );
    assert!(
        text.contains("16387 of 65535 required ports are blocked"),
        "{last}"
    );
}
