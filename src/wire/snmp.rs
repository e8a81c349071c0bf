//! SNMP (RFC 3416 PDUs, RFC 1901 community messages, RFC 3412/3414 SNMPv3
//! with the user-based security model), UDP port 161.
//!
//! The probe sends two datagrams:
//!
//! 1. an SNMPv2c `GetRequest` for `sysDescr.0` (1.3.6.1.2.1.1.1.0) with the
//!    configured community; its request-id comes from the nonce. A v1/v2c
//!    agent drops it silently when the community is wrong.
//! 2. an SNMPv3 engine-discovery request (RFC 3414 section 4): flags
//!    noAuthNoPriv with the reportable bit, security model USM, empty
//!    authoritative engine ID and empty user name, and an empty `GetRequest`.
//!    Its msgID comes from the nonce too. An SNMPv3 agent answers it with a
//!    `Report` (`usmStatsUnknownEngineIDs`) that carries its engine ID,
//!    whatever communities or users it has.
//!
//! A reply is either a v2c `Response` PDU with our community and request-id
//! (any error-status still proves SNMP), or a v3 message with our msgID and a
//! `Report` or `Response` PDU in clear.
//!
//! The BER subset SNMP uses is in the `ber` module beside this one; the SMI application types
//! and the context-tagged PDUs are read here, with every length checked
//! against the bytes that are there.

use std::fmt;

use super::ber::{
    Reader, constructed, decode_oid, dotted, integer, octets, oid, signed, tlv, unsigned,
};
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// `sysDescr.0`, the object the v2c request asks for.
pub const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];

/// The `usmStats` subtree (RFC 3414 section 5): a Report's varbind names
/// the counter that caused it.
const USM_STATS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1];

/// msgMaxSize the discovery request announces: the largest UDP payload.
const MAX_MESSAGE_SIZE: i64 = 65507;

/// msgFlags bit: a Report may be sent in answer.
const FLAG_REPORTABLE: u8 = 0x04;

/// msgFlags bit: the scoped PDU is encrypted.
const FLAG_PRIV: u8 = 0x02;

/// msgSecurityModel of the user-based security model.
const SECURITY_MODEL_USM: i64 = 3;

/// How much of sysDescr a reply's detail shows.
const DESCR_CHARS: usize = 80;

/// BER universal and SNMP tags.
mod tag {
    pub use crate::wire::ber::tag::*;
    pub const IP_ADDRESS: u8 = 0x40;
    pub const COUNTER32: u8 = 0x41;
    pub const GAUGE32: u8 = 0x42;
    pub const TIME_TICKS: u8 = 0x43;
    pub const COUNTER64: u8 = 0x46;
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    pub const END_OF_MIB_VIEW: u8 = 0x82;
}

/// An SNMP probe: a v2c get of sysDescr.0 and a v3 engine discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    community: Vec<u8>,
    request_id: i64,
    msg_id: i64,
}

