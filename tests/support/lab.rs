//! Three network namespaces: client, router (nftables) and server, joined by
//! veth pairs. Nothing is linked to the host's own namespace.
//!
//! ```text
//!  client                router                          server
//!  to-router ---------- to-client | to-server ---------- to-router
//!  198.18.0.2/24        198.18.0.1/24   198.18.1.1/24     198.18.1.2/24
//!  2001:db8:0::2/64     2001:db8:0::1   2001:db8:1::1     2001:db8:1::2/64
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;

use socket2::{Domain, Socket, Type};

use super::netns;
use super::nfqueue::Delayer;
use super::proc::{NsId, kill_all, pids_in};
use super::run;

/// `setpriv`'s arguments that run a program as `nobody` with no
/// capabilities and no way to gain any: an ordinary user, as portprobe's
/// users run it.
pub const AS_NOBODY: &[&str] = &[
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
];

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The lab's namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    Client,
    Router,
    Server,
}

/// The lab: its namespaces live until it is dropped.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    client: String,
    router: String,
    server: String,
    delayer: Mutex<Option<Delayer>>,
    scratch: Mutex<Option<tempfile::TempDir>>,
}

impl Lab {
    pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    pub const ROUTER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    pub const ROUTER_SERVER_SIDE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
    pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    pub const ROUTER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    pub const ROUTER_SERVER_SIDE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
    /// Interface names, the same in every lab: each exists only inside that
    /// lab's namespaces.
    pub const CLIENT_IF: &'static str = "to-router";
    pub const ROUTER_CLIENT_IF: &'static str = "to-client";
    pub const ROUTER_SERVER_IF: &'static str = "to-server";
    pub const SERVER_IF: &'static str = "to-router";

    /// Builds a new lab, first removing labs left behind by dead processes.
    pub fn new() -> io::Result<Lab> {
        sweep_stale();
        let prefix = format!(
            "pp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            client: format!("{prefix}-client"),
            router: format!("{prefix}-router"),
            server: format!("{prefix}-server"),
            prefix,
            delayer: Mutex::new(None),
            scratch: Mutex::new(None),
        };
        lab.build()?;
        Ok(lab)
    }

    fn build(&self) -> io::Result<()> {
        for ns in [&self.client, &self.router, &self.server] {
            run(Command::new("ip").args(["netns", "add", ns]))?;
            // New interfaces inherit `default`: no duplicate address
            // detection, so v6 addresses work at once.
            for key in [
                "net.ipv6.conf.all.accept_dad",
                "net.ipv6.conf.default.accept_dad",
            ] {
                netns::sysctl(ns, key, "0")?;
            }
            self.ip(ns, &["link", "set", "lo", "up"])?;
        }
        netns::sysctl(&self.router, "net.ipv4.ip_forward", "1")?;
        netns::sysctl(&self.router, "net.ipv6.conf.all.forwarding", "1")?;
        self.ip(
            &self.client,
            &[
                "link",
                "add",
                Self::CLIENT_IF,
                "type",
                "veth",
                "peer",
                "name",
                Self::ROUTER_CLIENT_IF,
                "netns",
                &self.router,
            ],
        )?;
        self.ip(
            &self.server,
            &[
                "link",
                "add",
                Self::SERVER_IF,
                "type",
                "veth",
                "peer",
                "name",
                Self::ROUTER_SERVER_IF,
                "netns",
                &self.router,
            ],
        )?;
        let sides = [
            (
                &self.client,
                Self::CLIENT_IF,
                "198.18.0.2/24",
                "2001:db8:0::2/64",
            ),
            (
                &self.router,
                Self::ROUTER_CLIENT_IF,
                "198.18.0.1/24",
                "2001:db8:0::1/64",
            ),
            (
                &self.router,
                Self::ROUTER_SERVER_IF,
                "198.18.1.1/24",
                "2001:db8:1::1/64",
            ),
            (
                &self.server,
                Self::SERVER_IF,
                "198.18.1.2/24",
                "2001:db8:1::2/64",
            ),
        ];
        // Links go up before addresses are added: a `nodad` address added
        // to a link that is still down does not join its solicited-node
        // group when the link comes up, so the first neighbour solicitation
        // for it is lost and the first v6 packet waits a second.
        for (ns, ifname, v4, v6) in sides {
            self.ip(ns, &["link", "set", ifname, "up"])?;
            self.ip(ns, &["addr", "add", v4, "dev", ifname])?;
            self.ip(ns, &["-6", "addr", "add", v6, "dev", ifname, "nodad"])?;
        }
        for (ns, gw4, gw6) in [
            (&self.client, "198.18.0.1", "2001:db8:0::1"),
            (&self.server, "198.18.1.1", "2001:db8:1::1"),
        ] {
            self.ip(ns, &["route", "add", "default", "via", gw4])?;
            self.ip(ns, &["-6", "route", "add", "default", "via", gw6])?;
        }
        self.nft_script(
            "add table inet lab\n\
             add chain inet lab loss { type filter hook forward priority -300; policy accept; }\n\
             add chain inet lab forward { type filter hook forward priority 0; policy accept; }\n",
        )
    }

