//! Report benchmark: how long each format takes to render a large run, and
//! how long the user waits for a whole run in the lab.
//!
//! (a) 65 535 TCP results, as the lab's router leaves them (`--ports
//!     1-65535`: a few open, TCP 5900 and 49152-65535 dropped, 311 and 625
//!     rejected, the rest closed), and the 16 385 ports of `-p Xsan`
//!     under the same rules, rendered in every format: no network, any
//!     user;
//! (b) as root, `portprobe 198.18.1.2 --ports 1-65535 --no-locate` through
//!     the lab's router, as `nobody` in the client namespace, as text and
//!     as JSON: the wall time from start to exit, and what the report says
//!     it took.
//!
//! `cargo bench --bench render`.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use portprobe::catalog::{Catalog, Plan};
use portprobe::engine::{PortResult, Reason, Resolved, ResolvedBy, RunOutcome, State, Target};
use portprobe::port::{Transport, parse_port_list};
use portprobe::report::{self, Report, TextOptions};
use support::lab::{Lab, Ns};

const SERVER: IpAddr = IpAddr::V4(Lab::SERVER_V4);
const ROUTER: IpAddr = IpAddr::V4(Lab::ROUTER_V4);
/// Renders timed per format; the median is printed.
const RENDERS: usize = 5;
/// The server's listening TCP ports in the lab runs.
const OPEN: [u16; 5] = [22, 80, 443, 548, 631];
/// TCP ports the router rejects with ICMP admin-prohibited.
const REJECTED: [u16; 2] = [311, 625];

/// What the lab's router makes of one port.
fn outcome(transport: Transport, port: u16) -> PortResult {
    let base = PortResult {
        rtt: Some(Duration::from_micros(80)),
        ..PortResult::new(
            SERVER,
            portprobe::catalog::probe_for(transport, port),
            port,
            State::Closed,
            Reason::ConnRefused,
        )
    };
    match (transport, port) {
        (Transport::Tcp, p) if p == 5900 || p >= 49152 => PortResult {
            state: State::Filtered,
            reason: Reason::NoResponse,
            rtt: None,
            attempts: 2,
            ..base
        },
        (Transport::Tcp, p) if REJECTED.contains(&p) => PortResult {
            state: State::Filtered,
            reason: Reason::AdminProhibited,
            reason_from: Some(ROUTER),
            ..base
        },
        (Transport::Tcp, p) if OPEN.contains(&p) => PortResult {
            state: State::Open,
            reason: Reason::SynAck,
            ..base
        },
        (Transport::Tcp, _) => base,
        (Transport::Udp, _) => PortResult {
            reason: Reason::PortUnreachable,
            reason_from: Some(SERVER),
            ..base
        },
    }
}

/// The report of one run of `plan` through the lab's rules.
fn report(plan: &Plan, products: Vec<String>) -> Report {
    let outcome = RunOutcome {
        results: plan
            .ports
            .iter()
            .map(|p| outcome(p.transport, p.port))
            .collect(),
        unprobed: 0,
        interrupted: false,
        out_of_time: false,
        addresses: Vec::new(),
        duration: Duration::from_millis(1090),
        ignored: (Vec::new(), 0),
    };
    Report::new(
        vec![(
            SERVER.to_string(),
            Ok(Resolved {
                targets: vec![Target::new(SERVER)],
                by: ResolvedBy::Literal,
            }),
        )],
        products,
        plan,
        outcome,
    )
}

