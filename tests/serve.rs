//! `portprobe serve` on loopback, with no privilege: the exposition a
//! scrape gets (the `--format prometheus` series, each port's outcome on
//! its info series, and `probe_success`), refusals that echo nothing raw, the
//! allow-list, the exporter's own metrics, and the page; connections held
//! within the timeouts and the per-source cap, and a shutdown that no
//! half-sent request holds up. (With a real Prometheus, a router and a
//! browser, and a flood past the file limit: `serve_lab.rs`.)

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::http::{self, HALF_A_REQUEST, closed_within, connect_from, sample};
use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

/// A running exporter and the address it serves on.
struct Exporter {
    child: KillOnDrop,
    at: SocketAddr,
}

fn exporter(args: &[&str]) -> Exporter {
    let (child, at) = http::start_exporter(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args),
    );
    Exporter { child, at }
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
    assert!(
        body.contains(&format!(
            "<td data-label=\"Port\" class=\"port\">TCP {closed_port}</td>"
        )),
        "{body}"
    );
    assert!(
        body.contains(
            "<span class=\"word\">Reachable:</span> nothing is blocked on 127.0.0.1, but 1 of 1 port has no service listening"
        ),
        "{body}"
    );
    assert!(body.contains("status WARNING"), "{body}");
    assert!(
        body.contains("<td data-label=\"Host\">127.0.0.1</td>"),
        "{body}"
    );
    // The link to the same report opens it.
    let link = format!("/?target=127.0.0.1&amp;ports={closed_port}%2Ftcp");
    assert!(
        body.contains(&format!("<a id=\"permalink\" href=\"{link}\">")),
        "{body}"
    );
    let (code, _, again) = get(e.at, &link.replace("&amp;", "&"), "");
    assert_eq!(code, 200, "{again}");
    assert!(
        again.contains("1 of 1 port has no service listening"),
        "{again}"
    );
    let (code, _, body) = get(e.at, "/?target=%3Cb%3Ex&product=ARD", "");
    assert_eq!(code, 200, "an unresolvable name is a report: {body}");
    assert!(!body.contains("<b>x"), "{body}");
    assert!(body.contains("&lt;b&gt;x could not be probed"), "{body}");
    // The catalog's name, in the form and the link, for the alias asked.
    assert!(
        body.contains("<option value=\"Apple Remote Desktop\" selected>"),
        "{body}"
    );
    assert!(
        body.contains("href=\"/?target=%3Cb%3Ex&amp;product=Apple+Remote+Desktop\""),
        "{body}"
    );
}

/// While a probe runs, the page's first part, with the form and what is
/// being probed, has arrived; the report follows when the probe ends.
#[test]
fn the_page_says_what_it_probes_before_the_probe_ends() {
    // A UDP port that never answers: the probe waits for its attempts.
    let silent = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let e = exporter(&["--allow", "127.0.0.1"]);
    let mut s = std::net::TcpStream::connect(e.at).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let started = Instant::now();
    write!(
        s,
        "GET /?target=127.0.0.1&ports={port}/udp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0; 65536];
    while !String::from_utf8_lossy(&seen).contains("</form>\n<p id=\"probing\"") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let first = started.elapsed();
    let early = String::from_utf8_lossy(&seen).into_owned();
    assert!(early.starts_with("HTTP/1.1 200 OK\r\n"), "{early}");
    assert!(
        early.contains("content-security-policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
        "{early}"
    );
    assert!(
        early.contains(&format!("Probing 127.0.0.1 for {port}/udp: 1 port")),
        "{early}"
    );
    assert!(!early.contains("id=\"report\""), "{early}");
    s.read_to_end(&mut seen).unwrap();
    let whole = started.elapsed();
    let page = String::from_utf8_lossy(&seen);
    assert!(page.contains("id=\"report\""), "{page}");
    assert!(page.contains("no reply"), "{page}");
    assert!(page.ends_with("\r\n0\r\n\r\n"), "{page}");
    eprintln!("first part after {first:.2?}, the whole page after {whole:.2?}");
    drop(silent);
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
            "<td data-label=\"Host\">127.0.0.1</td><td data-label=\"Checked\">Apple Remote Desktop, {closed_port}/tcp</td>"
        )),
        "{recent}"
    );
    assert_eq!(recent.matches("<tr><td").count(), 1, "{recent}");

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
        (&["serve"][..], "needs --allow CIDR|HOST"),
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

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const A_WHILE: Duration = Duration::from_secs(20);

/// Sends one request on `s`, kept alive, and reads its response (which
/// has a `content-length`) to the end.
fn answered_on(s: &mut TcpStream, at: SocketAddr, path: &str) -> String {
    write!(s, "GET {path} HTTP/1.1\r\nHost: {at}\r\n\r\n").unwrap();
    s.set_read_timeout(Some(A_WHILE)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the answer: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no content-length: {head}"));
            if body.len() >= length {
                return text.into_owned();
            }
        }
    }
}

