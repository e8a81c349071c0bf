//! A `portprobe listen` in the lab and `portprobe --responder` against it:
//! the secret files, the running responder and its summary, the client as
//! `nobody`, and its JSON results as a map.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::lab::Lab;
use super::proc::KillOnDrop;

/// The program under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_portprobe");
/// The secret both sides of the lab share.
pub const SECRET: &str = "a secret shared by the lab's two sides";

/// A directory holding the secret file (and a wrong one), each private to
/// its owner as `--secret-file` requires.
pub struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    pub fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for (name, text) in [
            ("key", SECRET),
            ("wrong", "not the secret the responder holds"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{text}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Keys { dir }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// A running responder: its process, and its standard output from the
/// line that says it is ready.
pub struct Responder {
    pub child: KillOnDrop,
    out: BufReader<std::process::ChildStdout>,
    pub started: String,
}

impl Responder {
    /// Starts `cmd` (a `portprobe listen`) and waits until every port is
    /// bound.
    pub fn start(cmd: &mut Command) -> Responder {
        let mut child =
            KillOnDrop::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped())).unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut started = String::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("portprobe listen ended before it was ready:\n{started}\n{err}");
            }
            started.push_str(&line);
            if line.starts_with("answering hellos") {
                return Responder {
                    child,
                    out,
                    started,
                };
            }
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Sends SIGTERM and returns the exit status and the summary.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = self
            .child
            .wait_for(Duration::from_secs(10))
            .expect("portprobe listen exits after SIGTERM");
        let mut summary = String::new();
        self.out.read_to_string(&mut summary).unwrap();
        (status, summary)
    }
}

/// `portprobe listen ARGS --secret-file KEY` in the server namespace, as root.
pub fn listen_cmd(lab: &Lab, keys: &Keys, args: &[&str]) -> Command {
    let mut cmd = lab.server_cmd(BIN);
    cmd.arg("listen")
        .args(args)
        .arg("--secret-file")
        .arg(keys.path("key"));
    cmd
}

/// `portprobe --responder --json --no-locate HOSTS --ports PORTS` from the
/// client namespace as `nobody`, the secret in the environment; fails the
/// test on a refusal (exit code 3 or more).
pub fn client(lab: &Lab, secret: &str, hosts: &[String], ports: &str) -> Output {
    let out = lab
        .client_cmd_as_nobody(BIN)
        .unwrap()
        .args(hosts)
        .args(["--ports", ports, "--responder", "--json", "--no-locate"])
        .args(["--max-time", "30"])
        .env("PORTPROBE_SECRET", secret)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c < 3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every result of a JSON report (one target or several).
pub fn result_objects(out: &Output) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let targets = match doc.get("targets") {
        Some(list) => list.as_array().unwrap().clone(),
        None => vec![doc],
    };
    targets
        .iter()
        .flat_map(|t| t["results"].as_array().unwrap().clone())
        .collect()
}

/// (address, "tcp 5900") to (state, reason, reason_from).
pub fn results(out: &Output) -> BTreeMap<(String, String), (String, String, Value)> {
    result_objects(out)
        .iter()
        .map(|r| {
            (
                (
                    r["address"].as_str().unwrap().to_string(),
                    format!("{} {}", r["protocol"].as_str().unwrap(), r["port"]),
                ),
                (
                    r["state"].as_str().unwrap().to_string(),
                    r["reason"].as_str().unwrap().to_string(),
                    r["reason_from"].clone(),
                ),
            )
        })
        .collect()
}