/// The median time of [`RENDERS`] calls of `f`.
fn timed(mut f: impl FnMut() -> usize) -> Duration {
    let mut times: Vec<Duration> = (0..RENDERS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn render_table(title: &str, plan: &Plan, products: Vec<String>) {
    let built = timed(|| report(plan, products.clone()).targets[0].rows.len());
    let r = report(plan, products);
    let plain = TextOptions::default();
    let verbose = TextOptions {
        verbose: true,
        ..plain
    };
    let rows: [(&str, Duration); 6] = [
        ("building the report", built),
        ("text", timed(|| report::text::render(&r, plain).len())),
        ("text -v", timed(|| report::text::render(&r, verbose).len())),
        ("JSON", timed(|| report::json::render(&r).len())),
        ("Nagios", timed(|| report::nagios::render(&r).len())),
        ("Prometheus", timed(|| report::prometheus::render(&r).len())),
    ];
    println!("\n{title}\n");
    println!("| format | median time ({RENDERS} renders) |");
    println!("|---|---|");
    for (format, t) in rows {
        println!("| {format} | {:.1} ms |", t.as_secs_f64() * 1e3);
    }
}

/// The lab run as text and as JSON: wall time from start to exit, and the
/// time the report states.
fn lab_runs() {
    if let Err(why) = support::lab_available() {
        println!("\nskipped the lab runs: {why}");
        return;
    }
    let lab = Lab::new().expect("build the lab");
    let _listeners = lab.tcp_listeners(&OPEN, false).expect("listeners");
    let server = lab.server_v4();
    lab.nft(&[
        &format!("ip daddr {server} tcp dport {{ 5900, 49152-65535 }} drop"),
        &format!(
            "ip daddr {server} tcp dport {{ 311, 625 }} reject with icmpx type admin-prohibited"
        ),
    ])
    .expect("router rules");
    let bin = env!("CARGO_BIN_EXE_portprobe");
    let target = server.to_string();
    println!(
        "\n(b) portprobe {target} --ports 1-65535 --no-locate through the router, as nobody\n"
    );
    println!(
        "| format | median wall time ({} runs) | fastest | slowest | what the median run's report says |",
        common::RUNS
    );
    println!("|---|---|---|---|---|");
    for (format, extra) in [("text", &[][..]), ("JSON", &["--json"][..])] {
        let mut runs: Vec<(Duration, String)> = (0..common::RUNS)
            .map(|_| {
                let mut cmd = lab
                    .cmd_as_nobody(Ns::Client, bin)
                    .expect("command as nobody");
                cmd.args([target.as_str(), "--ports", "1-65535", "--no-locate"])
                    .args(extra);
                let start = Instant::now();
                let out = cmd.output().expect("run portprobe");
                let took = start.elapsed();
                (took, stated(&String::from_utf8_lossy(&out.stdout)))
            })
            .collect();
        runs.sort_by_key(|(took, _)| *took);
        let (median, said) = &runs[runs.len() / 2];
        println!(
            "| {format} | {:.2} s | {:.2} s | {:.2} s | {said} |",
            median.as_secs_f64(),
            runs[0].0.as_secs_f64(),
            runs[runs.len() - 1].0.as_secs_f64()
        );
    }
}

/// The time a report states: the text's last line, or JSON's durations.
fn stated(output: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(output) {
        Ok(doc) => match doc.get("probing_ms") {
            Some(probing) => format!("duration_ms {}, probing_ms {probing}", doc["duration_ms"]),
            None => format!("duration_ms {}", doc["duration_ms"]),
        },
        Err(_) => output.lines().last().unwrap_or_default().to_string(),
    }
}

fn main() {
    println!(
        "Report benchmark on {} ({} cores)",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let c = Catalog::builtin();
    let all = c.plan(&[], &parse_port_list("1-65535").unwrap());
    render_table(
        "(a) rendering 65 535 TCP results (5 open, 16 385 dropped, 2 rejected, the rest closed)",
        &all,
        Vec::new(),
    );
    let xsan = c.find_product("Xsan").unwrap();
    let plan = c.plan(&[xsan], &[]);
    render_table(
        &format!(
            "(a) rendering -p Xsan: {} results (TCP 49152-65535 dropped)",
            plan.ports.len()
        ),
        &plan,
        vec![xsan.name.clone()],
    );
    lab_runs();
}
