//! IKE (ISAKMP), UDP port 500, and IKE over NAT traversal, UDP port 4500.
//!
//! The request is an IKEv2 IKE_SA_INIT (RFC 7296 section 1.2) from a fresh
//! initiator SPI taken from the nonce: an SA payload with four common
//! proposals (AES-CBC-128 and AES-CBC-256 with HMAC-SHA-256, and AES-CBC-128
//! with HMAC-SHA-1, over MODP-2048, then AES-CBC-128 with HMAC-SHA-1 over
//! MODP-1024), a KE payload for MODP-2048 and a Nonce payload. The key
//! exchange value is 256 bytes expanded from the nonce, kept between 2^2046
//! and 2^2047 so that a responder's range check (1 < y < p - 1) accepts it; it
//! is not a real Diffie-Hellman public value, and need not be, because the
//! probe never completes the exchange (strongSwan's charon 5.9.8 answers it
//! with a full IKE_SA_INIT response).
//!
//! On port 4500 (RFC 3948 section 2.2) every IKE message starts with the
//! four-byte non-ESP marker `00 00 00 00`; without it a responder takes the
//! datagram for ESP. The NAT-T probe sends the same message behind the
//! marker, and strips the marker from replies before parsing them.
//!
//! A reply counts when its header carries our initiator SPI: an IKEv2
//! response (the Response flag set) or any IKEv1 message, which is how a
//! v1-only responder answers (for instance with an Informational exchange
//! carrying an INVALID-MAJOR-VERSION notification). An IKE_SA_INIT response proves IKE
//! as much as an error notify such as NO_PROPOSAL_CHOSEN,
//! INVALID_KE_PAYLOAD or a COOKIE request does. The report names the version,
//! the exchange, the first payload and, when that payload is a notify, its
//! type.

use super::bytes::{be16, be32, be64};
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The non-ESP marker that precedes IKE messages on port 4500.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// Length of the IKE header (both versions).
const HEADER_LEN: usize = 28;
/// IKEv2 version byte: major 2, minor 0.
const VERSION_2: u8 = 0x20;
/// IKEv2 header flag: the message comes from the original initiator.
const FLAG_INITIATOR: u8 = 0x08;
/// IKEv2 header flag: the message is a response.
const FLAG_RESPONSE: u8 = 0x20;
/// IKEv1 header flag: the payloads are encrypted.
const FLAG_V1_ENCRYPTED: u8 = 0x01;

/// The IKEv2 IKE_SA_INIT exchange type.
const EXCHANGE_IKE_SA_INIT: u8 = 34;
/// IKEv2 payload types used in the request.
const PAYLOAD_SA: u8 = 33;
const PAYLOAD_KE: u8 = 34;
const PAYLOAD_NONCE: u8 = 40;
/// IKEv2 Notify payload type.
const PAYLOAD_NOTIFY_V2: u8 = 41;
/// IKEv1 Notification payload type.
const PAYLOAD_NOTIFY_V1: u8 = 11;

/// IKEv2 transform types (RFC 7296 section 3.3.2).
const TRANSFORM_ENCR: u8 = 1;
const TRANSFORM_PRF: u8 = 2;
const TRANSFORM_INTEG: u8 = 3;
const TRANSFORM_DH: u8 = 4;
/// ENCR_AES_CBC.
const ENCR_AES_CBC: u16 = 12;
/// PRF_HMAC_SHA1 and PRF_HMAC_SHA2_256.
const PRF_HMAC_SHA1: u16 = 2;
const PRF_HMAC_SHA2_256: u16 = 5;
/// AUTH_HMAC_SHA1_96 and AUTH_HMAC_SHA2_256_128.
const AUTH_HMAC_SHA1_96: u16 = 2;
const AUTH_HMAC_SHA2_256_128: u16 = 12;
/// Diffie-Hellman groups 2 (MODP-1024) and 14 (MODP-2048).
const MODP_1024: u16 = 2;
const MODP_2048: u16 = 14;
/// Key Length transform attribute (type 14) in TV format.
const ATTR_KEY_LENGTH_TV: u16 = 0x800e;

/// The proposals offered, in order of preference: (encryption key bits, PRF,
/// integrity, Diffie-Hellman group).
const PROPOSALS: [(u16, u16, u16, u16); 4] = [
    (128, PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128, MODP_2048),
    (256, PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128, MODP_2048),
    (128, PRF_HMAC_SHA1, AUTH_HMAC_SHA1_96, MODP_2048),
    (128, PRF_HMAC_SHA1, AUTH_HMAC_SHA1_96, MODP_1024),
];

