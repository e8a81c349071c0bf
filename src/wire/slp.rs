//! SLPv2, the Service Location Protocol version 2 (RFC 2608), UDP port 427.
//!
//! The probe sends two Service Requests (section 8.1), unicast, in scope
//! `DEFAULT` and language `en`: one for `service:directory-agent`, which a
//! Directory Agent answers with a DAAdvert (section 8.5), and one for
//! `service:service-agent`, which a Service Agent answers with an SAAdvert
//! (section 8.6); nmap's SLP payload asks for the latter. A host may run
//! either agent, or both. The first request carries the XID from the nonce,
//! the second its bitwise complement, so that the two differ in every bit.
//!
//! A reply counts when it is an SLPv2 message whose function ID is a reply
//! type (SrvRply, SrvAck, AttrRply, DAAdvert, SrvTypeRply, SAAdvert), whose
//! header fits the datagram and whose XID is one of ours. The report names
//! the reply type with its error code, or the advertised URL.

use super::bytes::{be16, be24};
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The SLP version this module speaks.
const VERSION: u8 = 2;
/// The SrvRqst function ID.
const SRV_RQST: u8 = 1;
/// The scope requested.
pub const SCOPE: &str = "DEFAULT";
/// The language tag of the requests.
pub const LANGUAGE: &str = "en";
/// The service type a Directory Agent answers.
pub const DIRECTORY_AGENT: &str = "service:directory-agent";
/// The service type a Service Agent answers.
pub const SERVICE_AGENT: &str = "service:service-agent";
/// Longest URL quoted in a report.
const MAX_URL_CHARS: usize = 120;

/// The two Service Requests of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    xids: [u16; 2],
    datagrams: Vec<Vec<u8>>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let xids = [nonce.u16(), !nonce.u16()];
        Request {
            xids,
            datagrams: vec![
                request(xids[0], DIRECTORY_AGENT, SCOPE),
                request(xids[1], SERVICE_AGENT, SCOPE),
            ],
        }
    }
}

/// Appends an SLP string: a two-byte length, then the bytes. The strings
/// this module sends are short constants.
fn push_string(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// A unicast SrvRqst for `service_type` in `scope`, language `en`, with
/// transaction ID `xid`, an empty previous-responder list, no predicate and
/// no SPI.
pub fn request(xid: u16, service_type: &str, scope: &str) -> Vec<u8> {
    let mut msg = vec![VERSION, SRV_RQST, 0, 0, 0];
    msg.extend_from_slice(&[0, 0]); // flags: not overflowed, not fresh, not multicast
    msg.extend_from_slice(&[0, 0, 0]); // next extension offset: none
    msg.extend_from_slice(&xid.to_be_bytes());
    push_string(&mut msg, LANGUAGE);
    push_string(&mut msg, ""); // previous responder list
    push_string(&mut msg, service_type);
    push_string(&mut msg, scope);
    push_string(&mut msg, ""); // predicate
    push_string(&mut msg, ""); // SLP SPI
    let len = u32::try_from(msg.len()).unwrap_or(0).to_be_bytes();
    msg[2..5].copy_from_slice(&len[1..]);
    msg
}

/// An SLPv2 function ID (RFC 2608 section 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// Service Request (1).
    SrvRqst,
    /// Service Reply (2).
    SrvRply,
    /// Service Registration (3).
    SrvReg,
    /// Service Deregistration (4).
    SrvDeReg,
    /// Service Acknowledge (5).
    SrvAck,
    /// Attribute Request (6).
    AttrRqst,
    /// Attribute Reply (7).
    AttrRply,
    /// DA Advertisement (8).
    DaAdvert,
    /// Service Type Request (9).
    SrvTypeRqst,
    /// Service Type Reply (10).
    SrvTypeRply,
    /// SA Advertisement (11).
    SaAdvert,
    /// A function ID not defined by RFC 2608.
    Unknown(u8),
}

