//! Finding where a blocked port stops, through real paths: the one-router
//! lab, a chain of three nftables routers, the chain with a router that
//! sends no time-exceeded, and drops and rejections before routing, over
//! IPv4 and IPv6, with portprobe run as `nobody` (no raw sockets, no
//! privileges). Each filter stops one port at a known hop, and every
//! located hop must be exact; each probe runs twice back to back (the
//! second finds the routers' ICMP allowances spent by the first) and both
//! answers must be the same. The words must say where with addresses, and
//! never mislead. The exporter and `--watch` keep what they located: a
//! second request gives the same answer without one more time-exceeded
//! from the router, and later `--watch` rounds without locating again. The
//! tests need root to build the namespaces: without it
//! each prints one line saying it was skipped; under CI they must run.

mod support;

use support::json;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::chain::{Chain, Hook};
use support::lab::{Lab, Ns};
use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

fn at(
    after_hop: u8,
    after: Option<IpAddr>,
    before_hop: u8,
    before: Option<IpAddr>,
    how: &str,
) -> Value {
    json!({
        "after_hop": after_hop,
        "after": after.map(|a| a.to_string()),
        "before_hop": before_hop,
        "before": before.map(|a| a.to_string()),
        "how": how,
        "age_s": 0,
    })
}

/// Per port: state, reason, who sent it, and where it stops.
fn answers(doc: &Value) -> BTreeMap<String, Value> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!("{}/{}", r["protocol"].as_str().unwrap(), r["port"]),
                json!([r["state"], r["reason"], r["reason_from"], r["located"]]),
            )
        })
        .collect()
}

