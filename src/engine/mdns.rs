//! Resolving a `.local` name by multicast DNS, for machines whose system
//! resolver cannot (no nss-mdns, as in most containers): a one-shot query
//! (RFC 6762 section 5.1, built by [`crate::wire::mdns_name`]) sent to
//! 224.0.0.251 and ff02::fb, port 5353, on every up, multicast-capable,
//! non-loopback interface, and the unicast answers to it.
//!
//! Each interface and family gets its own unconnected socket on an
//! ephemeral port, with `IP_MULTICAST_IF` / `IPV6_MULTICAST_IF` naming the
//! interface and a multicast TTL / hop limit of 255, as RFC 6762 section 11
//! asks. Nothing is sent anywhere but the two groups. Responders answer our
//! port by unicast (section 6.7), so an answer on an interface's socket
//! comes from a device that heard the query on that interface's link; a
//! link-local IPv6 address it gives gets that interface as its scope.
//!
//! An answer counts when it comes from the link: with TTL (hop limit) 255,
//! which no router forwards unchanged, or from an address on the
//! interface's subnets (or IPv4 / IPv6 link-local); never from our own
//! socket. The query is sent again once when nothing answers within
//! [`QUERY_TIMEOUT`]; once something has answered, other interfaces and
//! families get [`LINGER`] more to answer too.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hickory_proto::rr::Name;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::Target;
use super::interfaces::MulticastInterface;
use crate::wire::mdns_name;

/// How long one query waits for a first answer before it is sent again.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Queries sent when nothing answers: the first and one retry.
pub const TRIES: u32 = 2;

/// After the first answer, how long the other interfaces and families may
/// still answer.
pub const LINGER: Duration = Duration::from_millis(250);

/// The mDNS port and groups (RFC 6762 section 3).
const PORT: u16 = 5353;
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

/// The TTL and hop limit of mDNS packets (RFC 6762 section 11).
const LINK_TTL: u8 = 255;

/// The most interfaces asked, and datagrams read per name, so that a busy
/// or hostile link costs a bounded amount of work.
const MAX_INTERFACES: usize = 32;
const MAX_DATAGRAMS: usize = 256;

/// The addresses multicast DNS found for a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Every address the answers gave, in the order they came, without
    /// duplicates.
    pub targets: Vec<Target>,
    /// The interfaces answers came in on, in the system's order.
    pub interfaces: Vec<String>,
}

/// Why multicast DNS found no address.
#[derive(Debug)]
pub enum Unresolved {
    /// This computer has no up, multicast-capable, non-loopback interface.
    NoInterface,
    /// The query went out on these interfaces and nothing answered.
    Unanswered {
        /// The interfaces asked on.
        interfaces: Vec<String>,
    },
    /// The query could not be sent on any interface.
    Unsent {
        /// The interfaces tried.
        interfaces: Vec<String>,
        /// The last error.
        error: io::Error,
    },
}

/// One interface's socket of one family.
struct Asker<'a> {
    interface: &'a MulticastInterface,
    socket: UdpSocket,
    group: SocketAddr,
    port: u16,
}

/// A socket on an ephemeral port that sends to `interface`'s link only,
/// with TTL 255, and reports the TTL of what it receives. `None` when the
/// interface has no address of the family.
fn open(interface: &MulticastInterface, v6: bool) -> io::Result<Option<Asker<'_>>> {
    let socket = if v6 {
        if !interface.addresses.iter().any(|a| a.address.is_ipv6()) {
            return Ok(None);
        }
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_only_v6(true)?;
        s.bind(&SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0).into())?;
        s.set_multicast_if_v6(interface.index)?;
        s.set_multicast_hops_v6(u32::from(LINK_TTL))?;
        setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
        s
    } else {
        let Some(IpAddr::V4(address)) = interface
            .addresses
            .iter()
            .map(|a| a.address)
            .find(IpAddr::is_ipv4)
        else {
            return Ok(None);
        };
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.bind(&SocketAddr::new(address.into(), 0).into())?;
        s.set_multicast_if_v4(&address)?;
        s.set_multicast_ttl_v4(u32::from(LINK_TTL))?;
        setsockopt(&s, sockopt::Ipv4RecvTtl, &true)?;
        s
    };
    socket.set_nonblocking(true)?;
    let socket = UdpSocket::from_std(socket.into())?;
    let port = socket.local_addr()?.port();
    let group = if v6 {
        SocketAddr::V6(SocketAddrV6::new(GROUP_V6, PORT, 0, interface.index))
    } else {
        SocketAddr::new(GROUP_V4.into(), PORT)
    };
    Ok(Some(Asker {
        interface,
        socket,
        group,
        port,
    }))
}

/// One datagram as received: its bytes, sender and TTL (hop limit).
struct Datagram {
    bytes: Vec<u8>,
    from: Option<SocketAddr>,
    hops: Option<u8>,
}

