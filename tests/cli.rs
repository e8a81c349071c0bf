//! Whole-program tests of the command line that send no packets (but for
//! probes of loopback listeners): help, version, exit codes for bad input,
//! a closed stdout pipe, `--targets` read from streams within the run's
//! time, and the `products` and `ports` listings checked against the
//! article's own table text.

mod support;

use support::portprobe;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::proc::KillOnDrop;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Bad input: exit 3 (UNKNOWN) and exactly one line on stderr naming the problem.
fn assert_bad_input(args: &[&str], expected: &str) {
    let o = portprobe(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("portprobe: "), "{args:?}: {err}");
    assert!(err.contains(expected), "{args:?}: {err}");
    assert!(stdout(&o).is_empty(), "{args:?}");
}

#[test]
fn help_and_version_exit_zero() {
    let help = portprobe(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = stdout(&help);
    for needle in [
        "--product",
        "--ports",
        "Exit codes",
        "3  UNKNOWN",
        "2  CRITICAL",
        "forge",
    ] {
        assert!(text.contains(needle), "help lacks {needle}");
    }
    let version = portprobe(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(stdout(&version).starts_with("portprobe "));
    assert_eq!(portprobe(&["ports", "--help"]).status.code(), Some(0));
}

#[test]
fn bad_input_is_one_line_and_exit_three() {
    assert_bad_input(&[], "no host given");
    assert_bad_input(
        &["server.local"],
        "run `portprobe products` to list the products",
    );
    assert_bad_input(
        &["server.local", "--bogus"],
        "unexpected argument '--bogus'",
    );
    assert_bad_input(&["server.local", "--ports", "1-"], "empty port");
    assert_bad_input(
        &["server.local", "--ports", "70000"],
        "port 70000 is out of range",
    );
    assert_bad_input(
        &["server.local", "--ports", "22/sctp"],
        "unknown protocol `sctp`",
    );
    assert_bad_input(
        &["server.local", "--product", "Remote Desktp"],
        "closest: Apple Remote Desktop",
    );
    assert_bad_input(
        &["server.local", "-p", "ARD", "--timeout", "fast"],
        "`fast` is not a duration",
    );
    assert_bad_input(
        &["server.local", "-p", "ARD", "--concurrency", "0"],
        "--concurrency",
    );
    assert_bad_input(
        &["server.local", "-p", "ARD", "-4", "-6"],
        "cannot be used with",
    );
    assert_bad_input(
        &["server.local", "-p", "ARD", "--rate", "0"],
        "`0` is not a rate",
    );
    assert_bad_input(&["ports"], "required arguments were not provided");
    assert_bad_input(
        &["ports", "--all", "--product", "ARD"],
        "cannot be used with",
    );
    assert_bad_input(&["products", "--bogus"], "unexpected argument");
    assert_bad_input(
        &["bad host", "--ports", "80"],
        "`bad host` is not a host name or address",
    );
    assert_bad_input(
        &["::1", "-4", "--ports", "80"],
        "::1 is not an IPv4 address",
    );
}

#[test]
fn products_lists_every_product() {
    let o = portprobe(&["products", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let list = list.as_array().unwrap();
    assert!(list.len() >= 28);
    let ard = list
        .iter()
        .find(|p| p["name"] == "Apple Remote Desktop")
        .unwrap();
    assert_eq!(ard["tcp_ports"], 4);
    assert_eq!(ard["udp_ports"], 2);
    assert!(
        ard["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "ARD")
    );
    let text = stdout(&portprobe(&["products"]));
    assert!(text.contains("Apple Remote Desktop") && text.contains("QTSS"));
}

fn ports_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["ports"];
    all.extend_from_slice(args);
    all.push("--json");
    let o = portprobe(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_str::<serde_json::Value>(&stdout(&o))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn has(entries: &[serde_json::Value], protocol: &str, port: u64) -> bool {
    entries.iter().any(|e| {
        e["protocol"] == protocol
            && e["port_start"].as_u64().unwrap() <= port
            && port <= e["port_end"].as_u64().unwrap()
    })
}

#[test]
fn ports_for_apple_remote_desktop() {
    let entries = ports_json(&["--product", "Apple Remote Desktop"]);
    for (protocol, port) in [("tcp", 3283), ("udp", 3283), ("tcp", 5900), ("tcp", 5988)] {
        assert!(has(&entries, protocol, port), "{protocol} {port}");
    }
    for e in &entries {
        for field in [
            "protocol",
            "port_start",
            "port_end",
            "service",
            "products",
            "rfc",
            "note",
            "unregistered",
        ] {
            assert!(e.get(field).is_some(), "missing {field} in {e}");
        }
        assert!(e["service"].is_string() && e["unregistered"].is_boolean());
    }
    assert_eq!(ports_json(&["-p", "ard"]), entries, "names match loosely");
}

/// Every (port, protocol) named by a row of the article's table, parsed
/// straight from the article's text.
fn table_pairs() -> BTreeSet<(String, u16, u16)> {
    let text = include_str!("../data/source/apple-well-known-ports.txt");
    let start = text.find("| Port |").unwrap();
    let end = text.find("\nNotes\n").unwrap();
    // Rows end with "|" at a line end; cells may wrap onto following lines.
    let body = text[start..end].replace("|\n|", "|\u{1}|");
    let mut pairs = BTreeSet::new();
    let mut rows = 0;
    for row in body.split('\u{1}').skip(1) {
        let cells: Vec<String> = row
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        rows += 1;
        let protocols: Vec<&str> = match cells[1].as_str() {
            "TCP" => vec!["tcp"],
            "UDP" => vec!["udp"],
            "TCP/UDP" => vec!["tcp", "udp"],
            // No protocol stated: portprobe probes TCP, as its catalog says why.
            "-" => vec!["tcp"],
            other => panic!("unexpected protocol {other}"),
        };
        for port in cells[0].split('&') {
            let port = port.trim();
            let (lo, hi) = port.split_once('-').unwrap_or((port, port));
            for p in &protocols {
                pairs.insert((p.to_string(), lo.parse().unwrap(), hi.parse().unwrap()));
            }
        }
    }
    assert_eq!(rows, 107, "the table has 107 rows");
    pairs
}

#[test]
fn ports_all_lists_every_port_and_protocol_of_the_table() {
    let entries = ports_json(&["--all"]);
    let listed: BTreeSet<(String, u16, u16)> = entries
        .iter()
        .map(|e| {
            (
                e["protocol"].as_str().unwrap().to_string(),
                e["port_start"].as_u64().unwrap() as u16,
                e["port_end"].as_u64().unwrap() as u16,
            )
        })
        .collect();
    assert_eq!(listed, table_pairs());
    assert!(
        entries
            .iter()
            .all(|e| !e["products"].as_array().unwrap().is_empty()),
        "every row has a product or Other services"
    );
}

#[test]
fn the_ports_listing_says_which_ranges_a_product_leaves_out() {
    let o = portprobe(&["ports", "-p", "Mac OS X Server"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(!text.contains("UDP  6970"), "{text}");
    assert!(
        text.trim_end().ends_with(
            "not probed: UDP 6970-9999 (QuickTime Streaming Server RTP media) and TCP 49152-65535 (Xsan file system): add -p \"QuickTime Streaming Server\" or -p Xsan to include them"
        ),
        "{text}"
    );
    let both = stdout(&portprobe(&[
        "ports",
        "-p",
        "Mac OS X Server",
        "-p",
        "QTSS",
    ]));
    assert!(
        both.contains("UDP  6970-9999") && !both.contains("not probed: UDP 6970"),
        "{both}"
    );
}

#[test]
fn ports_text_and_ad_hoc_ports() {
    let o = portprobe(&["ports", "--ports", "548,53/udp,60000"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.contains("TCP  548    AFP"), "{text}");
    assert!(text.contains("UDP  53     DNS"), "{text}");
    assert!(text.contains("TCP  60000  Xsan"), "{text}");
}

#[test]
fn user_catalogs_are_validated_with_located_errors() {
    let dir = std::env::temp_dir().join(format!("portprobe-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("site.toml");
    std::fs::write(
        &good,
        "[[entry]]\nid = \"web\"\nrow = 1\nlabel = \"Intranet web\"\ntable_port = \"8080\"\nports = [\"8080\"]\ntable_protocol = \"TCP\"\n\n[[product]]\nname = \"Intranet\"\nneeds = [{ entry = \"web\" }]\n",
    )
    .unwrap();
    let entries = ports_json(&["--catalog", good.to_str().unwrap(), "--product", "intranet"]);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["service"], "Intranet web");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[entry]]\nid = \"web\"\nrow = 1\nlabel = \"x\"\ntable_port = \"80\"\nports = [\"99999\"]\ntable_protocol = \"TCP\"\n").unwrap();
    let path = bad.to_str().unwrap();
    assert_bad_input(
        &["products", "--catalog", path],
        &format!(
            "{path}: entry 1 (line 1, id \"web\"): field `ports`: \"99999\": port 99999 is out of range"
        ),
    );
    assert_bad_input(
        &["--catalog", "/nonexistent.toml", "products"],
        "cannot read catalog /nonexistent.toml",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs portprobe with its stdout on a pipe whose read end is already
/// closed, so its first write fails with EPIPE however little it prints.
fn into_a_closed_pipe(args: &[&str]) -> Output {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(args)
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run portprobe")
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let listing = into_a_closed_pipe(&["ports", "--all"]);
    assert_eq!(listing.status.code(), Some(0), "{listing:?}");
    assert_eq!(stderr(&listing), "");
    // A probe of one open loopback port: the run's own status is OK (0).
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port().to_string();
    let report = into_a_closed_pipe(&["127.0.0.1", "--ports", &port]);
    assert_eq!(report.status.code(), Some(0), "{report:?}");
    assert_eq!(stderr(&report), "");
}

#[test]
fn addresses_that_are_not_one_host_are_refused_before_anything_is_sent() {
    for bad in [
        "255.255.255.255",
        "127.255.255.255",
        "224.0.0.251",
        "239.255.255.250",
        "ff02::fb",
        "0.0.0.0",
        "::",
        "[::ffff:224.0.0.1]",
    ] {
        // Alone, the run is refused (beside other targets it is that
        // target's error: see tests/frontends.rs).
        assert_bad_input(&[bad, "--ports", "53/udp,80"], "not a single host");
    }
    assert_bad_input(
        &["fe80::1", "--ports", "80"],
        "link-local address: add the interface it is on, e.g. fe80::1%eth0",
    );
    assert_bad_input(
        &["fe80::1%no-such-if0", "--ports", "80"],
        "no interface `no-such-if0`",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets");
    std::fs::write(&file, "# the only host\n224.0.0.251\n").unwrap();
    assert_bad_input(
        &["--targets", file.to_str().unwrap(), "--ports", "80"],
        "224.0.0.251 is a multicast address, not a single host",
    );
}

#[test]
fn a_targets_file_is_read_with_a_bound() {
    assert_bad_input(
        &["--targets", "/dev/zero", "--ports", "80"],
        "targets file /dev/zero is larger than 1048576 bytes",
    );
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().to_str().unwrap();
    assert_bad_input(
        &["--targets", top, "--ports", "80"],
        &format!(
            "portprobe: targets file {top} is a directory: give a file with one host per line, or `--targets -` to read them from standard input"
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("binary");
    std::fs::write(&file, b"127.0.0.1\n\xff\xfe\n").unwrap();
    assert_bad_input(
        &["--targets", file.to_str().unwrap(), "--ports", "80"],
        "is not text",
    );
}

#[test]
fn options_before_a_subcommand_do_not_make_it_a_host() {
    let o = portprobe(&["-4", "ports", "--product", "ARD"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Net Assistant (ARD)"), "{}", stdout(&o));
    let o = portprobe(&["--json", "-6", "products"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(list.as_array().unwrap().len() >= 28);
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.toml");
    std::fs::write(
        &site,
        "[[entry]]\nid = \"web\"\nrow = 1\nlabel = \"Intranet web\"\ntable_port = \"8080\"\nports = [\"8080\"]\ntable_protocol = \"TCP\"\n\n[[product]]\nname = \"Intranet\"\nneeds = [{ entry = \"web\" }]\n",
    )
    .unwrap();
    let site = site.to_str().unwrap();
    let o = portprobe(&["--catalog", site, "products"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("PRODUCT"), "{}", stdout(&o));
    assert!(stdout(&o).contains("Intranet"), "{}", stdout(&o));
    let o = portprobe(&["--catalog", site, "-4", "ports", "-p", "intranet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("TCP  8080"), "{}", stdout(&o));
    // Options before `probe` are the probe's: -4 refuses an IPv6 literal.
    assert_bad_input(
        &["-4", "probe", "::1", "--ports", "80"],
        "::1 is not an IPv4 address",
    );
    assert_bad_input(
        &["--catalog", site, "probe", "127.0.0.1", "-p", "ARD"],
        "no product named \"ARD\"",
    );
}

#[test]
fn rates_the_parser_accepts_are_the_rates_that_work() {
    for tiny in ["1e-300", "1e-19", "0.001", "0"] {
        assert_bad_input(
            &["127.0.0.1", "--ports", "80", "--rate", tiny],
            "a number of at least 0.01",
        );
    }
}

#[test]
fn text_from_a_targets_file_never_reaches_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets");
    std::fs::write(&file, "bad\u{1b}[2J\u{1b}]0;owned\u{7}|host\n").unwrap();
    let file = file.to_str().unwrap();
    // Alone, the host is bad input: one line, its escape shown, not sent.
    let o = portprobe(&["--targets", file, "--ports", "80"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(
        err.contains("bad\\x1b[2J\\x1b]0;owned\\x07|host"),
        "{err:?}"
    );
    assert_eq!(err.lines().count(), 1, "{err:?}");
}

/// Runs portprobe with `stdin`, bounded: a run that hangs fails the test
/// instead of hanging it. Its exit code, stdout and stderr.
fn bounded_run(args: &[&str], stdin: Stdio) -> (Option<i32>, String, String) {
    let mut child = KillOnDrop::spawn(
        Command::new(env!("CARGO_BIN_EXE_portprobe"))
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let status = child.wait_for(Duration::from_secs(60));
    assert!(status.is_some(), "{args:?}: still running after 60 s");
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.and_then(|s| s.code()), out, err)
}

#[test]
fn targets_from_a_stream_are_read_within_max_time() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo = fifo.to_str().unwrap();
    let never = "did not end within --max-time (2s): close it once the hosts are written, or give a regular file";

    // A FIFO nobody writes.
    let args = ["--targets", fifo, "--ports", "80", "--max-time", "2s"];
    let (code, out, err) = bounded_run(&args, Stdio::null());
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err, format!("portprobe: targets file {fifo} {never}\n"));
    assert_eq!(out, "");

    // Standard input that never ends: this test holds the pipe open.
    let (read, _write) = nix::unistd::pipe().unwrap();
    let args = ["--targets", "-", "--ports", "80", "--max-time", "2s"];
    let (code, out, err) = bounded_run(&args, Stdio::from(read));
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        err,
        format!("portprobe: standard input (--targets -) {never}\n")
    );
    assert_eq!(out, "");

    // Standard input that ends: its hosts are probed with the others.
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(["127.0.0.2", "--targets", "-", "--ports", &port, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"# lab\n127.0.0.1 # loopback\n").unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hosts: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"]["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["127.0.0.2", "127.0.0.1"], "{}", stderr(&o));
    let good = &doc["targets"][1];
    assert_eq!(good["results"][0]["state"], "open", "{good}");
}

#[test]
fn durations_out_of_bounds_name_the_bound() {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port().to_string();
    let probe = |option: &str, value: &str| {
        vec![
            "127.0.0.1".to_string(),
            "--ports".into(),
            port.clone(),
            option.into(),
            value.into(),
        ]
    };
    for (option, value, says) in [
        (
            "--max-time",
            "1000000d",
            "`1000000d` is too long for --max-time: the longest accepted is 30d",
        ),
        (
            "--max-time",
            "0.0000000001s",
            "`0.0000000001s` is too short for --max-time: the shortest accepted is 100ms",
        ),
        (
            "--timeout",
            "2h",
            "`2h` is too long for --timeout: the longest accepted is 1h",
        ),
        (
            "--timeout",
            "0.0000001",
            "`0.0000001` is too short for --timeout: the shortest accepted is 1ms",
        ),
        (
            "--watch",
            "31d",
            "`31d` is too long for --watch: the longest accepted is 30d",
        ),
        (
            "--watch",
            "500ms",
            "`500ms` is too short for --watch: the shortest accepted is 1s",
        ),
    ] {
        let args = probe(option, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = bounded_run(&args, Stdio::null());
        assert_eq!(code, Some(3), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(out, "");
    }
    // The exporter's own bound; it never starts listening.
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allow",
        "127.0.0.1",
        "--max-time",
        "2h",
    ];
    let (code, _, err) = bounded_run(&serve, Stdio::null());
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("`2h` is too long for --max-time: the longest accepted is 1h"),
        "{err}"
    );

    // The longest of each works, in days too.
    for (option, value) in [
        ("--max-time", "30d"),
        ("--max-time", "1.5d"),
        ("--timeout", "1h"),
    ] {
        let args = probe(option, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = bounded_run(&args, Stdio::null());
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.contains("OK: 127.0.0.1"), "{args:?}: {out}");
    }
    let mut watch = KillOnDrop::spawn(
        Command::new(env!("CARGO_BIN_EXE_portprobe"))
            .args(["127.0.0.1", "--ports", &port, "-q", "--watch", "30d"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("OK: 127.0.0.1"), "{first}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = watch.wait_for(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}
