//! The targets an exporter may probe: networks (CIDR) and host names. An
//! exporter anyone can reach is a scanning proxy for them, so a target is
//! probed only when every address it resolves to is inside an allowed
//! network, or when it is an allowed host name itself; anything else is
//! refused before a packet is sent. An allowed name's addresses are taken
//! as the system resolver gives them, but not when they were learned by
//! multicast DNS, where any device on the link can answer: those must be
//! inside an allowed network (or be an allowed address) themselves.

use std::net::IpAddr;

/// One entry of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    /// A network: its address and prefix length.
    Net(IpAddr, u8),
    /// A host name, compared without case and without a final dot.
    Name(String),
}

/// The allow-list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
    any: bool,
}

fn normal_name(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The network `addr`/`len`; an IPv4-mapped one (`::ffff:192.0.2.0/120`)
/// as the IPv4 network it is, as addresses are compared.
fn net(addr: IpAddr, len: u8) -> Entry {
    match addr {
        IpAddr::V6(v6) if len >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => Entry::Net(IpAddr::V4(v4), len - 96),
            None => Entry::Net(addr, len),
        },
        _ => Entry::Net(addr, len),
    }
}

/// Whether `ip` is inside `net`/`len`.
fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl AllowList {
    /// Every target allowed (`--allow-any`).
    pub fn any() -> AllowList {
        AllowList {
            entries: Vec::new(),
            any: true,
        }
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        !self.any && self.entries.is_empty()
    }

    /// Adds `spec`: a CIDR (`192.0.2.0/24`, `2001:db8::/32`), an address,
    /// or a host name; several may be given separated by commas. Nothing is
    /// added when one of them is none of these.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let mut added = Vec::new();
        for item in spec.split(',').map(str::trim) {
            let entry = if let Some((addr, len)) = item.split_once('/') {
                let addr: IpAddr = addr.parse().map_err(|_| bad(item))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let len: u8 = len
                    .parse()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| bad(item))?;
                net(addr, len)
            } else if let Ok(addr) = item.parse::<IpAddr>() {
                net(addr, if addr.is_ipv4() { 32 } else { 128 })
            } else if valid_name(item.trim_end_matches('.')) {
                Entry::Name(normal_name(item))
            } else {
                return Err(bad(item));
            };
            added.push(entry);
        }
        self.entries.extend(added);
        Ok(())
    }

    /// Whether `host` is allowed by name (or everything is).
    pub fn names(&self, host: &str) -> bool {
        self.any || self.entries.contains(&Entry::Name(normal_name(host)))
    }

    /// Whether `host`, which resolved to `addresses` (by multicast DNS
    /// when `by_mdns`), may be probed; the refusal names the first address
    /// outside the list.
    pub fn permits(&self, host: &str, addresses: &[IpAddr], by_mdns: bool) -> Result<(), Refused> {
        if self.any {
            return Ok(());
        }
        if self.names(host) && !by_mdns {
            return Ok(());
        }
        match addresses.iter().find(|&&ip| {
            !self
                .entries
                .iter()
                .any(|e| matches!(*e, Entry::Net(net, len) if contains(net, len, ip)))
        }) {
            None if !addresses.is_empty() => Ok(()),
            None => Err(Refused { address: None }),
            Some(&ip) => Err(Refused { address: Some(ip) }),
        }
    }
}

/// A target outside the allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The first address outside the list (none when the target had none).
    pub address: Option<IpAddr>,
}

