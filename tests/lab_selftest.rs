//! Proves the test lab itself with standard client tools: topology, firewall
//! rules, loss, delay, the real UDP daemons, and teardown.

mod support;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use support::lab::{Lab, Ns};
use support::peers::{self, Peer, Peers};

/// Runs `cmd` and returns (success, stdout + stderr).
fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Pings `addr` from the client `count` times, 0.05 s apart; returns
/// (replies received, average RTT in ms).
fn ping(lab: &Lab, addr: IpAddr, count: u32) -> (u32, f64) {
    let (_, text) = output(lab.client_cmd("ping").args([
        "-n",
        "-q",
        "-c",
        &count.to_string(),
        "-i",
        "0.05",
        "-W",
        "1",
        &addr.to_string(),
    ]));
    let received = text
        .lines()
        .find_map(|l| {
            l.split(", ")
                .find_map(|part| part.strip_suffix(" received")?.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no ping summary in:\n{text}"));
    let avg = text
        .lines()
        .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
        .and_then(|v| v.split('/').nth(1)?.parse().ok())
        .unwrap_or(f64::NAN);
    (received, avg)
}

/// A TCP connect from a thread inside the client namespace.
fn connect_from_client(lab: &Lab, to: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    lab.run_in(Ns::Client, move || {
        TcpStream::connect_timeout(&to, timeout).map(drop)
    })
    .expect("enter the client namespace")
}

/// Sends one datagram from the client over a connected UDP socket and waits
/// for an answer. An answer is reported as `ErrorKind::Other`; an ICMP error
/// as the errno it maps to.
fn udp_exchange(lab: &Lab, to: SocketAddr) -> std::io::Error {
    lab.run_in(Ns::Client, move || {
        let sock = std::net::UdpSocket::bind((lab_any(to), 0))?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        sock.connect(to)?;
        sock.send(b"portprobe-lab")?;
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf)?;
        Err::<(), _>(std::io::Error::other(format!("answer of {n} bytes")))
    })
    .expect("enter the client namespace")
    .unwrap_err()
}

fn lab_any(to: SocketAddr) -> IpAddr {
    if to.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    }
}

#[test]
fn topology_v4_and_v6_through_router() {
    let Some(lab) = support::lab_or_skip_with("topology_v4_and_v6_through_router", &["ping"])
    else {
        return;
    };
    for addr in [
        IpAddr::from(lab.router_v4()),
        lab.server_v4().into(),
        lab.router_v6().into(),
        lab.server_v6().into(),
    ] {
        let (received, avg) = ping(&lab, addr, 3);
        assert_eq!(received, 3, "ping {addr} from the client");
        // Addresses work at once: no duplicate address detection and no
        // lost first neighbour solicitation.
        assert!(avg < 100.0, "ping {addr}: average RTT {avg:.1} ms");
    }
    // The server sees the client's own address: routed, not translated.
    let listeners = lab.tcp_listeners(&[8080], false).unwrap();
    let _v6 = lab.tcp_listeners(&[8080], true).unwrap();
    connect_from_client(&lab, (lab.server_v4(), 8080).into(), Duration::from_secs(2)).unwrap();
    connect_from_client(&lab, (lab.server_v6(), 8080).into(), Duration::from_secs(2)).unwrap();
    assert!(listeners.count() >= 1);
    // Route lookups inside the client go through the router.
    let (ok, text) = output(lab.client_cmd("ip").args(["route", "get", "198.18.1.2"]));
    assert!(ok && text.contains("via 198.18.0.1"), "{text}");
    // Nothing of the lab is visible from the host's own namespace.
    let (_, links) = output(Command::new("ip").args(["-o", "link"]));
    assert!(
        !links.contains("to-router") && !links.contains("to-client"),
        "{links}"
    );
}

#[test]
fn tcp_listeners_survive_repeated_probing() {
    let Some(lab) = support::lab_or_skip("tcp_listeners_survive_repeated_probing") else {
        return;
    };
    let l = lab.tcp_listeners(&[7000, 7001], false).unwrap();
    for _ in 0..300 {
        for port in [7000, 7001] {
            connect_from_client(&lab, (lab.server_v4(), port).into(), Duration::from_secs(1))
                .unwrap();
        }
    }
    assert!(l.count() >= 590, "accepted {}", l.count());
}

#[test]
fn nft_drop_times_out_and_reject_is_host_unreachable() {
    let Some(lab) = support::lab_or_skip_with(
        "nft_drop_times_out_and_reject_is_host_unreachable",
        &["ping", "nc"],
    ) else {
        return;
    };
    let _l = lab.tcp_listeners(&[22, 311, 5900, 8443], false).unwrap();
    let _l6 = lab.tcp_listeners(&[311, 5900], true).unwrap();
    lab.nft(&[
        "tcp dport 5900 drop",
        "tcp dport 311 reject with icmpx type admin-prohibited",
        "tcp dport 22 reject with tcp reset",
    ])
    .unwrap();
    let s4 = IpAddr::from(lab.server_v4());
    let s6 = IpAddr::from(lab.server_v6());
    for server in [s4, s6] {
        let started = Instant::now();
        let err = connect_from_client(&lab, (server, 5900).into(), Duration::from_secs(1))
            .expect_err("5900 is dropped");
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{server} 5900: {err}");
        assert!(started.elapsed() >= Duration::from_millis(900));

        let err = connect_from_client(&lab, (server, 311).into(), Duration::from_secs(2))
            .expect_err("311 is rejected");
        assert_eq!(
            err.raw_os_error(),
            Some(if server.is_ipv4() {
                libc::EHOSTUNREACH
            } else {
                libc::EACCES
            }),
            "{server} 311: {err}"
        );
    }
    let err = connect_from_client(&lab, (s4, 22).into(), Duration::from_secs(2))
        .expect_err("22 is reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    connect_from_client(&lab, (s4, 8443).into(), Duration::from_secs(2)).expect("8443 has no rule");
    // The same rules seen by a standard client.
    let (ok, text) = output(
        lab.client_cmd("nc")
            .args(["-z", "-w1", "198.18.1.2", "5900"]),
    );
    assert!(!ok, "nc reached a dropped port: {text}");
    let (ok, text) = output(
        lab.client_cmd("nc")
            .args(["-z", "-w1", "198.18.1.2", "8443"]),
    );
    assert!(ok, "nc could not reach an open port: {text}");
    assert!(lab.nft_ruleset().unwrap().contains("tcp dport 5900 drop"));

    // UDP: a reject comes back as an ICMP error from the router's
    // client-facing address; a closed port as port-unreachable from the
    // server itself.
    lab.nft(&[
        "udp dport 161 reject with icmpx type admin-prohibited",
        "icmp type echo-request reject with icmpx type admin-prohibited",
        "icmpv6 type echo-request reject with icmpx type admin-prohibited",
    ])
    .unwrap();
    let _udp = lab.udp_echo(&[162], false).unwrap();
    assert_eq!(
        udp_exchange(&lab, (s4, 161).into()).raw_os_error(),
        Some(libc::EHOSTUNREACH)
    );
    assert_eq!(
        udp_exchange(&lab, (s4, 9).into()).kind(),
        ErrorKind::ConnectionRefused
    );
    assert_eq!(
        udp_exchange(&lab, (s4, 162).into()).kind(),
        ErrorKind::Other
    );
    let (_, text) = output(
        lab.client_cmd("ping")
            .args(["-n", "-c1", "-W1", "198.18.1.2"]),
    );
    assert!(
        text.contains("From 198.18.0.1 icmp_seq=1 Packet filtered"),
        "{text}"
    );
    let (_, text) = output(
        lab.client_cmd("ping")
            .args(["-n", "-c1", "-W1", "2001:db8:1::2"]),
    );
    assert!(
        text.contains(
            "From 2001:db8::1 icmp_seq=1 Destination unreachable: Administratively prohibited"
        ),
        "{text}"
    );
    let err = lab.nft(&["this is not a rule"]).expect_err("bad rule");
    assert!(err.to_string().contains("syntax error"), "{err}");
}

#[test]
fn loss_drops_about_half() {
    let Some(lab) = support::lab_or_skip_with("loss_drops_about_half", &["ping"]) else {
        return;
    };
    lab.set_loss(50).unwrap();
    let (received, _) = ping(&lab, lab.server_v4().into(), 100);
    // Each ping needs two forwarded packets: about 25 of 100 get through.
    assert!((5..=60).contains(&received), "{received}/100 with 50% loss");
    lab.set_loss(0).unwrap();
    let (received, _) = ping(&lab, lab.server_v4().into(), 20);
    assert_eq!(received, 20, "loss turned off");
}

#[test]
fn delay_adds_to_round_trip() {
    let Some(lab) = support::lab_or_skip_with(
        "delay_adds_to_round_trip",
        &["ping", "iptables", "ip6tables"],
    ) else {
        return;
    };
    let (_, base) = ping(&lab, lab.server_v4().into(), 5);
    lab.set_delay(100).unwrap();
    let (received, delayed) = ping(&lab, lab.server_v4().into(), 5);
    assert_eq!(received, 5);
    assert!(
        (195.0..300.0).contains(&(delayed - base)),
        "RTT {base:.1} ms -> {delayed:.1} ms with 100 ms each way"
    );
    let (received, delayed6) = ping(&lab, lab.server_v6().into(), 5);
    assert_eq!(received, 5);
    assert!(delayed6 >= 195.0, "v6 RTT {delayed6:.1} ms");
    // The router's own replies are not forwarded, so not delayed.
    let (_, router) = ping(&lab, lab.router_v4().into(), 3);
    assert!(router < 50.0, "router RTT {router:.1} ms");
    lab.set_delay(0).unwrap();
    let (_, after) = ping(&lab, lab.server_v4().into(), 5);
    assert!(after < 50.0, "RTT {after:.1} ms after delay 0");
}

/// Sends an L2TP SCCRQ to udp/1701 and prints the reply's message type
/// (2 = SCCRP, 4 = StopCCN) and source.
const L2TP_SCCRQ: &str = r#"
import socket, struct, sys
def avp(t, v):
    return struct.pack("!HHH", 0x8000 | (6 + len(v)), 0, t) + v
body = (avp(0, struct.pack("!H", 1)) + avp(2, b"\x01\x00") + avp(3, struct.pack("!I", 3))
        + avp(7, b"portprobe-lab") + avp(9, struct.pack("!H", 77)) + avp(10, struct.pack("!H", 4)))
msg = struct.pack("!HHHHHH", 0xC802, 12 + len(body), 0, 0, 0, 0) + body
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(msg, (sys.argv[1], 1701))
data, src = s.recvfrom(4096)
print("l2tp message type", struct.unpack("!H", data[18:20])[0], "from", src[0])
"#;

/// One standard client's check of one peer: the command to run and a piece
/// of text its output must contain.
fn client_check(
    lab: &Lab,
    peers: &Peers,
    peer: Peer,
    ns: Ns,
    scratch: &std::path::Path,
) -> (Command, String) {
    let server = lab.server_v4().to_string();
    let from = match ns {
        Ns::Client => lab.client_v4(),
        _ => lab.server_v4(),
    }
    .to_string();
    let mut cmd;
    let expect;
    match peer {
        Peer::Echo => {
            cmd = lab.cmd(ns, "sh");
            cmd.args([
                "-c",
                &format!("echo portprobe-echo | socat -t1 - UDP:{server}:7"),
            ]);
            expect = "portprobe-echo".to_string();
        }
        Peer::Dns => {
            cmd = lab.cmd(ns, "dig");
            cmd.args(["+short", "+time=2", "+tries=1", &format!("@{server}")])
                .arg(peers::DNS_NAME);
            expect = server.clone();
        }
        Peer::Dhcp => {
            cmd = lab.cmd(ns, "dhcping");
            cmd.args(["-i", "-s", &server, "-c", &from, "-t", "3"])
                .args(["-h", "02:00:00:00:00:01"]);
            expect = format!("Got answer from: {server}");
        }
        Peer::Tftp => {
            let local = scratch.join(format!("tftp-{ns:?}"));
            cmd = lab.cmd(ns, "sh");
            cmd.args([
                "-c",
                &format!(
                    "tftp {server} -m binary -c get {} {} && cat {}",
                    peers::TFTP_FILE,
                    local.display(),
                    local.display()
                ),
            ]);
            expect = peers::TFTP_CONTENT.trim().to_string();
        }
        Peer::Rpcbind => {
            cmd = lab.cmd(ns, "rpcinfo");
            cmd.args(["-T", "udp", &server, "100000", "2"]);
            expect = "ready and waiting".to_string();
        }
        Peer::Ntp => {
            cmd = lab.cmd(ns, "chronyd");
            cmd.args(["-Q", "-t", "6"])
                .arg(format!("server {server} iburst maxsamples 1"));
            expect = "System clock wrong by".to_string();
        }
        Peer::NetbiosNs => {
            cmd = lab.cmd(ns, "nmblookup");
            cmd.args(["-U", &server, peers::NETBIOS_NAME]);
            expect = format!("{server} {}<00>", peers::NETBIOS_NAME);
        }
        Peer::Snmp => {
            cmd = lab.cmd(ns, "snmpget");
            cmd.args([
                "-m",
                "",
                "-v2c",
                "-c",
                peers::SNMP_COMMUNITY,
                "-t",
                "2",
                "-r",
                "1",
            ])
            .args([&server, "1.3.6.1.2.1.1.1.0"])
            .envs(peers.snmp_client_env());
            expect = "portprobe-peers net-snmp".to_string();
        }
        Peer::Ike => {
            cmd = lab.cmd(ns, "sh");
            cmd.args([
                "-c",
                &format!(
                    "ike-scan --sport=0 -M {server} | grep -q NO-PROPOSAL-CHOSEN && echo ike-500; \
                     ike-scan --nat-t --sport=0 -M {server} | grep -q NO-PROPOSAL-CHOSEN \
                     && echo ike-4500"
                ),
            ]);
            expect = "ike-500\nike-4500".to_string();
        }
        Peer::Ipmi => {
            cmd = lab.cmd(ns, "rmcp_ping");
            cmd.args(["-t", "2", &server]);
            expect = "IPMI".to_string();
        }
        Peer::L2tp => {
            cmd = lab.cmd(ns, "python3");
            cmd.args(["-c", L2TP_SCCRQ, &server]);
            expect = format!("l2tp message type 2 from {server}");
        }
        Peer::Nfs => {
            cmd = lab.cmd(ns, "sh");
            cmd.args([
                "-c",
                &format!(
                    "rpcinfo -n 2049 -u {server} 100003 3 && rpcinfo -n 2049 -u {server} 100003 4 \
                     && rpcinfo -n 20048 -u {server} 100005 3"
                ),
            ]);
            expect = "program 100005 version 3 ready and waiting".to_string();
        }
        Peer::Sip => {
            cmd = lab.cmd(ns, "sipsak");
            cmd.args(["-v", "-s", &format!("sip:ping@{server}")]);
            expect = "SIP/2.0 200 OK".to_string();
        }
        Peer::Mdns => {
            cmd = lab.cmd(ns, "dig");
            cmd.args(["-p", "5353", "+time=2", "+tries=1", "+short"])
                .arg(format!("@{server}"))
                .args(["_services._dns-sd._udp.local", "PTR"]);
            expect = "_airplay._tcp.local.".to_string();
        }
        Peer::Syslog => {
            let marker = format!("portprobe-lab-{ns:?}");
            cmd = lab.cmd(ns, "logger");
            cmd.args(["-n", &server, "-P", "514", "-d", &marker]);
            expect = String::new();
        }
    }
    (cmd, expect)
}

/// The standard clients `peers_answer_their_real_clients` runs.
const CLIENT_PROGRAMS: &[&str] = &[
    "sh",
    "socat",
    "dig",
    "dhcping",
    "tftp",
    "rpcinfo",
    "chronyd",
    "nmblookup",
    "snmpget",
    "ike-scan",
    "rmcp_ping",
    "python3",
    "sipsak",
    "logger",
];

#[test]
fn peers_answer_their_real_clients() {
    let mut programs = Peer::programs(Peer::ALL);
    programs.extend(CLIENT_PROGRAMS);
    let Some(lab) = support::lab_or_skip_with("peers_answer_their_real_clients", &programs) else {
        return;
    };
    let started = Instant::now();
    let peers =
        Peers::start(lab.server_ns(), lab.server_v4(), Peer::ALL).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("all peers ready in {:?}", started.elapsed());
    let scratch = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for &peer in Peer::ALL {
        // avahi answers on-link sources only: check it from the server itself.
        let places: &[Ns] = if peer == Peer::Mdns {
            &[Ns::Server]
        } else {
            &[Ns::Server, Ns::Client]
        };
        for &ns in places {
            let (mut cmd, expect) = client_check(&lab, &peers, peer, ns, scratch.path());
            let (ok, text) = output(&mut cmd);
            if !ok || !text.contains(&expect) {
                failures.push(format!(
                    "{peer:?} from {ns:?}: {cmd:?} (expected {expect:?}):\n{text}\n--- log:\n{}",
                    peers.log(peer)
                ));
            }
        }
    }
    // rsyslog never answers: its file shows what it received.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !peers.syslog_received().contains("portprobe-lab-Client") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for ns in ["Server", "Client"] {
        if !peers
            .syslog_received()
            .contains(&format!("portprobe-lab-{ns}"))
        {
            failures.push(format!(
                "syslog from {ns} not received:\n{}",
                peers.syslog_received()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn peers_and_lab_leave_nothing_behind() {
    const WHICH: &[Peer] = &[Peer::Echo, Peer::Sip, Peer::NetbiosNs, Peer::Mdns];
    let mut programs = Peer::programs(WHICH);
    programs.extend(["sleep", "iptables", "ip6tables"]);
    let Some(lab) = support::lab_or_skip_with("peers_and_lab_leave_nothing_behind", &programs)
    else {
        return;
    };
    let names = [lab.client_ns(), lab.router_ns(), lab.server_ns()].map(str::to_owned);
    // kamailio forks children and nmbd a helper: both must go too.
    let peers =
        Peers::start(lab.server_ns(), lab.server_v4(), WHICH).unwrap_or_else(|e| panic!("{e}"));
    let dir = peers.dir().to_path_buf();
    let daemon_pids = lab.pids();
    assert!(daemon_pids.len() >= 4, "{daemon_pids:?}");
    drop(peers);
    assert!(!dir.exists(), "{} still exists", dir.display());
    let left: Vec<i32> = daemon_pids
        .iter()
        .copied()
        .filter(|&p| support::proc::alive(p))
        .collect();
    assert!(left.is_empty(), "daemons still running: {left:?}");
    assert!(lab.pids().is_empty(), "{:?}", lab.pids());

    // A process the test started itself, and helper threads, also end
    // with the lab.
    let mut sleeper = lab
        .client_cmd("sleep")
        .arg("600")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _listeners = lab.tcp_listeners(&[80], false).unwrap();
    lab.set_delay(10).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(lab);
    let status = sleeper.wait().unwrap();
    assert!(!status.success(), "sleep was killed: {status}");
    let (_, list) = output(Command::new("ip").args(["netns", "list"]));
    for name in &names {
        assert!(
            !list.contains(name.as_str()),
            "{name} still listed:\n{list}"
        );
    }
}

#[test]
fn lab_is_removed_when_a_test_panics() {
    if !support::require_lab("lab_is_removed_when_a_test_panics") {
        return;
    }
    let names = std::panic::catch_unwind(|| {
        let lab = Lab::new().unwrap();
        let names = [lab.client_ns(), lab.router_ns(), lab.server_ns()].map(str::to_owned);
        std::panic::panic_any(names);
    })
    .expect_err("panicked")
    .downcast::<[String; 3]>()
    .expect("names");
    let (_, list) = output(Command::new("ip").args(["netns", "list"]));
    for name in names.iter() {
        assert!(
            !list.contains(name.as_str()),
            "{name} still listed:\n{list}"
        );
    }
}

#[test]
fn stale_labs_of_dead_processes_are_swept() {
    if !support::require_lab("stale_labs_of_dead_processes_are_swept") {
        return;
    }
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("pp-{dead}-0-client");
    support::run(Command::new("ip").args(["netns", "add", &stale])).unwrap();
    let lab = Lab::new().unwrap();
    let (_, list) = output(Command::new("ip").args(["netns", "list"]));
    assert!(!list.contains(&stale), "{stale} survived:\n{list}");
    assert!(list.contains(lab.client_ns()));
}

#[test]
fn skips_without_root_and_fails_under_ci() {
    let Some(lab) =
        support::lab_or_skip_with("skips_without_root_and_fails_under_ci", &["setpriv"])
    else {
        return;
    };
    let me = std::env::current_exe().unwrap();
    let run_as_nobody = |ci: bool| {
        let mut cmd = lab.client_cmd_as_nobody(&me).unwrap();
        cmd.args([
            "--exact",
            "topology_v4_and_v6_through_router",
            "--nocapture",
        ]);
        if ci {
            cmd.env("CI", "true");
        } else {
            cmd.env_remove("CI");
        }
        output(&mut cmd)
    };
    let (ok, text) = run_as_nobody(false);
    assert!(ok, "{text}");
    assert!(
        text.contains("skipped topology_v4_and_v6_through_router: not running as root"),
        "{text}"
    );
    let (ok, text) = run_as_nobody(true);
    assert!(!ok, "must fail under CI: {text}");
    assert!(
        text.contains("lab prerequisites missing under CI"),
        "{text}"
    );
}
