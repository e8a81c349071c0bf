//! `--output FILE` against hostile and broken directories, on loopback: a
//! symlink planted where a temporary file might go, the permission bits of
//! the replaced file, a full disk (a tiny tmpfs in a private mount
//! namespace, root only), and outputs that cannot be written, which must be
//! refused before a single probe is sent. Then what FILE leads to: a
//! character device and a FIFO are written through, never replaced; a
//! symbolic link is followed and stays a link; the process's own
//! descriptors (`/dev/stdout`, a link to `/proc/self/fd/1`) are written as
//! they are.

mod support;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
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
    root_for(name, "it mounts a file system")
        && support::require_programs(name, &["unshare", "mount"])
}

/// Whether the test runs as root, which it needs for `why`; without root it
/// prints the `skipped` line (or fails under CI).
fn root_for(name: &str, why: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(!support::in_ci(), "{name}: needs root under CI ({why})");
    eprintln!("skipped {name}: not running as root ({why})");
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

/// Runs portprobe against one open loopback port with `--output OUT`,
/// bounded: a run that blocks (on a FIFO, say) fails the test instead of
/// hanging it.
fn probe_into(port: &str, out: &Path, stdout: Stdio) -> (Option<i32>, String) {
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["127.0.0.1", "--ports", port, "-q", "--output"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let status = child.wait_for(Duration::from_secs(60));
    assert!(
        status.is_some(),
        "{}: portprobe did not return",
        out.display()
    );
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status.and_then(|s| s.code()), err)
}

/// A FIFO's reader that never blocks: opened with `O_NONBLOCK` (so it
/// counts as a reader at once), read once the writer is done.
fn fifo_reader(fifo: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(fifo)
        .unwrap()
}

/// What is waiting in a FIFO now.
fn drain(reader: &mut std::fs::File) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match std::io::Read::read(reader, &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(text).unwrap()
}

const SUMMARY: &str = "OK: 127.0.0.1: all 1 required ports are reachable\n";

#[test]
fn a_fifo_is_written_through_and_one_nobody_reads_is_refused() {
    let listener = Listener::new();
    let port = listener.port();
    serve(listener);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let is_fifo = || {
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    };

    // No reader: refused at once (an open that waited for one would hang).
    let (code, err) = probe_into(&port, &fifo, Stdio::null());
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        err,
        format!(
            "portprobe: cannot write --output {}: it is a FIFO that nothing is reading: start its reader first (e.g. `cat FIFO`)\n",
            fifo.display()
        )
    );
    assert!(is_fifo(), "the FIFO was replaced");

    // A reader: it gets the report, and the FIFO stays.
    let mut reader = fifo_reader(&fifo);
    let (code, err) = probe_into(&port, &fifo, Stdio::null());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(drain(&mut reader), SUMMARY);
    assert!(is_fifo(), "the FIFO was replaced");
    assert_eq!(names(dir.path()), ["fifo"]);

    // --watch: every round is written to the same FIFO.
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["127.0.0.1", "--ports", &port, "-q", "--watch", "1s"])
            .arg("--output")
            .arg(&fifo)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let mut got = String::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            got.push_str(&drain(&mut reader));
            got.matches(SUMMARY).count() >= 2
        }),
        "not two rounds: {got:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait_for(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    assert!(is_fifo(), "the FIFO was replaced");
}

#[test]
fn a_character_device_is_written_through() {
    let name = "a_character_device_is_written_through";
    if !root_for(name, "it makes a device node") {
        return;
    }
    let listener = Listener::new();
    let port = listener.port();
    serve(listener);
    let dir = tempfile::tempdir().unwrap();
    // A copy of /dev/null (character device 1:3).
    let null = dir.path().join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status();
    assert!(made.unwrap().success(), "mknod");
    let rdev = || std::fs::symlink_metadata(&null).unwrap().rdev();
    let before = rdev();
    let (code, err) = probe_into(&port, &null, Stdio::null());
    assert_eq!(code, Some(0), "{err}");
    let meta = std::fs::symlink_metadata(&null).unwrap();
    assert!(
        meta.file_type().is_char_device(),
        "the device became {:?}",
        meta.file_type()
    );
    assert_eq!(rdev(), before);
    assert_eq!(names(dir.path()), ["null"]);
}