impl Request {
    /// Builds the probe for one port: the v2c request-id is the first four
    /// nonce bytes and the v3 msgID bytes 8 to 11, each with the top bit
    /// cleared (both are non-negative 32-bit integers).
    pub fn new(ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let b = nonce.0;
        let msg_id = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        Request {
            community: ctx.snmp_community.as_bytes().to_vec(),
            request_id: i64::from(nonce.u32() & 0x7fff_ffff),
            msg_id: i64::from(msg_id & 0x7fff_ffff),
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding

/// A PDU with the given tag, request-id and varbind names (values NULL).
fn pdu(pdu_tag: u8, request_id: i64, names: &[&[u32]]) -> Vec<u8> {
    let varbinds: Vec<Vec<u8>> = names
        .iter()
        .map(|name| constructed(tag::SEQUENCE, &[oid(name), tlv(tag::NULL, &[])]))
        .collect();
    constructed(
        pdu_tag,
        &[
            integer(request_id),
            integer(0),
            integer(0),
            constructed(tag::SEQUENCE, &varbinds),
        ],
    )
}

/// The SNMPv2c `GetRequest` for sysDescr.0 with `community` and `request_id`.
pub fn request(community: &[u8], request_id: i64) -> Vec<u8> {
    constructed(
        tag::SEQUENCE,
        &[
            integer(Version::V2c.into()),
            octets(community),
            pdu(PduType::GetRequest.into(), request_id, &[SYS_DESCR]),
        ],
    )
}

/// The SNMPv3 engine-discovery request with `msg_id` (also used as the
/// scoped PDU's request-id): noAuthNoPriv and reportable, USM with empty
/// engine ID, user name and parameters, an empty `GetRequest` in an empty
/// context.
pub fn discovery_request(msg_id: i64) -> Vec<u8> {
    let global = constructed(
        tag::SEQUENCE,
        &[
            integer(msg_id),
            integer(MAX_MESSAGE_SIZE),
            octets(&[FLAG_REPORTABLE]),
            integer(SECURITY_MODEL_USM),
        ],
    );
    let usm = constructed(
        tag::SEQUENCE,
        &[
            octets(b""),
            integer(0),
            integer(0),
            octets(b""),
            octets(b""),
            octets(b""),
        ],
    );
    let scoped = constructed(
        tag::SEQUENCE,
        &[
            octets(b""),
            octets(b""),
            pdu(PduType::GetRequest.into(), msg_id, &[]),
        ],
    );
    constructed(
        tag::SEQUENCE,
        &[integer(Version::V3.into()), global, octets(&usm), scoped],
    )
}

// ---------------------------------------------------------------------------
// Decoding

/// The SNMP message version field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// 0: SNMPv1.
    V1,
    /// 1: SNMPv2c.
    V2c,
    /// 3: SNMPv3.
    V3,
    /// Any other value.
    Unknown(i64),
}

impl From<i64> for Version {
    fn from(n: i64) -> Self {
        match n {
            0 => Version::V1,
            1 => Version::V2c,
            3 => Version::V3,
            n => Version::Unknown(n),
        }
    }
}

impl From<Version> for i64 {
    fn from(version: Version) -> i64 {
        match version {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
            Version::Unknown(n) => n,
        }
    }
}

/// The PDU type, from the context-specific constructed tag (RFC 3416).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PduType {
    /// `[0]` GetRequest.
    GetRequest,
    /// `[1]` GetNextRequest.
    GetNextRequest,
    /// `[2]` Response.
    Response,
    /// `[3]` SetRequest.
    SetRequest,
    /// `[5]` GetBulkRequest.
    GetBulkRequest,
    /// `[6]` InformRequest.
    InformRequest,
    /// `[7]` SNMPv2-Trap.
    TrapV2,
    /// `[8]` Report.
    Report,
    /// Any other tag (an SNMPv1 Trap, `[4]`, has a different body and does
    /// not parse as a PDU here).
    Unknown(u8),
}

impl From<u8> for PduType {
    fn from(tag: u8) -> Self {
        match tag {
            0xa0 => PduType::GetRequest,
            0xa1 => PduType::GetNextRequest,
            0xa2 => PduType::Response,
            0xa3 => PduType::SetRequest,
            0xa5 => PduType::GetBulkRequest,
            0xa6 => PduType::InformRequest,
            0xa7 => PduType::TrapV2,
            0xa8 => PduType::Report,
            other => PduType::Unknown(other),
        }
    }
}

impl From<PduType> for u8 {
    fn from(kind: PduType) -> u8 {
        match kind {
            PduType::GetRequest => 0xa0,
            PduType::GetNextRequest => 0xa1,
            PduType::Response => 0xa2,
            PduType::SetRequest => 0xa3,
            PduType::GetBulkRequest => 0xa5,
            PduType::InformRequest => 0xa6,
            PduType::TrapV2 => 0xa7,
            PduType::Report => 0xa8,
            PduType::Unknown(tag) => tag,
        }
    }
}

/// A PDU's error-status (RFC 3416 section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStatus {
    /// 0.
    NoError,
    /// 1.
    TooBig,
    /// 2 (SNMPv1).
    NoSuchName,
    /// 3.
    BadValue,
    /// 4.
    ReadOnly,
    /// 5.
    GenErr,
    /// 6.
    NoAccess,
    /// 7.
    WrongType,
    /// 8.
    WrongLength,
    /// 9.
    WrongEncoding,
    /// 10.
    WrongValue,
    /// 11.
    NoCreation,
    /// 12.
    InconsistentValue,
    /// 13.
    ResourceUnavailable,
    /// 14.
    CommitFailed,
    /// 15.
    UndoFailed,
    /// 16.
    AuthorizationError,
    /// 17.
    NotWritable,
    /// 18.
    InconsistentName,
    /// Any other value.
    Unknown(i64),
}