    fn ip(&self, ns: &str, args: &[&str]) -> io::Result<()> {
        run(Command::new("ip").args(["-n", ns]).args(args)).map(drop)
    }

    /// Runs an nft script in the router (`add counter inet lab NAME`,
    /// `insert rule inet lab forward ...`).
    pub fn nft_script(&self, script: &str) -> io::Result<()> {
        nft_in(&self.router, script)
    }

    /// Runs an nft script in one of the lab's namespaces.
    pub fn nft_script_in(&self, which: Ns, script: &str) -> io::Result<()> {
        nft_in(self.ns(which), script)
    }

    /// The `(packets, bytes)` of the router's named counter in `table inet
    /// lab` (made with `add counter inet lab NAME` through [`Lab::nft_script`]).
    pub fn nft_counter(&self, name: &str) -> io::Result<(u64, u64)> {
        self.nft_counter_in(Ns::Router, "lab", name)
    }

    /// The `(packets, bytes)` of the named counter in `table inet TABLE` of
    /// one of the lab's namespaces.
    pub fn nft_counter_in(&self, which: Ns, table: &str, name: &str) -> io::Result<(u64, u64)> {
        let text = run(Command::new("ip").args([
            "netns",
            "exec",
            self.ns(which),
            "nft",
            "list",
            "counter",
            "inet",
            table,
            name,
        ]))?;
        let field = |key: &str| {
            text.split(key)
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
                .ok_or_else(|| io::Error::other(format!("no `{key}` in: {text}")))
        };
        Ok((field("packets ")?, field("bytes ")?))
    }

    /// Namespace name prefix, `pp-<pid>-<n>`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Name of one of the lab's namespaces.
    pub fn ns(&self, which: Ns) -> &str {
        match which {
            Ns::Client => &self.client,
            Ns::Router => &self.router,
            Ns::Server => &self.server,
        }
    }

    pub fn client_ns(&self) -> &str {
        &self.client
    }

    pub fn router_ns(&self) -> &str {
        &self.router
    }

    pub fn server_ns(&self) -> &str {
        &self.server
    }

    pub fn client_v4(&self) -> Ipv4Addr {
        Self::CLIENT_V4
    }

    pub fn client_v6(&self) -> Ipv6Addr {
        Self::CLIENT_V6
    }

    /// The router's client-facing address, where its ICMP errors come from.
    pub fn router_v4(&self) -> Ipv4Addr {
        Self::ROUTER_V4
    }

    /// The router's client-facing v6 address.
    pub fn router_v6(&self) -> Ipv6Addr {
        Self::ROUTER_V6
    }

    pub fn server_v4(&self) -> Ipv4Addr {
        Self::SERVER_V4
    }

    pub fn server_v6(&self) -> Ipv6Addr {
        Self::SERVER_V6
    }

    /// Adds rules, in order, to the router's `forward` chain
    /// (`table inet lab`), e.g. `"tcp dport 5900 drop"`.
    pub fn nft(&self, rules: &[&str]) -> io::Result<()> {
        let script: String = rules
            .iter()
            .map(|r| format!("add rule inet lab forward {r}\n"))
            .collect();
        self.nft_script(&script)
    }