/// Length in bytes of a MODP-2048 public value, the KE payload's data.
const MODP_2048_BYTES: usize = 256;
/// Length of the Nonce payload's data (RFC 7296 wants 16 to 256 bytes, and at
/// least half the PRF key size).
const NONCE_BYTES: usize = 32;

/// An IKE_SA_INIT probe, for port 500 or (with the non-ESP marker) port 4500.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    spi: u64,
    nat_traversal: bool,
    payload: Vec<u8>,
}

impl Request {
    /// The probe for port 500: a bare IKE_SA_INIT.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request::build(nonce, false)
    }

    /// The probe for port 4500: the IKE_SA_INIT behind the non-ESP marker.
    pub fn nat_traversal(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request::build(nonce, true)
    }

    fn build(nonce: &Nonce, nat_traversal: bool) -> Self {
        let spi = initiator_spi(nonce);
        let mut payload = Vec::new();
        if nat_traversal {
            payload.extend_from_slice(&NON_ESP_MARKER);
        }
        payload.extend(request(spi, &key_exchange_data(nonce), &nonce_data(nonce)));
        Request {
            spi,
            nat_traversal,
            payload,
        }
    }
}

/// The initiator SPI for `nonce`: its first eight bytes, never zero (RFC 7296
/// forbids a zero initiator SPI).
pub fn initiator_spi(nonce: &Nonce) -> u64 {
    nonce.u64().max(1)
}

/// SplitMix64: expands nonce bytes into as many bytes as a message needs.
/// Not cryptographic, which the probe does not need.
struct Expander(u64);

impl Expander {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_be_bytes());
        }
        out.truncate(len);
        out
    }
}

/// The MODP-2048 key exchange value for `nonce`: 256 bytes whose top two bits
/// are `01`, so that 1 < value < p - 1 for the group's prime p.
pub fn key_exchange_data(nonce: &Nonce) -> Vec<u8> {
    let mut data = Expander(nonce.tail_u64()).fill(MODP_2048_BYTES);
    if let Some(first) = data.first_mut() {
        *first = (*first & 0x3f) | 0x40;
    }
    data
}

/// The Nonce payload data for `nonce`: its 16 bytes, then 16 expanded ones.
pub fn nonce_data(nonce: &Nonce) -> Vec<u8> {
    let mut data = nonce.0.to_vec();
    data.extend(Expander(nonce.u64() ^ nonce.tail_u64()).fill(NONCE_BYTES - nonce.0.len()));
    data
}

/// Appends a payload (generic header plus `body`) to `out`.
fn push_payload(out: &mut Vec<u8>, next: u8, body: &[u8]) {
    out.push(next);
    out.push(0); // critical bit clear, reserved
    out.extend_from_slice(&len16(4 + body.len()));
    out.extend_from_slice(body);
}

/// A length as two big-endian bytes; request lengths are far below 65536.
fn len16(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}

/// One transform substructure.
fn transform(last: bool, kind: u8, id: u16, key_bits: Option<u16>) -> Vec<u8> {
    let mut t = vec![if last { 0 } else { 3 }, 0, 0, 0, kind, 0];
    t.extend_from_slice(&id.to_be_bytes());
    if let Some(bits) = key_bits {
        t.extend_from_slice(&ATTR_KEY_LENGTH_TV.to_be_bytes());
        t.extend_from_slice(&bits.to_be_bytes());
    }
    let len = len16(t.len());
    t[2..4].copy_from_slice(&len);
    t
}

/// The SA payload body: one IKE proposal per entry of [`PROPOSALS`].
fn sa_body() -> Vec<u8> {
    let mut body = Vec::new();
    for (index, &(key_bits, prf, integ, group)) in PROPOSALS.iter().enumerate() {
        let last = index + 1 == PROPOSALS.len();
        let mut transforms = transform(false, TRANSFORM_ENCR, ENCR_AES_CBC, Some(key_bits));
        transforms.extend(transform(false, TRANSFORM_PRF, prf, None));
        transforms.extend(transform(false, TRANSFORM_INTEG, integ, None));
        transforms.extend(transform(true, TRANSFORM_DH, group, None));
        body.push(if last { 0 } else { 2 });
        body.push(0);
        body.extend_from_slice(&len16(8 + transforms.len()));
        body.push(u8::try_from(index + 1).unwrap_or(u8::MAX)); // proposal number
        body.push(1); // protocol ID: IKE
        body.push(0); // SPI size: none in IKE_SA_INIT
        body.push(4); // number of transforms
        body.extend(transforms);
    }
    body
}