impl Function {
    fn from_code(code: u8) -> Function {
        match code {
            1 => Function::SrvRqst,
            2 => Function::SrvRply,
            3 => Function::SrvReg,
            4 => Function::SrvDeReg,
            5 => Function::SrvAck,
            6 => Function::AttrRqst,
            7 => Function::AttrRply,
            8 => Function::DaAdvert,
            9 => Function::SrvTypeRqst,
            10 => Function::SrvTypeRply,
            11 => Function::SaAdvert,
            n => Function::Unknown(n),
        }
    }

    /// Whether a server sends this function in answer to a request.
    pub fn is_reply(self) -> bool {
        matches!(
            self,
            Function::SrvRply
                | Function::SrvAck
                | Function::AttrRply
                | Function::DaAdvert
                | Function::SrvTypeRply
                | Function::SaAdvert
        )
    }

    fn name(self) -> String {
        let name = match self {
            Function::SrvRqst => "SrvRqst",
            Function::SrvRply => "SrvRply",
            Function::SrvReg => "SrvReg",
            Function::SrvDeReg => "SrvDeReg",
            Function::SrvAck => "SrvAck",
            Function::AttrRqst => "AttrRqst",
            Function::AttrRply => "AttrRply",
            Function::DaAdvert => "DAAdvert",
            Function::SrvTypeRqst => "SrvTypeRqst",
            Function::SrvTypeRply => "SrvTypeRply",
            Function::SaAdvert => "SAAdvert",
            Function::Unknown(n) => return format!("function {n}"),
        };
        name.to_string()
    }
}

/// An SLP error code (RFC 2608 section 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// No error (0).
    Ok,
    /// LANGUAGE_NOT_SUPPORTED (1).
    LanguageNotSupported,
    /// PARSE_ERROR (2).
    ParseError,
    /// INVALID_REGISTRATION (3).
    InvalidRegistration,
    /// SCOPE_NOT_SUPPORTED (4).
    ScopeNotSupported,
    /// AUTHENTICATION_UNKNOWN (5).
    AuthenticationUnknown,
    /// AUTHENTICATION_ABSENT (6).
    AuthenticationAbsent,
    /// AUTHENTICATION_FAILED (7).
    AuthenticationFailed,
    /// VER_NOT_SUPPORTED (9).
    VersionNotSupported,
    /// INTERNAL_ERROR (10).
    InternalError,
    /// DA_BUSY_NOW (11).
    DaBusyNow,
    /// OPTION_NOT_UNDERSTOOD (12).
    OptionNotUnderstood,
    /// INVALID_UPDATE (13).
    InvalidUpdate,
    /// MSG_NOT_SUPPORTED (14).
    MessageNotSupported,
    /// REFRESH_REJECTED (15).
    RefreshRejected,
    /// A code not defined by RFC 2608.
    Unknown(u16),
}

impl ErrorCode {
    fn from_code(code: u16) -> ErrorCode {
        match code {
            0 => ErrorCode::Ok,
            1 => ErrorCode::LanguageNotSupported,
            2 => ErrorCode::ParseError,
            3 => ErrorCode::InvalidRegistration,
            4 => ErrorCode::ScopeNotSupported,
            5 => ErrorCode::AuthenticationUnknown,
            6 => ErrorCode::AuthenticationAbsent,
            7 => ErrorCode::AuthenticationFailed,
            9 => ErrorCode::VersionNotSupported,
            10 => ErrorCode::InternalError,
            11 => ErrorCode::DaBusyNow,
            12 => ErrorCode::OptionNotUnderstood,
            13 => ErrorCode::InvalidUpdate,
            14 => ErrorCode::MessageNotSupported,
            15 => ErrorCode::RefreshRejected,
            n => ErrorCode::Unknown(n),
        }
    }

    fn name(self) -> String {
        let name = match self {
            ErrorCode::Ok => "OK",
            ErrorCode::LanguageNotSupported => "LANGUAGE_NOT_SUPPORTED",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::InvalidRegistration => "INVALID_REGISTRATION",
            ErrorCode::ScopeNotSupported => "SCOPE_NOT_SUPPORTED",
            ErrorCode::AuthenticationUnknown => "AUTHENTICATION_UNKNOWN",
            ErrorCode::AuthenticationAbsent => "AUTHENTICATION_ABSENT",
            ErrorCode::AuthenticationFailed => "AUTHENTICATION_FAILED",
            ErrorCode::VersionNotSupported => "VER_NOT_SUPPORTED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::DaBusyNow => "DA_BUSY_NOW",
            ErrorCode::OptionNotUnderstood => "OPTION_NOT_UNDERSTOOD",
            ErrorCode::InvalidUpdate => "INVALID_UPDATE",
            ErrorCode::MessageNotSupported => "MSG_NOT_SUPPORTED",
            ErrorCode::RefreshRejected => "REFRESH_REJECTED",
            ErrorCode::Unknown(n) => return format!("error {n}"),
        };
        name.to_string()
    }
}

