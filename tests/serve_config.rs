//! `portprobe serve --config FILE` on loopback, with no privilege: the
//! file's modules and constant labels in what a scrape gets, SIGHUP
//! after the file is rewritten (a good file in force for new scrapes and
//! not for one in flight; a broken one keeping the running configuration,
//! said on stderr with its line and column, and in the reload series),
//! `--check-config`'s exit codes and words, the example file in contrib/,
//! modules probing a real `portprobe listen` with their secret file and
//! the address family they name, and blackbox_exporter's `target=HOST:PORT` exactly as Prometheus and
//! Grafana Alloy send it.

mod support;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::http::{self, sample};
use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

/// A running exporter, where it serves, and the file its stderr goes to.
struct Exporter {
    child: KillOnDrop,
    at: SocketAddr,
    stderr: PathBuf,
}

impl Exporter {
    /// Starts `portprobe serve` with `args`, its stderr in `dir`.
    fn start(dir: &Path, args: &[&str]) -> Exporter {
        let stderr = dir.join("stderr");
        let file = fs::File::create(&stderr).unwrap();
        let (child, at) =
            http::start_exporter_with(Command::new(BIN).arg("serve").args(args), Stdio::from(file));
        Exporter { child, at, stderr }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = http::get(self.at, path, "X-Prometheus-Scrape-Timeout-Seconds: 20\r\n").unwrap();
        (r.code, r.body)
    }

