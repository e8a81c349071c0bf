//! Whole-program probes of loopback addresses, which need no privileges:
//! TCP open and closed ports, UDP closed ports and a UDP responder, the JSON
//! schema, exit codes, a whole Mac OS X Server judged service by service,
//! and a full 65 535-port sweep under a 1024-descriptor limit with no false
//! opens from self-connects.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::Command;
use std::thread;

use serde_json::Value;

mod support;

use support::{json, portprobe};

fn result<'a>(doc: &'a Value, protocol: &str, port: u16) -> &'a Value {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["protocol"] == protocol && r["port"] == port)
        .unwrap_or_else(|| panic!("no result for {protocol}/{port}"))
}

/// A listening TCP port on 127.0.0.1 that accepts (and drops) connections.
fn tcp_listener() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in l.incoming() {
            drop(conn);
        }
    });
    port
}

fn free_udp_port() -> u16 {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_open_and_closed_on_loopback() {
    let open = tcp_listener();
    let (closed, _held) = support::closed_tcp_port();
    let spec = format!("{open},{closed}");
    let o = portprobe(&["127.0.0.1", "--ports", &spec, "--json"]);
    let doc = json(&o);
    let r = result(&doc, "tcp", open);
    assert_eq!(
        (r["state"].as_str(), r["reason"].as_str()),
        (Some("open"), Some("syn-ack"))
    );
    // A connect's time: something (microseconds on loopback), within the run.
    let rtt = r["rtt_ms"]
        .as_f64()
        .expect("an open port has its round trip");
    let run = doc["duration_ms"].as_f64().unwrap();
    assert!(rtt > 0.0 && rtt <= run, "rtt {rtt} ms of a {run} ms run");
    assert_eq!(r["blocked"], false);
    let r = result(&doc, "tcp", closed);
    assert_eq!(
        (r["state"].as_str(), r["reason"].as_str()),
        (Some("closed"), Some("conn-refused"))
    );
    assert_eq!(r["reason_from"], Value::Null);
    // Something closed: reachable, but a service is missing: WARNING.
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(doc["status"], "WARNING");
    assert_eq!(doc["summary"]["closed"], 1);
    assert_eq!(doc["summary"]["blocked"], 0);
}

#[test]
fn all_open_is_ok() {
    let open = tcp_listener();
    let o = portprobe(&["127.0.0.1", "--ports", &open.to_string(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let doc = json(&o);
    assert_eq!(doc["status"], "OK");
    assert_eq!(doc["target"]["addresses"], serde_json::json!(["127.0.0.1"]));
}

/// The fields docs/json.md's reference table documents, as paths:
/// `target.host`, `results[].state`, `summary`; those present only in
/// some documents are left out.
fn documented_fields() -> Vec<String> {
    let doc = include_str!("../docs/json.md");
    let mut fields = Vec::new();
    let mut parent = String::new();
    for row in doc.lines().filter(|l| l.starts_with("| `")) {
        let mut cells = row.split(" | ");
        let names = cells.next().unwrap().trim_start_matches("| ");
        let what = cells.next().unwrap_or_default();
        for part in names.split(", ") {
            let name = part.split('`').nth(1).unwrap();
            let path = match name.strip_prefix('.') {
                Some(field) => format!("{parent}.{field}"),
                None => {
                    if name.ends_with("[]") {
                        parent = name.to_string();
                    }
                    name.trim_end_matches("[]").to_string()
                }
            };
            if !what.starts_with("present only when") {
                fields.push(path);
            }
        }
    }
    fields
}

#[test]
fn json_follows_the_documented_schema() {
    let open = tcp_listener();
    let udp = free_udp_port();
    let spec = format!("{open},{udp}/udp");
    let doc = json(&portprobe(&["localhost", "-4", "--ports", &spec, "--json"]));
    assert_eq!(doc["target"]["host"], "localhost");
    let fields = documented_fields();
    assert!(fields.len() > 30, "{fields:?}");
    let results = doc["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for field in &fields {
        match field.split_once("[].") {
            Some((list, key)) => {
                for item in doc[list].as_array().unwrap() {
                    assert!(item.get(key).is_some(), "{list}[] lacks {key}: {item}");
                }
            }
            None => {
                let mut at = &doc;
                for key in field.split('.') {
                    at = at.get(key).unwrap_or_else(|| panic!("missing {field}"));
                }
            }
        }
    }
    // And nothing the document carries goes undocumented.
    let documented = |path: &str| {
        fields
            .iter()
            .any(|f| f == path || f.starts_with(&format!("{path}.")))
            || ["error", "target.mdns_interfaces"].contains(&path)
    };
    for key in doc.as_object().unwrap().keys() {
        assert!(documented(key), "{key} is not in docs/json.md");
    }
    for key in doc["target"].as_object().unwrap().keys() {
        assert!(documented(&format!("target.{key}")), "target.{key}");
    }
    for r in results {
        for key in r.as_object().unwrap().keys() {
            assert!(documented(&format!("results[].{key}")), "results[].{key}");
        }
    }
    for key in ["open", "closed", "filtered", "open|filtered", "blocked"] {
        assert!(doc["summary"][key].is_u64(), "summary.{key}");
    }
    for r in results {
        assert_eq!(r["blocked"], r["state"] == "filtered");
    }
    let u = result(&doc, "udp", udp);
    assert_eq!(u["state"], "closed");
    assert_eq!(u["reason"], "port-unreachable");
    assert_eq!(u["reason_from"], "127.0.0.1");
}

#[test]
fn udp_reply_that_no_protocol_recognises_is_open_unrecognised() {
    // A responder that answers every datagram with bytes of no protocol.
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = sock.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(b"hello from a private protocol", from);
        }
    });
    let doc = json(&portprobe(&[
        "127.0.0.1",
        "--ports",
        &format!("{port}/udp"),
        "--json",
    ]));
    let r = result(&doc, "udp", port);
    assert_eq!(r["state"], "open");
    assert_eq!(r["reason"], "udp-response-unrecognised");
    assert_eq!(r["udp_probe"], "generic");
}

#[test]
fn ipv6_loopback() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        assert!(!support::in_ci(), "CI needs an IPv6 loopback");
        eprintln!("skipped ipv6_loopback: this host has no IPv6 loopback");
        return;
    };
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    let udp = UdpSocket::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let doc = json(&portprobe(&[
        "::1",
        "--ports",
        &format!("{port},{udp}/udp"),
        "--json",
    ]));
    assert_eq!(result(&doc, "tcp", port)["state"], "open");
    let u = result(&doc, "udp", udp);
    assert_eq!(
        (u["state"].as_str(), u["reason"].as_str()),
        (Some("closed"), Some("port-unreachable"))
    );
    assert_eq!(u["reason_from"], "::1");
}

