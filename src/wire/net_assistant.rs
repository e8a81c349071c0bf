//! Apple Remote Desktop (ARD, formerly Net Assistant), UDP port 3283: the
//! status query an ARD client sends to find agents.
//!
//! Apple publishes no specification. The request is the five bytes
//! `00 14 00 01 03` that nmap sends (`nmap-payloads` and
//! `nmap-service-probes`, "Apple Remote Desktop"), and which published
//! write-ups on UDP reflection send to ARD agents too. It has no ID field, so
//! replies can only be recognised by their structure, and such a reply is
//! [`Match::ShapeFromPort`](super::Match::ShapeFromPort): it counts only from
//! the probed address and port.
//!
//! What an agent sends back is known from nmap's `nmap-service-probes`
//! ("netassistant" matches for the ARD probe) and from a published capture of
//! a reply to this exact query: a datagram beginning `00 01`, then two bytes
//! that differ between agent versions (`03 ea`, `01 64`), then `00 31`; byte
//! 41 (0x29) is `01`, byte 83 (0x53) is `12`, every other byte up to 125 is
//! zero, and at byte 126 (0x7E) the computer name follows as a Pascal string
//! (length byte, then the name), terminated by a zero byte. Further fields
//! (an Ethernet address, the name again in UTF-16) follow but are not
//! checked.
//!
//! The recogniser accepts exactly that: the fixed bytes at offsets 0-1, 4-5,
//! 41 and 83, zeros from 6 to 40, 42 to 82 and 84 to 125, and a non-empty
//! name of non-zero bytes with its terminator inside the datagram. Taken
//! together these are far too specific to match another protocol's reply or
//! noise by chance, while the two unexplained version bytes are left free.

use super::bytes::be16;
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The ARD status query.
pub const QUERY: [u8; 5] = [0x00, 0x14, 0x00, 0x01, 0x03];

/// Offset of the byte that is always 0x01.
const ONE_AT: usize = 0x29;
/// Offset of the byte that is always 0x12.
const TWELVE_AT: usize = 0x53;
/// Offset of the computer name's length byte.
const NAME_AT: usize = 0x7e;
/// Longest name quoted in a report.
const MAX_NAME_CHARS: usize = 63;

/// A status query. The query carries nothing from the nonce: there is no
/// field to put it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request;

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, _nonce: &Nonce) -> Self {
        Request
    }
}

/// The status query (always the same five bytes).
pub fn request() -> Vec<u8> {
    QUERY.to_vec()
}

/// A decoded status reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Bytes 2-3, which differ between agent versions.
    pub variant: u16,
    /// The computer name.
    pub computer_name: String,
}

impl Parsed {
    /// One line for reports.
    pub fn describe(&self) -> String {
        format!("ARD status reply: computer name {:?}", self.computer_name)
    }
}

/// Whether `bytes[range]` exists and is all zero.
fn zeros(bytes: &[u8], range: std::ops::Range<usize>) -> bool {
    bytes
        .get(range)
        .is_some_and(|slice| slice.iter().all(|&b| b == 0))
}