impl From<i64> for ErrorStatus {
    fn from(n: i64) -> Self {
        use ErrorStatus::*;
        match n {
            0 => NoError,
            1 => TooBig,
            2 => NoSuchName,
            3 => BadValue,
            4 => ReadOnly,
            5 => GenErr,
            6 => NoAccess,
            7 => WrongType,
            8 => WrongLength,
            9 => WrongEncoding,
            10 => WrongValue,
            11 => NoCreation,
            12 => InconsistentValue,
            13 => ResourceUnavailable,
            14 => CommitFailed,
            15 => UndoFailed,
            16 => AuthorizationError,
            17 => NotWritable,
            18 => InconsistentName,
            n => Unknown(n),
        }
    }
}

impl fmt::Display for ErrorStatus {
    /// The RFC 3416 name, `noSuchName`, or `Unknown(n)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorStatus::*;
        let name = match self {
            NoError => "noError",
            TooBig => "tooBig",
            NoSuchName => "noSuchName",
            BadValue => "badValue",
            ReadOnly => "readOnly",
            GenErr => "genErr",
            NoAccess => "noAccess",
            WrongType => "wrongType",
            WrongLength => "wrongLength",
            WrongEncoding => "wrongEncoding",
            WrongValue => "wrongValue",
            NoCreation => "noCreation",
            InconsistentValue => "inconsistentValue",
            ResourceUnavailable => "resourceUnavailable",
            CommitFailed => "commitFailed",
            UndoFailed => "undoFailed",
            AuthorizationError => "authorizationError",
            NotWritable => "notWritable",
            InconsistentName => "inconsistentName",
            Unknown(n) => return write!(f, "Unknown({n})"),
        };
        f.write_str(name)
    }
}

/// A variable binding's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// INTEGER.
    Integer(i64),
    /// OCTET STRING.
    OctetString(Vec<u8>),
    /// NULL (as in requests).
    Null,
    /// OBJECT IDENTIFIER.
    ObjectId(Vec<u32>),
    /// IpAddress.
    IpAddress([u8; 4]),
    /// Counter32, Gauge32, TimeTicks or Counter64 (tag kept).
    Unsigned {
        /// The application tag (0x41, 0x42, 0x43, 0x46).
        tag: u8,
        /// The value.
        value: u64,
    },
    /// noSuchObject exception.
    NoSuchObject,
    /// noSuchInstance exception.
    NoSuchInstance,
    /// endOfMibView exception.
    EndOfMibView,
    /// Any other tag, or a value whose content did not decode.
    Other {
        /// The tag.
        tag: u8,
        /// The raw content.
        content: Vec<u8>,
    },
}

impl Value {
    fn decode(tag: u8, content: &[u8]) -> Value {
        let decoded = match tag {
            tag::INTEGER => signed(content).map(Value::Integer),
            tag::OCTET_STRING => Some(Value::OctetString(content.to_vec())),
            tag::NULL if content.is_empty() => Some(Value::Null),
            tag::OID => decode_oid(content).map(Value::ObjectId),
            tag::IP_ADDRESS => content.try_into().ok().map(Value::IpAddress),
            tag::COUNTER32 | tag::GAUGE32 | tag::TIME_TICKS | tag::COUNTER64 => {
                unsigned(content).map(|value| Value::Unsigned { tag, value })
            }
            tag::NO_SUCH_OBJECT => Some(Value::NoSuchObject),
            tag::NO_SUCH_INSTANCE => Some(Value::NoSuchInstance),
            tag::END_OF_MIB_VIEW => Some(Value::EndOfMibView),
            _ => None,
        };
        decoded.unwrap_or_else(|| Value::Other {
            tag,
            content: content.to_vec(),
        })
    }
}

