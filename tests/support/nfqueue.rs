//! Added latency for the router, built on NFQUEUE.
//!
//! The kernel here has no netem qdisc, and no `nft_queue` either
//! (`# CONFIG_NFT_QUEUE is not set`, so nft's `queue` statement fails with
//! "No such file or directory"). It does have `xt_NFQUEUE` behind
//! `nft_compat`, so `iptables`/`ip6tables` (the nf_tables flavour) put the
//! router's forwarded packets on a queue, in the `mangle` FORWARD chain
//! (priority -150: after the lab's loss chain, before its filter chain).
//!
//! A thread inside the router namespace binds that queue over netfilter
//! netlink, with packet copying off (metadata only), keeps each packet's id
//! in arrival order and issues an ACCEPT verdict once the delay has passed.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::netns;

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NF_ACCEPT: u32 = 1;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const QUEUE_MAXLEN: u32 = 8192;

/// The queue number the router's rules use.
pub const QUEUE_NUM: u16 = 0;

/// A running delayer; dropping it stops the thread.
#[derive(Debug)]
pub struct Delayer {
    delay_ms: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Delayer {
    /// Binds the queue inside namespace `ns`, then installs the rules that
    /// send every forwarded packet (v4 and v6) to it.
    pub fn start(ns: &str, delay_ms: u32) -> io::Result<Delayer> {
        let delay = Arc::new(AtomicU32::new(delay_ms));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (d, s) = (delay.clone(), stop.clone());
        let thread = netns::spawn_in(ns, "lab-delayer", move || match Queue::bind(QUEUE_NUM) {
            Ok(q) => {
                let _ = tx.send(Ok(()));
                q.run(&d, &s);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })?;
        let mut delayer = Delayer {
            delay_ms: delay,
            stop,
            thread: Some(thread),
        };
        rx.recv()
            .map_err(|_| io::Error::other("delayer thread ended before binding its queue"))??;
        for tool in ["iptables", "ip6tables"] {
            let out = Command::new("ip")
                .args([
                    "netns", "exec", ns, tool, "-w", "-t", "mangle", "-A", "FORWARD",
                ])
                .args(["-j", "NFQUEUE", "--queue-num", &QUEUE_NUM.to_string()])
                .output()
                .map_err(|e| io::Error::new(e.kind(), format!("run {tool}: {e}")))?;
            if !out.status.success() {
                delayer.shut();
                return Err(io::Error::other(format!(
                    "{tool} NFQUEUE rule in {ns}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(delayer)
    }

    /// Changes the one-way delay for packets queued from now on.
    pub fn set(&self, delay_ms: u32) {
        self.delay_ms.store(delay_ms, Ordering::Relaxed);
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        self.shut();
    }
}

/// A bound netfilter queue socket.
struct Queue {
    fd: OwnedFd,
    queue: u16,
    seq: u32,
}

impl Queue {
    fn bind(queue: u16) -> io::Result<Queue> {
        // SAFETY: plain socket(2) call; the result is checked and owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        let rcvbuf: libc::c_int = 8 << 20;
        // SAFETY: valid descriptor and option values of the documented types.
        unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&rcvbuf as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
            libc::setsockopt(
                raw,
                libc::SOL_NETLINK,
                libc::NETLINK_NO_ENOBUFS,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let mut q = Queue { fd, queue, seq: 0 };
        let mut cmd = Vec::new();
        cmd.extend_from_slice(&[NFQNL_CFG_CMD_BIND, 0]);
        cmd.extend_from_slice(&0u16.to_be_bytes());
        q.request(NFQNL_MSG_CONFIG, &[(NFQA_CFG_CMD, &cmd)])?;
        let mut params = Vec::new();
        params.extend_from_slice(&0u32.to_be_bytes());
        params.push(NFQNL_COPY_META);
        q.request(
            NFQNL_MSG_CONFIG,
            &[
                (NFQA_CFG_PARAMS, &params),
                (NFQA_CFG_QUEUE_MAXLEN, &QUEUE_MAXLEN.to_be_bytes()),
            ],
        )?;
        Ok(q)
    }

    fn message(&mut self, msg: u16, flags: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        self.seq = self.seq.wrapping_add(1);
        let mut b = vec![0u8; 16];
        b[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg).to_ne_bytes());
        b[6..8].copy_from_slice(&flags.to_ne_bytes());
        b[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // nfgenmsg: family AF_UNSPEC, version 0, resource id (queue) big-endian.
        b.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
        b.extend_from_slice(&self.queue.to_be_bytes());
        for (kind, data) in attrs {
            let len = 4 + data.len();
            b.extend_from_slice(&(len as u16).to_ne_bytes());
            b.extend_from_slice(&kind.to_ne_bytes());
            b.extend_from_slice(data);
            b.resize(b.len().next_multiple_of(4), 0);
        }
        let total = b.len() as u32;
        b[0..4].copy_from_slice(&total.to_ne_bytes());
        b
    }

    fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_nl with family set addresses the kernel.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: buf and addr are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn recv(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Sends a config request and waits for the kernel's acknowledgement.
    fn request(&mut self, msg: u16, attrs: &[(u16, &[u8])]) -> io::Result<()> {
        let buf = self.message(msg, NLM_F_REQUEST | NLM_F_ACK, attrs);
        self.send(&buf)?;
        let mut rb = vec![0u8; 8192];
        let n = self.recv(&mut rb, 0)?;
        for (kind, payload) in messages(&rb[..n]) {
            if kind == NLMSG_ERROR && payload.len() >= 4 {
                let errno = i32::from_ne_bytes(payload[0..4].try_into().unwrap());
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                return Ok(());
            }
        }
        Err(io::Error::other("no acknowledgement from nfnetlink_queue"))
    }

    fn verdict(&mut self, id: u32) -> io::Result<()> {
        let mut hdr = Vec::with_capacity(8);
        hdr.extend_from_slice(&NF_ACCEPT.to_be_bytes());
        hdr.extend_from_slice(&id.to_be_bytes());
        let buf = self.message(
            NFQNL_MSG_VERDICT,
            NLM_F_REQUEST,
            &[(NFQA_VERDICT_HDR, &hdr)],
        );
        self.send(&buf)
    }

    fn run(mut self, delay_ms: &AtomicU32, stop: &AtomicBool) {
        let mut held: VecDeque<(Instant, u32)> = VecDeque::new();
        let mut buf = vec![0u8; 1 << 16];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while let Some(&(due, id)) = held.front() {
                if due > now {
                    break;
                }
                held.pop_front();
                let _ = self.verdict(id);
            }
            let wait = held
                .front()
                .map(|&(due, _)| due.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(50))
                .min(Duration::from_millis(50));
            let timeout =
                PollTimeout::try_from(wait.as_millis().max(1) as i32).unwrap_or(PollTimeout::NONE);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, timeout).unwrap_or(0) <= 0 {
                continue;
            }
            while let Ok(n) = self.recv(&mut buf, libc::MSG_DONTWAIT) {
                let arrived = Instant::now();
                let delay = Duration::from_millis(u64::from(delay_ms.load(Ordering::Relaxed)));
                for (kind, payload) in messages(&buf[..n]) {
                    if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET || payload.len() < 4 {
                        continue;
                    }
                    if let Some(id) = attrs(&payload[4..])
                        .find(|(t, d)| *t == NFQA_PACKET_HDR && d.len() >= 4)
                        .map(|(_, d)| u32::from_be_bytes(d[0..4].try_into().unwrap()))
                    {
                        held.push_back((arrived + delay, id));
                    }
                }
            }
        }
        // Let anything still held through rather than strand it in the kernel.
        for (_, id) in held {
            let _ = self.verdict(id);
        }
    }
}

/// Splits a netlink datagram into (message type, payload after the header).
fn messages(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        if len < 16 || len > buf.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        let payload = &buf[16..len];
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
        Some((kind, payload))
    })
}

/// Splits netlink attributes into (type, data).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes(buf[0..2].try_into().unwrap()) as usize;
        if len < 4 || len > buf.len() {
            return None;
        }
        // The top two bits are the nested and byte-order flags.
        let kind = u16::from_ne_bytes(buf[2..4].try_into().unwrap()) & 0x3fff;
        let data = &buf[4..len];
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
        Some((kind, data))
    })
}
