//! The responder protocol: `portprobe listen` on the far side answers a
//! client's hello on every port it holds, with a tag only the holder of the
//! shared secret can compute, so the client knows it reached *that*
//! responder on *that* port (not a middlebox, a NAT's own stack or another
//! service).
//!
//! ```text
//! hello (client to responder), 48 bytes:
//!   0..4   "PPR1"
//!   4      1 (hello)
//!   5      transport: 6 TCP, 17 UDP
//!   6..8   the port the client probes, big-endian
//!   8..24  16 random bytes (the nonce)
//!   24..48 zeros
//!
//! reply (responder to client), 40 bytes:
//!   0..4   "PPR1"
//!   4      2 (reply)
//!   5      transport the hello came in on
//!   6..8   port the hello came in on
//!   8..40  HMAC-SHA-256(secret, "portprobe responder 1" | nonce | transport | port)
//! ```
//!
//! A reply is shorter than the hello that draws it (40 bytes for 48): the
//! responder never amplifies. The zeros make a hello that size, and a
//! responder answers nothing but a hello of exactly that form.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Nonce, ProbeContext, Reply, UdpRequest};
use crate::port::Transport;

/// Both messages start with this.
pub const MAGIC: &[u8; 4] = b"PPR1";
/// Length of a hello.
pub const HELLO_LEN: usize = 48;
/// Length of a reply.
pub const REPLY_LEN: usize = 40;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;

const HELLO: u8 = 1;
const REPLY: u8 = 2;
/// What the tag is computed over first, so that no other use of the
/// secret can produce one.
const CONTEXT: &[u8] = b"portprobe responder 1";

/// The shared secret. Its `Debug` shows no byte of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret of at least [`MIN_SECRET`] bytes; `None` when shorter.
    pub fn new(bytes: Vec<u8>) -> Option<Secret> {
        (bytes.len() >= MIN_SECRET).then_some(Secret(bytes))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

fn transport_code(t: Transport) -> u8 {
    match t {
        Transport::Tcp => 6,
        Transport::Udp => 17,
    }
}

fn transport_of(code: u8) -> Option<Transport> {
    match code {
        6 => Some(Transport::Tcp),
        17 => Some(Transport::Udp),
        _ => None,
    }
}

/// A client's hello, as a responder reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The transport the client says it probes.
    pub transport: Transport,
    /// The port the client says it probes.
    pub port: u16,
    /// The client's random bytes.
    pub nonce: [u8; 16],
}

impl Hello {
    /// The hello's bytes.
    pub fn to_bytes(self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4] = HELLO;
        out[5] = transport_code(self.transport);
        out[6..8].copy_from_slice(&self.port.to_be_bytes());
        out[8..24].copy_from_slice(&self.nonce);
        out
    }

    /// A hello of exactly the documented form; anything else is `None`.
    pub fn parse(bytes: &[u8]) -> Option<Hello> {
        if bytes.len() != HELLO_LEN
            || &bytes[..4] != MAGIC
            || bytes[4] != HELLO
            || bytes[24..].iter().any(|&b| b != 0)
        {
            return None;
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&bytes[8..24]);
        Some(Hello {
            transport: transport_of(bytes[5])?,
            port: u16::from_be_bytes([bytes[6], bytes[7]]),
            nonce,
        })
    }
}

fn tag(secret: &Secret, nonce: &[u8; 16], transport: Transport, port: u16) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    mac.update(CONTEXT);
    mac.update(nonce);
    mac.update(&[transport_code(transport)]);
    mac.update(&port.to_be_bytes());
    mac
}

/// The reply to `hello`, which came in on `transport` and `port`.
pub fn reply(secret: &Secret, hello: &Hello, transport: Transport, port: u16) -> [u8; REPLY_LEN] {
    let mut out = [0u8; REPLY_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4] = REPLY;
    out[5] = transport_code(transport);
    out[6..8].copy_from_slice(&port.to_be_bytes());
    out[8..].copy_from_slice(
        &tag(secret, &hello.nonce, transport, port)
            .finalize()
            .into_bytes(),
    );
    out
}

/// What a reply proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// A responder holding the secret answered on this transport and port.
    Responder {
        /// The transport it received the hello on.
        transport: Transport,
        /// The port it received the hello on.
        port: u16,
    },
    /// Not a reply from a holder of the secret to this hello.
    Not,
}

/// Checks `bytes` as the reply to the hello that carried `nonce`. The tag
/// is compared in constant time.
pub fn verify(secret: &Secret, nonce: &[u8; 16], bytes: &[u8]) -> Verified {
    if bytes.len() != REPLY_LEN || &bytes[..4] != MAGIC || bytes[4] != REPLY {
        return Verified::Not;
    }
    let Some(transport) = transport_of(bytes[5]) else {
        return Verified::Not;
    };
    let port = u16::from_be_bytes([bytes[6], bytes[7]]);
    match tag(secret, nonce, transport, port).verify_slice(&bytes[8..]) {
        Ok(()) => Verified::Responder { transport, port },
        Err(_) => Verified::Not,
    }
}