    fn hangup(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGHUP).unwrap();
    }

    /// Waits (up to a generous limit) for a line of stderr holding
    /// `words`, and returns it.
    fn said(&self, words: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = fs::read_to_string(&self.stderr).unwrap();
            if let Some(line) = text.lines().find(|l| l.contains(words)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "stderr never said {words:?}: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A TCP port open on 127.0.0.1 while the listener lives, and one closed.
fn ports() -> (TcpListener, u16, u16) {
    let open = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (open, open_port, closed_port)
}

fn parse(body: &str) -> prometheus_parse::Scrape {
    let lines: Vec<String> = body.lines().map(str::to_string).collect();
    prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).unwrap()
}

/// Every series of `body` carries `site="{site}"`.
fn all_labelled(body: &str, site: &str) {
    let scrape = parse(body);
    assert!(!scrape.samples.is_empty(), "{body}");
    for s in &scrape.samples {
        assert_eq!(s.labels.get("site"), Some(site), "{s:?}\n{body}");
    }
}

#[test]
fn modules_and_labels_of_the_file_and_a_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (_open, open_port, closed_port) = ports();
    // A UDP port that never answers: its probe waits out its retries, a
    // scrape that is still in flight when the file is read again.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let config = dir.path().join("serve.toml");
    let first = format!(
        "listen = \"127.0.0.1:0\"\nallow = [\"127.0.0.1\"]\n\n[labels]\nsite = \"a\"\n\n\
         [modules.svc]\nports = \"{open_port}\"\nlocate = false\n\n\
         [modules.slow]\nports = \"{silent_port}/udp\"\nretries = 5\nlocate = false\n"
    );
    fs::write(&config, &first).unwrap();
    let e = Exporter::start(dir.path(), &["--config", config.to_str().unwrap()]);

    let (code, body) = e.get("/probe?target=127.0.0.1&module=svc");
    assert_eq!(code, 200, "{body}");
    all_labelled(&body, "a");
    assert!(body.contains(&format!("port=\"{open_port}\"")), "{body}");
    assert_eq!(
        sample(&body, "probe_success{site=\"a\",target=\"127.0.0.1\"}"),
        Some(1.0),
        "{body}"
    );
    let (code, body) = e.get("/probe?target=127.0.0.1&module=nosuch");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("no module nosuch: give one of slow, svc"),
        "{body}"
    );
    // product= and ports= work as without a file, with the labels.
    let (code, body) = e.get(&format!("/probe?target=127.0.0.1&ports={closed_port}"));
    assert_eq!(code, 200, "{body}");
    all_labelled(&body, "a");
    // The allow-list is the file's.
    let (code, body) = e.get("/probe?target=127.0.0.2&module=svc");
    assert_eq!(code, 403, "{body}");
    let (_, metrics) = e.get("/metrics");
    assert_eq!(
        sample(&metrics, "portprobe_config_last_reload_successful"),
        Some(1.0)
    );
    let started_at = sample(
        &metrics,
        "portprobe_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();

    // A scrape in flight while a good file replaces the first.
    let at = e.at;
    let in_flight = std::thread::spawn(move || {
        let r = http::get(at, "/probe?target=127.0.0.1&module=slow", "").unwrap();
        (r.code, r.body, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(300));
    let second = format!(
        "listen = \"127.0.0.1:1\"\nallow = [\"127.0.0.1\"]\n\n[labels]\nsite = \"b\"\n\n\
         [modules.svc]\nports = \"{closed_port}\"\n\n\
         [modules.other]\nports = \"{open_port}\"\n"
    );
    fs::write(&config, &second).unwrap();
    e.hangup();
    let line = e.said("reloaded");
    let reloaded = Instant::now();
    assert!(line.contains("serve.toml: 2 modules, 1 label"), "{line}");
    let line = e.said("listen cannot change");
    assert!(
        line.contains("still serving on 127.0.0.1:0 (not 127.0.0.1:1)"),
        "{line}"
    );
    let (code, body) = e.get("/probe?target=127.0.0.1&module=svc");
    assert_eq!(code, 200, "{body}");
    all_labelled(&body, "b");
    assert!(body.contains(&format!("port=\"{closed_port}\"")), "{body}");
    let (code, _) = e.get("/probe?target=127.0.0.1&module=other");
    assert_eq!(code, 200);
    let (code, _) = e.get("/probe?target=127.0.0.1&module=slow");
    assert_eq!(code, 400);
    let (code, body, ended) = in_flight.join().unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        ended > reloaded,
        "the slow scrape ended before the reload: it tests nothing"
    );
    // Begun under the first file, it ends under it.
    all_labelled(&body, "a");
    assert!(body.contains(&format!("port=\"{silent_port}\"")), "{body}");
    let (_, metrics) = e.get("/metrics");
    assert_eq!(
        sample(&metrics, "portprobe_config_last_reload_successful"),
        Some(1.0)
    );
    let reloaded_at = sample(
        &metrics,
        "portprobe_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();
    assert!(reloaded_at > started_at, "{metrics}");

    // A broken file: the second stays in force.
    fs::write(
        &config,
        "allow = [\"127.0.0.1\"]\n[modules.svc]\nport = \"22\"\n",
    )
    .unwrap();
    e.hangup();
    let line = e.said("the running configuration is kept");
    assert!(
        line.contains("serve.toml:3:1: unknown field `port`, expected one of"),
        "{line}"
    );
    let (code, body) = e.get("/probe?target=127.0.0.1&module=other");
    assert_eq!(code, 200, "{body}");
    all_labelled(&body, "b");
    let (_, metrics) = e.get("/metrics");
    assert_eq!(
        sample(&metrics, "portprobe_config_last_reload_successful"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "portprobe_config_last_reload_success_timestamp_seconds"
        ),
        Some(reloaded_at)
    );

    // Repaired, it is taken again.
    fs::write(&config, &first).unwrap();
    e.hangup();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, metrics) = e.get("/metrics");
        if sample(&metrics, "portprobe_config_last_reload_successful") == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "never reloaded: {metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, body) = e.get("/probe?target=127.0.0.1&module=svc");
    assert_eq!(code, 200, "{body}");
    all_labelled(&body, "a");
    drop(silent);
}

#[test]
fn flags_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_open, open_port, _) = ports();
    let config = dir.path().join("serve.toml");
    fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\nallow = [\"127.0.0.2\"]\n[modules.svc]\nports = \"{open_port}\"\n"
        ),
    )
    .unwrap();
    let e = Exporter::start(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--allow",
            "127.0.0.1",
        ],
    );
    let (code, body) = e.get("/probe?target=127.0.0.1&module=svc");
    assert_eq!(code, 200, "{body}");
    let (code, body) = e.get("/probe?target=127.0.0.2&module=svc");
    assert_eq!(code, 403, "{body}");
    // A reload keeps the flags over the new file.
    fs::write(
        &config,
        format!("allow = [\"127.0.0.2\"]\n[modules.svc2]\nports = \"{open_port}\"\n"),
    )
    .unwrap();
    e.hangup();
    e.said("reloaded");
    let (code, body) = e.get("/probe?target=127.0.0.1&module=svc2");
    assert_eq!(code, 200, "{body}");
    assert!(
        !fs::read_to_string(&e.stderr)
            .unwrap()
            .contains("listen cannot change")
    );
}

