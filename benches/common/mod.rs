//! What the benchmarks share: timing runs, checking every port's state
//! against the expected one, reading nmap's XML, and printing tables.
//!
//! Every benchmark compiles this module on its own and uses a different part
//! of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const RUNS: usize = 3;

/// Expected state per port: "open", "closed" or "filtered".
pub type Expected = BTreeMap<u16, &'static str>;

pub struct Measured {
    pub tool: String,
    pub times: Vec<Duration>,
    pub exact: usize,
    pub worst: String,
    /// Peak resident memory of each run, in KiB, where it was measured.
    pub peaks: Vec<u64>,
}

impl Measured {
    /// No runs yet.
    pub fn new(tool: &str) -> Self {
        Measured {
            tool: tool.to_string(),
            times: Vec::new(),
            exact: 0,
            worst: String::new(),
            peaks: Vec::new(),
        }
    }

    /// One run's time, and whether it got every port right.
    pub fn record(&mut self, time: Duration, expected: &Expected, got: &BTreeMap<u16, String>) {
        self.times.push(time);
        let diffs = differences(expected, got);
        if diffs.is_empty() {
            self.exact += 1;
        } else if self.worst.is_empty() || diffs.len() > self.worst.split(';').count() {
            let shown: Vec<String> = diffs.iter().take(4).cloned().collect();
            self.worst = format!("{} wrong: {}", diffs.len(), shown.join("; "));
        }
    }
}

pub fn median(times: &[Duration]) -> Duration {
    let mut t = times.to_vec();
    t.sort();
    t[t.len() / 2]
}

/// States from portprobe's JSON, for one protocol.
pub fn portprobe_states(json: &[u8], protocol: &str) -> BTreeMap<u16, String> {
    let doc: serde_json::Value = serde_json::from_slice(json).expect("portprobe JSON");
    doc["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["protocol"] == protocol)
        .map(|r| {
            (
                r["port"].as_u64().unwrap() as u16,
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn expand(ranges: &str) -> Vec<u16> {
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

/// States from nmap's XML for one protocol: listed ports, and the port
/// ranges of every `extraports` group.
pub fn nmap_states(xml: &str, protocol: &str) -> BTreeMap<u16, String> {
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
            if let (Some(ports), true) = (attr(tag, "ports"), attr(tag, "proto") == Some(protocol))
            {
                for p in expand(ports) {
                    out.insert(p, state.clone());
                }
            }
            reasons = &reasons[j + 1..];
        }
        rest = &rest[block_end..];
    }
    let mut rest = xml;
    let open_tag = format!("<port protocol=\"{protocol}\"");
    while let Some(i) = rest.find(&open_tag) {
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
pub fn differences(expected: &Expected, got: &BTreeMap<u16, String>) -> Vec<String> {
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

pub fn measure(
    tool: &str,
    expected: &Expected,
    mut run: impl FnMut() -> BTreeMap<u16, String>,
) -> Measured {
    measure_peak(tool, expected, || (run(), None))
}

/// As [`measure`], for runs that also report their peak memory (KiB).
pub fn measure_peak(
    tool: &str,
    expected: &Expected,
    run: impl FnMut() -> (BTreeMap<u16, String>, Option<u64>),
) -> Measured {
    measure_rested(tool, expected, Duration::ZERO, run)
}

/// As [`measure_peak`], waiting `rest` before each run, outside the timing
/// (for routers' ICMP allowances to refill, so that every run starts as a
/// first run would).
pub fn measure_rested(
    tool: &str,
    expected: &Expected,
    rest: Duration,
    mut run: impl FnMut() -> (BTreeMap<u16, String>, Option<u64>),
) -> Measured {
    let mut m = Measured::new(tool);
    for _ in 0..RUNS {
        std::thread::sleep(rest);
        let start = Instant::now();
        let (got, peak) = run();
        m.peaks.extend(peak);
        m.record(start.elapsed(), expected, &got);
    }
    m
}

pub fn print_table(title: &str, rows: &[Measured]) {
    println!("\n{title}\n");
    let memory = rows.iter().any(|m| !m.peaks.is_empty());
    if memory {
        println!(
            "| tool | median wall time ({RUNS} runs) | peak memory (largest of {RUNS}) | runs exact | worst run |"
        );
        println!("|---|---|---|---|---|");
    } else {
        println!("| tool | median wall time ({RUNS} runs) | runs exact | worst run |");
        println!("|---|---|---|---|");
    }
    for m in rows {
        let peak = m.peaks.iter().max().map_or("-".to_string(), |k| {
            format!("{:.0} MiB", *k as f64 / 1024.0)
        });
        let peak = if memory {
            format!(" {peak} |")
        } else {
            String::new()
        };
        println!(
            "| {} | {:.2} s |{peak} {}/{} | {} |",
            m.tool,
            median(&m.times).as_secs_f64(),
            m.exact,
            RUNS,
            if m.worst.is_empty() { "-" } else { &m.worst }
        );
    }
}

/// Runs `cmd` to its end and returns its standard output and its peak
/// resident memory (KiB): the high-water mark (`VmHWM`) of the program it
/// ends up running, read from /proc every few milliseconds. (The rusage a
/// parent reaps is no use here: a child started with vfork inherits the
/// parent's high-water mark across exec.)
pub fn output_and_peak(cmd: &mut std::process::Command) -> (Vec<u8>, Option<u64>) {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let pid = child.id();
    let mut peak = None;
    while child.try_wait().expect("wait").is_none() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // Skip the launchers (`ip netns exec`, `setpriv`) the program is run by.
        if !matches!(comm.trim(), "" | "ip" | "setpriv") {
            peak = peak.max(peak_memory(pid));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (reader.join().expect("reader"), peak)
}

/// The peak resident memory (`VmHWM`, KiB) of a running process.
pub fn peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
}
