//! `portprobe serve --web.config.file`: TLS and HTTP Basic authentication
//! from a web configuration in the Prometheus exporter toolkit's format,
//! on loopback. A real Prometheus scrapes it over HTTPS with a password
//! and a client certificate (`up` is 1), with a wrong password (401, `up`
//! 0) and without the certificate the exporter requires (the handshake
//! fails, `up` 0). Every route asks for the password; client certificates
//! are checked in each mode; min_version and max_version bound the TLS
//! versions offered; SIGTERM closes handshaking and idle connections at
//! once; plain HTTP to the TLS port, and a handshake
//! that never ends, are closed without holding the exporter up; a bad
//! file exits 3 with one line naming it and the field.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http;
use support::lab::Ns;
use support::proc::KillOnDrop;
use support::tls::{self, Pki, basic};

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");
const LIMIT: Duration = Duration::from_secs(20);
const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// A web configuration with TLS from `pki`, `client_auth_type` `auth`
/// (with the CA as `client_ca_file` when it is not `NoClientCert`), and
/// the user [`USER`] with the bcrypt hash `hash`. Paths are relative to
/// the file, as the toolkit reads them.
fn web_config(dir: &Path, pki: &Pki, auth: &str, hash: &str) -> std::path::PathBuf {
    web_config_with(dir, pki, auth, hash, "")
}

/// As [`web_config`], with `extra` lines in `tls_server_config`.
fn web_config_with(
    dir: &Path,
    pki: &Pki,
    auth: &str,
    hash: &str,
    extra: &str,
) -> std::path::PathBuf {
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    let ca = if auth == "NoClientCert" {
        String::new()
    } else {
        format!("  client_ca_file: {}\n", name(&pki.ca))
    };
    let path = dir.join(format!("web-{auth}.yml"));
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: {auth}\n{ca}{extra}\
             http_server_config:\n  http2: false\n\
             basic_auth_users:\n  {USER}: '{hash}'\n",
            name(&pki.server_cert),
            name(&pki.server_key),
        ),
    )
    .unwrap();
    path
}

/// `portprobe serve` on 127.0.0.1 with `config`, started by `cmd`.
fn exporter(cmd: &mut Command, config: &Path, extra: &[&str]) -> (KillOnDrop, SocketAddr) {
    http::start_exporter(
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1"])
            .arg("--web.config.file")
            .arg(config)
            .args(extra),
    )
}

