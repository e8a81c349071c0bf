//! nftables: `insert rule` commands for a chain the user names
//! (`--nft-chain "inet filter forward"`), loadable with `nft -f`; or, with
//! no chain named, a table of its own, which by itself unblocks nothing a
//! chain elsewhere drops (nftables runs every base chain at a hook, and a
//! drop in any of them is final), as its comment says.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;

use super::model::{Hook, Rule, Rules};
use crate::port::PortRange;

/// The most bytes nftables keeps of a rule's comment.
const MAX_COMMENT: usize = 128;

/// An nftables address family that filters IP traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    Ip,
    /// IPv6 only.
    Ip6,
    /// Both.
    Inet,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
        }
    }
}

/// A chain to insert into: `FAMILY TABLE CHAIN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The table's family.
    pub family: Family,
    /// The table's name.
    pub table: String,
    /// The chain's name.
    pub chain: String,
}

/// Whether `s` is a name nftables reads as one identifier: a letter, then
/// letters, digits, `_`, `-` or `.`; at most 64 bytes.
fn identifier(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

impl FromStr for Chain {
    type Err = String;

    fn from_str(s: &str) -> Result<Chain, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let [family, table, chain] = words[..] else {
            return Err(format!(
                "`{s}` is not a chain (expected FAMILY TABLE CHAIN, e.g. \"inet filter forward\")"
            ));
        };
        let family = match family {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            other => {
                return Err(format!(
                    "`{other}` is not a family whose chains filter IP traffic (expected ip, ip6 or inet)"
                ));
            }
        };
        for name in [table, chain] {
            if !identifier(name) {
                return Err(format!(
                    "`{name}` is not an nftables name (a letter, then letters, digits, _, - or .)"
                ));
            }
        }
        Ok(Chain {
            family,
            table: table.to_string(),
            chain: chain.to_string(),
        })
    }
}

/// Where the rules go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Into a chain of the user's, at its top.
    Insert(Chain),
    /// Into a table of their own, with a base chain at this hook.
    Table(Hook),
}

/// A comment's text as nftables quotes it: no `"` or `\` (it has no
/// escapes), no control characters, at most 128 bytes.
pub fn quote(s: &str) -> String {
    let kept: String = s
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect();
    let mut end = kept.len().min(MAX_COMMENT);
    while !kept.is_char_boundary(end) {
        end -= 1;
    }
    format!("\"{}\"", &kept[..end])
}

/// `5900`, `49152-65535`, or a set `{ 5900, 49152-65535 }`.
fn ports(ranges: &[PortRange]) -> String {
    let list: Vec<String> = ranges.iter().map(ToString::to_string).collect();
    match &list[..] {
        [one] => one.clone(),
        _ => format!("{{ {} }}", list.join(", ")),
    }
}

/// The rule's statement, without the command before it.
fn statement(rules: &Rules, r: &Rule) -> String {
    let ip = if r.is_v6() { "ip6" } else { "ip" };
    let source = rules
        .sources
        .of(r.destination)
        .map_or_else(String::new, |s| format!("{ip} saddr {s} "));
    format!(
        "{source}{ip} daddr {} {} dport {} accept comment {}",
        r.destination,
        r.transport.as_str(),
        ports(&r.ports),
        quote(&r.label(MAX_COMMENT))
    )
}