/// Reads one datagram with its TTL. One longer than an mDNS message may be
/// comes back empty, and is refused like any other non-answer.
fn read(fd: &impl AsRawFd) -> io::Result<Datagram> {
    let mut buf = vec![0u8; mdns_name::MAX_MESSAGE + 1];
    let mut cmsg = nix::cmsg_space!(nix::libc::c_int);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )?;
    let from = msg.address.as_ref().and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
            })
    });
    let hops = msg.cmsgs().ok().and_then(|mut all| {
        all.find_map(|c| match c {
            ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                u8::try_from(t).ok()
            }
            _ => None,
        })
    });
    let oversized = msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.bytes > mdns_name::MAX_MESSAGE;
    let len = if oversized { 0 } else { msg.bytes };
    buf.truncate(len);
    Ok(Datagram {
        bytes: buf,
        from,
        hops,
    })
}

/// Waits for and reads the next datagram of `asker`'s socket.
async fn next(index: usize, asker: &Asker<'_>) -> (usize, io::Result<Datagram>) {
    let read = asker
        .socket
        .async_io(Interest::READABLE, || read(&asker.socket))
        .await;
    (index, read)
}

/// Whether an answer from `from`, received with TTL `hops` on the socket
/// bound to `port` for `interface`, comes from a device on that link (see
/// the module documentation).
fn on_link(from: SocketAddr, hops: Option<u8>, port: u16, interface: &MulticastInterface) -> bool {
    let ip = from.ip();
    let ours = ip.is_loopback() || interface.addresses.iter().any(|a| a.address == ip);
    if ours && from.port() == port {
        return false;
    }
    if hops == Some(LINK_TTL) {
        return true;
    }
    let in_subnet = || interface.addresses.iter().any(|a| a.contains(ip));
    match from {
        SocketAddr::V4(v4) => v4.ip().is_link_local() || in_subnet(),
        SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() => v6.scope_id() == interface.index,
        SocketAddr::V6(_) => in_subnet(),
    }
}

/// `ip` as an address to probe on `interface`'s link: an IPv4-mapped IPv6
/// address as IPv4, a link-local IPv6 address with the interface's scope.
fn target(ip: IpAddr, interface: &MulticastInterface) -> Target {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Target::new(IpAddr::V4(v4)),
            None if v6.is_unicast_link_local() => Target {
                ip,
                scope_id: interface.index,
            },
            None => Target::new(ip),
        },
        v4 => Target::new(v4),
    }
}

