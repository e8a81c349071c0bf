//! `portprobe listen` on loopback, with no privilege: `--responder` probes
//! prove its ports, a port another program holds is skipped and named,
//! nothing but a hello draws a reply, bad arguments are refused, and
//! SIGINT ends it with a summary per port. (Through a firewall, with
//! `--user` and a flood: `listen_lab.rs`.)

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use portprobe::port::Transport;
use portprobe::wire::responder::{Hello, Secret, Seen, verify};
use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");
const SECRET: &str = "a loopback secret of some length";

/// Ports free on 127.0.0.1 for both TCP and UDP right now, below Linux's
/// ephemeral range (32768 and up), so that no connection made meanwhile by
/// anything else on this machine takes one as its source port.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    for port in (start..32_000).chain(20_000..start) {
        if ports.len() == n {
            break;
        }
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        if tcp.is_ok() && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(ports.len(), n, "no free ports between 20000 and 32000");
    ports
}

#[test]
fn a_responder_on_loopback() {
    let ports = free_ports(2);
    let (tcp, udp) = (ports[0], ports[1]);
    let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let held_port = held.local_addr().unwrap().port();
    let spec = format!("{tcp},{held_port},{udp}/udp");
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["listen", "--bind", "127.0.0.1", "--ports", &spec])
            .env("PORTPROBE_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut started = String::new();
    while !started.contains("answering hellos") {
        assert!(out.read_line(&mut started).unwrap() > 0, "{started}");
    }
    assert!(
        started.contains(&format!("skipped TCP {held_port}: in use by "))
            && started.contains(&format!("(pid {})", std::process::id())),
        "{started}"
    );
    assert!(
        started.contains("answering hellos on 1 TCP and 1 UDP ports at 127.0.0.1"),
        "{started}"
    );

    // Junk gets nothing; a hello gets a reply that proves the secret.
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let hello = Hello {
        transport: Transport::Udp,
        port: udp,
        nonce: [7; 16],
    }
    .to_bytes();
    for junk in [&hello[..63], &[hello.as_slice(), &[0]].concat()[..], b"hi"] {
        s.send_to(junk, (Ipv4Addr::LOCALHOST, udp)).unwrap();
    }
    let mut buf = [0u8; 128];
    assert!(s.recv_from(&mut buf).is_err(), "a reply to junk");
    s.send_to(&hello, (Ipv4Addr::LOCALHOST, udp)).unwrap();
    let (n, _) = s.recv_from(&mut buf).unwrap();
    assert!(n < hello.len());
    let secret = Secret::new(SECRET.as_bytes().to_vec()).unwrap();
    // It says what it saw: the hello from this socket, to its port.
    assert_eq!(
        verify(&secret, &[7; 16], &buf[..n]),
        Some(Seen {
            transport: Transport::Udp,
            from: s.local_addr().unwrap(),
            to: (Ipv4Addr::LOCALHOST, udp).into(),
            limiting: false,
        })
    );

    // The client proves both ports and sees another program on the third.
    let probe = Command::new(BIN)
        .args(["127.0.0.1", "--ports", &spec, "--responder", "--json"])
        .env("PORTPROBE_SECRET", SECRET)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let reasons: Vec<(u64, &str)> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["port"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    for (port, reason) in [
        (tcp, "responder"),
        (udp, "responder"),
        (held_port, "not-responder"),
    ] {
        assert!(
            reasons.contains(&(u64::from(port), reason)),
            "{port} {reason}: {reasons:?}"
        );
    }
    drop(held);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait_for(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status:?}");
    let mut summary = String::new();
    out.read_to_string(&mut summary).unwrap();
    assert!(summary.starts_with("stopped by SIGINT after "), "{summary}");
    assert!(
        summary.contains(&format!(
            "UDP {udp}: 2 hellos answered, 3 messages ignored, claimed sources: 127.0.0.1"
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("TCP {tcp}: 1 hello answered, from 127.0.0.1")),
        "{summary}"
    );
    // Its sockets are gone.
    assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, tcp)).is_ok());
    assert!(UdpSocket::bind((Ipv4Addr::LOCALHOST, udp)).is_ok());
}

#[test]
fn bad_arguments_are_refused_in_one_line() {
    for (args, secret, says) in [
        (
            &["listen"][..],
            Some(SECRET),
            "<--product <NAME>|--ports <SPEC>>",
        ),
        (
            &["listen", "--ports", "9", "--bind", "not-an-ip"][..],
            Some(SECRET),
            "is not an IP address",
        ),
        (
            &["listen", "--ports", "9", "--bind", "224.0.0.1"][..],
            Some(SECRET),
            "is a multicast address",
        ),
        (
            &["listen", "--ports", "9"][..],
            None,
            "the shared secret is missing",
        ),
        (
            &["listen", "--ports", "9"][..],
            Some("short"),
            "needs at least 16",
        ),
        (
            &["listen", "--ports", "9", "--bind", "192.0.2.1"][..],
            Some(SECRET),
            "not an address of this host",
        ),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_remove("PORTPROBE_SECRET");
        if let Some(s) = secret {
            cmd.env("PORTPROBE_SECRET", s);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
