//! UDP probing proven against real server programs from Debian's packages,
//! started inside the lab's server namespace, and through the lab's nftables
//! router. portprobe always runs as user `nobody`. The tests need root to
//! build the lab: without it each prints one line saying it was skipped;
//! under CI=true they must run.

mod support;

use support::json;

use std::collections::BTreeMap;
use std::process::Output;

use serde_json::Value;
use support::lab::{Lab, Ns};
use support::peers::{Peer, Peers};

fn probe(lab: &Lab, ns: Ns, args: &[&str]) -> Output {
    lab.cmd_as_nobody(ns, env!("CARGO_BIN_EXE_portprobe"))
        .expect("command as nobody")
        .args(args)
        .output()
        .expect("run portprobe")
}

fn by_port<'a>(doc: &'a Value, protocol: &str) -> BTreeMap<u16, &'a Value> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["protocol"] == protocol)
        .map(|r| (r["port"].as_u64().unwrap() as u16, r))
        .collect()
}

/// Every real server, the port it serves and the protocol portprobe must
/// recognise there. mDNS is checked separately: responders answer on-link
/// queries only.
const SERVED: &[(u16, &str)] = &[
    (7, "echo"),
    (53, "dns"),
    (67, "dhcp"),
    (69, "tftp"),
    (111, "portmapper"),
    (123, "ntp"),
    (137, "netbios-ns"),
    (161, "snmp"),
    (500, "ike"),
    (623, "rmcp"),
    (1701, "l2tp"),
    (2049, "nfs"),
    (4500, "ike-nat-t"),
    (5060, "sip"),
];

/// A port nothing listens on.
const UNUSED: u16 = 9;

fn assert_recognised(
    results: &BTreeMap<u16, &Value>,
    port: u16,
    protocol: &str,
    peers: &Peers,
    peer: Option<Peer>,
) {
    let r = results[&port];
    let log = peer.map(|p| peers.log(p)).unwrap_or_default();
    assert_eq!(r["state"], "open", "udp/{port}: {r}\n{log}");
    assert_eq!(r["reason"], "udp-response", "udp/{port}: {r}\n{log}");
    assert_eq!(r["udp_probe"], protocol, "udp/{port}: {r}");
    assert_eq!(r["reply"]["protocol"], protocol, "udp/{port}: {r}");
    assert!(
        !r["reply"]["detail"].as_str().unwrap().is_empty(),
        "udp/{port}: {r}"
    );
}

fn peer_for(port: u16) -> Option<Peer> {
    Peer::ALL
        .iter()
        .copied()
        .find(|p| p.udp_ports().contains(&port))
}

#[test]
fn every_real_server_is_open_by_protocol() {
    let Some(lab) = support::lab_or_skip_with(
        "every_real_server_is_open_by_protocol",
        &Peer::programs(Peer::ALL),
    ) else {
        return;
    };
    let peers =
        Peers::start(lab.server_ns(), lab.server_v4(), Peer::ALL).expect("start the real servers");
    let mut ports: Vec<String> = SERVED.iter().map(|(p, _)| format!("{p}/udp")).collect();
    ports.push(format!("{UNUSED}/udp"));
    ports.push("514/udp".to_string());
    let target = lab.server_v4().to_string();

    // Through the router, from the client namespace.
    let o = probe(
        &lab,
        Ns::Client,
        &[&target, "--ports", &ports.join(","), "--json"],
    );
    let doc = json(&o);
    let results = by_port(&doc, "udp");
    for &(port, protocol) in SERVED {
        assert_recognised(&results, port, protocol, &peers, peer_for(port));
    }
    let unused = results[&UNUSED];
    assert_eq!(
        (unused["state"].as_str(), unused["reason"].as_str()),
        (Some("closed"), Some("port-unreachable")),
        "{unused}"
    );
    assert_eq!(unused["reason_from"], target);
    // Syslog never answers: an honest "no reply", which rsyslog did receive.
    let syslog = results[&514];
    assert_eq!(
        (syslog["state"].as_str(), syslog["reason"].as_str()),
        (Some("open|filtered"), Some("no-response")),
        "{syslog}"
    );
    assert!(
        peers.syslog_received().contains("portprobe"),
        "rsyslog received: {}",
        peers.syslog_received()
    );
    // TFTP answers from a new port; the reply still counts, and says so.
    let tftp = results[&69];
    assert!(
        tftp["reply_from"]
            .as_str()
            .is_some_and(|f| f.starts_with(&target) && !f.ends_with(":69")),
        "{tftp}"
    );
    // One unused port closed and syslog unconfirmed: WARNING, nothing blocked.
    assert_eq!(o.status.code(), Some(1), "{doc}");

    let text = String::from_utf8_lossy(
        &probe(&lab, Ns::Client, &[&target, "--ports", "514/udp,5353/udp"]).stdout,
    )
    .into_owned();
    assert!(text.contains("syslog receivers never reply"), "{text}");
    assert!(
        text.contains("mDNS responders ignore queries from other links"),
        "{text}"
    );

    // On the server's own link, mDNS answers too.
    let doc = json(&probe(
        &lab,
        Ns::Server,
        &[&target, "--ports", "5353/udp", "--json"],
    ));
    assert_recognised(
        &by_port(&doc, "udp"),
        5353,
        "mdns",
        &peers,
        Some(Peer::Mdns),
    );
}

