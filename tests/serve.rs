//! `portprobe serve` on loopback, with no privilege: the exposition a
//! scrape gets (the `--format prometheus` series, each port's outcome on
//! its info series, and `probe_success`), refusals that echo nothing raw, the
//! allow-list, the exporter's own metrics, and the page. (With a real
//! Prometheus, a router and a browser: `serve_lab.rs`.)

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::http;
use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

/// A running exporter and the address it serves on.
struct Exporter {
    _child: KillOnDrop,
    at: SocketAddr,
}

fn exporter(args: &[&str]) -> Exporter {
    let (child, at) = http::start_exporter(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args),
    );
    Exporter { _child: child, at }
}

/// A GET: the status code, the head and the body.
fn get(at: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let r = http::get(at, path, headers).unwrap();
    (r.code, r.head, r.body)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_scrape_gets_the_series_with_their_reasons() {
    let open = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = free_port();
    let e = exporter(&["--allow", "127.0.0.1"]);
    let (code, head, body) = get(
        e.at,
        &format!("/probe?target=127.0.0.1&ports={open_port},{closed_port}"),
        "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n",
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let lines: Vec<String> = body.lines().map(str::to_string).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).unwrap();
    let info = |port: u16| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "portprobe_port_info" && s.labels.get("port") == Some(&port.to_string())
            })
            .unwrap_or_else(|| panic!("no series for {port}: {body}"))
    };
    let open_series = info(open_port);
    assert_eq!(open_series.labels.get("state"), Some("open"));
    assert_eq!(open_series.labels.get("reason"), Some("syn-ack"));
    let closed_series = info(closed_port);
    assert_eq!(closed_series.labels.get("state"), Some("closed"));
    assert_eq!(closed_series.labels.get("reason"), Some("conn-refused"));
    // Nobody sent a reason: the label is left out, not written empty.
    assert_eq!(closed_series.labels.get("reason_from"), None);
    assert!(!body.contains("=\"\""), "{body}");
    assert!(
        body.contains("\nprobe_success{target=\"127.0.0.1\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("\nprobe_duration_seconds{target=\"127.0.0.1\"} "),
        "{body}"
    );
    assert!(
        body.contains("\nportprobe_status{target=\"127.0.0.1\"} 1\n"),
        "{body}"
    );
    // blackbox_exporter's names, not portprobe's own as well.
    assert!(!body.contains("portprobe_probe_"), "{body}");
    drop(open);

    // Refusals: nothing raw comes back, and the allow-list holds.
    let (code, _, body) = get(
        e.at,
        "/probe?target=127.0.0.1&product=%3Cscript%3E%1b[31m",
        "",
    );
    assert_eq!(code, 400, "{body}");
    assert!(!body.contains("<script>\u{1b}"), "{body}");
    assert!(!body.contains('\u{1b}'), "{body}");
    let (code, _, body) = get(e.at, "/probe?target=127.0.0.1&ports=%1b[31m", "");
    assert_eq!(code, 400, "{body}");
    assert!(
        !body.contains('\u{1b}') && body.contains("\\x1b[31m"),
        "{body}"
    );
    let (code, _, body) = get(e.at, "/probe?product=ARD", "");
    assert_eq!(
        (code, body.trim()),
        (
            400,
            "target= is missing (e.g. /probe?target=192.0.2.10&product=ARD)"
        )
    );
    let (code, _, body) = get(e.at, "/probe?target=127.0.0.2&product=ARD", "");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("the target is not in this exporter's allow-list: nothing was sent"),
        "{body}"
    );
    let (code, _, body) = get(e.at, "/probe?target=224.0.0.251&product=ARD", "");
    assert_eq!(code, 403, "{body}");
    let (code, _, body) = get(e.at, "/probe?target=macserver.local&product=ARD", "");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("a .local name is probed only when --allow names it"),
        "{body}"
    );
    let (code, _, _) = get(e.at, "/nothing", "");
    assert_eq!(code, 404);

    let (code, head, body) = get(e.at, "/metrics", "");
    assert_eq!(code, 200);
    assert!(head.contains("version=0.0.4"));
    for line in [
        "portprobe_exporter_probes_total{result=\"success\"} 1",
        "portprobe_exporter_probes_total{result=\"bad_request\"} 3",
        "portprobe_exporter_probes_total{result=\"forbidden\"} 3",
        "portprobe_exporter_probes_in_flight 0",
        "portprobe_exporter_concurrency_limit 1024",
        // Every attempt's slot given back.
        "portprobe_exporter_concurrency_in_use 0",
        "portprobe_exporter_probe_duration_seconds_count 1",
    ] {
        assert!(body.lines().any(|l| l == line), "{line}: {body}");
    }
}

#[test]
fn the_page_runs_a_probe_and_lists_it() {
    let closed_port = free_port();
    let e = exporter(&["--allow", "127.0.0.0/8"]);
    let (code, head, body) = get(e.at, "/", "");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(
        body.contains("<option value=\"Apple Remote Desktop\">"),
        "{body}"
    );
    assert!(body.contains("None yet."));
    let (code, _, body) = get(
        e.at,
        &format!("/?target=127.0.0.1&product=&ports={closed_port}"),
        "",
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&format!("TCP {closed_port}")), "{body}");
    assert!(body.contains("WARNING: 127.0.0.1"), "{body}");
    assert!(body.contains("<td>127.0.0.1</td>"), "{body}");
    let (code, _, body) = get(e.at, "/?target=%3Cb%3Ex&product=ARD", "");
    assert_eq!(code, 200, "an unresolvable name is a report: {body}");
    assert!(!body.contains("<b>x"), "{body}");
    assert!(body.contains("&lt;b&gt;x"), "{body}");
}

