//! Binding every port of the responder before anything is served: the
//! open-file limit raised (or a clear refusal naming it), each port bound
//! on each address, and the ports that cannot be bound set aside with the
//! reason (held by another program, or below 1024 without the privilege).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Result, bail};
use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use socket2::{Domain, Protocol, Socket, Type};

use super::holder::{Holder, Holders};
use crate::port::Transport;

/// Descriptors kept free for the standard streams and the runtime.
const HEADROOM: u64 = 64;
/// The fewest TCP connections worth serving at once; below this the
/// open-file limit is too small for the ports asked for.
const MIN_CONNECTIONS: u64 = 32;
/// The listen backlog of each TCP port: room for a client's whole sweep of
/// connections to wait while the responder takes them (the kernel caps it
/// at `net.core.somaxconn`, 4 096 by default).
const BACKLOG: i32 = 4096;

/// Where the responder listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// Every address of the host, IPv4 and IPv6 (one dual-stack socket per
    /// port where IPv6 exists, else IPv4 only).
    Every,
    /// These addresses only.
    These(Vec<IpAddr>),
}

/// A port that is bound.
#[derive(Debug)]
pub struct Bound {
    /// Its transport.
    pub transport: Transport,
    /// Its port.
    pub port: u16,
    /// The socket: listening for TCP, bound for UDP; non-blocking.
    pub socket: Socket,
}

/// Why a port was not bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Another program holds it.
    Held(Holder),
    /// A port below the unprivileged range, without root or
    /// CAP_NET_BIND_SERVICE.
    NeedsPrivilege,
    /// Any other refusal, with the system's message.
    Failed(String),
}

/// A port that was not bound on one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its transport.
    pub transport: Transport,
    /// Its port.
    pub port: u16,
    /// The address it was to be bound on.
    pub address: IpAddr,
    /// Why not.
    pub why: Skip,
}

/// What binding gave.
#[derive(Debug)]
pub struct Bindings {
    /// The bound sockets.
    pub bound: Vec<Bound>,
    /// The ports set aside.
    pub skipped: Vec<Skipped>,
    /// The addresses bound, as they were bound (`::` for every address).
    pub addresses: Vec<IpAddr>,
    /// Whether a socket bound to `::` also takes IPv4.
    pub dual_stack: bool,
    /// TCP connections that may be open at once within the open-file
    /// limit (at most the `connections` asked for).
    pub connections: usize,
}

/// Binds every port on every address, with descriptors left for up to
/// `connections` accepted TCP connections at once.
pub fn bind_all(
    addresses: &Addresses,
    ports: &[(Transport, u16)],
    connections: usize,
) -> Result<Bindings> {
    let (addresses, dual_stack) = match addresses {
        Addresses::Every if ipv6_available() => (vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)], true),
        Addresses::Every => (vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)], false),
        Addresses::These(list) => (list.clone(), false),
    };
    let sockets = (ports.len() * addresses.len()) as u64;
    let limit = raise_descriptors(sockets + HEADROOM + connections as u64);
    let needed = sockets + HEADROOM + MIN_CONNECTIONS;
    if limit.0 < needed {
        bail!(
            "{sockets} sockets need {needed} open files, but the limit is {} (hard limit {}): raise it with `ulimit -n {needed}` (LimitNOFILE={needed} in a systemd unit), or listen on fewer ports",
            limit.0,
            limit.1
        );
    }
    let connections = usize::try_from(limit.0 - sockets - HEADROOM)
        .unwrap_or(usize::MAX)
        .min(connections);
    let mut bound = Vec::with_capacity(ports.len() * addresses.len());
    let mut skipped = Vec::new();
    let mut holders: Option<Holders> = None;
    for &address in &addresses {
        for &(transport, port) in ports {
            match bind_one(transport, SocketAddr::new(address, port), dual_stack) {
                Ok(socket) => bound.push(Bound {
                    transport,
                    port,
                    socket,
                }),
                Err(e) => {
                    let why = match e.raw_os_error().map(Errno::from_raw) {
                        Some(Errno::EADDRINUSE) => Skip::Held(
                            holders
                                .get_or_insert_with(Holders::read)
                                .of(transport, port),
                        ),
                        Some(Errno::EACCES) => Skip::NeedsPrivilege,
                        Some(Errno::EADDRNOTAVAIL) => bail!(
                            "cannot listen on {address}: it is not an address of this host (give one of its addresses to --bind, or leave --bind out for every address)"
                        ),
                        _ => Skip::Failed(e.to_string()),
                    };
                    skipped.push(Skipped {
                        transport,
                        port,
                        address,
                        why,
                    });
                }
            }
        }
    }
    if bound.is_empty() && !ports.is_empty() {
        bail!(
            "could not bind any of the {} ports (the first: {}): nothing to answer on",
            ports.len(),
            skipped.first().map_or_else(String::new, |s| format!(
                "{} {}",
                s.transport.label(),
                s.port
            ))
        );
    }
    Ok(Bindings {
        bound,
        skipped,
        addresses,
        dual_stack,
        connections,
    })
}

fn ipv6_available() -> bool {
    Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).is_ok()
}

fn bind_one(transport: Transport, at: SocketAddr, dual_stack: bool) -> io::Result<Socket> {
    let (ty, proto) = match transport {
        Transport::Tcp => (Type::STREAM, Protocol::TCP),
        Transport::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let socket = Socket::new(Domain::for_address(at), ty, Some(proto))?;
    if at.is_ipv6() {
        socket.set_only_v6(!dual_stack)?;
    }
    if transport == Transport::Tcp {
        // Rebinding right after a restart must not wait for TIME_WAIT; on
        // Linux this never lets two listeners share a port.
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    if transport == Transport::Udp {
        super::pktinfo::enable(&socket, at.is_ipv6(), dual_stack)?;
    }
    socket.bind(&at.into())?;
    if transport == Transport::Tcp {
        socket.listen(BACKLOG)?;
    }
    Ok(socket)
}

/// Raises the soft open-file limit towards `wanted` (the hard limit too,
/// when this process may) and returns the (soft, hard) limits then.
fn raise_descriptors(wanted: u64) -> (u64, u64) {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return (0, 0);
    };
    if soft >= wanted {
        return (soft, hard);
    }
    if hard < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        return (wanted, wanted);
    }
    let soft_now = wanted.min(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, soft_now, hard).is_ok() {
        (soft_now, hard)
    } else {
        (soft, hard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_is_skipped_with_its_holder_and_the_rest_bound() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let free_port = free.local_addr().unwrap().port();
        drop(free);
        let b = bind_all(
            &Addresses::These(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            &[(Transport::Tcp, port), (Transport::Udp, free_port)],
            8,
        )
        .unwrap();
        assert_eq!(b.bound.len(), 1);
        assert_eq!(b.bound[0].port, free_port);
        assert_eq!(b.skipped.len(), 1);
        assert_eq!(b.skipped[0].port, port);
        assert!(
            matches!(&b.skipped[0].why, Skip::Held(Holder::Process { pid, .. }) if *pid == std::process::id()),
            "{:?}",
            b.skipped
        );
    }

    #[test]
    fn an_address_of_another_host_is_refused() {
        let e = bind_all(
            &Addresses::These(vec!["192.0.2.1".parse().unwrap()]),
            &[(Transport::Udp, 40000)],
            8,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not an address of this host"), "{e}");
    }
}
