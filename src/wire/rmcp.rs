//! RMCP (Remote Management Control Protocol), UDP port 623: the ASF presence
//! ping that finds IPMI baseboard management controllers and ASF agents
//! (DMTF DSP0136, Alert Standard Format 2.0, sections 3.2.2 and 3.2.4).
//!
//! The request is an RMCP message of version 6 (ASF 2.0), sequence number
//! 0xFF (no RMCP acknowledgement wanted), class ASF, carrying an ASF message
//! with IANA enterprise number 4542, type 0x80 (Presence Ping), a message tag
//! from the nonce and no data. A tag of 0xFF means "not a request-response
//! message" in ASF, so the tag is never 0xFF.
//!
//! A reply counts when it is an RMCP ASF message of type 0x40 (Presence Pong)
//! with our tag and its 16 data bytes. The tag is a single byte, which a
//! stranger could guess by sending a few hundred pongs, so a pong counts only
//! from the probed address and port ([`super::Match::ShapeFromPort`]). The report says whether the pong's
//! supported-entities byte announces IPMI, and the ASF version it gives.

use super::bytes::be32;
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// RMCP version 6: ASF 2.0 / IPMI LAN.
const RMCP_VERSION: u8 = 0x06;
/// RMCP sequence number asking for no acknowledgement.
const SEQUENCE_NO_ACK: u8 = 0xff;
/// RMCP message class ASF.
const CLASS_ASF: u8 = 0x06;
/// The class byte's acknowledgement bit.
const CLASS_ACK: u8 = 0x80;
/// ASF's IANA enterprise number.
const ASF_IANA: u32 = 4542;
/// ASF message types.
const PRESENCE_PING: u8 = 0x80;
const PRESENCE_PONG: u8 = 0x40;
/// Length of a Presence Pong's data.
const PONG_DATA_LEN: usize = 16;
/// The supported-entities bit announcing IPMI.
const ENTITY_IPMI: u8 = 0x80;
/// The supported-interactions bit announcing RMCP security extensions.
const INTERACTION_SECURITY: u8 = 0x80;

/// A presence ping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    tag: u8,
    payload: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let tag = message_tag(nonce);
        Request {
            tag,
            payload: request(tag),
        }
    }
}

/// The message tag for `nonce`: its first byte, with 0xFF (untagged) mapped
/// to 0xFE.
pub fn message_tag(nonce: &Nonce) -> u8 {
    nonce.0[0].min(0xfe)
}

/// The Presence Ping with message tag `tag` (12 bytes).
pub fn request(tag: u8) -> Vec<u8> {
    let mut msg = vec![RMCP_VERSION, 0, SEQUENCE_NO_ACK, CLASS_ASF];
    msg.extend_from_slice(&ASF_IANA.to_be_bytes());
    msg.extend_from_slice(&[PRESENCE_PING, tag, 0, 0]);
    msg
}

/// A decoded Presence Pong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The message tag, copied from the ping.
    pub tag: u8,
    /// The IANA enterprise number in the pong's data (4542, or an OEM's).
    pub enterprise: u32,
    /// Whether the supported-entities byte announces IPMI.
    pub ipmi: bool,
    /// The ASF version nibble of the supported-entities byte (1 = ASF 1.0).
    pub asf_version: u8,
    /// Whether RMCP security extensions are supported.
    pub security_extensions: bool,
}

impl Parsed {
    /// One line for reports, e.g. `ASF presence pong: IPMI supported`.
    pub fn describe(&self) -> String {
        let ipmi = if self.ipmi {
            "IPMI supported"
        } else {
            "IPMI not supported"
        };
        let mut line = format!("ASF presence pong: {ipmi}");
        if self.asf_version == 1 {
            line.push_str(", ASF 1.0");
        }
        if self.security_extensions {
            line.push_str(", RMCP security extensions");
        }
        line
    }
}

