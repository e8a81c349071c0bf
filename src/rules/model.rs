//! What to allow: per destination address and transport, the port ranges
//! and the words that say why (the product and service, and where a report
//! found the ports blocked), from which sources. Built from single ports,
//! grouped here into ranges; every format renders the same model.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::text;
use crate::port::{PortRange, Transport};

/// One port to allow, before grouping.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Wanted {
    /// The address the port is allowed to.
    pub destination: IpAddr,
    /// TCP or UDP.
    pub transport: Transport,
    /// The port.
    pub port: u16,
    /// What the port is for: `Apple Remote Desktop: Screen Sharing (VNC)`,
    /// already made [`text::safe`].
    pub what: String,
    /// Where a report found it blocked, as a phrase that follows the port
    /// (`passes 198.18.0.1 (hop 1) and is dropped before ...`), already
    /// made [`text::safe`].
    pub found: Option<String>,
}

/// One rule: ports of one transport to one address, for one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The address the ports are allowed to.
    pub destination: IpAddr,
    /// TCP or UDP.
    pub transport: Transport,
    /// The ports, sorted, neither overlapping nor touching.
    pub ports: Vec<PortRange>,
    /// What the ports are for (safe text).
    pub what: String,
    /// Where a report found them blocked (safe text).
    pub found: Option<String>,
}

impl Rule {
    /// Whether the rule is for an IPv6 address.
    pub fn is_v6(&self) -> bool {
        self.destination.is_ipv6()
    }

    /// The ports as a person writes them: `TCP 5900, 49152-65535`.
    pub fn ports_label(&self) -> String {
        let list: Vec<String> = self.ports.iter().map(ToString::to_string).collect();
        format!("{} {}", self.transport.label(), list.join(", "))
    }

    /// The rule in words, for a comment line of its own: `Apple Remote
    /// Desktop: Screen Sharing (VNC), TCP 5900 to 198.18.1.2 passes
    /// 198.18.0.1 (hop 1) and is dropped before 198.18.1.2 (hop 2)`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}, {} to {}",
            self.what,
            self.ports_label(),
            self.destination
        );
        if let Some(found) = &self.found {
            s.push(' ');
            s.push_str(found);
        }
        s
    }

    /// A short name for the rule's own comment field: `portprobe: Apple
    /// Remote Desktop: Screen Sharing (VNC)`, at most `max` bytes.
    pub fn label(&self, max: usize) -> String {
        text::fit(&format!("portprobe: {}", self.what), max)
    }
}

/// Where the rules are enforced, for formats that make a chain of their
/// own: on a router between clients and server, or on the server itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Traffic routed through the firewall (FORWARD).
    Forward,
    /// Traffic to the firewall's own host (INPUT).
    Input,
}

impl Hook {
    /// The hook `--chain NAME` means: FORWARD or INPUT in any case.
    pub fn of_chain(name: &str) -> Option<Hook> {
        match name.to_ascii_lowercase().as_str() {
            "forward" => Some(Hook::Forward),
            "input" => Some(Hook::Input),
            _ => None,
        }
    }

    /// The nftables hook's name.
    pub fn nft(self) -> &'static str {
        match self {
            Hook::Forward => "forward",
            Hook::Input => "input",
        }
    }
}

/// The clients' networks: at most one per address family; none means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    v4: Option<Ipv4Net>,
    v6: Option<Ipv6Net>,
}

impl Sources {
    /// The sources `--source` gave, at most one per address family.
    pub fn new(nets: &[IpNet]) -> Result<Sources, String> {
        let mut s = Sources::default();
        for &net in nets {
            let taken = match net {
                IpNet::V4(n) => s.v4.replace(n).map(IpNet::V4),
                IpNet::V6(n) => s.v6.replace(n).map(IpNet::V6),
            };
            if let Some(before) = taken {
                return Err(format!(
                    "--source {before} and --source {net} are both IPv{}: give one network per address family",
                    if net.addr().is_ipv4() { 4 } else { 6 }
                ));
            }
        }
        Ok(s)
    }

    /// The network rules to `destination` allow from; `None` for any.
    pub fn of(&self, destination: IpAddr) -> Option<IpNet> {
        let net = match destination {
            IpAddr::V4(_) => self.v4.map(IpNet::V4),
            IpAddr::V6(_) => self.v6.map(IpNet::V6),
        };
        net.filter(|n| n.prefix_len() > 0)
    }

