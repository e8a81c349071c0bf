//! What the kernel says of each UDP datagram it hands the responder: where
//! it was sent, and how many datagrams it dropped before it.
//!
//! Replies leave from the address the hello was sent to. A socket bound to
//! every address would otherwise answer from whichever address the route
//! back chooses; on a host with several addresses that reply then belongs
//! to no flow a stateful firewall knows, and is dropped on the way. The
//! kernel says where each datagram was sent (`IP_PKTINFO`,
//! `IPV6_PKTINFO`), and the reply names that address as its source.
//!
//! A flood faster than the responder reads fills a socket's buffer, and the
//! kernel drops what arrives meanwhile, a client's hellos among them. It
//! counts them (`SO_RXQ_OVFL`), so the responder knows it lost hellos it
//! never saw, and can say so.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

use nix::libc;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
    recvmsg, sendmsg, setsockopt, sockopt,
};

/// Asks the kernel to say where each datagram was sent: `IP_PKTINFO` (an
/// IPv6 socket that also takes IPv4 reports its IPv4 datagrams this way),
/// and `IPV6_RECVPKTINFO` on an IPv6 socket; and how many it dropped.
pub fn enable<F: std::os::fd::AsFd>(socket: &F, ipv6: bool, dual_stack: bool) -> io::Result<()> {
    setsockopt(socket, sockopt::RxqOvfl, &1)?;
    if !ipv6 || dual_stack {
        setsockopt(socket, sockopt::Ipv4PacketInfo, &true)?;
    }
    if ipv6 {
        setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)?;
    }
    Ok(())
}

/// Where a datagram was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// To this IPv4 address.
    V4(Ipv4Addr),
    /// To this IPv6 address, on this interface.
    V6(Ipv6Addr, u32),
}

/// One datagram received.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// Bytes read (at most the buffer's length).
    pub len: usize,
    /// Who sent it.
    pub from: SocketAddr,
    /// Where it was sent, when the kernel said.
    pub to: Option<Local>,
    /// Datagrams the kernel dropped on this socket since it was made (a
    /// full buffer), when it said.
    pub dropped: Option<u32>,
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
}

/// Reads one datagram without blocking.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo, libc::in6_pktinfo, u32);
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)?;
    let from = msg
        .address
        .as_ref()
        .and_then(std_addr)
        .ok_or_else(|| io::Error::other("a datagram without a sender"))?;
    let mut to = None;
    let mut dropped = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    to = Some(Local::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    to = Some(Local::V6(
                        Ipv6Addr::from(info.ipi6_addr.s6_addr),
                        info.ipi6_ifindex,
                    ));
                }
                ControlMessageOwned::RxqOvfl(n) => dropped = Some(n),
                _ => {}
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        from,
        to,
        dropped,
    })
}

/// Sends `data` to `to` from `local` (where the hello was sent), without
/// blocking.
pub fn send(fd: RawFd, data: &[u8], to: SocketAddr, local: Option<Local>) -> io::Result<usize> {
    let iov = [io::IoSlice::new(data)];
    let v4_info;
    let v6_info;
    let cmsgs: Vec<ControlMessage<'_>> = match local {
        Some(Local::V4(a)) => {
            v4_info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(a).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            vec![ControlMessage::Ipv4PacketInfo(&v4_info)]
        }
        Some(Local::V6(a, ifindex)) => {
            v6_info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                ipi6_ifindex: ifindex,
            };
            vec![ControlMessage::Ipv6PacketInfo(&v6_info)]
        }
        None => Vec::new(),
    };
    let sent = match to {
        SocketAddr::V4(a) => sendmsg(
            fd,
            &iov,
            &cmsgs,
            MsgFlags::MSG_DONTWAIT,
            Some(&SockaddrIn::from(a)),
        ),
        SocketAddr::V6(a) => sendmsg(
            fd,
            &iov,
            &cmsgs,
            MsgFlags::MSG_DONTWAIT,
            Some(&SockaddrIn6::from(a)),
        ),
    };
    Ok(sent?)
}