/// Whether `s` is still open with nothing to read, without waiting.
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let open = matches!(s.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

/// The exporter's own series `series` now, 0 when it has none.
fn own(at: SocketAddr, series: &str) -> f64 {
    let (code, _, body) = get(at, "/metrics", "");
    assert_eq!(code, 200, "{body}");
    sample(&body, series).unwrap_or(0.0)
}

#[test]
fn idle_and_half_sent_connections_are_closed_after_their_timeouts() {
    let e = exporter(&[
        "--allow",
        "127.0.0.1",
        "--header-timeout",
        "1s",
        "--idle-timeout",
        "3s",
    ]);
    let opened = Instant::now();
    let mut silent = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    let mut half = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    half.write_all(HALF_A_REQUEST).unwrap();
    // A head sent a byte at a time never completes: the timeout runs from
    // the opening, not from the last byte.
    let mut slow = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    let dribble = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            for b in HALF_A_REQUEST.iter().cycle().take(200) {
                if slow.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut kept = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    let answer = answered_on(&mut kept, e.at, "/metrics");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answered = Instant::now();

    for (name, s) in [
        ("silent", &mut silent),
        ("half", &mut half),
        ("slow", &mut slow),
    ] {
        assert!(
            closed_within(s, A_WHILE).is_some(),
            "the {name} connection is still open"
        );
        let after = opened.elapsed();
        assert!(
            after >= Duration::from_millis(990),
            "the {name} connection was closed after {after:?}, before the 1 s header timeout"
        );
    }
    dribble.join().unwrap();
    assert!(
        closed_within(&mut kept, A_WHILE).is_some(),
        "the kept-alive connection is still open"
    );
    let idle = answered.elapsed();
    // Not by the header timeout: the idle one (the exporter's clock starts
    // when the answer has left, a little before it arrives here).
    assert!(
        idle >= Duration::from_millis(2500),
        "the kept-alive connection was closed after {idle:?} idle, before the 3 s idle timeout"
    );
    let (_, _, m) = get(e.at, "/metrics", "");
    for line in [
        "portprobe_exporter_connections_closed_total{reason=\"header_timeout\"} 3",
        "portprobe_exporter_connections_closed_total{reason=\"idle_timeout\"} 1",
        "portprobe_exporter_connections_closed_total{reason=\"send_timeout\"} 0",
        "portprobe_exporter_connections 1",
    ] {
        assert!(m.lines().any(|l| l == line), "{line}: {m}");
    }
}

#[test]
fn a_half_sent_request_is_closed_after_the_default_header_timeout() {
    let e = exporter(&["--allow", "127.0.0.1"]);
    let opened = Instant::now();
    let mut half = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    half.write_all(HALF_A_REQUEST).unwrap();
    assert!(
        closed_within(&mut half, Duration::from_secs(40)).is_some(),
        "a half-sent request is still open after 40 s"
    );
    let after = opened.elapsed();
    assert!(
        after >= Duration::from_millis(9990),
        "closed after {after:?}, before the 10 s header timeout"
    );
    assert_eq!(
        own(
            e.at,
            "portprobe_exporter_connections_closed_total{reason=\"header_timeout\"}"
        ),
        1.0
    );
}

#[test]
fn one_source_holds_its_share_of_connections_and_no_more() {
    let e = exporter(&["--allow", "127.0.0.1"]);
    // The documented share when the file limit allows it; the exporter
    // says what it derived.
    let share = match own(
        e.at,
        "portprobe_exporter_connections_limit{scope=\"per_source\"}",
    ) {
        n if n >= 1.0 => n as usize,
        _ => 512,
    };
    let extra = 8;
    support::raise_open_files((share + extra + 256) as u64);
    let greedy: IpAddr = "127.0.0.5".parse().unwrap();
    let mut held: Vec<TcpStream> = (0..share + extra)
        .map(|_| connect_from(greedy, e.at, A_WHILE).unwrap())
        .collect();
    // Connections are admitted in the order they come: those past the
    // share are closed at once.
    for (i, s) in held[share..].iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(10)).is_some(),
            "connection {} of {}, past a share of {share}, is still open",
            share + i + 1,
            share + extra
        );
    }
    let open = held[..share].iter().filter(|s| still_open(s)).count();
    assert_eq!(open, share, "of the {share} connections within the share");
    // Another source still gets through, and the source itself still has
    // its share.
    let (code, _, m) = get(e.at, "/metrics", "");
    assert_eq!(code, 200, "{m}");
    assert_eq!(
        sample(
            &m,
            "portprobe_exporter_connections_closed_total{reason=\"per_source_limit\"}"
        ),
        Some(extra as f64),
        "{m}"
    );
    assert!(
        sample(&m, "portprobe_exporter_connections").unwrap() >= (share + 1) as f64,
        "{m}"
    );
    let mut again = connect_from(greedy, e.at, A_WHILE).unwrap();
    assert!(closed_within(&mut again, Duration::from_secs(10)).is_some());
    held.truncate(1);
    let mut first = held.pop().unwrap();
    assert!(answered_on(&mut first, e.at, "/metrics").starts_with("HTTP/1.1 200"));
}

#[test]
fn sigterm_with_a_half_sent_request_held_exits_at_once() {
    let mut e = exporter(&["--allow", "127.0.0.1"]);
    let mut half = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    half.write_all(HALF_A_REQUEST).unwrap();
    let mut silent = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    let mut kept = connect_from(LOOPBACK, e.at, A_WHILE).unwrap();
    answered_on(&mut kept, e.at, "/metrics");
    // The three are accepted (and the request asking is the fourth).
    let deadline = Instant::now() + A_WHILE;
    while own(e.at, "portprobe_exporter_connections") < 4.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    kill(Pid::from_raw(e.child.id() as i32), Signal::SIGTERM).unwrap();
    // The grace period is --max-time (30 s) and 5 s: nothing here has a
    // request being answered, so nothing waits for it.
    let status = e.child.wait_for(Duration::from_secs(15));
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!("still running {took:?} after SIGTERM, with a half-sent request held")
    });
    assert_eq!(status.code(), Some(0), "{status}");
    eprintln!(
        "exited {took:.2?} after SIGTERM, with a half-sent request, an idle and a kept-alive connection held"
    );
    for s in [&mut half, &mut silent, &mut kept] {
        assert!(closed_within(s, Duration::from_secs(1)).is_some());
    }
}
