//! TCP probing through a real firewall: a client, an nftables router and a
//! server in network namespaces. Every run of portprobe happens in the client
//! namespace as user `nobody`, so these tests also prove that probing needs
//! no privileges. They need root to build the lab: without it each test
//! prints one line saying it was skipped; under CI=true they must run.

mod support;

use support::json;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Output;

use serde_json::Value;
use support::lab::{Lab, Ns};

/// Runs portprobe in the client namespace as `nobody`.
fn probe(lab: &Lab, args: &[&str]) -> Output {
    lab.client_cmd_as_nobody(env!("CARGO_BIN_EXE_portprobe"))
        .expect("command as nobody")
        .args(args)
        .output()
        .expect("run portprobe")
}

/// (state, reason, reason_from) per TCP port.
fn states(doc: &Value) -> BTreeMap<u16, (String, String, Option<String>)> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["port"].as_u64().unwrap() as u16,
                (
                    r["state"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                    r["reason_from"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

fn spec(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

const LISTENING: [u16; 4] = [22, 548, 3283, 5900];
const DROPPED: [u16; 2] = [311, 625];
const PROHIBITED: [u16; 2] = [106, 3659];
const NOTHING: u16 = 5988;
const HOST_UNREACHABLE: u16 = 389;

/// Listeners on LISTENING (22 is reset by the firewall before it gets there),
/// and rules that drop, reject with admin-prohibited, reject with a reset and
/// reject with host-unreachable.
fn firewall(lab: &Lab, v6: bool) -> support::lab::Listeners {
    let listeners = lab.tcp_listeners(&LISTENING, v6).expect("listeners");
    lab.nft(&[
        &format!("tcp dport {{ {} }} drop", spec(&DROPPED)),
        &format!(
            "tcp dport {{ {} }} reject with icmpx type admin-prohibited",
            spec(&PROHIBITED)
        ),
        "tcp dport 22 reject with tcp reset",
        &format!("tcp dport {HOST_UNREACHABLE} reject with icmpx type host-unreachable"),
    ])
    .expect("nft rules");
    listeners
}

fn check_states(doc: &Value, router: IpAddr) {
    let s = states(doc);
    let router = Some(router.to_string());
    let expect = |port: u16, state: &str, reason: &str, from: &Option<String>| {
        assert_eq!(
            s[&port],
            (state.to_string(), reason.to_string(), from.clone()),
            "port {port}: {doc}"
        );
    };
    for port in [548, 3283, 5900] {
        expect(port, "open", "syn-ack", &None);
    }
    // A forged reset reads exactly as a closed port.
    expect(22, "closed", "conn-refused", &None);
    expect(NOTHING, "closed", "conn-refused", &None);
    for port in DROPPED {
        expect(port, "filtered", "no-response", &None);
    }
    for port in PROHIBITED {
        expect(port, "filtered", "admin-prohibited", &router);
    }
    let hu = &s[&HOST_UNREACHABLE];
    assert_eq!(
        (hu.0.as_str(), hu.2.clone()),
        ("filtered", router.clone()),
        "{doc}"
    );
    // Over ICMPv6, nft's host-unreachable is sent as "address unreachable"
    // (type 1 code 3), which reads as host-unreachable like ICMPv4's.
    assert_eq!(hu.1, "host-unreachable", "{doc}");
    for r in doc["results"].as_array().unwrap() {
        assert_eq!(r["blocked"], r["state"] == "filtered");
    }
    assert_eq!(doc["summary"]["filtered"], 5);
    assert_eq!(doc["summary"]["blocked"], 5);
    assert_eq!(doc["status"], "CRITICAL");
}

fn all_ports() -> String {
    let mut all: Vec<u16> = LISTENING.to_vec();
    all.extend(DROPPED);
    all.extend(PROHIBITED);
    all.push(NOTHING);
    all.push(HOST_UNREACHABLE);
    spec(&all)
}

/// Probes the firewalled ports over IPv4 or IPv6 and checks every state.
fn states_through_the_router(name: &str, v6: bool) {
    let Some(lab) = support::lab_or_skip(name) else {
        return;
    };
    let _listeners = firewall(&lab, v6);
    let (server, router) = if v6 {
        (IpAddr::V6(lab.server_v6()), IpAddr::V6(lab.router_v6()))
    } else {
        (IpAddr::V4(lab.server_v4()), IpAddr::V4(lab.router_v4()))
    };
    let o = probe(
        &lab,
        &[&server.to_string(), "--ports", &all_ports(), "--json"],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    check_states(&json(&o), router);
}

#[test]
fn ipv4_states_reasons_and_the_router_that_rejected() {
    states_through_the_router("ipv4_states_reasons_and_the_router_that_rejected", false);
}

#[test]
fn ipv6_states_reasons_and_the_router_that_rejected() {
    states_through_the_router("ipv6_states_reasons_and_the_router_that_rejected", true);
}

#[test]
fn text_report_says_who_blocked_and_what_to_do() {
    let Some(lab) = support::lab_or_skip("text_report_says_who_blocked_and_what_to_do") else {
        return;
    };
    let _listeners = firewall(&lab, false);
    let o = probe(
        &lab,
        &[&lab.server_v4().to_string(), "--ports", &all_ports()],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let router = lab.router_v4();
    assert!(
        text.contains(&format!(
            "rejected by {router} at hop 1: administratively prohibited"
        )),
        "{text}"
    );
    assert!(text.contains("no response after 2 attempts"), "{text}");
    assert!(
        text.contains("CRITICAL: 198.18.1.2: 5 of 10 required ports are blocked"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "passes every router up to {router} (hop 1) and gets no answer from the host: {router} after its TTL check, or the host's own firewall, drops it"
        )),
        "{text}"
    );
    // Blocked ports come first, open ones last.
    let blocked = text.find("BLOCKED").unwrap();
    let no_service = text.find("REACHABLE, NO SERVICE").unwrap();
    let open = text.find("OPEN").unwrap();
    assert!(blocked < no_service && no_service < open, "{text}");
}

/// Open and dropped ports for the lossy and slow paths: 70 of each.
fn many_ports() -> (Vec<u16>, Vec<u16>) {
    ((20000..20070).collect(), (21000..21070).collect())
}

fn check_open_and_dropped(doc: &Value, open: &[u16], dropped: &[u16]) {
    let s = states(doc);
    let wrong_open: Vec<_> = open
        .iter()
        .filter(|p| s[p].0 != "open")
        .map(|p| (p, &s[p]))
        .collect();
    assert!(
        wrong_open.is_empty(),
        "open ports not reported open: {wrong_open:?}"
    );
    let wrong_dropped: Vec<_> = dropped
        .iter()
        .filter(|p| s[p].0 != "filtered")
        .map(|p| (p, &s[p]))
        .collect();
    assert!(
        wrong_dropped.is_empty(),
        "dropped ports not reported filtered: {wrong_dropped:?}"
    );
}

#[test]
fn five_percent_loss_still_finds_every_open_port() {
    let Some(lab) = support::lab_or_skip("five_percent_loss_still_finds_every_open_port") else {
        return;
    };
    let (open, dropped) = many_ports();
    let _listeners = lab.tcp_listeners(&open, false).unwrap();
    lab.nft(&["tcp dport 21000-21069 drop"]).unwrap();
    lab.set_loss(5).unwrap();
    let ports = "20000-20069,21000-21069";
    for round in 0..3 {
        let o = probe(
            &lab,
            &[&lab.server_v4().to_string(), "--ports", ports, "--json"],
        );
        let doc = json(&o);
        check_open_and_dropped(&doc, &open, &dropped);
        eprintln!("loss round {round}: {}", doc["hosts"][0]);
    }
}

#[test]
fn added_latency_is_followed_not_mistaken_for_a_drop() {
    let Some(lab) = support::lab_or_skip("added_latency_is_followed_not_mistaken_for_a_drop")
    else {
        return;
    };
    let (open, dropped) = many_ports();
    let _listeners = lab.tcp_listeners(&open, false).unwrap();
    lab.nft(&["tcp dport 21000-21069 drop"]).unwrap();
    lab.set_delay(150).unwrap();
    let o = probe(
        &lab,
        &[
            &lab.server_v4().to_string(),
            "--ports",
            "20000-20069,21000-21069",
            "--json",
        ],
    );
    let doc = json(&o);
    check_open_and_dropped(&doc, &open, &dropped);
    let srtt = doc["hosts"][0]["srtt_ms"].as_f64().unwrap();
    assert!(
        (290.0..700.0).contains(&srtt),
        "smoothed RTT {srtt} ms for a 300 ms path"
    );
    for r in doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "open")
    {
        assert!(r["rtt_ms"].as_f64().unwrap() >= 290.0, "{r}");
    }
}

#[test]
fn a_silent_host_gets_one_verdict() {
    let Some(lab) = support::lab_or_skip("a_silent_host_gets_one_verdict") else {
        return;
    };
    lab.nft(&[&format!("ip daddr {} drop", lab.server_v4())])
        .unwrap();
    let host = lab.server_v4().to_string();
    let o = probe(&lab, &[&host, "--ports", "1-2000"]);
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("HOST UNREACHABLE OR ENTIRELY FILTERED: not one of 2000 ports answered"),
        "{text}"
    );
    assert!(text.contains("CRITICAL: 198.18.1.2: host unreachable or entirely filtered: not one of 2000 required ports answered"), "{text}");
    assert!(text.contains("nothing answers from 198.18.1.2"), "{text}");
    assert!(
        text.lines().count() < 10,
        "no list of 2000 blocked ports: {text}"
    );
    let doc = json(&probe(&lab, &[&host, "--ports", "1-2000", "--json"]));
    assert_eq!(doc["hosts"][0]["verdict"], "silent");
    assert_eq!(
        doc["results"].as_array().unwrap().len(),
        2000,
        "JSON still lists every port"
    );
}

#[test]
fn an_unreachable_host_names_the_router() {
    let Some(lab) = support::lab_or_skip("an_unreachable_host_names_the_router") else {
        return;
    };
    lab.nft(&[&format!(
        "ip daddr {} reject with icmp type host-unreachable",
        lab.server_v4()
    )])
    .unwrap();
    let host = lab.server_v4().to_string();
    let doc = json(&probe(&lab, &[&host, "--ports", "1-500", "--json"]));
    assert_eq!(
        doc["hosts"][0]["verdict"], "unreachable",
        "{}",
        doc["hosts"]
    );
    assert_eq!(doc["hosts"][0]["reason"], "host-unreachable");
    assert_eq!(doc["hosts"][0]["reason_from"], lab.router_v4().to_string());
    let text =
        String::from_utf8_lossy(&probe(&lab, &[&host, "--ports", "1-500"]).stdout).into_owned();
    assert!(
        text.contains(&format!(
            "HOST UNREACHABLE: reported by {} (host unreachable) for all 500 ports",
            lab.router_v4()
        )),
        "{text}"
    );
}

#[test]
fn a_local_firewall_is_its_own_reason() {
    let Some(lab) = support::lab_or_skip("a_local_firewall_is_its_own_reason") else {
        return;
    };
    let _listeners = lab.tcp_listeners(&[548], false).unwrap();
    let nft = |args: &str| {
        let out = lab.cmd(Ns::Client, "nft").arg(args).output().unwrap();
        assert!(
            out.status.success(),
            "nft {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nft("add table inet local");
    nft("add chain inet local out { type filter hook output priority 0 ; }");
    nft("add rule inet local out tcp dport 4111 drop");
    nft("add rule inet local out udp dport 4112 drop");
    let doc = json(&probe(
        &lab,
        &[
            &lab.server_v4().to_string(),
            "--ports",
            "548,4111,4112/udp",
            "--json",
        ],
    ));
    let s = states(&doc);
    assert_eq!(s[&548].0, "open");
    // Linux refuses a UDP send at once (EPERM) when a local rule drops it...
    assert_eq!(
        (s[&4112].0.as_str(), s[&4112].1.as_str()),
        ("filtered", "local-firewall"),
        "{doc}"
    );
    // ...but a dropped TCP SYN fails silently inside the kernel, so a local
    // drop reads like a drop on the way.
    assert_eq!(
        (s[&4111].0.as_str(), s[&4111].1.as_str()),
        ("filtered", "no-response"),
        "{doc}"
    );
}

/// A resolver configuration for the client namespace (`ip netns exec` binds
/// /etc/netns/NAME/resolv.conf over /etc/resolv.conf), removed on drop.
struct NetnsResolv(std::path::PathBuf);

impl Drop for NetnsResolv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_name_that_does_not_resolve_is_unknown() {
    let Some(lab) = support::lab_or_skip("a_name_that_does_not_resolve_is_unknown") else {
        return;
    };
    // The lab's own resolver: 127.0.0.1 inside the client namespace, where
    // nothing listens, so the query never leaves the namespace.
    let dir = std::path::PathBuf::from("/etc/netns").join(lab.client_ns());
    std::fs::create_dir_all(&dir).unwrap();
    let _guard = NetnsResolv(dir.clone());
    std::fs::write(
        dir.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n",
    )
    .unwrap();
    let o = probe(&lab, &["no-such-host.pp.test", "--ports", "80"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("portprobe: cannot resolve no-such-host.pp.test: "),
        "{err}"
    );
}

/// The lab's own resolver for the client namespace, in `/etc/netns`, which
/// `ip netns exec` puts in place of `/etc/resolv.conf`; removed on drop.
fn resolver(lab: &Lab, conf: &str) -> NetnsResolv {
    let dir = std::path::PathBuf::from("/etc/netns").join(lab.client_ns());
    std::fs::create_dir_all(&dir).unwrap();
    let guard = NetnsResolv(dir.clone());
    std::fs::write(dir.join("resolv.conf"), conf).unwrap();
    guard
}

#[test]
fn a_resolver_error_names_its_cause_once() {
    let Some(lab) = support::lab_or_skip("a_resolver_error_names_its_cause_once") else {
        return;
    };
    let _resolv = resolver(&lab, "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n");
    let o = probe(&lab, &["no-such-host.pp.test", "--ports", "80"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{err}");
    let cause = err
        .trim_end()
        .strip_prefix("portprobe: cannot resolve no-such-host.pp.test: ")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(!cause.is_empty(), "{err}");
    assert_eq!(err.matches(cause).count(), 1, "{err}");
    let halves = cause.split(": ").collect::<Vec<_>>();
    let unique: std::collections::BTreeSet<&&str> = halves.iter().collect();
    assert_eq!(unique.len(), halves.len(), "a cause printed twice: {err}");
}

#[test]
fn a_silent_name_server_costs_no_more_than_max_time() {
    let Some(lab) = support::lab_or_skip("a_silent_name_server_costs_no_more_than_max_time") else {
        return;
    };
    // A name server that reads every query and never answers: the system
    // resolver alone waits 5 s per try, twice, per address family.
    let server = lab.server_v4().to_string();
    let _silent_dns = lab.udp_sockets(&[53], false).unwrap();
    let _resolv = resolver(&lab, &format!("nameserver {server}\n"));
    let _open = lab.tcp_listeners(&[80], false).unwrap();
    let started = std::time::Instant::now();
    let o = probe(
        &lab,
        &[
            "slow.pp.test",
            &server,
            "--ports",
            "80",
            "--max-time",
            "2s",
            "--json",
        ],
    );
    let took = started.elapsed();
    let doc = json(&o);
    assert!(took < std::time::Duration::from_secs(6), "took {took:?}");
    assert_eq!(o.status.code(), Some(3));
    let targets = doc["targets"].as_array().unwrap();
    assert!(
        targets[0]["error"]
            .as_str()
            .unwrap()
            .contains("the name resolver did not answer in time"),
        "{}",
        targets[0]
    );
    assert_eq!(targets[1]["results"][0]["state"], "open", "{}", targets[1]);

    // Ctrl-C while the resolver is still silent ends the run at once.
    let mut cmd = lab
        .client_cmd_as_nobody(env!("CARGO_BIN_EXE_portprobe"))
        .unwrap();
    cmd.args(["slow.pp.test", "--ports", "80", "--max-time", "60s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = support::proc::KillOnDrop::spawn(&mut cmd).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child
        .wait_for(std::time::Duration::from_secs(3))
        .expect("portprobe ended on SIGINT");
    assert_eq!(status.code(), Some(3));
}

/// A blackhole route (EINVAL) and a prohibit route (EACCES) on this
/// computer: each target's ports carry the local error, and the others are
/// probed as usual.
#[test]
fn a_local_error_is_that_targets_result_and_the_run_goes_on() {
    let Some(lab) =
        support::lab_or_skip("a_local_error_is_that_targets_result_and_the_run_goes_on")
    else {
        return;
    };
    for (kind, net) in [
        ("blackhole", "198.18.200.0/24"),
        ("prohibit", "198.18.201.0/24"),
    ] {
        support::run(lab.cmd(Ns::Client, "ip").args(["route", "add", kind, net])).unwrap();
    }
    let _open = lab.tcp_listeners(&[80], false).unwrap();
    let server = lab.server_v4().to_string();
    let args = [
        server.as_str(),
        "198.18.200.1",
        "198.18.201.1",
        "--ports",
        "53/udp,80",
    ];
    let o = probe(&lab, &[&args[..], &["--json"]].concat());
    let doc = json(&o);
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    let port_80 = |t: &Value| {
        t["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["port"] == 80)
            .cloned()
            .unwrap()
    };
    assert_eq!(port_80(&targets[0])["state"], "open");
    for (t, message) in [
        (&targets[1], "Invalid argument"),
        (&targets[2], "Permission denied"),
    ] {
        for r in t["results"].as_array().unwrap() {
            assert_eq!(r["reason"], "local-error", "{r}");
            assert_eq!(r["blocked"], true, "{r}");
            assert!(r["note"].as_str().unwrap().ends_with(message), "{r}");
        }
    }
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8(probe(&lab, &args).stdout).unwrap();
    assert!(text.contains(&format!("WARNING: {server}")), "{text}");
    assert!(
        text.contains("198.18.200.1 cannot be reached from this computer"),
        "{text}"
    );
    assert!(
        text.contains("this computer cannot send to it (Invalid argument)")
            && text.contains("this computer cannot send to it (Permission denied)"),
        "{text}"
    );
}

/// A link-local address keeps its zone: the router's own address on the
/// client's link, named with the client's interface, answers.
#[test]
fn a_link_local_address_with_its_zone_is_probed() {
    let Some(lab) = support::lab_or_skip("a_link_local_address_with_its_zone_is_probed") else {
        return;
    };
    let addrs = support::run(lab.cmd(Ns::Router, "ip").args([
        "-6",
        "-o",
        "addr",
        "show",
        "dev",
        Lab::ROUTER_CLIENT_IF,
        "scope",
        "link",
    ]))
    .unwrap();
    let link_local = addrs
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address: {addrs}"))
        .to_string();
    let target = format!("{link_local}%{}", Lab::CLIENT_IF);
    let doc = json(&probe(&lab, &[&target, "--ports", "80", "--json"]));
    let r = &doc["results"][0];
    assert_eq!(
        (r["state"].as_str(), r["reason"].as_str()),
        (Some("closed"), Some("conn-refused")),
        "{doc}"
    );
    assert_eq!(doc["target"]["host"], target.as_str());
}

/// A name that resolves to a multicast address is that target's error, and
/// nothing is sent to it; the other target is probed.
#[test]
fn a_name_resolving_to_a_multicast_address_is_refused() {
    let Some(lab) = support::lab_or_skip("a_name_resolving_to_a_multicast_address_is_refused")
    else {
        return;
    };
    // `ip netns exec` puts /etc/netns/NS/hosts in place of /etc/hosts.
    let guard = resolver(&lab, "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n");
    std::fs::write(
        guard.0.join("hosts"),
        "224.0.0.251 group.pp.test\n255.255.255.255 everyone.pp.test\n",
    )
    .unwrap();
    let _open = lab.tcp_listeners(&[80], false).unwrap();
    let server = lab.server_v4().to_string();
    let o = probe(
        &lab,
        &[
            "group.pp.test",
            "everyone.pp.test",
            &server,
            "--ports",
            "80,53/udp",
            "--json",
        ],
    );
    let doc = json(&o);
    let targets = doc["targets"].as_array().unwrap();
    for (t, address, what) in [
        (&targets[0], "224.0.0.251", "a multicast address"),
        (&targets[1], "255.255.255.255", "a broadcast address"),
    ] {
        let error = t["error"].as_str().unwrap_or_else(|| panic!("{t}"));
        assert!(
            error.contains(&format!(
                "(resolved to {address}) is {what}, not a single host"
            )),
            "{error}"
        );
        assert_eq!(t["results"].as_array().unwrap().len(), 0, "{t}");
    }
    assert_eq!(targets[2]["summary"]["open"], 1, "{}", targets[2]);
    assert_eq!(o.status.code(), Some(3));
}

/// Addresses that are no single host's, given literally beside a real
/// target, are each that target's error and are sent nothing, TCP or UDP:
/// the client's own firewall counts the TCP and UDP it sends to them (and
/// to loopback, where the kernel takes 0.0.0.0 and `::`), which stays zero,
/// while the server is probed. The kernel's own ICMPv6 (neighbour and
/// router solicitations, MLD reports to ff02::) is not counted: it is sent
/// whenever a link comes up, whatever portprobe does.
#[test]
fn literal_broadcast_and_multicast_targets_are_sent_nothing() {
    let Some(lab) =
        support::lab_or_skip("literal_broadcast_and_multicast_targets_are_sent_nothing")
    else {
        return;
    };
    let _open = lab.tcp_listeners(&[80], false).unwrap();
    let server = lab.server_v4().to_string();
    let subnet_broadcast = "198.18.0.255";
    lab.nft_script_in(
        Ns::Client,
        &format!(
            "table inet probe {{
  counter refused {{}}
  counter server {{}}
  chain out {{
    type filter hook output priority 0; policy accept;
    meta l4proto {{ tcp, udp }} ip daddr {{ 0.0.0.0/8, 224.0.0.0/4, 255.255.255.255, {subnet_broadcast} }} counter name refused
    meta l4proto {{ tcp, udp }} ip6 daddr {{ ::, ff00::/8 }} counter name refused
    meta l4proto {{ tcp, udp }} oifname \"lo\" counter name refused
    ip daddr {server} counter name server
  }}
}}"
        ),
    )
    .unwrap();
    let refused = [
        ("255.255.255.255", "a broadcast address"),
        (subnet_broadcast, "a broadcast address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
    ];
    let mut args: Vec<&str> = vec![&server];
    args.extend(refused.iter().map(|(host, _)| *host));
    args.extend(["--ports", "80,53/udp,5353/udp", "--json", "--no-locate"]);
    let o = probe(&lab, &args);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc = json(&o);
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1 + refused.len(), "{doc}");
    assert_eq!(targets[0]["results"][0]["state"], "open", "{}", targets[0]);
    for ((host, what), t) in refused.iter().zip(&targets[1..]) {
        assert_eq!(t["target"]["host"], *host);
        let error = t["error"].as_str().unwrap_or_else(|| panic!("{t}"));
        assert!(
            error.starts_with(&format!("{host} is {what}, not a single host")),
            "{error}"
        );
    }
    let (sent, _) = lab.nft_counter_in(Ns::Client, "probe", "refused").unwrap();
    assert_eq!(sent, 0, "packets sent to refused targets");
    let (probed, _) = lab.nft_counter_in(Ns::Client, "probe", "server").unwrap();
    assert!(probed >= 3, "the server was probed with {probed} packets");
    // The count is real: a datagram to a group and one to 0.0.0.0 are seen.
    lab.run_in(Ns::Client, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(b"x", "224.0.0.1:5353").unwrap();
        s.send_to(b"x", "0.0.0.0:9").unwrap();
    })
    .unwrap();
    let (control, _) = lab.nft_counter_in(Ns::Client, "probe", "refused").unwrap();
    // (The port unreachable that answers the second one is counted too.)
    assert!(
        control >= 2,
        "the counter missed datagrams sent to refused addresses: {control}"
    );
}