/// The IKE_SA_INIT message (without any non-ESP marker) from initiator SPI
/// `spi`, with MODP-2048 key exchange data `ke` and nonce data `nonce`.
pub fn request(spi: u64, ke: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_LEN + 512);
    msg.extend_from_slice(&spi.to_be_bytes());
    msg.extend_from_slice(&[0; 8]); // responder SPI: unknown yet
    msg.push(PAYLOAD_SA);
    msg.push(VERSION_2);
    msg.push(EXCHANGE_IKE_SA_INIT);
    msg.push(FLAG_INITIATOR);
    msg.extend_from_slice(&[0; 4]); // message ID 0
    msg.extend_from_slice(&[0; 4]); // length, filled in below
    push_payload(&mut msg, PAYLOAD_KE, &sa_body());
    let mut ke_body = MODP_2048.to_be_bytes().to_vec();
    ke_body.extend_from_slice(&[0, 0]);
    ke_body.extend_from_slice(ke);
    push_payload(&mut msg, PAYLOAD_NONCE, &ke_body);
    push_payload(&mut msg, 0, nonce);
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes();
    msg[24..28].copy_from_slice(&len);
    msg
}

/// The exchange type of a message, interpreted for its major version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeType {
    /// IKEv2 IKE_SA_INIT (34).
    IkeSaInit,
    /// IKEv2 IKE_AUTH (35).
    IkeAuth,
    /// IKEv2 CREATE_CHILD_SA (36).
    CreateChildSa,
    /// IKEv2 INFORMATIONAL (37).
    Informational,
    /// IKEv1 Identity Protection, i.e. Main Mode (2).
    V1MainMode,
    /// IKEv1 Aggressive Mode (4).
    V1Aggressive,
    /// IKEv1 Informational (5).
    V1Informational,
    /// IKEv1 Quick Mode (32).
    V1QuickMode,
    /// A code not named here.
    Unknown(u8),
}

impl ExchangeType {
    fn from_code(major: u8, code: u8) -> ExchangeType {
        match (major, code) {
            (2, 34) => ExchangeType::IkeSaInit,
            (2, 35) => ExchangeType::IkeAuth,
            (2, 36) => ExchangeType::CreateChildSa,
            (2, 37) => ExchangeType::Informational,
            (1, 2) => ExchangeType::V1MainMode,
            (1, 4) => ExchangeType::V1Aggressive,
            (1, 5) => ExchangeType::V1Informational,
            (1, 32) => ExchangeType::V1QuickMode,
            (_, n) => ExchangeType::Unknown(n),
        }
    }

    fn name(self) -> String {
        match self {
            ExchangeType::IkeSaInit => "IKE_SA_INIT".into(),
            ExchangeType::IkeAuth => "IKE_AUTH".into(),
            ExchangeType::CreateChildSa => "CREATE_CHILD_SA".into(),
            ExchangeType::Informational => "INFORMATIONAL".into(),
            ExchangeType::V1MainMode => "Main Mode".into(),
            ExchangeType::V1Aggressive => "Aggressive Mode".into(),
            ExchangeType::V1Informational => "Informational".into(),
            ExchangeType::V1QuickMode => "Quick Mode".into(),
            ExchangeType::Unknown(n) => format!("exchange {n}"),
        }
    }
}

