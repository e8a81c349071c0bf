//! NetBIOS name service (RFC 1001/1002), UDP port 137.
//!
//! The probe is a node status request (NBSTAT, RFC 1002 section 4.2.17): a
//! query for the wildcard name `*` (padded with NULs to 16 bytes and
//! first-level encoded), question type NBSTAT (0x21), class IN, with the
//! transaction ID from the nonce. NM_FLAGS are clear: it is a unicast
//! request, not a broadcast.
//!
//! A reply is any name service response (R bit set, opcode QUERY) with our
//! transaction ID: the positive node status response (section 4.2.18) lists
//! the names the node has registered, and a negative response (a non-zero
//! RCODE) still proves a name server answered. Every section the header
//! announces up to the first answer must be present and well-formed.

use super::bytes::{Reader, be16};
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// Question and resource record type NBSTAT.
pub const TYPE_NBSTAT: u16 = 0x0021;

/// Class IN.
const CLASS_IN: u16 = 0x0001;

/// Length of one NODE_NAME entry: a 16-byte name and two flag bytes.
const NODE_NAME_LEN: usize = 18;

/// NAME_FLAGS bit: a group name.
const GROUP_FLAG: u16 = 0x8000;

/// Length of a first-level encoded NetBIOS name label.
const ENCODED_NAME_LEN: u8 = 32;

/// How many names a reply's detail lists before summarising.
const LISTED_NAMES: usize = 8;

/// A NetBIOS name service probe: node status request for `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    id: u16,
    datagram: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port; the transaction ID is [`Nonce::u16`].
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let id = nonce.u16();
        Request {
            id,
            datagram: request(id),
        }
    }
}

/// The first-level encoding (RFC 1001 section 14.1) of a 16-byte NetBIOS
/// name: each half-byte becomes a letter `A`-`P`, as one 32-byte label.
fn encode_name(name: &[u8; 16]) -> Vec<u8> {
    let mut encoded = vec![32];
    for byte in name {
        encoded.push(b'A' + (byte >> 4));
        encoded.push(b'A' + (byte & 0x0f));
    }
    encoded.push(0);
    encoded
}

/// The 50-byte node status request with transaction ID `id`.
pub fn request(id: u16) -> Vec<u8> {
    let mut wildcard = [0u8; 16];
    wildcard[0] = b'*';
    let mut packet = Vec::with_capacity(50);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x00, 0x00]);
    packet.extend_from_slice(&1u16.to_be_bytes());
    packet.extend_from_slice(&[0; 6]);
    packet.extend_from_slice(&encode_name(&wildcard));
    packet.extend_from_slice(&TYPE_NBSTAT.to_be_bytes());
    packet.extend_from_slice(&CLASS_IN.to_be_bytes());
    packet
}

/// A response code (RFC 1002 section 4.2.1.1 and the per-packet tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    /// 0: positive response.
    Ok,
    /// 1: FMT_ERR, format error.
    FormatError,
    /// 2: SRV_ERR, server failure.
    ServerFailure,
    /// 3: NAM_ERR, name not found.
    NameError,
    /// 4: IMP_ERR, unsupported request.
    NotImplemented,
    /// 5: RFS_ERR, refused.
    Refused,
    /// 6: ACT_ERR, name already active.
    Active,
    /// 7: CFT_ERR, name in conflict.
    Conflict,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for Rcode {
    fn from(n: u8) -> Self {
        match n {
            0 => Rcode::Ok,
            1 => Rcode::FormatError,
            2 => Rcode::ServerFailure,
            3 => Rcode::NameError,
            4 => Rcode::NotImplemented,
            5 => Rcode::Refused,
            6 => Rcode::Active,
            7 => Rcode::Conflict,
            n => Rcode::Unknown(n),
        }
    }
}

impl Rcode {
    /// The RFC 1002 name, `NAM_ERR`, or `Unknown(n)`.
    pub fn name(self) -> String {
        let name = match self {
            Rcode::Ok => "OK",
            Rcode::FormatError => "FMT_ERR",
            Rcode::ServerFailure => "SRV_ERR",
            Rcode::NameError => "NAM_ERR",
            Rcode::NotImplemented => "IMP_ERR",
            Rcode::Refused => "RFS_ERR",
            Rcode::Active => "ACT_ERR",
            Rcode::Conflict => "CFT_ERR",
            Rcode::Unknown(n) => return format!("Unknown({n})"),
        };
        name.to_string()
    }
}