/// A decoded SLPv2 message header and the start of its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The function ID.
    pub function: Function,
    /// The transaction ID.
    pub xid: u16,
    /// The language tag.
    pub language: String,
    /// The error code, for the reply types that begin with one.
    pub error: Option<ErrorCode>,
    /// The advertised URL of a DAAdvert or SAAdvert, or the first URL entry
    /// of a SrvRply.
    pub url: Option<String>,
}

impl Parsed {
    /// One line for reports, e.g. `SLPv2 DAAdvert service:directory-agent://192.0.2.1`.
    pub fn describe(&self) -> String {
        let mut line = format!("SLPv2 {}", self.function.name());
        if let Some(error) = self.error.filter(|e| *e != ErrorCode::Ok) {
            line.push_str(&format!(", error {}", error.name()));
        }
        if let Some(url) = &self.url {
            line.push(' ');
            line.push_str(url);
        }
        line
    }
}

/// The SLP string (two-byte length, then bytes) at `at`, as printable text.
fn slp_string(bytes: &[u8], at: usize) -> Option<String> {
    let len = usize::from(be16(bytes, at)?);
    let start = at.checked_add(2)?;
    let raw = bytes.get(start..start.checked_add(len)?)?;
    Some(
        String::from_utf8_lossy(raw)
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_URL_CHARS)
            .collect(),
    )
}

/// The URL a reply's body advertises, if its body has one where RFC 2608
/// puts it (sections 8.2, 8.5 and 8.6); `body` starts after the header.
fn advertised_url(function: Function, body: &[u8]) -> Option<String> {
    match function {
        // error code, URL entry count, then URL entries: reserved byte,
        // lifetime, URL length, URL.
        Function::SrvRply if be16(body, 2)? > 0 => slp_string(body, 7),
        // error code, boot timestamp, URL.
        Function::DaAdvert => slp_string(body, 6),
        // URL first.
        Function::SaAdvert => slp_string(body, 0),
        _ => None,
    }
    .filter(|url| !url.is_empty())
}

