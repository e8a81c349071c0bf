//! `portprobe listen` and `portprobe --responder` under attack in the lab,
//! the attacker's traffic as real packets: a relay on the router that reads
//! the client's hello off the wire, asks the responder by another path and
//! hands the proof back (from its own port, or forged from the
//! responder's); a translation on the way (source NAT, port forwarding); a
//! flood of hellos forged with the client's address; idle TCP connections
//! from a few addresses, then from enough to fill every slot.

mod support;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portprobe::listen::{TOTAL_BURST, TOTAL_RATE};
use portprobe::port::Transport;
use portprobe::wire::responder::Hello;
use serde_json::Value;
use support::attack::{Forger, IdleConnections, Tap};
use support::lab::Lab;
use support::responder::{Keys, Responder, SECRET, client, listen_cmd, result_objects, results};

/// The result object of `protocol port` in a JSON report.
fn result(out: &std::process::Output, protocol: &str, port: u16) -> Value {
    result_objects(out)
        .into_iter()
        .find(|r| r["protocol"] == protocol && r["port"] == port)
        .unwrap_or_else(|| panic!("no {protocol} {port}"))
}

fn state(r: &Value) -> (&str, &str) {
    (r["state"].as_str().unwrap(), r["reason"].as_str().unwrap())
}

/// How a relay hands the responder's answer back to the client.
#[derive(Clone, Copy)]
enum Handback {
    /// From its own socket: another address and port than the probed one.
    OwnPort,
    /// Forged from the probed address and port.
    Forged,
}

