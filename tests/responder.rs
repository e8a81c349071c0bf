//! The `--responder` client against responders on loopback, built in the
//! test from the protocol's own functions: what `open`, `not-responder`,
//! `closed` and a silent UDP port mean when every probe speaks to a
//! far-side `portprobe listen`, and that a wrong secret proves nothing.
//! (The real `portprobe listen` through a firewall is in `listen_lab.rs`.)

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::thread;

use portprobe::port::Transport;
use portprobe::wire::responder::{BUSY_NOTICE, HELLO_LEN, Hello, Secret, Seen, reply};
use serde_json::Value;

mod support;

const SECRET: &str = "the lab's shared secret, 32 bytes";

fn secret() -> Secret {
    Secret::new(SECRET.as_bytes().to_vec()).unwrap()
}

/// A TCP port that answers hellos as the responder does.
fn tcp_responder() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut hello = [0u8; HELLO_LEN];
            if conn.read_exact(&mut hello).is_ok()
                && let Some(h) = Hello::parse(&hello)
            {
                let seen = Seen {
                    transport: Transport::Tcp,
                    from: conn.peer_addr().unwrap(),
                    to: conn.local_addr().unwrap(),
                    limiting: false,
                };
                let _ = conn.write_all(&reply(&secret(), &h, &seen));
            }
        }
    });
    port
}

/// A UDP port that answers hellos as the responder does.
fn udp_responder() -> u16 {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = s.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 128];
        let to = s.local_addr().unwrap();
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if let Some(h) = Hello::parse(&buf[..n]) {
                let seen = Seen {
                    transport: Transport::Udp,
                    from,
                    to,
                    limiting: false,
                };
                let _ = s.send_to(&reply(&secret(), &h, &seen), from);
            }
        }
    });
    port
}

/// A TCP port of a responder with no room: every connection gets the busy
/// notice and a close.
fn tcp_busy() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.write_all(&BUSY_NOTICE);
            let _ = conn.shutdown(std::net::Shutdown::Write);
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
        }
    });
    port
}

/// A UDP port of a responder that, before each reply to a hello, sends the
/// reply to another hello (a forger's that named the client's address);
/// with `answer` false, only that.
fn udp_answering_another_first(answer: bool) -> u16 {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = s.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 128];
        let to = s.local_addr().unwrap();
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let Some(h) = Hello::parse(&buf[..n]) else {
                continue;
            };
            let seen = Seen {
                transport: Transport::Udp,
                from,
                to,
                limiting: false,
            };
            let forged = Hello {
                nonce: [0x5a; 16],
                ..h
            };
            let _ = s.send_to(&reply(&secret(), &forged, &seen), from);
            if answer {
                let _ = s.send_to(&reply(&secret(), &h, &seen), from);
            }
        }
    });
    port
}

/// A TCP port held by another program: it accepts and says nothing.
fn tcp_other() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for conn in l.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

/// A UDP port that holds nothing and never answers.
fn udp_silent() -> (u16, UdpSocket) {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    (s.local_addr().unwrap().port(), s)
}

fn run(spec: &str, secret: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(["127.0.0.1", "--ports", spec, "--responder", "--secret-file"])
        .arg(&key)
        .args(extra)
        .env_remove("PORTPROBE_SECRET")
        .output()
        .unwrap()
}

fn state(doc: &Value, protocol: &str, port: u16) -> (String, String) {
    let r = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["protocol"] == protocol && r["port"] == port)
        .unwrap_or_else(|| panic!("no {protocol}/{port} in {doc}"));
    (
        r["state"].as_str().unwrap().to_string(),
        r["reason"].as_str().unwrap().to_string(),
    )
}

fn pair(state: &str, reason: &str) -> (String, String) {
    (state.to_string(), reason.to_string())
}