/// One variable binding: an object name and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarBind {
    /// The object identifier.
    pub name: Vec<u32>,
    /// Its value.
    pub value: Value,
}

/// A PDU with the common request/response layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// Its type.
    pub kind: PduType,
    /// request-id.
    pub request_id: i64,
    /// error-status.
    pub error_status: ErrorStatus,
    /// error-index.
    pub error_index: i64,
    /// The variable bindings.
    pub varbinds: Vec<VarBind>,
}

/// Parses one PDU TLV.
fn decode_pdu(reader: &mut Reader<'_>) -> Option<Pdu> {
    let (pdu_tag, content) = reader.any()?;
    if pdu_tag & 0xe0 != 0xa0 {
        return None;
    }
    let mut body = Reader::new(content);
    let request_id = body.integer()?;
    let error_status = ErrorStatus::from(body.integer()?);
    let error_index = body.integer()?;
    let mut list = Reader::new(body.expect(tag::SEQUENCE)?);
    let mut varbinds = Vec::new();
    while !list.is_empty() {
        let mut varbind = Reader::new(list.expect(tag::SEQUENCE)?);
        let name = decode_oid(varbind.expect(tag::OID)?)?;
        let (value_tag, value) = varbind.any()?;
        varbinds.push(VarBind {
            name,
            value: Value::decode(value_tag, value),
        });
    }
    Some(Pdu {
        kind: PduType::from(pdu_tag),
        request_id,
        error_status,
        error_index,
        varbinds,
    })
}

/// An SNMP message, as far as the probe reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// SNMPv1 or v2c (community-based).
    Community {
        /// V1 or V2c (other versions parse as SNMPv3 or not at all).
        version: Version,
        /// The community string.
        community: Vec<u8>,
        /// The PDU.
        pdu: Pdu,
    },
    /// SNMPv3 with the user-based security model.
    V3 {
        /// msgID.
        msg_id: i64,
        /// msgFlags (first byte; 0 if empty).
        flags: u8,
        /// msgAuthoritativeEngineID.
        engine_id: Vec<u8>,
        /// msgAuthoritativeEngineBoots.
        engine_boots: i64,
        /// msgAuthoritativeEngineTime.
        engine_time: i64,
        /// msgUserName.
        user_name: Vec<u8>,
        /// The scoped PDU, or `None` when it is encrypted.
        pdu: Option<Pdu>,
    },
}

/// Parses an SNMP message: a community-based message (v1 or v2c) with a
/// request/response-layout PDU, or an SNMPv3 message using USM. `None` for
/// anything malformed, cut short, or of another version or security model.
pub fn recognise(bytes: &[u8]) -> Option<Message> {
    let mut message = Reader::new(Reader::new(bytes).expect(tag::SEQUENCE)?);
    match Version::from(message.integer()?) {
        version @ (Version::V1 | Version::V2c) => {
            let community = message.expect(tag::OCTET_STRING)?.to_vec();
            let pdu = decode_pdu(&mut message)?;
            Some(Message::Community {
                version,
                community,
                pdu,
            })
        }
        Version::V3 => decode_v3(&mut message),
        Version::Unknown(_) => None,
    }
}

/// The rest of an SNMPv3 message after its version.
fn decode_v3(message: &mut Reader<'_>) -> Option<Message> {
    let mut global = Reader::new(message.expect(tag::SEQUENCE)?);
    let msg_id = global.integer()?;
    global.integer()?;
    let flags = global
        .expect(tag::OCTET_STRING)?
        .first()
        .copied()
        .unwrap_or(0);
    if global.integer()? != SECURITY_MODEL_USM {
        return None;
    }
    let security = message.expect(tag::OCTET_STRING)?;
    let mut usm = Reader::new(Reader::new(security).expect(tag::SEQUENCE)?);
    let engine_id = usm.expect(tag::OCTET_STRING)?.to_vec();
    let engine_boots = usm.integer()?;
    let engine_time = usm.integer()?;
    let user_name = usm.expect(tag::OCTET_STRING)?.to_vec();
    usm.expect(tag::OCTET_STRING)?;
    usm.expect(tag::OCTET_STRING)?;
    let pdu = if flags & FLAG_PRIV != 0 {
        message.expect(tag::OCTET_STRING)?;
        None
    } else {
        let mut scoped = Reader::new(message.expect(tag::SEQUENCE)?);
        scoped.expect(tag::OCTET_STRING)?;
        scoped.expect(tag::OCTET_STRING)?;
        Some(decode_pdu(&mut scoped)?)
    };
    Some(Message::V3 {
        msg_id,
        flags,
        engine_id,
        engine_boots,
        engine_time,
        user_name,
        pdu,
    })
}