/// A text report without what differs from run to run: round-trip times
/// and the run's duration.
fn steady(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.starts_with("probed in")) {
        let mut line = line.to_string();
        while let Some(i) = line.find(" ms)") {
            let start = line[..i].rfind(" (").unwrap_or(i);
            line.replace_range(start..i + 4, "");
        }
        if let Some(i) = line.find("connected in ") {
            line.truncate(i + "connected".len());
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Runs `probe` twice back to back, in JSON and then as text, and checks
/// that each second answer is the first one; returns the JSON and the text.
fn twice(probe: impl Fn(&[&str]) -> Output) -> (Value, String) {
    let first = json(&probe(&["--json"]));
    let second = json(&probe(&["--json"]));
    assert_eq!(
        answers(&second),
        answers(&first),
        "the second run differs from the first: {}\nfirst: {}",
        second["results"],
        first["results"]
    );
    assert_eq!(second["hosts"][0]["path"], first["hosts"][0]["path"]);
    let text = String::from_utf8(probe(&[]).stdout).unwrap();
    let again = String::from_utf8(probe(&[]).stdout).unwrap();
    assert_eq!(steady(&again), steady(&text), "the second text differs");
    (first, text)
}

/// What no report may say: hop 0 (this computer), the next router when
/// the next hop is the host, a host that is down while it answers.
fn never_misleads(text: &str) {
    for wrong in [
        "hop 0",
        "the next router",
        "the host is down",
        "that last router",
    ] {
        assert!(!text.contains(wrong), "says {wrong:?}:\n{text}");
    }
}

/// The one-router lab's filters: TCP 5900 and 49152-65535 dropped by the
/// forward filter, 311 and 625 rejected by it; 3283 dropped and 445
/// rejected before routing.
fn one_router(lab: &Lab, v6: bool) -> support::lab::Listeners {
    let server = if v6 {
        IpAddr::V6(lab.server_v6())
    } else {
        IpAddr::V4(lab.server_v4())
    };
    let daddr = if v6 { "ip6 daddr" } else { "ip daddr" };
    let rule = |r: &str| format!("{daddr} {server} {r}");
    lab.nft(&[
        &rule("tcp dport { 5900, 49152-65535 } drop"),
        &rule("tcp dport { 311, 625 } reject with icmpx type admin-prohibited"),
    ])
    .unwrap();
    lab.nft_before_routing(&[
        &rule("tcp dport 3283 drop"),
        &rule("tcp dport 445 reject with icmpx type admin-prohibited"),
    ])
    .unwrap();
    lab.tcp_listeners(&[22, 548], v6).unwrap()
}

const ONE_ROUTER_PORTS: &str = "22,23,311,445,548,625,3283,5900,49152-65535";

fn one_router_says_where(name: &str, v6: bool) {
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let _listeners = one_router(&lab, v6);
    let (router, server) = if v6 {
        (IpAddr::V6(lab.router_v6()), IpAddr::V6(lab.server_v6()))
    } else {
        (IpAddr::V4(lab.router_v4()), IpAddr::V4(lab.server_v4()))
    };
    let probe = |extra: &[&str]| {
        lab.client_cmd_as_nobody(BIN)
            .unwrap()
            .args([&server.to_string(), "--ports", ONE_ROUTER_PORTS])
            .args(extra)
            .output()
            .unwrap()
    };
    let (doc, text) = twice(probe);
    let got = answers(&doc);
    let (r, s) = (Some(router), Some(server));
    let rejected = at(1, r, 2, s, "rejected");
    let at_host = at(1, r, 2, s, "at-host");
    let want = |port: &str, state: &str, reason: &str, from: Option<IpAddr>, located: &Value| {
        assert_eq!(
            got[port],
            json!([state, reason, from.map(|f| f.to_string()), located]),
            "{port}: {}",
            doc["results"]
        );
    };
    want("tcp/22", "open", "syn-ack", None, &Value::Null);
    want("tcp/23", "closed", "conn-refused", None, &Value::Null);
    want("tcp/311", "filtered", "admin-prohibited", r, &rejected);
    want("tcp/625", "filtered", "admin-prohibited", r, &rejected);
    want("tcp/445", "filtered", "admin-prohibited", r, &rejected);
    want(
        "tcp/3283",
        "filtered",
        "no-response",
        None,
        &at(0, None, 1, r, "dropped"),
    );
    want("tcp/5900", "filtered", "no-response", None, &at_host);
    for port in [49152, 50003, 60000, 65535] {
        want(
            &format!("tcp/{port}"),
            "filtered",
            "no-response",
            None,
            &at_host,
        );
    }
    assert_eq!(
        doc["hosts"][0]["path"],
        json!([{"hop": 1, "address": router.to_string()}, {"hop": 2, "address": server.to_string()}])
    );
    never_misleads(&text);
    for says in [
        format!(
            "passes every router up to {router} (hop 1) and gets no answer from the host: {router} after its TTL check, or the host's own firewall, drops it"
        ),
        format!("rejected by {router} at hop 1: administratively prohibited"),
        format!(
            "TCP 3283 (Net Assistant (ARD)) is dropped at or before {router} (hop 1), before that router's TTL check"
        ),
    ] {
        assert!(text.contains(&says), "does not say {says:?}:\n{text}");
    }
    // Not located, a dropped port's advice still does not call a host down
    // that answers other ports.
    let unlocated = String::from_utf8(probe(&["--no-locate"]).stdout).unwrap();
    never_misleads(&unlocated);
    assert!(
        unlocated.contains("TCP 5900 (Screen Sharing (VNC)) times out: a firewall between you and the host drops it (the host answers other ports)"),
        "{unlocated}"
    );
    // The dropped range is located once, as one question: no line of it
    // left unlocated.
    let range: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("TCP 49") || l.contains("TCP 5") && l.contains("filtered"))
        .collect();
    assert!(
        range.iter().all(|l| !l.contains("dropped on the way")),
        "{range:?}"
    );
}

#[test]
fn one_router_says_where_over_ipv4() {
    one_router_says_where("one_router_says_where_over_ipv4", false);
}

#[test]
fn one_router_says_where_over_ipv6() {
    one_router_says_where("one_router_says_where_over_ipv6", true);
}

/// The chain, its filters and the listeners on the server.
struct Path {
    chain: Chain,
    _listeners: Vec<support::lab::Listeners>,
}

fn path(name: &str, v6: bool) -> Option<Path> {
    if !support::require_lab(name) {
        return None;
    }
    let chain = Chain::new(3).expect("build the chain");
    let server = chain.server(v6);
    let daddr = if v6 { "ip6 daddr" } else { "ip daddr" };
    let rule = |r: &str| format!("{daddr} {server} {r}");
    chain
        .nft(1, Hook::Prerouting, &[&rule("tcp dport 3283 drop")])
        .unwrap();
    chain
        .nft(
            2,
            Hook::Forward,
            &[
                &rule("tcp dport 5900 drop"),
                &rule("tcp dport 445 reject with icmpx type admin-prohibited"),
                &rule("udp dport 3283 drop"),
            ],
        )
        .unwrap();
    chain
        .nft(3, Hook::Forward, &[&rule("tcp dport 548 drop")])
        .unwrap();
    let listeners = vec![
        chain.tcp_listeners(&[22], v6).unwrap(),
        chain.silent_udp(&[6970], v6).unwrap(),
    ];
    Some(Path {
        chain,
        _listeners: listeners,
    })
}

const PORTS: &str = "22,23,445,548,3283,5900,3283/udp,6970/udp";

fn probe(p: &Path, v6: bool, extra: &[&str]) -> Output {
    p.chain
        .client_as_nobody(BIN)
        .unwrap()
        .arg(p.chain.server(v6).to_string())
        .args(["--ports", PORTS])
        .args(extra)
        .output()
        .unwrap()
}

fn located(doc: &Value) -> BTreeMap<String, (Value, Value)> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!("{}/{}", r["protocol"].as_str().unwrap(), r["port"]),
                (r["state"].clone(), r["located"].clone()),
            )
        })
        .collect()
}

