//! The front ends on loopback (no privileges needed): colour and progress
//! bar through a pseudo-terminal and their absence when piped, watch mode
//! noticing a listener that went away, Ctrl-C giving a partial report,
//! several targets in one run (an address that is no single host's among
//! them is that target's error), and `--output` written atomically.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

fn listener(addr: Ipv4Addr) -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind((addr, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    l.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            match l.accept() {
                Ok(conn) => drop(conn),
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (port, stop)
}

/// Runs portprobe under `script`, which gives it a pseudo-terminal for
/// stdout and stderr; returns everything the terminal showed.
fn in_terminal(args: &str, env: &[(&str, &str)]) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(!support::in_ci(), "`script` (util-linux) is missing in CI");
        eprintln!("skipped a terminal test: `script` from util-linux is not installed");
        return None;
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", &format!("'{BIN}' {args}"), "/dev/null"]);
    cmd.env("TERM", "xterm-256color").env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A run long enough for the progress bar to appear: 3000 closed loopback
/// ports at 2000 probes per second.
const SLOW: &str = "127.0.0.1 --ports 20001-23000 --rate 2000";

#[test]
fn colour_and_progress_in_a_terminal() {
    let Some(screen) = in_terminal(SLOW, &[]) else {
        return;
    };
    assert!(
        screen.contains("\x1b[33mREACHABLE, NO SERVICE"),
        "no colour: {screen:?}"
    );
    assert!(
        screen.contains("\x1b[1;33mWARNING\x1b[0m: 127.0.0.1"),
        "no colour: {screen:?}"
    );
    assert!(
        screen.contains("ports, 0 blocked"),
        "no progress bar: {screen:?}"
    );
    assert!(screen.contains("WARNING"), "{screen:?}");
}

#[test]
fn no_colour_with_no_color_or_a_dumb_terminal() {
    let Some(screen) = in_terminal("127.0.0.1 --ports 1", &[("NO_COLOR", "1")]) else {
        return;
    };
    assert!(!screen.contains('\x1b'), "{screen:?}");
    let Some(screen) = in_terminal("127.0.0.1 --ports 1", &[("TERM", "dumb")]) else {
        return;
    };
    assert!(!screen.contains('\x1b'), "{screen:?}");
    let Some(screen) = in_terminal("127.0.0.1 --ports 1 --color never", &[]) else {
        return;
    };
    assert!(!screen.contains('\x1b'), "{screen:?}");
}

#[test]
fn nothing_but_text_when_piped() {
    let out = Command::new(BIN).args(SLOW.split(' ')).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert!(
        out.stderr.is_empty(),
        "progress on a pipe: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forced = Command::new(BIN)
        .args(["127.0.0.1", "--ports", "1", "--color", "always"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&forced.stdout).contains("\x1b[1;33m"));
}

#[test]
fn no_progress_bar_in_machine_formats_even_on_a_terminal() {
    for format in ["json", "nagios", "prometheus"] {
        let Some(screen) = in_terminal(&format!("{SLOW} --format {format}"), &[]) else {
            return;
        };
        assert!(!screen.contains("ports, 0 blocked"), "{format}: {screen:?}");
        assert!(!screen.contains('\x1b'), "{format}: {screen:?}");
    }
}

fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn watch_prints_changes_when_a_listener_goes_away() {
    let (port, stop) = listener(Ipv4Addr::LOCALHOST);
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["127.0.0.1", "--ports", &port.to_string(), "--watch", "1s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("probed in");
        first.push(line);
        if done {
            break;
        }
    }
    assert!(
        first.iter().any(|l| l.starts_with("OK: 127.0.0.1")),
        "{first:?}"
    );
    stop.store(true, Ordering::Relaxed);
    // The listener thread notices within a few milliseconds and drops it.
    let change = lines.next().expect("a change line").unwrap();
    let (time, rest) = change.split_once(' ').unwrap();
    assert_eq!(time.len(), 8, "HH:MM:SS: {change}");
    assert_eq!(rest, format!("tcp/{port} open -> closed (conn-refused)"));
    interrupt(&child);
    let status = child.wait().unwrap();
    // The last complete round had a closed port: WARNING.
    assert_eq!(status.code(), Some(1));
}

#[test]
fn watch_with_json_writes_one_object_per_line() {
    let (port, _stop) = listener(Ipv4Addr::LOCALHOST);
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args([
                "127.0.0.1",
                "--ports",
                &port.to_string(),
                "--watch",
                "1s",
                "--json",
            ])
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let line = lines.next().unwrap().unwrap();
        let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["status"], "OK");
    }
    interrupt(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn ctrl_c_gives_a_partial_report_and_unknown_within_a_second() {
    // 65535 ports at 100 per second would take 11 minutes.
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["127.0.0.1", "--ports", "1-65535", "--rate", "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    interrupt(&child);
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(status.code(), Some(3), "{out}");
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
    assert!(out.contains("INCOMPLETE: interrupted;"), "{out}");
    assert!(out.contains("UNKNOWN: 127.0.0.1: incomplete:"), "{out}");
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn several_targets_share_one_run_and_the_worst_status() {
    let (port, _stop) = listener(Ipv4Addr::LOCALHOST);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets");
    std::fs::write(&file, "# lab hosts\n127.0.0.2   # no listener here\n\n").unwrap();
    let spec = port.to_string();
    let out = run(&[
        "127.0.0.1",
        "--targets",
        file.to_str().unwrap(),
        "--ports",
        &spec,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(
        (
            targets[0]["target"]["host"].as_str(),
            targets[0]["status"].as_str()
        ),
        (Some("127.0.0.1"), Some("OK"))
    );
    assert_eq!(
        (
            targets[1]["target"]["host"].as_str(),
            targets[1]["status"].as_str()
        ),
        (Some("127.0.0.2"), Some("WARNING"))
    );
    assert_eq!(doc["status"], "WARNING");
    assert_eq!(doc["summary"]["open"], 1);
    let text =
        String::from_utf8(run(&["127.0.0.1", "127.0.0.2", "--ports", &spec]).stdout).unwrap();
    assert!(
        text.contains("OK: 127.0.0.1") && text.contains("WARNING: 127.0.0.2"),
        "{text}"
    );
    assert!(
        text.contains("WARNING: 2 targets, 2 ports: 1 open, 1 closed"),
        "{text}"
    );
    let nagios = String::from_utf8(
        run(&[
            "127.0.0.1",
            "127.0.0.2",
            "--ports",
            &spec,
            "--format",
            "nagios",
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        nagios.starts_with("PORTPROBE WARNING - 2 targets, "),
        "{nagios}"
    );
}

/// An address given literally that is no single host's (broadcast,
/// multicast, unspecified) is, among other targets, that target's error
/// like a name that does not resolve: the others are probed, and the run's
/// status is the worst, UNKNOWN. Alone it refuses the run.
#[test]
fn an_address_that_is_no_single_host_is_that_targets_error() {
    let (port, _stop) = listener(Ipv4Addr::LOCALHOST);
    let spec = port.to_string();
    let bad = [
        ("255.255.255.255", "a broadcast address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "the unspecified address"),
    ];
    let why = |host: &str, what: &str| {
        format!(
            "{host} is {what}, not a single host: portprobe probes one host at a time; give that host's own address or name"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets");
    std::fs::write(&file, "127.0.0.1\n224.0.0.1  # a group\n").unwrap();
    let file = file.to_str().unwrap();
    let lists: [&[&str]; 2] = [
        &["127.0.0.1", "255.255.255.255", "224.0.0.1", "0.0.0.0"],
        &["255.255.255.255", "--targets", file, "0.0.0.0"],
    ];
    for hosts in lists {
        let args = |extra: &[&'static str]| {
            let mut a: Vec<&str> = hosts.to_vec();
            a.extend(["--ports", spec.as_str()]);
            a.extend_from_slice(extra);
            a
        };
        let out = run(&args(&["--json"]));
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert_eq!(stderr(&out), "");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let targets = doc["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 4, "{doc}");
        let good = targets
            .iter()
            .find(|t| t["target"]["host"] == "127.0.0.1")
            .unwrap();
        assert_eq!(good["status"], "OK", "{good}");
        assert_eq!(good["results"][0]["state"], "open", "{good}");
        for (host, what) in bad {
            let t = targets
                .iter()
                .find(|t| t["target"]["host"] == host)
                .unwrap_or_else(|| panic!("{host} missing: {doc}"));
            assert_eq!(t["error"], why(host, what).as_str(), "{t}");
            assert_eq!(t["status"], "UNKNOWN");
            assert_eq!(t["results"].as_array().unwrap().len(), 0, "{t}");
            assert_eq!(t["target"]["addresses"].as_array().unwrap().len(), 0);
        }
        assert_eq!(doc["status"], "UNKNOWN");
        assert_eq!(doc["summary"]["open"], 1);

        let out = run(&args(&[]));
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("OK: 127.0.0.1: all 1 required ports are reachable"),
            "{text}"
        );
        for (host, what) in bad {
            let line = format!("UNKNOWN: {host}: {}", why(host, what));
            assert!(text.contains(&line), "{line}\n{text}");
        }
        assert!(
            text.contains("UNKNOWN: 4 targets, 1 ports: 1 open"),
            "{text}"
        );
    }

    // Alone: one line, exit 3, no report.
    for (host, what) in bad {
        let out = run(&[host, "--ports", &spec]);
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(stderr(&out), format!("portprobe: {}\n", why(host, what)));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn output_file_is_replaced_atomically() {
    let (port, _stop) = listener(Ipv4Addr::LOCALHOST);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portprobe.prom");
    std::fs::write(&file, "old").unwrap();
    let out = run(&[
        "127.0.0.1",
        "--ports",
        &port.to_string(),
        "--format",
        "prometheus",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("portprobe_probe_success{target=\"127.0.0.1\"} 1"),
        "{text}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "temporary file left behind: {left:?}");
    let bad = run(&[
        "127.0.0.1",
        "--ports",
        "1",
        "--output",
        "/nonexistent/dir/x.prom",
    ]);
    assert_eq!(bad.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "portprobe: cannot write --output /nonexistent/dir/x.prom: directory /nonexistent/dir does not exist\n"
    );
}
