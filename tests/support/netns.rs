//! Running code inside a named network namespace (`/run/netns/<name>`).
//!
//! A thread's network namespace belongs to the thread, not the process, so a
//! dedicated thread can `setns()` into a lab namespace and every socket it
//! creates stays there, even after the socket is handed to another thread.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use nix::sched::{CloneFlags, setns, unshare};

/// `/etc/netns/<ns>/`, the files `ip netns exec` mounts over those in
/// `/etc` for the namespace's commands, holding a resolver configuration
/// that never asks multicast DNS: the hosts file, then DNS on 127.0.0.1,
/// where nothing listens. Removed on drop.
#[derive(Debug)]
pub struct EtcWithoutMdns(PathBuf);

impl EtcWithoutMdns {
    /// Writes `nsswitch.conf` and `resolv.conf` for namespace `ns`.
    pub fn new(ns: &str) -> EtcWithoutMdns {
        let dir = PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NS");
        let guard = EtcWithoutMdns(dir.clone());
        std::fs::write(dir.join("nsswitch.conf"), "hosts: files dns\n").expect("nsswitch.conf");
        std::fs::write(
            dir.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n",
        )
        .expect("resolv.conf");
        guard
    }
}

impl Drop for EtcWithoutMdns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Path of the bind mount that names namespace `ns`.
pub fn ns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Moves the calling thread into network namespace `ns`.
pub fn enter(ns: &str) -> io::Result<()> {
    let file = File::open(ns_path(ns))
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", ns_path(ns).display())))?;
    setns(&file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::other(format!("setns into {ns}: {e}")))
}

/// Starts thread `name` inside namespace `ns` and runs `f` there. Returns once
/// the thread has entered the namespace, or the reason it could not.
pub fn spawn_in<F>(ns: &str, name: &str, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let ns = ns.to_owned();
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let entered = enter(&ns);
            let ok = entered.is_ok();
            let _ = tx.send(entered);
            if ok {
                f();
            }
        })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other(format!("thread {name} died before setns"))),
    }
}

/// Runs `f` on a short-lived thread inside namespace `ns` and returns its
/// result.
pub fn run_in<T, F>(ns: &str, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let ns = ns.to_owned();
    thread::Builder::new()
        .name(format!("in-{ns}"))
        .spawn(move || enter(&ns).map(|()| f()))?
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Whether this process may create network namespaces (tried on a throwaway
/// thread, so the caller's namespace is untouched).
pub fn can_create_netns() -> io::Result<()> {
    thread::Builder::new()
        .name("netns-check".into())
        .spawn(|| unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from))?
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Writes `value` to sysctl `key` (dotted, e.g. `net.ipv4.icmp_ratelimit`)
/// inside namespace `ns`. Network sysctls are per namespace.
pub fn sysctl(ns: &str, key: &str, value: &str) -> io::Result<()> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    let value = value.to_owned();
    run_in(ns, move || {
        std::fs::write(&path, value.as_bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))
    })?
}

/// Reads sysctl `key` inside namespace `ns`.
pub fn sysctl_get(ns: &str, key: &str) -> io::Result<String> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    run_in(ns, move || {
        std::fs::read_to_string(&path).map(|s| s.trim().to_owned())
    })?
}

/// Which transport a socket table lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// Local ports with a bound UDP socket, or a listening TCP socket, in
/// namespace `ns` (v4 and v6), as `ss -uln` / `ss -tln` would list them.
pub fn bound_ports(ns: &str, proto: Proto) -> io::Result<BTreeSet<u16>> {
    run_in(ns, move || {
        let (files, state) = match proto {
            // 07 is TCP_CLOSE, which an unconnected UDP socket shows.
            Proto::Udp => (["udp", "udp6"], "07"),
            // 0A is TCP_LISTEN.
            Proto::Tcp => (["tcp", "tcp6"], "0A"),
        };
        let mut ports = BTreeSet::new();
        for file in files {
            // thread-self: the table of this thread's namespace.
            let text = std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))?;
            for line in text.lines().skip(1) {
                let mut cols = line.split_whitespace();
                let local = cols.nth(1).unwrap_or("");
                let st = cols.nth(1).unwrap_or("");
                if st != state {
                    continue;
                }
                if let Some((_, port)) = local.rsplit_once(':')
                    && let Ok(port) = u16::from_str_radix(port, 16)
                {
                    ports.insert(port);
                }
            }
        }
        Ok(ports)
    })?
}