    /// Adds rules, in order, to a `prerouting` chain of the router (made on
    /// first use): they see packets before routing, so before the TTL
    /// check, as a filter at the router's ingress would.
    pub fn nft_before_routing(&self, rules: &[&str]) -> io::Result<()> {
        let mut script = String::from(
            "add chain inet lab prerouting { type filter hook prerouting priority 0; policy accept; }\n",
        );
        for r in rules {
            script.push_str(&format!("add rule inet lab prerouting {r}\n"));
        }
        self.nft_script(&script)
    }

    /// Counts, from now on, the ICMP and ICMPv6 time-exceeded the router
    /// sends (read with [`Lab::time_exceeded_sent`]).
    pub fn count_time_exceeded(&self) -> io::Result<()> {
        self.nft_script(
            "add counter inet lab time-exceeded\n\
             add chain inet lab output { type filter hook output priority 0; policy accept; }\n\
             add rule inet lab output icmp type time-exceeded counter name time-exceeded\n\
             add rule inet lab output icmpv6 type time-exceeded counter name time-exceeded\n",
        )
    }

    /// The time-exceeded the router sent since [`Lab::count_time_exceeded`].
    pub fn time_exceeded_sent(&self) -> io::Result<u64> {
        self.nft_counter("time-exceeded")
            .map(|(packets, _)| packets)
    }

    /// Removes every rule from the router's `forward` chain.
    pub fn nft_flush(&self) -> io::Result<()> {
        self.nft_script("flush chain inet lab forward\n")
    }

    /// The router's ruleset, as `nft list ruleset` prints it.
    pub fn nft_ruleset(&self) -> io::Result<String> {
        run(Command::new("ip").args(["netns", "exec", &self.router, "nft", "list", "ruleset"]))
    }

    /// Drops `percent` % of forwarded packets at random, both directions,
    /// before any filter rule sees them. 0 turns loss off.
    pub fn set_loss(&self, percent: u32) -> io::Result<()> {
        let mut script = String::from("flush chain inet lab loss\n");
        if percent > 0 {
            script.push_str(&format!(
                "add rule inet lab loss numgen random mod 100 < {} drop\n",
                percent.min(100)
            ));
        }
        self.nft_script(&script)
    }

