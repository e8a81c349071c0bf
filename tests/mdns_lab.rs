//! `.local` names on a machine whose system resolver knows nothing of
//! multicast DNS (no nss-mdns, as in most containers): portprobe asks the
//! link itself. avahi-daemon runs in the lab's server namespace and
//! announces `macserver.local`; portprobe runs as `nobody` in the router
//! namespace, the other end of the server's link, with `hosts: files dns`
//! and a name server on 127.0.0.1 where nothing listens, so no query
//! leaves the namespace. Multicast goes only over the lab's own veth links.
//! They need root to build the lab: without it each test prints one line
//! saying it was skipped; under CI=true they must run.

mod support;

use support::json;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lab::{Lab, Ns};
use support::peers::{MDNS_HOST, Peer, Peers};
use support::{http, netns};

/// Programs these tests run besides the lab's own.
const PROGRAMS: &[&str] = &["avahi-daemon", "unshare", "mount", "getent", "setpriv"];

fn lab_or_skip(name: &str) -> Option<Lab> {
    support::lab_or_skip_with(name, PROGRAMS)
}

/// Runs portprobe in the router namespace as `nobody`.
fn probe(lab: &Lab, args: &[&str]) -> Output {
    lab.cmd_as_nobody(Ns::Router, env!("CARGO_BIN_EXE_portprobe"))
        .expect("command as nobody")
        .args(args)
        .output()
        .expect("run portprobe")
}

/// Whether the system resolver of the router namespace knows `name`.
fn system_resolves(lab: &Lab, name: &str) -> bool {
    lab.cmd(Ns::Router, "getent")
        .args(["ahosts", name])
        .output()
        .expect("run getent")
        .status
        .success()
}

#[test]
fn a_local_name_the_system_does_not_know_is_resolved_by_multicast_dns() {
    let name = "a_local_name_the_system_does_not_know_is_resolved_by_multicast_dns";
    let Some(lab) = lab_or_skip(name) else {
        return;
    };
    let peers = Peers::start(lab.server_ns(), lab.server_v4(), &[Peer::Mdns])
        .unwrap_or_else(|e| panic!("{e}"));
    let _etc = netns::EtcWithoutMdns::new(lab.router_ns());
    let host = format!("{MDNS_HOST}.local");
    assert!(
        !system_resolves(&lab, &host),
        "the router's own resolver knows {host}: the test would prove nothing"
    );
    // Screen sharing listens on both of the server's addresses.
    let _v4 = lab.tcp_listeners(&[5900], false).unwrap();
    let _v6 = lab.tcp_listeners(&[5900], true).unwrap();

    let o = probe(&lab, &[&host, "--product", "ARD", "--json"]);
    let doc = json(&o);
    let target = &doc["target"];
    assert_eq!(
        target["resolved_by"],
        "mdns",
        "{doc}\n{}",
        peers.log(Peer::Mdns)
    );
    assert_eq!(
        target["mdns_interfaces"],
        serde_json::json!([Lab::ROUTER_SERVER_IF]),
        "{target}"
    );
    let v4 = lab.server_v4().to_string();
    let v6 = lab.server_v6().to_string();
    let addresses: Vec<&str> = target["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        addresses.contains(&v4.as_str()) && addresses.contains(&v6.as_str()),
        "{target}"
    );
    let results = doc["results"].as_array().unwrap();
    for address in [&v4, &v6] {
        let of: Vec<&Value> = results
            .iter()
            .filter(|r| r["address"] == address.as_str())
            .collect();
        assert!(of.len() > 1, "no results for {address}: {doc}");
        let vnc = of
            .iter()
            .find(|r| r["protocol"] == "tcp" && r["port"] == 5900)
            .unwrap_or_else(|| panic!("5900 not probed on {address}: {doc}"));
        assert_eq!(vnc["state"], "open", "{vnc}");
    }

    // -4 and -6 choose among the addresses multicast DNS found.
    for (flag, only) in [("-4", &v4), ("-6", &v6)] {
        let doc = json(&probe(&lab, &[&host, flag, "--ports", "5900", "--json"]));
        assert_eq!(
            doc["target"]["addresses"],
            serde_json::json!([only]),
            "{doc}"
        );
        assert_eq!(doc["target"]["resolved_by"], "mdns", "{doc}");
    }

    let o = probe(&lab, &[&host, "--ports", "5900"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("portprobe {host} (")),
        "{text}"
    );
    assert_eq!(
        lines[1],
        format!("resolved by multicast DNS on {}", Lab::ROUTER_SERVER_IF),
        "{text}"
    );
}