/// Printable text of an OCTET STRING, control characters replaced and cut
/// to `max` characters.
fn printable(bytes: &[u8], max: usize) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = text.trim();
    if trimmed.chars().count() > max {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{cut}...")
    } else {
        trimmed.to_string()
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name of a `usmStats` counter (RFC 3414 section 5), or the dotted OID.
fn usm_counter(name: &[u32]) -> String {
    let counter = name.strip_prefix(USM_STATS).and_then(|rest| match rest {
        [1, 0] => Some("usmStatsUnsupportedSecLevels"),
        [2, 0] => Some("usmStatsNotInTimeWindows"),
        [3, 0] => Some("usmStatsUnknownUserNames"),
        [4, 0] => Some("usmStatsUnknownEngineIDs"),
        [5, 0] => Some("usmStatsWrongDigests"),
        [6, 0] => Some("usmStatsDecryptionErrors"),
        _ => None,
    });
    counter.map_or_else(|| dotted(name), str::to_string)
}

/// The detail for a v2c response to our get.
fn community_detail(pdu: &Pdu) -> String {
    let mut detail = "SNMPv2c response".to_string();
    if pdu.error_status != ErrorStatus::NoError {
        detail.push_str(&format!(", error {}", pdu.error_status));
    }
    let descr = pdu
        .varbinds
        .iter()
        .find(|varbind| varbind.name == SYS_DESCR);
    match descr.map(|varbind| &varbind.value) {
        Some(Value::OctetString(text)) => {
            detail.push_str(&format!(", sysDescr \"{}\"", printable(text, DESCR_CHARS)));
        }
        Some(Value::NoSuchObject) => detail.push_str(", sysDescr noSuchObject"),
        Some(Value::NoSuchInstance) => detail.push_str(", sysDescr noSuchInstance"),
        _ => {}
    }
    detail
}

/// The detail for a v3 answer to our discovery.
fn v3_detail(pdu: &Pdu, engine_id: &[u8]) -> String {
    let kind = if pdu.kind == PduType::Report {
        "Report"
    } else {
        "Response"
    };
    let mut detail = format!("SNMPv3 {kind} (engine ID {}", hex(engine_id));
    if let Some(first) = pdu.varbinds.first() {
        detail.push_str(&format!(", {}", usm_counter(&first.name)));
    }
    detail.push(')');
    detail
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![
            request(&self.community, self.request_id),
            discovery_request(self.msg_id),
        ]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let detail = match recognise(reply)? {
            Message::Community {
                version: Version::V2c,
                community,
                pdu,
            } if community == self.community
                && pdu.kind == PduType::Response
                && pdu.request_id == self.request_id =>
            {
                community_detail(&pdu)
            }
            Message::V3 {
                msg_id,
                engine_id,
                pdu: Some(pdu),
                ..
            } if msg_id == self.msg_id
                && matches!(pdu.kind, PduType::Report | PduType::Response) =>
            {
                v3_detail(&pdu, &engine_id)
            }
            _ => return None,
        };
        Some(Reply::new("snmp", detail))
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

    /// The v2c get this module builds for `NONCE_3A7C`, as sent to snmpd.
    const SENT_V2C: &str = include_str!("fixtures/snmp-v2c-request.hex");

    /// The v3 discovery this module builds for `NONCE_3A7C`, as sent to snmpd.
    const SENT_V3: &str = include_str!("fixtures/snmp-v3-discovery-request.hex");

    /// net-snmp 5.9.3 snmpd (`rocommunity public`) answering `SENT_V2C`.
    const NETSNMP_V2C: &str = include_str!("fixtures/snmp-netsnmp-v2c-response.hex");

    /// The same snmpd answering `SENT_V3` with a Report.
    const NETSNMP_V3: &str = include_str!("fixtures/snmp-netsnmp-v3-report.hex");

    /// Offset of the request-id's four content bytes in `NETSNMP_V2C`.
    const V2C_REQUEST_ID_AT: usize = 17;

    /// Offset of the msgID's four content bytes in `NETSNMP_V3`.
    const V3_MSG_ID_AT: usize = 9;

    fn probe() -> Request {
        probe_with(&NONCE_3A7C)
    }

    fn probe_with(nonce: &Nonce) -> Request {
        Request::new(&ProbeContext::default(), nonce)
    }

    #[test]
    fn builds_the_datagrams_snmpd_answered() {
        assert_eq!(probe().datagrams(), vec![hex(SENT_V2C), hex(SENT_V3)]);
    }

    #[test]
    fn v2c_get_fields_sit_where_rfc_1901_and_3416_put_them() {
        let get = request(b"public", 0x1234_5678);
        assert_eq!(get[0], 0x30, "SEQUENCE");
        assert_eq!(usize::from(get[1]), get.len() - 2, "short-form length");
        assert_eq!(get[2..5], [0x02, 0x01, 0x01], "version 1 = v2c");
        assert_eq!(get[5..13], *b"\x04\x06public", "community");
        assert_eq!(get[13], 0xa0, "GetRequest PDU");
        assert_eq!(
            get[15..21],
            [0x02, 0x04, 0x12, 0x34, 0x56, 0x78],
            "request-id"
        );
        assert_eq!(
            get[21..27],
            [0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
            "error-status, index"
        );
        let varbind = hex("30 0e 30 0c 06 08 2b 06 01 02 01 01 01 00 05 00");
        assert_eq!(get[27..], varbind[..], "sysDescr.0 = NULL");
    }

    #[test]
    fn v3_discovery_fields_sit_where_rfc_3412_and_3414_put_them() {
        let discovery = discovery_request(0x0102_0304);
        let expected = hex("30 3e 02 01 03
             30 11 02 04 01 02 03 04 02 03 00 ff e3 04 01 04 02 01 03
             04 10 30 0e 04 00 02 01 00 02 01 00 04 00 04 00 04 00
             30 14 04 00 04 00 a0 0e 02 04 01 02 03 04 02 01 00 02 01 00 30 00");
        assert_eq!(discovery, expected);
    }

    #[test]
    fn recognises_the_netsnmp_v2c_response() {
        let reply = probe().recognise(&hex(NETSNMP_V2C));
        assert_eq!(
            reply,
            Some(Reply::new(
                "snmp",
                "SNMPv2c response, sysDescr \"portprobe-peers net-snmp\""
            ))
        );
    }

    #[test]
    fn recognises_the_netsnmp_v3_report() {
        let reply = probe().recognise(&hex(NETSNMP_V3));
        assert_eq!(
            reply,
            Some(Reply::new(
                "snmp",
                "SNMPv3 Report (engine ID 80001f8880ae6fbe0c88ec076b00000000, usmStatsUnknownEngineIDs)"
            ))
        );
        let Some(Message::V3 {
            engine_boots,
            user_name,
            pdu: Some(pdu),
            ..
        }) = recognise(&hex(NETSNMP_V3))
        else {
            panic!("an SNMPv3 message with a PDU");
        };
        assert_eq!(engine_boots, 1);
        assert!(user_name.is_empty());
        assert_eq!(pdu.kind, PduType::Report);
        assert_eq!(
            pdu.varbinds[0].value,
            Value::Unsigned {
                tag: tag::COUNTER32,
                value: 1
            }
        );
    }

    #[test]
    fn rejects_a_request_id_or_msg_id_one_bit_away() {
        for (fixture, at) in [(NETSNMP_V2C, V2C_REQUEST_ID_AT), (NETSNMP_V3, V3_MSG_ID_AT)] {
            assert_bit_flips_refused(&probe(), &hex(fixture), at..at + 4);
        }
    }

    #[test]
    fn rejects_another_community() {
        let mut reply = hex(NETSNMP_V2C);
        reply[7] = b'P';
        assert_eq!(probe().recognise(&reply), None);
    }

    #[test]
    fn rejects_every_truncation() {
        for fixture in [NETSNMP_V2C, NETSNMP_V3] {
            assert_truncations_refused(&probe(), &hex(fixture));
        }
    }

    #[test]
    fn rejects_its_own_requests_and_other_protocols() {
        assert_eq!(probe().recognise(&hex(SENT_V2C)), None);
        assert_eq!(probe().recognise(&hex(SENT_V3)), None);
        assert_other_replies_refused(&probe(), "snmp");
    }

    /// A v2c Response to the probe with the given error-status and sysDescr
    /// value TLV.
    fn v2c_response(error_status: i64, value: Vec<u8>) -> Vec<u8> {
        let probe = probe();
        let varbind = constructed(tag::SEQUENCE, &[oid(SYS_DESCR), value]);
        constructed(
            tag::SEQUENCE,
            &[
                integer(1),
                octets(&probe.community),
                constructed(
                    PduType::Response.into(),
                    &[
                        integer(probe.request_id),
                        integer(error_status),
                        integer(1),
                        constructed(tag::SEQUENCE, &[varbind]),
                    ],
                ),
            ],
        )
    }

    #[test]
    fn any_error_status_still_proves_snmp() {
        let detail = |bytes: Vec<u8>| probe().recognise(&bytes).map(|reply| reply.detail);
        assert_eq!(
            detail(v2c_response(2, tlv(tag::NULL, &[]))).as_deref(),
            Some("SNMPv2c response, error noSuchName")
        );
        assert_eq!(
            detail(v2c_response(0, tlv(tag::NO_SUCH_OBJECT, &[]))).as_deref(),
            Some("SNMPv2c response, sysDescr noSuchObject")
        );
        assert_eq!(
            detail(v2c_response(99, tlv(tag::NULL, &[]))).as_deref(),
            Some("SNMPv2c response, error Unknown(99)")
        );
        let long = vec![b'x'; 300];
        let shown = detail(v2c_response(0, octets(&long))).expect("recognised");
        assert!(shown.ends_with(&format!("\"{}...\"", "x".repeat(DESCR_CHARS))));
    }

    #[test]
    fn lengths_use_the_short_form_below_128_and_the_long_form_above() {
        assert_eq!(tlv(tag::OCTET_STRING, &[0; 127])[..2], [0x04, 0x7f]);
        assert_eq!(tlv(tag::OCTET_STRING, &[0; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(
            tlv(tag::OCTET_STRING, &[0; 300])[..4],
            [0x04, 0x82, 0x01, 0x2c]
        );
        let long = tlv(tag::OCTET_STRING, &[7; 70000]);
        assert_eq!(long[..5], [0x04, 0x83, 0x01, 0x11, 0x70]);
        let mut reader = Reader::new(&long);
        assert_eq!(
            reader.expect(tag::OCTET_STRING).map(<[u8]>::len),
            Some(70000)
        );
        assert!(reader.is_empty());
    }

    #[test]
    fn malformed_lengths_and_tags_do_not_decode() {
        for bad in [
            "04 80 00 00",          // indefinite length
            "04 85 00 00 00 00 01", // five length bytes
            "04 82 01",             // length bytes cut short
            "04 81 05 00 00",       // content cut short
            "1f 01 00",             // high tag number form
            "04",                   // no length at all
        ] {
            assert_eq!(Reader::new(&hex(bad)).any(), None, "{bad}");
        }
        assert_eq!(
            Reader::new(&hex("04 81 02 ab cd")).any(),
            Some((4, &[0xab, 0xcd][..]))
        );
    }

    #[test]
    fn integers_are_minimal_twos_complement() {
        for (value, encoded) in [
            (0, "02 01 00"),
            (127, "02 01 7f"),
            (128, "02 02 00 80"),
            (-1, "02 01 ff"),
            (-128, "02 01 80"),
            (-129, "02 02 ff 7f"),
            (65507, "02 03 00 ff e3"),
            (i64::MIN, "02 08 80 00 00 00 00 00 00 00"),
        ] {
            assert_eq!(integer(value), hex(encoded), "{value}");
            assert_eq!(Reader::new(&hex(encoded)).integer(), Some(value));
        }
        assert_eq!(signed(&[]), None);
        assert_eq!(signed(&[1; 9]), None);
        assert_eq!(unsigned(&hex("00 ff ff ff ff ff ff ff ff")), Some(u64::MAX));
        assert_eq!(unsigned(&hex("01 00 00 00 00 00 00 00 00")), None);
        assert_eq!(unsigned(&hex("80")), None);
    }

    #[test]
    fn object_identifiers_use_base_128_sub_identifiers() {
        let net_snmp = [1, 3, 6, 1, 4, 1, 8072, 3, 2, 10];
        let encoded = hex("06 0a 2b 06 01 04 01 bf 08 03 02 0a");
        assert_eq!(oid(&net_snmp), encoded);
        assert_eq!(decode_oid(&encoded[2..]), Some(net_snmp.to_vec()));
        assert_eq!(oid(&[2, 999, u32::MAX]), hex("06 07 88 37 8f ff ff ff 7f"));
        assert_eq!(
            decode_oid(&hex("88 37 8f ff ff ff 7f")),
            Some(vec![2, 999, u32::MAX])
        );
        assert_eq!(decode_oid(&hex("2b 90 80 80 80 00")), None, "over 32 bits");
        assert_eq!(decode_oid(&hex("2b 86")), None, "continuation at the end");
        assert_eq!(decode_oid(&[]), None);
    }

    #[test]
    fn unknown_codes_parse_as_unknown() {
        assert_eq!(PduType::from(0xa9), PduType::Unknown(0xa9));
        assert_eq!(ErrorStatus::from(-3), ErrorStatus::Unknown(-3));
        assert_eq!(Version::from(2), Version::Unknown(2));
        assert_eq!(
            Value::decode(0x47, &[1, 2]),
            Value::Other {
                tag: 0x47,
                content: vec![1, 2]
            }
        );
    }

    proptest! {
        #[test]
        fn a_request_id_or_msg_id_byte_changed_is_refused(
            v3 in any::<bool>(),
            change in byte_changes(),
        ) {
            let (fixture, at) = if v3 {
                (NETSNMP_V3, V3_MSG_ID_AT)
            } else {
                (NETSNMP_V2C, V2C_REQUEST_ID_AT)
            };
            id_field_property(&probe(), &hex(fixture), at..at + 4, change)?;
        }

        #[test]
        fn a_request_with_another_request_id_refuses_the_v2c_capture(
            nonce in other_nonces(NONCE_3A7C, 0..4).prop_filter(
                "the request-id keeps 31 of the 32 bits",
                |nonce| probe_with(nonce).request_id != probe().request_id,
            ),
        ) {
            other_nonce_property(&probe_with(&nonce), &hex(NETSNMP_V2C))?;
        }

        #[test]
        fn a_request_with_another_msg_id_refuses_the_v3_capture(
            nonce in other_nonces(NONCE_3A7C, 8..12).prop_filter(
                "the msgID keeps 31 of the 32 bits",
                |nonce| probe_with(nonce).msg_id != probe().msg_id,
            ),
        ) {
            other_nonce_property(&probe_with(&nonce), &hex(NETSNMP_V3))?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_capture(
            v3 in any::<bool>(),
            mutation in mutations(),
        ) {
            let fixture = if v3 { NETSNMP_V3 } else { NETSNMP_V2C };
            let _ = probe().recognise(&mutation.apply(&hex(fixture)));
        }

        #[test]
        fn integers_round_trip(value in any::<i64>()) {
            prop_assert_eq!(Reader::new(&integer(value)).integer(), Some(value));
        }

        #[test]
        fn object_identifiers_round_trip(
            first in 0u32..3,
            second in 0u32..40,
            rest in proptest::collection::vec(any::<u32>(), 0..12),
        ) {
            let mut arcs = vec![first, second];
            arcs.extend(rest);
            let encoded = oid(&arcs);
            let content = Reader::new(&encoded).expect(tag::OID).expect("an OID TLV");
            prop_assert_eq!(decode_oid(content), Some(arcs));
        }
    }
}
