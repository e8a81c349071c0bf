//! TCP benchmark: portprobe and nmap (`-sT -Pn -n`, at -T4 and -T5) side by
//! side in one run, on the same targets, with wall times and whether each
//! tool classified every port correctly.
//!
//! (a) 127.0.0.1, ports 1-65535, inside a fresh network namespace (so the
//!     listening ports are exactly the ones the benchmark opens);
//! (b) through the lab's nftables router: TCP 1-1024 plus 49152-65535, the
//!     high range dropped, a few ports rejected with ICMP admin-prohibited and
//!     a few with a TCP reset.
//!
//! Run as root: `cargo bench --bench tcp`. Needs `nmap` for the comparison.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::lab::{Lab, Ns};

const RUNS: usize = 3;

/// Expected state per port: "open", "closed" or "filtered".
type Expected = BTreeMap<u16, &'static str>;

struct Measured {
    tool: String,
    times: Vec<Duration>,
    exact: usize,
    worst: String,
}

fn median(times: &[Duration]) -> Duration {
    let mut t = times.to_vec();
    t.sort();
    t[t.len() / 2]
}

/// States from portprobe's JSON.
fn portprobe_states(json: &[u8]) -> BTreeMap<u16, String> {
    let doc: serde_json::Value = serde_json::from_slice(json).expect("portprobe JSON");
    doc["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["port"].as_u64().unwrap() as u16,
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expand(ranges: &str) -> Vec<u16> {
    ranges
        .split(',')
        .flat_map(|r| {
            let (lo, hi) = r.split_once('-').unwrap_or((r, r));
            lo.trim().parse::<u16>().unwrap()..=hi.trim().parse::<u16>().unwrap()
        })
        .collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// States from nmap's XML: listed ports, and the port ranges of every
/// `extraports` group.
fn nmap_states(xml: &str) -> BTreeMap<u16, String> {
    let mut out = BTreeMap::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<extraports ") {
        let block_end = rest[i..]
            .find("</extraports>")
            .map_or(rest.len(), |e| i + e);
        let block = &rest[i..block_end];
        let state = attr(block, "state").unwrap_or("?").to_string();
        let mut reasons = block;
        while let Some(j) = reasons.find("<extrareasons ") {
            let tag = &reasons[j..reasons[j..].find("/>").map_or(reasons.len(), |e| j + e)];
            if let Some(ports) = attr(tag, "ports") {
                for p in expand(ports) {
                    out.insert(p, state.clone());
                }
            }
            reasons = &reasons[j + 1..];
        }
        rest = &rest[block_end..];
    }
    let mut rest = xml;
    while let Some(i) = rest.find("<port protocol=\"tcp\"") {
        let end = rest[i..].find("</port>").map_or(rest.len(), |e| i + e);
        let block = &rest[i..end];
        if let (Some(port), Some(s)) = (attr(block, "portid"), block.find("<state ")) {
            let state = attr(&block[s..], "state").unwrap_or("?");
            out.insert(port.parse().unwrap(), state.to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// Compares, returning a short description of the differences.
fn differences(expected: &Expected, got: &BTreeMap<u16, String>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (port, want) in expected {
        match got.get(port) {
            Some(s) if s == want => {}
            Some(s) => diffs.push(format!("{port}: {s} (expected {want})")),
            None => diffs.push(format!("{port}: missing")),
        }
    }
    diffs
}

fn measure(
    tool: &str,
    expected: &Expected,
    mut run: impl FnMut() -> BTreeMap<u16, String>,
) -> Measured {
    let mut m = Measured {
        tool: tool.to_string(),
        times: Vec::new(),
        exact: 0,
        worst: String::new(),
    };
    for _ in 0..RUNS {
        let start = Instant::now();
        let got = run();
        m.times.push(start.elapsed());
        let diffs = differences(expected, &got);
        if diffs.is_empty() {
            m.exact += 1;
        } else if m.worst.is_empty() || diffs.len() > m.worst.split(';').count() {
            let shown: Vec<String> = diffs.iter().take(4).cloned().collect();
            m.worst = format!("{} wrong: {}", diffs.len(), shown.join("; "));
        }
    }
    m
}

fn print_table(title: &str, rows: &[Measured]) {
    println!("\n{title}\n");
    println!("| tool | median wall time ({RUNS} runs) | runs exact | worst run |");
    println!("|---|---|---|---|");
    for m in rows {
        println!(
            "| {} | {:.2} s | {}/{} | {} |",
            m.tool,
            median(&m.times).as_secs_f64(),
            m.exact,
            RUNS,
            if m.worst.is_empty() { "-" } else { &m.worst }
        );
    }
}

fn nmap_runs(lab: &Lab, ns: Ns, target: &str, ports: &str, expected: &Expected) -> Vec<Measured> {
    if !support::have_program("nmap") {
        println!("(nmap is not installed: install Debian's nmap for the comparison)");
        return Vec::new();
    }
    ["-T4", "-T5"]
        .iter()
        .map(|timing| {
            measure(&format!("nmap -sT {timing} -Pn -n"), expected, || {
                let out = lab
                    .cmd(ns, "nmap")
                    .args(["-sT", timing, "-Pn", "-n", "-p", ports, target, "-oX", "-"])
                    .output()
                    .expect("run nmap");
                nmap_states(&String::from_utf8_lossy(&out.stdout))
            })
        })
        .collect()
}

fn portprobe_run(lab: &Lab, ns: Ns, target: &str, ports: &str, expected: &Expected) -> Measured {
    let bin = env!("CARGO_BIN_EXE_portprobe");
    measure("portprobe", expected, || {
        let out = lab
            .cmd_as_nobody(ns, bin)
            .expect("command as nobody")
            .args([target, "--ports", ports, "--json"])
            .output()
            .expect("run portprobe");
        portprobe_states(&out.stdout)
    })
}

fn main() {
    if let Err(why) = support::lab_available() {
        println!("skipped the TCP benchmark: {why}");
        return;
    }
    let lab = Lab::new().expect("build the lab");
    println!(
        "TCP benchmark on {} ({} cores)",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // (a) loopback of a fresh namespace.
    let listening = [22, 80, 443, 548, 5900, 40000, 60000];
    let _a = lab
        .tcp_listeners_in(Ns::Client, &listening, false)
        .expect("listeners");
    let expected: Expected = (1..=65535u16)
        .map(|p| {
            (
                p,
                if listening.contains(&p) {
                    "open"
                } else {
                    "closed"
                },
            )
        })
        .collect();
    let mut rows = vec![portprobe_run(
        &lab,
        Ns::Client,
        "127.0.0.1",
        "1-65535",
        &expected,
    )];
    rows.extend(nmap_runs(
        &lab,
        Ns::Client,
        "127.0.0.1",
        "1-65535",
        &expected,
    ));
    print_table("(a) 127.0.0.1, TCP 1-65535 (7 open, 65528 closed)", &rows);

    // (b) through the router.
    let open = [22, 80, 443, 548, 631];
    let prohibited = [106, 311, 625];
    // 23 and 79 are reset by the router: indistinguishable from closed.
    let _b = lab.tcp_listeners(&open, false).expect("listeners");
    // Rules match the server's address: a rule on ports alone would also
    // drop the replies to the client's ephemeral ports (32768-60999).
    let server = lab.server_v4();
    lab.nft(&[
        &format!("ip daddr {server} tcp dport 49152-65535 drop"),
        &format!("ip daddr {server} tcp dport {{ 106, 311, 625 }} reject with icmpx type admin-prohibited"),
        &format!("ip daddr {server} tcp dport {{ 23, 79 }} reject with tcp reset"),
    ])
    .expect("router rules");
    let ports = "1-1024,49152-65535";
    let expected: Expected = expand(ports)
        .into_iter()
        .map(|p| {
            let state = if open.contains(&p) {
                "open"
            } else if p >= 49152 || prohibited.contains(&p) {
                "filtered"
            } else {
                "closed"
            };
            (p, state)
        })
        .collect();
    let target = lab.server_v4().to_string();
    let mut rows = vec![portprobe_run(&lab, Ns::Client, &target, ports, &expected)];
    rows.extend(nmap_runs(&lab, Ns::Client, &target, ports, &expected));
    print_table(
        "(b) through the nftables router: TCP 1-1024 and 49152-65535 (17 408 ports: 5 open, 16 387 dropped or prohibited, 2 reset)",
        &rows,
    );
}