#[test]
fn a_local_name_nobody_answers_for_is_one_line_suggesting_the_address() {
    let name = "a_local_name_nobody_answers_for_is_one_line_suggesting_the_address";
    let Some(lab) = lab_or_skip(name) else {
        return;
    };
    let _peers = Peers::start(lab.server_ns(), lab.server_v4(), &[Peer::Mdns])
        .unwrap_or_else(|e| panic!("{e}"));
    let _etc = netns::EtcWithoutMdns::new(lab.router_ns());
    let started = Instant::now();
    // With a deadline far beyond the query's own timeouts: a query that
    // never gave up would end in "did not answer in time" instead.
    let o = probe(
        &lab,
        &["nosuch.local", "--ports", "80", "--max-time", "30s"],
    );
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert_eq!(
        err,
        format!(
            "portprobe: cannot resolve nosuch.local: the system resolver does not know it and \
             no device answered a multicast DNS query for it on {}, {}; give its address \
             instead (e.g. 192.0.2.10)\n",
            Lab::ROUTER_CLIENT_IF,
            Lab::ROUTER_SERVER_IF
        )
    );
    eprintln!("nosuch.local given up after {took:?}");
}

/// A query as a member of the mDNS groups on the server's link hears it.
#[derive(Debug)]
struct Heard {
    from: SocketAddr,
    ttl: Option<i32>,
    bytes: Vec<u8>,
}

/// Sockets in the server namespace on port 5353, members of 224.0.0.251
/// and ff02::fb on the server's link, that record what they hear until
/// `stop` is set.
fn listen_to_the_groups(lab: &Lab, stop: Arc<AtomicBool>) -> mpsc::Receiver<Vec<Heard>> {
    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
    };
    use socket2::{Domain, Socket, Type};
    use std::os::fd::AsRawFd;

    let (ready_tx, ready_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    let server_v4 = lab.server_v4();
    netns::spawn_in(lab.server_ns(), "mdns-groups", move || {
        let open = |v6: bool| -> std::io::Result<UdpSocket> {
            let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
            let s = Socket::new(domain, Type::DGRAM, None)?;
            s.set_reuse_address(true)?;
            let any: IpAddr = if v6 {
                Ipv6Addr::UNSPECIFIED.into()
            } else {
                Ipv4Addr::UNSPECIFIED.into()
            };
            if v6 {
                s.set_only_v6(true)?;
            }
            s.bind(&SocketAddr::new(any, 5353).into())?;
            if v6 {
                let index = nix::net::if_::if_nametoindex(Lab::SERVER_IF)?;
                s.join_multicast_v6(&"ff02::fb".parse().unwrap(), index)?;
                setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
            } else {
                s.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &server_v4)?;
                setsockopt(&s, sockopt::Ipv4RecvTtl, &true)?;
            }
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
            Ok(s.into())
        };
        let sockets = match (open(false), open(true)) {
            (Ok(a), Ok(b)) => [a, b],
            (Err(e), _) | (_, Err(e)) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        let mut heard = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            for s in &sockets {
                let mut buf = [0u8; 9000];
                let mut iov = [std::io::IoSliceMut::new(&mut buf)];
                let mut cmsg = nix::cmsg_space!(libc::c_int);
                let Ok(msg) = recvmsg::<SockaddrStorage>(
                    s.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_DONTWAIT,
                ) else {
                    continue;
                };
                let ttl = msg.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                            Some(t)
                        }
                        _ => None,
                    })
                });
                let from = msg.address.and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                        .or_else(|| {
                            a.as_sockaddr_in6()
                                .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                        })
                });
                let len = msg.bytes;
                if let Some(from) = from {
                    heard.push(Heard {
                        from,
                        ttl,
                        bytes: buf[..len].to_vec(),
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = tx.send(heard);
    })
    .expect("a thread in the server namespace");
    ready_rx
        .recv()
        .expect("listener thread")
        .expect("sockets on the mDNS groups");
    rx
}

/// The one-shot query for `nosuch.local` with message ID `id`: A and AAAA,
/// each with the unicast-response bit.
fn expected_query(id: [u8; 2]) -> Vec<u8> {
    let mut q = id.to_vec();
    q.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x06nosuch\x05local\x00\x00\x01\x80\x01\xc0\x0c\x00\x1c\x80\x01");
    q
}

