//! A longer path: a client, a chain of routers and a server, each in its
//! own network namespace, for finding the hop where a port stops. Every
//! router runs nftables with a `prerouting` chain (before routing, so before
//! the TTL check) and a `forward` chain (after it).
//!
//! ```text
//!  client        r1              r2              r3              server
//!  .20.1 ------- .20.2 | .21.1 ------- .21.2 | .22.1 ------- .22.2 | .23.1 ------- .23.2
//!  198.18.20.0/24 ... 198.18.23.0/24; IPv6 2001:db8:20::/64 ... 2001:db8:23::/64
//! ```
//!
//! Hop k is router k; its ICMP errors come from its address on the link
//! towards the client, `198.18.(19+k).2` (`2001:db8:(19+k)::2`), and the
//! server is hop `routers + 1`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::lab::{AS_NOBODY, Listeners, nft_in, reachable_by_nobody, sweep_stale, teardown};
use super::{netns, run};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where a router's filter runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Before routing, so before the TTL check.
    Prerouting,
    /// After routing and the TTL check.
    Forward,
}

impl Hook {
    fn chain(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Forward => "forward",
        }
    }
}

/// The namespaces of a chain; deleted on drop.
#[derive(Debug)]
pub struct Chain {
    prefix: String,
    /// client, r1 .. rN, server.
    nodes: Vec<String>,
    scratch: Mutex<Option<tempfile::TempDir>>,
}

