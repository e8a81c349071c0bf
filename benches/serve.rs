//! Exporter benchmark, on the loopback of the lab's client namespace.
//!
//! (a) `portprobe serve` with an open-file limit of 20 000, flooded with
//!     45 000 connections (silent, with half a request head, or kept alive
//!     after a request whose answer is never read) from 45 000 source
//!     addresses of 127.0.0.0/8, held by three processes (this benchmark
//!     run again as a worker, each within its own file limit): how long
//!     `/metrics` and a probe take to answer while they are held, how many
//!     connections the exporter keeps, and its peak memory.
//! (b) the time from SIGTERM until the exporter has exited, while a client
//!     holds half a request head open.
//!
//! Run as root: `cargo bench --bench serve`.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{RUNS, median, peak_memory};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::http::{self, HALF_A_REQUEST, connect_from, sample};
use support::lab::{Lab, Ns};
use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");
const EXPORTER_FILES: u64 = 20_000;
const WORKERS: usize = 3;
const PER_WORKER: usize = 15_000;
const ASKS: usize = 5;

/// A worker: opens `n` connections to `at` from 127.(1+w).x.y, holds them
/// until its standard input closes.
fn worker(w: usize, at: SocketAddr, n: usize) {
    support::raise_open_files(n as u64 + 64);
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let source = IpAddr::V4(Ipv4Addr::new(
            127,
            1 + w as u8,
            (i / 200 % 250) as u8,
            1 + (i % 200) as u8,
        ));
        let Ok(mut s) = connect_from(source, at, Duration::from_secs(2)) else {
            continue;
        };
        let _ = match i % 50 {
            0 | 25 => s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            k if k % 10 == 5 => s.write_all(HALF_A_REQUEST),
            _ => Ok(()),
        };
        held.push(s);
    }
    println!("held {}", held.len());
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn exporter(lab: &Lab) -> (KillOnDrop, SocketAddr) {
    http::start_exporter(
        lab.cmd(Ns::Client, "prlimit")
            .arg(format!("--nofile={EXPORTER_FILES}:{EXPORTER_FILES}"))
            .args([
                BIN,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow",
                "127.0.0.1",
            ]),
    )
}

/// A GET from the client namespace, and how long it took.
fn timed_get(lab: &Lab, at: SocketAddr, path: &str) -> (Duration, http::Response) {
    let path = path.to_string();
    let started = Instant::now();
    let r = lab
        .run_in(Ns::Client, move || {
            http::get_within(at, &path, "", Duration::from_secs(30))
        })
        .expect("run in the client namespace")
        .expect("an answer");
    (started.elapsed(), r)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--flood-worker") {
        let w = args[at + 1].parse().expect("worker number");
        let to = args[at + 2].parse().expect("address");
        let n = args[at + 3].parse().expect("count");
        worker(w, to, n);
        return;
    }
    if let Err(why) = support::lab_available() {
        println!("skipped the exporter benchmark: {why}");
        return;
    }
    let lab = Lab::new().expect("build the lab");

    // (a) the flood.
    let (exporter_process, at) = exporter(&lab);
    let me = std::env::current_exe().expect("this benchmark's path");
    let started = Instant::now();
    let mut workers: Vec<KillOnDrop> = (0..WORKERS)
        .map(|w| {
            KillOnDrop::spawn(
                lab.cmd(Ns::Client, &me)
                    .args(["--flood-worker", &w.to_string(), &at.to_string()])
                    .arg(PER_WORKER.to_string())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped()),
            )
            .expect("start a worker")
        })
        .collect();
    let mut held = 0;
    for w in &mut workers {
        let mut line = String::new();
        BufReader::new(w.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        held += line
            .trim()
            .strip_prefix("held ")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("not a worker's count: {line:?}"));
    }
    let flooded = started.elapsed();
    let mut metrics_times = Vec::new();
    let mut last = String::new();
    for _ in 0..ASKS {
        let (took, r) = timed_get(&lab, at, "/metrics");
        assert_eq!(r.code, 200, "{}", r.body);
        metrics_times.push(took);
        last = r.body;
        std::thread::sleep(Duration::from_millis(200));
    }
    let (probe_took, probe) = timed_get(&lab, at, "/probe?target=127.0.0.1&ports=9");
    assert_eq!(probe.code, 200, "{}", probe.body);
    let peak = peak_memory(exporter_process.id()).unwrap_or(0);
    let series = |s: &str| sample(&last, s).unwrap_or(f64::NAN);
    drop(workers);

    println!(
        "\n(a) {held} connections held from {held} source addresses (opened in {:.1} s) against an exporter limited to {EXPORTER_FILES} files\n",
        flooded.as_secs_f64()
    );
    println!(
        "| /metrics while held ({ASKS} asks) | a probe while held | connections open (cap) | closed to make room | peak memory |"
    );
    println!("|---|---|---|---|---|");
    let mut sorted = metrics_times.clone();
    sorted.sort();
    println!(
        "| median {} (first {}, slowest {}) | {} | {} ({}) | {} | {:.1} MiB |",
        ms(median(&metrics_times)),
        ms(metrics_times[0]),
        ms(sorted[sorted.len() - 1]),
        ms(probe_took),
        series("portprobe_exporter_connections"),
        series("portprobe_exporter_connections_limit{scope=\"all\"}"),
        series("portprobe_exporter_connections_closed_total{reason=\"reused\"}"),
        peak as f64 / 1024.0
    );
    drop(exporter_process);

    // (b) SIGTERM with a half-sent request held.
    let mut exits = Vec::new();
    for _ in 0..RUNS {
        let (mut exporter_process, at) = exporter(&lab);
        let _half = lab
            .run_in(Ns::Client, move || {
                let mut s = TcpStream::connect(at)?;
                s.write_all(HALF_A_REQUEST)?;
                Ok::<_, std::io::Error>(s)
            })
            .expect("run in the client namespace")
            .expect("a half-sent request");
        std::thread::sleep(Duration::from_millis(300));
        let signalled = Instant::now();
        kill(Pid::from_raw(exporter_process.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        let status = loop {
            if let Some(status) = exporter_process.try_wait().expect("wait") {
                break status;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(60),
                "still running a minute after SIGTERM"
            );
            std::thread::sleep(Duration::from_micros(200));
        };
        assert_eq!(status.code(), Some(0), "{status}");
        exits.push(signalled.elapsed());
    }
    exits.sort();
    println!("\n(b) SIGTERM with a half-sent request held\n");
    println!("| exit after SIGTERM ({RUNS} runs) | exit code |");
    println!("|---|---|");
    println!(
        "| median {} (fastest {}, slowest {}) | 0 |",
        ms(median(&exits)),
        ms(exits[0]),
        ms(exits[exits.len() - 1])
    );
}
