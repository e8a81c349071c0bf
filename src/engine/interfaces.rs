//! This machine's own addresses, as its interfaces list them: which
//! addresses are local (a probe to them reaches portprobe's own sockets)
//! and which are the broadcast addresses of the local subnets (a probe to
//! them would reach every host of the subnet).

use std::net::{IpAddr, Ipv4Addr};

use nix::ifaddrs::getifaddrs;
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
}

/// Every address of every interface (empty when they cannot be listed).
pub fn addresses() -> Vec<InterfaceAddress> {
    let Ok(list) = getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|ifa| {
        let address = ip_of(ifa.address.as_ref()?)?;
        let prefix = match ifa.netmask.as_ref().and_then(ip_of) {
            Some(IpAddr::V4(m)) => u32::from(m).leading_ones() as u8,
            Some(IpAddr::V6(m)) => u128::from(m).leading_ones() as u8,
            None => {
                if address.is_ipv4() {
                    32
                } else {
                    128
                }
            }
        };
        Some(InterfaceAddress {
            interface: ifa.interface_name,
            address,
            prefix,
        })
    })
    .collect()
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
