//! `portprobe serve` in the lab's client namespace, probing the server
//! through the router's nftables rules: a real Prometheus scrapes it in the
//! multi-target pattern, and its query API gives a port's state with the
//! reason and the router where it stops, and the shipped alert rules say
//! so; a target outside the allow-list gets 403 and not one packet (the
//! router counts); a scrape's deadline follows Prometheus' header; fifty
//! scrapes at once stay within the shared limit; and the page works in a
//! real headless Chromium.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http;
use support::lab::{Lab, Ns};
use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");
const PYTHON: &str = "/usr/bin/python3";

/// A GET from inside the client namespace: status and body.
fn get(lab: &Lab, at: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    let (path, headers) = (path.to_string(), headers.to_string());
    let r = lab
        .run_in(Ns::Client, move || http::get(at, &path, &headers))
        .unwrap()
        .unwrap();
    (r.code, r.body)
}

/// The exporter in the client namespace, allowed to probe the server's
/// IPv4 network only.
fn exporter(lab: &Lab, extra: &[&str]) -> (KillOnDrop, SocketAddr) {
    http::start_exporter(
        lab.cmd(Ns::Client, BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow",
                "198.18.1.0/24",
            ])
            .args(extra),
    )
}

/// The router drops TCP 5900 and rejects UDP 3283; the server listens on
/// TCP 3283 and 5988.
fn rules(lab: &Lab) -> support::lab::Listeners {
    lab.nft(&[
        "tcp dport 5900 drop",
        "udp dport 3283 reject with icmpx type admin-prohibited",
    ])
    .unwrap();
    lab.tcp_listeners(&[3283, 5988], false).unwrap()
}

#[test]
fn prometheus_scrapes_the_exporter_and_finds_where_ports_stop() {
    let Some(lab) = support::lab_or_skip_with(
        "prometheus_scrapes_the_exporter_and_finds_where_ports_stop",
        &["prometheus", "promtool"],
    ) else {
        return;
    };
    let _listeners = rules(&lab);
    let (_exporter, at) = exporter(&lab, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let alert_rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/prometheus/portprobe-rules.yml"
    );
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\n  evaluation_interval: 1s\n\
             rule_files:\n  - \"{alert_rules}\"\n\
             scrape_configs:\n  - job_name: portprobe\n    metrics_path: /probe\n    params:\n      product: [\"Apple Remote Desktop\"]\n\
             \x20   static_configs:\n      - targets: [\"198.18.1.2\"]\n\
             \x20   relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n\
             \x20     - source_labels: [__param_target]\n        target_label: instance\n\
             \x20     - target_label: __address__\n        replacement: \"{at}\"\n"
        ),
    )
    .unwrap();
    support::run(
        Command::new("promtool")
            .arg("check")
            .arg("config")
            .arg(&config),
    )
    .unwrap();
    let prom_at: SocketAddr = "127.0.0.1:9090".parse().unwrap();
    let _prometheus = KillOnDrop::spawn(
        lab.cmd(Ns::Client, "prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_at}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let api = |path: &str| -> Value {
        let (code, body) = get(&lab, prom_at, path, "");
        if code != 200 {
            return Value::Null;
        }
        serde_json::from_str(&body).unwrap_or(Value::Null)
    };
    // New targets are scraped on a 5 s timer: poll the query API.
    let query = |q: &str| -> Vec<Value> {
        let doc = api(&format!("/api/v1/query?query={}", form_encode(q)));
        doc["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut dropped = Vec::new();
    while dropped.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        dropped = query("portprobe_port_info{port=\"5900\",located_how!=\"\"}");
    }
    // TCP 5900 passes the router at hop 1 and goes no further: the router's
    // forward rule, or the host, drops it.
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let m = &dropped[0]["metric"];
    assert_eq!(m["instance"], "198.18.1.2");
    assert_eq!(
        [
            &m["state"],
            &m["reason"],
            &m["located_how"],
            &m["located_after"],
            &m["located_after_hop"]
        ],
        ["filtered", "no-response", "at-host", "198.18.0.1", "1"]
    );
    assert_eq!(m.get("reason_from"), None, "{m}");
    let rejected = query("portprobe_port_info{protocol=\"udp\",port=\"3283\"}");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let m = &rejected[0]["metric"];
    assert_eq!(
        (&m["state"], &m["reason"], &m["reason_from"]),
        (
            &Value::from("filtered"),
            &Value::from("admin-prohibited"),
            &Value::from("198.18.0.1")
        )
    );
    // The gauge names the port alone, whatever was found.
    let blocked = query("portprobe_port_blocked{port=\"5900\"}");
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0]["value"][1], "1");
    assert_eq!(blocked[0]["metric"].get("reason"), None);
    let open = query("portprobe_port_info{protocol=\"tcp\",port=\"5988\"}");
    assert_eq!(open[0]["metric"]["state"], "open");
    let success = query("probe_success{instance=\"198.18.1.2\"}");
    assert_eq!(
        success[0]["value"][1], "0",
        "a blocked port fails the probe"
    );
    // The shipped alert, pending (it fires after 10 minutes), already says
    // where the port stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    let description = loop {
        let alerts = api("/api/v1/alerts");
        let found = alerts["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                a["labels"]["alertname"] == "PortprobePortBlocked"
                    && a["labels"]["port"] == "5900"
                    && a["annotations"]["description"]
                        .as_str()
                        .is_some_and(|d| !d.contains(" blocked. "))
            })
            .map(|a| a["annotations"]["description"].clone());
        match found {
            Some(d) => break d,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(500)),
            None => panic!("no PortprobePortBlocked alert for TCP 5900: {alerts}"),
        }
    };
    let description = description.as_str().unwrap();
    eprintln!("PortprobePortBlocked (pending) says: {description}");
    assert!(
        description.starts_with("TCP 5900 to 198.18.1.2 dropped past 198.18.0.1 (hop 1), "),
        "{description}"
    );
}

