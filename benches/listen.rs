//! Responder benchmark, in the lab (client, nftables router, server).
//!
//! (a) `portprobe listen -p QTSS -p Xsan` in the server namespace: the time
//!     from start until all 19 414 ports (3 030 UDP, 16 384 TCP) are bound
//!     (and the product's few other ports) and answered on, and its peak memory after a client has swept the
//!     UDP range.
//! (b) proving QuickTime Streaming's 6970-9999/udp through the router, which
//!     drops 8000-8999 and rejects 9500-9599: `portprobe --responder` (as
//!     nobody) against `nmap -sU` (as root) on the same ports. The truth is
//!     open for the allowed ports and filtered for the others; nmap can say
//!     no more than `open|filtered` for a port that answers nothing.
//!
//! Run as root: `cargo bench --bench listen`. Needs `nmap` for the
//! comparison.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    Expected, RUNS, measure_peak, nmap_states, output_and_peak, peak_memory, portprobe_states,
    print_table,
};
use support::lab::{Lab, Ns};
use support::proc::KillOnDrop;

const SECRET: &str = "the benchmark's shared secret";

/// Starts the responder and returns it with the time it took to be ready.
fn start_responder(lab: &Lab, key: &std::path::Path) -> (KillOnDrop, Duration, String) {
    let start = Instant::now();
    let mut child = KillOnDrop::spawn(
        lab.server_cmd(env!("CARGO_BIN_EXE_portprobe"))
            .args(["listen", "-p", "QTSS", "-p", "Xsan", "--secret-file"])
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    )
    .expect("start portprobe listen");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.starts_with("answering hellos") {
        line.clear();
        assert!(
            out.read_line(&mut line).expect("read") > 0,
            "portprobe listen ended"
        );
    }
    let took = start.elapsed();
    // Keep reading so that the summary at the end never blocks it.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, took, line.trim_end().to_string())
}

fn stop(mut child: KillOnDrop) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    child.wait_for(Duration::from_secs(10));
}

fn main() {
    if let Err(why) = support::lab_available() {
        println!("skipped the responder benchmark: {why}");
        return;
    }
    let lab = Lab::new().expect("build the lab");
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let key = dir.path().join("key");
    std::fs::write(&key, SECRET).expect("write the key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod the key");

    // (a) binding.
    let mut binds = Vec::new();
    for _ in 0..RUNS {
        let (child, took, _) = start_responder(&lab, &key);
        binds.push(took);
        stop(child);
    }
    binds.sort();
    let (responder, _, answering) = start_responder(&lab, &key);
    let responder_pid = responder.id();
    let after_bind = peak_memory(responder_pid).unwrap_or(0);

    // (b) proving the RTP range through the router.
    let server = lab.server_v4().to_string();
    lab.nft(&[
        &format!("ip daddr {server} udp dport 8000-8999 drop"),
        &format!("ip daddr {server} udp dport 9500-9599 reject with icmpx type admin-prohibited"),
    ])
    .expect("router rules");
    let expected: Expected = (6970..=9999)
        .map(|p| {
            let state = if (8000..=8999).contains(&p) || (9500..=9599).contains(&p) {
                "filtered"
            } else {
                "open"
            };
            (p, state)
        })
        .collect();
    let bin = env!("CARGO_BIN_EXE_portprobe");
    let mut rows = vec![measure_peak(
        "portprobe --responder (as nobody)",
        &expected,
        || {
            let (out, peak) = output_and_peak(
                lab.cmd_as_nobody(Ns::Client, bin)
                    .expect("command as nobody")
                    .args([&server, "--ports", "6970-9999/udp", "--responder"])
                    .args(["--json", "--no-locate"])
                    .env("PORTPROBE_SECRET", SECRET),
            );
            (portprobe_states(&out, "udp"), peak)
        },
    )];
    if support::have_program("nmap") {
        // With its defaults nmap slows to the router's ICMP allowance and
        // takes many minutes here; these are the options a user would add.
        let tool = "nmap -sU -Pn -n --min-rate 5000 --max-retries 1 (as root)";
        rows.push(measure_peak(tool, &expected, || {
            let (out, peak) = output_and_peak(
                lab.cmd(Ns::Client, "nmap")
                    .args(["-sU", "-Pn", "-n", "-p", "6970-9999"])
                    .args(["--min-rate", "5000", "--max-retries", "1"])
                    .args([&server, "-oX", "-"]),
            );
            (nmap_states(&String::from_utf8_lossy(&out), "udp"), peak)
        }));
    } else {
        println!("(nmap is not installed: install Debian's nmap for the comparison)");
    }
    let after_sweeps = peak_memory(responder_pid).unwrap_or(0);
    stop(responder);

    println!("\n(a) portprobe listen -p QTSS -p Xsan: {answering}\n");
    println!(
        "| start until every port is answered on ({RUNS} runs) | peak memory after binding | after {} client sweeps |",
        rows.len() * RUNS
    );
    println!("|---|---|---|");
    println!(
        "| median {:.2} s (fastest {:.2} s, slowest {:.2} s) | {:.1} MiB | {:.1} MiB |",
        binds[binds.len() / 2].as_secs_f64(),
        binds[0].as_secs_f64(),
        binds[binds.len() - 1].as_secs_f64(),
        after_bind as f64 / 1024.0,
        after_sweeps as f64 / 1024.0,
    );
    print_table(
        "(b) 6970-9999/udp through the router (8000-8999 dropped, 9500-9599 rejected; the rest open)",
        &rows,
    );
}
