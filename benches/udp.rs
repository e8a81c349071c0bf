//! UDP benchmark: portprobe and `nmap -sU -Pn -n` side by side in one run,
//! with wall times and whether each tool classified every port correctly.
//!
//! (a) the real servers (Debian's dnsmasq, chrony, snmpd, charon, kamailio,
//!     avahi, ...) in the lab's server namespace, probed from that namespace
//!     itself (mDNS answers on-link queries only): every one should be open;
//!     rsyslog never answers, so 514 is left out.
//! (b) through the lab's router, with Linux's default ICMP rate limit in the
//!     target: 2 open, 12 closed, 132 dropped and 1 prohibited port.
//! (c) every UDP port of a host whose router drops them all, with wall time
//!     and peak memory: what thousands of waiting attempts cost.
//!
//! Run as root: `cargo bench --bench udp`. Needs `nmap` for the comparison.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{
    Expected, Measured, measure, measure_peak, nmap_states, output_and_peak, portprobe_states,
    print_table,
};
use support::lab::{Lab, Ns};
use support::peers::{Peer, Peers};

fn runs(
    lab: &Lab,
    ns: Ns,
    target: &str,
    ports: &str,
    nmap_ports: &str,
    expected: &Expected,
) -> Vec<Measured> {
    let bin = env!("CARGO_BIN_EXE_portprobe");
    let mut rows = vec![measure("portprobe (as nobody)", expected, || {
        let out = lab
            .cmd_as_nobody(ns, bin)
            .expect("command as nobody")
            .args([target, "--ports", ports, "--json"])
            .output()
            .expect("run portprobe");
        portprobe_states(&out.stdout, "udp")
    })];
    if support::have_program("nmap") {
        rows.push(measure("nmap -sU -Pn -n (as root)", expected, || {
            let out = lab
                .cmd(ns, "nmap")
                .args(["-sU", "-Pn", "-n", "-p", nmap_ports, target, "-oX", "-"])
                .output()
                .expect("run nmap");
            nmap_states(&String::from_utf8_lossy(&out.stdout), "udp")
        }));
    } else {
        println!("(nmap is not installed: install Debian's nmap for the comparison)");
    }
    rows
}

fn main() {
    if let Err(why) = support::lab_available() {
        println!("skipped the UDP benchmark: {why}");
        return;
    }
    let lab = Lab::new().expect("build the lab");
    println!(
        "UDP benchmark on {} ({} cores)",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let target = lab.server_v4().to_string();

    // (a) the real servers.
    let served: Vec<Peer> = Peer::ALL
        .iter()
        .copied()
        .filter(|p| *p != Peer::Syslog)
        .collect();
    let peers =
        Peers::start(lab.server_ns(), lab.server_v4(), &served).expect("start the real servers");
    let mut ports: Vec<u16> = served
        .iter()
        .flat_map(|p| p.udp_ports().iter().copied())
        .collect();
    ports.retain(|&p| p != 20048);
    ports.sort();
    ports.dedup();
    let list: Vec<String> = ports.iter().map(|p| format!("{p}/udp")).collect();
    let nmap_list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let expected: Expected = ports.iter().map(|&p| (p, "open")).collect();
    let rows = runs(
        &lab,
        Ns::Server,
        &target,
        &list.join(","),
        &nmap_list.join(","),
        &expected,
    );
    print_table(
        &format!(
            "(a) {} real UDP servers, probed on their own link: UDP {}",
            ports.len(),
            nmap_list.join(", ")
        ),
        &rows,
    );
    drop(peers);

    // (b) through the router, with the target's default ICMP rate limit.
    let _echo = lab.udp_echo(&[7, 7777], false).expect("echo sockets");
    let server = lab.server_v4();
    lab.nft(&[
        &format!("ip daddr {server} udp dport 41001-41132 drop"),
        &format!("ip daddr {server} udp dport 42001 reject with icmpx type admin-prohibited"),
    ])
    .expect("router rules");
    let mut expected = Expected::new();
    for p in [7, 7777] {
        expected.insert(p, "open");
    }
    for p in 40001..=40012 {
        expected.insert(p, "closed");
    }
    for p in 41001..=41132 {
        expected.insert(p, "open|filtered");
    }
    expected.insert(42001, "filtered");
    let rows = runs(
        &lab,
        Ns::Client,
        &target,
        "7/udp,7777/udp,40001-40012/udp,41001-41132/udp,42001/udp",
        "7,7777,40001-40012,41001-41132,42001",
        &expected,
    );
    print_table(
        "(b) through the router, default ICMP rate limit in the target: 2 open, 12 closed, 132 dropped, 1 prohibited",
        &rows,
    );

    // (c) every port of a host whose router drops UDP.
    lab.nft_flush().expect("flush the router's rules");
    lab.nft(&[&format!("ip daddr {server} meta l4proto udp drop")])
        .expect("router rules");
    let expected: Expected = (1..=65535).map(|p| (p, "open|filtered")).collect();
    let bin = env!("CARGO_BIN_EXE_portprobe");
    let mut rows = vec![measure_peak("portprobe (as nobody)", &expected, || {
        let (out, peak) = output_and_peak(
            lab.cmd_as_nobody(Ns::Client, bin)
                .expect("command as nobody")
                .args([&target, "--ports", "1-65535/udp", "--json"]),
        );
        (portprobe_states(&out, "udp"), peak)
    })];
    if support::have_program("nmap") {
        // nmap's defaults take over ten minutes here; this is the quickest
        // way a user would ask it for the whole range.
        let tool = "nmap -sU -Pn -n -p- --min-rate 5000 --max-retries 1 (as root)";
        rows.push(measure_peak(tool, &expected, || {
            let (out, peak) = output_and_peak(lab.cmd(Ns::Client, "nmap").args([
                "-sU",
                "-Pn",
                "-n",
                "-p-",
                "--min-rate",
                "5000",
                "--max-retries",
                "1",
                &target,
                "-oX",
                "-",
            ]));
            (nmap_states(&String::from_utf8_lossy(&out), "udp"), peak)
        }));
    }
    print_table(
        "(c) all 65 535 UDP ports of a host whose router drops UDP",
        &rows,
    );
}