/// The exporter locates blocked ports unless the scrape says `locate=0`.
#[test]
fn locating_on_probe_can_be_turned_off() {
    let Some(lab) = support::lab_or_skip("locating_on_probe_can_be_turned_off") else {
        return;
    };
    let _listeners = rules(&lab);
    let (_exporter, at) = exporter(&lab, &[]);
    let timeout = "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n";
    let info_5900 = |body: &str| {
        body.lines()
            .find(|l| l.starts_with("portprobe_port_info{") && l.contains("port=\"5900\""))
            .unwrap_or_else(|| panic!("no info series for 5900: {body}"))
            .to_string()
    };
    let started = Instant::now();
    let (code, body) = get(&lab, at, "/probe?target=198.18.1.2&product=ARD", timeout);
    let located_in = started.elapsed();
    assert_eq!(code, 200, "{body}");
    let located = info_5900(&body);
    assert!(
        located.contains(
            "located_how=\"at-host\",located_after_hop=\"1\",located_after=\"198.18.0.1\""
        ),
        "{located}"
    );
    let started = Instant::now();
    let (code, body) = get(
        &lab,
        at,
        "/probe?target=198.18.1.2&product=ARD&locate=0",
        timeout,
    );
    eprintln!(
        "a scrape of Apple Remote Desktop: {located_in:.2?} with its blocked ports located, {:.2?} with locate=0",
        started.elapsed()
    );
    assert_eq!(code, 200, "{body}");
    let unlocated = info_5900(&body);
    assert!(!unlocated.contains("located_"), "{unlocated}");
    assert!(unlocated.contains("reason=\"no-response\""), "{unlocated}");
    let (code, body) = get(
        &lab,
        at,
        "/probe?target=198.18.1.2&product=ARD&locate=2",
        "",
    );
    assert_eq!(code, 400, "{body}");
}

/// `q` encoded for a URL's query.
fn form_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn outside_the_allow_list_not_one_packet_and_the_deadline_follows_the_header() {
    let Some(lab) = support::lab_or_skip(
        "outside_the_allow_list_not_one_packet_and_the_deadline_follows_the_header",
    ) else {
        return;
    };
    let _listeners = rules(&lab);
    lab.nft_script(
        "add counter inet lab forbidden\nadd counter inet lab allowed\n\
         insert rule inet lab forward ip6 daddr 2001:db8:1::2 counter name forbidden\n\
         insert rule inet lab forward ip daddr 198.18.1.2 counter name allowed\n",
    )
    .unwrap();
    let (_exporter, at) = exporter(&lab, &[]);
    let (code, body) = get(&lab, at, "/probe?target=2001:db8:1::2&product=ARD", "");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("the target is not in this exporter's allow-list: nothing was sent"),
        "{body}"
    );
    // The allowed target, through the same router: the counters work.
    let started = Instant::now();
    let (code, body) = get(
        &lab,
        at,
        "/probe?target=198.18.1.2&product=ARD",
        "X-Prometheus-Scrape-Timeout-Seconds: 1.5\r\n",
    );
    let took = started.elapsed();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        lab.nft_counter("forbidden").unwrap().0,
        0,
        "a packet went to the forbidden target"
    );
    assert!(lab.nft_counter("allowed").unwrap().0 > 0);
    // The dropped port keeps the run from finishing within 1 s (1.5 s less
    // the margin): the answer comes in time and says the run is incomplete.
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?}"
    );
    assert!(
        body.contains("\nprobe_success{target=\"198.18.1.2\"} 0\n"),
        "{body}"
    );
}

