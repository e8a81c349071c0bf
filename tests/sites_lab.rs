//! Many sites, one Prometheus: at each of two sites a `portprobe serve`
//! and a Prometheus in agent mode that scrapes it, configured by the
//! shipped `contrib/prometheus/sites/` files, remote-write to one central
//! Prometheus. Site a's router drops TCP 5900 to the server and site b's
//! passes it, and the central Prometheus' query API and its alert (from
//! the shipped rules) tell the sites apart and say where the port stops.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http::{self, form_encode};
use support::proc::KillOnDrop;
use support::sites::{Node, Sites};

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

/// The shipped files.
fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/prometheus/sites")
        .join(name)
}

/// `text` with `from` replaced by `to`, which must be there.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "no {from:?} in the shipped file");
    text.replace(from, to)
}

/// A Prometheus listening on `at` inside `node`, with `args`.
fn prometheus(sites: &Sites, node: Node, at: SocketAddr, args: &[String]) -> KillOnDrop {
    KillOnDrop::spawn(
        sites
            .cmd(node, "prometheus")
            .args(args)
            .arg(format!("--web.listen-address={at}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap()
}

/// Site `name`'s agent: `agent.yml` filled in for this site (scraping
/// every 5 s rather than every minute), with `targets.json` beside it, in
/// `dir`; checked by promtool, then started.
fn agent(
    sites: &Sites,
    node: Node,
    name: &str,
    exporter: SocketAddr,
    central: &str,
    dir: &Path,
) -> KillOnDrop {
    let template = std::fs::read_to_string(shipped("agent.yml")).unwrap();
    let config = replaced(&template, "${SITE}", name);
    let config = replaced(&config, "${EXPORTER}", &exporter.to_string());
    let config = replaced(&config, "${CENTRAL}", central);
    let config = replaced(&config, "scrape_interval: 1m", "scrape_interval: 5s");
    let config = replaced(&config, "scrape_timeout: 30s", "scrape_timeout: 4s");
    assert!(!config.contains("${"), "{config}");
    let file = dir.join("agent.yml");
    std::fs::write(&file, config).unwrap();
    std::fs::copy(shipped("targets.json"), dir.join("targets.json")).unwrap();
    support::run(
        Command::new("promtool")
            .args(["check", "config", "--agent"])
            .arg(&file),
    )
    .unwrap();
    prometheus(
        sites,
        node,
        "127.0.0.1:9090".parse().unwrap(),
        &[
            "--enable-feature=agent".into(),
            format!("--config.file={}", file.display()),
            format!("--storage.agent.path={}", dir.join("wal").display()),
        ],
    )
}

#[test]
fn two_sites_agents_write_to_one_prometheus_that_tells_their_paths_apart() {
    let name = "two_sites_agents_write_to_one_prometheus_that_tells_their_paths_apart";
    if !support::require_lab(name) || !support::require_programs(name, &["prometheus", "promtool"])
    {
        return;
    }
    let started = Instant::now();
    let sites = Sites::new().unwrap();
    sites.nft(Node::RouterA, &["tcp dport 5900 drop"]).unwrap();
    let _listeners = sites.tcp_listeners(&[548, 3283, 5900, 5988]).unwrap();

    // The central Prometheus at the hub, with the shipped rules evaluated
    // every second rather than every minute.
    let central_dir = tempfile::tempdir().unwrap();
    let central = replaced(
        &std::fs::read_to_string(shipped("central.yml")).unwrap(),
        "evaluation_interval: 1m",
        "evaluation_interval: 1s",
    );
    let central_file = central_dir.path().join("central.yml");
    std::fs::write(&central_file, central).unwrap();
    std::fs::copy(
        shipped("portprobe-sites-rules.yml"),
        central_dir.path().join("portprobe-sites-rules.yml"),
    )
    .unwrap();
    support::run(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(&central_file),
    )
    .unwrap();
    let _central = prometheus(
        &sites,
        Node::Hub,
        "0.0.0.0:9090".parse().unwrap(),
        &[
            format!("--config.file={}", central_file.display()),
            format!(
                "--storage.tsdb.path={}",
                central_dir.path().join("data").display()
            ),
            "--web.enable-remote-write-receiver".into(),
        ],
    );

    // Each site: its exporter, allowed the server's network, and its agent.
    let mut running = Vec::new();
    let mut dirs = Vec::new();
    for (node, site, hub) in [
        (Node::SiteA, "a", Sites::HUB_FROM_A_V4),
        (Node::SiteB, "b", Sites::HUB_FROM_B_V4),
    ] {
        let (exporter, at) = http::start_exporter(sites.cmd(node, BIN).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow",
            "198.18.1.0/24",
        ]));
        let dir = tempfile::tempdir().unwrap();
        let agent = agent(
            &sites,
            node,
            site,
            at,
            &format!("http://{hub}:9090"),
            dir.path(),
        );
        running.push((exporter, agent));
        dirs.push(dir);
    }

    let api = |path: &str| -> Value {
        let path = path.to_string();
        let answer = sites
            .run_in(Node::Hub, move || {
                http::get_within(
                    "127.0.0.1:9090".parse().unwrap(),
                    &path,
                    "",
                    Duration::from_secs(10),
                )
            })
            .unwrap();
        match answer {
            Ok(r) if r.code == 200 => serde_json::from_str(&r.body).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    };
    let query = |q: &str| -> Vec<Value> {
        api(&format!("/api/v1/query?query={}", form_encode(q)))["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let by_site = |series: &[Value], site: &str| -> Option<Value> {
        series.iter().find(|s| s["metric"]["site"] == site).cloned()
    };

    // Agents discover their targets on a 5 s timer, scrape within their
    // 5 s interval and send within 5 s: poll until both sites' results,
    // and site a's located drop, are in.
    let blocked_q = "portprobe_port_blocked{instance=\"198.18.1.2\",port=\"5900\"}";
    let located_q =
        "portprobe_port_info{site=\"a\",instance=\"198.18.1.2\",port=\"5900\",located_how!=\"\"}";
    let deadline = Instant::now() + Duration::from_secs(45);
    let (blocked, located) = loop {
        let blocked = query(blocked_q);
        let located = query(located_q);
        if blocked.len() == 2 && !located.is_empty() {
            break (blocked, located);
        }
        assert!(
            Instant::now() < deadline,
            "the central Prometheus has not both sites' TCP 5900: {blocked:?} {located:?}; up: {:?}",
            query("up")
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let arrived = started.elapsed();
    let a = by_site(&blocked, "a").expect("site a's gauge");
    let b = by_site(&blocked, "b").expect("site b's gauge");
    assert_eq!(a["value"][1], "1", "TCP 5900 from site a: {a}");
    assert_eq!(b["value"][1], "0", "TCP 5900 from site b: {b}");
    assert_eq!(a["metric"]["job"], "portprobe");
    assert_eq!(a["metric"]["product"], "Apple Remote Desktop");
    // The target's product reached the exporter as a parameter and no
    // temporary label was stored.
    assert!(
        a["metric"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("__tmp") && k != "exported_product"),
        "{a}"
    );
    assert_eq!(located.len(), 1, "{located:?}");
    let m = &located[0]["metric"];
    assert_eq!(
        [&m["state"], &m["located_after"], &m["located_after_hop"]],
        ["filtered", "198.18.0.1", "1"],
        "{m}"
    );
    let how = m["located_how"].as_str().unwrap();
    assert!(["at-host", "dropped"].contains(&how), "{m}");
    let open_b = query("portprobe_port_info{site=\"b\",instance=\"198.18.1.2\",port=\"5900\"}");
    assert_eq!(open_b.len(), 1, "{open_b:?}");
    assert_eq!(open_b[0]["metric"]["state"], "open", "{open_b:?}");
    assert_eq!(open_b[0]["metric"].get("located_after"), None, "{open_b:?}");

    // The second target's port list (ports= from targets.json) is probed
    // from both sites too; TCP 548 and 5900 are open from site b.
    let listed = query(
        "portprobe_port_info{site=\"b\",instance=\"198.18.1.3\",protocol=\"tcp\",state=\"open\"}",
    );
    let mut ports: Vec<&str> = listed
        .iter()
        .filter_map(|s| s["metric"]["port"].as_str())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, ["548", "5900"], "{listed:?}");
    let exporters = query("up{job=\"portprobe-exporter\"}");
    for site in ["a", "b"] {
        let up = by_site(&exporters, site)
            .unwrap_or_else(|| panic!("no up from site {site}: {exporters:?}"));
        assert_eq!(up["value"][1], "1", "{up}");
    }

    // The shipped alert, pending (it fires after 10 minutes), names the
    // site and where the port stops on its path; site b has none.
    let deadline = Instant::now() + Duration::from_secs(20);
    let alerts = loop {
        let doc = api("/api/v1/alerts");
        let alerts: Vec<Value> = doc["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                a["labels"]["alertname"] == "PortprobeSitePortBlocked"
                    && a["labels"]["port"] == "5900"
            })
            .cloned()
            .collect();
        if alerts
            .iter()
            .any(|a| a["labels"]["instance"] == "198.18.1.2")
        {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "no PortprobeSitePortBlocked for TCP 5900: {doc}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let on_198_18_1_2: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["labels"]["instance"] == "198.18.1.2")
        .collect();
    assert_eq!(on_198_18_1_2.len(), 1, "{alerts:?}");
    let alert = on_198_18_1_2[0];
    assert_eq!(alert["labels"]["site"], "a", "{alert}");
    assert_eq!(
        alert["annotations"]["description"],
        "TCP 5900 to 198.18.1.2 blocked from site a, dropped past 198.18.0.1 (hop 1)",
        "{alert}"
    );
    assert!(
        alerts.iter().all(|a| a["labels"]["site"] == "a"),
        "{alerts:?}"
    );
    eprintln!(
        "two sites' results reached the central Prometheus {arrived:.2?} after the lab was built; \
         the pending alert says: {}",
        alert["annotations"]["description"]
    );
    drop(running);
    drop(sites);
}