/// A notify message type. The names are IKEv2's (RFC 7296 section 3.10.1);
/// IKEv1 shares codes 1-30 for errors, and the few whose meaning differs in
/// IKEv1 (RFC 2408 section 3.14.1) are read through [`NotifyType::from_v1`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyType {
    /// UNSUPPORTED_CRITICAL_PAYLOAD (1).
    UnsupportedCriticalPayload,
    /// IKEv1 INVALID-PAYLOAD-TYPE (1).
    InvalidPayloadType,
    /// INVALID_IKE_SPI (4; IKEv1 INVALID-COOKIE).
    InvalidIkeSpi,
    /// INVALID_MAJOR_VERSION (5).
    InvalidMajorVersion,
    /// INVALID_SYNTAX (7).
    InvalidSyntax,
    /// IKEv1 INVALID-EXCHANGE-TYPE (7).
    InvalidExchangeType,
    /// INVALID_MESSAGE_ID (9).
    InvalidMessageId,
    /// INVALID_SPI (11).
    InvalidSpi,
    /// NO_PROPOSAL_CHOSEN (14).
    NoProposalChosen,
    /// IKEv1 PAYLOAD-MALFORMED (16).
    PayloadMalformed,
    /// INVALID_KE_PAYLOAD (17), carrying the group the responder wants.
    InvalidKePayload,
    /// IKEv1 INVALID-KEY-INFORMATION (17).
    InvalidKeyInformation,
    /// AUTHENTICATION_FAILED (24).
    AuthenticationFailed,
    /// TEMPORARY_FAILURE (43).
    TemporaryFailure,
    /// NAT_DETECTION_SOURCE_IP (16388).
    NatDetectionSourceIp,
    /// NAT_DETECTION_DESTINATION_IP (16389).
    NatDetectionDestinationIp,
    /// COOKIE (16390): the responder wants the request again with this cookie.
    Cookie,
    /// MULTIPLE_AUTH_SUPPORTED (16404).
    MultipleAuthSupported,
    /// REDIRECT_SUPPORTED (16406).
    RedirectSupported,
    /// REDIRECT (16407).
    Redirect,
    /// IKEV2_FRAGMENTATION_SUPPORTED (16430).
    FragmentationSupported,
    /// SIGNATURE_HASH_ALGORITHMS (16431).
    SignatureHashAlgorithms,
    /// A type not named here.
    Unknown(u16),
}

impl NotifyType {
    /// Reads an IKEv2 notify message type.
    pub fn from_v2(code: u16) -> NotifyType {
        match code {
            1 => NotifyType::UnsupportedCriticalPayload,
            4 => NotifyType::InvalidIkeSpi,
            5 => NotifyType::InvalidMajorVersion,
            7 => NotifyType::InvalidSyntax,
            9 => NotifyType::InvalidMessageId,
            11 => NotifyType::InvalidSpi,
            14 => NotifyType::NoProposalChosen,
            17 => NotifyType::InvalidKePayload,
            24 => NotifyType::AuthenticationFailed,
            43 => NotifyType::TemporaryFailure,
            16388 => NotifyType::NatDetectionSourceIp,
            16389 => NotifyType::NatDetectionDestinationIp,
            16390 => NotifyType::Cookie,
            16404 => NotifyType::MultipleAuthSupported,
            16406 => NotifyType::RedirectSupported,
            16407 => NotifyType::Redirect,
            16430 => NotifyType::FragmentationSupported,
            16431 => NotifyType::SignatureHashAlgorithms,
            n => NotifyType::Unknown(n),
        }
    }

    /// Reads an IKEv1 notify message type.
    pub fn from_v1(code: u16) -> NotifyType {
        match code {
            1 => NotifyType::InvalidPayloadType,
            4 => NotifyType::InvalidIkeSpi,
            5 => NotifyType::InvalidMajorVersion,
            7 => NotifyType::InvalidExchangeType,
            9 => NotifyType::InvalidMessageId,
            11 => NotifyType::InvalidSpi,
            14 => NotifyType::NoProposalChosen,
            16 => NotifyType::PayloadMalformed,
            17 => NotifyType::InvalidKeyInformation,
            24 => NotifyType::AuthenticationFailed,
            n => NotifyType::Unknown(n),
        }
    }

    /// The registry name, e.g. `NO_PROPOSAL_CHOSEN`.
    pub fn name(self) -> String {
        let name = match self {
            NotifyType::UnsupportedCriticalPayload => "UNSUPPORTED_CRITICAL_PAYLOAD",
            NotifyType::InvalidPayloadType => "INVALID_PAYLOAD_TYPE",
            NotifyType::InvalidIkeSpi => "INVALID_IKE_SPI",
            NotifyType::InvalidMajorVersion => "INVALID_MAJOR_VERSION",
            NotifyType::InvalidSyntax => "INVALID_SYNTAX",
            NotifyType::InvalidExchangeType => "INVALID_EXCHANGE_TYPE",
            NotifyType::InvalidMessageId => "INVALID_MESSAGE_ID",
            NotifyType::InvalidSpi => "INVALID_SPI",
            NotifyType::NoProposalChosen => "NO_PROPOSAL_CHOSEN",
            NotifyType::PayloadMalformed => "PAYLOAD_MALFORMED",
            NotifyType::InvalidKePayload => "INVALID_KE_PAYLOAD",
            NotifyType::InvalidKeyInformation => "INVALID_KEY_INFORMATION",
            NotifyType::AuthenticationFailed => "AUTHENTICATION_FAILED",
            NotifyType::TemporaryFailure => "TEMPORARY_FAILURE",
            NotifyType::NatDetectionSourceIp => "NAT_DETECTION_SOURCE_IP",
            NotifyType::NatDetectionDestinationIp => "NAT_DETECTION_DESTINATION_IP",
            NotifyType::Cookie => "COOKIE",
            NotifyType::MultipleAuthSupported => "MULTIPLE_AUTH_SUPPORTED",
            NotifyType::RedirectSupported => "REDIRECT_SUPPORTED",
            NotifyType::Redirect => "REDIRECT",
            NotifyType::FragmentationSupported => "IKEV2_FRAGMENTATION_SUPPORTED",
            NotifyType::SignatureHashAlgorithms => "SIGNATURE_HASH_ALGORITHMS",
            NotifyType::Unknown(n) => return format!("type {n}"),
        };
        name.to_string()
    }
}