#[test]
fn human_report_names_states_and_verdict() {
    let open = tcp_listener();
    let (closed, _held) = support::closed_tcp_port();
    let o = portprobe(&["127.0.0.1", "--ports", &format!("{open},{closed}")]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("REACHABLE, NO SERVICE"), "{text}");
    assert!(text.contains("OPEN"), "{text}");
    assert!(
        text.contains("WARNING: 127.0.0.1: no required port is blocked"),
        "{text}"
    );
    let quiet = portprobe(&["127.0.0.1", "--ports", &format!("{open}"), "--quiet"]);
    let line = String::from_utf8(quiet.stdout).unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("OK: 127.0.0.1: all 1 required ports are reachable"),
        "{line}"
    );
}

/// TCP ports listening on 127.0.0.1 or on every address, from /proc/net/tcp.
fn listening_v4_ports() -> BTreeSet<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, port) = f.get(1)?.split_once(':')?;
            let listening = f.get(3) == Some(&"0A");
            let local = addr == "0100007F" || addr == "00000000";
            (listening && local)
                .then(|| u16::from_str_radix(port, 16).ok())
                .flatten()
        })
        .collect()
}

#[test]
fn full_sweep_under_a_1024_descriptor_limit_is_exact() {
    let ours: Vec<u16> = (0..3).map(|_| tcp_listener()).collect();
    let bin = env!("CARGO_BIN_EXE_portprobe");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 1024 && ulimit -Hn 1024 && exec '{bin}' 127.0.0.1 --ports 1-65535 --json"
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.is_empty(), "{err}");
    let doc = json(&o);
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["results"].as_array().unwrap().len(), 65535);
    let listening = listening_v4_ports();
    let mut open = BTreeSet::new();
    for r in doc["results"].as_array().unwrap() {
        let port = r["port"].as_u64().unwrap() as u16;
        match r["state"].as_str().unwrap() {
            "open" => {
                open.insert(port);
            }
            "closed" => assert_eq!(r["reason"], "conn-refused", "{r}"),
            other => panic!("port {port} is {other} on loopback: {r}"),
        }
    }
    for p in &ours {
        assert!(open.contains(p), "listener {p} not found open");
    }
    // No false opens: every open port really listens (self-connects are
    // re-probed, never reported).
    let false_opens: Vec<&u16> = open.iter().filter(|p| !listening.contains(p)).collect();
    assert!(
        false_opens.is_empty(),
        "reported open but not listening: {false_opens:?}"
    );
}

