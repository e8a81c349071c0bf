//! `portprobe listen` in the lab's server namespace, behind the router's
//! nftables rules, probed by `portprobe --responder` from the client
//! namespace as an unprivileged user: every allowed port proven, every
//! dropped or rejected port exactly as the rules say, a held port skipped
//! by the responder and `not-responder` to the client; replies never
//! larger than requests (counted by the router), no reply to anything but
//! a hello, a flood limited while another source is served; privileges
//! dropped after binding, and nothing left behind at SIGTERM.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use portprobe::listen::{SOURCE_BURST, SOURCE_RATE};
use portprobe::port::Transport;
use portprobe::wire::responder::{HELLO_LEN, Hello, Secret, verify};
use serde_json::Value;
use support::lab::{Lab, Ns};
use support::netns::{Proto, bound_ports};
use support::responder::{BIN, Keys, Responder, SECRET, client, listen_cmd, results};

#[test]
fn the_responder_proves_exactly_what_the_router_allows() {
    let Some(lab) = support::lab_or_skip("the_responder_proves_exactly_what_the_router_allows")
    else {
        return;
    };
    let keys = Keys::new();
    // Another program holds TCP 6500 (IPv4 and IPv6) before the responder
    // starts.
    let _held_v4 = lab.tcp_listeners(&[6500], false).unwrap();
    let _held_v6 = lab.tcp_listeners(&[6500], true).unwrap();
    // Four rejections per client address stay within the router's burst of
    // ICMP errors, so each is seen.
    lab.nft(&[
        "tcp dport 6010-6014 drop",
        "tcp dport 6015-6016 reject with icmpx type admin-prohibited",
        "udp dport 7010-7014 drop",
        "udp dport 7015-7016 reject with icmpx type admin-prohibited",
    ])
    .unwrap();
    let ports = "6000-6019,6500,7000-7019/udp";
    let responder = Responder::start(&mut listen_cmd(&lab, &keys, &["--ports", ports]));
    assert!(
        responder.started.contains("skipped TCP 6500: in use by"),
        "{}",
        responder.started
    );
    assert!(
        responder.started.contains(
            "answering hellos on 20 TCP and 20 UDP ports at every address, IPv4 and IPv6"
        ),
        "{}",
        responder.started
    );

    let hosts = [lab.server_v4().to_string(), lab.server_v6().to_string()];
    let got = results(&client(&lab, SECRET, &hosts, ports));
    assert_eq!(got.len(), 2 * 41, "{got:?}");
    for ((address, port), (state, reason, from)) in &got {
        let (proto, n) = port.split_once(' ').unwrap();
        let n: u16 = n.parse().unwrap();
        let router = if address.contains(':') {
            lab.router_v6().to_string()
        } else {
            lab.router_v4().to_string()
        };
        let expected: (&str, &str, Value) = match (proto, n) {
            ("tcp", 6500) => ("open", "not-responder", Value::Null),
            ("tcp", 6010..=6014) | ("udp", 7010..=7014) => ("filtered", "no-response", Value::Null),
            ("tcp", 6015..=6016) | ("udp", 7015..=7016) => {
                ("filtered", "admin-prohibited", Value::String(router))
            }
            _ => ("open", "responder", Value::Null),
        };
        assert_eq!(
            (state.as_str(), reason.as_str(), from),
            (expected.0, expected.1, &expected.2),
            "{address} {port}"
        );
    }

    // A client without the secret proves nothing.
    let wrong = std::fs::read_to_string(keys.path("wrong")).unwrap();
    let got = results(&client(&lab, wrong.trim_end(), &hosts[..1], ports));
    assert!(
        got.values().all(|(_, reason, _)| reason != "responder"),
        "{got:?}"
    );
    // Something answers, but nothing proves it is the responder.
    for port in ["tcp 6000", "udp 7000"] {
        let r = &got[&(hosts[0].clone(), port.into())];
        assert_eq!(
            (r.0.as_str(), r.1.as_str()),
            ("open", "not-responder"),
            "{port}"
        );
    }

    let (status, summary) = responder.stop();
    assert!(status.success(), "{status:?} {summary}");
    assert!(summary.starts_with("stopped by SIGTERM"), "{summary}");
    // (A run of UDP ports, split where a proven port was probed again
    // as the round's canary.)
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("UDP 70")
                && l.ends_with("claimed sources: 198.18.0.2, 2001:db8::2")),
        "{summary}"
    );
    assert!(summary.contains("2001:db8::2"), "{summary}");
    let left: Vec<u16> = bound_ports(lab.server_ns(), Proto::Udp)
        .unwrap()
        .into_iter()
        .chain(bound_ports(lab.server_ns(), Proto::Tcp).unwrap())
        .filter(|p| (6000..=7019).contains(p) && *p != 6500)
        .collect();
    assert!(left.is_empty(), "sockets left after SIGTERM: {left:?}");
}

