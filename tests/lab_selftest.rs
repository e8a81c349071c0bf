//! Proves the test lab itself with standard client tools: topology, firewall
//! rules, loss, delay, the real UDP daemons, and teardown.

mod support;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use support::lab::{Lab, Ns};

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

#[test]
fn topology_v4_and_v6_through_router() {
    let Some(lab) = support::lab_or_skip("topology_v4_and_v6_through_router") else {
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
    let Some(lab) = support::lab_or_skip("nft_drop_times_out_and_reject_is_host_unreachable")
    else {
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
    let err = lab.nft(&["this is not a rule"]).expect_err("bad rule");
    assert!(err.to_string().contains("syntax error"), "{err}");
}

#[test]
fn loss_drops_about_half() {
    let Some(lab) = support::lab_or_skip("loss_drops_about_half") else {
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
    let Some(lab) = support::lab_or_skip("delay_adds_to_round_trip") else {
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