fn bad(item: &str) -> String {
    format!(
        "`{item}` is not a network, an address or a host name (expected e.g. 192.0.2.0/24, 2001:db8::/48, 192.0.2.10 or server.example)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn networks_addresses_and_names() {
        let mut a = AllowList::default();
        assert!(a.is_empty());
        a.add("198.18.1.0/24, 2001:db8:1::/48").unwrap();
        a.add("192.0.2.7").unwrap();
        a.add("Server.Example.").unwrap();
        assert!(
            a.permits("198.18.1.2", &ips(&["198.18.1.2"]), false)
                .is_ok()
        );
        assert!(
            a.permits("x", &ips(&["198.18.1.2", "2001:db8:1::9"]), false)
                .is_ok()
        );
        assert!(a.permits("x", &ips(&["::ffff:198.18.1.9"]), false).is_ok());
        assert!(a.permits("x", &ips(&["192.0.2.7"]), false).is_ok());
        assert_eq!(
            a.permits("x", &ips(&["198.18.1.2", "198.18.2.1"]), false),
            Err(Refused {
                address: Some("198.18.2.1".parse().unwrap())
            })
        );
        assert!(a.permits("x", &ips(&["192.0.2.8"]), false).is_err());
        assert_eq!(a.permits("x", &[], false), Err(Refused { address: None }));
        // An allowed name is allowed wherever it points.
        assert!(
            a.permits("server.example", &ips(&["10.9.9.9"]), false)
                .is_ok()
        );
        assert!(
            a.permits("SERVER.example.", &ips(&["10.9.9.9"]), false)
                .is_ok()
        );
        assert!(
            a.permits("other.example", &ips(&["10.9.9.9"]), false)
                .is_err()
        );
        assert!(a.names("server.example") && !a.names("other.example"));
        // IPv4-mapped entries are the IPv4 networks they name.
        a.add("::ffff:203.0.113.0/120").unwrap();
        assert!(a.permits("x", &ips(&["203.0.113.9"]), false).is_ok());
        assert!(a.permits("x", &ips(&["::ffff:203.0.113.9"]), false).is_ok());
        // A list with a bad item adds nothing.
        assert!(a.add("198.51.100.0/24,<x>").is_err());
        assert!(a.permits("x", &ips(&["198.51.100.1"]), false).is_err());
    }

    #[test]
    fn addresses_learned_by_multicast_dns_must_be_allowed_themselves() {
        let mut a = AllowList::default();
        a.add("printer.local, 198.18.1.0/24, 192.0.2.7").unwrap();
        assert!(a.names("printer.local"));
        for allowed in [
            &["198.18.1.2"][..],
            &["192.0.2.7"],
            &["198.18.1.9", "192.0.2.7"],
        ] {
            assert!(
                a.permits("printer.local", &ips(allowed), true).is_ok(),
                "{allowed:?}"
            );
        }
        for (forged, first) in [
            (&["127.0.0.1"][..], "127.0.0.1"),
            (&["198.18.1.2", "10.0.0.1"], "10.0.0.1"),
            (&["fe80::1"], "fe80::1"),
        ] {
            assert_eq!(
                a.permits("printer.local", &ips(forged), true),
                Err(Refused {
                    address: Some(first.parse().unwrap())
                }),
                "{forged:?}"
            );
        }
        let mut link = AllowList::default();
        link.add("printer.local,fe80::/10").unwrap();
        assert!(
            link.permits("printer.local", &ips(&["fe80::1"]), true)
                .is_ok()
        );
        assert!(
            AllowList::any()
                .permits("printer.local", &ips(&["10.0.0.1"]), true)
                .is_ok()
        );
    }

    #[test]
    fn prefix_edges() {
        let mut a = AllowList::default();
        a.add("0.0.0.0/0").unwrap();
        assert!(a.permits("x", &ips(&["203.0.113.1"]), false).is_ok());
        assert!(a.permits("x", &ips(&["2001:db8::1"]), false).is_err());
        let mut a = AllowList::default();
        a.add("::/0").unwrap();
        assert!(a.permits("x", &ips(&["2001:db8::1"]), false).is_ok());
        assert!(AllowList::any().permits("x", &[], false).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::net::Ipv6Addr;

        /// Text in the alphabet of allow-lists, and a little beyond.
        fn spec_like() -> impl Strategy<Value = String> {
            proptest::string::string_regex("[0-9a-fA-F.:/, _-]{0,60}|[a-z0-9.,-]{0,300}").unwrap()
        }

        proptest! {
            #[test]
            fn any_spec_is_added_whole_or_refused_naming_the_item(
                spec in prop_oneof![spec_like(), ".{0,80}"],
            ) {
                let mut a = AllowList::default();
                a.add("192.0.2.7").unwrap();
                let before = a.clone();
                match a.add(&spec) {
                    Ok(()) => {
                        let items: Vec<&str> = spec.split(',').map(str::trim).collect();
                        prop_assert_eq!(a.entries.len(), before.entries.len() + items.len());
                        for item in items {
                            if let Ok(ip) = item.parse::<IpAddr>() {
                                prop_assert!(a.permits("x", &[ip], true).is_ok(), "{}", item);
                            } else if !item.contains('/') {
                                prop_assert!(a.names(item), "{}", item);
                            }
                        }
                    }
                    Err(why) => {
                        prop_assert_eq!(&a, &before, "nothing added");
                        prop_assert!(why.contains("is not a network, an address or a host name"), "{}", why);
                        prop_assert!(why.len() <= spec.len() + 200);
                    }
                }
            }

            #[test]
            fn a_network_holds_its_addresses_and_no_others(
                bits in any::<u128>(),
                len in 0u8..=140,
                flip in any::<u8>(),
                v4 in any::<bool>(),
            ) {
                let (ip, max): (IpAddr, u8) = if v4 {
                    (IpAddr::V4((bits as u32).into()), 32)
                } else {
                    (IpAddr::V6(Ipv6Addr::from(bits)), 128)
                };
                let mut a = AllowList::default();
                let added = a.add(&format!("{ip}/{len}"));
                prop_assert_eq!(added.is_ok(), len <= max);
                // An IPv4 network written IPv4-mapped is the same network.
                if let (IpAddr::V4(v), true) = (ip, len <= 32) {
                    let mut mapped = AllowList::default();
                    mapped.add(&format!("{}/{}", v.to_ipv6_mapped(), len + 96)).unwrap();
                    prop_assert_eq!(&mapped, &a);
                }
                if added.is_ok() {
                    prop_assert!(a.permits("x", &[ip], false).is_ok());
                    // An address differing in a bit of the prefix is outside.
                    if len > 0 {
                        let bit = u32::from(flip % len);
                        let other = match ip {
                            IpAddr::V4(v) => IpAddr::V4((u32::from(v) ^ (1 << (31 - bit))).into()),
                            IpAddr::V6(v) => IpAddr::V6((u128::from(v) ^ (1 << (127 - bit))).into()),
                        };
                        prop_assert_eq!(
                            a.permits("x", &[other], false),
                            Err(Refused { address: Some(other) })
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut a = AllowList::default();
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "a b",
            "",
            "-/8",
            "a..b",
            "<x>",
        ] {
            assert!(a.add(bad).is_err(), "{bad}");
        }
    }
}