    /// Whether no source was given at all.
    pub fn is_any(&self) -> bool {
        self.v4.is_none() && self.v6.is_none()
    }

    /// The sources as the header names them.
    fn words(&self) -> String {
        if self.is_any() {
            return "from any source (--source CIDR allows only the clients' network)".to_string();
        }
        let nets: Vec<String> = [self.v4.map(IpNet::V4), self.v6.map(IpNet::V6)]
            .into_iter()
            .flatten()
            .map(|n| {
                if n.prefix_len() == 0 {
                    format!("any IPv{} source", if n.addr().is_ipv4() { 4 } else { 6 })
                } else {
                    n.to_string()
                }
            })
            .collect();
        format!("from {} (--source)", nets.join(" and "))
    }
}

/// A `--source` value: a network in CIDR notation, or one address; a
/// network with host bits set is refused, naming the network meant.
pub fn parse_source(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => {
                return Err(format!(
                    "`{s}` is not a network (expected CIDR such as 198.18.0.0/24 or 2001:db8::/64, or one address)"
                ));
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has host bits set: the network is {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// The rules of one run, and what the header of every format says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The rules, by destination (IPv4 first), transport, then first port.
    pub rules: Vec<Rule>,
    /// The clients' networks.
    pub sources: Sources,
    /// Lines for the header: where the rules come from and what they leave
    /// out (safe text).
    pub notes: Vec<String>,
}

impl Rules {
    /// The rules for `wanted` from `sources`, refused when a source was
    /// given for one address family and the rules need the other.
    pub fn new(wanted: Vec<Wanted>, sources: Sources, notes: Vec<String>) -> Result<Rules, String> {
        let rules = group(wanted);
        if !sources.is_any()
            && let Some(r) = rules.iter().find(|r| match r.destination {
                IpAddr::V4(_) => sources.v4.is_none(),
                IpAddr::V6(_) => sources.v6.is_none(),
            })
        {
            let (given, missing, only, any) = if r.is_v6() {
                (sources.v4.map(IpNet::V4), 6, "-4", "::/0")
            } else {
                (sources.v6.map(IpNet::V6), 4, "-6", "0.0.0.0/0")
            };
            let given = given.map_or_else(String::new, |g| g.to_string());
            return Err(format!(
                "--source {given} covers IPv{} only, but a rule is for {}: add an IPv{missing} --source (--source {any} for any), or {only} to leave out IPv{missing} rules",
                10 - missing,
                r.destination
            ));
        }
        Ok(Rules {
            rules,
            sources,
            notes,
        })
    }

    /// The header every format writes as comment lines, first line first.
    pub fn header(&self) -> Vec<String> {
        let mut lines = vec!["portprobe rules: allow exactly these ports".to_string()];
        lines.extend(self.notes.iter().cloned());
        if self.rules.is_empty() {
            lines.push("nothing to allow: no rules".to_string());
        } else {
            lines.push(self.sources.words());
        }
        lines
    }
}

/// Single ports into rules: those of one destination, transport and
/// reason (what and where found) become one rule, consecutive ports one
/// range.
pub fn group(mut wanted: Vec<Wanted>) -> Vec<Rule> {
    wanted.sort_by(|a, b| {
        (a.destination, a.transport, &a.what, &a.found, a.port).cmp(&(
            b.destination,
            b.transport,
            &b.what,
            &b.found,
            b.port,
        ))
    });
    wanted.dedup();
    let mut rules: Vec<Rule> = Vec::new();
    for w in wanted {
        let same = rules.last_mut().filter(|r| {
            r.destination == w.destination
                && r.transport == w.transport
                && r.what == w.what
                && r.found == w.found
        });
        match same {
            Some(rule) => {
                let last = rule.ports.last_mut().expect("a rule has ports");
                if u32::from(w.port) == u32::from(last.end()) + 1 {
                    *last = PortRange::new(last.start(), w.port).expect("ascending");
                } else {
                    rule.ports.push(PortRange::single(w.port).expect("nonzero"));
                }
            }
            None => rules.push(Rule {
                destination: w.destination,
                transport: w.transport,
                ports: vec![PortRange::single(w.port).expect("nonzero")],
                what: w.what,
                found: w.found,
            }),
        }
    }
    rules.sort_by_key(|r| (r.destination, r.transport, r.ports[0]));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(destination: &str, transport: Transport, port: u16, what: &str) -> Wanted {
        Wanted {
            destination: destination.parse().unwrap(),
            transport,
            port,
            what: what.to_string(),
            found: None,
        }
    }

    #[test]
    fn ports_of_one_reason_group_into_ranges() {
        let mut wanted: Vec<Wanted> = [5902, 5900, 5901, 5900, 6000]
            .into_iter()
            .map(|p| want("198.18.1.2", Transport::Tcp, p, "VNC"))
            .collect();
        wanted.push(want("198.18.1.2", Transport::Udp, 5900, "VNC"));
        wanted.push(want("198.18.1.2", Transport::Tcp, 3283, "ARD"));
        wanted.push(want("2001:db8:1::2", Transport::Tcp, 5900, "VNC"));
        wanted.push(Wanted {
            found: Some("is dropped".into()),
            ..want("198.18.1.2", Transport::Tcp, 5903, "VNC")
        });
        let rules = group(wanted);
        let summary: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {} {}", r.destination, r.ports_label(), r.what))
            .collect();
        assert_eq!(
            summary,
            [
                "198.18.1.2 TCP 3283 ARD",
                "198.18.1.2 TCP 5900-5902, 6000 VNC",
                "198.18.1.2 TCP 5903 VNC",
                "198.18.1.2 UDP 5900 VNC",
                "2001:db8:1::2 TCP 5900 VNC",
            ]
        );
        assert_eq!(
            rules[2].describe(),
            "VNC, TCP 5903 to 198.18.1.2 is dropped"
        );
        assert_eq!(rules[0].label(12), "portprobe...");
        // The last port and the first, without overflow.
        let edges = group(vec![
            want("198.18.1.2", Transport::Tcp, 65535, "x"),
            want("198.18.1.2", Transport::Tcp, 65534, "x"),
            want("198.18.1.2", Transport::Tcp, 1, "x"),
        ]);
        assert_eq!(edges[0].ports_label(), "TCP 1, 65534-65535");
    }

    #[test]
    fn sources_are_networks_one_per_family() {
        let net = |s: &str| parse_source(s).unwrap();
        assert_eq!(net("198.18.0.0/24").to_string(), "198.18.0.0/24");
        assert_eq!(net(" 198.18.0.7 ").to_string(), "198.18.0.7/32");
        assert_eq!(net("2001:db8::/64").to_string(), "2001:db8::/64");
        assert_eq!(
            parse_source("198.18.0.7/24").unwrap_err(),
            "`198.18.0.7/24` has host bits set: the network is 198.18.0.0/24"
        );
        assert!(
            parse_source("lan")
                .unwrap_err()
                .starts_with("`lan` is not a network")
        );
        assert!(parse_source("198.18.0.0/33").is_err());
        let e = Sources::new(&[net("10.0.0.0/8"), net("198.18.0.0/24")]).unwrap_err();
        assert!(e.contains("both IPv4"), "{e}");

        let v4 = Sources::new(&[net("198.18.0.0/24")]).unwrap();
        let wanted = vec![want("2001:db8:1::2", Transport::Tcp, 22, "SSH")];
        let e = Rules::new(wanted.clone(), v4.clone(), vec![]).unwrap_err();
        assert_eq!(
            e,
            "--source 198.18.0.0/24 covers IPv4 only, but a rule is for 2001:db8:1::2: add an IPv6 --source (--source ::/0 for any), or -4 to leave out IPv6 rules"
        );
        let both = Sources::new(&[net("198.18.0.0/24"), net("::/0")]).unwrap();
        let rules = Rules::new(wanted, both.clone(), vec![]).unwrap();
        assert_eq!(rules.rules.len(), 1);
        assert_eq!(both.of("2001:db8:1::2".parse().unwrap()), None);
        assert_eq!(
            both.of("198.18.1.2".parse().unwrap()),
            Some(net("198.18.0.0/24"))
        );
        assert_eq!(
            rules.header().last().unwrap(),
            "from 198.18.0.0/24 and any IPv6 source (--source)"
        );
        let none = Rules::new(vec![], Sources::default(), vec!["x".into()]).unwrap();
        assert_eq!(
            none.header(),
            [
                "portprobe rules: allow exactly these ports",
                "x",
                "nothing to allow: no rules"
            ]
        );
    }
}
