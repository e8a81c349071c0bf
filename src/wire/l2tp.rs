//! L2TP version 2 (RFC 2661), UDP port 1701: the control connection.
//!
//! The request is a Start-Control-Connection-Request (SCCRQ) with the AVPs
//! section 6.1 of the RFC makes mandatory: Message Type, Protocol Version
//! (1.0), Host Name (`portprobe`), Framing Capabilities (synchronous and
//! asynchronous) and Assigned Tunnel ID, the tunnel ID taken from the nonce.
//! As for any first message of a tunnel, the header's tunnel and session IDs
//! are zero.
//!
//! An LNS or LAC sends every later control message of the tunnel with our
//! Assigned Tunnel ID in its header, so a reply counts when it is a control
//! message (T, L and S bits set, version 2) for that tunnel ID: an SCCRP
//! accepting the tunnel, a StopCCN refusing it, or any other control message
//! or zero-length acknowledgement, all of which prove an L2TP peer. The
//! report names the message type and the peer's Host Name AVP when it is
//! present and not hidden.

use super::bytes::be16;
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// Header flags and version of a control message: T, L and S set, version 2.
const CONTROL_HEADER: u16 = 0xc802;
/// Type bit: a control message.
const FLAG_TYPE: u16 = 0x8000;
/// Length bit: the length field is present.
const FLAG_LENGTH: u16 = 0x4000;
/// Sequence bit: Ns and Nr are present.
const FLAG_SEQUENCE: u16 = 0x0800;
/// Offset bit: an offset size field is present.
const FLAG_OFFSET: u16 = 0x0200;
/// The version bits.
const VERSION_MASK: u16 = 0x000f;

/// AVP flag bits: Mandatory and Hidden.
const AVP_MANDATORY: u16 = 0x8000;
const AVP_HIDDEN: u16 = 0x4000;
/// AVP length mask (ten bits).
const AVP_LENGTH_MASK: u16 = 0x03ff;

/// Attribute types (RFC 2661 section 4.4).
const ATTR_MESSAGE_TYPE: u16 = 0;
const ATTR_PROTOCOL_VERSION: u16 = 2;
const ATTR_FRAMING_CAPABILITIES: u16 = 3;
const ATTR_HOST_NAME: u16 = 7;
const ATTR_ASSIGNED_TUNNEL_ID: u16 = 9;

/// The host name the probe announces.
pub const HOST_NAME: &str = "portprobe";

/// An SCCRQ probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    tunnel_id: u16,
    payload: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let tunnel_id = tunnel_id(nonce);
        Request {
            tunnel_id,
            payload: request(tunnel_id, HOST_NAME),
        }
    }
}

/// The Assigned Tunnel ID for `nonce`: its first two bytes, never zero (zero
/// means "no tunnel yet").
pub fn tunnel_id(nonce: &Nonce) -> u16 {
    nonce.u16().max(1)
}