#[test]
fn apple_remote_desktop_probes_tcp_and_udp_in_one_report() {
    let Some(lab) = support::lab_or_skip("apple_remote_desktop_probes_tcp_and_udp_in_one_report")
    else {
        return;
    };
    let _tcp = lab.tcp_listeners(&[5900, 3283], false).unwrap();
    let target = lab.server_v4().to_string();
    let doc = json(&probe(
        &lab,
        Ns::Client,
        &[&target, "--product", "Apple Remote Desktop", "--json"],
    ));
    let tcp = by_port(&doc, "tcp");
    let udp = by_port(&doc, "udp");
    assert_eq!(
        tcp.keys().copied().collect::<Vec<_>>(),
        [3283, 5432, 5900, 5988]
    );
    assert_eq!(udp.keys().copied().collect::<Vec<_>>(), [626, 3283]);
    assert_eq!(tcp[&5900]["state"], "open");
    assert_eq!(tcp[&5988]["state"], "closed");
    assert_eq!(udp[&3283]["udp_probe"], "net-assistant");
    assert_eq!(udp[&626]["udp_probe"], "serialnumberd");
    assert_eq!(udp[&3283]["state"], "closed");
    assert_eq!(doc["products"], serde_json::json!(["Apple Remote Desktop"]));
    let text = String::from_utf8_lossy(&probe(&lab, Ns::Client, &[&target, "-p", "ARD"]).stdout)
        .into_owned();
    assert!(text.contains("4 TCP and 2 UDP ports per address"), "{text}");
    assert!(
        text.contains("TCP 5900") && text.contains("UDP 626"),
        "{text}"
    );
}

#[test]
fn dropped_udp_is_no_reply_and_rejected_udp_names_the_router() {
    let Some(lab) =
        support::lab_or_skip("dropped_udp_is_no_reply_and_rejected_udp_names_the_router")
    else {
        return;
    };
    let _echo = lab.udp_echo(&[7], false).unwrap();
    let server = lab.server_v4();
    lab.nft(&[
        &format!("ip daddr {server} udp dport 53 drop"),
        &format!("ip daddr {server} udp dport 161 reject with icmpx type admin-prohibited"),
    ])
    .unwrap();
    let o = probe(
        &lab,
        Ns::Client,
        &[
            &server.to_string(),
            "--ports",
            "7/udp,53/udp,161/udp",
            "--json",
        ],
    );
    let doc = json(&o);
    let udp = by_port(&doc, "udp");
    let state = |p: u16| {
        (
            udp[&p]["state"].as_str().unwrap(),
            udp[&p]["reason"].as_str().unwrap(),
        )
    };
    assert_eq!(state(7), ("open", "udp-response"));
    assert_eq!(state(53), ("open|filtered", "no-response"));
    // Two attempts, and one more in the round that rules out ICMP rate
    // limiting (the router has sent an ICMP error).
    assert_eq!(udp[&53]["attempts"], 3);
    assert_eq!(state(161), ("filtered", "admin-prohibited"));
    assert_eq!(udp[&161]["reason_from"], lab.router_v4().to_string());
    assert_eq!(doc["summary"]["blocked"], 1);
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8_lossy(
        &probe(
            &lab,
            Ns::Client,
            &[&server.to_string(), "--ports", "53/udp"],
        )
        .stdout,
    )
    .into_owned();
    assert!(
        text.contains("no reply after 2 attempts; a drop is likelier"),
        "{text}"
    );
}