/// One name from a node status response's NODE_NAME_ARRAY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeName {
    /// The first 15 bytes, trailing spaces removed.
    pub name: Vec<u8>,
    /// The 16th byte, the name's type suffix (0x00 workstation, 0x20 file
    /// server, ...).
    pub suffix: u8,
    /// NAME_FLAGS.
    pub flags: u16,
}

impl NodeName {
    /// Whether this is a group name.
    pub fn is_group(&self) -> bool {
        self.flags & GROUP_FLAG != 0
    }
}

impl std::fmt::Display for NodeName {
    /// `PEERS<20>`, with unprintable bytes shown as `.`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name: String = self
            .name
            .iter()
            .map(|b| {
                if b.is_ascii_graphic() || *b == b' ' {
                    char::from(*b)
                } else {
                    '.'
                }
            })
            .collect();
        write!(f, "{name}<{:02x}>", self.suffix)
    }
}

/// A NetBIOS name service response, as far as the probe reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// NAME_TRN_ID.
    pub id: u16,
    /// RCODE.
    pub rcode: Rcode,
    /// Type of the first answer record: NBSTAT for a node status, NULL
    /// (0x000a) in a negative response, NB (0x0020) for a name query.
    pub answer_type: u16,
    /// The names of a node status answer (empty for other answers).
    pub names: Vec<NodeName>,
}

/// Reads an RR_NAME that starts with an encoded NetBIOS name (one 32-byte
/// label of the letters `A` to `P`), followed by scope labels or a
/// compression pointer, and returns that first label.
fn netbios_name<'a>(reader: &mut Reader<'a>) -> Option<&'a [u8]> {
    if reader.u8()? != ENCODED_NAME_LEN {
        return None;
    }
    let encoded = reader.take(usize::from(ENCODED_NAME_LEN))?;
    if !encoded.iter().all(|b| (b'A'..=b'P').contains(b)) {
        return None;
    }
    loop {
        match reader.u8()? {
            0 => return Some(encoded),
            0xc0.. => return reader.take(1).map(|_| encoded),
            len @ 1..64 => {
                reader.take(usize::from(len))?;
            }
            _ => return None,
        }
    }
}

/// Parses the node status names in an NBSTAT RDATA.
fn node_names(rdata: &[u8]) -> Option<Vec<NodeName>> {
    let mut cursor = Reader::new(rdata);
    let count = cursor.u8()?;
    let mut names = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let entry = cursor.take(NODE_NAME_LEN)?;
        let name = entry.get(..15)?;
        let suffix = *entry.get(15)?;
        let flags = be16(entry, 16)?;
        names.push(NodeName {
            name: name.trim_ascii_end().to_vec(),
            suffix,
            flags,
        });
    }
    Some(names)
}