/// UDP ports bound on this machine (v4 or v6), from /proc/net/udp{,6}.
fn bound_udp_ports(v6: bool) -> BTreeSet<u16> {
    let file = if v6 {
        "/proc/net/udp6"
    } else {
        "/proc/net/udp"
    };
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let local = l.split_whitespace().nth(1)?;
            u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()
        })
        .collect()
}

/// A UDP sweep of this machine's own loopback: portprobe's probe sockets
/// hold ports of the range being probed, and a datagram from one of them
/// must never read as another port's reply.
fn udp_sweep_has_no_false_opens(address: &str, v6: bool) {
    let o = portprobe(&[address, "--ports", "1-65535/udp", "--json"]);
    let doc = json(&o);
    assert_eq!(doc["complete"], true);
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 65535);
    let bound = bound_udp_ports(v6);
    let false_opens: Vec<&Value> = results
        .iter()
        .filter(|r| r["state"] == "open")
        .filter(|r| !bound.contains(&(r["port"].as_u64().unwrap() as u16)))
        .collect();
    assert!(
        false_opens.is_empty(),
        "{address}: open but nothing bound there: {false_opens:?}"
    );
    // Nothing answers from elsewhere on loopback.
    for r in results.iter().filter(|r| r["state"] == "open") {
        assert_eq!(r["reply_from"], Value::Null, "{r}");
    }
}

#[test]
fn udp_sweep_of_ipv4_loopback_has_no_false_opens() {
    udp_sweep_has_no_false_opens("127.0.0.1", false);
}

#[test]
fn udp_sweep_of_ipv6_loopback_has_no_false_opens() {
    if UdpSocket::bind("[::1]:0").is_err() {
        assert!(!support::in_ci(), "CI needs an IPv6 loopback");
        eprintln!("skipped udp_sweep_of_ipv6_loopback_has_no_false_opens: no IPv6 loopback");
        return;
    }
    udp_sweep_has_no_false_opens("::1", true);
}

