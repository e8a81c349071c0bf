//! The responder protocol: `portprobe listen` on the far side answers a
//! client's hello on every port it holds, with a tag only the holder of the
//! shared secret can compute, so the client knows it reached *that*
//! responder on *that* port (not a middlebox, a NAT's own stack or another
//! service). The tag also covers what the responder saw of the hello (where
//! it came from, where it arrived), so a proof relayed from another path, or
//! a translation on the way, shows in the result instead of hiding.
//!
//! ```text
//! hello (client to responder), 80 bytes:
//!   0..4   "PPR2"
//!   4      1 (hello)
//!   5      transport: 6 TCP, 17 UDP
//!   6..8   the port the client probes, big-endian
//!   8..24  16 random bytes (the nonce)
//!   24..80 zeros
//!
//! reply (responder to client), 68 bytes:
//!   0..4   "PPR2"
//!   4      2 (reply)
//!   5      transport the hello came in on
//!   6      flags: 1 = the responder refused UDP hellos over its total
//!          cap, or lost some unread, in the last 10 s (it may be missing
//!          others now)
//!   7      0
//!   8..16  the hello's nonce, its first 8 bytes
//!   16..32 the address the hello came from (IPv4 as IPv4-mapped IPv6)
//!   32..34 the port it came from
//!   34..50 the address it was sent to (`::` when the kernel did not say)
//!   50..52 the port it arrived on
//!   52..68 HMAC-SHA-256(secret, "portprobe responder 2" | nonce | bytes 0..52),
//!          its first 16 bytes (RFC 2104 section 5, as RFC 4868 does)
//!
//! busy notice (responder to a TCP client it has no room for), 8 bytes:
//!   0..4   "PPR2"
//!   4      3 (notice)
//!   5      6 (TCP)
//!   6      1 (busy: every connection slot is taken, try again later)
//!   7      0
//! ```
//!
//! A reply is shorter than the hello that draws it (68 bytes for 80): the
//! responder never amplifies. The nonce it echoes in clear tells a client
//! its own reply (which, with a bad tag, means another secret) from the
//! responder's reply to someone else's hello (a forger's, say, that named
//! the client's address), which it ignores. The zeros make a hello that size, and a
//! responder answers nothing but a hello of exactly that form; a hello of
//! the first version of the protocol ("PPR1", 48 bytes) gets no answer. The
//! busy notice carries no tag: it can only make a client wait and report
//! the port unproven, never prove it (and over TCP only a peer of the
//! connection can send it).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::bytes::be16;
use super::{Match, Nonce, ProbeContext, Reply, UdpRequest};
use crate::port::Transport;

/// Every message starts with this.
pub const MAGIC: &[u8; 4] = b"PPR2";
/// Length of a hello.
pub const HELLO_LEN: usize = 80;
/// Length of a reply.
pub const REPLY_LEN: usize = 68;
/// Length of a busy notice.
pub const NOTICE_LEN: usize = 8;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;
/// Bytes of the HMAC-SHA-256 output a reply carries.
pub const TAG_LEN: usize = 16;

const HELLO: u8 = 1;
const REPLY: u8 = 2;
const NOTICE: u8 = 3;
const BUSY: u8 = 1;
const LIMITING: u8 = 1;
/// What the tag is computed over first, so that no other use of the
/// secret (nor the first version of the protocol) can produce one.
const CONTEXT: &[u8] = b"portprobe responder 2";
/// Where the tag starts: everything before it is covered.
const TAGGED: usize = REPLY_LEN - TAG_LEN;

/// The busy notice.
pub const BUSY_NOTICE: [u8; NOTICE_LEN] = [b'P', b'P', b'R', b'2', NOTICE, 6, BUSY, 0];

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
            port: be16(bytes, 6)?,
            nonce,
        })
    }
}

/// What the responder saw of a hello, as its reply says (under the tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Seen {
    /// The transport it came in on.
    pub transport: Transport,
    /// Where it came from (an IPv4 address as IPv4).
    pub from: SocketAddr,
    /// Where it arrived: the address it was sent to (unspecified when the
    /// responder's kernel did not say) and the port.
    pub to: SocketAddr,
    /// The responder refused UDP hellos over its total cap, or lost some
    /// unread, in the last few seconds: silence from its UDP ports may be
    /// its own.
    pub limiting: bool,
}

fn put_endpoint(out: &mut [u8], at: SocketAddr) {
    let v6 = match at.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    out[..16].copy_from_slice(&v6.octets());
    out[16..18].copy_from_slice(&at.port().to_be_bytes());
}

fn endpoint(bytes: &[u8]) -> SocketAddr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&bytes[..16]);
    SocketAddr::new(
        Ipv6Addr::from(octets).to_canonical(),
        u16::from_be_bytes([bytes[16], bytes[17]]),
    )
}