#[test]
fn ipv6_udp_through_the_router() {
    let Some(lab) = support::lab_or_skip("ipv6_udp_through_the_router") else {
        return;
    };
    let _echo = lab.udp_echo(&[7], true).unwrap();
    let server = lab.server_v6();
    lab.nft(&[&format!(
        "ip6 daddr {server} udp dport 161 reject with icmpx type admin-prohibited"
    )])
    .unwrap();
    let doc = json(&probe(
        &lab,
        Ns::Client,
        &[
            &server.to_string(),
            "--ports",
            "7/udp,9/udp,161/udp",
            "--json",
        ],
    ));
    let udp = by_port(&doc, "udp");
    assert_eq!(udp[&7]["state"], "open");
    assert_eq!(
        (udp[&9]["state"].as_str(), udp[&9]["reason_from"].as_str()),
        (Some("closed"), Some(server.to_string().as_str()))
    );
    assert_eq!(udp[&161]["reason"], "admin-prohibited");
    assert_eq!(udp[&161]["reason_from"], lab.router_v6().to_string());
}

/// The set nmap gets wrong: 2 open, 12 closed, 132 dropped, 1 prohibited,
/// with Linux's default ICMP rate limit in the target (about one error per
/// second after a burst of six).
#[test]
fn icmp_rate_limiting_does_not_turn_closed_ports_into_no_reply() {
    let Some(lab) =
        support::lab_or_skip("icmp_rate_limiting_does_not_turn_closed_ports_into_no_reply")
    else {
        return;
    };
    let open: Vec<u16> = vec![7, 7777];
    let closed: Vec<u16> = (40001..=40012).collect();
    let dropped: Vec<u16> = (41001..=41132).collect();
    let prohibited: u16 = 42001;
    let _echo = lab.udp_echo(&open, false).unwrap();
    let server = lab.server_v4();
    lab.nft(&[
        &format!("ip daddr {server} udp dport 41001-41132 drop"),
        &format!(
            "ip daddr {server} udp dport {prohibited} reject with icmpx type admin-prohibited"
        ),
    ])
    .unwrap();
    let spec = "7/udp,7777/udp,40001-40012/udp,41001-41132/udp,42001/udp";
    for round in 0..2 {
        let doc = json(&probe(
            &lab,
            Ns::Client,
            &[&server.to_string(), "--ports", spec, "--json"],
        ));
        let udp = by_port(&doc, "udp");
        let wrong = |ports: &[u16], want: &str| -> Vec<String> {
            ports
                .iter()
                .filter(|p| udp[p]["state"] != want)
                .map(|p| format!("{p}: {}", udp[p]["state"]))
                .collect()
        };
        assert!(
            wrong(&open, "open").is_empty(),
            "{:?}",
            wrong(&open, "open")
        );
        assert!(
            wrong(&closed, "closed").is_empty(),
            "round {round}: closed ports misread: {:?}\n{}",
            wrong(&closed, "closed"),
            doc["hosts"]
        );
        assert!(
            wrong(&dropped, "open|filtered").is_empty(),
            "{:?}",
            wrong(&dropped, "open|filtered")
        );
        assert_eq!(udp[&prohibited]["state"], "filtered");
        let limit = &doc["hosts"][0]["icmp_rate_limit"];
        assert!(
            limit["revealed"].as_u64().unwrap() > 0,
            "the limit hid closed ports at first: {limit}"
        );
        assert_eq!(limit["unconfirmed"], 0, "{limit}");
        eprintln!("round {round}: {limit}, {} ms", doc["duration_ms"]);
    }
    let text = String::from_utf8_lossy(
        &probe(&lab, Ns::Client, &[&server.to_string(), "--ports", spec]).stdout,
    )
    .into_owned();
    assert!(text.contains("ICMP errors (as Linux does"), "{text}");
}

#[test]
fn a_short_max_time_leaves_rate_limited_ports_marked_unconfirmed() {
    let Some(lab) =
        support::lab_or_skip("a_short_max_time_leaves_rate_limited_ports_marked_unconfirmed")
    else {
        return;
    };
    let server = lab.server_v4();
    lab.nft(&[&format!("ip daddr {server} udp dport 41001-41050 drop")])
        .unwrap();
    let spec = "40001-40030/udp,41001-41050/udp";
    let doc = json(&probe(
        &lab,
        Ns::Client,
        &[
            &server.to_string(),
            "--ports",
            spec,
            "--max-time",
            "2s",
            "--json",
        ],
    ));
    let notes: Vec<&Value> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["note"].is_string())
        .collect();
    assert!(
        !notes.is_empty(),
        "no port noted as unconfirmed: {}",
        doc["hosts"]
    );
    assert!(notes.iter().all(
        |r| r["state"] == "open|filtered" && r["note"].as_str().unwrap().contains("--max-time")
    ));
    assert!(
        doc["hosts"][0]["icmp_rate_limit"]["unconfirmed"]
            .as_u64()
            .unwrap()
            > 0
    );
}