fn hello(port: u16, nonce: u8) -> [u8; HELLO_LEN] {
    Hello {
        transport: Transport::Udp,
        port,
        nonce: [nonce; 16],
    }
    .to_bytes()
}

#[test]
fn no_amplification_no_reply_to_junk_and_a_flood_is_limited() {
    let Some(lab) =
        support::lab_or_skip("no_amplification_no_reply_to_junk_and_a_flood_is_limited")
    else {
        return;
    };
    let keys = Keys::new();
    let server = lab.server_v4();
    // Counters of what the router forwards each way.
    let nft = format!(
        "add counter inet lab requests\nadd counter inet lab replies\n\
         add rule inet lab forward ip daddr {server} udp dport 7100 counter name requests\n\
         add rule inet lab forward ip saddr {server} udp sport 7100 counter name replies\n"
    );
    lab.nft_script(&nft).unwrap();
    let responder = Responder::start(&mut listen_cmd(
        &lab,
        &keys,
        &["--ports", "7100-7101/udp", "--bind", &server.to_string()],
    ));
    let to = SocketAddr::from((server, 7100));
    let secret = Secret::new(SECRET.as_bytes().to_vec()).unwrap();

    // Junk first: none of it draws a reply.
    let junk = lab
        .run_in(Ns::Client, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let good = hello(7100, 1);
            let mut padded = good;
            padded[HELLO_LEN - 1] = 1;
            let mut wrong_kind = good;
            wrong_kind[4] = 2;
            let mut wrong_transport = good;
            wrong_transport[5] = 1;
            let mut first_version = [0u8; 48];
            first_version[..4].copy_from_slice(b"PPR1");
            first_version[4] = 1;
            first_version[5] = 17;
            let datagrams: Vec<Vec<u8>> = vec![
                good[..HELLO_LEN - 1].to_vec(),
                [&good[..], &[0]].concat(),
                [&good[..], &[0u8; 1400][..]].concat(),
                padded.to_vec(),
                wrong_kind.to_vec(),
                wrong_transport.to_vec(),
                first_version.to_vec(),
                vec![],
                vec![0xff; HELLO_LEN],
                b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            ];
            for d in &datagrams {
                s.send_to(d, to).unwrap();
            }
            let mut buf = [0u8; 2048];
            (datagrams.len(), s.recv_from(&mut buf).is_err())
        })
        .unwrap();
    assert!(junk.1, "a reply came back to junk");
    assert_eq!(lab.nft_counter("replies").unwrap(), (0, 0));

    // A flood from one client socket to UDP 7100, while the router (another
    // source, on the server's own link) keeps asking on UDP 7101 for as
    // long as the flood lasts. The flood's datagrams cannot crowd the other
    // port's socket buffer, so what is measured is the responder's own
    // promise: it refuses none of the other source's hellos, and answers
    // them all through the flood. Kernel queues shared by both may still
    // lose a few on a busy machine: the bound is three in four, each second.
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let other = std::thread::spawn({
        let secret = secret.clone();
        let lab_router = lab.router_ns().to_string();
        let flooding = std::sync::Arc::clone(&flooding);
        move || {
            support::netns::run_in(&lab_router, move || {
                let s = UdpSocket::bind("0.0.0.0:0").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
                let start = Instant::now();
                // (second of the flood it was sent in, answered), one hello
                // every 20 ms, each with a nonce of its own.
                let mut asked: Vec<(u64, bool)> = Vec::new();
                let mut buf = [0u8; 128];
                let nonce = |i: usize| {
                    let mut n = [0u8; 16];
                    n[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    n
                };
                let take = |asked: &mut Vec<(u64, bool)>, len: usize, buf: &[u8]| {
                    if let Some(i) = (0..asked.len())
                        .find(|&i| verify(&secret, &nonce(i), &buf[..len]).is_some())
                    {
                        asked[i].1 = true;
                    }
                };
                while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent_at = Instant::now();
                    let h = Hello {
                        transport: Transport::Udp,
                        port: 7101,
                        nonce: nonce(asked.len()),
                    };
                    s.send_to(&h.to_bytes(), (server, 7101)).unwrap();
                    asked.push((start.elapsed().as_secs(), false));
                    while sent_at.elapsed() < Duration::from_millis(20) {
                        if let Ok((len, _)) = s.recv_from(&mut buf) {
                            take(&mut asked, len, &buf);
                        }
                    }
                }
                // Late answers still count.
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                while let Ok((len, _)) = s.recv_from(&mut buf) {
                    take(&mut asked, len, &buf);
                }
                asked
            })
            .unwrap()
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let (sent, received, took) = lab
        .run_in(Ns::Client, move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_nonblocking(true).unwrap();
            let h = hello(7100, 9);
            let mut buf = [0u8; 128];
            let (mut sent, mut received) = (0u64, 0u64);
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(3000) {
                if s.send_to(&h, to).is_ok() {
                    sent += 1;
                }
                while s.recv_from(&mut buf).is_ok() {
                    received += 1;
                }
            }
            let took = start.elapsed();
            std::thread::sleep(Duration::from_millis(300));
            while s.recv_from(&mut buf).is_ok() {
                received += 1;
            }
            (sent, received, took)
        })
        .unwrap();
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let asked = other.join().unwrap();
    let answered_other = asked.iter().filter(|(_, ok)| *ok).count();
    eprintln!(
        "flood: {sent} hellos sent, {received} replies, in {took:?}; the other source: {answered_other} of {} answered",
        asked.len()
    );
    assert!(sent > 40_000, "only {sent} hellos in {took:?}: no flood");
    // One socket gets its own burst and rate, whatever it sends.
    let allowed = SOURCE_BURST + SOURCE_RATE * (took.as_secs_f64() + 0.5);
    assert!(
        (received as f64) <= allowed,
        "the flood got {received} replies for {sent} hellos in {took:?}"
    );
    // The other source, answered through the flood, second by second.
    for second in 0..3 {
        let in_window: Vec<bool> = asked
            .iter()
            .filter(|(s, _)| *s == second)
            .map(|(_, ok)| *ok)
            .collect();
        let ok = in_window.iter().filter(|&&ok| ok).count();
        assert!(
            !in_window.is_empty() && ok * 4 >= in_window.len() * 3,
            "second {second} of the flood: {ok} of {} hellos of the other source answered",
            in_window.len()
        );
    }

    let (status, summary) = responder.stop();
    assert!(status.success());
    // The responder refused none of the other source's hellos.
    let other_line = summary
        .lines()
        .find(|l| l.starts_with("UDP 7101: "))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(
        !other_line.contains("over a limit") && other_line.contains("198.18.1.1"),
        "{summary}"
    );
    // UDP sources are only claimed: the summary names them as such.
    let flood_line = summary
        .lines()
        .find(|l| l.starts_with("UDP 7100: "))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(
        flood_line.contains("over a limit") && flood_line.contains("claimed sources: 198.18.0.2"),
        "{summary}"
    );
    let answered_flood: f64 = flood_line
        .strip_prefix("UDP 7100: ")
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let ran: f64 = summary
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("stopped by SIGTERM after "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    // However many hellos reached it, the responder answered no more than
    // the socket's allowance since it started.
    assert!(
        answered_flood <= SOURCE_BURST + SOURCE_RATE * ran + 1.0,
        "{answered_flood} answered in {ran} s: {summary}"
    );
    // Reply bytes never exceed request bytes; every reply answers a hello.
    let (req_packets, req_bytes) = lab.nft_counter("requests").unwrap();
    let (rep_packets, rep_bytes) = lab.nft_counter("replies").unwrap();
    // (The router's counters see the client's flood, not the other
    // source, which sits on the server's own link.)
    assert!(req_packets >= sent + junk.0 as u64, "{req_packets} {sent}");
    assert!(
        received <= rep_packets,
        "{received} replies came from nowhere"
    );
    // Each reply is 96 bytes on the wire (IPv4, UDP, 68 bytes), each hello
    // 108 (80 bytes), and the router saw no reply that was not to a hello.
    assert_eq!(rep_bytes, rep_packets * 96, "a reply of another size");
    assert!(
        rep_packets <= sent && rep_bytes <= req_bytes,
        "replies {rep_packets} packets {rep_bytes} bytes, requests {req_packets} packets {req_bytes} bytes"
    );
}

fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn privileges_drop_after_binding_and_sigterm_leaves_nothing() {
    let Some(lab) =
        support::lab_or_skip("privileges_drop_after_binding_and_sigterm_leaves_nothing")
    else {
        return;
    };
    let keys = Keys::new();
    let ports = "80,5900,123/udp";
    let responder = Responder::start(&mut listen_cmd(
        &lab,
        &keys,
        &["--ports", ports, "--user", "nobody"],
    ));
    assert!(
        responder.started.contains(", as nobody (uid 65534)"),
        "{}",
        responder.started
    );
    assert_eq!(status_ids(responder.pid(), "Uid:"), vec![65534; 4]);
    assert_eq!(status_ids(responder.pid(), "Gid:"), vec![65534; 4]);
    assert_eq!(status_ids(responder.pid(), "Groups:"), vec![65534]);
    assert_eq!(status_ids(responder.pid(), "CapEff:"), vec![0]);
    let hosts = [lab.server_v4().to_string()];
    let got = results(&client(&lab, SECRET, &hosts, ports));
    for port in ["tcp 80", "tcp 5900", "udp 123"] {
        let r = &got[&(hosts[0].clone(), port.into())];
        assert_eq!(
            (r.0.as_str(), r.1.as_str()),
            ("open", "responder"),
            "{port}"
        );
    }
    let (status, summary) = responder.stop();
    assert!(status.success(), "{summary}");
    assert!(
        summary.contains("TCP 80: 1 hello answered, from 198.18.0.2"),
        "{summary}"
    );
    assert!(bound_ports(lab.server_ns(), Proto::Tcp).unwrap().is_empty());
    assert!(bound_ports(lab.server_ns(), Proto::Udp).unwrap().is_empty());

    // Started as nobody: the low port is skipped with the reason, the rest
    // served; --user is refused outright.
    let unprivileged = Responder::start(
        lab.cmd_as_nobody(Ns::Server, BIN)
            .unwrap()
            .args(["listen", "--ports", ports])
            .env("PORTPROBE_SECRET", SECRET),
    );
    assert!(
        unprivileged
            .started
            .contains("skipped TCP 80: ports below 1024 need root or CAP_NET_BIND_SERVICE"),
        "{}",
        unprivileged.started
    );
    assert!(unprivileged.started.contains("skipped UDP 123: "));
    assert!(
        unprivileged
            .started
            .contains("answering hellos on 1 TCP ports")
    );
    let (status, _) = unprivileged.stop();
    assert!(status.success());
    let refused = lab
        .cmd_as_nobody(Ns::Server, BIN)
        .unwrap()
        .args(["listen", "--ports", ports, "--user", "nobody"])
        .env("PORTPROBE_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--user nobody needs portprobe listen to start as root"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn udp_replies_leave_from_the_address_the_client_probed() {
    let name = "udp_replies_leave_from_the_address_the_client_probed";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let keys = Keys::new();
    // A second address of each family on the server; replies to it that
    // left from the first would belong to no flow the router knows.
    for addr in ["198.18.1.3/24", "2001:db8:1::3/64"] {
        support::run(Command::new("ip").args([
            "-n",
            lab.server_ns(),
            "addr",
            "add",
            addr,
            "dev",
            Lab::SERVER_IF,
            "nodad",
        ]))
        .unwrap();
    }
    // A stateful router: nothing new from the server's side.
    lab.nft(&[
        "ct state established,related accept",
        &format!("iifname \"{}\" drop", Lab::ROUTER_SERVER_IF),
    ])
    .unwrap();
    let ports = "7200,7200-7201/udp";
    let responder = Responder::start(&mut listen_cmd(&lab, &keys, &["--ports", ports]));
    let hosts = ["198.18.1.3".to_string(), "2001:db8:1::3".to_string()];
    let got = results(&client(&lab, SECRET, &hosts, ports));
    assert_eq!(got.len(), 6, "{got:?}");
    for ((address, port), (state, reason, _)) in &got {
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("open", "responder"),
            "{address} {port}"
        );
    }
    let (status, _) = responder.stop();
    assert!(status.success());
}

#[test]
fn a_client_sweeping_4096_tcp_ports_at_once_gets_every_proof() {
    let name = "a_client_sweeping_4096_tcp_ports_at_once_gets_every_proof";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let keys = Keys::new();
    // The client opens every connection at once, far more than a source's
    // share of the responder's slots: hellos that come with the handshake
    // take no slot, and a connection turned away busy is asked again.
    let ports = "40000-44095";
    let responder = Responder::start(&mut listen_cmd(&lab, &keys, &["--ports", ports]));
    let hosts = [lab.server_v4().to_string()];
    let got = results(&client(&lab, SECRET, &hosts, ports));
    assert_eq!(got.len(), 4096);
    let unproven: Vec<_> = got
        .iter()
        .filter(|(_, (state, reason, _))| {
            (state.as_str(), reason.as_str()) != ("open", "responder")
        })
        .collect();
    assert!(
        unproven.is_empty(),
        "{} unproven: {unproven:?}",
        unproven.len()
    );
    let (status, summary) = responder.stop();
    assert!(status.success());
    // Every hello answered (a port asked again on a busy machine may have
    // had its first reply too), none refused over a limit.
    let totals = summary
        .lines()
        .find(|l| l.contains("(not a hello)"))
        .unwrap_or_else(|| panic!("{summary}"));
    let answered: u64 = totals
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        answered >= 4096 && totals.contains(" 0 hellos refused (over a limit)"),
        "{summary}"
    );
}