fn tag(secret: &Secret, nonce: &[u8; 16], covered: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    mac.update(CONTEXT);
    mac.update(nonce);
    mac.update(covered);
    mac
}

/// The reply to `hello`, telling what the responder saw of it.
pub fn reply(secret: &Secret, hello: &Hello, seen: &Seen) -> [u8; REPLY_LEN] {
    let mut out = [0u8; REPLY_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4] = REPLY;
    out[5] = transport_code(seen.transport);
    out[6] = if seen.limiting { LIMITING } else { 0 };
    out[8..16].copy_from_slice(&hello.nonce[..8]);
    put_endpoint(&mut out[16..34], seen.from);
    put_endpoint(&mut out[34..52], seen.to);
    let full = tag(secret, &hello.nonce, &out[..TAGGED])
        .finalize()
        .into_bytes();
    out[TAGGED..].copy_from_slice(&full[..TAG_LEN]);
    out
}

/// Checks `bytes` as the reply to the hello that carried `nonce`, and says
/// what the responder saw; `None` when it is no reply from a holder of the
/// secret to that hello. The tag is compared in constant time.
pub fn verify(secret: &Secret, nonce: &[u8; 16], bytes: &[u8]) -> Option<Seen> {
    if bytes.len() != REPLY_LEN || &bytes[..4] != MAGIC || bytes[4] != REPLY {
        return None;
    }
    tag(secret, nonce, &bytes[..TAGGED])
        .verify_truncated_left(&bytes[TAGGED..])
        .ok()?;
    Some(Seen {
        transport: transport_of(bytes[5])?,
        from: endpoint(&bytes[16..34]),
        to: endpoint(&bytes[34..52]),
        limiting: bytes[6] & LIMITING != 0,
    })
}

/// Whether `bytes` have the form of a reply to some other hello than the
/// one that carried `nonce` (they echo another nonce): the responder
/// answering someone else, not a sign of another program on its port.
pub fn answers_another(nonce: &[u8; 16], bytes: &[u8]) -> bool {
    bytes.len() == REPLY_LEN
        && &bytes[..4] == MAGIC
        && bytes[4] == REPLY
        && bytes[8..16] != nonce[..8]
}