/// The rules as an `nft -f` file; refused when the chain's family cannot
/// hold a rule's address.
pub fn render(rules: &Rules, place: &Place) -> Result<String, String> {
    let mut out = String::new();
    for line in rules.header() {
        let _ = writeln!(out, "# {line}");
    }
    if rules.rules.is_empty() {
        return Ok(out);
    }
    match place {
        Place::Insert(chain) => {
            if let Some(r) = rules.rules.iter().find(|r| {
                matches!(
                    (chain.family, r.destination),
                    (Family::Ip, IpAddr::V6(_)) | (Family::Ip6, IpAddr::V4(_))
                )
            }) {
                let (only, other) = if chain.family == Family::Ip {
                    ("-4", "an ip6 or inet")
                } else {
                    ("-6", "an ip or inet")
                };
                return Err(format!(
                    "the chain is in an {} table, which cannot hold a rule for {}: give {other} chain too in another run, and {only} here",
                    chain.family.name(),
                    r.destination
                ));
            }
            let target = format!("{} {} {}", chain.family.name(), chain.table, chain.chain);
            let _ = writeln!(
                out,
                "# Load with `nft -f FILE`: each rule goes to the top of chain {target}.\n#"
            );
            for r in &rules.rules {
                let _ = writeln!(out, "# {}", r.describe());
                let _ = writeln!(out, "insert rule {target} {}", statement(rules, r));
            }
        }
        Place::Table(hook) => {
            let _ = writeln!(
                out,
                "# An accept here does not override a drop elsewhere: nftables runs every\n\
                 # base chain at a hook, and a packet that any of them drops is dropped.\n\
                 # To unblock ports that a chain of yours drops, insert these rules into\n\
                 # that chain instead: portprobe rules ... --nft-chain \"inet filter {}\".\n\
                 # Load with `nft -f FILE`; loading it again replaces the table.\n\
                 table inet portprobe\n\
                 delete table inet portprobe\n\
                 table inet portprobe {{\n\
                 \tchain {hook} {{\n\
                 \t\ttype filter hook {hook} priority filter; policy accept;",
                hook.nft(),
                hook = hook.nft()
            );
            for r in &rules.rules {
                let _ = writeln!(out, "\t\t# {}", r.describe());
                let _ = writeln!(out, "\t\t{}", statement(rules, r));
            }
            out.push_str("\t}\n}\n");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Transport;
    use crate::rules::model::{Sources, Wanted, parse_source};

    fn rules(source: &[&str]) -> Rules {
        let w = |d: &str, t, port, what: &str| Wanted {
            destination: d.parse().unwrap(),
            transport: t,
            port,
            what: what.into(),
            found: None,
        };
        let nets: Vec<_> = source.iter().map(|s| parse_source(s).unwrap()).collect();
        Rules::new(
            vec![
                w("198.18.1.2", Transport::Tcp, 5900, "ARD: VNC"),
                w("198.18.1.2", Transport::Tcp, 5901, "ARD: VNC"),
                w("198.18.1.2", Transport::Tcp, 6000, "ARD: VNC"),
                w("2001:db8:1::2", Transport::Udp, 3283, "ARD: Net Assistant"),
            ],
            Sources::new(&nets).unwrap(),
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn chains_are_three_names() {
        let c: Chain = "inet lab forward".parse().unwrap();
        assert_eq!(
            (c.family, c.table.as_str(), c.chain.as_str()),
            (Family::Inet, "lab", "forward")
        );
        assert!(" ip  filter  FORWARD ".parse::<Chain>().is_ok());
        for bad in [
            "inet lab",
            "bridge f x",
            "inet lab fwd;drop",
            "inet 1ab x",
            "a b c d",
        ] {
            assert!(bad.parse::<Chain>().is_err(), "{bad}");
        }
    }

    #[test]
    fn inserted_rules_match_address_transport_and_port_sets() {
        let chain = Place::Insert("inet lab forward".parse().unwrap());
        let text = render(&rules(&["198.18.0.0/24", "2001:db8::/64"]), &chain).unwrap();
        let commands: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            commands,
            [
                "insert rule inet lab forward ip saddr 198.18.0.0/24 ip daddr 198.18.1.2 tcp dport { 5900-5901, 6000 } accept comment \"portprobe: ARD: VNC\"",
                "insert rule inet lab forward ip6 saddr 2001:db8::/64 ip6 daddr 2001:db8:1::2 udp dport 3283 accept comment \"portprobe: ARD: Net Assistant\"",
            ]
        );
        let e = render(
            &rules(&[]),
            &Place::Insert("ip filter forward".parse().unwrap()),
        );
        assert!(
            e.unwrap_err()
                .contains("cannot hold a rule for 2001:db8:1::2")
        );
    }

    #[test]
    fn a_table_of_its_own_says_it_overrides_no_drop() {
        let text = render(&rules(&[]), &Place::Table(Hook::Input)).unwrap();
        assert!(text.contains("# An accept here does not override a drop elsewhere"));
        assert!(text.contains("\t\ttype filter hook input priority filter; policy accept;\n"));
        assert!(text.contains("\t\tip daddr 198.18.1.2 tcp dport { 5900-5901, 6000 } accept"));
        assert!(text.contains("# from any source"));
        let none = render(
            &Rules::new(vec![], Sources::default(), vec![]).unwrap(),
            &Place::Table(Hook::Forward),
        )
        .unwrap();
        assert_eq!(
            none,
            "# portprobe rules: allow exactly these ports\n# nothing to allow: no rules\n"
        );
    }

    #[test]
    fn comments_cannot_close_their_quotes() {
        assert_eq!(quote("a\"b\\c\nd"), "\"abcd\"");
        assert_eq!(quote(&"é".repeat(100)).len(), 2 + 128);
    }
}
