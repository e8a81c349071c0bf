//! `portprobe serve` in the lab's client namespace, probing the server
//! through the router's nftables rules: a real Prometheus scrapes it in the
//! multi-target pattern, and its query API gives a port's state with the
//! reason and the router where it stops, and the shipped alert rules say
//! so; a target outside the allow-list gets 403 and not one packet (the
//! router counts); a scrape's deadline follows Prometheus' header; fifty
//! scrapes at once stay within the shared limit; the page is a report a
//! real headless Chromium shows at a phone's and a desktop's width; more
//! idle and half-sent connections than the exporter has descriptors leave
//! it answering; SIGTERM lets a probe in flight finish while nothing
//! else holds it up; and blackbox_exporter's scrape configuration for
//! `tcp_connect` works against it with only the exporter's address
//! changed.

mod support;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use support::http::{self, HALF_A_REQUEST, closed_within, connect_from, form_encode, sample};
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
    // docs/monitoring.md shows this answer and the alert's description.
    eprintln!("the query API answers: {}", dropped[0]);
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

/// A Prometheus configuration that scrapes the exporter at `at`: one job
/// per `(name, params, targets)`, each in the multi-target pattern.
fn prometheus_config(at: SocketAddr, jobs: &[(&str, &str, &str)]) -> String {
    let mut yml =
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\nscrape_configs:\n".to_string();
    for (name, params, targets) in jobs {
        yml.push_str(&format!(
            "  - job_name: {name}\n    metrics_path: /probe\n    params:\n{params}\
             \x20   static_configs:\n      - targets: [{targets}]\n\
             \x20   relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n\
             \x20     - source_labels: [__param_target]\n        target_label: instance\n\
             \x20     - target_label: __address__\n        replacement: \"{at}\"\n"
        ));
    }
    yml
}