/// Parses an RMCP ASF Presence Pong; `None` for anything else, including
/// RMCP acknowledgements and pongs shorter than their 16 data bytes.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    let version = *bytes.first()?;
    let class = *bytes.get(3)?;
    if version != RMCP_VERSION || class & CLASS_ACK != 0 || class & 0x0f != CLASS_ASF {
        return None;
    }
    if be32(bytes, 4)? != ASF_IANA || *bytes.get(8)? != PRESENCE_PONG {
        return None;
    }
    let tag = *bytes.get(9)?;
    let data_len = usize::from(*bytes.get(11)?);
    if data_len < PONG_DATA_LEN {
        return None;
    }
    let data = bytes.get(12..12 + data_len)?;
    let entities = *data.get(8)?;
    let interactions = *data.get(9)?;
    Some(Parsed {
        tag,
        enterprise: be32(data, 0)?,
        ipmi: entities & ENTITY_IPMI != 0,
        asf_version: entities & 0x0f,
        security_extensions: interactions & INTERACTION_SECURITY != 0,
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.payload.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let parsed = recognise(reply)?;
        (parsed.tag == self.tag).then(|| Reply::shape_from_port("rmcp", parsed.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Match;
    use crate::wire::fixtures::{
        assert_bit_flips_refused, assert_other_replies_refused, assert_truncations_refused,
        byte_changes, context_5a17, datagrams, hex, id_field_property_matched, mutations,
        nonce_5a17, other_nonce_property, other_nonces,
    };
    use proptest::prelude::*;

    /// OpenIPMI 2.0.33's ipmi_sim answering our ping (fixtures/README.md).
    const SENT: &str = include_str!("fixtures/ipmi-sim-ping.hex");
    const RECEIVED: &str = include_str!("fixtures/ipmi-sim-pong.hex");

    fn captured_request() -> Request {
        Request::new(&context_5a17(), &nonce_5a17(1))
    }

    /// A pong with tag `tag`, supported entities `entities` and supported
    /// interactions `interactions`.
    fn pong(tag: u8, entities: u8, interactions: u8) -> Vec<u8> {
        let mut msg = vec![
            0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x40, tag, 0x00, 0x10,
        ];
        msg.extend_from_slice(&[0x00, 0x00, 0x11, 0xbe, 0, 0, 0, 0, entities, interactions]);
        msg.extend_from_slice(&[0; 6]);
        msg
    }

    #[test]
    fn presence_ping_layout_follows_dsp0136() {
        let ping = request(0x42);
        assert_eq!(ping.len(), 12);
        assert_eq!(ping[0], 0x06, "RMCP version 6");
        assert_eq!(ping[1], 0x00, "reserved");
        assert_eq!(ping[2], 0xff, "sequence: no RMCP ACK");
        assert_eq!(ping[3], 0x06, "class ASF");
        assert_eq!(ping[4..8], [0x00, 0x00, 0x11, 0xbe], "IANA 4542");
        assert_eq!(ping[8], 0x80, "Presence Ping");
        assert_eq!(ping[9], 0x42, "message tag");
        assert_eq!(ping[10..12], [0, 0], "reserved, no data");
        assert_eq!(message_tag(&Nonce([0xff; 16])), 0xfe, "0xFF means untagged");
        assert_eq!(message_tag(&Nonce([0x17; 16])), 0x17);
    }

    #[test]
    fn generated_ping_drew_the_captured_pong() {
        let req = captured_request();
        assert_eq!(req.datagrams(), vec![hex(SENT)]);
        assert_eq!(
            req.recognise(&hex(RECEIVED)),
            Some(Reply::shape_from_port(
                "rmcp",
                "ASF presence pong: IPMI supported, ASF 1.0"
            ))
        );
    }

    #[test]
    fn a_pong_with_another_tag_is_not_ours() {
        assert_bit_flips_refused(&captured_request(), &hex(RECEIVED), 9..10);
    }

    #[test]
    fn truncated_replies_are_refused() {
        assert_truncations_refused(&captured_request(), &hex(RECEIVED));
    }

    #[test]
    fn other_protocols_replies_and_our_own_ping_are_refused() {
        let req = captured_request();
        assert_other_replies_refused(&req, "rmcp");
        assert_eq!(req.recognise(&hex(SENT)), None);
    }

    #[test]
    fn pong_fields_are_decoded() {
        let tag = message_tag(&nonce_5a17(1));
        let req = captured_request();
        assert_eq!(
            req.recognise(&pong(tag, 0x01, 0x80)).map(|r| r.detail),
            Some("ASF presence pong: IPMI not supported, ASF 1.0, RMCP security extensions".into())
        );
        assert_eq!(
            req.recognise(&pong(tag, 0x80, 0x00)).map(|r| r.detail),
            Some("ASF presence pong: IPMI supported".into())
        );
        let mut ack = pong(tag, 0x81, 0);
        ack[3] = 0x86;
        assert_eq!(req.recognise(&ack), None, "RMCP ACK");
        let mut ipmi_class = pong(tag, 0x81, 0);
        ipmi_class[3] = 0x07;
        assert_eq!(req.recognise(&ipmi_class), None, "IPMI class");
        let mut short = pong(tag, 0x81, 0);
        short[11] = 8;
        assert_eq!(req.recognise(&short), None, "data length below 16");
    }

    proptest! {
        #[test]
        fn a_message_tag_changed_is_refused(change in byte_changes()) {
            id_field_property_matched(
                &captured_request(),
                &hex(RECEIVED),
                9..10,
                change,
                Match::ShapeFromPort,
            )?;
        }

        #[test]
        fn a_request_with_another_tag_refuses_the_capture(
            nonce in other_nonces(nonce_5a17(1), 0..1),
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