/// `portprobe serve ARGS`: the exit code, stdout and stderr.
fn serve(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).arg("serve").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_says_ok_or_where_the_file_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    fs::write(
        &good,
        "allow = [\"192.0.2.0/24\"]\n[labels]\nsite = \"a\"\n[modules.ard]\nproducts = [\"ARD\"]\n[modules.web]\nports = \"80,443\"\n",
    )
    .unwrap();
    let (code, out, err) = serve(&["--check-config", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!("{}: OK: 2 modules (ard, web), 1 label\n", good.display())
    );
    assert_eq!(err, "");

    for (text, says) in [
        (
            "allow = [\"192.0.2.0/24\"]\n\n[modules.ard]\nproducts = [\"ADR\"]\n",
            ":4:13: [modules.ard]: no product named \"ADR\" (closest: Apple Remote Desktop",
        ),
        (
            "max_time = \"10m\"\nconcurrency = -1\n",
            ":2:15: concurrency must be from 1 to 16384",
        ),
        (
            "[labels]\ninstance = \"x\"\n",
            ":2:1: [labels]: label instance",
        ),
        ("allow = [\n", ":1:10: unclosed array, expected `]`"),
    ] {
        let bad = dir.path().join("bad.toml");
        fs::write(&bad, text).unwrap();
        let (code, out, err) = serve(&["--check-config", bad.to_str().unwrap()]);
        assert_eq!(code, Some(3), "{text:?}: {err}");
        assert_eq!(out, "");
        let wanted = format!("portprobe: {}{says}", bad.display());
        assert!(
            err.starts_with(&wanted),
            "{text:?}:\n{err}\nwanted {wanted}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let bare = dir.path().join("bare.toml");
    fs::write(&bare, "[modules.web]\nports = \"80\"\n").unwrap();
    let (code, out, err) = serve(&["--check-config", bare.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "{}: OK: 1 module (web), 0 labels; no allow: the exporter needs --allow (or --allow-any) with it\n",
            bare.display()
        )
    );
    let (code, _, err) = serve(&["--check-config", "/nonexistent/serve.toml"]);
    assert_eq!(code, Some(3));
    assert!(
        err.starts_with("portprobe: /nonexistent/serve.toml: cannot read it: "),
        "{err}"
    );
    // The exporter refuses to start on a file --check-config refuses.
    let bad = dir.path().join("bad.toml");
    let (code, _, err) = serve(&["--config", bad.to_str().unwrap()]);
    assert_eq!(code, Some(3));
    assert!(err.contains("bad.toml:1:10: unclosed array"), "{err}");
}

#[test]
fn the_example_file_in_contrib_checks() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/portprobe-serve.toml");
    let (code, out, err) = serve(&["--check-config", example]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(": OK: "), "{out}");
}

/// The `probe_success` of a scrape of `query`, its state and reason.
fn blackbox(e: &Exporter, query: &str) -> (f64, String, String) {
    let (code, body) = e.get(&format!("/probe?{query}"));
    assert_eq!(code, 200, "{query}: {body}");
    let scrape = parse(&body);
    let success = scrape
        .samples
        .iter()
        .find(|s| s.metric == "probe_success")
        .unwrap_or_else(|| panic!("{query}: {body}"));
    let info = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "portprobe_port_info")
        .collect::<Vec<_>>();
    assert_eq!(info.len(), 1, "{query}: one port: {body}");
    let value = match success.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
        ref v => panic!("{v:?}"),
    };
    (
        value,
        info[0].labels.get("state").unwrap_or_default().to_string(),
        info[0].labels.get("reason").unwrap_or_default().to_string(),
    )
}

