//! UDP probing proven against real server programs from Debian's packages,
//! started inside the lab's server namespace, and through the lab's nftables
//! router. portprobe always runs as user `nobody`. The tests need root to
//! build the lab: without it each prints one line saying it was skipped;
//! under CI=true they must run.

mod support;

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

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
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
