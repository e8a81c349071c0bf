//! This machine's own addresses, as its interfaces list them: which
//! addresses are local (a probe to them reaches portprobe's own sockets)
//! and which are the broadcast addresses of the local subnets (a probe to
//! them would reach every host of the subnet); and the interfaces a
//! multicast DNS query can go out on.

use std::net::{IpAddr, Ipv4Addr};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::SockaddrStorage;

/// One address of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's name.
    pub interface: String,
    /// The address.
    pub address: IpAddr,
    /// The prefix length of its subnet.
    pub prefix: u8,
}

impl InterfaceAddress {
    /// The subnet's broadcast address (IPv4 subnets wider than /31).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.address {
            IpAddr::V4(a) if self.prefix < 31 => {
                let host_bits = u32::MAX >> self.prefix;
                Some(Ipv4Addr::from(u32::from(a) | host_bits))
            }
            _ => None,
        }
    }

    /// Whether `ip` lies in this address's subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix.min(32)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix.min(128)))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Every address of every interface (empty when they cannot be listed).
pub fn addresses() -> Vec<InterfaceAddress> {
    let Ok(list) = getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|ifa| {
        let address = ip_of(ifa.address.as_ref()?)?;
        let prefix = prefix_of(address, ifa.netmask.as_ref());
        Some(InterfaceAddress {
            interface: ifa.interface_name,
            address,
            prefix,
        })
    })
    .collect()
}

/// An interface that can carry multicast: up, with the MULTICAST flag, not
/// loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MulticastInterface {
    /// The interface's name.
    pub name: String,
    /// Its index (the scope id of its link-local addresses).
    pub index: u32,
    /// Its addresses, IPv4 and IPv6.
    pub addresses: Vec<InterfaceAddress>,
}

/// Every up, multicast-capable, non-loopback interface, in the order the
/// system lists them, each with its addresses (empty when they cannot be
/// listed).
pub fn multicast() -> Vec<MulticastInterface> {
    let Ok(list) = getifaddrs() else {
        return Vec::new();
    };
    let mut found: Vec<MulticastInterface> = Vec::new();
    let wanted = InterfaceFlags::IFF_UP | InterfaceFlags::IFF_MULTICAST;
    for ifa in list {
        if !ifa.flags.contains(wanted) || ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK) {
            continue;
        }
        let at = match found.iter().position(|i| i.name == ifa.interface_name) {
            Some(at) => at,
            None => {
                let Ok(index) = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()) else {
                    continue;
                };
                found.push(MulticastInterface {
                    name: ifa.interface_name.clone(),
                    index,
                    addresses: Vec::new(),
                });
                found.len() - 1
            }
        };
        if let Some(address) = ifa.address.as_ref().and_then(ip_of) {
            let prefix = prefix_of(address, ifa.netmask.as_ref());
            found[at].addresses.push(InterfaceAddress {
                interface: ifa.interface_name,
                address,
                prefix,
            });
        }
    }
    found
}

/// The prefix length a netmask gives (a host route when there is none).
fn prefix_of(address: IpAddr, netmask: Option<&SockaddrStorage>) -> u8 {
    match netmask.and_then(ip_of) {
        Some(IpAddr::V4(m)) => u32::from(m).leading_ones() as u8,
        Some(IpAddr::V6(m)) => u128::from(m).leading_ones() as u8,
        None if address.is_ipv4() => 32,
        None => 128,
    }
}

fn ip_of(s: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Whether `ip` is this machine's own: loopback, or an interface's address.
pub fn is_local(ip: IpAddr, interfaces: &[InterfaceAddress]) -> bool {
    ip.is_loopback() || interfaces.iter().any(|i| i.address == ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_addresses_of_subnets() {
        let lo = InterfaceAddress {
            interface: "lo".into(),
            address: "127.0.0.1".parse().unwrap(),
            prefix: 8,
        };
        assert_eq!(lo.broadcast(), Some(Ipv4Addr::new(127, 255, 255, 255)));
        let lan = InterfaceAddress {
            interface: "eth0".into(),
            address: "198.18.0.2".parse().unwrap(),
            prefix: 24,
        };
        assert_eq!(lan.broadcast(), Some(Ipv4Addr::new(198, 18, 0, 255)));
        let point = InterfaceAddress {
            prefix: 31,
            ..lan.clone()
        };
        assert_eq!(point.broadcast(), None);
    }

    #[test]
    fn subnets_contain_their_addresses_only() {
        let lan = InterfaceAddress {
            interface: "eth0".into(),
            address: "198.18.0.2".parse().unwrap(),
            prefix: 24,
        };
        assert!(lan.contains("198.18.0.200".parse().unwrap()));
        assert!(!lan.contains("198.18.1.2".parse().unwrap()));
        assert!(!lan.contains("::ffff:198.18.0.200".parse().unwrap()));
        let v6 = InterfaceAddress {
            interface: "eth0".into(),
            address: "2001:db8:1::1".parse().unwrap(),
            prefix: 64,
        };
        assert!(v6.contains("2001:db8:1::2".parse().unwrap()));
        assert!(!v6.contains("2001:db8:2::2".parse().unwrap()));
        let everything = InterfaceAddress {
            prefix: 0,
            ..lan.clone()
        };
        assert!(everything.contains("203.0.113.9".parse().unwrap()));
        let host = InterfaceAddress { prefix: 32, ..lan };
        assert!(host.contains("198.18.0.2".parse().unwrap()));
        assert!(!host.contains("198.18.0.3".parse().unwrap()));
    }

    #[test]
    fn multicast_interfaces_leave_out_loopback_and_know_their_index() {
        for i in multicast() {
            assert_ne!(i.name, "lo");
            assert_eq!(
                nix::net::if_::if_nametoindex(i.name.as_str()).ok(),
                Some(i.index)
            );
            assert!(
                i.addresses
                    .iter()
                    .all(|a| a.interface == i.name && !a.address.is_loopback())
            );
        }
    }

    #[test]
    fn loopback_is_listed_and_local() {
        let all = addresses();
        assert!(is_local("127.0.0.1".parse().unwrap(), &all));
        assert!(is_local("::1".parse().unwrap(), &all));
        if let Some(lo) = all
            .iter()
            .find(|a| a.address == IpAddr::V4(Ipv4Addr::LOCALHOST))
        {
            assert_eq!(lo.prefix, 8);
        }
    }
}