#[test]
fn duplicate_targets_are_probed_and_reported_once() {
    let open = tcp_listener();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets");
    std::fs::write(&file, "127.0.0.1\n".repeat(10_000)).unwrap();
    let o = portprobe(&[
        "127.0.0.1",
        "--targets",
        file.to_str().unwrap(),
        "--ports",
        &open.to_string(),
        "--json",
    ]);
    let doc = json(&o);
    // One target: the single-target document, not a `targets` array.
    assert_eq!(doc["target"]["host"], "127.0.0.1", "{doc}");
    assert_eq!(doc["results"].as_array().unwrap().len(), 1);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn hostile_host_names_keep_every_format_intact() {
    let open = tcp_listener();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets");
    let evil = "bad\u{1b}[2J\u{9b}31m\u{202e}|x=1";
    std::fs::write(&file, format!("{evil}\n")).unwrap();
    let run = |format: &str| {
        portprobe(&[
            "127.0.0.1",
            "--targets",
            file.to_str().unwrap(),
            "--ports",
            &open.to_string(),
            "--format",
            format,
        ])
    };
    for format in ["text", "nagios", "prometheus", "json"] {
        let o = run(format);
        // The bad name is that target's error, the other target is probed.
        assert_eq!(o.status.code(), Some(3), "{format}");
        let out = String::from_utf8(o.stdout).unwrap();
        let err = String::from_utf8(o.stderr).unwrap();
        for raw in ['\u{1b}', '\u{9b}', '\u{202e}'] {
            assert!(!out.contains(raw), "{format}: {raw:?} in {out:?}");
            assert!(!err.contains(raw), "{format}: {raw:?} in {err:?}");
        }
        match format {
            "text" => assert!(out.contains("bad\\x1b[2J\\x9b31m\\u{202e}|x=1"), "{out}"),
            "nagios" => {
                assert_eq!(out.lines().count(), 1, "{out}");
                assert_eq!(out.matches('|').count(), 1, "one perfdata separator: {out}");
                assert!(
                    out.contains("bad\\x1b[2J\\x9b31m\\u{202e}\u{a6}x=1"),
                    "{out}"
                );
            }
            "prometheus" => {
                let lines = out.lines().map(|l| Ok(l.to_string()));
                prometheus_parse::Scrape::parse(lines).expect("valid exposition");
                // The label value as the text format escapes it: the
                // neutralised escapes' backslashes doubled.
                assert!(
                    out.contains(
                        "portprobe_probe_success{target=\"bad\\\\x1b[2J\\\\x9b31m\\\\u{202e}|x=1\"} 0"
                    ),
                    "{out}"
                );
                assert!(
                    out.contains("portprobe_probe_success{target=\"127.0.0.1\"} 1"),
                    "{out}"
                );
            }
            _ => {
                let doc: Value = serde_json::from_str(&out).unwrap();
                assert_eq!(doc["targets"][1]["target"]["host"], evil);
            }
        }
    }
}

#[test]
fn the_slowest_rate_accepted_still_ends_within_max_time() {
    let o = portprobe(&[
        "127.0.0.1",
        "--ports",
        "1,2,3",
        "--rate",
        "0.01",
        "--max-time",
        "1s",
        "--json",
    ]);
    let doc = json(&o);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(doc["complete"], false);
    assert_eq!(doc["results"].as_array().unwrap().len(), 1);
}

/// Listens on `port` of 127.0.0.1 for the rest of the test process, as
/// [`tcp_listener`] does, so that no other test's sweep sees it close;
/// false when the port is taken (then whatever holds it answers).
fn listen_on(port: u16) -> bool {
    let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    thread::spawn(move || {
        for conn in l.incoming() {
            drop(conn);
        }
    });
    true
}

/// The status a set of results gives, as the exit code table defines it.
fn status_of(results: &[&Value]) -> &'static str {
    if results.iter().any(|r| r["state"] == "filtered") {
        "CRITICAL"
    } else if results.iter().any(|r| r["state"] != "open") {
        "WARNING"
    } else {
        "OK"
    }
}

