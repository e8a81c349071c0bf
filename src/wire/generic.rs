//! The generic probe for UDP ports whose protocol is private or session-bound
//! (RTP ranges, QuickTime Streaming Server, Remote AppleEvents, AirPort 192,
//! SNATMAP, xrdiags, ...), and for ports whose service never replies (syslog,
//! a DHCP client, the NetBIOS datagram service).
//!
//! It sends a small datagram that no protocol mistakes for a command. A live
//! service of unknown protocol may answer it or not; an answer can only be
//! reported as unrecognised, so [`UdpRequest::recognise`] never claims one.
//! What proves a generic port closed or blocked is the ICMP error the engine
//! reads, not this module.

use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The payload prefix: recognisable in captures, harmless to any parser.
const PREFIX: &[u8] = b"portprobe\r\n";

/// A generic probe: `portprobe\r\n` followed by eight nonce bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    payload: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request {
            payload: request(nonce),
        }
    }
}

/// The generic datagram for `nonce`.
pub fn request(nonce: &Nonce) -> Vec<u8> {
    let mut payload = PREFIX.to_vec();
    payload.extend_from_slice(&nonce.0[..8]);
    payload
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.payload.clone()]
    }

    fn recognise(&self, _reply: &[u8]) -> Option<Reply> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_small_and_unique_per_nonce() {
        let a = request(&Nonce([1; 16]));
        let b = request(&Nonce([2; 16]));
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 8);
        assert_ne!(a, b);
    }
}
