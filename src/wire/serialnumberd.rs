//! serialnumberd, UDP port 626: the daemon with which Mac OS X Server (and
//! Xsan, Final Cut Server) checks that no other server on the network uses
//! the same serial number.
//!
//! Apple publishes no specification. The request is the text query nmap sends
//! (`nmap-payloads` and `nmap-service-probes`, "serialnumberd"):
//! `SNQUERY: 127.0.0.1:AAAAAA:xsvr`, an address, a dummy serial number and
//! the product code `xsvr` (Mac OS X Server), with no terminator. It carries
//! no ID, and none of its fields is known to come back, so the query is sent
//! exactly as the one known to draw answers.
//!
//! What a server answers is known only from nmap's match lines: text of the
//! form `SNRESPS:<host>:0x<40 hex>:xsvr:0x<40 hex>:0x<8 hex>:0x<40 hex>:<host>`
//! followed by one zero byte, where `<host>` is an address or host name. The
//! recogniser accepts that shape and no other: eight colon-separated fields
//! of printable ASCII, the first `SNRESPS`, the two hosts made of letters,
//! digits, dots, hyphens and underscores, the fourth a product code of
//! letters and digits, and the others `0x` followed by exactly 40, 40, 8 and
//! 40 hexadecimal digits; then the zero byte, which ends the datagram. A
//! truncated reply therefore never passes, and nothing but serialnumberd
//! sends text of this layout. Nothing in it is ours, though, so such a reply
//! is [`Match::ShapeFromPort`](super::Match::ShapeFromPort): it counts only
//! from the probed address and port.

use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The query nmap sends, byte for byte.
pub const QUERY: &[u8] = b"SNQUERY: 127.0.0.1:AAAAAA:xsvr";

/// A serial number query. Nothing from the nonce goes into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request;

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, _nonce: &Nonce) -> Self {
        Request
    }
}

/// The serial number query (always the same bytes).
pub fn request() -> Vec<u8> {
    QUERY.to_vec()
}

/// A decoded `SNRESPS` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The host the server names first (its address or name).
    pub host: String,
    /// The product code, `xsvr` for Mac OS X Server.
    pub product: String,
}

impl Parsed {
    /// One line for reports.
    pub fn describe(&self) -> String {
        format!(
            "serialnumberd SNRESPS from {} (product {})",
            self.host, self.product
        )
    }
}

/// Whether `field` is `0x` followed by exactly `digits` hexadecimal digits.
fn is_hex_number(field: &str, digits: usize) -> bool {
    field
        .strip_prefix("0x")
        .is_some_and(|hex| hex.len() == digits && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `field` is a plausible host: an address or host name.
fn is_host(field: &str) -> bool {
    !field.is_empty()
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Parses an `SNRESPS` reply as described in the module documentation.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    let text = bytes.strip_suffix(&[0])?;
    if !text.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let fields: Vec<&str> = text.split(':').collect();
    let [tag, host, first, product, second, third, fourth, last_host] = fields.as_slice() else {
        return None;
    };
    let shaped = *tag == "SNRESPS"
        && is_host(host)
        && is_host(last_host)
        && !product.is_empty()
        && product.bytes().all(|b| b.is_ascii_alphanumeric())
        && is_hex_number(first, 40)
        && is_hex_number(second, 40)
        && is_hex_number(third, 8)
        && is_hex_number(fourth, 40);
    shaped.then(|| Parsed {
        host: host.to_string(),
        product: product.to_string(),
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![request()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        recognise(reply).map(|parsed| Reply::shape_from_port("serialnumberd", parsed.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Match;
    use crate::wire::fixtures::{
        assert_other_replies_refused, assert_truncations_refused, byte_changes, context_5a17,
        datagrams, layout_property, mutations, nonce_5a17,
    };
    use proptest::prelude::*;

    /// A reply of the shape nmap's match lines describe (no serialnumberd
    /// runs outside Mac OS X Server): tag, host, a 40-digit hex number, the
    /// product, two more hex numbers of 40 and 8 digits, another of 40, the
    /// host again, and a zero byte.
    fn reply(host: &str) -> Vec<u8> {
        let forty = "0123456789ABCDEF0123456789ABCDEF01234567";
        format!("SNRESPS:{host}:0x{forty}:xsvr:0x{forty}:0x0badf00d:0x{forty}:{host}\0")
            .into_bytes()
    }

    fn probe() -> Request {
        Request::new(&context_5a17(), &nonce_5a17(1))
    }

    #[test]
    fn the_query_is_nmaps() {
        assert_eq!(
            probe().datagrams(),
            vec![b"SNQUERY: 127.0.0.1:AAAAAA:xsvr".to_vec()]
        );
    }

    #[test]
    fn a_reply_of_the_known_shape_is_recognised() {
        assert_eq!(
            probe().recognise(&reply("127.0.0.1")),
            Some(Reply::shape_from_port(
                "serialnumberd",
                "serialnumberd SNRESPS from 127.0.0.1 (product xsvr)"
            ))
        );
        assert_eq!(
            recognise(&reply("xserve-2.example.com")).map(|p| p.host),
            Some("xserve-2.example.com".to_string())
        );
    }

    #[test]
    fn truncated_replies_are_refused() {
        assert_truncations_refused(&probe(), &reply("127.0.0.1"));
    }

    #[test]
    fn replies_of_another_shape_are_refused() {
        let good = String::from_utf8(reply("127.0.0.1")).unwrap();
        for bad in [
            good.replacen("SNRESPS", "SNRESPX", 1),
            good.replacen(":0x0badf00d:", ":0x0badf00:", 1),
            good.replacen(":0x0123", ":0123", 1),
            good.replacen(":xsvr:", "::", 1),
            good.replacen("127.0.0.1:0x", "127.0.0.1:extra:0x", 1),
            good.replacen("127.0.0.1:0x", "127 0.0.1:0x", 1),
            good.replacen('\0', "\0\0", 1),
            good.trim_end_matches('\0').to_string(),
        ] {
            assert_eq!(recognise(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn other_protocols_replies_and_the_query_itself_are_refused() {
        assert_other_replies_refused(&probe(), "serialnumberd");
        assert_eq!(probe().recognise(QUERY), None);
    }

    /// Offsets of the bytes the layout fixes in `reply`: the tag, every
    /// colon, the `0x` of each number and the final zero byte.
    fn layout(reply: &[u8]) -> Vec<usize> {
        let mut at: Vec<usize> = (0..b"SNRESPS".len()).collect();
        for (colon, _) in reply.iter().enumerate().filter(|(_, b)| **b == b':') {
            at.push(colon);
            if reply[colon + 1..].starts_with(b"0x") {
                at.extend([colon + 1, colon + 2]);
            }
        }
        at.push(reply.len() - 1);
        at
    }

    proptest! {
        #[test]
        fn a_layout_byte_changed_is_refused(change in byte_changes()) {
            let reply = reply("127.0.0.1");
            layout_property(&probe(), &reply, Match::ShapeFromPort, &layout(&reply), change)?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_replies(mutation in mutations()) {
            let _ = probe().recognise(&mutation.apply(&reply("127.0.0.1")));
        }
    }
}
