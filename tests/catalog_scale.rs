//! Whole-program tests of a large user catalog (`--catalog FILE`): 200 000
//! port strings over 2 000 entries, listed completely and in order, with the
//! products that need each port, and ad hoc port ranges named after the rows
//! that cover them.
//!
//! Each run of portprobe is under a wall-clock guard (see [`GUARD`]).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How long one run of portprobe may take before the test kills it and fails.
/// This is no benchmark: the guard only catches a return to time that grows
/// with the square of the catalog, which took minutes at this size (a debug
/// build needed 14 minutes for `ports --all --json` and nearly 10 to name
/// the `--ports` ranges below), while linear time takes a few seconds.
const GUARD: Duration = Duration::from_secs(60);

const ENTRIES: usize = 2000;
const PORTS_PER_ENTRY: usize = 100;
/// Entries from here on are needed by no product but `Base`, which needs
/// only the UDP side of the first of them.
const UNCLAIMED_FROM: usize = ENTRIES - 10;

/// Runs portprobe with its standard output in a file, killing it when it
/// outlives [`GUARD`]; returns standard output.
fn run_guarded(dir: &Path, args: &[&str]) -> String {
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run portprobe");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > GUARD {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "portprobe {args:?} still running after {GUARD:?}: listing the catalog takes time that grows faster than the catalog"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "portprobe {args:?}: {status}: {err}");
    assert!(err.is_empty(), "{err}");
    std::fs::read_to_string(&out_path).unwrap()
}

fn is_udp(i: usize) -> bool {
    i % 2 == 1
}

/// Whether entry `i` is a TCP/UDP row.
fn is_both(i: usize) -> bool {
    i.is_multiple_of(5)
}

fn transports(i: usize) -> Vec<&'static str> {
    if is_both(i) {
        vec!["tcp", "udp"]
    } else if is_udp(i) {
        vec!["udp"]
    } else {
        vec!["tcp"]
    }
}

/// The port strings of entry `i`: single ports spread over ports 1-65534
/// (together the entries of each transport cover every one of them, and
/// rows overlap), every 25th a range of ten, and in every 50th entry the
/// first string once more at the end.
fn port_strings(i: usize) -> Vec<String> {
    let mut out: Vec<String> = (0..PORTS_PER_ENTRY)
        .map(|j| {
            let port = (i * 37 + j * 655) % 65534 + 1;
            if j % 25 == 0 {
                format!("{port}-{}", (port + 9).min(65534))
            } else {
                port.to_string()
            }
        })
        .collect();
    if i.is_multiple_of(50) {
        out.push(out[0].clone());
    }
    out
}

fn range(s: &str) -> (u16, u16) {
    match s.split_once('-') {
        Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
        None => (s.parse().unwrap(), s.parse().unwrap()),
    }
}

/// Rows run backwards through the file, so that table order is not file order.
fn row(i: usize) -> u32 {
    u32::try_from(ENTRIES - i).unwrap()
}

/// The products, in catalog order, that need entry `i` on `transport`.
fn needed_by(i: usize, transport: &str) -> Vec<&'static str> {
    let everything = i < UNCLAIMED_FROM;
    let base = (i == 0 && transport == "tcp") || (i == UNCLAIMED_FROM && transport == "udp");
    let core = i < 10 || base;
    let suite = everything || core;
    [
        ("Everything", everything),
        ("Core", core),
        ("Base", base),
        ("Suite", suite),
    ]
    .into_iter()
    .filter(|&(_, needs)| needs)
    .map(|(name, _)| name)
    .collect()
}

/// The whys given for entry `i` on `transport`, in the order the listing
/// gives them (`Core`'s own needs before those of `Base`, which it includes).
fn whys(i: usize, transport: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if i < 10 {
        out.push("core service");
    }
    if needed_by(i, transport).contains(&"Base") {
        out.push("base");
    }
    out
}

/// Entries whose label is `label(i)`, the products above, and a last entry
/// on TCP.
fn catalog(label: impl Fn(usize) -> String, entries: usize) -> String {
    let mut text = String::new();
    for i in 0..entries {
        let protocol = if is_both(i) {
            "TCP/UDP"
        } else if is_udp(i) {
            "UDP"
        } else {
            "TCP"
        };
        let ports: Vec<String> = port_strings(i).iter().map(|p| format!("\"{p}\"")).collect();
        let _ = write!(
            text,
            "[[entry]]\nid = \"e{i}\"\nrow = {}\nlabel = \"{}\"\ntable_port = \"many\"\nports = [{}]\ntable_protocol = \"{protocol}\"\n\n",
            row(i),
            label(i),
            ports.join(", ")
        );
    }
    let everything: Vec<String> = (0..UNCLAIMED_FROM.min(entries))
        .map(|i| format!("{{ entry = \"e{i}\" }}"))
        .collect();
    let core: Vec<String> = (0..10)
        .map(|i| format!("{{ entry = \"e{i}\", why = \"core service\" }}"))
        .collect();
    let _ = write!(
        text,
        "[[product]]\nname = \"Everything\"\nneeds = [{}]\n\n\
         [[product]]\nname = \"Core\"\naliases = [\"Kernel\"]\nincludes = [\"Base\"]\nneeds = [{}]\n\n\
         [[product]]\nname = \"Base\"\nneeds = [{{ entry = \"e0\", protocols = [\"tcp\"], why = \"base\" }}, {{ entry = \"e{UNCLAIMED_FROM}\", protocols = [\"udp\"], why = \"base\" }}]\n\n\
         [[product]]\nname = \"Suite\"\nincludes = [\"Core\", \"Everything\"]\n",
        everything.join(", "),
        core.join(", ")
    );
    text
}

