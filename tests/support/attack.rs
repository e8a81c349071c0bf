//! An attacker's tools, as real packets in the lab's namespaces: IPv4 UDP
//! datagrams forged with any source (a raw socket), copies of the
//! datagrams arriving on an interface before any firewall rule sees them
//! (a packet socket, as an on-path relay would read them), and idle TCP
//! connections held from many addresses.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::libc;
use socket2::{Domain, Protocol, Socket, Type};

use super::netns;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The Internet checksum (RFC 1071) of `parts`, one after the other.
fn checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 UDP datagrams with any source address and port, from a raw socket
/// made in the namespace of the calling thread.
pub struct Forger {
    fd: OwnedFd,
}

impl Forger {
    pub fn new() -> io::Result<Forger> {
        // IPPROTO_RAW: the packet carries its own IP header; the kernel
        // fills in the header checksum.
        let fd = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) })?;
        Ok(Forger {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Sends `payload` to `to` as if from `from`.
    pub fn send(&self, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> io::Result<()> {
        let udp_len = (8 + payload.len()) as u16;
        let mut udp = Vec::with_capacity(udp_len as usize);
        udp.extend_from_slice(&from.port().to_be_bytes());
        udp.extend_from_slice(&to.port().to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let pseudo = [
            &from.ip().octets()[..],
            &to.ip().octets()[..],
            &[0, 17],
            &udp_len.to_be_bytes()[..],
        ]
        .concat();
        let sum = match checksum(&[&pseudo, &udp]) {
            0 => 0xffff,
            s => s,
        };
        udp[6..8].copy_from_slice(&sum.to_be_bytes());
        let total = (20 + udp.len()) as u16;
        let mut packet = vec![0x45, 0];
        packet.extend_from_slice(&total.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        packet.extend_from_slice(&from.ip().octets());
        packet.extend_from_slice(&to.ip().octets());
        packet.extend_from_slice(&udp);
        let mut dst: libc::sockaddr_in = unsafe { zeroed() };
        dst.sin_family = libc::AF_INET as libc::sa_family_t;
        dst.sin_addr.s_addr = u32::from(*to.ip()).to_be();
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const dst).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// One IPv4 UDP datagram seen on the wire.
#[derive(Clone, Debug)]
pub struct Datagram {
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// Copies of the IPv4 UDP datagrams arriving on one interface of the
/// calling thread's namespace, taken before any firewall rule (a packet
/// socket): what an on-path relay reads.
pub struct Tap {
    fd: OwnedFd,
}

const ETH_P_IP: u16 = 0x0800;

impl Tap {
    pub fn new(ifname: &str) -> io::Result<Tap> {
        let fd = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM,
                i32::from(ETH_P_IP.to_be()),
            )
        })?;
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new(ifname).map_err(io::Error::other)?;
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut at: libc::sockaddr_ll = unsafe { zeroed() };
        at.sll_family = libc::AF_PACKET as u16;
        at.sll_protocol = ETH_P_IP.to_be();
        at.sll_ifindex = index as i32;
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const at).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        check(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        })?;
        Ok(Tap { fd })
    }

    /// The next UDP datagram arriving (not leaving) within a tenth of a
    /// second, if any.
    pub fn next(&self) -> Option<Datagram> {
        let mut buf = [0u8; 2048];
        let mut at: libc::sockaddr_ll = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut at).cast(),
                &raw mut len,
            )
        };
        if n <= 0 || at.sll_pkttype == libc::PACKET_OUTGOING {
            return None;
        }
        let p = &buf[..n as usize];
        let ihl = usize::from(p.first()? & 0x0f) * 4;
        if p.len() < ihl + 8 || p[9] != 17 {
            return None;
        }
        let ip = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
        let port = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
        Some(Datagram {
            from: SocketAddrV4::new(ip(12), port(ihl)),
            to: SocketAddrV4::new(ip(16), port(ihl + 2)),
            payload: p[ihl + 8..].to_vec(),
        })
    }
}

/// Idle TCP connections to one port, `per_source` from each of several
/// source addresses, each reopened as soon as the far side closes it,
/// until dropped.
pub struct IdleConnections {
    stop: Arc<AtomicBool>,
    held: Arc<Vec<AtomicUsize>>,
    threads: Vec<JoinHandle<()>>,
}

impl IdleConnections {
    /// Starts a thread per source address, in namespace `ns`.
    pub fn hold(
        ns: &str,
        sources: &[Ipv4Addr],
        to: SocketAddr,
        per_source: usize,
    ) -> io::Result<IdleConnections> {
        let stop = Arc::new(AtomicBool::new(false));
        let held: Arc<Vec<AtomicUsize>> =
            Arc::new(sources.iter().map(|_| AtomicUsize::new(0)).collect());
        let mut threads = Vec::new();
        for (i, &source) in sources.iter().enumerate() {
            let (stop, held) = (Arc::clone(&stop), Arc::clone(&held));
            threads.push(netns::spawn_in(ns, "idle-connections", move || {
                let mut open: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // Forget the connections the far side closed (or
                    // answered: a busy notice comes before a close).
                    open.retain(still_open);
                    while open.len() < per_source && !stop.load(Ordering::Relaxed) {
                        match connect_from(source, to) {
                            Ok(s) => open.push(s),
                            Err(_) => break,
                        }
                    }
                    held[i].store(open.len(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })?);
        }
        Ok(IdleConnections {
            stop,
            held,
            threads,
        })
    }

    /// Connections open now, over every source.
    pub fn held(&self) -> usize {
        self.held.iter().map(|h| h.load(Ordering::Relaxed)).sum()
    }
}

impl Drop for IdleConnections {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Whether the far side has said nothing yet: no byte, no close, no reset.
fn still_open(s: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(s.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// A non-blocking connection from `source` (any port) to `to`, once made.
fn connect_from(source: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&SocketAddr::from((source, 0)).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(1))?;
    s.set_nonblocking(true)?;
    Ok(TcpStream::from(s))
}
