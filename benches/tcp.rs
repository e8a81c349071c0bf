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

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{Expected, Measured, measure, nmap_states, portprobe_states, print_table};
use support::lab::{Lab, Ns};

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
                nmap_states(&String::from_utf8_lossy(&out.stdout), "tcp")
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
        portprobe_states(&out.stdout, "tcp")
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
    let expected: Expected = common::expand(ports)
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