#[test]
fn fifty_scrapes_at_once_share_the_limit() {
    let Some(lab) = support::lab_or_skip("fifty_scrapes_at_once_share_the_limit") else {
        return;
    };
    let _listeners = rules(&lab);
    let (exporter_process, at) = exporter(&lab, &["--concurrency", "64"]);
    let pid = exporter_process.id();
    let lab = Arc::new(lab);
    let done = Arc::new(AtomicBool::new(false));
    let most_in_use = Arc::new(AtomicU64::new(0));
    let watcher = std::thread::spawn({
        let (lab, done, most) = (
            Arc::clone(&lab),
            Arc::clone(&done),
            Arc::clone(&most_in_use),
        );
        move || {
            while !done.load(Ordering::Relaxed) {
                let (_, body) = get(&lab, at, "/metrics", "");
                if let Some(n) = body
                    .lines()
                    .find_map(|l| l.strip_prefix("portprobe_exporter_concurrency_in_use "))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    most.fetch_max(n, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let started = Instant::now();
    let scrapes: Vec<_> = (0..50)
        .map(|_| {
            let lab = Arc::clone(&lab);
            std::thread::spawn(move || get(&lab, at, "/probe?target=198.18.1.2&product=ARD", ""))
        })
        .collect();
    let answers: Vec<(u16, String)> = scrapes.into_iter().map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    for (code, body) in &answers {
        assert_eq!(*code, 200, "{body}");
        assert!(
            body.contains("portprobe_port_info{target=\"198.18.1.2\""),
            "{body}"
        );
    }
    let most = most_in_use.load(Ordering::Relaxed);
    assert!(most <= 64, "{most} probes in flight with a limit of 64");
    assert!(most > 0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    eprintln!(
        "50 scrapes of Apple Remote Desktop at once, --concurrency 64: {took:.2?}, at most {most} probes in flight, exporter peak memory {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
    assert!(peak_kib < 256 * 1024, "peak {peak_kib} KiB");
    let (_, metrics) = get(&lab, at, "/metrics", "");
    assert!(
        metrics
            .lines()
            .any(|l| l == "portprobe_exporter_probes_total{result=\"failure\"} 50"),
        "{metrics}"
    );
}

#[test]
fn the_page_works_in_a_real_browser() {
    let Some(lab) = support::lab_or_skip_with(
        "the_page_works_in_a_real_browser",
        &["chromium", "chromedriver"],
    ) else {
        return;
    };
    let selenium = Command::new(PYTHON)
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    if !selenium {
        assert!(!support::in_ci(), "python3-selenium is not installed");
        eprintln!("skipped the_page_works_in_a_real_browser: python3-selenium is not installed");
        return;
    }
    let _listeners = rules(&lab);
    let (_exporter, at) = exporter(&lab, &[]);
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/page.py");
    let out = lab
        .cmd(Ns::Client, PYTHON)
        .arg(script)
        .arg(format!("http://{at}/"))
        .args(["198.18.1.2", "Apple Remote Desktop"])
        .env("HOME", home.path())
        .env("SE_OFFLINE", "true")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("BLOCKED"), "{text}");
    assert!(text.contains("TCP 5900"), "{text}");
    assert!(text.contains("UDP 3283"), "{text}");
    assert!(text.contains("rejected by 198.18.0.1"), "{text}");
    assert!(text.contains("CRITICAL: 198.18.1.2"), "{text}");
    let recent = text.split("--- last probes ---").nth(1).unwrap();
    assert!(
        recent.contains("198.18.1.2 Apple Remote Desktop CRITICAL"),
        "{recent}"
    );
}

#[test]
fn a_large_scrape_of_a_dropping_target_leaves_room_for_a_small_one() {
    let Some(lab) =
        support::lab_or_skip("a_large_scrape_of_a_dropping_target_leaves_room_for_a_small_one")
    else {
        return;
    };
    let _listeners = rules(&lab);
    lab.nft(&["tcp dport 20000-65000 drop"]).unwrap();
    let (_exporter, at) = exporter(&lab, &["--max-time", "12s"]);
    let lab = Arc::new(lab);
    // 45 001 ports that never answer: more than the 1 024 slots of the
    // default concurrency, each held for a whole timeout.
    let large = std::thread::spawn({
        let lab = Arc::clone(&lab);
        move || {
            get(
                &lab,
                at,
                "/probe?target=198.18.1.2&ports=20000-65000",
                "X-Prometheus-Scrape-Timeout-Seconds: 12\r\n",
            )
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let (code, body) = get(
        &lab,
        at,
        "/probe?target=198.18.1.2&product=ARD",
        "X-Prometheus-Scrape-Timeout-Seconds: 5\r\n",
    );
    let took = started.elapsed();
    let (large_code, large_body) = large.join().unwrap();
    eprintln!(
        "a 6-port scrape while a 45 001-port scrape of a dropping target runs: {code} after {took:.2?}"
    );
    assert_eq!(code, 200, "the small scrape: {body}");
    // Apple Remote Desktop's six ports, every one probed.
    let probed = body
        .lines()
        .filter(|l| l.starts_with("portprobe_port_info{"))
        .count();
    assert_eq!(probed, 6, "{body}");
    assert_eq!(
        large_code,
        200,
        "{}",
        &large_body[..large_body.len().min(2000)]
    );
    assert!(large_body.contains("\nprobe_success{target=\"198.18.1.2\"} 0\n"));
}
