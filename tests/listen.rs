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

/// Ports handed out so far by [`free_ports`] in this process: each call
/// starts past them, so that tests running side by side never get the same.
static HANDED_OUT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// Ports free on 127.0.0.1 for both TCP and UDP right now, below Linux's
/// ephemeral range (32768 and up), so that no connection made meanwhile by
/// anything else on this machine takes one as its source port.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    let skip = HANDED_OUT.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
    let start = 20_000 + ((std::process::id() as u16 % 10_000) + skip) % 12_000;
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

#[test]
fn a_secret_file_others_can_reach_or_that_is_no_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let port = free_ports(1)[0].to_string();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, format!("{SECRET}\n")).unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let hint = "give a file holding the secret alone (e.g. `(umask 077; head -c 32 /dev/urandom | base64 > key)`)";
    let exposed = |mode: u32, why: &str| {
        let says = format!(
            "portprobe: the secret file {0} is {why} (mode {mode:04o}): make it private with `chmod 600 {0}` (its group may read it: 0640)",
            key.display()
        );
        (key.clone(), Some(mode), says)
    };
    let irregular = |file: &std::path::Path, what: &str| {
        let says = format!(
            "portprobe: the secret file {} is {what}, not a regular file: {hint}",
            file.display()
        );
        (file.to_path_buf(), None, says)
    };
    let cases = [
        exposed(0o644, "readable by others"),
        exposed(
            0o666,
            "readable and writable by others and writable by its group",
        ),
        irregular(&fifo, "a FIFO"),
        irregular(dir.path(), "a directory"),
        irregular(std::path::Path::new("/dev/zero"), "a character device"),
    ];
    for (file, mode, says) in &cases {
        if let Some(mode) = mode {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        let listen = ["listen", "--bind", "127.0.0.1", "--ports", &port];
        let probe = ["127.0.0.1", "--ports", &port, "--responder"];
        for args in [&listen[..], &probe[..]] {
            // Bounded: a FIFO with no writer must not hang the run.
            let mut child = KillOnDrop::spawn(
                Command::new(BIN)
                    .args(args)
                    .arg("--secret-file")
                    .arg(file)
                    .env_remove("PORTPROBE_SECRET")
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )
            .unwrap();
            let status = child.wait_for(Duration::from_secs(30));
            assert!(
                status.is_some(),
                "{args:?} {}: still running",
                file.display()
            );
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(status.unwrap().code(), Some(3), "{args:?}: {err}");
            assert_eq!(err.trim_end(), says, "{args:?}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert_eq!(out, "", "{args:?}");
        }
    }

    // Private to its owner, or readable by its group too: accepted.
    for mode in [0o600, 0o640] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut child = KillOnDrop::spawn(
            Command::new(BIN)
                .args(["listen", "--bind", "127.0.0.1", "--ports", &port])
                .arg("--secret-file")
                .arg(&key)
                .env_remove("PORTPROBE_SECRET")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut started = String::new();
        while !started.contains("answering hellos") {
            let mut err = String::new();
            if out.read_line(&mut started).unwrap() == 0 {
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("{mode:o}: {started}{err}");
            }
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = child.wait_for(Duration::from_secs(10)).unwrap();
        assert!(status.success(), "{mode:o}: {status:?}");
    }
}