/// The UDP probe of a run against a responder.
#[derive(Debug)]
pub struct Request {
    hello: Hello,
    secret: Option<Secret>,
}

impl Request {
    /// The probe for `port`, with the run's secret from `ctx`.
    pub fn new(ctx: &ProbeContext, nonce: &Nonce, port: u16) -> Request {
        Request {
            hello: Hello {
                transport: Transport::Udp,
                port,
                nonce: nonce.0,
            },
            secret: ctx.responder_secret.clone(),
        }
    }
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.hello.to_bytes().to_vec()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let secret = self.secret.as_ref()?;
        match verify(secret, &self.hello.nonce, reply) {
            Verified::Responder { transport, port }
                if transport == Transport::Udp && port == self.hello.port =>
            {
                Some(Reply::new("responder", "answered by the responder"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn secret() -> Secret {
        Secret::new(b"a shared secret of the lab".to_vec()).unwrap()
    }

    fn hello() -> Hello {
        Hello {
            transport: Transport::Udp,
            port: 6970,
            nonce: *b"0123456789abcdef",
        }
    }

    #[test]
    fn a_hello_round_trips_and_a_reply_verifies() {
        let h = hello();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), HELLO_LEN);
        assert_eq!(Hello::parse(&bytes), Some(h));
        let r = reply(&secret(), &h, Transport::Udp, 6970);
        assert!(r.len() < bytes.len(), "a reply never outgrows its hello");
        assert_eq!(
            verify(&secret(), &h.nonce, &r),
            Verified::Responder {
                transport: Transport::Udp,
                port: 6970
            }
        );
    }

    #[test]
    fn another_secret_nonce_port_or_transport_is_refused() {
        let h = hello();
        let r = reply(&secret(), &h, Transport::Udp, 6970);
        let other = Secret::new(b"another secret of the lab".to_vec()).unwrap();
        assert_eq!(verify(&other, &h.nonce, &r), Verified::Not);
        assert_eq!(verify(&secret(), b"fedcba9876543210", &r), Verified::Not);
        let mut port = r;
        port[7] ^= 1;
        assert_eq!(verify(&secret(), &h.nonce, &port), Verified::Not);
        let mut transport = r;
        transport[5] = 6;
        assert_eq!(verify(&secret(), &h.nonce, &transport), Verified::Not);
    }

    #[test]
    fn only_an_exact_hello_is_one() {
        let good = hello().to_bytes();
        assert_eq!(Hello::parse(&good[..HELLO_LEN - 1]), None);
        let mut longer = good.to_vec();
        longer.push(0);
        assert_eq!(Hello::parse(&longer), None);
        let mut padded = good;
        padded[40] = 1;
        assert_eq!(Hello::parse(&padded), None, "padding must be zeros");
        let mut kind = good;
        kind[4] = REPLY;
        assert_eq!(Hello::parse(&kind), None);
        let mut transport = good;
        transport[5] = 1;
        assert_eq!(Hello::parse(&transport), None);
        assert_eq!(Hello::parse(b""), None);
    }

    #[test]
    fn a_short_secret_is_refused_and_never_shown() {
        assert!(Secret::new(vec![7; MIN_SECRET - 1]).is_none());
        let s = Secret::new(b"do not print me, please".to_vec()).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(23 bytes)");
    }

    #[test]
    fn the_udp_probe_takes_only_its_own_reply() {
        let ctx = ProbeContext {
            responder_secret: Some(secret()),
            ..ProbeContext::default()
        };
        let nonce = Nonce(*b"0123456789abcdef");
        let request = Request::new(&ctx, &nonce, 6970);
        let sent = request.datagrams();
        let h = Hello::parse(&sent[0]).unwrap();
        let ours = reply(&secret(), &h, Transport::Udp, 6970);
        assert_eq!(
            request.recognise(&ours),
            Some(Reply::new("responder", "answered by the responder"))
        );
        let elsewhere = reply(&secret(), &h, Transport::Udp, 6971);
        assert_eq!(request.recognise(&elsewhere), None, "another port's reply");
        let without = Request::new(&ProbeContext::default(), &nonce, 6970);
        assert_eq!(without.recognise(&ours), None, "no secret, no proof");
    }

    proptest! {
        #[test]
        fn never_panics_and_never_takes_noise(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Hello::parse(&bytes);
            prop_assert_eq!(verify(&secret(), &hello().nonce, &bytes), Verified::Not);
        }

        #[test]
        fn any_changed_byte_of_a_reply_is_refused(at in 0..REPLY_LEN, mask in 1u8..=255) {
            let h = hello();
            let mut r = reply(&secret(), &h, Transport::Udp, 6970);
            r[at] ^= mask;
            prop_assert_eq!(verify(&secret(), &h.nonce, &r), Verified::Not);
        }
    }
}