/// Whether `bytes` are the busy notice.
pub fn is_busy(bytes: &[u8]) -> bool {
    bytes == BUSY_NOTICE
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

    fn answers_another(&self, reply: &[u8]) -> bool {
        answers_another(&self.hello.nonce, reply)
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let seen = verify(self.secret.as_ref()?, &self.hello.nonce, reply)?;
        (seen.transport == Transport::Udp).then(|| {
            Reply::with_match(
                "responder",
                "answered by the responder",
                Match::Responder(seen),
            )
        })
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

    fn seen() -> Seen {
        Seen {
            transport: Transport::Udp,
            from: "198.18.0.2:40122".parse().unwrap(),
            to: "198.18.1.2:6970".parse().unwrap(),
            limiting: false,
        }
    }

    #[test]
    fn a_hello_round_trips_and_a_reply_verifies_with_what_was_seen() {
        let h = hello();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), HELLO_LEN);
        assert_eq!(Hello::parse(&bytes), Some(h));
        let r = reply(&secret(), &h, &seen());
        assert!(r.len() < bytes.len(), "a reply never outgrows its hello");
        assert!(BUSY_NOTICE.len() < bytes.len());
        assert_eq!(verify(&secret(), &h.nonce, &r), Some(seen()));
        assert_eq!(&r[8..16], &h.nonce[..8], "the nonce echoed");
        // IPv4 travels IPv4-mapped: bytes 16..32 are ::ffff:198.18.0.2.
        assert_eq!(&r[16..28], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(&r[28..32], &[198, 18, 0, 2]);
        let v6 = Seen {
            transport: Transport::Tcp,
            from: "[2001:db8::2]:50000".parse().unwrap(),
            to: "[2001:db8:1::2]:5900".parse().unwrap(),
            limiting: true,
        };
        let r6 = reply(&secret(), &h, &v6);
        assert_eq!(r6[6], 1, "the limiting flag");
        assert_eq!(verify(&secret(), &h.nonce, &r6), Some(v6));
    }

    #[test]
    fn another_secret_nonce_or_any_seen_field_is_refused() {
        let h = hello();
        let r = reply(&secret(), &h, &seen());
        let other = Secret::new(b"another secret of the lab".to_vec()).unwrap();
        assert_eq!(verify(&other, &h.nonce, &r), None);
        assert_eq!(verify(&secret(), b"fedcba9876543210", &r), None);
        // A relay cannot claim the responder saw someone else.
        for at in [5, 6, 9, 31, 33, 49, 51] {
            let mut changed = r;
            changed[at] ^= 1;
            assert_eq!(verify(&secret(), &h.nonce, &changed), None, "byte {at}");
        }
        // The tag is under the first version's context no longer.
        let mut v1 = r;
        v1[3] = b'1';
        assert_eq!(verify(&secret(), &h.nonce, &v1), None);
    }

    #[test]
    fn only_an_exact_hello_is_one() {
        let good = hello().to_bytes();
        assert_eq!(Hello::parse(&good[..HELLO_LEN - 1]), None);
        let mut longer = good.to_vec();
        longer.push(0);
        assert_eq!(Hello::parse(&longer), None);
        let mut padded = good;
        padded[HELLO_LEN - 1] = 1;
        assert_eq!(Hello::parse(&padded), None, "padding must be zeros");
        let mut kind = good;
        kind[4] = REPLY;
        assert_eq!(Hello::parse(&kind), None);
        let mut transport = good;
        transport[5] = 1;
        assert_eq!(Hello::parse(&transport), None);
        assert_eq!(Hello::parse(b""), None);
        // A first-version hello (48 bytes, "PPR1") is not one.
        let mut v1 = [0u8; 48];
        v1[..4].copy_from_slice(b"PPR1");
        v1[4] = HELLO;
        v1[5] = 17;
        assert_eq!(Hello::parse(&v1), None);
    }

    #[test]
    fn a_reply_to_another_hello_is_told_from_a_reply_to_ours() {
        let h = hello();
        let ours = reply(&secret(), &h, &seen());
        assert!(!answers_another(&h.nonce, &ours));
        let other = Hello {
            nonce: *b"fedcba9876543210",
            ..h
        };
        let theirs = reply(&secret(), &other, &seen());
        assert!(answers_another(&h.nonce, &theirs));
        // Ours under another secret: still ours, so no proof but no other.
        let wrong = Secret::new(b"another secret of the lab".to_vec()).unwrap();
        let ours_wrong = reply(&wrong, &h, &seen());
        assert!(!answers_another(&h.nonce, &ours_wrong));
        assert_eq!(verify(&secret(), &h.nonce, &ours_wrong), None);
        assert!(!answers_another(&h.nonce, b"SSH-2.0-OpenSSH"));
        let request = Request::new(
            &ProbeContext {
                responder_secret: Some(secret()),
                ..ProbeContext::default()
            },
            &Nonce(h.nonce),
            6970,
        );
        assert!(request.answers_another(&theirs));
        assert_eq!(request.recognise(&theirs), None);
    }

    #[test]
    fn the_busy_notice_is_recognised_and_proves_nothing() {
        assert!(is_busy(&BUSY_NOTICE));
        assert!(!is_busy(&BUSY_NOTICE[..7]));
        assert!(!is_busy(&reply(&secret(), &hello(), &seen())));
        assert_eq!(verify(&secret(), &hello().nonce, &BUSY_NOTICE), None);
    }

    #[test]
    fn a_short_secret_is_refused_and_never_shown() {
        assert!(Secret::new(vec![7; MIN_SECRET - 1]).is_none());
        let s = Secret::new(b"do not print me, please".to_vec()).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(23 bytes)");
    }

    #[test]
    fn the_udp_probe_takes_only_its_own_reply_and_only_from_the_probed_port() {
        let ctx = ProbeContext {
            responder_secret: Some(secret()),
            ..ProbeContext::default()
        };
        let nonce = Nonce(*b"0123456789abcdef");
        let request = Request::new(&ctx, &nonce, 6970);
        let sent = request.datagrams();
        let h = Hello::parse(&sent[0]).unwrap();
        let ours = reply(&secret(), &h, &seen());
        let got = request.recognise(&ours).unwrap();
        assert_eq!(got.matched, Match::Responder(seen()));
        let probed: SocketAddr = "198.18.1.2:6970".parse().unwrap();
        assert!(got.accepts(probed, probed));
        assert!(
            !got.accepts(probed, "198.18.1.1:6970".parse().unwrap()),
            "a proof relayed from elsewhere"
        );
        assert!(!got.accepts(probed, "198.18.1.2:6971".parse().unwrap()));
        let tcp = Seen {
            transport: Transport::Tcp,
            ..seen()
        };
        let over_tcp = reply(&secret(), &h, &tcp);
        assert_eq!(request.recognise(&over_tcp), None, "a TCP proof");
        let without = Request::new(&ProbeContext::default(), &nonce, 6970);
        assert_eq!(without.recognise(&ours), None, "no secret, no proof");
    }

    proptest! {
        #[test]
        fn never_panics_and_never_takes_noise(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Hello::parse(&bytes);
            prop_assert_eq!(verify(&secret(), &hello().nonce, &bytes), None);
        }

        #[test]
        fn any_changed_byte_of_a_reply_is_refused(at in 0..REPLY_LEN, mask in 1u8..=255) {
            let h = hello();
            let mut r = reply(&secret(), &h, &seen());
            r[at] ^= mask;
            prop_assert_eq!(verify(&secret(), &h.nonce, &r), None);
        }
    }
}
