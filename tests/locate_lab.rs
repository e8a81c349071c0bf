//! Finding where a blocked port stops, through a real path: a client, three
//! nftables routers and a server, over IPv4 and IPv6, with portprobe run as
//! `nobody` (no raw sockets, no privileges). Each filter below stops one
//! port at a known hop, and every located hop must be exact. The tests need
//! root to build the namespaces: without it each prints one line saying it
//! was skipped; under CI they must run.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};
use support::chain::{Chain, Hook};

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

fn probe(p: &Path, v6: bool, extra: &[&str]) -> std::process::Output {
    p.chain
        .client_as_nobody(env!("CARGO_BIN_EXE_portprobe"))
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

fn at(after_hop: u8, after: Option<IpAddr>, before: Option<IpAddr>, how: &str) -> Value {
    json!({
        "after_hop": after_hop,
        "after": after.map(|a| a.to_string()),
        "before": before.map(|a| a.to_string()),
        "how": how,
    })
}

fn every_filter_is_located_at_its_hop(name: &str, v6: bool) {
    let Some(p) = path(name, v6) else { return };
    let c = &p.chain;
    let o = probe(&p, v6, &["--json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&o.stderr));
    });
    let hop = |k| Some(c.hop(k, v6));
    let server = Some(c.server(v6));
    let want: BTreeMap<String, (Value, Value)> = [
        ("tcp/22", "open", Value::Null),
        ("tcp/23", "closed", Value::Null),
        ("tcp/445", "filtered", at(2, hop(2), hop(3), "rejected")),
        ("tcp/548", "filtered", at(3, hop(3), server, "at-host")),
        ("tcp/3283", "filtered", at(0, None, hop(1), "dropped")),
        ("tcp/5900", "filtered", at(2, hop(2), hop(3), "dropped")),
        ("udp/3283", "filtered", at(2, hop(2), hop(3), "dropped")),
        (
            "udp/6970",
            "open|filtered",
            at(3, hop(3), server, "at-host"),
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

    let text = String::from_utf8(probe(&p, v6, &[]).stdout).unwrap();
    let (r2, r3) = (c.hop(2, v6), c.hop(3, v6));
    assert!(
        text.contains(&format!(
            "TCP 5900 (Screen Sharing (VNC)) passes {r2} (hop 2) and is dropped before {r3} (hop 3)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "rejected by {r2} at hop 2: administratively prohibited"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "TCP 3283 (Net Assistant (ARD)) never reaches {} (hop 1), the first router",
            c.hop(1, v6)
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "path: 1 {}, 2 {r2}, 3 {r3}, 4 {} (the host)",
            c.hop(1, v6),
            c.server(v6)
        )),
        "{text}"
    );

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