    /// Delays every forwarded packet by `one_way_ms`, both directions, so a
    /// client-server round trip grows by twice that. Packets the router
    /// sends itself (its ICMP errors) are not delayed.
    pub fn set_delay(&self, one_way_ms: u32) -> io::Result<()> {
        let mut guard = self.delayer.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(d) => d.set(one_way_ms),
            None => *guard = Some(Delayer::start(&self.router, one_way_ms)?),
        }
        Ok(())
    }

    /// Sets a sysctl in the server namespace, e.g. `net.ipv4.icmp_ratelimit`.
    pub fn server_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        netns::sysctl(&self.server, key, value)
    }

    /// Sets a sysctl in any of the lab's namespaces.
    pub fn sysctl(&self, which: Ns, key: &str, value: &str) -> io::Result<()> {
        netns::sysctl(self.ns(which), key, value)
    }

    /// TCP listeners on the server, on 0.0.0.0 (or `[::]`, v6 only), that
    /// accept and close every connection.
    pub fn tcp_listeners(&self, ports: &[u16], v6: bool) -> io::Result<Listeners> {
        Listeners::tcp(&self.server, ports, v6)
    }

    /// Bound UDP sockets on the server that read and discard datagrams.
    pub fn udp_sockets(&self, ports: &[u16], v6: bool) -> io::Result<Listeners> {
        Listeners::udp(&self.server, ports, v6, false)
    }

    /// Bound UDP sockets on the server that send each datagram back.
    pub fn udp_echo(&self, ports: &[u16], v6: bool) -> io::Result<Listeners> {
        Listeners::udp(&self.server, ports, v6, true)
    }

    /// TCP listeners in any of the lab's namespaces.
    pub fn tcp_listeners_in(&self, which: Ns, ports: &[u16], v6: bool) -> io::Result<Listeners> {
        Listeners::tcp(self.ns(which), ports, v6)
    }

    /// UDP sockets in any of the lab's namespaces, echoing or silent.
    pub fn udp_sockets_in(
        &self,
        which: Ns,
        ports: &[u16],
        v6: bool,
        echo: bool,
    ) -> io::Result<Listeners> {
        Listeners::udp(self.ns(which), ports, v6, echo)
    }

    /// Runs `f` on a thread inside one of the lab's namespaces.
    pub fn run_in<T, F>(&self, which: Ns, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        netns::run_in(self.ns(which), f)
    }

    /// A command that runs `program` inside one of the lab's namespaces.
    pub fn cmd(&self, which: Ns, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(which)]).arg(program);
        cmd
    }

    /// A command that runs `program` inside the client namespace, as root.
    pub fn client_cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.cmd(Ns::Client, program)
    }

    /// A command that runs `program` inside the server namespace, as root.
    pub fn server_cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.cmd(Ns::Server, program)
    }

    /// A command that runs `program` inside the client namespace as user
    /// `nobody`, with no capabilities. A program given as a path that
    /// `nobody` cannot reach is first copied to a world-readable scratch
    /// directory.
    pub fn client_cmd_as_nobody(&self, program: impl AsRef<Path>) -> io::Result<Command> {
        self.cmd_as_nobody(Ns::Client, program)
    }

    /// As [`Lab::client_cmd_as_nobody`], in any of the lab's namespaces.
    pub fn cmd_as_nobody(&self, which: Ns, program: impl AsRef<Path>) -> io::Result<Command> {
        let program = self.reachable_by_nobody(program.as_ref())?;
        let mut cmd = self.cmd(which, "setpriv");
        cmd.args(AS_NOBODY).arg(program);
        Ok(cmd)
    }

    /// `program` itself when `nobody` can run it where it is, else a 0755
    /// copy in the lab's scratch directory.
    fn reachable_by_nobody(&self, program: &Path) -> io::Result<PathBuf> {
        reachable_by_nobody(&self.scratch, &self.prefix, program)
    }

    /// Processes running in any of the lab's namespaces.
    pub fn pids(&self) -> Vec<i32> {
        [&self.client, &self.router, &self.server]
            .into_iter()
            .filter_map(|ns| NsId::of(&netns::ns_path(ns)).ok())
            .flat_map(|id| pids_in("net", id))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(mut d) = self.delayer.lock() {
            d.take();
        }
        teardown(&[&self.client, &self.router, &self.server]);
        if let Ok(mut s) = self.scratch.lock() {
            s.take();
        }
    }
}

/// Runs an `nft -f -` script inside namespace `ns`.
pub(super) fn nft_in(ns: &str, script: &str) -> io::Result<()> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "nft in {ns} failed: {}\nscript:\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `program` itself when `nobody` can run it where it is, else a 0755 copy
/// in `scratch`, a world-readable directory made on first use.
pub(super) fn reachable_by_nobody(
    scratch: &Mutex<Option<tempfile::TempDir>>,
    prefix: &str,
    program: &Path,
) -> io::Result<PathBuf> {
    if program.components().count() <= 1 || world_executable(program) {
        return Ok(program.to_path_buf());
    }
    let mut scratch = scratch.lock().unwrap_or_else(|p| p.into_inner());
    if scratch.is_none() {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        *scratch = Some(dir);
    }
    let dir = scratch.as_ref().expect("just created").path();
    let name = program
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", program.display())))?;
    let copy = dir.join(name);
    std::fs::copy(program, &copy)?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    Ok(copy)
}

