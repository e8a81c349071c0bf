//! ICMP errors read from a socket's error queue.
//!
//! With `IP_RECVERR` / `IPV6_RECVERR` set, Linux queues every ICMP error that
//! concerns a socket, with its type, code and the address of the router or
//! host that sent it (the "offender"), for TCP and for unconnected UDP
//! sockets alike. Reading it needs no raw socket and no privileges.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};

use super::outcome::IcmpCode;

/// `SO_EE_ORIGIN_ICMP`: the error came from an ICMP message.
const ORIGIN_ICMP: u8 = 2;
/// `SO_EE_ORIGIN_ICMP6`: the error came from an ICMPv6 message.
const ORIGIN_ICMP6: u8 = 3;

/// One ICMP error from the error queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// Type and code.
    pub icmp: IcmpCode,
    /// Who sent it.
    pub from: Option<IpAddr>,
    /// The destination of the datagram or segment that caused it.
    pub destination: Option<SocketAddr>,
}

/// Asks the kernel to queue ICMP errors on this socket.
pub fn enable_recverr<F: AsFd>(fd: &F, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt(fd, sockopt::Ipv6RecvErr, &true)?;
    } else {
        setsockopt(fd, sockopt::Ipv4RecvErr, &true)?;
    }
    Ok(())
}

/// Drains the error queue and returns the ICMP errors it held, oldest first.
/// Errors of local origin (e.g. a too-large datagram) are skipped.
pub fn drain<F: AsRawFd>(fd: &F) -> Vec<IcmpError> {
    let mut out = Vec::new();
    // A bounded loop: the queue holds at most a few entries per probe socket.
    for _ in 0..64 {
        let mut data = [0u8; 64];
        let mut iov = [io::IoSliceMut::new(&mut data)];
        let mut cmsg = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
        let msg = match recvmsg::<SockaddrStorage>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(msg) => msg,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        };
        let destination = msg.address.as_ref().and_then(sockaddr_to_std);
        let Ok(cmsgs) = msg.cmsgs() else { continue };
        for c in cmsgs {
            let (err, from) = match c {
                ControlMessageOwned::Ipv4RecvErr(err, from) => (
                    err,
                    from.map(|a| {
                        IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))
                    }),
                ),
                ControlMessageOwned::Ipv6RecvErr(err, from) => (
                    err,
                    from.map(|a| ipv6_to_ip(std::net::Ipv6Addr::from(a.sin6_addr.s6_addr))),
                ),
                _ => continue,
            };
            let v6 = match err.ee_origin {
                ORIGIN_ICMP => false,
                ORIGIN_ICMP6 => true,
                _ => continue,
            };
            out.push(IcmpError {
                icmp: IcmpCode {
                    v6,
                    kind: err.ee_type,
                    code: err.ee_code,
                },
                from: from.filter(|a| !a.is_unspecified()),
                destination,
            });
        }
    }
    out
}

/// An IPv4-mapped IPv6 offender (as a dual-stack socket reports it) becomes IPv4.
fn ipv6_to_ip(a: std::net::Ipv6Addr) -> IpAddr {
    match a.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(a),
    }
}

fn sockaddr_to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::new(IpAddr::V4(v4.ip()), v4.port()));
    }
    if let Some(v6) = a.as_sockaddr_in6() {
        return Some(SocketAddr::new(ipv6_to_ip(v6.ip()), v6.port()));
    }
    None
}