/// Appends a mandatory, unhidden IETF AVP.
fn push_avp(out: &mut Vec<u8>, attribute: u16, value: &[u8]) {
    let len = u16::try_from(6 + value.len()).unwrap_or(AVP_LENGTH_MASK) & AVP_LENGTH_MASK;
    out.extend_from_slice(&(AVP_MANDATORY | len).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // vendor ID: IETF
    out.extend_from_slice(&attribute.to_be_bytes());
    out.extend_from_slice(value);
}

/// The SCCRQ assigning tunnel ID `tunnel_id`, announcing `host_name`.
pub fn request(tunnel_id: u16, host_name: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(80);
    msg.extend_from_slice(&CONTROL_HEADER.to_be_bytes());
    msg.extend_from_slice(&[0, 0]); // length, filled in below
    msg.extend_from_slice(&[0, 0, 0, 0]); // tunnel ID and session ID: none yet
    msg.extend_from_slice(&[0, 0, 0, 0]); // Ns 0, Nr 0
    push_avp(&mut msg, ATTR_MESSAGE_TYPE, &1u16.to_be_bytes());
    push_avp(&mut msg, ATTR_PROTOCOL_VERSION, &[1, 0]);
    push_avp(&mut msg, ATTR_HOST_NAME, host_name.as_bytes());
    push_avp(&mut msg, ATTR_FRAMING_CAPABILITIES, &3u32.to_be_bytes());
    push_avp(&mut msg, ATTR_ASSIGNED_TUNNEL_ID, &tunnel_id.to_be_bytes());
    let len = u16::try_from(msg.len()).unwrap_or(u16::MAX).to_be_bytes();
    msg[2..4].copy_from_slice(&len);
    msg
}

/// A control message type (RFC 2661 section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// Start-Control-Connection-Request (1).
    Sccrq,
    /// Start-Control-Connection-Reply (2).
    Sccrp,
    /// Start-Control-Connection-Connected (3).
    Scccn,
    /// Stop-Control-Connection-Notification (4).
    StopCcn,
    /// Hello (6).
    Hello,
    /// Outgoing-Call-Request (7).
    Ocrq,
    /// Outgoing-Call-Reply (8).
    Ocrp,
    /// Outgoing-Call-Connected (9).
    Occn,
    /// Incoming-Call-Request (10).
    Icrq,
    /// Incoming-Call-Reply (11).
    Icrp,
    /// Incoming-Call-Connected (12).
    Iccn,
    /// Call-Disconnect-Notify (14).
    Cdn,
    /// WAN-Error-Notify (15).
    Wen,
    /// Set-Link-Info (16).
    Sli,
    /// A type not named here.
    Unknown(u16),
}

impl MessageType {
    fn from_code(code: u16) -> MessageType {
        match code {
            1 => MessageType::Sccrq,
            2 => MessageType::Sccrp,
            3 => MessageType::Scccn,
            4 => MessageType::StopCcn,
            6 => MessageType::Hello,
            7 => MessageType::Ocrq,
            8 => MessageType::Ocrp,
            9 => MessageType::Occn,
            10 => MessageType::Icrq,
            11 => MessageType::Icrp,
            12 => MessageType::Iccn,
            14 => MessageType::Cdn,
            15 => MessageType::Wen,
            16 => MessageType::Sli,
            n => MessageType::Unknown(n),
        }
    }

    fn name(self) -> String {
        let name = match self {
            MessageType::Sccrq => "SCCRQ",
            MessageType::Sccrp => "SCCRP",
            MessageType::Scccn => "SCCCN",
            MessageType::StopCcn => "StopCCN",
            MessageType::Hello => "HELLO",
            MessageType::Ocrq => "OCRQ",
            MessageType::Ocrp => "OCRP",
            MessageType::Occn => "OCCN",
            MessageType::Icrq => "ICRQ",
            MessageType::Icrp => "ICRP",
            MessageType::Iccn => "ICCN",
            MessageType::Cdn => "CDN",
            MessageType::Wen => "WEN",
            MessageType::Sli => "SLI",
            MessageType::Unknown(n) => return format!("message type {n}"),
        };
        name.to_string()
    }
}

/// A decoded control message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The tunnel ID in the header: the receiver's ID for the tunnel.
    pub tunnel_id: u16,
    /// The Message Type AVP; `None` for a zero-length body acknowledgement.
    pub message_type: Option<MessageType>,
    /// The Host Name AVP, when present and not hidden.
    pub host_name: Option<String>,
}

impl Parsed {
    /// One line for reports, e.g. `L2TP SCCRP from host "xl2tpd"`.
    pub fn describe(&self) -> String {
        let kind = match self.message_type {
            Some(kind) => kind.name(),
            None => "zero-length acknowledgement".to_string(),
        };
        match &self.host_name {
            Some(host) => format!("L2TP {kind} from host {host:?}"),
            None => format!("L2TP {kind}"),
        }
    }
}

