//! `--output FILE` against hostile and broken directories, on loopback: a
//! symlink planted where a temporary file might go, the permission bits of
//! the replaced file, a full disk (a tiny tmpfs in a private mount
//! namespace, root only), and outputs that cannot be written, which must be
//! refused before a single probe is sent.

mod support;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::proc::KillOnDrop;

const BIN: &str = env!("CARGO_BIN_EXE_portprobe");

/// A loopback TCP listener that counts the connections that reached it.
struct Listener {
    socket: TcpListener,
    accepted: u32,
}

impl Listener {
    fn new() -> Listener {
        let socket = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket.set_nonblocking(true).unwrap();
        Listener {
            socket,
            accepted: 0,
        }
    }

    fn port(&self) -> String {
        self.socket.local_addr().unwrap().port().to_string()
    }

    /// Accepts every connection waiting in the backlog and returns how many
    /// have arrived so far. The kernel completes the handshake without
    /// `accept`, so every probe that reached the port is waiting here.
    fn accepted(&mut self) -> u32 {
        loop {
            match self.socket.accept() {
                Ok(_) => self.accepted += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return self.accepted,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// Keeps a backlog from filling while a long run probes the listener.
fn serve(listener: Listener) {
    thread::spawn(move || {
        let mut listener = listener;
        loop {
            listener.accepted();
            thread::sleep(Duration::from_millis(5));
        }
    });
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs portprobe with `args` under `sh`, after `umask MASK`.
fn with_umask(mask: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .args(["-c", &format!("umask {mask} && exec \"$0\" \"$@\""), BIN])
        .args(args)
        .output()
        .unwrap()
}

/// Polls `done` every 20 ms; false once `limit` has passed. The limits used
/// below are only a guard against a hang, many times what the wait needs.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Whether the test may mount file systems; without root it prints the
/// `skipped` line (or fails under CI).
fn root_or_skip(name: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return support::require_programs(name, &["unshare", "mount"]);
    }
    assert!(
        !support::in_ci(),
        "{name}: needs root under CI (it mounts a file system)"
    );
    eprintln!("skipped {name}: not running as root (it mounts a file system)");
    false
}

#[test]
fn a_planted_symlink_is_never_followed() {
    let listener = Listener::new();
    let port = listener.port();
    serve(listener);
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let out = dir.path().join("x.prom");
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["127.0.0.1", "--ports", &port, "--watch", "1s"])
            .args(["--format", "prometheus", "--output"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || out.exists()),
        "no first report"
    );
    let first = std::fs::symlink_metadata(&out).unwrap().ino();
    // The name a writer that uses its process id would pick.
    let planted = dir.path().join(format!(".x.prom.{}.tmp", child.id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::fs::symlink_metadata(&out).is_ok_and(|m| m.ino() != first)
        }),
        "no second report"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait_for(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        std::fs::symlink_metadata(&out).unwrap().is_file(),
        "the output is no longer a plain file"
    );
    let report = std::fs::read_to_string(&out).unwrap();
    assert!(
        report.contains("portprobe_probe_success{target=\"127.0.0.1\"} 1"),
        "{report}"
    );
    assert_eq!(
        names(dir.path()),
        [format!(".x.prom.{}.tmp", child.id()), "x.prom".to_string()],
        "something other than the report and the planted link is left"
    );
}

#[test]
fn the_mode_of_the_replaced_file_is_kept() {
    let listener = Listener::new();
    let port = listener.port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.prom");
    let path = out.to_str().unwrap();
    let args = [
        "127.0.0.1",
        "--ports",
        &port,
        "--format",
        "prometheus",
        "--output",
        path,
    ];
    for (existing, umask) in [(0o600, "022"), (0o644, "077")] {
        std::fs::write(&out, "old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(existing)).unwrap();
        let o = with_umask(umask, &args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_ne!(std::fs::read_to_string(&out).unwrap(), "old");
        assert_eq!(
            mode(&out),
            existing,
            "a {existing:o} file under umask {umask} became {:o}",
            mode(&out)
        );
    }
    std::fs::remove_file(&out).unwrap();
    let o = with_umask("027", &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode(&out), 0o640, "a new file under umask 027");
    assert_eq!(names(dir.path()), ["x.prom"]);
}

#[test]
fn a_full_disk_leaves_nothing_behind() {
    let name = "a_full_disk_leaves_nothing_behind";
    if !root_or_skip(name) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // An 8 KiB tmpfs in a mount namespace of its own (gone when the shell
    // exits), then a JSON report of 2000 loopback ports, far over 8 KiB.
    // The listing after portprobe's exit shows what it left there.
    let script = r#"mount -t tmpfs -o size=8k portprobe-test "$1" || exit 100
"$2" 127.0.0.1 --ports 20001-22000 --json --output "$1/x.json"
echo "exit $?"
ls -A "$1""#;
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(dir.path())
        .arg(BIN)
        .output()
        .unwrap();
    let err = stderr(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out, "exit 3\n", "exit code, then what was left: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let file = dir.path().join("x.json");
    assert!(
        err.starts_with(&format!(
            "portprobe: cannot write --output {}: ",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn an_output_that_cannot_be_written_is_refused_before_probing() {
    let mut listener = Listener::new();
    let port = listener.port();
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().display().to_string();
    let refused = |o: &Output, output: &str, why: &str| {
        let err = stderr(o);
        assert_eq!(o.status.code(), Some(3), "{output}: {err}");
        assert_eq!(err.lines().count(), 1, "{output}: {err}");
        assert_eq!(
            err.trim_end(),
            format!("portprobe: cannot write --output {output}: {why}")
        );
        assert!(o.stdout.is_empty());
    };
    let probe = |output: &str| {
        Command::new(BIN)
            .args(["127.0.0.1", "--ports", &port, "--output", output])
            .output()
            .unwrap()
    };
    let cases = [
        (
            "/nonexistent/dir/x".to_string(),
            "directory /nonexistent/dir does not exist".to_string(),
        ),
        (
            top.clone(),
            format!("it is a directory; name a file in it, e.g. {top}/portprobe.prom"),
        ),
        (
            format!("{top}/new/"),
            "it ends in `/`, so it names a directory; give a file name, e.g. DIR/portprobe.prom"
                .to_string(),
        ),
    ];
    for (output, why) in &cases {
        let o = probe(output);
        assert_eq!(listener.accepted(), 0, "{output}: probed before refusing");
        refused(&o, output, why);
    }

    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let output = format!("{}/x.prom", locked.display());
    if nix::unistd::geteuid().is_root() {
        // Root may write anywhere: make the directory read-only with a bind
        // mount in a mount namespace of its own.
        let name = "an_output_that_cannot_be_written_is_refused_before_probing (read-only)";
        if support::require_programs(name, &["unshare", "mount"]) {
            let script = r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 100
exec "$2" 127.0.0.1 --ports "$3" --output "$1/x.prom""#;
            let o = Command::new("unshare")
                .args(["-m", "sh", "-c", script, "sh"])
                .arg(&locked)
                .args([BIN, &port])
                .output()
                .unwrap();
            assert_eq!(listener.accepted(), 0, "{output}: probed before refusing");
            let why = format!("{} is on a read-only file system", locked.display());
            refused(&o, &output, &why);
        }
    } else {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        let o = probe(&output);
        assert_eq!(listener.accepted(), 0, "{output}: probed before refusing");
        let why = format!("no permission to create files in {}", locked.display());
        refused(&o, &output, &why);
    }
    assert!(names(&locked).is_empty());

    // The count is real: a writable output is probed.
    let fine = format!("{top}/x.prom");
    assert_eq!(probe(&fine).status.code(), Some(0));
    assert_eq!(listener.accepted(), 1);
}