/// A real Prometheus with blackbox_exporter's scrape configuration for
/// `tcp_connect` (targets `HOST:PORT` and `[V6]:PORT`, which it
/// percent-encodes into `target=`), only the exporter's address changed,
/// and a job naming a module of the exporter's configuration file: each
/// port's `probe_success` is what tcp_connect's would be, the dropped one
/// says where it stops, and every series has the file's constant label.
#[test]
fn prometheus_scrapes_blackbox_targets_and_a_module_of_the_file() {
    let Some(lab) = support::lab_or_skip_with(
        "prometheus_scrapes_blackbox_targets_and_a_module_of_the_file",
        &["prometheus", "promtool"],
    ) else {
        return;
    };
    lab.nft(&["tcp dport 5900 drop"]).unwrap();
    let _v4 = lab.tcp_listeners(&[5988], false).unwrap();
    let _v6 = lab.tcp_listeners(&[5988], true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serve_toml = dir.path().join("serve.toml");
    std::fs::write(
        &serve_toml,
        "listen = \"127.0.0.1:0\"\nallow = [\"198.18.1.0/24\", \"2001:db8:1::/64\"]\n\
         [labels]\nsite = \"lab\"\n[modules.ard]\nproducts = [\"ARD\"]\nlocate = false\n",
    )
    .unwrap();
    let (_exporter, at) = http::start_exporter(
        lab.cmd(Ns::Client, BIN)
            .arg("serve")
            .arg("--config")
            .arg(&serve_toml),
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        prometheus_config(
            at,
            &[
                (
                    "blackbox",
                    "      module: [tcp_connect]\n",
                    "\"198.18.1.2:5988\", \"198.18.1.2:5900\", \"[2001:db8:1::2]:5988\"",
                ),
                ("ard", "      module: [ard]\n", "\"198.18.1.2\""),
            ],
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
    let query = |q: &str| -> Vec<Value> {
        let (code, body) = get(
            &lab,
            prom_at,
            &format!("/api/v1/query?query={}", form_encode(q)),
            "",
        );
        if code != 200 {
            return Vec::new();
        }
        let doc: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        doc["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut success = Vec::new();
    while success.len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        success = query("probe_success");
    }
    let value = |instance: &str| -> String {
        let found = success
            .iter()
            .find(|r| r["metric"]["instance"] == instance)
            .unwrap_or_else(|| panic!("no probe_success of {instance}: {success:?}"));
        assert_eq!(found["metric"]["site"], "lab", "{found}");
        found["value"][1].as_str().unwrap().to_string()
    };
    assert_eq!(value("198.18.1.2:5988"), "1");
    assert_eq!(value("[2001:db8:1::2]:5988"), "1");
    assert_eq!(value("198.18.1.2:5900"), "0");
    // A module of the file: ARD's ports, TCP 5900 among them dropped.
    assert_eq!(value("198.18.1.2"), "0");
    let ard = query("portprobe_port_info{job=\"ard\",port=\"5900\"}");
    assert_eq!(ard.len(), 1, "{ard:?}");
    assert_eq!(ard[0]["metric"]["state"], "filtered");
    assert_eq!(ard[0]["metric"].get("located_how"), None, "locate = false");
    // Where the dropped port stops, as blackbox_exporter cannot say.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut dropped = Vec::new();
    while dropped.is_empty() && Instant::now() < deadline {
        dropped = query("portprobe_port_info{instance=\"198.18.1.2:5900\",located_how!=\"\"}");
        if dropped.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let m = &dropped[0]["metric"];
    assert_eq!(
        [
            &m["target"],
            &m["port"],
            &m["state"],
            &m["reason"],
            &m["located_after"],
            &m["site"]
        ],
        [
            "198.18.1.2",
            "5900",
            "filtered",
            "no-response",
            "198.18.0.1",
            "lab"
        ]
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
            "located_how=\"at-host\",located_after_hop=\"1\",located_before_hop=\"2\",located_after=\"198.18.0.1\""
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

/// Where the browser test keeps its screenshots: `page-1280.png`,
/// `page-390.png` and `page-probing-1280.png` (while the probe runs), in
/// `page-screenshots` beside the build's own directory.
fn screenshot_dir() -> std::path::PathBuf {
    let target = std::path::Path::new(BIN)
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the binary is in target/PROFILE");
    let dir = target.join("page-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_page_is_a_report_at_a_phone_and_a_desktop_width() {
    let Some(lab) = support::lab_or_skip_with(
        "the_page_is_a_report_at_a_phone_and_a_desktop_width",
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
        eprintln!(
            "skipped the_page_is_a_report_at_a_phone_and_a_desktop_width: python3-selenium is not installed"
        );
        return;
    }
    let _listeners = rules(&lab);
    // The browser's own traffic (DNS, updates) stays in the namespace, and
    // the router answers the two probes in a row with every ICMP error
    // they ask for: this test is about the page, not about rate limits.
    lab.nft_script_in(
        Ns::Client,
        "add table inet browser\n\
         add chain inet browser out { type filter hook output priority 0 ; }\n\
         add rule inet browser out ip daddr != { 127.0.0.0/8, 198.18.0.0/15 } reject\n\
         add rule inet browser out ip6 daddr != { ::1, 2001:db8::/32 } reject\n",
    )
    .unwrap();
    lab.sysctl(Ns::Router, "net.ipv4.icmp_ratelimit", "0")
        .unwrap();
    // A server some way off: the probe takes seconds, as one does.
    lab.set_delay(150).unwrap();
    let (_exporter, at) = exporter(&lab, &[]);
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let shots = screenshot_dir();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/page.py");
    let out = lab
        .cmd(Ns::Client, PYTHON)
        .arg(script)
        .arg(format!("http://{at}/"))
        .args(["198.18.1.2", "Apple Remote Desktop"])
        .arg(&shots)
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
    let doc: Value = serde_json::from_str(&text).unwrap();
    eprintln!(
        "the page's first part showed after {} s, the report after {} s; screenshots in {}",
        doc["early"]["after_s"],
        doc["done_after_s"],
        shots.display()
    );
    // While the probe runs, the form and what is being probed show, and
    // no report yet.
    let early = &doc["early"];
    assert_eq!(early["shown"], true, "{early}");
    assert_eq!(early["report"], false, "{early}");
    assert_eq!(early["form"], true, "{early}");
    assert!(
        early["text"]
            .as_str()
            .unwrap()
            .starts_with("Probing 198.18.1.2 for Apple Remote Desktop: 6 ports"),
        "{early}"
    );
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    for width in ["1280", "390"] {
        let page = &doc[width];
        let seen = serde_json::to_string_pretty(page).unwrap();
        assert_eq!(page["innerWidth"].as_u64().unwrap().to_string(), width);
        // Nothing wider than the window (less its vertical scroll bar),
        // nothing cut off by an overflow.
        assert!(
            page["scrollWidth"].as_u64() <= page["clientWidth"].as_u64(),
            "{width} px: {seen}"
        );
        assert!(page["clientWidth"].as_u64() <= page["innerWidth"].as_u64());
        assert_eq!(page["cut"], Value::Array(Vec::new()), "{width} px: {seen}");
        assert_eq!(page["wide"], Value::Array(Vec::new()), "{width} px: {seen}");
        // The verdict first, then a line per service.
        assert_eq!(
            strings(&page["verdict"]),
            ["Blocked: 2 of 6 ports are blocked on 198.18.1.2"],
            "{width} px: {seen}"
        );
        let services = strings(&page["services"]);
        assert_eq!(services.len(), 1, "{width} px: {seen}");
        assert!(
            services[0]
                .starts_with("Apple Remote Desktop: blocked: TCP 5900 dropped past 198.18.0.1"),
            "{width} px: {seen}"
        );
        // Each blocked port, where it stops and by whom, in full view.
        let blocked = page["blocked"].as_array().unwrap();
        let port = |name: &str| {
            blocked
                .iter()
                .find(|b| b["port"].as_str().unwrap().starts_with(name))
                .unwrap_or_else(|| panic!("{name} is not listed as blocked at {width} px: {seen}"))
        };
        assert_eq!(blocked.len(), 2, "{width} px: {seen}");
        let rejected = port("UDP 3283");
        assert_eq!(
            rejected["reason"], "rejected by 198.18.0.1 at hop 1 (administratively prohibited)",
            "{seen}"
        );
        assert_eq!(
            rejected["advice"], "What to do: ask whoever runs 198.18.0.1 to allow it",
            "{seen}"
        );
        let dropped = port("TCP 5900");
        assert_eq!(
            dropped["reason"], "dropped past 198.18.0.1, the last router (by it or by the host)",
            "{seen}"
        );
        assert!(
            dropped["where"]
                .as_str()
                .unwrap()
                .starts_with("TCP 5900 passes every router up to 198.18.0.1 (hop 1)"),
            "{seen}"
        );
        for b in blocked {
            assert_eq!(b["reason_fits"], true, "{width} px: {seen}");
        }
        // Then the rest, open for a product this small.
        assert_eq!(page["rest_open"], true, "{seen}");
        assert_eq!(
            page["rest_summary"], "The other 4 ports: 2 open, 2 reachable with no service",
            "{seen}"
        );
        assert_eq!(page["probing_shown"], false, "{width} px: {seen}");
        let recent = strings(&page["recent"]);
        assert!(
            recent[0].contains("198.18.1.2") && recent[0].contains("CRITICAL"),
            "{seen}"
        );
    }
    // The link opens the same report.
    let link = format!("http://{at}/?target=198.18.1.2&product=Apple+Remote+Desktop");
    assert_eq!(doc["1280"]["link"], link);
    assert_eq!(doc["390"]["url"], link);
    assert_eq!(doc["390"]["blocked"], doc["1280"]["blocked"]);
    for name in ["page-1280.png", "page-390.png", "page-probing-1280.png"] {
        let png = std::fs::read(shots.join(name)).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000,
            "{name}"
        );
    }
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

/// Connections the flood opens (fewer when this process may not hold so
/// many), from this many source addresses, by this many threads.
const FLOOD: usize = 12_000;
const FLOOD_SOURCES: usize = 30;
const FLOOD_THREADS: usize = 4;

/// Opens `count` connections to `at` from 127.0.0.2 onwards (inside the
/// namespace the calling thread is in), most of them silent, one in ten
/// with half a request head, one in twenty-five kept alive after a full
/// request it never reads the answer to. Gives up on a thread's share
/// after three connections in a row that cannot be made. Returns them,
/// to be held.
fn flood(at: SocketAddr, count: usize) -> Vec<TcpStream> {
    let per_thread = count / FLOOD_THREADS;
    let threads: Vec<_> = (0..FLOOD_THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut held = Vec::with_capacity(per_thread);
                let mut failed_in_a_row = 0;
                for i in 0..per_thread {
                    let n = t * per_thread + i;
                    let source =
                        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (n % FLOOD_SOURCES) as u8));
                    let Ok(mut s) = connect_from(source, at, Duration::from_secs(2)) else {
                        failed_in_a_row += 1;
                        if failed_in_a_row == 3 {
                            break;
                        }
                        continue;
                    };
                    failed_in_a_row = 0;
                    let _ = match n % 50 {
                        0 | 25 => s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
                        k if k % 10 == 5 => s.write_all(HALF_A_REQUEST),
                        _ => Ok(()),
                    };
                    held.push(s);
                }
                held
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn more_idle_and_half_sent_connections_than_descriptors_leave_the_exporter_answering() {
    let Some(lab) = support::lab_or_skip(
        "more_idle_and_half_sent_connections_than_descriptors_leave_the_exporter_answering",
    ) else {
        return;
    };
    // This process holds the flood's ends; the exporter gets a file limit
    // of two thirds of them: past its limit, the exporter that held every
    // connection it was given stopped answering.
    let have = support::raise_open_files(FLOOD as u64 + 4096);
    let flood_size = FLOOD.min(usize::try_from(have).unwrap_or(FLOOD).saturating_sub(1024));
    let exporter_files = flood_size as u64 * 2 / 3;
    assert!(exporter_files >= 1024, "cannot hold a flood: {have} files");
    let _listeners = rules(&lab);
    let (exporter_process, at) = http::start_exporter(
        lab.cmd(Ns::Client, "prlimit")
            .arg(format!("--nofile={exporter_files}:{exporter_files}"))
            .args([
                BIN,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow",
                "198.18.1.0/24",
            ]),
    );
    let started = Instant::now();
    let held = lab
        .run_in(Ns::Client, move || flood(at, flood_size))
        .unwrap();
    let flooded = started.elapsed();
    assert!(
        held.len() as u64 > exporter_files,
        "only {} connections made: the exporter stopped accepting",
        held.len()
    );
    // While the flood is held, Prometheus' scrapes from 127.0.0.1 get
    // their answers: the exporter's own metrics, and a real probe through
    // the router.
    let limit = Duration::from_secs(20);
    let asked = Instant::now();
    let metrics = lab
        .run_in(Ns::Client, move || {
            http::get_within(at, "/metrics", "", limit)
        })
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "no answer to /metrics with {} connections held: {e}",
                held.len()
            )
        });
    let metrics_took = asked.elapsed();
    assert_eq!(metrics.code, 200, "{}", metrics.body);
    let m = &metrics.body;
    let open = sample(m, "portprobe_exporter_connections").unwrap();
    let cap = sample(m, "portprobe_exporter_connections_limit{scope=\"all\"}").unwrap();
    let reused = sample(
        m,
        "portprobe_exporter_connections_closed_total{reason=\"reused\"}",
    )
    .unwrap();
    assert!(cap < exporter_files as f64, "{m}");
    assert!(open <= cap, "{open} connections open, cap {cap}: {m}");
    let busy = sample(
        m,
        "portprobe_exporter_connections_closed_total{reason=\"all_busy\"}",
    )
    .unwrap();
    assert!(
        reused > 0.0,
        "the cap was never reached with {} connections: {m}",
        held.len()
    );
    let asked = Instant::now();
    let probe = lab
        .run_in(Ns::Client, move || {
            http::get_within(
                at,
                "/probe?target=198.18.1.2&product=ARD",
                "X-Prometheus-Scrape-Timeout-Seconds: 3\r\n",
                limit,
            )
        })
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "no answer to /probe with {} connections held: {e}",
                held.len()
            )
        });
    let probe_took = asked.elapsed();
    assert_eq!(probe.code, 200, "{}", probe.body);
    assert!(
        probe
            .body
            .contains("portprobe_port_blocked{target=\"198.18.1.2\",address=\"198.18.1.2\",protocol=\"tcp\",port=\"5900\""),
        "{}",
        probe.body
    );
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", exporter_process.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    eprintln!(
        "{} connections held from {FLOOD_SOURCES} sources (opened in {flooded:.2?}) against an exporter limited to {exporter_files} files: \
         /metrics answered in {metrics_took:.2?} ({open} open, cap {cap}, {reused} closed to make room, {busy} refused while others closed), /probe in {probe_took:.2?}, exporter peak memory {:.1} MiB",
        held.len(),
        peak_kib as f64 / 1024.0
    );
    assert!(peak_kib < 256 * 1024, "peak {peak_kib} KiB");
    drop(held);
}

#[test]
fn sigterm_lets_a_probe_in_flight_finish_and_holds_for_nothing_else() {
    let Some(lab) =
        support::lab_or_skip("sigterm_lets_a_probe_in_flight_finish_and_holds_for_nothing_else")
    else {
        return;
    };
    let _listeners = rules(&lab);
    // A second each way: the probe's answers take two seconds to come, and
    // the dropped port keeps it waiting longer.
    lab.set_delay(1000).unwrap();
    let (mut exporter_process, at) = exporter(&lab, &[]);
    let lab = Arc::new(lab);
    let mut half = lab
        .run_in(Ns::Client, move || {
            let mut s = TcpStream::connect(at)?;
            s.write_all(HALF_A_REQUEST)?;
            Ok::<_, std::io::Error>(s)
        })
        .unwrap()
        .unwrap();
    // TCP 5900 is dropped: the probe runs for seconds, within its
    // deadline of 9.5 s.
    let probe = std::thread::spawn({
        let lab = Arc::clone(&lab);
        move || {
            let r = lab
                .run_in(Ns::Client, move || {
                    http::get_within(
                        at,
                        "/probe?target=198.18.1.2&product=ARD",
                        "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n",
                        Duration::from_secs(60),
                    )
                })
                .unwrap();
            (r, Instant::now())
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(&lab, at, "/metrics", "");
        if sample(&body, "portprobe_exporter_probes_in_flight") == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the probe never started: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    kill(Pid::from_raw(exporter_process.id() as i32), Signal::SIGTERM).unwrap();
    // The half-sent request is closed at once, while the probe runs on.
    assert!(
        closed_within(&mut half, Duration::from_secs(10)).is_some(),
        "the half-sent request is still open after SIGTERM"
    );
    assert!(
        !probe.is_finished(),
        "the probe was over before the half-sent request was closed"
    );
    // And nothing new is accepted.
    let refused = lab
        .run_in(Ns::Client, move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match TcpStream::connect_timeout(&at, Duration::from_secs(2)) {
                    Err(e) => return Some(e.kind()),
                    Ok(_) if Instant::now() > deadline => return None,
                    Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
        .unwrap();
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused));
    let (answer, answered) = probe.join().unwrap();
    let answer = answer.expect("the probe in flight got no answer");
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert!(
        answer
            .body
            .contains("\nprobe_success{target=\"198.18.1.2\"} 0\n"),
        "{}",
        answer.body
    );
    assert!(
        answer
            .body
            .lines()
            .any(|l| l.starts_with("portprobe_port_info{")
                && l.contains("port=\"5900\"")
                && l.contains("reason=\"no-response\"")
                && l.contains("state=\"filtered\"")),
        "{}",
        answer.body
    );
    // The grace period: --max-time (30 s) and 5 s.
    let status = exporter_process
        .wait_for(Duration::from_secs(35))
        .expect("still running after the grace period");
    let exited = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{status}");
    eprintln!(
        "SIGTERM with a probe in flight and a half-sent request: the probe's answer came {:.2?} after the signal, the exit {exited:.2?} after it",
        answered.duration_since(signalled)
    );
}
