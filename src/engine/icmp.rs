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

/// Real ICMP errors, of any type and code, crafted with a raw socket on
/// loopback and read back from the error queue of the UDP socket whose
/// datagram they quote: the kernel's control messages are input from
/// outside too (the type, code and offender come from the network).
#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};

    use super::*;

    /// Raw sockets need root; elsewhere the test says why it did not run
    /// (and fails under CI, which is root).
    fn may_craft(name: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(!ci, "{name}: needs root (a raw ICMP socket) under CI");
        eprintln!("skipped {name}: crafting ICMP errors needs root (a raw socket)");
        false
    }

    fn checksum(bytes: &[u8]) -> u16 {
        let mut sum: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// A UDP socket with its error queue on, that has sent one datagram to
    /// a socket that takes it (so the kernel itself sends no error back).
    fn sender(v6: bool) -> (UdpSocket, UdpSocket) {
        let (from, to): (SocketAddr, SocketAddr) = if v6 {
            ("[::1]:0".parse().unwrap(), "[::1]:0".parse().unwrap())
        } else {
            (
                "127.0.0.1:0".parse().unwrap(),
                "127.0.0.2:0".parse().unwrap(),
            )
        };
        let sink = UdpSocket::bind(to).unwrap();
        let socket = UdpSocket::bind(from).unwrap();
        socket.set_nonblocking(true).unwrap();
        enable_recverr(&socket, v6).unwrap();
        socket
            .send_to(b"probe", sink.local_addr().unwrap())
            .unwrap();
        (socket, sink)
    }

    /// The 8-byte UDP header of the quoted datagram.
    fn udp_header(socket: &UdpSocket, sink: &UdpSocket) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(socket.local_addr().unwrap().port().to_be_bytes());
        h.extend(sink.local_addr().unwrap().port().to_be_bytes());
        h.extend(13u16.to_be_bytes());
        h.extend([0, 0]);
        h
    }

    /// What the queue holds once the crafted error had time to arrive.
    fn drained(socket: &UdpSocket, expect_one: bool) -> Vec<IcmpError> {
        let until = Instant::now() + Duration::from_secs(if expect_one { 2 } else { 0 });
        loop {
            let got = drain(socket);
            if !got.is_empty() || Instant::now() >= until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// ICMPv4 errors the kernel always hands to the quoted UDP socket (not
    /// time-exceeded in reassembly, code 1, which it keeps to itself).
    fn delivered_v4(kind: u8, code: u8) -> bool {
        matches!((kind, code), (3, 0..=3 | 9 | 10 | 13) | (11, 0) | (12, 0))
    }

    /// ICMPv6 errors the kernel always hands to the quoted UDP socket.
    fn delivered_v6(kind: u8, code: u8) -> bool {
        matches!((kind, code), (1, 0 | 1 | 3 | 4) | (3, 0 | 1))
    }

    /// Checks what the queue gave for a crafted error of `kind` and `code`.
    fn judge(
        got: &[IcmpError],
        v6: bool,
        kind: u8,
        code: u8,
        from: IpAddr,
        to: SocketAddr,
        always: bool,
    ) -> Result<(), TestCaseError> {
        prop_assert!(
            got.len() <= 1,
            "one error sent, {} read: {got:?}",
            got.len()
        );
        if always {
            prop_assert_eq!(got.len(), 1, "type {} code {} was not read", kind, code);
        }
        for e in got {
            prop_assert_eq!(e.icmp, IcmpCode { v6, kind, code });
            prop_assert_eq!(e.from, Some(from));
            prop_assert_eq!(e.destination, Some(to));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn any_icmpv4_error_is_read_as_sent(
            kind in prop_oneof![Just(3u8), Just(11u8), Just(12u8), any::<u8>()],
            code in prop_oneof![0u8..16, any::<u8>()],
            offender in 3u8..=254,
            rest in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            if !may_craft("any_icmpv4_error_is_read_as_sent") {
                return Ok(());
            }
            let (socket, sink) = sender(false);
            let to = sink.local_addr().unwrap();
            let from = Ipv4Addr::new(127, 0, 0, offender);
            // The quoted IPv4 header: the datagram our socket sent.
            let mut ip = vec![0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, 17, 0, 0];
            ip.extend(Ipv4Addr::LOCALHOST.octets());
            ip.extend(Ipv4Addr::new(127, 0, 0, 2).octets());
            let sum = checksum(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            let mut icmp = vec![kind, code, 0, 0, 0, 0, 0, 0];
            icmp.extend(ip);
            icmp.extend(udp_header(&socket, &sink));
            icmp.extend(&rest);
            let sum = checksum(&icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
            raw.bind(&SockAddr::from(SocketAddrV4::new(from, 0))).unwrap();
            raw.send_to(&icmp, &SockAddr::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))).unwrap();
            let always = delivered_v4(kind, code);
            let got = drained(&socket, always);
            judge(&got, false, kind, code, IpAddr::V4(from), to, always)?;
        }

        #[test]
        fn any_icmpv6_error_is_read_as_sent(
            kind in prop_oneof![1u8..=4, any::<u8>()],
            code in prop_oneof![0u8..8, any::<u8>()],
            rest in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            if !may_craft("any_icmpv6_error_is_read_as_sent") {
                return Ok(());
            }
            let (socket, sink) = sender(true);
            let to = sink.local_addr().unwrap();
            // The quoted IPv6 header: the datagram our socket sent.
            let mut ip = vec![0x60, 0, 0, 0, 0, 13, 17, 64];
            ip.extend(Ipv6Addr::LOCALHOST.octets());
            ip.extend(Ipv6Addr::LOCALHOST.octets());
            // Type 2 (packet too big) carries an MTU the kernel checks.
            let mtu: u32 = if kind == 2 { 1280 } else { 0 };
            let mut icmp = vec![kind, code, 0, 0];
            icmp.extend(mtu.to_be_bytes());
            icmp.extend(ip);
            icmp.extend(udp_header(&socket, &sink));
            icmp.extend(&rest);
            // The kernel fills in an ICMPv6 raw socket's checksum.
            let raw = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).unwrap();
            let lo = SockAddr::from(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0));
            raw.send_to(&icmp, &lo).unwrap();
            let always = delivered_v6(kind, code);
            let got = drained(&socket, always);
            judge(&got, true, kind, code, IpAddr::V6(Ipv6Addr::LOCALHOST), to, always)?;
        }
    }
}