#[test]
fn the_page_shows_no_visitor_what_others_asked_for() {
    let e = exporter(&["--allow", "127.0.0.1"]);
    let closed_port = free_port();
    for (path, code) in [
        ("/probe?target=127.0.0.2&product=ARD".to_string(), 403),
        (
            "/probe?target=127.0.0.1&product=SECRETJUNK%3Cb%3E".to_string(),
            400,
        ),
        ("/probe?target=secret_junk!&product=ARD".to_string(), 200),
        ("/?target=127.0.0.9&product=ARD".to_string(), 403),
        (
            format!("/probe?target=127.0.0.1&product=ard&ports={closed_port}"),
            200,
        ),
    ] {
        let (got, _, body) = get(e.at, &path, "X-Prometheus-Scrape-Timeout-Seconds: 2\r\n");
        assert_eq!(got, code, "{path}: {body}");
    }
    // Another visitor's page lists the allowed probe, by the catalog's
    // name, and nothing else that was asked.
    let (_, _, page) = get(e.at, "/", "");
    let recent = page.split("<h2>Last probes</h2>").nth(1).unwrap();
    for secret in ["127.0.0.2", "127.0.0.9", "SECRETJUNK", "secret_junk", "ard"] {
        assert!(!recent.contains(secret), "{secret}: {recent}");
    }
    assert!(
        recent.contains(&format!(
            "<td>127.0.0.1</td><td>Apple Remote Desktop, {closed_port}/tcp</td>"
        )),
        "{recent}"
    );
    assert_eq!(recent.matches("<tr><td>").count(), 1, "{recent}");

    // A refused name's answer says so, not where the name points.
    let e = exporter(&["--allow", "127.0.0.2"]);
    let (code, _, body) = get(e.at, "/probe?target=localhost&product=ARD", "");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not in this exporter's allow-list"), "{body}");
    assert!(
        !body.contains("127.0.0.1") && !body.contains("::1"),
        "{body}"
    );
}

#[test]
fn no_allow_list_no_exporter() {
    for (args, says) in [
        (&["serve"][..], "--allow <CIDR|HOST>"),
        (
            &["serve", "--allow", "10.0.0.0/33"][..],
            "is not a network, an address or a host name",
        ),
        (
            &["serve", "--allow", "10.0.0.0/8", "--allow-any"][..],
            "cannot be used with",
        ),
        (
            &["serve", "--allow", "::1", "--listen", "nowhere"][..],
            "invalid value 'nowhere'",
        ),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn a_hostile_query_is_measured_before_anything_is_expanded() {
    let e = exporter(&["--allow", "127.0.0.1"]);
    let at = e.at;
    // The whole TCP port space 290 times over, in 4 KiB: as parameters
    // (refused: too many), and as one list (one range once merged).
    let repeated = |target: &str| format!("{}target={target}", "ports=1-65535&".repeat(290));
    let listed =
        |target: &str, range: &str| format!("target={target}&ports={}", vec![range; 290].join(","));
    assert!(repeated("127.0.0.1").len() <= 4096);
    let asked = [
        (repeated("127.0.0.1"), 400),
        (repeated("127.0.0.2"), 400),
        (listed("127.0.0.2", "1-65535"), 403),
        (listed("127.0.0.2", "1-65535"), 403),
        (listed("127.0.0.2", "1-65535"), 403),
        // Two ports, named 290 times each.
        (listed("127.0.0.1", "5-6"), 200),
    ];
    let done = Arc::new(AtomicBool::new(false));
    let watcher = std::thread::spawn({
        let done = Arc::clone(&done);
        move || {
            let mut slowest = Duration::ZERO;
            let mut answers = 0;
            while !done.load(Ordering::Relaxed) || answers == 0 {
                let started = Instant::now();
                let (code, _, _) = get(at, "/metrics", "");
                assert_eq!(code, 200);
                slowest = slowest.max(started.elapsed());
                answers += 1;
            }
            slowest
        }
    });
    let scrapes: Vec<_> = asked
        .into_iter()
        .map(|(query, expected)| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let (code, _, body) = get(
                    at,
                    &format!("/probe?{query}"),
                    "X-Prometheus-Scrape-Timeout-Seconds: 1.5\r\n",
                );
                (code, expected, body, started.elapsed())
            })
        })
        .collect();
    for scrape in scrapes {
        let (code, expected, body, took) = scrape.join().unwrap();
        assert_eq!(code, expected, "{body}");
        // Nothing was expanded: an answer well within the deadline, however
        // busy this machine is.
        assert!(
            took < Duration::from_secs(2),
            "answered after {took:?}: {body}"
        );
        match code {
            400 => assert!(body.contains("at most 16 ports= parameters"), "{body}"),
            200 => {
                let series = body
                    .lines()
                    .filter(|l| l.starts_with("portprobe_port_info{"))
                    .count();
                assert_eq!(series, 2, "{body}");
            }
            _ => {}
        }
    }
    done.store(true, Ordering::Relaxed);
    let slowest = watcher.join().unwrap();
    assert!(
        slowest < Duration::from_secs(2),
        "/metrics took {slowest:?} meanwhile"
    );
}