fn every_filter_is_located_at_its_hop(name: &str, v6: bool) {
    let Some(p) = path(name, v6) else { return };
    let c = &p.chain;
    let (doc, text) = twice(|extra| probe(&p, v6, extra));
    let hop = |k| Some(c.hop(k, v6));
    let server = Some(c.server(v6));
    let want: BTreeMap<String, (Value, Value)> = [
        ("tcp/22", "open", Value::Null),
        ("tcp/23", "closed", Value::Null),
        ("tcp/445", "filtered", at(2, hop(2), 3, hop(3), "rejected")),
        ("tcp/548", "filtered", at(3, hop(3), 4, server, "at-host")),
        ("tcp/3283", "filtered", at(0, None, 1, hop(1), "dropped")),
        ("tcp/5900", "filtered", at(2, hop(2), 3, hop(3), "dropped")),
        ("udp/3283", "filtered", at(2, hop(2), 3, hop(3), "dropped")),
        (
            "udp/6970",
            "open|filtered",
            at(3, hop(3), 4, server, "at-host"),
        ),
    ]
    .into_iter()
    .map(|(k, state, l)| (k.to_string(), (json!(state), l)))
    .collect();
    assert_eq!(located(&doc), want, "{}", doc["hosts"]);
    let path: Vec<Value> = (1..=4)
        .map(|k| json!({"hop": k, "address": c.hop(k, v6).to_string()}))
        .collect();
    assert_eq!(doc["hosts"][0]["path"], json!(path));

    let (r1, r2, r3) = (c.hop(1, v6), c.hop(2, v6), c.hop(3, v6));
    never_misleads(&text);
    for says in [
        format!(
            "TCP 5900 (Screen Sharing (VNC)) passes {r2} (hop 2) and is dropped before {r3} (hop 3)"
        ),
        format!("rejected by {r2} at hop 2: administratively prohibited"),
        format!(
            "TCP 3283 (Net Assistant (ARD)) is dropped at or before {r1} (hop 1), before that router's TTL check"
        ),
        format!(
            "passes every router up to {r3} (hop 3) and gets no answer from the host: {r3} after its TTL check, or the host's own firewall, drops it"
        ),
        format!(
            "path: 1 {r1}, 2 {r2}, 3 {r3}, 4 {} (the host)",
            c.server(v6)
        ),
    ] {
        assert!(text.contains(&says), "does not say {says:?}:\n{text}");
    }

    let off: Value =
        serde_json::from_slice(&probe(&p, v6, &["--json", "--no-locate"]).stdout).unwrap();
    assert!(
        off["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["located"].is_null()),
        "{off}"
    );
    assert_eq!(off["hosts"][0]["path"], json!([]));
}

#[test]
fn every_filter_is_located_at_its_hop_over_ipv4() {
    every_filter_is_located_at_its_hop("every_filter_is_located_at_its_hop_over_ipv4", false);
}

#[test]
fn every_filter_is_located_at_its_hop_over_ipv6() {
    every_filter_is_located_at_its_hop("every_filter_is_located_at_its_hop_over_ipv6", true);
}

fn a_silent_router_keeps_both_sides(name: &str, v6: bool) {
    let Some(p) = path(name, v6) else { return };
    let c = &p.chain;
    c.silence_time_exceeded(2).unwrap();
    let (doc, text) = twice(|extra| probe(&p, v6, extra));
    let hop = |k| Some(c.hop(k, v6));
    let server = Some(c.server(v6));
    let want: BTreeMap<String, (Value, Value)> = [
        ("tcp/22", "open", Value::Null),
        ("tcp/23", "closed", Value::Null),
        ("tcp/445", "filtered", at(2, hop(2), 3, hop(3), "rejected")),
        ("tcp/548", "filtered", at(3, hop(3), 4, server, "at-host")),
        ("tcp/3283", "filtered", at(0, None, 1, hop(1), "dropped")),
        ("tcp/5900", "filtered", at(1, hop(1), 3, hop(3), "dropped")),
        ("udp/3283", "filtered", at(1, hop(1), 3, hop(3), "dropped")),
        (
            "udp/6970",
            "open|filtered",
            at(3, hop(3), 4, server, "at-host"),
        ),
    ]
    .into_iter()
    .map(|(k, state, l)| (k.to_string(), (json!(state), l)))
    .collect();
    assert_eq!(located(&doc), want, "{}", doc["hosts"]);
    assert_eq!(
        doc["hosts"][0]["path"],
        json!([
            {"hop": 1, "address": c.hop(1, v6).to_string()},
            {"hop": 2, "address": null},
            {"hop": 3, "address": c.hop(3, v6).to_string()},
            {"hop": 4, "address": c.server(v6).to_string()},
        ])
    );
    let (r1, r2, r3) = (c.hop(1, v6), c.hop(2, v6), c.hop(3, v6));
    never_misleads(&text);
    for says in [
        format!(
            "TCP 5900 (Screen Sharing (VNC)) passes {r1} (hop 1) and never reaches {r3} (hop 3)"
        ),
        format!("rejected by {r2} at hop 2: administratively prohibited"),
        format!("path: 1 {r1}, 2 *, 3 {r3}, 4 {} (the host)", c.server(v6)),
    ] {
        assert!(text.contains(&says), "does not say {says:?}:\n{text}");
    }
}

#[test]
fn a_router_that_sends_no_time_exceeded_keeps_both_sides_over_ipv4() {
    a_silent_router_keeps_both_sides(
        "a_router_that_sends_no_time_exceeded_keeps_both_sides_over_ipv4",
        false,
    );
}

#[test]
fn a_router_that_sends_no_time_exceeded_keeps_both_sides_over_ipv6() {
    a_silent_router_keeps_both_sides(
        "a_router_that_sends_no_time_exceeded_keeps_both_sides_over_ipv6",
        true,
    );
}

/// The page's list of blocked ports, one line per paragraph.
fn page_blocked(html: &str) -> Vec<String> {
    let Some(start) = html.find("<ol class=\"blocked\">") else {
        return Vec::new();
    };
    let list = &html[start..];
    let list = &list[..list.find("</ol>").unwrap_or(list.len())];
    list.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn the_exporter_keeps_what_it_located_for_the_next_request() {
    let Some(lab) = support::lab_or_skip("the_exporter_keeps_what_it_located_for_the_next_request")
    else {
        return;
    };
    let _listeners = one_router(&lab, false);
    lab.count_time_exceeded().unwrap();
    let (_exporter, at) = support::http::start_exporter(lab.cmd(Ns::Client, BIN).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow",
        "198.18.1.0/24",
    ]));
    let page = |at: SocketAddr| {
        let path = format!(
            "/?target={}&product=&ports={}",
            lab.server_v4(),
            ONE_ROUTER_PORTS.replace(',', "%2C")
        );
        let r = lab
            .run_in(Ns::Client, move || support::http::get(at, &path, ""))
            .unwrap()
            .unwrap();
        assert_eq!(r.code, 200, "{}", r.body);
        r.body
    };
    let first = page(at);
    let spent = lab.time_exceeded_sent().unwrap();
    assert!(spent > 0, "the first request located nothing");
    let second = page(at);
    assert_eq!(
        lab.time_exceeded_sent().unwrap(),
        spent,
        "the second request spent the router's time-exceeded again"
    );
    let (a, b) = (page_blocked(&first), page_blocked(&second));
    assert!(!a.is_empty(), "{first}");
    assert_eq!(a, b);
    let router = lab.router_v4();
    assert!(
        b.iter().any(|l| l.contains(&format!(
            "passes every router up to {router} (hop 1) and gets no answer from the host"
        ))),
        "{b:?}"
    );
}