/// Parses an ARD status reply; `None` unless every fixed field described in
/// the module documentation is present.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    let fixed = bytes.get(..2)? == [0x00, 0x01]
        && bytes.get(4..6)? == [0x00, 0x31]
        && zeros(bytes, 6..ONE_AT)
        && *bytes.get(ONE_AT)? == 0x01
        && zeros(bytes, ONE_AT + 1..TWELVE_AT)
        && *bytes.get(TWELVE_AT)? == 0x12
        && zeros(bytes, TWELVE_AT + 1..NAME_AT);
    if !fixed {
        return None;
    }
    let variant = be16(bytes, 2)?;
    let name_len = usize::from(*bytes.get(NAME_AT)?);
    let name = bytes.get(NAME_AT + 1..NAME_AT + 1 + name_len)?;
    let terminator = *bytes.get(NAME_AT + 1 + name_len)?;
    if name.is_empty() || name.contains(&0) || terminator != 0 {
        return None;
    }
    let computer_name = String::from_utf8_lossy(name)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    Some(Parsed {
        variant,
        computer_name,
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![request()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        recognise(reply).map(|parsed| Reply::shape_from_port("net-assistant", parsed.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Match;
    use crate::wire::fixtures::{
        assert_other_replies_refused, assert_truncations_refused, byte_changes, context_5a17,
        datagrams, hex, layout_property, mutations, nonce_5a17,
    };
    use proptest::prelude::*;

    /// A real agent's reply to the status query, from a published hexdump
    /// (fixtures/README.md); the computer name is `dataheerd4`.
    const PUBLISHED: &str = include_str!("fixtures/ard-status-reply.hex");
    /// The name's terminator is the last byte the recogniser needs.
    const NEEDED: usize = NAME_AT + 1 + 10 + 1;

    fn probe() -> Request {
        Request::new(&context_5a17(), &nonce_5a17(1))
    }

    #[test]
    fn the_query_is_the_five_bytes_nmap_sends() {
        assert_eq!(
            probe().datagrams(),
            vec![vec![0x00, 0x14, 0x00, 0x01, 0x03]]
        );
        assert_eq!(
            Request::new(&ProbeContext::default(), &Nonce([9; 16])).datagrams(),
            probe().datagrams()
        );
    }

    #[test]
    fn the_published_reply_is_recognised() {
        let reply = hex(PUBLISHED);
        assert_eq!(
            probe().recognise(&reply),
            Some(Reply::shape_from_port(
                "net-assistant",
                "ARD status reply: computer name \"dataheerd4\""
            ))
        );
        assert_eq!(recognise(&reply).map(|p| p.variant), Some(0x03ea));
    }

    #[test]
    fn the_other_known_agent_variant_is_recognised() {
        let mut reply = hex(PUBLISHED);
        reply[2..4].copy_from_slice(&[0x01, 0x64]);
        assert_eq!(recognise(&reply).map(|p| p.variant), Some(0x0164));
    }

    #[test]
    fn replies_cut_before_the_end_of_the_name_are_refused() {
        let reply = hex(PUBLISHED);
        assert_truncations_refused(&probe(), &reply[..NEEDED]);
        assert!(probe().recognise(&reply[..NEEDED]).is_some());
    }

    #[test]
    fn every_fixed_byte_is_checked() {
        let reply = hex(PUBLISHED);
        for at in [
            0, 1, 4, 5, 6, 20, 40, ONE_AT, 42, 60, 82, TWELVE_AT, 84, 100, 125,
        ] {
            let mut changed = reply.clone();
            changed[at] ^= 0x04;
            assert_eq!(recognise(&changed), None, "byte {at}");
        }
        let mut no_name = reply.clone();
        no_name[NAME_AT] = 0;
        assert_eq!(recognise(&no_name), None, "empty name");
        let mut unterminated = reply.clone();
        unterminated[NEEDED - 1] = b'x';
        assert_eq!(recognise(&unterminated), None, "name not followed by zero");
        let mut overlong = reply;
        overlong[NAME_AT] = 11;
        assert_eq!(recognise(&overlong), None, "length covering the terminator");
    }

    #[test]
    fn other_protocols_replies_and_the_query_itself_are_refused() {
        assert_other_replies_refused(&probe(), "net_assistant");
        assert_eq!(probe().recognise(&QUERY), None);
    }

    /// Offsets of every byte the layout fixes: `00 01`, `00 31`, the zeros,
    /// `01` and `12` up to the name, the name's length byte and its
    /// terminator.
    fn layout() -> Vec<usize> {
        let mut at = vec![0, 1];
        at.extend(4..=NAME_AT);
        at.push(NEEDED - 1);
        at
    }

    proptest! {
        #[test]
        fn a_layout_byte_changed_is_refused(change in byte_changes()) {
            let reply = hex(PUBLISHED);
            layout_property(&probe(), &reply, Match::ShapeFromPort, &layout(), change)?;
        }

        #[test]
        fn the_version_bytes_are_left_free(change in byte_changes()) {
            let reply = change.apply(&hex(PUBLISHED), 2..4);
            prop_assert_eq!(
                probe().recognise(&reply).map(|reply| reply.matched),
                Some(Match::ShapeFromPort)
            );
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_replies(mutation in mutations()) {
            let _ = probe().recognise(&mutation.apply(&hex(PUBLISHED)));
        }
    }
}