/// Datagrams the router forwarded to each UDP port of the server, counted by
/// a dynamic nftables set.
fn count_datagrams(lab: &Lab, ports: &str) {
    let server = lab.server_v4();
    let script = format!(
        "add set inet lab sent {{ type inet_service; size 65535; flags dynamic; counter; }}\n\
         insert rule inet lab forward ip daddr {server} udp dport {ports} add @sent {{ udp dport }}\n"
    );
    use std::io::Write;
    let mut child = lab
        .cmd(Ns::Router, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "nft failed: {script}");
}

/// The counts `count_datagrams` made, per port.
fn datagrams_sent(lab: &Lab) -> BTreeMap<u16, u64> {
    let text = support::run(
        lab.cmd(Ns::Router, "nft")
            .args(["list", "set", "inet", "lab", "sent"]),
    )
    .unwrap();
    let mut counts = BTreeMap::new();
    let body = text.split("elements = {").nth(1).unwrap_or("");
    for element in body.split(',') {
        let mut words = element.split_whitespace();
        let (Some(port), Some("counter"), Some("packets"), Some(n)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if let (Ok(port), Ok(n)) = (port.parse(), n.parse()) {
            counts.insert(port, n);
        }
    }
    counts
}

/// With the target's ICMP errors limited and a thousand closed ports, the
/// re-probing rounds stop at their cap (--retries N when given), every port
/// gets at most that many datagrams, and the ports left are reported
/// unconfirmed.
#[test]
fn rate_limit_rounds_keep_to_their_cap_of_datagrams_per_port() {
    let Some(lab) =
        support::lab_or_skip("rate_limit_rounds_keep_to_their_cap_of_datagrams_per_port")
    else {
        return;
    };
    count_datagrams(&lab, "20000-21001");
    let server = lab.server_v4().to_string();
    let o = probe(
        &lab,
        Ns::Client,
        &[
            &server,
            "--ports",
            "20000-21001/udp",
            "--retries",
            "2",
            // The rounds alone: locating adds its own probes to a sample.
            "--no-locate",
            "--json",
        ],
    );
    let doc = json(&o);
    let sent = datagrams_sent(&lab);
    assert_eq!(sent.len(), 1002, "every port was probed");
    // Three attempts (--retries 2), then one datagram per round, two rounds.
    let most = sent.values().max().copied().unwrap_or(0);
    assert!(most <= 3 + 2, "a port got {most} datagrams: {sent:?}");
    let limit = &doc["hosts"][0]["icmp_rate_limit"];
    assert_eq!(limit["rounds"], 2, "{limit}");
    assert_eq!(limit["unconfirmed_why"], "round-cap", "{limit}");
    let udp = by_port(&doc, "udp");
    let unconfirmed: Vec<&&Value> = udp
        .values()
        .filter(|r| r["state"] == "open|filtered")
        .collect();
    assert_eq!(
        unconfirmed.len() as u64,
        limit["unconfirmed"].as_u64().unwrap(),
        "{limit}"
    );
    assert!(
        !unconfirmed.is_empty(),
        "the limit hid closed ports: {limit}"
    );
    for r in &unconfirmed {
        let note = r["note"].as_str().unwrap_or("");
        assert!(note.contains("2 slow re-probing rounds (the cap"), "{r}");
    }
    assert!(udp.values().all(|r| r["state"] != "open"), "{doc}");
    assert_eq!(doc["complete"], true);
}

/// Peak resident memory (VmHWM, KiB) of a running process.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A sweep of every UDP port of a host whose router drops them all: 16 384
/// attempts wait at once, so what each holds while it waits decides the
/// peak. Bounded at 256 MiB (it was 1.15 GB with a 64 KiB buffer each).
#[test]
fn a_full_udp_sweep_of_a_silent_host_stays_within_256_mib() {
    let Some(lab) = support::lab_or_skip("a_full_udp_sweep_of_a_silent_host_stays_within_256_mib")
    else {
        return;
    };
    let server = lab.server_v4();
    lab.nft(&[&format!("ip daddr {server} meta l4proto udp drop")])
        .unwrap();
    let mut cmd = lab
        .cmd_as_nobody(Ns::Client, env!("CARGO_BIN_EXE_portprobe"))
        .unwrap();
    cmd.args([&server.to_string(), "--ports", "1-65535/udp", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = support::proc::KillOnDrop::spawn(&mut cmd).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).map(|_| out)
    });
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "portprobe" {
            peak = peak.max(peak_kib(pid).unwrap_or(0));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = reader.join().unwrap().unwrap();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 65535);
    assert!(results.iter().all(|r| r["state"] == "open|filtered"));
    eprintln!(
        "peak resident memory of a 65 535-port silent UDP sweep: {} MiB",
        peak / 1024
    );
    assert!(peak > 0, "the peak was never read");
    assert!(peak < 256 * 1024, "peak {} MiB", peak / 1024);
}

