//! Syslog, UDP port 514 (RFC 5424 over UDP, RFC 5426).
//!
//! A syslog receiver never replies, so no reply can prove the port open: the
//! only evidence is an ICMP error (closed or blocked) or its absence. The
//! probe is still a well-formed message, so that a receiver logs a line an
//! administrator can read ("portprobe reachability check ...") instead of
//! bytes it cannot parse.

use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// A syslog message at facility user, severity informational.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    message: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request {
            message: request(nonce),
        }
    }
}

/// `<14>1 - - portprobe - - - portprobe reachability check <hex>`: PRI 14
/// (user.info), version 1, no timestamp or host name (the receiver adds
/// them), app name `portprobe`, and the nonce so the line can be matched to
/// the probe that sent it.
pub fn request(nonce: &Nonce) -> Vec<u8> {
    let hex: String = nonce.0[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("<14>1 - - portprobe - - - portprobe reachability check {hex}").into_bytes()
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.message.clone()]
    }

    /// Syslog has no replies: nothing is ever recognised.
    fn recognise(&self, _reply: &[u8]) -> Option<Reply> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_follows_rfc_5424() {
        let msg = String::from_utf8(request(&Nonce([0xab; 16]))).unwrap();
        assert_eq!(
            msg,
            "<14>1 - - portprobe - - - portprobe reachability check abababababababab"
        );
        let req = Request::new(&ProbeContext::default(), &Nonce([1; 16]));
        assert_eq!(req.recognise(msg.as_bytes()), None);
    }
}
