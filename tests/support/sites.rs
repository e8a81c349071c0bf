//! Two sites that reach one server along different paths, and a hub both
//! reach over a path of their own: for a Prometheus agent at each site
//! remote-writing to a central Prometheus at the hub. Each site has its
//! own router running nftables; the server has two links, one to each
//! router, and answers on one address from both.
//!
//! ```text
//!  site a                router a                          server
//!  to-router .0.2 ------ to-site .0.1 | to-server .1.1 ---- to-router-a .1.2, .1.3
//!  to-hub   .10.2                                           to-router-b .3.2
//!     |                                                        |
//!  to-site-a .10.1  hub                                        |
//!  to-site-b .11.1  (central Prometheus)                       |
//!     |                                                        |
//!  to-hub   .11.2        router b                              |
//!  to-router .2.2 ------ to-site .2.1 | to-server .3.1 --------+
//!  site b
//!  (every address in 198.18.0.0/16, each link a /24)
//! ```
//!
//! Site a's router is `198.18.0.1`, site b's `198.18.2.1`: hop 1 on each
//! site's way to the server. The hub is `198.18.10.1` from site a and
//! `198.18.11.1` from site b, reached on a link of its own (not through
//! the routers, whose rules are the subject of the tests).

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::lab::{Listeners, nft_in, sweep_stale, teardown};
use super::{netns, run};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One of the namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    SiteA,
    RouterA,
    SiteB,
    RouterB,
    Server,
    Hub,
}

const NODES: [Node; 6] = [
    Node::SiteA,
    Node::RouterA,
    Node::SiteB,
    Node::RouterB,
    Node::Server,
    Node::Hub,
];

impl Node {
    fn suffix(self) -> &'static str {
        match self {
            Node::SiteA => "site-a",
            Node::RouterA => "router-a",
            Node::SiteB => "site-b",
            Node::RouterB => "router-b",
            Node::Server => "server",
            Node::Hub => "hub",
        }
    }
}

/// The namespaces; deleted on drop.
#[derive(Debug)]
pub struct Sites {
    names: Vec<String>,
}

impl Sites {
    /// The hub as each site reaches it.
    pub const HUB_FROM_A_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 10, 1);
    pub const HUB_FROM_B_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 11, 1);

    /// Builds the namespaces and links, first removing labs left behind by
    /// dead processes. Both routers start with an empty `forward` chain
    /// (policy accept) in `table inet lab`.
    pub fn new() -> io::Result<Sites> {
        sweep_stale();
        let prefix = format!(
            "pp-{}-s{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let sites = Sites {
            names: NODES
                .iter()
                .map(|n| format!("{prefix}-{}", n.suffix()))
                .collect(),
        };
        sites.build()?;
        Ok(sites)
    }

    /// The name of `node`'s namespace.
    pub fn ns(&self, node: Node) -> &str {
        &self.names[NODES.iter().position(|&n| n == node).expect("a node")]
    }

    fn ip(&self, node: Node, args: &[&str]) -> io::Result<()> {
        run(Command::new("ip").args(["-n", self.ns(node)]).args(args)).map(drop)
    }

    /// A veth pair from `a` (named `a_if`) to `b` (named `b_if`) with an
    /// address at each end.
    fn link(
        &self,
        (a, a_if, a_addr): (Node, &str, &str),
        (b, b_if, b_addr): (Node, &str, &str),
    ) -> io::Result<()> {
        self.ip(
            a,
            &[
                "link",
                "add",
                a_if,
                "type",
                "veth",
                "peer",
                "name",
                b_if,
                "netns",
                self.ns(b),
            ],
        )?;
        for (node, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            self.ip(node, &["link", "set", ifname, "up"])?;
            self.ip(node, &["addr", "add", addr, "dev", ifname])?;
        }
        Ok(())
    }

    fn build(&self) -> io::Result<()> {
        for &node in &NODES {
            run(Command::new("ip").args(["netns", "add", self.ns(node)]))?;
            self.ip(node, &["link", "set", "lo", "up"])?;
        }
        self.link(
            (Node::SiteA, "to-router", "198.18.0.2/24"),
            (Node::RouterA, "to-site", "198.18.0.1/24"),
        )?;
        self.link(
            (Node::RouterA, "to-server", "198.18.1.1/24"),
            (Node::Server, "to-router-a", "198.18.1.2/24"),
        )?;
        self.ip(
            Node::Server,
            &["addr", "add", "198.18.1.3/24", "dev", "to-router-a"],
        )?;
        self.link(
            (Node::SiteB, "to-router", "198.18.2.2/24"),
            (Node::RouterB, "to-site", "198.18.2.1/24"),
        )?;
        self.link(
            (Node::RouterB, "to-server", "198.18.3.1/24"),
            (Node::Server, "to-router-b", "198.18.3.2/24"),
        )?;
        self.link(
            (Node::SiteA, "to-hub", "198.18.10.2/24"),
            (Node::Hub, "to-site-a", "198.18.10.1/24"),
        )?;
        self.link(
            (Node::SiteB, "to-hub", "198.18.11.2/24"),
            (Node::Hub, "to-site-b", "198.18.11.1/24"),
        )?;
        for (node, via) in [(Node::SiteA, "198.18.0.1"), (Node::SiteB, "198.18.2.1")] {
            self.ip(node, &["route", "add", "default", "via", via])?;
        }
        // Router b reaches the server's network through the server's
        // second link; the server answers each site the way it came.
        self.ip(
            Node::RouterB,
            &["route", "add", "198.18.1.0/24", "via", "198.18.3.2"],
        )?;
        self.ip(
            Node::Server,
            &["route", "add", "198.18.0.0/24", "via", "198.18.1.1"],
        )?;
        self.ip(
            Node::Server,
            &["route", "add", "198.18.2.0/24", "via", "198.18.3.1"],
        )?;
        for router in [Node::RouterA, Node::RouterB] {
            netns::sysctl(self.ns(router), "net.ipv4.ip_forward", "1")?;
            nft_in(
                self.ns(router),
                "add table inet lab\n\
                 add chain inet lab forward { type filter hook forward priority 0; policy accept; }\n",
            )?;
        }
        // The server's replies to site b leave by the other link than the
        // one its address is on: no reverse-path filter in the way.
        for key in [
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.conf.default.rp_filter",
        ] {
            netns::sysctl(self.ns(Node::Server), key, "0")?;
        }
        Ok(())
    }

    /// Adds rules to `router`'s forward chain, e.g. `"tcp dport 5900 drop"`.
    pub fn nft(&self, router: Node, rules: &[&str]) -> io::Result<()> {
        assert!(matches!(router, Node::RouterA | Node::RouterB));
        let script: String = rules
            .iter()
            .map(|r| format!("add rule inet lab forward {r}\n"))
            .collect();
        nft_in(self.ns(router), &script)
    }

    /// TCP listeners on the server, on both its addresses.
    pub fn tcp_listeners(&self, ports: &[u16]) -> io::Result<Listeners> {
        Listeners::tcp(self.ns(Node::Server), ports, false)
    }

    /// A command that runs `program` inside `node`'s namespace as root.
    pub fn cmd(&self, node: Node, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(node)]).arg(program);
        cmd
    }

    /// Runs `f` on a thread inside `node`'s namespace.
    pub fn run_in<T, F>(&self, node: Node, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        netns::run_in(self.ns(node), f)
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        let refs: Vec<&str> = self.names.iter().map(String::as_str).collect();
        teardown(&refs);
    }
}