/// A relay on the router: it reads every datagram the client sends to
/// `probed` off the router's client-side link (before the firewall drops
/// it), sends the same bytes to the responder itself (the router's own
/// traffic is not forwarded, so the drop rule does not apply: another
/// path), and hands each answer back to the client. Counts the answers
/// handed back.
struct Relay {
    stop: Arc<AtomicBool>,
    handed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(lab: &Lab, probed: SocketAddrV4, how: Handback) -> Relay {
        let stop = Arc::new(AtomicBool::new(false));
        let handed = Arc::new(AtomicU64::new(0));
        let (s, h) = (Arc::clone(&stop), Arc::clone(&handed));
        let thread = support::netns::spawn_in(lab.router_ns(), "relay", move || {
            let tap = Tap::new(Lab::ROUTER_CLIENT_IF).unwrap();
            let forger = Forger::new().unwrap();
            let asker = UdpSocket::bind("0.0.0.0:0").unwrap();
            asker
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut buf = [0u8; 256];
            while !s.load(Ordering::Relaxed) {
                let Some(d) = tap.next() else { continue };
                if d.to != probed {
                    continue;
                }
                asker.send_to(&d.payload, probed).unwrap();
                let Ok((n, _)) = asker.recv_from(&mut buf) else {
                    continue;
                };
                let sent = match how {
                    Handback::OwnPort => asker.send_to(&buf[..n], d.from).map(drop),
                    Handback::Forged => forger.send(probed, d.from, &buf[..n]),
                };
                if sent.is_ok() {
                    h.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .unwrap();
        Relay {
            stop,
            handed,
            thread: Some(thread),
        }
    }

    fn handed(&self) -> u64 {
        self.handed.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_proof_relayed_from_another_port_proves_nothing() {
    let Some(lab) = support::lab_or_skip("a_proof_relayed_from_another_port_proves_nothing") else {
        return;
    };
    let keys = Keys::new();
    lab.nft(&["udp dport 25000 drop"]).unwrap();
    let responder = Responder::start(&mut listen_cmd(
        &lab,
        &keys,
        &["--ports", "25000-25001/udp"],
    ));
    let relay = Relay::start(
        &lab,
        SocketAddrV4::new(lab.server_v4(), 25000),
        Handback::OwnPort,
    );
    let hosts = [lab.server_v4().to_string()];
    let out = client(&lab, SECRET, &hosts, "25000-25001/udp");
    let handed = relay.handed();
    drop(relay);
    assert!(handed >= 1, "the relay handed nothing back");
    assert_eq!(state(&result(&out, "udp", 25001)), ("open", "responder"));
    // The dropped port stays blocked, whatever the relay hands over.
    assert_eq!(
        state(&result(&out, "udp", 25000)),
        ("filtered", "no-response"),
        "{handed} relayed proofs"
    );
    responder.stop();
}

#[test]
fn a_relay_that_forges_the_responders_address_shows_in_the_result() {
    let name = "a_relay_that_forges_the_responders_address_shows_in_the_result";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let keys = Keys::new();
    lab.nft(&["udp dport 25000 drop"]).unwrap();
    let responder = Responder::start(&mut listen_cmd(
        &lab,
        &keys,
        &["--ports", "25000-25001/udp"],
    ));
    let relay = Relay::start(
        &lab,
        SocketAddrV4::new(lab.server_v4(), 25000),
        Handback::Forged,
    );
    let hosts = [lab.server_v4().to_string()];
    let out = client(&lab, SECRET, &hosts, "25000-25001/udp");
    let handed = relay.handed();
    drop(relay);
    assert!(handed >= 1, "the relay handed nothing back");
    assert_eq!(result(&out, "udp", 25001)["translation"], Value::Null);
    // The proof is the responder's, but it saw the relay's hello: the
    // result says so, with the addresses.
    let r = result(&out, "udp", 25000);
    assert_eq!(state(&r), ("open", "responder"));
    let t = &r["translation"];
    let seen_from = t["seen_from"].as_str().unwrap_or_default();
    let sent_from = t["sent_from"].as_str().unwrap_or_default();
    assert!(seen_from.starts_with("198.18.1.1:"), "{r}");
    assert!(sent_from.starts_with("198.18.0.2:"), "{r}");
    assert_eq!(t["seen_at"], Value::Null, "{r}");
    let note = r["note"].as_str().unwrap_or_default();
    assert!(
        note.contains(&format!(
            "from behind a translation: it saw the hello come from {seen_from}, not from this computer's {sent_from} (a NAT between, or a relay)"
        )),
        "{r}"
    );
    responder.stop();
}

#[test]
fn a_nat_and_a_port_forwarding_on_the_way_show_in_the_result() {
    let name = "a_nat_and_a_port_forwarding_on_the_way_show_in_the_result";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let keys = Keys::new();
    // The router hides the client behind its own address, and forwards
    // TCP 6000 and UDP 25000 to the responder's 6001 and 25001.
    let server = lab.server_v4();
    lab.nft_script(&format!(
        "add table ip nat\n\
         add chain ip nat pre {{ type nat hook prerouting priority -100; }}\n\
         add chain ip nat post {{ type nat hook postrouting priority 100; }}\n\
         add rule ip nat pre tcp dport 6000 dnat to {server}:6001\n\
         add rule ip nat pre udp dport 25000 dnat to {server}:25001\n\
         add rule ip nat post oifname \"{}\" masquerade\n",
        Lab::ROUTER_SERVER_IF
    ))
    .unwrap();
    let responder = Responder::start(&mut listen_cmd(
        &lab,
        &keys,
        &["--ports", "6001-6002,25001-25002/udp"],
    ));
    let hosts = [server.to_string()];
    let out = client(&lab, SECRET, &hosts, "6000,6002,25000/udp,25002/udp");
    for (protocol, port, forwarded_to) in [
        ("tcp", 6000, Some(6001)),
        ("tcp", 6002, None),
        ("udp", 25000, Some(25001)),
        ("udp", 25002, None),
    ] {
        let r = result(&out, protocol, port);
        assert_eq!(state(&r), ("open", "responder"), "{r}");
        let t = &r["translation"];
        assert!(
            t["seen_from"]
                .as_str()
                .is_some_and(|a| a.starts_with("198.18.1.1:")),
            "{r}"
        );
        let seen_at = forwarded_to.map(|p| Value::String(format!("{server}:{p}")));
        assert_eq!(t["seen_at"], seen_at.unwrap_or(Value::Null), "{r}");
    }
    let text = String::from_utf8(
        lab.client_cmd_as_nobody(support::responder::BIN)
            .unwrap()
            .args([
                &hosts[0],
                "--ports",
                "25000/udp",
                "--responder",
                "--no-locate",
            ])
            .env("PORTPROBE_SECRET", SECRET)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        text.contains(&format!(
            "and arrive at {server}:25001, not at the address and port probed (a NAT between, port forwarding, or a relay)"
        )),
        "{text}"
    );
    responder.stop();
}

#[test]
fn a_flood_forged_with_the_clients_address_makes_no_open_port_look_blocked() {
    let name = "a_flood_forged_with_the_clients_address_makes_no_open_port_look_blocked";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let keys = Keys::new();
    let server = lab.server_v4();
    let client_v4 = lab.client_v4();
    lab.nft_script(&format!(
        "add counter inet lab replies\n\
         add rule inet lab forward ip saddr {server} ip daddr {client_v4} udp sport 7000-7009 counter name replies\n"
    ))
    .unwrap();
    let began = Instant::now();
    let responder = Responder::start(&mut listen_cmd(
        &lab,
        &keys,
        &["--ports", "6000,7000-7009/udp"],
    ));
    // From the router (on the path, so it may send any source address):
    // hellos "from" the client, every source port, to every port the
    // client will probe, as fast as it can until the client is done.
    let stop = Arc::new(AtomicBool::new(false));
    let forged = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, forged) = (Arc::clone(&stop), Arc::clone(&forged));
        support::netns::spawn_in(lab.router_ns(), "forger", move || {
            let forger = Forger::new().unwrap();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let hello = Hello {
                    transport: Transport::Udp,
                    port: 7000 + (n % 10) as u16,
                    nonce: [(n % 251) as u8; 16],
                };
                let from = SocketAddrV4::new(client_v4, 1024 + (n % 64_000) as u16);
                let to = SocketAddrV4::new(server, hello.port);
                if forger.send(from, to, &hello.to_bytes()).is_ok() {
                    forged.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .unwrap()
    };
    // Long enough to spend any allowance the client's address might have.
    let spent = Instant::now();
    while forged.load(Ordering::Relaxed) < 80_000 && spent.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let hosts = [server.to_string()];
    let out = client(&lab, SECRET, &hosts, "6000,7000-7009/udp");
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let elapsed = began.elapsed().as_secs_f64();
    let forged = forged.load(Ordering::Relaxed);
    let got = results(&out);
    eprintln!("{forged} forged hellos; the client saw {got:?}");
    assert_eq!(state(&result(&out, "tcp", 6000)), ("open", "responder"));
    for port in 7000..=7009 {
        let r = result(&out, "udp", port);
        match state(&r) {
            ("open", "responder") => {}
            ("open|filtered", "no-response") => assert!(
                r["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("the responder was limiting its replies")),
                "{r}"
            ),
            other => panic!("UDP {port} is {other:?}, not open or unconfirmed: {r}"),
        }
        assert_eq!(r["blocked"], false, "{r}");
    }
    let (status, summary) = responder.stop();
    assert!(status.success());
    eprintln!("{summary}");
    // The flood was felt: it spent the total (not the client's own
    // allowance), or came faster than the responder reads, and the
    // summary does not take the forged source at its word.
    assert!(
        summary.contains("refused over the total cap") || summary.contains("lost unread"),
        "{summary}"
    );
    assert!(summary.contains("claimed sources: 198.18.0.2"), "{summary}");
    // Whatever arrived, no more replies left than the total allows.
    let (replies, _) = lab.nft_counter("replies").unwrap();
    assert!(
        (replies as f64) <= TOTAL_BURST + TOTAL_RATE * elapsed,
        "{replies} replies in {elapsed:.1} s"
    );
}

/// Adds `count` more addresses, 198.18.0.10 and up, to the client.
fn client_addresses(lab: &Lab, count: u8) -> Vec<Ipv4Addr> {
    (0..count)
        .map(|i| {
            let a = Ipv4Addr::new(198, 18, 0, 10 + i);
            support::run(Command::new("ip").args([
                "-n",
                lab.client_ns(),
                "addr",
                "add",
                &format!("{a}/24"),
                "dev",
                Lab::CLIENT_IF,
            ]))
            .unwrap();
            a
        })
        .collect()
}

/// Waits until `idle` holds at least `n` connections, or `most` passed.
fn wait_for(idle: &IdleConnections, n: usize, most: Duration) {
    let start = Instant::now();
    while idle.held() < n && start.elapsed() < most {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn idle_connections_from_a_few_addresses_leave_room_for_every_client() {
    let name = "idle_connections_from_a_few_addresses_leave_room_for_every_client";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let keys = Keys::new();
    let responder = Responder::start(&mut listen_cmd(&lab, &keys, &["--ports", "6000-6004"]));
    // 5 addresses, 256 idle connections wanted from each: 1 280, more than
    // the 1 024 slots, were each source let take what it asks for. The
    // client probes once they fill the slots, or once the attacker has had
    // four seconds to try.
    let idle = IdleConnections::hold(
        lab.client_ns(),
        &client_addresses(&lab, 5),
        SocketAddr::from((lab.server_v4(), 6000)),
        256,
    )
    .unwrap();
    wait_for(
        &idle,
        portprobe::listen::MAX_CONNECTIONS,
        Duration::from_secs(4),
    );
    let held = idle.held();
    let hosts = [lab.server_v4().to_string()];
    let got = results(&client(&lab, SECRET, &hosts, "6000-6004"));
    drop(idle);
    for port in 6000..=6004 {
        let r = &got[&(hosts[0].clone(), format!("tcp {port}"))];
        assert_eq!(
            (r.0.as_str(), r.1.as_str()),
            ("open", "responder"),
            "TCP {port}, while {held} idle connections were held"
        );
    }
    let (_, summary) = responder.stop();
    assert!(summary.contains("turned away busy"), "{summary}");
}

#[test]
fn a_full_responder_is_told_apart_from_another_program() {
    let name = "a_full_responder_is_told_apart_from_another_program";
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let keys = Keys::new();
    // Another program holds TCP 6500 before the responder starts.
    let _held = lab.tcp_listeners(&[6500], false).unwrap();
    // A responder with 150 open files (and no privilege to raise the
    // limit): 80 connection slots, not 1 024, so that three addresses of
    // idle connections fill them all.
    let responder = Responder::start(
        lab.server_cmd("prlimit")
            .args(["--nofile=150:150", "--", "setpriv"])
            .args([
                "--inh-caps=-sys_resource",
                "--bounding-set=-sys_resource",
                "--",
            ])
            .args([
                support::responder::BIN,
                "listen",
                "--ports",
                "6000-6004,6500",
            ])
            .arg("--secret-file")
            .arg(keys.path("key")),
    );
    let idle = IdleConnections::hold(
        lab.client_ns(),
        &client_addresses(&lab, 3),
        SocketAddr::from((lab.server_v4(), 6000)),
        64,
    )
    .unwrap();
    wait_for(&idle, 80, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    let held = idle.held();
    let hosts = [lab.server_v4().to_string()];
    let out = client(&lab, SECRET, &hosts, "6000-6004,6500");
    drop(idle);
    assert_eq!(state(&result(&out, "tcp", 6500)), ("open", "not-responder"));
    // Each port is the responder's, proven or (when every try needed a
    // slot and found them taken) busy: never another program's. A hello
    // that comes with the handshake needs no slot, so the client's are
    // mostly proven while the attacker's connections are turned away; a
    // busy one was asked again.
    let mut busy = 0;
    for port in 6000..=6004 {
        let r = result(&out, "tcp", port);
        match state(&r) {
            ("open", "responder-busy") => {
                busy += 1;
                assert!(r["attempts"].as_u64().unwrap() > 1, "asked again: {r}");
            }
            ("open", "responder") => {}
            other => panic!("TCP {port} is {other:?}: {r}"),
        }
    }
    eprintln!("{busy} of 5 ports busy, {held} idle connections held");
    let (_, summary) = responder.stop();
    assert!(summary.contains("turned away busy"), "{summary}");
}