/// Parses `bytes` as a name service response (R bit set, opcode QUERY).
/// RFC 1002 responses carry their answer in a resource record, negative
/// ones too, so at least one answer is required: the questions the header
/// announces and the first answer must be complete, every name in them an
/// encoded NetBIOS name (which is what sets NBNS apart from DNS, whose
/// header is the same), and an NBSTAT answer's name array must fit its
/// RDATA.
pub fn recognise(bytes: &[u8]) -> Option<Response> {
    let mut cursor = Reader::new(bytes);
    let id = cursor.be16()?;
    let flags = cursor.be16()?;
    let questions = cursor.be16()?;
    let answers = cursor.be16()?;
    cursor.take(4)?;
    let is_response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0x0f;
    if !is_response || opcode != 0 || answers == 0 {
        return None;
    }
    let rcode = Rcode::from(flags.to_be_bytes()[1] & 0x0f);
    for _ in 0..questions {
        netbios_name(&mut cursor)?;
        cursor.take(4)?;
    }
    netbios_name(&mut cursor)?;
    let answer_type = cursor.be16()?;
    cursor.take(6)?;
    let rdlength = cursor.be16()?;
    let rdata = cursor.take(usize::from(rdlength))?;
    let names = if answer_type == TYPE_NBSTAT {
        node_names(rdata)?
    } else {
        Vec::new()
    };
    Some(Response {
        id,
        rcode,
        answer_type,
        names,
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.datagram.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let response = recognise(reply)?;
        if response.id != self.id {
            return None;
        }
        let mut shown: Vec<String> = Vec::new();
        for name in &response.names {
            let text = name.to_string();
            if !shown.contains(&text) {
                shown.push(text);
            }
        }
        let detail = if response.rcode != Rcode::Ok {
            format!(
                "NetBIOS name service, negative response {}",
                response.rcode.name()
            )
        } else if shown.is_empty() {
            "NetBIOS name service response, no names".to_string()
        } else {
            let more = shown.len().saturating_sub(LISTED_NAMES);
            shown.truncate(LISTED_NAMES);
            let mut detail = format!("NetBIOS node status: {}", shown.join(", "));
            if more > 0 {
                detail.push_str(&format!(", {more} more"));
            }
            detail
        };
        Some(Reply::new("netbios-ns", detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{
        NONCE_3A7C, assert_bit_flips_refused, assert_other_replies_refused,
        assert_truncations_refused, byte_changes, datagrams, hex, id_field_property, mutations,
        other_nonce_property, other_nonces,
    };
    use proptest::prelude::*;

    /// The node status request this module builds for `NONCE_3A7C`, as sent to
    /// nmbd.
    const SENT: &str = include_str!("fixtures/netbios-request.hex");

    /// nmbd (Samba 4.17.12) answering `SENT`: five names and zeroed
    /// statistics.
    const NMBD_NODE_STATUS: &str = include_str!("fixtures/netbios-nmbd-node-status.hex");

    /// The same nmbd's negative name query response (NAM_ERR) carrying our
    /// transaction ID.
    const NMBD_NEGATIVE: &str = include_str!("fixtures/netbios-nmbd-negative.hex");

    fn probe() -> Request {
        Request::new(&ProbeContext::default(), &NONCE_3A7C)
    }

    #[test]
    fn builds_the_request_nmbd_answered() {
        assert_eq!(probe().datagrams(), vec![hex(SENT)]);
    }

    #[test]
    fn request_fields_sit_at_rfc_1002_offsets() {
        let packet = request(0xabcd);
        assert_eq!(packet.len(), 50);
        assert_eq!(packet[0..2], [0xab, 0xcd], "NAME_TRN_ID");
        assert_eq!(
            packet[2..4],
            [0, 0],
            "query, NM_FLAGS clear (not broadcast)"
        );
        assert_eq!(packet[4..12], [0, 1, 0, 0, 0, 0, 0, 0], "QDCOUNT 1");
        assert_eq!(packet[12], 32, "one 32-byte label");
        assert_eq!(&packet[13..15], b"CK", "'*' first-level encoded");
        assert!(
            packet[15..45].iter().all(|b| *b == b'A'),
            "NUL padding encoded"
        );
        assert_eq!(packet[45], 0, "end of name");
        assert_eq!(packet[46..50], [0, 0x21, 0, 1], "NBSTAT, IN");
    }

    #[test]
    fn recognises_the_nmbd_node_status() {
        let reply = probe().recognise(&hex(NMBD_NODE_STATUS));
        assert_eq!(
            reply,
            Some(Reply::new(
                "netbios-ns",
                "NetBIOS node status: PEERS<00>, PEERS<03>, PEERS<20>, PPLAB<00>, PPLAB<1e>"
            ))
        );
        let parsed = recognise(&hex(NMBD_NODE_STATUS)).expect("a response");
        assert_eq!(parsed.answer_type, TYPE_NBSTAT);
        let groups: Vec<bool> = parsed.names.iter().map(NodeName::is_group).collect();
        assert_eq!(groups, [false, false, false, true, true]);
    }

    #[test]
    fn recognises_a_negative_response_with_our_id() {
        let reply = probe().recognise(&hex(NMBD_NEGATIVE));
        assert_eq!(
            reply,
            Some(Reply::new(
                "netbios-ns",
                "NetBIOS name service, negative response NAM_ERR"
            ))
        );
    }

    #[test]
    fn rejects_an_id_one_bit_away() {
        for fixture in [NMBD_NODE_STATUS, NMBD_NEGATIVE] {
            let reply = hex(fixture);
            assert_eq!(reply[..2], NONCE_3A7C.u16().to_be_bytes());
            assert_bit_flips_refused(&probe(), &reply, 0..2);
        }
    }

    #[test]
    fn rejects_every_truncation() {
        for fixture in [NMBD_NODE_STATUS, NMBD_NEGATIVE] {
            assert_truncations_refused(&probe(), &hex(fixture));
        }
    }

    #[test]
    fn rejects_its_own_request_and_other_protocols() {
        assert_eq!(probe().recognise(&hex(SENT)), None);
        assert_other_replies_refused(&probe(), "netbios");
    }

    #[test]
    fn a_name_array_longer_than_its_rdata_is_rejected() {
        let mut reply = hex(NMBD_NODE_STATUS);
        let num_names = 12 + 34 + 10;
        reply[num_names] = 8;
        assert_eq!(probe().recognise(&reply), None);
    }

    #[test]
    fn compressed_names_unprintable_bytes_and_long_lists_are_handled() {
        let mut packet = hex("3a7c 8400 0000 0001 0000 0000");
        packet.push(32);
        packet.extend_from_slice(b"EBEBEBEBEBEBEBEBEBEBEBEBEBEBEBEB");
        packet.extend_from_slice(&hex("05 7363 6f70 65 c0 0c 0021 0001 00000000"));
        let count = 10u8;
        let mut rdata = vec![count];
        for i in 0..count {
            let mut entry = *b"\x01\x02__MSBROWSE__\x02\x01\x84\x00";
            entry[14] = b'0' + i;
            rdata.extend_from_slice(&entry);
        }
        packet.extend_from_slice(&u16::try_from(rdata.len()).expect("small").to_be_bytes());
        packet.extend_from_slice(&rdata);
        let reply = probe().recognise(&packet).expect("recognised");
        assert!(
            reply
                .detail
                .starts_with("NetBIOS node status: ..__MSBROWSE__0<01>, "),
            "{}",
            reply.detail
        );
        assert!(reply.detail.ends_with(", 2 more"), "{}", reply.detail);
    }

    #[test]
    fn a_dns_style_name_or_a_bare_header_is_not_netbios() {
        let mut dns_name = hex(NMBD_NEGATIVE);
        dns_name[12] = 31;
        assert_eq!(probe().recognise(&dns_name), None);
        let mut lower_case = hex(NMBD_NEGATIVE);
        lower_case[13] = b'e';
        assert_eq!(probe().recognise(&lower_case), None);
        let bare = hex("3a7c 8583 0000 0000 0000 0000");
        assert_eq!(probe().recognise(&bare), None);
    }

    #[test]
    fn unknown_rcodes_parse_as_unknown() {
        assert_eq!(Rcode::from(9), Rcode::Unknown(9));
        assert_eq!(Rcode::Unknown(9).name(), "Unknown(9)");
    }

    proptest! {
        #[test]
        fn an_id_byte_changed_is_refused(negative in any::<bool>(), change in byte_changes()) {
            let fixture = if negative { NMBD_NEGATIVE } else { NMBD_NODE_STATUS };
            id_field_property(&probe(), &hex(fixture), 0..2, change)?;
        }

        #[test]
        fn a_request_with_another_id_refuses_the_captures(nonce in other_nonces(NONCE_3A7C, 0..2)) {
            let request = Request::new(&ProbeContext::default(), &nonce);
            for fixture in [NMBD_NODE_STATUS, NMBD_NEGATIVE] {
                other_nonce_property(&request, &hex(fixture))?;
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_capture(
            negative in any::<bool>(),
            mutation in mutations(),
        ) {
            let fixture = if negative { NMBD_NEGATIVE } else { NMBD_NODE_STATUS };
            let _ = probe().recognise(&mutation.apply(&hex(fixture)));
        }
    }
}