#[test]
fn a_symlink_is_followed_and_stays_a_link() {
    let listener = Listener::new();
    let port = listener.port();
    serve(listener);
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let real = elsewhere.path().join("real.prom");
    std::fs::write(&real, "old\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link.prom");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let first = std::fs::metadata(&real).unwrap().ino();
    let (code, err) = probe_into(&port, &link, Stdio::null());
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), real);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), SUMMARY);
    assert_ne!(
        std::fs::metadata(&real).unwrap().ino(),
        first,
        "not replaced by a rename"
    );
    assert_eq!(mode(&real), 0o640);
    assert_eq!(names(dir.path()), ["link.prom"]);
    assert_eq!(names(elsewhere.path()), ["real.prom"]);

    // --watch: each round replaces the file the link names, again.
    let mut child = KillOnDrop::spawn(
        Command::new(BIN)
            .args(["127.0.0.1", "--ports", &port, "-q", "--watch", "1s"])
            .arg("--output")
            .arg(&link)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    // Counted by changes of inode (a freed inode number may come back).
    let mut last = std::fs::metadata(&real).unwrap().ino();
    let mut changes = 0;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let ino = std::fs::metadata(&real).unwrap().ino();
            if ino != last {
                last = ino;
                changes += 1;
            }
            changes >= 2
        }),
        "not two more rounds"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait_for(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), SUMMARY);
    assert_eq!(mode(&real), 0o640);
    assert_eq!(names(dir.path()), ["link.prom"]);
    assert_eq!(names(elsewhere.path()), ["real.prom"]);

    // A link to the process's own standard output writes there.
    let out = dir.path().join("out");
    std::os::unix::fs::symlink("/proc/self/fd/1", &out).unwrap();
    let o = Command::new(BIN)
        .args(["127.0.0.1", "--ports", &port, "-q", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), SUMMARY);
    assert_eq!(
        std::fs::read_link(&out).unwrap(),
        Path::new("/proc/self/fd/1")
    );
    assert_eq!(names(dir.path()), ["link.prom", "out"]);
}

#[test]
fn another_users_link_in_a_sticky_directory_is_not_followed() {
    let name = "another_users_link_in_a_sticky_directory_is_not_followed";
    if !root_for(name, "it gives a link to another user") {
        return;
    }
    let listener = Listener::new();
    let port = listener.port();
    serve(listener);
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = shared.path().join("x.prom");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let (code, err) = probe_into(&port, &link, Stdio::null());
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        err,
        format!(
            "portprobe: cannot write --output {0}: {0} is a symbolic link of another user (uid 65534) in {1}, a sticky directory anyone can write: not followed, as the kernel's fs.protected_symlinks would not; give the file it names instead\n",
            link.display(),
            shared.path().display()
        )
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    // The same link, owned by the directory's owner, is followed.
    std::os::unix::fs::lchown(&link, Some(0), Some(0)).unwrap();
    let (code, err) = probe_into(&port, &link, Stdio::null());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), SUMMARY);
}

#[test]
fn dev_stdout_is_the_standard_output_as_it_is() {
    let name = "dev_stdout_is_the_standard_output_as_it_is";
    if !root_or_skip(name) {
        return;
    }
    let listener = Listener::new();
    let port = listener.port();
    serve(listener);
    // In a mount namespace of its own with a /dev of its own, so that a
    // writer that replaced /dev/stdout could not harm the machine's.
    let script = r#"mount -t tmpfs portprobe-dev /dev && ln -s /proc/self/fd/1 /dev/stdout || exit 100
"$1" 127.0.0.1 --ports "$2" -q --output /dev/stdout
code=$?
[ -L /dev/stdout ] || echo "/dev/stdout is no longer a link" >&2
exit $code"#;
    let run = |stdout: Stdio| {
        let o = Command::new("unshare")
            .args(["-m", "sh", "-c", script, "sh", BIN, &port])
            .stdout(stdout)
            .output()
            .unwrap();
        (o.status.code(), stderr(&o), o.stdout)
    };
    // Standard output a pipe.
    let (code, err, out) = run(Stdio::piped());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(String::from_utf8_lossy(&out), SUMMARY);
    // Standard output a file opened for appending (`>> log`): appended to,
    // never replaced.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::write(&log, "earlier\n").unwrap();
    let inode = std::fs::metadata(&log).unwrap().ino();
    let file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let (code, err, _) = run(Stdio::from(file));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("earlier\n{SUMMARY}")
    );
    assert_eq!(std::fs::metadata(&log).unwrap().ino(), inode);
    assert_eq!(names(dir.path()), ["log"]);
}

#[test]
fn a_dash_is_standard_output() {
    let listener = Listener::new();
    let port = listener.port();
    serve(listener);
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .current_dir(dir.path())
        .args(["127.0.0.1", "--ports", &port, "-q", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), SUMMARY);
    assert!(names(dir.path()).is_empty(), "a file named - was made");
}