#[test]
fn the_query_goes_only_to_the_mdns_groups_with_ttl_255_and_one_retry() {
    let name = "the_query_goes_only_to_the_mdns_groups_with_ttl_255_and_one_retry";
    let Some(lab) = lab_or_skip(name) else {
        return;
    };
    let _etc = netns::EtcWithoutMdns::new(lab.router_ns());
    // Count every UDP datagram the router sends out of its veths: to the
    // mDNS groups, and anywhere else.
    let nft = |args: &str| {
        support::run(lab.cmd(Ns::Router, "nft").args(args.split(' ')))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let mut chain = lab.cmd(Ns::Router, "nft");
    chain.args(["add chain inet lab out { type filter hook output priority 0 ; policy accept ; }"]);
    support::run(&mut chain).unwrap_or_else(|e| panic!("{e}"));
    nft("add rule inet lab out oifname != lo ip daddr 224.0.0.251 udp dport 5353 counter accept");
    nft("add rule inet lab out oifname != lo ip6 daddr ff02::fb udp dport 5353 counter accept");
    nft("add rule inet lab out oifname != lo meta l4proto udp counter");

    let stop = Arc::new(AtomicBool::new(false));
    let heard = listen_to_the_groups(&lab, stop.clone());
    let o = probe(&lab, &["nosuch.local", "--ports", "80"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stop.store(true, Ordering::Relaxed);
    let heard = heard.recv().expect("what the groups heard");

    // Two tries, each on IPv4 and IPv6, heard on the server's link.
    let v4: Vec<&Heard> = heard.iter().filter(|h| h.from.is_ipv4()).collect();
    let v6: Vec<&Heard> = heard.iter().filter(|h| h.from.is_ipv6()).collect();
    assert_eq!((v4.len(), v6.len()), (2, 2), "{heard:?}");
    let id = [heard[0].bytes[0], heard[0].bytes[1]];
    for h in &heard {
        assert_eq!(h.ttl, Some(255), "{h:?}");
        assert_ne!(
            h.from.port(),
            5353,
            "a one-shot query comes from an ephemeral port"
        );
        assert_eq!(h.bytes, expected_query(id), "{h:?}");
    }
    assert_eq!(v4[0].from.ip(), IpAddr::V4(Lab::ROUTER_SERVER_SIDE_V4));
    assert!(
        matches!(v6[0].from.ip(), IpAddr::V6(a) if a.is_unicast_link_local()),
        "{heard:?}"
    );

    // Every datagram that left went to a group: 2 tries on 2 links.
    let ruleset = nft("list chain inet lab out");
    let counts: Vec<u64> = ruleset
        .lines()
        .filter_map(|l| l.split("counter packets ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts, vec![4, 4, 0], "{ruleset}");
}

/// A device on the server's link that answers one-shot queries over IPv4
/// for the names in `answers`, each with the address given (AAAA for an
/// IPv6 one), whatever the truth, until `stop` is set.
fn forge_answers(lab: &Lab, answers: Vec<(&'static str, IpAddr)>, stop: Arc<AtomicBool>) {
    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, AAAA};
    use hickory_proto::rr::{RData, Record};
    use socket2::{Domain, Socket, Type};

    let (ready_tx, ready_rx) = mpsc::channel();
    let server_v4 = lab.server_v4();
    netns::spawn_in(lab.server_ns(), "mdns-forger", move || {
        let open = || -> std::io::Result<UdpSocket> {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 5353).into())?;
            s.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &server_v4)?;
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
            Ok(s.into())
        };
        let socket = match open() {
            Ok(s) => s,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        while !stop.load(Ordering::Relaxed) {
            let mut buf = [0u8; 9000];
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if query.message_type != MessageType::Query || from.port() == 5353 {
                continue;
            }
            let mut reply = Message::new(query.id, MessageType::Response, OpCode::Query);
            for q in &query.queries {
                reply.add_query(q.clone());
            }
            for q in &query.queries {
                for (name, ip) in &answers {
                    let owner = q.name();
                    if !owner
                        .to_ascii()
                        .trim_end_matches('.')
                        .eq_ignore_ascii_case(name)
                    {
                        continue;
                    }
                    let data = match ip {
                        IpAddr::V4(v4) => RData::A(A(*v4)),
                        IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                    };
                    let record = Record::from_rdata(owner.clone(), 10, data);
                    if record.record_type() == q.query_type() {
                        reply.add_answer(record);
                    }
                }
            }
            if reply.answers.is_empty() {
                continue;
            }
            let _ = socket.send_to(&reply.to_vec().expect("an mDNS answer"), from);
        }
    })
    .expect("a thread in the server namespace");
    ready_rx
        .recv()
        .expect("forger thread")
        .expect("a socket on the mDNS group");
}

#[test]
fn a_forged_answer_pointing_a_local_name_at_loopback_is_refused() {
    let name = "a_forged_answer_pointing_a_local_name_at_loopback_is_refused";
    let Some(lab) = lab_or_skip(name) else {
        return;
    };
    let _etc = netns::EtcWithoutMdns::new(lab.router_ns());
    let addr = support::run(lab.cmd(Ns::Server, "ip").args([
        "-6",
        "-o",
        "addr",
        "show",
        "dev",
        Lab::SERVER_IF,
        "scope",
        "link",
    ]))
    .unwrap();
    let link_local: Ipv6Addr = addr
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no link-local address: {addr}"));
    let stop = Arc::new(AtomicBool::new(false));
    forge_answers(
        &lab,
        vec![
            ("forged.local", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("elsewhere.local", IpAddr::V4(Lab::CLIENT_V4)),
            ("inside.local", IpAddr::V4(Lab::SERVER_V4)),
            ("linklocal.local", IpAddr::V6(link_local)),
        ],
        Arc::clone(&stop),
    );
    // Something listening on the router's loopback, as the exporter's own
    // port would, and a rule counting every packet sent to it.
    let own = lab.tcp_listeners_in(Ns::Router, &[0], false).unwrap();
    let port = own.ports()[0];
    lab.nft_script(&format!(
        "add chain inet lab out {{ type filter hook output priority 0 ; policy accept ; }}\n\
         add counter inet lab loopback\n\
         add rule inet lab out ip daddr 127.0.0.1 tcp dport {port} counter name loopback\n"
    ))
    .unwrap();
    let _server_v4 = lab.tcp_listeners(&[5900], false).unwrap();
    let _server_v6 = lab.tcp_listeners(&[5900], true).unwrap();

    let (_exporter, at) = http::start_exporter(
        lab.cmd_as_nobody(Ns::Router, env!("CARGO_BIN_EXE_portprobe"))
            .unwrap()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args([
                "--allow",
                "forged.local,elsewhere.local,inside.local,linklocal.local",
            ])
            .args(["--allow", &format!("{}/24", Lab::SERVER_V4)]),
    );
    let get = |path: String| {
        lab.run_in(Ns::Router, move || http::get(at, &path, ""))
            .unwrap()
            .unwrap()
    };
    let forged = get(format!("/probe?target=forged.local&ports={port}"));
    assert_eq!(forged.code, 403, "{}", forged.body);
    assert!(forged.body.contains("nothing was sent"), "{}", forged.body);
    assert!(!forged.body.contains("127.0.0.1"), "{}", forged.body);
    // An address outside the allowed networks, though the name is allowed.
    let elsewhere = get(format!("/probe?target=elsewhere.local&ports={port}"));
    assert_eq!(elsewhere.code, 403, "{}", elsewhere.body);
    assert!(
        elsewhere.body.contains("not in this exporter's allow-list")
            && !elsewhere.body.contains(&Lab::CLIENT_V4.to_string()),
        "{}",
        elsewhere.body
    );
    // A link-local address is one like any other for the exporter: outside
    // the allowed networks.
    let link = get("/probe?target=linklocal.local&ports=5900".to_string());
    assert_eq!(link.code, 403, "{}", link.body);
    // The forger answers: inside the allowed network, the name is probed.
    let inside = get("/probe?target=inside.local&ports=5900".to_string());
    assert_eq!(inside.code, 200, "{}", inside.body);
    assert!(
        inside.body.contains("port=\"5900\",service=") && inside.body.contains("state=\"open\""),
        "{}",
        inside.body
    );

    let o = probe(&lab, &["forged.local", "--ports", &port.to_string()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("multicast DNS answered with 127.0.0.1, a loopback address"),
        "{err}"
    );
    // The command line keeps link-local answers, on the link they came from.
    let doc = json(&probe(
        &lab,
        &["linklocal.local", "--ports", "5900", "--json"],
    ));
    assert_eq!(doc["target"]["resolved_by"], "mdns", "{doc}");
    assert_eq!(doc["results"][0]["state"], "open", "{doc}");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(own.count(), 0, "a connection reached the router's loopback");
    assert_eq!(
        lab.nft_counter("loopback").unwrap().0,
        0,
        "a packet went to 127.0.0.1:{port}"
    );
}