/// A notify payload found first in a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// The notify message type.
    pub kind: NotifyType,
    /// The notification data (for INVALID_KE_PAYLOAD, the wanted group).
    pub data: Vec<u8>,
}

/// A decoded IKE message header and its first payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Major version: 1 or 2.
    pub major: u8,
    /// Initiator SPI (IKEv1: initiator cookie).
    pub initiator_spi: u64,
    /// Responder SPI (IKEv1: responder cookie).
    pub responder_spi: u64,
    /// The exchange type.
    pub exchange: ExchangeType,
    /// IKEv2: the Response flag. Always false for IKEv1, which has none.
    pub response: bool,
    /// The first payload's type code (0 when there is none).
    pub first_payload: u8,
    /// The first payload, decoded, when it is a notify.
    pub notify: Option<Notify>,
}

impl Parsed {
    /// One line for reports.
    pub fn describe(&self) -> String {
        let role = if self.major == 1 || self.response {
            "response"
        } else {
            "request"
        };
        let exchange = format!("IKEv{} {} {role}", self.major, self.exchange.name());
        match &self.notify {
            Some(notify) => {
                let mut line = format!("IKE notify {}", notify.kind.name());
                if notify.kind == NotifyType::InvalidKePayload
                    && let Some(group) = be16(&notify.data, 0)
                {
                    line.push_str(&format!(" (wants DH group {group})"));
                }
                format!("{line} in {exchange}")
            }
            None if self.first_payload == 0 => format!("{exchange} without payloads"),
            None => format!(
                "{exchange} (first payload {})",
                payload_name(self.major, self.first_payload)
            ),
        }
    }
}

/// A payload type's short name.
fn payload_name(major: u8, code: u8) -> String {
    let name = match (major, code) {
        (2, 33) | (1, 1) => "SA",
        (2, 34) | (1, 4) => "KE",
        (2, 40) | (1, 10) => "Nonce",
        (2, 41) | (1, 11) => "Notify",
        (2, 42) | (1, 12) => "Delete",
        (2, 43) | (1, 13) => "Vendor ID",
        (2, 46) => "Encrypted",
        (2, 53) => "Encrypted Fragment",
        (1, 8) => "Hash",
        _ => return format!("type {code}"),
    };
    name.to_string()
}

/// Parses an IKE message (no non-ESP marker). `None` unless the header is
/// complete, the version is 1.x or 2.x, and the header's length field fits
/// the datagram.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    let header = bytes.get(..HEADER_LEN)?;
    let initiator_spi = be64(header, 0)?;
    let responder_spi = be64(header, 8)?;
    let first_payload = *header.get(16)?;
    let major = header.get(17)? >> 4;
    let exchange_code = *header.get(18)?;
    let flags = *header.get(19)?;
    let length = usize::try_from(be32(header, 24)?).ok()?;
    if !(major == 1 || major == 2) || length < HEADER_LEN || length > bytes.len() {
        return None;
    }
    let message = bytes.get(..length)?;
    let readable = !(major == 1 && flags & FLAG_V1_ENCRYPTED != 0);
    let notify_type = if major == 2 {
        PAYLOAD_NOTIFY_V2
    } else {
        PAYLOAD_NOTIFY_V1
    };
    let notify = if readable && first_payload == notify_type {
        parse_notify(major, message.get(HEADER_LEN..)?)
    } else {
        None
    };
    Some(Parsed {
        major,
        initiator_spi,
        responder_spi,
        exchange: ExchangeType::from_code(major, exchange_code),
        response: major == 2 && flags & FLAG_RESPONSE != 0,
        first_payload,
        notify,
    })
}