/// Kills every process inside the namespaces, then deletes them.
pub(super) fn teardown(namespaces: &[&str]) {
    let ids: Vec<NsId> = namespaces
        .iter()
        .filter_map(|ns| NsId::of(&netns::ns_path(ns)).ok())
        .collect();
    let pids: Vec<i32> = ids.iter().flat_map(|&id| pids_in("net", id)).collect();
    kill_all(&pids);
    for ns in namespaces {
        let _ = Command::new("ip")
            .args(["netns", "delete", ns])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes labs named `pp-<pid>-*` whose process no longer exists.
pub(super) fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    let stale: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("pp-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect();
    let refs: Vec<&str> = stale.iter().map(String::as_str).collect();
    teardown(&refs);
}

/// Whether every directory on the way to `path`, and the file itself, lets
/// others in.
fn world_executable(path: &Path) -> bool {
    let Ok(abs) = std::fs::canonicalize(path) else {
        return false;
    };
    abs.ancestors()
        .all(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// Sockets bound inside a namespace, served by one thread until dropped.
#[derive(Debug)]
pub struct Listeners {
    ports: Vec<u16>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Listeners {
    /// TCP listeners in namespace `ns` that accept and close connections.
    pub(super) fn tcp(ns: &str, ports: &[u16], v6: bool) -> io::Result<Listeners> {
        Self::serve(ns, ports, v6, move |addr| {
            let s = socket_for(addr, Type::STREAM)?;
            s.bind(&addr.into())?;
            s.listen(1024)?;
            Ok(Bound::Tcp(TcpListener::from(s)))
        })
    }

    /// UDP sockets in namespace `ns`, silent or echoing every datagram.
    pub(super) fn udp(ns: &str, ports: &[u16], v6: bool, echo: bool) -> io::Result<Listeners> {
        Self::serve(ns, ports, v6, move |addr| {
            let s = socket_for(addr, Type::DGRAM)?;
            s.bind(&addr.into())?;
            Ok(Bound::Udp(UdpSocket::from(s), echo))
        })
    }

    fn serve<B>(ns: &str, ports: &[u16], v6: bool, bind: B) -> io::Result<Listeners>
    where
        B: Fn(SocketAddr) -> io::Result<Bound> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU32::new(0));
        let (tx, rx) = mpsc::channel();
        let (s, a) = (stop.clone(), accepted.clone());
        let wanted = ports.to_vec();
        let ip: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let thread = netns::spawn_in(ns, "lab-listeners", move || {
            let bound: io::Result<Vec<Bound>> = wanted
                .iter()
                .map(|&p| {
                    bind(SocketAddr::new(ip, p))
                        .map_err(|e| io::Error::new(e.kind(), format!("bind port {p}: {e}")))
                })
                .collect();
            let bound = match bound {
                Ok(b) => {
                    let ports = b.iter().map(Bound::port).collect::<io::Result<Vec<_>>>();
                    let _ = tx.send(ports);
                    b
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            serve_loop(&bound, &s, &a);
        })?;
        let mut l = Listeners {
            ports: Vec::new(),
            stop,
            accepted,
            thread: Some(thread),
        };
        match rx.recv() {
            Ok(Ok(ports)) => {
                l.ports = ports;
                Ok(l)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other("listener thread ended early")),
        }
    }

    /// The bound ports (useful when 0 asked for an ephemeral one).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// TCP connections accepted, or UDP datagrams received, so far.
    pub fn count(&self) -> u32 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket, bool),
}

impl Bound {
    fn port(&self) -> io::Result<u16> {
        match self {
            Bound::Tcp(l) => l.local_addr().map(|a| a.port()),
            Bound::Udp(s, _) => s.local_addr().map(|a| a.port()),
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Bound::Tcp(l) => l.as_fd(),
            Bound::Udp(s, _) => s.as_fd(),
        }
    }
}

fn socket_for(addr: SocketAddr, ty: Type) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Accepts and closes connections, reads (and maybe echoes) datagrams, until
/// told to stop. The accept queue is drained on every wake-up, so it never
/// fills however often a port is probed.
fn serve_loop(bound: &[Bound], stop: &AtomicBool, count: &AtomicU32) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let mut fds: Vec<PollFd> = bound
            .iter()
            .map(|b| PollFd::new(b.fd(), PollFlags::POLLIN))
            .collect();
        if poll(&mut fds, PollTimeout::from(50u8)).unwrap_or(0) <= 0 {
            continue;
        }
        for b in bound {
            match b {
                Bound::Tcp(l) => {
                    while let Ok((conn, _)) = l.accept() {
                        count.fetch_add(1, Ordering::Relaxed);
                        drop(conn);
                    }
                }
                Bound::Udp(s, echo) => {
                    while let Ok((n, from)) = s.recv_from(&mut buf) {
                        count.fetch_add(1, Ordering::Relaxed);
                        if *echo {
                            let _ = s.send_to(&buf[..n], from);
                        }
                    }
                }
            }
        }
    }
}
