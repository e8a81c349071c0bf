//! Locating benchmark: where does each blocked port stop? portprobe (one
//! run, as `nobody`, every blocked port located at once) against
//! `traceroute -T -p PORT` (TCP SYN probes from a raw socket, as root) run
//! once per port, the way a help desk finds a blocking firewall today, on
//! the same chain of three nftables routers, with wall times and whether
//! each tool put every port at the right hop.
//!
//! Every run starts after a rest long enough for the routers' ICMP
//! allowances to refill (Linux: a burst of six, one a second), as a single
//! run by a help desk would. Run as root: `cargo bench --bench locate`.
//! Needs Debian's `traceroute` for the comparison.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use common::{Expected, measure_rested, print_table};
use support::chain::{Chain, Hook};

/// The blocked ports, where each stops (the last hop it reaches), and why.
const BLOCKED: &[(u16, &str, &str)] = &[
    (3283, "hop 0", "dropped before routing by router 1"),
    (5432, "hop 1", "dropped by router 1's forward filter"),
    (5900, "hop 2", "dropped by router 2's forward filter"),
    (445, "hop 2", "rejected by router 2 (admin-prohibited)"),
    (8080, "hop 2", "dropped by router 2's forward filter"),
    (548, "hop 3", "dropped by router 3's forward filter"),
];

/// The hop each port stops at, from portprobe's JSON (marked when
/// portprobe could not confirm it).
fn portprobe_stops(json: &[u8]) -> BTreeMap<u16, String> {
    let doc: serde_json::Value = serde_json::from_slice(json).expect("portprobe JSON");
    doc["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| {
            let hop = r["located"]["after_hop"].as_u64()?;
            let mark = if r["located"]["how"] == "unconfirmed" {
                " (unconfirmed)"
            } else {
                ""
            };
            Some((r["port"].as_u64()? as u16, format!("hop {hop}{mark}")))
        })
        .collect()
}

/// The wait before each run for the routers' ICMP allowances to refill.
const REST: Duration = Duration::from_secs(7);

/// The hop a port stops at from traceroute's output: the first hop of the
/// last address that answered (a router that rejects answers one hop
/// later, from its own address), or hop 0 when no router answered.
fn traceroute_stop(text: &str) -> String {
    let mut first_seen: BTreeMap<IpAddr, u32> = BTreeMap::new();
    let mut last: Option<IpAddr> = None;
    for line in text.lines().skip(1) {
        let mut words = line.split_whitespace();
        let Some(hop) = words.next().and_then(|h| h.parse::<u32>().ok()) else {
            continue;
        };
        for w in words {
            if let Ok(ip) = w.parse::<IpAddr>() {
                first_seen.entry(ip).or_insert(hop);
                last = Some(ip);
            }
        }
    }
    format!("hop {}", last.map_or(0, |ip| first_seen[&ip]))
}

fn main() {
    if let Err(why) = support::lab_available() {
        println!("skipped the locating benchmark: {why}");
        return;
    }
    let chain = Chain::new(3).expect("build the chain");
    let server = chain.server(false);
    let rule = |r: &str| format!("ip daddr {server} {r}");
    chain
        .nft(1, Hook::Prerouting, &[&rule("tcp dport 3283 drop")])
        .expect("router 1");
    chain
        .nft(1, Hook::Forward, &[&rule("tcp dport 5432 drop")])
        .expect("router 1");
    chain
        .nft(
            2,
            Hook::Forward,
            &[
                &rule("tcp dport 5900 drop"),
                &rule("tcp dport 8080 drop"),
                &rule("tcp dport 445 reject with icmpx type admin-prohibited"),
            ],
        )
        .expect("router 2");
    chain
        .nft(3, Hook::Forward, &[&rule("tcp dport 548 drop")])
        .expect("router 3");
    let _open = chain.tcp_listeners(&[22], false).expect("a listener");
    println!(
        "Locating benchmark on {} ({} cores): client, 3 routers, server",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (port, hop, why) in BLOCKED {
        println!("  TCP {port}: stops at {hop}, {why}");
    }
    let expected: Expected = BLOCKED
        .iter()
        .map(|(port, hop, _)| (*port, *hop))
        .collect::<BTreeMap<u16, &'static str>>();
    let list: Vec<String> = BLOCKED.iter().map(|(p, _, _)| p.to_string()).collect();
    let ports = format!("22,{}", list.join(","));
    let target = server.to_string();
    let bin = env!("CARGO_BIN_EXE_portprobe");
    let mut rows = vec![measure_rested(
        "portprobe (as nobody), one run",
        &expected,
        REST,
        || {
            let out = chain
                .client_as_nobody(bin)
                .expect("command as nobody")
                .args([&target, "--ports", &ports, "--json"])
                .output()
                .expect("run portprobe");
            (portprobe_stops(&out.stdout), None)
        },
    )];
    if support::have_program("traceroute") {
        rows.push(measure_rested(
            "traceroute -T -p PORT -n (as root), once per port",
            &expected,
            REST,
            || {
                let stops = BLOCKED
                    .iter()
                    .map(|(port, _, _)| {
                        let out = chain
                            .client_cmd("traceroute")
                            .args(["-T", "-p", &port.to_string(), "-n", &target])
                            .output()
                            .expect("run traceroute");
                        (
                            *port,
                            traceroute_stop(&String::from_utf8_lossy(&out.stdout)),
                        )
                    })
                    .collect();
                (stops, None)
            },
        ));
    } else {
        println!("(traceroute is not installed: install Debian's traceroute for the comparison)");
    }
    print_table(
        "Where 6 blocked TCP ports stop (the last hop each reaches)",
        &rows,
    );
}