#[test]
fn watch_rounds_keep_what_they_located() {
    let Some(lab) = support::lab_or_skip("watch_rounds_keep_what_they_located") else {
        return;
    };
    let _listeners = one_router(&lab, false);
    lab.count_time_exceeded().unwrap();
    let mut cmd: Command = lab.client_cmd_as_nobody(BIN).unwrap();
    cmd.args([
        &lab.server_v4().to_string(),
        "--ports",
        ONE_ROUTER_PORTS,
        "--json",
        "--watch",
        "1s",
    ])
    .stdout(Stdio::piped());
    let mut child = KillOnDrop::spawn(&mut cmd).unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut round = || -> Value {
        let line = lines.next().expect("a round").expect("a line");
        serde_json::from_str(&line).unwrap()
    };
    let first = round();
    let spent = lab.time_exceeded_sent().unwrap();
    assert!(spent > 0, "the first round located nothing");
    let second = round();
    let third = round();
    // A kept answer is given without locating again. A round may spend
    // what a re-check within the budget may (two errors of a router that
    // has them to spare), never a search: the first round's own spending.
    let later = lab.time_exceeded_sent().unwrap() - spent;
    assert!(
        later <= 4 && later < spent,
        "later rounds spent {later} of the router's time-exceeded (the first {spent}):\n{first}\n{second}\n{third}"
    );
    let strip_age = |doc: &Value| {
        let mut a = answers(doc);
        for v in a.values_mut() {
            if let Some(l) = v[3].as_object_mut() {
                l.remove("age_s");
            }
        }
        a
    };
    assert_eq!(strip_age(&second), strip_age(&first), "{first}\n{second}");
    assert_eq!(strip_age(&third), strip_age(&first), "{first}\n{third}");
    // A kept answer says how old it is.
    let age = third["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["port"] == 5900)
        .map(|r| r["located"]["age_s"].as_u64().unwrap())
        .unwrap();
    assert!(age >= 1, "{third}");
    let _ = child.wait_for(Duration::ZERO);
}