#[test]
fn whole_server_answers_per_service() {
    // Every port of Xgrid, iChat Server and Podcast Capture is above 1023,
    // so any user can listen on them: those services are reachable.
    for port in [4111, 5222, 5223, 5269, 7777, 8170, 8175] {
        listen_on(port);
    }
    let args = ["127.0.0.1", "-p", "Mac OS X Server", "--max-time", "20s"];
    let o = portprobe(&[&args[..], &["--json"]].concat());
    let doc = json(&o);
    assert_eq!(doc["complete"], true, "{doc}");
    let results: Vec<&Value> = doc["results"].as_array().unwrap().iter().collect();
    assert_eq!(results.len(), 2055);

    // The two large ranges are left to their products, and the report says
    // how to include them.
    assert_eq!(
        doc["not_probed"],
        serde_json::json!([
            {"protocol": "udp", "port_start": 6970, "port_end": 9999, "service": "QTSS RTP streams",
             "product": "QuickTime Streaming Server", "why": "QuickTime Streaming Server RTP media"},
            {"protocol": "tcp", "port_start": 49152, "port_end": 65535, "service": "Xsan",
             "product": "Xsan", "why": "Xsan file system"},
        ])
    );
    for r in &results {
        let port = r["port"].as_u64().unwrap();
        let in_rtp = r["protocol"] == "udp" && (6970..=9999).contains(&port) && port != 7070;
        let in_xsan = r["protocol"] == "tcp" && port >= 49152;
        assert!(!in_rtp && !in_xsan, "{r}");
    }

    // Results name the most specific products.
    assert_eq!(
        result(&doc, "tcp", 25)["products"],
        serde_json::json!(["Mail"])
    );
    assert_eq!(
        result(&doc, "tcp", 4111)["products"],
        serde_json::json!(["Xgrid"])
    );
    assert_eq!(result(&doc, "tcp", 4111)["state"], "open");
    assert_eq!(
        result(&doc, "tcp", 80)["products"],
        serde_json::json!(["Web Service", "NetBoot", "Software Update"])
    );
    assert_eq!(
        result(&doc, "udp", 626)["products"],
        serde_json::json!(["Mac OS X Server", "Xsan"])
    );

    // A verdict per product, each agreeing with the results that name it.
    let by_product = doc["by_product"].as_array().unwrap();
    let names: Vec<&str> = by_product
        .iter()
        .map(|g| g["product"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Mac OS X Server",
            "VPN",
            "Password Server",
            "Open Directory",
            "Workgroup Manager",
            "Server Admin",
            "File Sharing",
            "Printer Sharing",
            "Mail",
            "Web Service",
            "DNS Service",
            "NetBoot",
            "iChat Server",
            "Software Update",
            "Podcast Capture",
            "Xgrid",
            "QuickTime Streaming Server",
            "Macintosh Manager",
            "Xsan",
        ]
    );
    for g in by_product {
        let mine: Vec<&Value> = results
            .iter()
            .copied()
            .filter(|r| r["products"].as_array().unwrap().contains(&g["product"]))
            .collect();
        assert_eq!(g["ports"].as_u64(), Some(mine.len() as u64), "{g}");
        assert_eq!(g["status"], status_of(&mine), "{g}");
        let blocked: Vec<String> = mine
            .iter()
            .filter(|r| r["state"] == "filtered")
            .map(|r| format!("{}/{}", r["protocol"].as_str().unwrap(), r["port"]))
            .collect();
        assert_eq!(g["blocked"], serde_json::json!(blocked), "{g}");
    }
    for listened in ["Xgrid", "iChat Server", "Podcast Capture"] {
        let g = by_product
            .iter()
            .find(|g| g["product"] == listened)
            .unwrap();
        assert_eq!(g["status"], "OK", "{g}");
    }

    // Loopback blocks nothing, and not every service listens: WARNING.
    assert_eq!(doc["status"], status_of(&results));
    assert_eq!(doc["status"], "WARNING");
    assert_eq!(o.status.code(), Some(1));

    // The text report: what was not probed under the header, a line per
    // service before the verdict.
    let o = portprobe(&args);
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[2],
        "not probed: UDP 6970-9999 (QuickTime Streaming Server RTP media) and TCP 49152-65535 (Xsan file system): add -p \"QuickTime Streaming Server\" or -p Xsan to include them"
    );
    let services: Vec<&str> = lines
        .iter()
        .skip_while(|l| **l != "SERVICES")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .copied()
        .collect();
    assert_eq!(services.len(), 19, "{text}");
    assert!(
        services
            .iter()
            .any(|l| l.trim_start().starts_with("Xgrid ") && l.ends_with("  reachable")),
        "{text}"
    );
    assert!(
        services
            .iter()
            .any(|l| l.trim_start().starts_with("Mac OS X Server (own ports) ")),
        "{text}"
    );
}

/// A datagram that does not count is dropped, and `-v` says which and why:
/// here a reply of no protocol that comes from another port than the one
/// probed, which leaves the port `open|filtered`.
#[test]
fn verbose_says_which_datagrams_it_did_not_count() {
    let probed = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let other = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let (port, other_port) = (
        probed.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = probed.recv_from(&mut buf) {
            let _ = other.send_to(b"not from the probed port", from);
        }
    });
    let spec = format!("{port}/udp");
    let args = [
        "127.0.0.1",
        "--ports",
        &spec,
        "--json",
        "--no-locate",
        "--timeout",
        "200ms",
    ];
    let quiet = portprobe(&args);
    assert_eq!(result(&json(&quiet), "udp", port)["state"], "open|filtered");
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(!stderr.contains("ignored"), "{stderr}");
    let verbose = portprobe(&[&args[..], &["-v"]].concat());
    assert_eq!(
        result(&json(&verbose), "udp", port)["state"],
        "open|filtered"
    );
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    let said = format!(
        "ignored a 24-byte datagram from 127.0.0.1:{other_port} to the probe of 127.0.0.1:{port}: it is no reply of the protocol, and did not come from the probed address and port"
    );
    assert!(stderr.lines().any(|l| l == said), "{stderr}");
}
