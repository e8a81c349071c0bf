//! Test lab shared by the integration tests: a client, a router running
//! nftables and a server, each in its own network namespace, plus real UDP
//! daemons from Debian's packages (see `README.md` beside this file).
//!
//! Every integration test binary compiles this module on its own and uses a
//! different part of it.
#![allow(dead_code)]

pub mod attack;
pub mod chain;
pub mod http;
pub mod lab;
pub mod netns;
pub mod nfqueue;
pub mod peers;
pub mod proc;
pub mod responder;
pub mod sites;
pub mod tls;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::process::{Command, Output, Stdio};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket};

use lab::Lab;

/// Runs portprobe with `args` on this machine and waits for it.
pub fn portprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portprobe"))
        .args(args)
        .output()
        .expect("run portprobe")
}

/// A run's standard output as JSON; a panic that shows both streams when
/// it is not.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// A TCP port on 127.0.0.1 that is closed for as long as the socket is
/// held: bound but never listening, so a connect to it is refused and no
/// other socket can take the port meanwhile (a port bound and released
/// may be anyone's by the time it is probed).
pub fn closed_tcp_port() -> (u16, OwnedFd) {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a TCP socket");
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("bind 127.0.0.1:0");
    let at: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).expect("its address");
    (at.port(), fd)
}

/// Debian packages the lab itself needs (namespaces, firewall, delay queue,
/// privilege drop).
pub const LAB_PACKAGES: &[&str] = &["iproute2", "nftables", "iptables", "util-linux", "procps"];

/// Debian packages of the standard clients `tests/lab_selftest.rs` uses to
/// prove the lab and its peers.
pub const CLIENT_PACKAGES: &[&str] = &[
    "iputils-ping",
    "netcat-openbsd",
    "socat",
    "bind9-dnsutils",
    "snmp",
    "rpcbind",
    "samba-common-bin",
    "chrony",
    "tftp-hpa",
    "sipsak",
    "dhcping",
    "openipmi",
    "ike-scan",
    "bsdutils",
    "python3",
];

/// Debian packages of the programs `tests/generate.rs` reads the generated
/// man page with (`man`, and the `groff` it runs).
pub const DOC_PACKAGES: &[&str] = &["man-db", "groff-base"];

/// Debian packages `tests/serve_lab.rs` runs against the exporter: a real
/// Prometheus (and promtool), and a headless Chromium driven by Selenium.
pub const MONITORING_PACKAGES: &[&str] = &[
    "prometheus",
    "chromium",
    "chromium-driver",
    "python3-selenium",
];

/// Debian packages `tests/serve_tls.rs` runs against the exporter over
/// TLS: a real Prometheus, and `htpasswd` to make the bcrypt hash as the
/// documentation says.
pub const TLS_PACKAGES: &[&str] = &["prometheus", "apache2-utils"];

/// Debian packages of the programs `tests/recipes.rs` checks the recipes in
/// `contrib/` with (`promtool`, `nagios4`, `systemd-analyze`).
pub const RECIPE_PACKAGES: &[&str] = &["prometheus", "nagios4-core", "systemd"];

/// Whether the lab can run here: root, `ip` and `nft` present, and network
/// namespaces creatable. The error is a one-line reason.
pub fn lab_available() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root (network namespaces need it)".into());
    }
    for (tool, arg) in [("ip", "-V"), ("nft", "--version")] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!("`{tool}` is not installed or does not run"));
        }
    }
    netns::can_create_netns().map_err(|e| format!("cannot create a network namespace: {e}"))
}

/// True when running under CI, where a missing prerequisite is a failure:
/// the environment variable `CI` is set as [`ci_value`] reads it.
pub fn in_ci() -> bool {
    ci_value(std::env::var_os("CI").as_deref())
}

/// Whether a value of `CI` means CI: any non-empty value other than `false`
/// and `0` (CI systems set `true`, `1` or `yes`).
pub fn ci_value(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| {
        let v = v.to_string_lossy();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// Checks the lab's prerequisites for test `name`. Without them it prints
/// `skipped <name>: <reason>` and returns false, or panics under CI.
pub fn require_lab(name: &str) -> bool {
    match lab_available() {
        Ok(()) => true,
        Err(reason) if in_ci() => panic!("{name}: lab prerequisites missing under CI: {reason}"),
        Err(reason) => {
            eprintln!("skipped {name}: {reason}");
            false
        }
    }
}

/// A fresh lab for test `name`, or `None` (after one `skipped` line on
/// stderr) when the prerequisites are missing outside CI.
///
/// ```ignore
/// let Some(lab) = support::lab_or_skip("drop_rule_times_out") else { return };
/// ```
pub fn lab_or_skip(name: &str) -> Option<Lab> {
    lab_or_skip_with(name, &[])
}

/// As [`lab_or_skip`], also requiring `programs` (see [`require_programs`]).
pub fn lab_or_skip_with(name: &str, programs: &[&str]) -> Option<Lab> {
    if !require_lab(name) || !require_programs(name, programs) {
        return None;
    }
    match Lab::new() {
        Ok(lab) => Some(lab),
        Err(e) => panic!("{name}: cannot build the lab: {e}"),
    }
}

/// Checks that every program test `name` runs is installed. Without them it
/// prints `skipped <name>: <reason>` and returns false, or panics under CI.
pub fn require_programs(name: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| !have_program(p))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!("not installed: {}", missing.join(", "));
    if in_ci() {
        panic!("{name}: prerequisites missing under CI: {reason}");
    }
    eprintln!("skipped {name}: {reason}");
    false
}

/// Whether `program` (a name looked up on `PATH`, or a path) can be run.
pub fn have_program(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return runnable(std::path::Path::new(program));
    }
    // Daemons live in sbin, which a non-root PATH may lack.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Into::into))
        .any(|dir| runnable(&dir.join(program)))
}

/// Raises this process's open-file limit to at least `want` descriptors
/// (the hard limit too, when root may) and returns the soft limit now.
/// Children started afterwards inherit it.
pub fn raise_open_files(want: u64) -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    if soft >= want {
        return soft;
    }
    if hard < want && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return want;
    }
    let soft = want.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, soft, hard) {
        Ok(()) => soft,
        Err(_) => getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(s, _)| s),
    }
}

/// Compares `actual` with the reviewed snapshot `tests/snapshots/NAME`, or,
/// with `UPDATE_SNAPSHOTS=1`, rewrites it (then review the diff).
pub fn snapshot(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from its snapshot.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// Runs a command to completion and returns its stdout, or an error carrying
/// the command line, exit status and stderr.
pub fn run(cmd: &mut Command) -> std::io::Result<String> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(std::io::Error::other(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ci_is_any_value_but_empty_false_or_zero() {
        use std::ffi::OsStr;
        for yes in ["true", "1", "yes", "TRUE", "woodpecker"] {
            assert!(super::ci_value(Some(OsStr::new(yes))), "{yes}");
        }
        for no in ["", "0", "false", "False"] {
            assert!(!super::ci_value(Some(OsStr::new(no))), "{no:?}");
        }
        assert!(!super::ci_value(None));
    }
}
