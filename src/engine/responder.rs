//! The client side of the responder protocol (`--responder`): the hello a
//! TCP probe sends once connected and how its answer is read, and what a
//! proof says about the path, judged against what this computer sent: a
//! responder that saw the hello come from another address or port than
//! ours (a NAT between, or a relay), or arrive elsewhere than where it was
//! sent (port forwarding, or a relay), has its answer kept, with that
//! difference, as data.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, recv};
use tokio::net::TcpStream;

use super::evidence::{Answer, Deadline, Evidence};
use super::outcome::Translation;
use crate::port::Transport;
use crate::wire::responder::{Hello, REPLY_LEN, Secret, Seen, is_busy, verify};

/// What a TCP probe of a far-side `portprobe listen` sends once connected.
pub struct Exchange {
    hello: Hello,
    secret: Option<Secret>,
}

impl Exchange {
    /// The exchange for a probe of TCP `port`, with a fresh nonce.
    pub fn new(port: u16, secret: Option<Secret>) -> Exchange {
        Exchange {
            hello: Hello {
                transport: Transport::Tcp,
                port,
                nonce: rand::random(),
            },
            secret,
        }
    }

    /// Sends the hello and reads the answer, until `deadline`. A responder
    /// with no room sends its busy notice at once and closes, maybe before
    /// reading the hello: a failed write still leaves the notice to read.
    /// Not a byte and no close by the deadline is no answer yet (a
    /// responder busy with a flood, or connections queued faster than it
    /// takes them), not another program's.
    pub async fn run(self, stream: &TcpStream, deadline: Deadline) -> Evidence {
        let mut reply = [0u8; REPLY_LEN];
        let mut got = 0;
        let talk = async {
            let hello = self.hello.to_bytes();
            let mut sent = 0;
            while sent < hello.len() {
                if stream.writable().await.is_err() {
                    break;
                }
                match stream.try_write(&hello[sent..]) {
                    Ok(0) => break,
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
            while got < reply.len() {
                if stream.readable().await.is_err() {
                    break;
                }
                match stream.try_read(&mut reply[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
        };
        // The answer first: when both are there, a busy process must not
        // take a reply it has not read yet for none.
        let mut ended = tokio::select! {
            biased;
            () = talk => true,
            () = deadline.passed() => false,
        };
        if !ended {
            // A last look at the socket itself, whatever the runtime has
            // been told of it yet.
            while got < reply.len() {
                match recv(
                    stream.as_raw_fd(),
                    &mut reply[got..],
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => got += n,
                    Err(_) => break,
                }
            }
        }
        let bytes = &reply[..got];
        let answer = match &self.secret {
            _ if !ended && bytes.is_empty() => Answer::Nothing,
            _ if is_busy(bytes) => Answer::Busy,
            Some(secret) => match verify(secret, &self.hello.nonce, bytes) {
                Some(seen) if seen.transport == Transport::Tcp => Answer::Proved(seen),
                _ => Answer::Not,
            },
            None => Answer::Not,
        };
        Evidence::Responder {
            answer,
            sent_from: stream.local_addr().ok(),
        }
    }
}

/// The same address (IPv4-mapped IPv6 as IPv4, any IPv6 scope) and port.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip().to_canonical() == b.ip().to_canonical() && a.port() == b.port()
}

/// What `seen` shows that differs from the hello as this computer sent
/// it, from `sent_from` (when known) to `probed`; `None` when nothing does.
/// An arrival address the responder could not tell is compared by port.
pub fn translation(
    seen: &Seen,
    sent_from: Option<SocketAddr>,
    probed: SocketAddr,
) -> Option<Translation> {
    let source = sent_from
        .filter(|&ours| !same(seen.from, ours))
        .map(|ours| (seen.from, ours));
    let arrived_elsewhere = if seen.to.ip().is_unspecified() {
        seen.to.port() != probed.port()
    } else {
        !same(seen.to, probed)
    };
    let destination = arrived_elsewhere.then_some(seen.to);
    (source.is_some() || destination.is_some()).then_some(Translation {
        source,
        destination,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn seen(from: &str, to: &str) -> Seen {
        Seen {
            transport: Transport::Udp,
            from: at(from),
            to: at(to),
            limiting: false,
        }
    }

    #[test]
    fn a_proof_of_what_was_sent_shows_no_translation() {
        let ours = Some(at("198.18.0.2:40122"));
        let probed = at("198.18.1.2:7000");
        assert_eq!(
            translation(&seen("198.18.0.2:40122", "198.18.1.2:7000"), ours, probed),
            None
        );
        // A dual-stack report of the same IPv4 address is the same.
        let mapped = seen("198.18.0.2:40122", "198.18.1.2:7000");
        assert_eq!(
            translation(&mapped, Some(at("[::ffff:198.18.0.2]:40122")), probed),
            None
        );
        // An arrival address the responder could not tell: the port decides.
        assert_eq!(
            translation(&seen("198.18.0.2:40122", "0.0.0.0:7000"), ours, probed),
            None
        );
        // Our own address unknown: only the arrival is judged.
        assert_eq!(
            translation(&seen("203.0.113.5:1", "198.18.1.2:7000"), None, probed),
            None
        );
    }

    #[test]
    fn a_nat_a_port_forwarding_or_a_relay_shows() {
        let ours = at("198.18.0.2:40122");
        let probed = at("198.18.1.2:7000");
        let nat = translation(
            &seen("203.0.113.5:40122", "198.18.1.2:7000"),
            Some(ours),
            probed,
        );
        assert_eq!(
            nat,
            Some(Translation {
                source: Some((at("203.0.113.5:40122"), ours)),
                destination: None
            })
        );
        let port = translation(
            &seen("198.18.0.2:51000", "198.18.1.2:7000"),
            Some(ours),
            probed,
        );
        assert!(
            port.is_some_and(|t| t.source.is_some()),
            "source port rewritten"
        );
        let forwarded = translation(
            &seen("198.18.0.2:40122", "10.0.0.5:7001"),
            Some(ours),
            probed,
        );
        assert_eq!(
            forwarded,
            Some(Translation {
                source: None,
                destination: Some(at("10.0.0.5:7001"))
            })
        );
        let other_port = translation(
            &seen("198.18.0.2:40122", "0.0.0.0:7001"),
            Some(ours),
            probed,
        );
        assert_eq!(
            other_port.and_then(|t| t.destination),
            Some(at("0.0.0.0:7001"))
        );
    }
}
