//! Locating benchmark.
//!
//! (a) Where does each blocked port stop? portprobe (one run, as `nobody`,
//!     every blocked port located at once) against `traceroute -T -p PORT`
//!     (TCP SYN probes from a raw socket, as root) run once per port, the
//!     way a help desk finds a blocking firewall today, on the same chain of
//!     three nftables routers, with wall times and whether each tool put
//!     every port at the right hop. Every run starts after a rest long
//!     enough for the routers' ICMP allowances to refill (Linux: a burst of
//!     six, one a second), as a single run by a help desk would.
//! (b) What locating costs in a sweep: the 17 412 TCP ports of Apple Remote
//!     Desktop, Xsan and 1-1024 through the one-router lab (TCP 5900 and
//!     49152-65535 dropped, 311 and 625 rejected), portprobe with and
//!     without locating, and the second of two runs started back to back
//!     (the router's ICMP allowance spent by the first), against
//!     `nmap -sT -T4`, which does not locate.
//!
//! Run as root: `cargo bench --bench locate` (`-- sweep` or `-- chain` for
//! one of the two). Needs Debian's `traceroute` and `nmap` for the
//! comparisons.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use common::{Expected, Measured, measure_rested, nmap_states, print_table};
use support::chain::{Chain, Hook};
use support::lab::{Lab, Ns};

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
    println!(
        "Locating benchmark on {} ({} cores)",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wanted("chain") {
        chain_of_three();
    }
    if wanted("sweep") {
        sweep();
    }
}

/// (a): six blocked ports on a chain of three routers, portprobe against
/// traceroute.
fn chain_of_three() {
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
    println!("\n(a) client, 3 routers, server");
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
        "(a) Where 6 blocked TCP ports stop (the last hop each reaches)",
        &rows,
    );
}

/// The sweep of (b): Apple Remote Desktop's and Xsan's TCP ports and 1-1024.
const SWEEP: &str = "1-1024,3283,5432,5900,5988,49152-65535";
/// Open on the server in (b).
const SWEEP_OPEN: [u16; 7] = [22, 80, 443, 548, 631, 3283, 5988];
/// Rejected by the router with admin-prohibited in (b).
const SWEEP_REJECTED: [u16; 2] = [311, 625];

/// Each port's state in (b), and with `located`, where a blocked one stops
/// as portprobe's JSON says it (`rejected 1`: rejected at hop 1; `at-host
/// 1`: passes hop 1, the router, and gets no answer from the host).
fn sweep_expected(located: bool) -> Expected {
    common::expand(SWEEP)
        .into_iter()
        .map(|p| {
            let state = if SWEEP_OPEN.contains(&p) {
                "open"
            } else if SWEEP_REJECTED.contains(&p) {
                if located {
                    "filtered rejected 1"
                } else {
                    "filtered"
                }
            } else if p == 5900 || p >= 49152 {
                if located {
                    "filtered at-host 1"
                } else {
                    "filtered"
                }
            } else {
                "closed"
            };
            (p, state)
        })
        .collect()
}

/// Each TCP port's state from portprobe's JSON, with `located`, followed by
/// how and after which hop it stops.
fn sweep_states(json: &[u8], located: bool) -> BTreeMap<u16, String> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(json) else {
        return BTreeMap::new();
    };
    doc["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["protocol"] == "tcp")
        .filter_map(|r| {
            let port = r["port"].as_u64()? as u16;
            let mut state = r["state"].as_str()?.to_string();
            if located && let Some(how) = r["located"]["how"].as_str() {
                state = format!("{state} {how} {}", r["located"]["after_hop"]);
            }
            Some((port, state))
        })
        .collect()
}

/// (b): the cost of locating in a sweep, first and second runs, against
/// nmap.
fn sweep() {
    let lab = Lab::new().expect("build the lab");
    let server = lab.server_v4();
    let _open = lab.tcp_listeners(&SWEEP_OPEN, false).expect("listeners");
    lab.nft(&[
        &format!("ip daddr {server} tcp dport {{ 5900, 49152-65535 }} drop"),
        &format!(
            "ip daddr {server} tcp dport {{ 311, 625 }} reject with icmpx type admin-prohibited"
        ),
    ])
    .expect("router rules");
    println!(
        "\n(b) client, router, server: TCP {SWEEP} (17 412 ports: 7 open, 16 385 dropped, 2 rejected, the rest closed)"
    );
    let target = server.to_string();
    let bin = env!("CARGO_BIN_EXE_portprobe");
    let portprobe = |extra: &[&str]| {
        lab.client_cmd_as_nobody(bin)
            .expect("command as nobody")
            .args([&target, "--ports", SWEEP, "--json"])
            .args(extra)
            .output()
            .expect("run portprobe")
    };
    let located = sweep_expected(true);
    let states = sweep_expected(false);
    let mut rows: Vec<Measured> = vec![
        measure_rested("portprobe (as nobody), locating", &located, REST, || {
            (sweep_states(&portprobe(&[]).stdout, true), None)
        }),
        measure_rested("portprobe (as nobody), --no-locate", &states, REST, || {
            (
                sweep_states(&portprobe(&["--no-locate"]).stdout, false),
                None,
            )
        }),
    ];
    // The second of two runs back to back: only the second is timed.
    let mut second =
        Measured::new("portprobe (as nobody), locating, the second of two runs back to back");
    for _ in 0..common::RUNS {
        std::thread::sleep(REST);
        let _ = portprobe(&[]);
        let start = std::time::Instant::now();
        let out = portprobe(&[]);
        second.record(start.elapsed(), &located, &sweep_states(&out.stdout, true));
    }
    rows.push(second);
    if support::have_program("nmap") {
        rows.push(measure_rested(
            "nmap -sT -T4 -Pn -n (as root)",
            &states,
            REST,
            || {
                let out = lab
                    .cmd(Ns::Client, "nmap")
                    .args(["-sT", "-T4", "-Pn", "-n", "-p", SWEEP, &target, "-oX", "-"])
                    .output()
                    .expect("run nmap");
                (
                    nmap_states(&String::from_utf8_lossy(&out.stdout), "tcp"),
                    None,
                )
            },
        ));
    } else {
        println!("(nmap is not installed: install Debian's nmap for the comparison)");
    }
    print_table(
        "(b) The sweep, with and without locating (exact: every state, and where each blocked port stops)",
        &rows,
    );
}
