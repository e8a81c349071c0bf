//! Finding and ending the processes a lab started.
//!
//! Each process is started as the leader of its own process group. Daemons
//! that fork or call `setsid()` can leave that group, so teardown also looks
//! processes up by the namespaces they run in: every process inside a lab's
//! network namespace, or inside a peer's private mount namespace, is the
//! lab's.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Identity of a namespace: device and inode of its nsfs file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsId {
    dev: u64,
    ino: u64,
}

impl NsId {
    /// The namespace a path such as `/run/netns/x` or `/proc/1/ns/mnt` names.
    pub fn of(path: &Path) -> io::Result<NsId> {
        let m = std::fs::metadata(path)?;
        Ok(NsId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// The namespace of kind `kind` (`net`, `mnt`) process `pid` is in.
    pub fn of_pid(pid: i32, kind: &str) -> io::Result<NsId> {
        NsId::of(Path::new(&format!("/proc/{pid}/ns/{kind}")))
    }
}

/// Every process (other than this one) whose `kind` namespace is `ns`.
pub fn pids_in(kind: &str, ns: NsId) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && NsId::of_pid(pid, kind).is_ok_and(|id| id == ns))
        .collect()
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends SIGKILL to each pid and waits (bounded) until none is alive.
pub fn kill_all(pids: &[i32]) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child started as the leader of its own process group, killed with its
/// whole group on drop.
#[derive(Debug)]
pub struct Group {
    child: Child,
}

impl Group {
    /// Spawns `cmd` in a new process group.
    pub fn spawn(cmd: &mut Command) -> io::Result<Group> {
        let child = cmd
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {cmd:?}: {e}")))?;
        Ok(Group { child })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The exit status if the leader has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the whole group and reaps the leader.
    pub fn kill(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child process that is killed and reaped when dropped, so that a test
/// failing half-way never leaves it running. It dereferences to the
/// [`Child`], for its pipes, `id()`, `wait()` and so on.
#[derive(Debug)]
pub struct KillOnDrop(Child);

impl KillOnDrop {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> io::Result<KillOnDrop> {
        cmd.spawn()
            .map(KillOnDrop)
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {cmd:?}: {e}")))
    }

    /// Waits up to `limit` for the child to exit on its own.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None,
            }
        }
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Neither signals nor waits again once the child has been reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