impl Chain {
    /// A client, `routers` routers (at most 9) and a server, linked in a row.
    pub fn new(routers: u8) -> io::Result<Chain> {
        assert!((1..=9).contains(&routers));
        sweep_stale();
        let prefix = format!(
            "pp-{}-c{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut nodes = vec![format!("{prefix}-client")];
        nodes.extend((1..=routers).map(|k| format!("{prefix}-r{k}")));
        nodes.push(format!("{prefix}-server"));
        let chain = Chain {
            prefix,
            nodes,
            scratch: Mutex::new(None),
        };
        chain.build(routers)?;
        Ok(chain)
    }

    fn ip(&self, node: usize, args: &[&str]) -> io::Result<()> {
        run(Command::new("ip")
            .args(["-n", &self.nodes[node]])
            .args(args))
        .map(drop)
    }

    fn build(&self, routers: u8) -> io::Result<()> {
        for ns in &self.nodes {
            run(Command::new("ip").args(["netns", "add", ns]))?;
            for key in [
                "net.ipv6.conf.all.accept_dad",
                "net.ipv6.conf.default.accept_dad",
            ] {
                netns::sysctl(ns, key, "0")?;
            }
        }
        for (i, _) in self.nodes.iter().enumerate() {
            self.ip(i, &["link", "set", "lo", "up"])?;
        }
        // Link i joins node i ("right") and node i + 1 ("left").
        let links = self.nodes.len() - 1;
        for i in 0..links {
            self.ip(
                i,
                &[
                    "link",
                    "add",
                    "right",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "left",
                    "netns",
                    &self.nodes[i + 1],
                ],
            )?;
        }
        for i in 0..links {
            let net = 20 + i;
            for (node, ifname, host) in [(i, "right", 1), (i + 1, "left", 2)] {
                self.ip(node, &["link", "set", ifname, "up"])?;
                self.ip(
                    node,
                    &[
                        "addr",
                        "add",
                        &format!("198.18.{net}.{host}/24"),
                        "dev",
                        ifname,
                    ],
                )?;
                self.ip(
                    node,
                    &[
                        "-6",
                        "addr",
                        "add",
                        &format!("2001:db8:{net}::{host}/64"),
                        "dev",
                        ifname,
                        "nodad",
                    ],
                )?;
            }
        }
        // Towards the server: the next node on the right; towards the
        // client: the previous one on the left, for every link not its own.
        for node in 0..self.nodes.len() {
            if node < links {
                let right = 20 + node;
                self.ip(
                    node,
                    &[
                        "route",
                        "add",
                        "default",
                        "via",
                        &format!("198.18.{right}.2"),
                    ],
                )?;
                self.ip(
                    node,
                    &[
                        "-6",
                        "route",
                        "add",
                        "default",
                        "via",
                        &format!("2001:db8:{right}::2"),
                    ],
                )?;
            }
            if node >= 1 {
                let left = 20 + node - 1;
                for far in 0..left.saturating_sub(20) {
                    let net = 20 + far;
                    self.ip(
                        node,
                        &[
                            "route",
                            "add",
                            &format!("198.18.{net}.0/24"),
                            "via",
                            &format!("198.18.{left}.1"),
                        ],
                    )?;
                    self.ip(
                        node,
                        &[
                            "-6",
                            "route",
                            "add",
                            &format!("2001:db8:{net}::/64"),
                            "via",
                            &format!("2001:db8:{left}::1"),
                        ],
                    )?;
                }
            }
        }
        for k in 1..=routers {
            let ns = &self.nodes[usize::from(k)];
            netns::sysctl(ns, "net.ipv4.ip_forward", "1")?;
            netns::sysctl(ns, "net.ipv6.conf.all.forwarding", "1")?;
            self.nft_script(
                k,
                "add table inet lab\n\
                 add chain inet lab prerouting { type filter hook prerouting priority 0; policy accept; }\n\
                 add chain inet lab forward { type filter hook forward priority 0; policy accept; }\n",
            )?;
        }
        Ok(())
    }

    fn nft_script(&self, router: u8, script: &str) -> io::Result<()> {
        nft_in(&self.nodes[usize::from(router)], script)
    }

    /// Adds rules to router `router`'s chain for `hook`, e.g.
    /// `"tcp dport 5900 drop"`.
    pub fn nft(&self, router: u8, hook: Hook, rules: &[&str]) -> io::Result<()> {
        let script: String = rules
            .iter()
            .map(|r| format!("add rule inet lab {} {r}\n", hook.chain()))
            .collect();
        self.nft_script(router, &script)
    }

    /// Makes router `router` send no time-exceeded, as many firewalls do:
    /// an `output` rule drops every ICMP and ICMPv6 time-exceeded it would
    /// send. Its other ICMP errors (rejections) still go out.
    pub fn silence_time_exceeded(&self, router: u8) -> io::Result<()> {
        self.nft_script(
            router,
            "add chain inet lab output { type filter hook output priority 0; policy accept; }\n\
             add rule inet lab output icmp type time-exceeded drop\n\
             add rule inet lab output icmpv6 type time-exceeded drop\n",
        )
    }

    /// Router `k`'s address as hop k (on its link towards the client).
    pub fn hop(&self, k: u8, v6: bool) -> IpAddr {
        let net = 19 + k;
        if v6 {
            // The link's number is written in hex digits: 2001:db8:21::2.
            let group = u16::from_str_radix(&net.to_string(), 16).expect("hex digits");
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, group, 0, 0, 0, 0, 2))
        } else {
            IpAddr::V4(Ipv4Addr::new(198, 18, net, 2))
        }
    }

    /// The server's address.
    pub fn server(&self, v6: bool) -> IpAddr {
        self.hop(self.routers() + 1, v6)
    }

    /// Number of routers.
    pub fn routers(&self) -> u8 {
        (self.nodes.len() - 2) as u8
    }

    /// The server namespace.
    pub fn server_ns(&self) -> &str {
        self.nodes.last().expect("a server")
    }

    /// TCP listeners on the server, on every address of one family.
    pub fn tcp_listeners(&self, ports: &[u16], v6: bool) -> io::Result<Listeners> {
        Listeners::tcp(self.server_ns(), ports, v6)
    }

    /// Bound UDP sockets on the server that read and never answer.
    pub fn silent_udp(&self, ports: &[u16], v6: bool) -> io::Result<Listeners> {
        Listeners::udp(self.server_ns(), ports, v6, false)
    }

    /// A command that runs `program` in the client namespace as `nobody`,
    /// with no capabilities.
    pub fn client_as_nobody(&self, program: impl AsRef<Path>) -> io::Result<Command> {
        let program = reachable_by_nobody(&self.scratch, &self.prefix, program.as_ref())?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.nodes[0], "setpriv"])
            .args(AS_NOBODY)
            .arg(program);
        Ok(cmd)
    }

    /// A command that runs `program` in the client namespace as root.
    pub fn client_cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.nodes[0]]).arg(program);
        cmd
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let refs: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        teardown(&refs);
        if let Ok(mut s) = self.scratch.lock() {
            s.take();
        }
    }
}