#[derive(Debug, Deserialize)]
struct Row {
    protocol: String,
    port_start: u16,
    port_end: u16,
    service: String,
    products: Vec<String>,
    why: Vec<String>,
    id: Option<String>,
    row: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ProductRow {
    name: String,
    tcp_ports: usize,
    udp_ports: usize,
}

#[test]
fn every_port_of_a_large_catalog_is_listed_with_its_products() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.toml");
    std::fs::write(&file, catalog(|i| format!("Service {i}"), ENTRIES)).unwrap();
    let file = file.to_str().unwrap();

    let json = run_guarded(dir.path(), &["ports", "--catalog", file, "--all", "--json"]);
    let rows: Vec<Row> = serde_json::from_str(&json).unwrap();

    // Complete: one row per entry, transport and distinct port string.
    let mut expected: BTreeSet<(u32, &str, u16, u16)> = BTreeSet::new();
    for i in 0..ENTRIES {
        for t in transports(i) {
            for p in port_strings(i) {
                let (start, end) = range(&p);
                expected.insert((row(i), t, start, end));
            }
        }
    }
    assert!(expected.len() > 200_000, "{}", expected.len());
    assert_eq!(rows.len(), expected.len());
    let listed: BTreeSet<(u32, &str, u16, u16)> = rows
        .iter()
        .map(|r| {
            (
                r.row.unwrap(),
                r.protocol.as_str(),
                r.port_start,
                r.port_end,
            )
        })
        .collect();
    assert_eq!(listed, expected);

    // In table order: by row, then TCP before UDP, then by port.
    let keys: Vec<(u32, &str, u16)> = rows
        .iter()
        .map(|r| (r.row.unwrap(), r.protocol.as_str(), r.port_start))
        .collect();
    assert!(keys.is_sorted());

    // Every row names its entry and the products that need it.
    for r in &rows {
        let i = ENTRIES - r.row.unwrap() as usize;
        assert_eq!(r.id.as_deref(), Some(format!("e{i}").as_str()));
        assert_eq!(r.service, format!("Service {i}"));
        assert_eq!(r.products, needed_by(i, &r.protocol), "{r:?}");
        assert_eq!(r.why, whys(i, &r.protocol), "{r:?}");
    }

    // A few rows spelt out.
    let find = |i: usize, protocol: &str| -> &Row {
        rows.iter()
            .find(|r| r.id.as_deref() == Some(&format!("e{i}")) && r.protocol == protocol)
            .unwrap()
    };
    let e0 = find(0, "tcp");
    assert_eq!((e0.port_start, e0.port_end), (1, 10));
    assert_eq!(e0.products, ["Everything", "Core", "Base", "Suite"]);
    assert_eq!(e0.why, ["core service", "base"]);
    assert_eq!(find(0, "udp").products, ["Everything", "Core", "Suite"]);
    let last_claimed = find(UNCLAIMED_FROM, "udp");
    assert_eq!(last_claimed.products, ["Core", "Base", "Suite"]);
    assert_eq!(last_claimed.why, ["base"]);
    assert!(find(UNCLAIMED_FROM, "tcp").products.is_empty());
    assert!(find(ENTRIES - 1, "udp").products.is_empty());
    assert_eq!(rows[0].id.as_deref(), Some("e1999"));
    assert_eq!(rows.last().unwrap().id.as_deref(), Some("e0"));

    // The products listing counts each product's distinct ports.
    let json = run_guarded(dir.path(), &["products", "--catalog", file, "--json"]);
    let products: Vec<ProductRow> = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = products.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Everything", "Core", "Base", "Suite"]);
    for p in &products {
        let count = |transport: &str| {
            let mut ports = BTreeSet::new();
            for i in 0..ENTRIES {
                if transports(i).contains(&transport) && needed_by(i, transport).contains(&&*p.name)
                {
                    for s in port_strings(i) {
                        let (start, end) = range(&s);
                        ports.extend(start..=end);
                    }
                }
            }
            ports.len()
        };
        assert_eq!(
            (p.tcp_ports, p.udp_ports),
            (count("tcp"), count("udp")),
            "{}",
            p.name
        );
    }
}

#[test]
fn ad_hoc_ranges_over_a_large_catalog_are_named_after_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.toml");
    // Every row has the same label, so a range is one service wherever the
    // rows of its transport cover it without a gap.
    let text = catalog(|_| "Web".to_string(), ENTRIES);
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();

    // The rows cover every TCP and every UDP port except 65535.
    let mut covered: HashMap<&str, BTreeSet<u16>> = HashMap::new();
    for i in 0..ENTRIES {
        for t in transports(i) {
            for s in port_strings(i) {
                let (start, end) = range(&s);
                covered.entry(t).or_default().extend(start..=end);
            }
        }
    }
    assert_eq!(covered["tcp"].len(), 65534);
    assert_eq!(covered["udp"].len(), 65534);

    let json = run_guarded(
        dir.path(),
        &[
            "ports",
            "--catalog",
            file,
            "--ports",
            "1-65534,1-65534/udp,1-65535,65535/udp",
            "--json",
        ],
    );
    let rows: Vec<Row> = serde_json::from_str(&json).unwrap();
    let listed: Vec<(&str, u16, u16, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.protocol.as_str(),
                r.port_start,
                r.port_end,
                r.service.as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("tcp", 1, 65534, "Web"),
            ("udp", 1, 65534, "Web"),
            ("tcp", 1, 65535, "several services"),
            ("udp", 65535, 65535, "unlisted"),
        ]
    );
    assert!(rows.iter().all(|r| r.products.is_empty() && r.id.is_none()));
}