#[test]
fn every_outcome_against_a_responder() {
    let (tcp, udp, other) = (tcp_responder(), udp_responder(), tcp_other());
    let (closed, _closed) = support::closed_tcp_port();
    let (silent, _held) = udp_silent();
    let spec = format!("{tcp},{other},{closed},{udp}/udp,{silent}/udp");
    let o = run(
        &spec,
        SECRET,
        &["--json", "--no-locate", "--timeout", "300ms"],
    );
    let doc: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(state(&doc, "tcp", tcp), pair("open", "responder"));
    assert_eq!(state(&doc, "udp", udp), pair("open", "responder"));
    assert_eq!(state(&doc, "tcp", other), pair("open", "not-responder"));
    assert_eq!(state(&doc, "tcp", closed), pair("closed", "conn-refused"));
    // The responder always answers: a silent UDP port is blocked.
    assert_eq!(state(&doc, "udp", silent), pair("filtered", "no-response"));
    let udp_result = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["port"] == udp)
        .unwrap();
    assert_eq!(udp_result["udp_probe"], "responder");
    assert_eq!(
        o.status.code(),
        Some(2),
        "a silent UDP port is blocked: CRITICAL"
    );

    let text = String::from_utf8(run(&spec, SECRET, &["--no-locate", "--timeout", "300ms"]).stdout)
        .unwrap();
    assert!(
        text.contains("the responder answered and proved the secret"),
        "{text}"
    );
    assert!(
        text.contains("something answered, but not the responder"),
        "{text}"
    );
    assert!(
        text.contains("something else answered, nothing of ours listens there"),
        "{text}"
    );
    assert!(text.contains("and the responder always answers"), "{text}");
}

#[test]
fn a_wrong_secret_proves_nothing() {
    let (tcp, udp) = (tcp_responder(), udp_responder());
    let spec = format!("{tcp},{udp}/udp");
    let o = run(
        &spec,
        "not the lab's secret, also 32 byte",
        &["--json", "--no-locate", "--timeout", "300ms"],
    );
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(state(&doc, "tcp", tcp), pair("open", "not-responder"));
    // A reply with a wrong tag is another program's datagram.
    assert_eq!(state(&doc, "udp", udp), pair("open", "not-responder"));
    let results = doc["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["reason"] != "responder"), "{doc}");
}

#[test]
fn the_secret_never_comes_from_the_command_line() {
    let o = Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(["127.0.0.1", "--ports", "1", "--responder"])
        .env_remove("PORTPROBE_SECRET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "the shared secret is missing: give --secret-file FILE or set PORTPROBE_SECRET"
        ),
        "{err}"
    );
    let from_env = Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args([
            "127.0.0.1",
            "--ports",
            &tcp_responder().to_string(),
            "--responder",
            "--json",
        ])
        .env("PORTPROBE_SECRET", SECRET)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&from_env.stdout).unwrap();
    assert_eq!(doc["results"][0]["reason"], "responder", "{doc}");
    let short = Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(["127.0.0.1", "--ports", "1", "--responder"])
        .env("PORTPROBE_SECRET", "short")
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&short.stderr).contains("needs at least 16"));
}

#[test]
fn a_full_responder_is_asked_again_and_reported_busy_not_another_program() {
    let (busy, other) = (tcp_busy(), tcp_other());
    let spec = format!("{busy},{other}");
    let o = run(
        &spec,
        SECRET,
        &["--json", "--no-locate", "--timeout", "300ms"],
    );
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(state(&doc, "tcp", busy), pair("open", "responder-busy"));
    assert_eq!(state(&doc, "tcp", other), pair("open", "not-responder"));
    let tries = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["port"] == busy)
        .unwrap()["attempts"]
        .as_u64()
        .unwrap();
    assert_eq!(tries, 6, "asked again after each busy notice");
    let text = String::from_utf8(run(&spec, SECRET, &["--no-locate", "--timeout", "300ms"]).stdout)
        .unwrap();
    assert!(
        text.contains("the responder had no room for it each time it was tried"),
        "{text}"
    );
}

#[test]
fn the_responders_reply_to_another_hello_is_no_sign_of_another_program() {
    let (answered, unanswered) = (
        udp_answering_another_first(true),
        udp_answering_another_first(false),
    );
    let spec = format!("{answered}/udp,{unanswered}/udp");
    let o = run(
        &spec,
        SECRET,
        &["--json", "--no-locate", "--timeout", "300ms"],
    );
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(state(&doc, "udp", answered), pair("open", "responder"));
    // Only replies to others' hellos: no answer to ours, so silence.
    assert_eq!(
        state(&doc, "udp", unanswered),
        pair("filtered", "no-response")
    );
}