/// Sockets in the server namespace that answer each probe from somewhere
/// other than the probed address and port, except the control port, which
/// answers from itself.
struct Forger {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Forger {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const OTHER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 1, 3);

impl Forger {
    /// `shape` on 3283 (a Net Assistant reply, recognised by its layout
    /// only), garbage on 6970, an honest answer on 6971.
    fn start(lab: &Lab) -> Forger {
        use std::net::{SocketAddr, UdpSocket};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let server = lab.server_v4();
        let shape = hex(include_str!("../src/wire/fixtures/ard-status-reply.hex"));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = support::netns::spawn_in(lab.server_ns(), "forger", move || {
            let bind = |ip, port| {
                let s = UdpSocket::bind(SocketAddr::new(ip, port)).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_millis(50)))
                    .unwrap();
                s
            };
            let ard = bind(server.into(), 3283);
            let generic = bind(server.into(), 6970);
            let honest = bind(server.into(), 6971);
            let other_ard = bind(OTHER.into(), 3283);
            let other_generic = bind(OTHER.into(), 6970);
            let same_host_other_port = bind(server.into(), 0);
            tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((_, from)) = ard.recv_from(&mut buf) {
                    let _ = other_ard.send_to(&shape, from);
                    let _ = same_host_other_port.send_to(&shape, from);
                    let _ = other_ard.send_to(b"not a reply", from);
                }
                if let Ok((_, from)) = generic.recv_from(&mut buf) {
                    let _ = other_generic.send_to(b"not a reply", from);
                    let _ = same_host_other_port.send_to(b"not a reply", from);
                }
                if let Ok((_, from)) = honest.recv_from(&mut buf) {
                    let _ = honest.send_to(b"a private protocol", from);
                }
            }
        })
        .unwrap();
        rx.recv().unwrap();
        Forger {
            stop,
            thread: Some(thread),
        }
    }
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Datagrams sent to the probe's own port from another address of the
/// target, or from another port of it, are no reply: neither unrecognised
/// bytes nor a reply recognised by its layout alone counts.
#[test]
fn datagrams_from_elsewhere_are_not_replies() {
    let Some(lab) = support::lab_or_skip("datagrams_from_elsewhere_are_not_replies") else {
        return;
    };
    support::run(lab.cmd(Ns::Server, "ip").args([
        "addr",
        "add",
        &format!("{OTHER}/24"),
        "dev",
        Lab::SERVER_IF,
    ]))
    .unwrap();
    let _forger = Forger::start(&lab);
    let server = lab.server_v4().to_string();
    let doc = json(&probe(
        &lab,
        Ns::Client,
        &[&server, "--ports", "3283/udp,6970/udp,6971/udp", "--json"],
    ));
    let udp = by_port(&doc, "udp");
    assert_eq!(udp[&3283]["state"], "open|filtered", "{}", udp[&3283]);
    assert_eq!(udp[&6970]["state"], "open|filtered", "{}", udp[&6970]);
    // The control: the same kind of bytes from the probed port itself.
    assert_eq!(
        (udp[&6971]["state"].as_str(), udp[&6971]["reason"].as_str()),
        (Some("open"), Some("udp-response-unrecognised")),
        "{}",
        udp[&6971]
    );
}

/// While silent UDP ports are re-probed slowly, the progress bar says so
/// and why, instead of a finished bar and "about 0s left".
#[test]
fn the_progress_bar_shows_the_confirming_phase() {
    let Some(lab) = support::lab_or_skip("the_progress_bar_shows_the_confirming_phase") else {
        return;
    };
    if !support::require_programs("the_progress_bar_shows_the_confirming_phase", &["script"]) {
        return;
    }
    let server = lab.server_v4();
    lab.nft(&[&format!("ip daddr {server} udp dport 41001-41050 drop")])
        .unwrap();
    let cmd = lab
        .cmd_as_nobody(Ns::Client, env!("CARGO_BIN_EXE_portprobe"))
        .unwrap();
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .chain([
            server.to_string(),
            "--ports".into(),
            "40001-40010/udp,41001-41020/udp".into(),
        ])
        .collect();
    let out = std::process::Command::new("script")
        .args(["-qefc", &line.join(" "), "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains(
            "silent UDP ports of 1 address: the host limits ICMP errors to about one a second"
        ),
        "{screen:?}"
    );
    assert!(screen.contains("round 1 of at most 8"), "{screen:?}");
}