#[test]
fn blackbox_targets_host_and_port_as_prometheus_and_alloy_send_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_open, open_port, closed_port) = ports();
    let e = Exporter::start(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--allow", "127.0.0.1,::1"],
    );
    for query in [
        format!("target=127.0.0.1%3A{open_port}"),
        format!("target=127.0.0.1:{open_port}"),
        format!("module=tcp_connect&target=127.0.0.1%3A{open_port}"),
        format!("target=127.0.0.1%3A{open_port}&module=tcp_connect"),
    ] {
        let (success, state, reason) = blackbox(&e, &query);
        assert_eq!(
            (success, state.as_str(), reason.as_str()),
            (1.0, "open", "syn-ack"),
            "{query}"
        );
    }
    for query in [
        format!("target=127.0.0.1%3A{closed_port}"),
        format!("module=tcp_connect&target=127.0.0.1:{closed_port}"),
    ] {
        // Closed is an answer, not a block, to portprobe; to tcp_connect
        // it is a failed connection.
        let (success, state, reason) = blackbox(&e, &query);
        assert_eq!(
            (success, state.as_str(), reason.as_str()),
            (0.0, "closed", "conn-refused"),
            "{query}"
        );
    }
    // The allow-list applies to the host.
    let (code, body) = e.get(&format!("/probe?target=127.0.0.2%3A{open_port}"));
    assert_eq!(code, 403, "{body}");
    // A bare IPv6 address is a host, never a host and a port.
    let (code, body) = e.get("/probe?target=%3A%3A1");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("nothing to probe"), "{body}");
    let (code, body) = e.get("/probe?target=127.0.0.1%3A0");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("from 1 to 65535"), "{body}");

    let Ok(v6) = TcpListener::bind("[::1]:0") else {
        assert!(!support::in_ci(), "CI needs an IPv6 loopback");
        eprintln!("skipped the IPv6 half: this host has no IPv6 loopback");
        return;
    };
    let v6_port = v6.local_addr().unwrap().port();
    for query in [
        format!("target=%5B%3A%3A1%5D%3A{v6_port}"),
        format!("target=[::1]:{v6_port}"),
        format!("module=tcp_connect&target=%5B%3A%3A1%5D%3A{v6_port}"),
    ] {
        let (success, state, _) = blackbox(&e, &query);
        assert_eq!((success, state.as_str()), (1.0, "open"), "{query}");
    }
    drop(v6);
    let (success, state, _) = blackbox(&e, &format!("target=%5B%3A%3A1%5D%3A{v6_port}"));
    assert_eq!((success, state.as_str()), (0.0, "closed"));
}

#[test]
fn a_module_probes_a_far_side_responder_with_its_secret_file() {
    let keys = support::responder::Keys::new();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _responder = support::responder::Responder::start(
        Command::new(BIN)
            .args(["listen", "--bind", "127.0.0.1", "--ports"])
            .arg(port.to_string())
            .arg("--secret-file")
            .arg(keys.path("key"))
            .env_remove("PORTPROBE_SECRET"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    fs::write(
        &config,
        format!(
            "allow = [\"127.0.0.1\"]\n\
             [modules.far]\nports = \"{port}\"\nlocate = false\nresponder_secret_file = \"{}\"\n\
             [modules.wrong]\nports = \"{port}\"\nlocate = false\nresponder_secret_file = \"{}\"\n\
             [modules.plain]\nports = \"{port}\"\nlocate = false\n",
            keys.path("key").display(),
            keys.path("wrong").display()
        ),
    )
    .unwrap();
    let e = Exporter::start(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    for (module, reason) in [
        ("far", "responder"),
        ("wrong", "not-responder"),
        ("plain", "syn-ack"),
    ] {
        let (code, body) = e.get(&format!("/probe?target=127.0.0.1&module={module}"));
        assert_eq!(code, 200, "{body}");
        let scrape = parse(&body);
        let info = scrape
            .samples
            .iter()
            .find(|s| s.metric == "portprobe_port_info")
            .unwrap_or_else(|| panic!("{module}: {body}"));
        assert_eq!(
            (info.labels.get("state"), info.labels.get("reason")),
            (Some("open"), Some(reason)),
            "{module}: {body}"
        );
    }
}

#[test]
fn a_module_probes_the_family_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let (_open, open_port, _) = ports();
    let config = dir.path().join("serve.toml");
    fs::write(
        &config,
        format!(
            "allow = [\"127.0.0.1\", \"::1\"]\n\
             [modules.v4]\nports = \"{open_port}\"\nfamily = \"ipv4\"\n\
             [modules.v6]\nports = \"{open_port}\"\nfamily = \"ipv6\"\n"
        ),
    )
    .unwrap();
    let e = Exporter::start(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let (code, body) = e.get("/probe?target=127.0.0.1&module=v4");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        sample(&body, "portprobe_status{target=\"127.0.0.1\"}"),
        Some(0.0),
        "{body}"
    );
    // An IPv4 address has no IPv6 address to probe: nothing is sent, and
    // the target is UNKNOWN.
    let (code, body) = e.get("/probe?target=127.0.0.1&module=v6");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        sample(&body, "portprobe_status{target=\"127.0.0.1\"}"),
        Some(3.0),
        "{body}"
    );
    assert!(!body.contains("portprobe_port_info{"), "{body}");
}