/// Sends `query` from every socket to its group, adds the index of each
/// interface it went out on to `asked`, and keeps the last error in
/// `error`.
async fn send_all(
    askers: &[Asker<'_>],
    query: &[u8],
    asked: &mut Vec<u32>,
    error: &mut Option<io::Error>,
) {
    for asker in askers {
        match asker.socket.send_to(query, asker.group).await {
            Ok(_) if !asked.contains(&asker.interface.index) => asked.push(asker.interface.index),
            Ok(_) => {}
            Err(e) => *error = Some(e),
        }
    }
}

/// Asks the devices on every link of `interfaces` (see
/// [`super::interfaces::multicast`]) for `name`'s addresses.
pub async fn resolve(name: &Name, interfaces: &[MulticastInterface]) -> Result<Found, Unresolved> {
    let interfaces = &interfaces[..interfaces.len().min(MAX_INTERFACES)];
    if interfaces.is_empty() {
        return Err(Unresolved::NoInterface);
    }
    // The names of the interfaces whose index is in `among`, in the
    // system's order.
    let names = |among: &[u32]| -> Vec<String> {
        interfaces
            .iter()
            .filter(|i| among.contains(&i.index))
            .map(|i| i.name.clone())
            .collect()
    };
    let tried: Vec<u32> = interfaces.iter().map(|i| i.index).collect();
    let id = rand::random::<u16>();
    let Some(query) = mdns_name::query(id, name) else {
        return Err(Unresolved::Unsent {
            interfaces: names(&tried),
            error: io::Error::other("the name is too long for a DNS message"),
        });
    };
    let mut error = None;
    let mut askers: Vec<Asker<'_>> = Vec::new();
    for interface in interfaces {
        for v6 in [false, true] {
            match open(interface, v6) {
                Ok(Some(asker)) => askers.push(asker),
                Ok(None) => {}
                Err(e) => error = Some(e),
            }
        }
    }
    let mut asked: Vec<u32> = Vec::new();
    send_all(&askers, &query, &mut asked, &mut error).await;
    if asked.is_empty() {
        return Err(Unresolved::Unsent {
            interfaces: names(&tried),
            error: error.unwrap_or_else(|| io::Error::other("no interface has an IP address")),
        });
    }
    let mut pending: FuturesUnordered<_> = askers
        .iter()
        .enumerate()
        .map(|(i, asker)| next(i, asker))
        .collect();
    let mut found: Vec<Target> = Vec::new();
    let mut answered: Vec<u32> = Vec::new();
    let mut until = Instant::now() + QUERY_TIMEOUT;
    let mut tries = 1;
    let mut read = 0;
    loop {
        let (i, datagram) = match tokio::time::timeout_at(until, pending.next()).await {
            Err(_) if found.is_empty() && tries < TRIES => {
                tries += 1;
                send_all(&askers, &query, &mut asked, &mut error).await;
                until = Instant::now() + QUERY_TIMEOUT;
                continue;
            }
            Err(_) | Ok(None) => break,
            // A socket that cannot be read is left out from now on.
            Ok(Some((_, Err(_)))) => continue,
            Ok(Some((i, Ok(datagram)))) => (i, datagram),
        };
        read += 1;
        if read < MAX_DATAGRAMS {
            pending.push(next(i, &askers[i]));
        }
        let asker = &askers[i];
        let Some(from) = datagram.from else {
            continue;
        };
        if !on_link(from, datagram.hops, asker.port, asker.interface) {
            continue;
        }
        let Some(addresses) = mdns_name::answer(&datagram.bytes, id, name) else {
            continue;
        };
        if found.is_empty() {
            until = until.min(Instant::now() + LINGER);
        }
        if !answered.contains(&asker.interface.index) {
            answered.push(asker.interface.index);
        }
        for ip in addresses {
            if found.len() < mdns_name::MAX_ADDRESSES && !found.iter().any(|t| t.ip == ip) {
                found.push(target(ip, asker.interface));
            }
        }
    }
    if found.is_empty() {
        return Err(Unresolved::Unanswered {
            interfaces: names(&asked),
        });
    }
    Ok(Found {
        targets: found,
        interfaces: names(&answered),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::interfaces::InterfaceAddress;

    fn eth0() -> MulticastInterface {
        let address = |a: &str, prefix| InterfaceAddress {
            interface: "eth0".into(),
            address: a.parse().unwrap(),
            prefix,
        };
        MulticastInterface {
            name: "eth0".into(),
            index: 7,
            addresses: vec![
                address("192.0.2.2", 24),
                address("2001:db8:1::1", 64),
                address("fe80::1", 64),
            ],
        }
    }

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn answers_with_ttl_255_count_from_anywhere_but_our_own_socket() {
        let eth0 = eth0();
        assert!(on_link(at("203.0.113.5:5353"), Some(255), 40000, &eth0));
        assert!(on_link(at("[2001:db8:9::2]:5353"), Some(255), 40000, &eth0));
        assert!(
            on_link(at("192.0.2.2:5353"), Some(255), 40000, &eth0),
            "a responder on this machine"
        );
        assert!(!on_link(at("192.0.2.2:40000"), Some(255), 40000, &eth0));
        assert!(!on_link(at("127.0.0.1:40000"), Some(255), 40000, &eth0));
        assert!(!on_link(at("[fe80::1%7]:40000"), Some(255), 40000, &eth0));
    }

    #[test]
    fn answers_with_a_lower_ttl_count_only_from_the_links_addresses() {
        let eth0 = eth0();
        assert!(on_link(at("192.0.2.77:5353"), Some(64), 40000, &eth0));
        assert!(on_link(at("169.254.3.4:5353"), Some(64), 40000, &eth0));
        assert!(on_link(at("[2001:db8:1::77]:5353"), Some(64), 40000, &eth0));
        assert!(on_link(at("[fe80::77%7]:5353"), None, 40000, &eth0));
        assert!(
            !on_link(at("[fe80::77%8]:5353"), Some(64), 40000, &eth0),
            "another link"
        );
        assert!(!on_link(at("198.51.100.7:5353"), Some(254), 40000, &eth0));
        assert!(!on_link(at("[2001:db8:9::2]:5353"), None, 40000, &eth0));
    }

    #[test]
    fn link_local_ipv6_answers_get_the_interfaces_scope() {
        let eth0 = eth0();
        assert_eq!(
            target("fe80::77".parse().unwrap(), &eth0),
            Target {
                ip: "fe80::77".parse().unwrap(),
                scope_id: 7
            }
        );
        assert_eq!(target("2001:db8:1::77".parse().unwrap(), &eth0).scope_id, 0);
        assert_eq!(
            target("::ffff:192.0.2.9".parse().unwrap(), &eth0),
            Target::new("192.0.2.9".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn no_interface_is_said_so_and_sends_nothing() {
        let name = mdns_name::name("server.local").unwrap();
        assert!(matches!(
            resolve(&name, &[]).await,
            Err(Unresolved::NoInterface)
        ));
    }
}