#[test]
fn prometheus_scrapes_over_tls_with_a_password_and_a_client_certificate() {
    let name = "prometheus_scrapes_over_tls_with_a_password_and_a_client_certificate";
    // A namespace of its own, so that Prometheus' port is its alone.
    let Some(lab) = support::lab_or_skip_with(name, &["prometheus", "promtool", "htpasswd"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    // The hash as the documentation makes it.
    let line =
        support::run(Command::new("htpasswd").args(["-nbBC", "10", USER, PASSWORD])).unwrap();
    let hash = line.trim().strip_prefix(&format!("{USER}:")).unwrap();
    let config = web_config(dir.path(), &pki, "RequireAndVerifyClientCert", hash);
    let (_exporter, at) = exporter(&mut lab.cmd(Ns::Client, BIN), &config, &[]);
    let job = |job: &str, password: &str, cert: bool| {
        let cert = if cert {
            format!(
                "      cert_file: {}\n      key_file: {}\n",
                pki.client_cert.display(),
                pki.client_key.display()
            )
        } else {
            String::new()
        };
        format!(
            "  - job_name: {job}\n    scheme: https\n    metrics_path: /metrics\n\
             \x20   basic_auth:\n      username: {USER}\n      password: '{password}'\n\
             \x20   tls_config:\n      ca_file: {}\n{cert}\
             \x20   static_configs:\n      - targets: [\"{at}\"]\n",
            pki.ca.display()
        )
    };
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n{}{}{}",
            job("good", PASSWORD, true),
            job("wrong_password", "Tr0ub4dor&3", true),
            job("no_certificate", PASSWORD, false),
        ),
    )
    .unwrap();
    support::run(
        Command::new("promtool")
            .arg("check")
            .arg("config")
            .arg(&prom_config),
    )
    .unwrap();
    let prom_at: SocketAddr = "127.0.0.1:9090".parse().unwrap();
    let _prometheus = KillOnDrop::spawn(
        lab.cmd(Ns::Client, "prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_at}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let api = |path: String| -> Value {
        let r = lab
            .run_in(Ns::Client, move || {
                http::get_within(prom_at, &path, "", LIMIT)
            })
            .unwrap();
        match r {
            Ok(r) if r.code == 200 => serde_json::from_str(&r.body).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    };
    let query = |q: &str| -> Vec<Value> {
        let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        api(format!("/api/v1/query?query={q}"))["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    // Targets are first scraped on a 5 s timer: poll until every job has
    // been, and the good one has its series.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (up, series) = loop {
        let up = query("up");
        let series = query("portprobe_exporter_connections_limit{job=\"good\",scope=\"all\"}");
        if (up.len() == 3 && !series.is_empty()) || Instant::now() > deadline {
            break (up, series);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let up_of = |job: &str| {
        up.iter()
            .find(|s| s["metric"]["job"] == job)
            .map(|s| s["value"][1].clone())
    };
    assert_eq!(up_of("good"), Some("1".into()), "{up:?}");
    assert_eq!(up_of("wrong_password"), Some("0".into()), "{up:?}");
    assert_eq!(up_of("no_certificate"), Some("0".into()), "{up:?}");
    assert_eq!(series.len(), 1, "{series:?}");
    // Why each failed, as Prometheus saw it.
    let targets = api("/api/v1/targets".into());
    let error_of = |job: &str| {
        targets["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["labels"]["job"] == job)
            .map(|t| t["lastError"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    eprintln!("wrong_password: {}", error_of("wrong_password"));
    eprintln!("no_certificate: {}", error_of("no_certificate"));
    assert!(error_of("wrong_password").contains("401"), "{targets}");
    let no_cert = error_of("no_certificate");
    assert!(
        no_cert.contains("certificate") || no_cert.contains("tls"),
        "{no_cert}"
    );
    assert!(!no_cert.contains("401"), "{no_cert}");
    assert_eq!(error_of("good"), "", "{targets}");
}

/// Starts an exporter on the host's loopback with TLS (`auth`) and a
/// user; the PKI's directory is kept with it.
fn tls_exporter(auth: &str, extra: &[&str]) -> (tempfile::TempDir, Pki, KillOnDrop, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let config = web_config(dir.path(), &pki, auth, &bcrypt::hash(PASSWORD, 4).unwrap());
    let (child, at) = exporter(&mut Command::new(BIN), &config, extra);
    (dir, pki, child, at)
}

#[test]
fn every_route_needs_the_password() {
    let (_dir, pki, _exporter, at) = tls_exporter("NoClientCert", &[]);
    let get =
        |path: &str, headers: &str| tls::get(at, &pki.ca, None, path, headers, LIMIT).unwrap();
    for path in [
        "/",
        "/metrics",
        "/probe?target=127.0.0.1&product=ARD",
        "/nowhere",
    ] {
        for headers in [String::new(), basic(USER, "wrong"), basic("root", PASSWORD)] {
            let r = get(path, &headers);
            assert_eq!(r.code, 401, "{path} {headers:?}: {r:?}");
            assert!(
                r.head
                    .lines()
                    .any(|l| l.eq_ignore_ascii_case("www-authenticate: Basic realm=\"portprobe\"")),
                "{}",
                r.head
            );
        }
    }
    let r = get("/metrics", &basic(USER, PASSWORD));
    assert_eq!(r.code, 200, "{r:?}");
    assert!(
        r.body.contains("portprobe_exporter_connections "),
        "{}",
        r.body
    );
    let r = get("/", &basic(USER, PASSWORD));
    assert_eq!(r.code, 200);
    // The wrong tries of this one source so far are within its burst; a
    // few more and it is told to wait, without a check.
    let mut codes = Vec::new();
    for i in 0..12 {
        codes.push(get("/metrics", &basic(USER, &format!("guess {i}"))).code);
    }
    assert!(codes.contains(&429), "{codes:?}");
    // The right password, already checked once, still passes.
    assert_eq!(get("/metrics", &basic(USER, PASSWORD)).code, 200);
}

#[test]
fn client_certificates_are_asked_for_and_checked_as_configured() {
    let headers = basic(USER, PASSWORD);
    for (auth, none_ok, stranger_ok) in [
        ("RequireAndVerifyClientCert", false, false),
        ("VerifyClientCertIfGiven", true, false),
        ("RequireAnyClientCert", false, true),
        ("RequestClientCert", true, true),
        ("NoClientCert", true, true),
    ] {
        let (_dir, pki, _exporter, at) = tls_exporter(auth, &[]);
        let code = |client: Option<(&Path, &Path)>| {
            tls::get(at, &pki.ca, client, "/metrics", &headers, LIMIT)
                .map(|r| r.code)
                .ok()
        };
        assert_eq!(
            code(Some((&pki.client_cert, &pki.client_key))),
            Some(200),
            "{auth}"
        );
        let ok = |yes: bool| yes.then_some(200);
        assert_eq!(code(None), ok(none_ok), "{auth}, no certificate");
        assert_eq!(
            code(Some((&pki.stranger_cert, &pki.stranger_key))),
            ok(stranger_ok),
            "{auth}, a certificate from no known CA"
        );
    }
}

#[test]
fn plain_http_and_a_stalled_handshake_are_closed_and_the_exporter_keeps_answering() {
    let (_dir, pki, _exporter, at) = tls_exporter("NoClientCert", &["--header-timeout", "2s"]);
    // Plain HTTP to the TLS port: told so, and closed.
    let mut plain = TcpStream::connect(at).unwrap();
    plain.set_read_timeout(Some(LIMIT)).unwrap();
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let started = Instant::now();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        started.elapsed() < LIMIT,
        "the exporter held the connection open"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.0 400 "), "{answer:?}");
    // A handshake begun and never finished is closed at the header
    // timeout, and so is a connection that says nothing at all.
    let mut stalled = TcpStream::connect(at).unwrap();
    let mut silent = TcpStream::connect(at).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let closed = http::closed_within(&mut stalled, LIMIT);
    let closed = closed.expect("a stalled handshake was never closed");
    assert!(closed >= Duration::from_secs(1), "{closed:?}");
    assert!(http::closed_within(&mut silent, LIMIT).is_some());
    let r = tls::get(at, &pki.ca, None, "/metrics", &basic(USER, PASSWORD), LIMIT).unwrap();
    assert_eq!(r.code, 200);
    assert_eq!(
        http::sample(
            &r.body,
            "portprobe_exporter_connections_closed_total{reason=\"tls_handshake\"}"
        ),
        Some(3.0),
        "{}",
        r.body
    );
}

#[test]
fn a_bad_web_config_exits_3_with_one_line_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let cert = pki.server_cert.display().to_string();
    let key = pki.server_key.display().to_string();
    let other_key = pki.client_key.display().to_string();
    let cases = [
        (
            format!("tls_server_config:\n  cert_file: {cert}\n"),
            "tls_server_config.key_file",
        ),
        (
            format!(
                "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: Maybe\n"
            ),
            "tls_server_config.client_auth_type",
        ),
        (
            format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {other_key}\n"),
            "tls_server_config.key_file",
        ),
        (
            format!("tls_server_config:\n  cert_file: {key}\n  key_file: {key}\n"),
            "tls_server_config.cert_file",
        ),
        (
            format!(
                "tls_server_config:\n  cert_file: {cert}\n  key_file: {}/absent.key\n",
                dir.path().display()
            ),
            "tls_server_config.key_file",
        ),
        (
            "basic_auth_users:\n  alice: hunter2\n".to_string(),
            "basic_auth_users.alice",
        ),
        (
            "tls_server_config:\n  certfile: x\n".to_string(),
            "tls_server_config.certfile",
        ),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.yml"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--allow", "127.0.0.1"])
            .arg("--web.config.file")
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{text}: {stderr}");
        assert!(out.stdout.is_empty(), "{text}: it served");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
    }
}

#[test]
fn sigterm_closes_handshaking_and_idle_tls_connections_at_once() {
    let (_dir, pki, mut exporter, at) = tls_exporter(
        "NoClientCert",
        &["--header-timeout", "60s", "--idle-timeout", "60s"],
    );
    // One connection stuck in its handshake, one that said nothing, and one
    // answered over TLS and kept alive.
    let mut stalled = TcpStream::connect(at).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut silent = TcpStream::connect(at).unwrap();
    let r = tls::get(at, &pki.ca, None, "/metrics", &basic(USER, PASSWORD), LIMIT).unwrap();
    assert_eq!(r.code, 200);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(exporter.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = exporter
        .wait_for(LIMIT)
        .expect("the exporter did not stop on SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    // Nothing waited for the 60 s timeouts or the grace period.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for s in [&mut stalled, &mut silent] {
        assert!(http::closed_within(s, Duration::from_secs(5)).is_some());
    }
}

#[test]
fn min_and_max_version_bound_what_is_offered() {
    use rustls::version::{TLS12, TLS13};
    let headers = basic(USER, PASSWORD);
    for (extra, tls12, tls13) in [
        ("", true, true),
        ("  min_version: TLS13\n", false, true),
        ("  max_version: TLS12\n", true, false),
        // rustls has nothing older than TLS 1.2: TLS10 means it.
        ("  min_version: TLS10\n", true, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        let config = web_config_with(dir.path(), &pki, "NoClientCert", &hash, extra);
        let (_exporter, at) = exporter(&mut Command::new(BIN), &config, &[]);
        let code = |v: &'static rustls::SupportedProtocolVersion| {
            tls::get_over(&[v], at, &pki.ca, None, "/metrics", &headers, LIMIT)
                .map(|r| r.code)
                .ok()
        };
        assert_eq!(code(&TLS12), tls12.then_some(200), "{extra:?}, TLS 1.2");
        assert_eq!(code(&TLS13), tls13.then_some(200), "{extra:?}, TLS 1.3");
    }
}