/// Parses a notify payload at the start of `payload` (generic header
/// included). IKEv1 puts a four-byte DOI before the protocol ID.
fn parse_notify(major: u8, payload: &[u8]) -> Option<Notify> {
    let length = usize::from(be16(payload, 2)?);
    let body = payload.get(4..length)?;
    let body = if major == 1 { body.get(4..)? } else { body };
    let spi_size = usize::from(*body.get(1)?);
    let code = be16(body, 2)?;
    let data = body.get(4usize.checked_add(spi_size)?..)?.to_vec();
    let kind = if major == 2 {
        NotifyType::from_v2(code)
    } else {
        NotifyType::from_v1(code)
    };
    Some(Notify { kind, data })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.payload.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let message = if self.nat_traversal {
            reply.strip_prefix(&NON_ESP_MARKER)?
        } else {
            reply
        };
        let parsed = recognise(message)?;
        let ours = parsed.initiator_spi == self.spi && (parsed.major == 1 || parsed.response);
        let protocol = if self.nat_traversal {
            "ike-nat-t"
        } else {
            "ike"
        };
        ours.then(|| Reply::new(protocol, parsed.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{
        assert_bit_flips_refused, assert_other_replies_refused, assert_truncations_refused,
        byte_changes, capture_and_other_nonce, context_5a17, datagrams, hex, id_field_property,
        mutations, nonce_5a17, other_nonce_property,
    };
    use proptest::prelude::*;

    /// Captures from strongswan's charon 5.9.8 (fixtures/README.md): NAT-T
    /// or not, capture run, request sent, reply received, expected report.
    const CAPTURES: &[(bool, u8, &str, &str, &str)] = &[
        (
            false,
            1,
            include_str!("fixtures/charon-request-1.hex"),
            include_str!("fixtures/charon-no-proposal-chosen.hex"),
            "IKE notify NO_PROPOSAL_CHOSEN in IKEv2 IKE_SA_INIT response",
        ),
        (
            false,
            2,
            include_str!("fixtures/charon-request-2.hex"),
            include_str!("fixtures/charon-invalid-ke-payload.hex"),
            "IKE notify INVALID_KE_PAYLOAD (wants DH group 2) in IKEv2 IKE_SA_INIT response",
        ),
        (
            false,
            3,
            include_str!("fixtures/charon-request-3.hex"),
            include_str!("fixtures/charon-ike-sa-init-response.hex"),
            "IKEv2 IKE_SA_INIT response (first payload SA)",
        ),
        (
            true,
            1,
            include_str!("fixtures/charon-nat-t-request.hex"),
            include_str!("fixtures/charon-nat-t-response.hex"),
            "IKEv2 IKE_SA_INIT response (first payload SA)",
        ),
    ];

    fn build(nat_traversal: bool, run: u8) -> Request {
        build_for(nat_traversal, &nonce_5a17(run))
    }

    fn build_for(nat_traversal: bool, nonce: &Nonce) -> Request {
        if nat_traversal {
            Request::nat_traversal(&context_5a17(), nonce)
        } else {
            Request::new(&context_5a17(), nonce)
        }
    }

    fn be16_at(bytes: &[u8], at: usize) -> usize {
        usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]))
    }

    #[test]
    fn ike_sa_init_layout_follows_rfc_7296() {
        let ke = vec![0x55; 256];
        let nonce = vec![0xaa; 32];
        let msg = request(0x0102_0304_0506_0708, &ke, &nonce);
        // Header.
        assert_eq!(msg[0..8], [1, 2, 3, 4, 5, 6, 7, 8], "initiator SPI");
        assert_eq!(msg[8..16], [0; 8], "responder SPI");
        assert_eq!(msg[16], 33, "next payload SA");
        assert_eq!(msg[17], 0x20, "version 2.0");
        assert_eq!(msg[18], 34, "IKE_SA_INIT");
        assert_eq!(msg[19], 0x08, "Initiator flag only");
        assert_eq!(msg[20..24], [0; 4], "message ID 0");
        assert_eq!(msg[24..28], (msg.len() as u32).to_be_bytes(), "length");
        // SA payload: four proposals of four transforms each.
        let sa_len = be16_at(&msg, 30);
        assert_eq!(msg[28], 34, "SA is followed by KE");
        let mut at = 32;
        for number in 1..=4u8 {
            let proposal_len = be16_at(&msg, at + 2);
            assert_eq!(msg[at], if number == 4 { 0 } else { 2 }, "last/more");
            assert_eq!(
                msg[at + 4..at + 8],
                [number, 1, 0, 4],
                "num, IKE, no SPI, 4 transforms"
            );
            let mut t = at + 8;
            let mut kinds = Vec::new();
            for index in 0..4 {
                assert_eq!(
                    msg[t],
                    if index == 3 { 0 } else { 3 },
                    "last/more transform"
                );
                kinds.push((msg[t + 4], be16_at(&msg, t + 6)));
                t += be16_at(&msg, t + 2);
            }
            assert_eq!(t, at + proposal_len);
            let (bits, prf, integ, group) = PROPOSALS[usize::from(number - 1)];
            assert_eq!(
                kinds,
                [
                    (1, 12),
                    (2, usize::from(prf)),
                    (3, usize::from(integ)),
                    (4, usize::from(group))
                ]
            );
            // The ENCR transform carries the Key Length attribute.
            assert_eq!(
                msg[at + 16..at + 20],
                [0x80, 0x0e, (bits >> 8) as u8, bits as u8]
            );
            at += proposal_len;
        }
        assert_eq!(at, 28 + sa_len);
        // KE payload: group 14, reserved, 256 bytes.
        assert_eq!(msg[at], 40, "KE is followed by Nonce");
        assert_eq!(be16_at(&msg, at + 2), 8 + 256);
        assert_eq!(msg[at + 4..at + 8], [0, 14, 0, 0]);
        assert_eq!(msg[at + 8..at + 264], ke[..]);
        at += 264;
        // Nonce payload, last.
        assert_eq!(msg[at], 0);
        assert_eq!(be16_at(&msg, at + 2), 4 + 32);
        assert_eq!(msg[at + 4..], nonce[..]);
    }

    #[test]
    fn key_exchange_value_is_group_sized_and_inside_the_modp_range() {
        for seed in 0..=255u8 {
            let nonce = Nonce([seed; 16]);
            let ke = key_exchange_data(&nonce);
            assert_eq!(ke.len(), 256);
            assert_eq!(ke[0] & 0xc0, 0x40, "between 2^2046 and 2^2047");
            let data = nonce_data(&nonce);
            assert_eq!(data.len(), 32);
            assert_eq!(data[..16], nonce.0);
        }
        assert_ne!(
            key_exchange_data(&Nonce([1; 16])),
            key_exchange_data(&Nonce([2; 16]))
        );
    }

    #[test]
    fn nat_traversal_puts_the_non_esp_marker_before_the_same_message() {
        let (ctx, nonce) = (ProbeContext::default(), Nonce([4; 16]));
        let plain = Request::new(&ctx, &nonce).datagrams().remove(0);
        let natt = Request::nat_traversal(&ctx, &nonce).datagrams().remove(0);
        assert_eq!(natt[..4], NON_ESP_MARKER);
        assert_eq!(natt[4..], plain[..]);
        assert_eq!(initiator_spi(&Nonce([0; 16])), 1, "never a zero SPI");
    }

    #[test]
    fn generated_requests_drew_the_captured_replies() {
        for &(natt, run, sent, received, detail) in CAPTURES {
            let req = build(natt, run);
            assert_eq!(req.datagrams(), vec![hex(sent)]);
            let protocol = if natt { "ike-nat-t" } else { "ike" };
            assert_eq!(
                req.recognise(&hex(received)),
                Some(Reply::new(protocol, detail))
            );
        }
    }

    #[test]
    fn a_reply_to_another_initiator_spi_is_not_ours() {
        for &(natt, run, _, received, _) in CAPTURES {
            let start = if natt { 4 } else { 0 };
            assert_bit_flips_refused(&build(natt, run), &hex(received), start..start + 8);
        }
    }

    #[test]
    fn truncated_replies_are_refused() {
        for &(natt, run, _, received, _) in CAPTURES {
            assert_truncations_refused(&build(natt, run), &hex(received));
        }
    }

    #[test]
    fn the_marker_decides_which_port_a_reply_belongs_to() {
        let natt_reply = hex(CAPTURES[3].3);
        let plain_request = build(false, 1);
        assert_eq!(plain_request.recognise(&natt_reply), None);
        assert!(plain_request.recognise(&natt_reply[4..]).is_some());
        let natt_request = build(true, 1);
        assert_eq!(natt_request.recognise(&natt_reply[4..]), None);
    }

    #[test]
    fn other_protocols_replies_and_our_own_request_are_refused() {
        for &(natt, run, sent, _, _) in CAPTURES {
            let req = build(natt, run);
            assert_other_replies_refused(&req, "ike");
            assert_eq!(req.recognise(&hex(sent)), None, "echo of the request");
        }
    }

    /// An IKEv1 message from responder cookie `11..` to our cookie.
    fn v1_message(spi: u64, first: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut msg = spi.to_be_bytes().to_vec();
        msg.extend_from_slice(&[0x11; 8]);
        msg.extend_from_slice(&[first, 0x10, 5, flags, 0, 0, 0, 0]);
        msg.extend_from_slice(&((28 + payload.len()) as u32).to_be_bytes());
        msg.extend_from_slice(payload);
        msg
    }

    #[test]
    fn an_ikev1_informational_answer_counts() {
        let req = build(false, 1);
        let spi = initiator_spi(&nonce_5a17(1));
        // Notification: generic header, DOI 1 (IPsec), protocol ISAKMP, no
        // SPI, INVALID-MAJOR-VERSION.
        let notification = [0, 0, 0, 12, 0, 0, 0, 1, 1, 0, 0, 5];
        assert_eq!(
            req.recognise(&v1_message(spi, 11, 0, &notification)),
            Some(Reply::new(
                "ike",
                "IKE notify INVALID_MAJOR_VERSION in IKEv1 Informational response"
            ))
        );
        // Encrypted payloads cannot be read: the header still proves IKE.
        let encrypted = v1_message(spi, 8, 1, &[0xde; 20]);
        assert_eq!(
            req.recognise(&encrypted).map(|r| r.detail),
            Some("IKEv1 Informational response (first payload Hash)".to_string())
        );
        assert_eq!(
            req.recognise(&v1_message(spi ^ 1, 11, 0, &notification)),
            None
        );
    }

    #[test]
    fn notify_types_and_exchanges_without_names_are_kept_as_numbers() {
        assert_eq!(NotifyType::from_v2(16390), NotifyType::Cookie);
        assert_eq!(NotifyType::from_v2(9999), NotifyType::Unknown(9999));
        assert_eq!(NotifyType::from_v1(16), NotifyType::PayloadMalformed);
        assert_eq!(NotifyType::Unknown(9999).name(), "type 9999");
        assert_eq!(ExchangeType::from_code(2, 99), ExchangeType::Unknown(99));
        // A COOKIE request from a responder under load.
        let spi = 0x0102_0304_0506_0708u64;
        let mut msg = spi.to_be_bytes().to_vec();
        msg.extend_from_slice(&[0; 8]);
        msg.extend_from_slice(&[41, 0x20, 34, 0x20, 0, 0, 0, 0, 0, 0, 0, 44]);
        msg.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0x40, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
        let parsed = recognise(&msg).expect("IKE message");
        assert_eq!(parsed.notify.map(|n| n.kind), Some(NotifyType::Cookie));
        // A notify payload whose length overruns the message is not decoded.
        msg[31] = 200;
        assert_eq!(recognise(&msg).and_then(|p| p.notify), None);
    }

    proptest! {
        #[test]
        fn an_initiator_spi_byte_changed_is_refused(
            which in 0..CAPTURES.len(),
            change in byte_changes(),
        ) {
            let (natt, run, _, received, _) = CAPTURES[which];
            let start = if natt { 4 } else { 0 };
            id_field_property(&build(natt, run), &hex(received), start..start + 8, change)?;
        }

        #[test]
        fn a_request_with_another_spi_refuses_the_captures(
            (which, nonce) in capture_and_other_nonce(
                CAPTURES.len(),
                |which| nonce_5a17(CAPTURES[which].1),
                0..8,
            ),
        ) {
            let (natt, _, _, received, _) = CAPTURES[which];
            other_nonce_property(&build_for(natt, &nonce), &hex(received))?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = build(false, 1).recognise(&bytes);
            let _ = build(true, 1).recognise(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_captures(which in 0..CAPTURES.len(), mutation in mutations()) {
            let (natt, run, _, received, _) = CAPTURES[which];
            let _ = build(natt, run).recognise(&mutation.apply(&hex(received)));
        }
    }
}
