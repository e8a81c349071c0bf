//! Echo (RFC 862), UDP port 7: the server returns each datagram unchanged.
//!
//! The request carries nonce bytes; only a datagram equal to it is the echo of
//! this probe. (A real inetd echo returns a zero-length datagram for a
//! zero-length request, which is why the payload is never empty.)

use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// An echo request: `portprobe-echo ` followed by 16 nonce bytes.
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

/// The echo payload for `nonce`.
pub fn request(nonce: &Nonce) -> Vec<u8> {
    let mut payload = b"portprobe-echo ".to_vec();
    payload.extend_from_slice(&nonce.0);
    payload
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.payload.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        (reply == self.payload.as_slice())
            .then(|| Reply::new("echo", format!("echoed our {}-byte datagram", reply.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{
        NONCE_3A7C, byte_changes, datagrams, id_field_property, other_nonce_property, other_nonces,
    };
    use proptest::prelude::*;

    #[test]
    fn recognises_only_its_own_payload() {
        let req = Request::new(&ProbeContext::default(), &Nonce([9; 16]));
        let sent = req.datagrams().remove(0);
        assert!(req.recognise(&sent).is_some());
        let other = request(&Nonce([8; 16]));
        assert_eq!(req.recognise(&other), None);
        assert_eq!(req.recognise(&sent[..sent.len() - 1]), None);
        assert_eq!(req.recognise(b""), None);
    }

    proptest! {
        #[test]
        fn an_echoed_byte_changed_is_refused(change in byte_changes()) {
            let req = Request::new(&ProbeContext::default(), &NONCE_3A7C);
            let echoed = request(&NONCE_3A7C);
            id_field_property(&req, &echoed, 0..echoed.len(), change)?;
        }

        #[test]
        fn a_request_with_other_nonce_bytes_refuses_the_echo(
            nonce in other_nonces(NONCE_3A7C, 0..16),
        ) {
            let req = Request::new(&ProbeContext::default(), &nonce);
            other_nonce_property(&req, &request(&NONCE_3A7C))?;
        }

        #[test]
        fn never_panics(bytes in datagrams()) {
            let req = Request::new(&ProbeContext::default(), &Nonce([3; 16]));
            let _ = req.recognise(&bytes);
        }
    }
}