/// Parses an SLPv2 message. `None` unless the version is 2, the length field
/// fits the datagram and the header, language tag included, is complete.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    if *bytes.first()? != VERSION {
        return None;
    }
    let function = Function::from_code(*bytes.get(1)?);
    let length = usize::try_from(be24(bytes, 2)?).ok()?;
    let message = bytes.get(..length)?;
    let xid = be16(message, 10)?;
    let language_len = usize::from(be16(message, 12)?);
    let body_start = 14usize.checked_add(language_len)?;
    let language = String::from_utf8_lossy(message.get(14..body_start)?).into_owned();
    let body = message.get(body_start..)?;
    let error = match function {
        Function::SrvRply
        | Function::SrvAck
        | Function::AttrRply
        | Function::DaAdvert
        | Function::SrvTypeRply => Some(ErrorCode::from_code(be16(body, 0)?)),
        _ => None,
    };
    Some(Parsed {
        function,
        xid,
        language,
        error,
        url: advertised_url(function, body),
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        self.datagrams.clone()
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let parsed = recognise(reply)?;
        (parsed.function.is_reply() && self.xids.contains(&parsed.xid))
            .then(|| Reply::new("slp", parsed.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{
        assert_bit_flips_refused, assert_other_replies_refused, assert_truncations_refused,
        byte_changes, context_5a17, datagrams, hex, id_field_property, mutations, nonce_5a17,
        other_nonce_property, other_nonces,
    };
    use proptest::prelude::*;

    // No SLP server is packaged for Debian 12, so the replies below are built
    // by hand, field by field, from RFC 2608, for `nonce_5a17(1)`,
    // whose XID is 5a17 (and a5e8 for the second request).

    /// A DAAdvert (section 8.5) answering the service:directory-agent request.
    const DA_ADVERT: &str = "
        02                  # version 2
        08                  # function ID 8: DAAdvert
        00 00 4a            # length: 74 bytes, header included
        00 00               # flags: not overflowed, not fresh, not multicast
        00 00 00            # next extension offset: none
        5a 17               # XID: the first request's
        00 02 65 6e         # language tag: length 2, \"en\"
        00 00               # error code: none
        00 00 00 2a         # DA stateless boot timestamp
        00 24               # URL length: 36
        73 65 72 76 69 63 65 3a 64 69 72 65 63 74 6f 72 79 2d 61 67 65 6e 74
        3a 2f 2f 31 39 38 2e 31 38 2e 39 2e 31
                            # service:directory-agent://198.18.9.1
        00 07 44 45 46 41 55 4c 54
                            # scope list: length 7, \"DEFAULT\"
        00 00               # attribute list: empty
        00 00               # SLP SPI list: empty
        00                  # authentication blocks: none
    ";

    /// An SAAdvert (section 8.6) answering the service:service-agent request.
    const SA_ADVERT: &str = "
        02                  # version 2
        0b                  # function ID 11: SAAdvert
        00 00 40            # length: 64 bytes
        00 00               # flags
        00 00 00            # next extension offset: none
        a5 e8               # XID: the second request's
        00 02 65 6e         # language tag: length 2, \"en\"
        00 22               # URL length: 34
        73 65 72 76 69 63 65 3a 73 65 72 76 69 63 65 2d 61 67 65 6e 74
        3a 2f 2f 31 39 38 2e 31 38 2e 39 2e 31
                            # service:service-agent://198.18.9.1
        00 07 44 45 46 41 55 4c 54
                            # scope list: length 7, \"DEFAULT\"
        00 00               # attribute list: empty
        00                  # authentication blocks: none
    ";

    /// A SrvRply (section 8.2) refusing the scope.
    const SRV_RPLY_ERROR: &str = "
        02 02               # version 2, function ID 2: SrvRply
        00 00 14            # length: 20 bytes
        00 00 00 00 00      # flags, next extension offset
        5a 17               # XID: the first request's
        00 02 65 6e         # language tag \"en\"
        00 04               # error code 4: SCOPE_NOT_SUPPORTED
        00 00               # URL entry count: 0
    ";

    /// Hex with `#` comments removed.
    fn annotated(text: &str) -> Vec<u8> {
        let digits: String = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .collect();
        hex(&digits)
    }

    fn captured_request() -> Request {
        Request::new(&context_5a17(), &nonce_5a17(1))
    }

    fn replies() -> [(Vec<u8>, &'static str); 3] {
        [
            (
                annotated(DA_ADVERT),
                "SLPv2 DAAdvert service:directory-agent://198.18.9.1",
            ),
            (
                annotated(SA_ADVERT),
                "SLPv2 SAAdvert service:service-agent://198.18.9.1",
            ),
            (
                annotated(SRV_RPLY_ERROR),
                "SLPv2 SrvRply, error SCOPE_NOT_SUPPORTED",
            ),
        ]
    }

    #[test]
    fn service_request_layout_follows_rfc_2608() {
        let msg = request(0xbeef, DIRECTORY_AGENT, SCOPE);
        assert_eq!(msg.len(), 56);
        assert_eq!(msg[0], 2, "version");
        assert_eq!(msg[1], 1, "SrvRqst");
        assert_eq!(msg[2..5], [0, 0, 56], "length");
        assert_eq!(msg[5..7], [0, 0], "flags");
        assert_eq!(msg[7..10], [0, 0, 0], "next extension offset");
        assert_eq!(msg[10..12], [0xbe, 0xef], "XID");
        assert_eq!(msg[12..16], [0, 2, b'e', b'n'], "language tag");
        assert_eq!(msg[16..18], [0, 0], "previous responder list: empty");
        assert_eq!(msg[18..20], [0, 23], "service type length");
        assert_eq!(&msg[20..43], b"service:directory-agent");
        assert_eq!(msg[43..45], [0, 7], "scope list length");
        assert_eq!(&msg[45..52], b"DEFAULT");
        assert_eq!(msg[52..56], [0, 0, 0, 0], "no predicate, no SPI");
    }

    #[test]
    fn the_probe_asks_directory_and_service_agents_with_distinct_xids() {
        let nonce = nonce_5a17(1);
        let sent = captured_request().datagrams();
        assert_eq!(
            sent,
            vec![
                request(0x5a17, DIRECTORY_AGENT, SCOPE),
                request(0xa5e8, SERVICE_AGENT, SCOPE)
            ]
        );
        assert_eq!(nonce.u16(), 0x5a17);
    }

    #[test]
    fn replies_built_per_rfc_2608_are_recognised() {
        let req = captured_request();
        for (reply, detail) in replies() {
            assert_eq!(req.recognise(&reply), Some(Reply::new("slp", detail)));
        }
    }

    #[test]
    fn a_reply_with_another_xid_is_not_ours() {
        let req = captured_request();
        for (reply, _) in replies() {
            assert_bit_flips_refused(&req, &reply, 10..12);
        }
    }

    #[test]
    fn truncated_replies_are_refused() {
        let req = captured_request();
        for (reply, _) in replies() {
            assert_truncations_refused(&req, &reply);
        }
    }

    #[test]
    fn other_protocols_replies_and_our_own_requests_are_refused() {
        let req = captured_request();
        assert_other_replies_refused(&req, "slp");
        for sent in req.datagrams() {
            assert_eq!(req.recognise(&sent), None, "a SrvRqst is no reply");
        }
    }

    #[test]
    fn only_slpv2_reply_functions_count() {
        let req = captured_request();
        let mut unknown = annotated(SRV_RPLY_ERROR);
        unknown[1] = 12;
        assert_eq!(
            recognise(&unknown).map(|p| p.function),
            Some(Function::Unknown(12))
        );
        assert_eq!(req.recognise(&unknown), None);
        let mut version1 = annotated(SRV_RPLY_ERROR);
        version1[0] = 1;
        assert_eq!(req.recognise(&version1), None);
        let mut ack = annotated(SRV_RPLY_ERROR);
        ack[1] = 5;
        assert_eq!(
            req.recognise(&ack).map(|r| r.detail),
            Some("SLPv2 SrvAck, error SCOPE_NOT_SUPPORTED".into())
        );
    }

    #[test]
    fn a_service_reply_names_its_first_url() {
        let reply = annotated(
            "
            02 02 00 00 26      # SrvRply, length 38
            00 00 00 00 00      # flags, next extension offset
            5a 17 00 02 65 6e   # XID, language tag \"en\"
            00 00 00 01         # error code 0, one URL entry
            00 00 3c 00 0c      # reserved, lifetime 60 s, URL length 12
            73 65 72 76 69 63 65 3a 78 3a 2f 2f
                                # service:x://
            00                  # URL authentication blocks: none
            ",
        );
        assert_eq!(
            captured_request().recognise(&reply).map(|r| r.detail),
            Some("SLPv2 SrvRply service:x://".into())
        );
    }

    proptest! {
        #[test]
        fn an_xid_byte_changed_is_refused(which in 0..3usize, change in byte_changes()) {
            let (reply, _) = &replies()[which];
            id_field_property(&captured_request(), reply, 10..12, change)?;
        }

        #[test]
        fn a_request_with_other_xids_refuses_the_replies(
            nonce in other_nonces(nonce_5a17(1), 0..2).prop_filter(
                "a nonce whose XID is the complement of ours sends the same pair",
                |nonce| {
                    let ours = captured_request().xids;
                    Request::new(&context_5a17(), nonce).xids.iter().all(|xid| !ours.contains(xid))
                },
            ),
        ) {
            let request = Request::new(&context_5a17(), &nonce);
            for (reply, _) in replies() {
                other_nonce_property(&request, &reply)?;
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = captured_request().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_replies(which in 0..3usize, mutation in mutations()) {
            let (reply, _) = &replies()[which];
            let _ = captured_request().recognise(&mutation.apply(reply));
        }
    }
}