/// Parses an L2TPv2 control message. `None` for data messages, other
/// versions, and messages whose header or AVPs run past the datagram or whose
/// first AVP is not the Message Type.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    let flags = be16(bytes, 0)?;
    let required = FLAG_TYPE | FLAG_LENGTH | FLAG_SEQUENCE;
    if flags & required != required || flags & VERSION_MASK != 2 {
        return None;
    }
    let length = usize::from(be16(bytes, 2)?);
    let message = bytes.get(..length)?;
    let tunnel_id = be16(message, 4)?;
    let mut at = 12;
    if flags & FLAG_OFFSET != 0 {
        let offset = usize::from(be16(message, at)?);
        at = at.checked_add(2)?.checked_add(offset)?;
    }
    let mut avps = message.get(at..)?;
    if avps.is_empty() {
        return Some(Parsed {
            tunnel_id,
            message_type: None,
            host_name: None,
        });
    }
    let mut message_type = None;
    let mut host_name = None;
    while !avps.is_empty() {
        let avp_flags = be16(avps, 0)?;
        let avp_len = usize::from(avp_flags & AVP_LENGTH_MASK);
        if avp_len < 6 {
            return None;
        }
        let avp = avps.get(..avp_len)?;
        let vendor = be16(avp, 2)?;
        let attribute = be16(avp, 4)?;
        let value = avp.get(6..)?;
        let hidden = avp_flags & AVP_HIDDEN != 0;
        match (message_type, vendor, attribute) {
            (None, 0, ATTR_MESSAGE_TYPE) if !hidden => {
                message_type = Some(MessageType::from_code(be16(value, 0)?));
            }
            // RFC 2661 section 4.1: the Message Type AVP comes first.
            (None, _, _) => return None,
            (Some(_), 0, ATTR_HOST_NAME) if !hidden => {
                host_name = Some(String::from_utf8_lossy(value).into_owned());
            }
            _ => {}
        }
        avps = avps.get(avp_len..)?;
    }
    Some(Parsed {
        tunnel_id,
        message_type,
        host_name,
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.payload.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let parsed = recognise(reply)?;
        (parsed.tunnel_id == self.tunnel_id).then(|| Reply::new("l2tp", parsed.describe()))
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

    /// xl2tpd 1.3.18's answer to our SCCRQ (fixtures/README.md).
    const SENT: &str = include_str!("fixtures/xl2tpd-sccrq.hex");
    const RECEIVED: &str = include_str!("fixtures/xl2tpd-sccrp.hex");

    fn captured_request() -> Request {
        Request::new(&context_5a17(), &nonce_5a17(1))
    }

    /// A control message to tunnel `tunnel` with `avps` after a 12-byte header.
    fn control(tunnel: u16, avps: &[u8]) -> Vec<u8> {
        let mut msg = vec![0xc8, 0x02];
        msg.extend_from_slice(&((12 + avps.len()) as u16).to_be_bytes());
        msg.extend_from_slice(&tunnel.to_be_bytes());
        msg.extend_from_slice(&[0, 0, 0, 1, 0, 1]);
        msg.extend_from_slice(avps);
        msg
    }

    #[test]
    fn sccrq_layout_follows_rfc_2661() {
        let msg = request(0x1234, "portprobe");
        assert_eq!(msg.len(), 61);
        assert_eq!(msg[0..2], [0xc8, 0x02], "T, L, S set; version 2");
        assert_eq!(msg[2..4], [0, 61], "length");
        assert_eq!(msg[4..12], [0; 8], "tunnel 0, session 0, Ns 0, Nr 0");
        // Each AVP: M bit and length, vendor 0, attribute, value.
        assert_eq!(
            msg[12..20],
            [0x80, 8, 0, 0, 0, 0, 0, 1],
            "Message Type SCCRQ"
        );
        assert_eq!(
            msg[20..28],
            [0x80, 8, 0, 0, 0, 2, 1, 0],
            "Protocol Version 1.0"
        );
        assert_eq!(msg[28..34], [0x80, 15, 0, 0, 0, 7], "Host Name");
        assert_eq!(&msg[34..43], b"portprobe");
        assert_eq!(
            msg[43..53],
            [0x80, 10, 0, 0, 0, 3, 0, 0, 0, 3],
            "Framing Capabilities: sync and async"
        );
        assert_eq!(
            msg[53..61],
            [0x80, 8, 0, 0, 0, 9, 0x12, 0x34],
            "Assigned Tunnel ID"
        );
        assert_eq!(tunnel_id(&Nonce([0; 16])), 1, "tunnel ID 0 is reserved");
    }

    #[test]
    fn generated_request_drew_the_captured_sccrp() {
        let req = captured_request();
        assert_eq!(req.datagrams(), vec![hex(SENT)]);
        assert_eq!(
            req.recognise(&hex(RECEIVED)),
            Some(Reply::new("l2tp", "L2TP SCCRP from host \"vm\""))
        );
    }

    #[test]
    fn a_reply_to_another_tunnel_is_not_ours() {
        assert_bit_flips_refused(&captured_request(), &hex(RECEIVED), 4..6);
    }

    #[test]
    fn truncated_replies_are_refused() {
        assert_truncations_refused(&captured_request(), &hex(RECEIVED));
    }

    #[test]
    fn other_protocols_replies_and_our_own_request_are_refused() {
        let req = captured_request();
        assert_other_replies_refused(&req, "l2tp");
        assert_eq!(req.recognise(&hex(SENT)), None);
    }

    #[test]
    fn stop_ccn_and_acknowledgements_prove_l2tp_too() {
        let req = captured_request();
        let ours = tunnel_id(&nonce_5a17(1));
        // StopCCN with a Result Code AVP (general request to clear).
        let stop = control(
            ours,
            &[0x80, 8, 0, 0, 0, 0, 0, 4, 0x80, 8, 0, 0, 0, 1, 0, 1],
        );
        assert_eq!(
            req.recognise(&stop),
            Some(Reply::new("l2tp", "L2TP StopCCN"))
        );
        assert_eq!(
            req.recognise(&control(ours, &[])),
            Some(Reply::new("l2tp", "L2TP zero-length acknowledgement"))
        );
        // A hidden Host Name is not quoted.
        let hidden = control(
            ours,
            &[0x80, 8, 0, 0, 0, 0, 0, 2, 0xc0, 8, 0, 0, 0, 7, 0xaa, 0xbb],
        );
        assert_eq!(
            req.recognise(&hidden).map(|r| r.detail),
            Some("L2TP SCCRP".into())
        );
        assert_eq!(
            recognise(&control(ours, &[0x80, 8, 0, 0, 0, 0, 0, 99])).and_then(|p| p.message_type),
            Some(MessageType::Unknown(99))
        );
    }

    #[test]
    fn malformed_control_messages_are_refused() {
        let ours = tunnel_id(&nonce_5a17(1));
        let sccrp = [0x80, 8, 0, 0, 0, 0, 0, 2];
        // A data message (T bit clear).
        let mut data = control(ours, &sccrp);
        data[0] = 0x48;
        assert_eq!(recognise(&data), None);
        // L2TPv3 (version 3).
        let mut v3 = control(ours, &sccrp);
        v3[1] = 0x03;
        assert_eq!(recognise(&v3), None);
        // First AVP other than Message Type.
        assert_eq!(
            recognise(&control(ours, &[0x80, 8, 0, 0, 0, 9, 0, 1])),
            None
        );
        // AVP length below its own header, and AVP running past the message.
        assert_eq!(recognise(&control(ours, &[0x80, 4, 0, 0, 0, 0])), None);
        assert_eq!(
            recognise(&control(ours, &[0x80, 20, 0, 0, 0, 0, 0, 2])),
            None
        );
    }

    #[test]
    fn an_offset_field_is_skipped() {
        let ours = tunnel_id(&nonce_5a17(1));
        let mut msg = control(ours, &[0, 2, 0xff, 0xff, 0x80, 8, 0, 0, 0, 0, 0, 2]);
        msg[0] = 0xca; // O bit set
        let parsed = recognise(&msg).expect("control message");
        assert_eq!(parsed.message_type, Some(MessageType::Sccrp));
    }

    proptest! {
        #[test]
        fn a_tunnel_id_byte_changed_is_refused(change in byte_changes()) {
            id_field_property(&captured_request(), &hex(RECEIVED), 4..6, change)?;
        }

        #[test]
        fn a_request_with_another_tunnel_id_refuses_the_capture(
            nonce in other_nonces(nonce_5a17(1), 0..2),
        ) {
            let request = Request::new(&context_5a17(), &nonce);
            other_nonce_property(&request, &hex(RECEIVED))?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = captured_request().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_captures(mutation in mutations()) {
            let _ = captured_request().recognise(&mutation.apply(&hex(RECEIVED)));
        }
    }
}
