//! DNS (RFC 1035), UDP port 53.
//!
//! The probe is one standard query (opcode QUERY, recursion desired) for the
//! SOA record of the root zone `.`: every resolver can answer it from its
//! priming data, an authoritative-only server refuses it, and the answer is a
//! single small record, so the probe never amplifies (no ANY, no EDNS, so the
//! reply stays within 512 bytes). The 16-bit message ID comes from the nonce.
//!
//! A reply is a well-formed DNS response (QR set) carrying our ID, whose
//! question section, when the server repeats it, is our question. Any rcode
//! counts: a dnsmasq with no upstream answers REFUSED, and that still proves a
//! DNS server. Messages are built and parsed with `hickory-proto`, which
//! returns an error, never a panic, on malformed input.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// A DNS probe: a root SOA query with an ID taken from the nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    id: u16,
    datagram: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port; the message ID is [`Nonce::u16`].
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let id = nonce.u16();
        Request {
            id,
            datagram: request(id),
        }
    }
}

/// The question the probe asks: `. IN SOA`.
pub fn question() -> Query {
    Query::query(Name::root(), RecordType::SOA)
}

/// The query datagram with message ID `id`: header with RD set and one
/// question, `. IN SOA` (17 bytes).
pub fn request(id: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(question());
    message
        .to_vec()
        .expect("a one-question query for the root name always encodes")
}

/// What a DNS response said, as far as the probe cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The message ID, copied by the server from the query.
    pub id: u16,
    /// The response code, including EDNS extended bits; unknown codes are
    /// `ResponseCode::Unknown(n)`.
    pub rcode: ResponseCode,
    /// The question section the server repeated (often one entry, may be empty).
    pub questions: Vec<Query>,
    /// How many answer records came back.
    pub answers: usize,
    /// Whether the server set TC (truncated).
    pub truncated: bool,
}

/// Parses `bytes` as a DNS response: a complete, well-formed message with QR
/// set and opcode QUERY. Anything else (a query, garbage, a message cut
/// short) is `None`.
pub fn recognise(bytes: &[u8]) -> Option<Response> {
    let message = Message::from_vec(bytes).ok()?;
    if message.message_type != MessageType::Response || message.op_code != OpCode::Query {
        return None;
    }
    Some(Response {
        id: message.id,
        rcode: message.response_code,
        answers: message.answers.len(),
        truncated: message.truncation,
        questions: message.queries,
    })
}

/// Whether a repeated question section is compatible with `ours`: empty (some
/// servers omit it, e.g. in FORMERR replies) or exactly our one question.
pub fn question_matches(questions: &[Query], ours: &Query) -> bool {
    match questions {
        [] => true,
        [q] => {
            q.name().eq_ignore_root_case(ours.name())
                && q.query_type() == ours.query_type()
                && q.query_class() == ours.query_class()
        }
        _ => false,
    }
}

/// The IANA mnemonic of a response code (`NOERROR`, `REFUSED`, ...), or
/// `Unknown(n)`.
pub fn rcode_name(rcode: ResponseCode) -> String {
    let name = match u16::from(rcode) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        n => return format!("Unknown({n})"),
    };
    name.to_string()
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.datagram.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let response = recognise(reply)?;
        if response.id != self.id || !question_matches(&response.questions, &question()) {
            return None;
        }
        let mut detail = format!("DNS response, rcode {}", rcode_name(response.rcode));
        if response.answers > 0 {
            let plural = if response.answers == 1 { "" } else { "s" };
            detail.push_str(&format!(", {} answer{plural}", response.answers));
        }
        if response.truncated {
            detail.push_str(", truncated");
        }
        Some(Reply::new("dns", detail))
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
    use hickory_proto::rr::{RData, Record, rdata::A};
    use proptest::prelude::*;

    /// The query this module builds for `NONCE_3A7C`, as sent to dnsmasq.
    const SENT: &str = include_str!("fixtures/dns-request.hex");

    /// dnsmasq 2.90 (Debian 2.90-4~deb12u2; `no-resolv`, so no upstream)
    /// answering `SENT` on 127.0.0.1:53: REFUSED, question repeated.
    const DNSMASQ_REFUSED: &str = include_str!("fixtures/dns-dnsmasq-refused.hex");

    fn probe() -> Request {
        Request::new(&ProbeContext::default(), &NONCE_3A7C)
    }

    #[test]
    fn builds_the_query_dnsmasq_answered() {
        assert_eq!(probe().datagrams(), vec![hex(SENT)]);
    }

    #[test]
    fn query_fields_sit_at_rfc_1035_offsets() {
        let q = request(0xbeef);
        assert_eq!(q.len(), 17);
        assert_eq!(q[0..2], [0xbe, 0xef], "ID");
        assert_eq!(q[2], 0x01, "QR 0, opcode QUERY, RD 1");
        assert_eq!(q[3], 0x00, "RA, Z, rcode clear");
        assert_eq!(q[4..12], [0, 1, 0, 0, 0, 0, 0, 0], "QDCOUNT 1, no records");
        assert_eq!(q[12], 0, "QNAME is the root");
        assert_eq!(q[13..15], [0, 6], "QTYPE SOA");
        assert_eq!(q[15..17], [0, 1], "QCLASS IN");
    }

    #[test]
    fn recognises_the_dnsmasq_refusal() {
        let reply = probe().recognise(&hex(DNSMASQ_REFUSED));
        assert_eq!(
            reply,
            Some(Reply::new("dns", "DNS response, rcode REFUSED"))
        );
        let parsed = recognise(&hex(DNSMASQ_REFUSED)).expect("a DNS response");
        assert_eq!(parsed.id, NONCE_3A7C.u16());
        assert_eq!(parsed.rcode, ResponseCode::Refused);
        assert_eq!(parsed.questions, vec![question()]);
    }

    #[test]
    fn rejects_an_id_one_bit_away() {
        assert_bit_flips_refused(&probe(), &hex(DNSMASQ_REFUSED), 0..2);
    }

    #[test]
    fn rejects_every_truncation() {
        assert_truncations_refused(&probe(), &hex(DNSMASQ_REFUSED));
    }

    #[test]
    fn rejects_a_response_to_another_question() {
        let mut reply = hex(DNSMASQ_REFUSED);
        let qtype_low = reply.len() - 3;
        reply[qtype_low] = 1;
        assert_eq!(probe().recognise(&reply), None);
    }

    #[test]
    fn rejects_its_own_query_and_other_protocols() {
        assert_eq!(probe().recognise(&hex(SENT)), None);
        assert_other_replies_refused(&probe(), "dns");
    }

    /// A response to our question with `rcode`, `answers` A records and no
    /// question section when `omit_question`.
    fn response(rcode: ResponseCode, answers: usize, omit_question: bool) -> Vec<u8> {
        let mut message = Message::new(NONCE_3A7C.u16(), MessageType::Response, OpCode::Query);
        message.metadata.response_code = rcode;
        if !omit_question {
            message.add_query(question());
        }
        for _ in 0..answers {
            message.add_answer(Record::from_rdata(
                Name::root(),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        message.to_vec().expect("encodes")
    }

    #[test]
    fn describes_answers_unknown_rcodes_and_bare_errors() {
        let detail = |bytes: Vec<u8>| probe().recognise(&bytes).map(|reply| reply.detail);
        assert_eq!(
            detail(response(ResponseCode::NoError, 1, false)).as_deref(),
            Some("DNS response, rcode NOERROR, 1 answer")
        );
        assert_eq!(
            detail(response(ResponseCode::NoError, 2, false)).as_deref(),
            Some("DNS response, rcode NOERROR, 2 answers")
        );
        assert_eq!(
            detail(response(ResponseCode::Unknown(12), 0, false)).as_deref(),
            Some("DNS response, rcode Unknown(12)")
        );
        assert_eq!(
            detail(response(ResponseCode::FormErr, 0, true)).as_deref(),
            Some("DNS response, rcode FORMERR")
        );
    }

    proptest! {
        #[test]
        fn an_id_byte_changed_is_refused(change in byte_changes()) {
            id_field_property(&probe(), &hex(DNSMASQ_REFUSED), 0..2, change)?;
        }

        #[test]
        fn a_request_with_another_id_refuses_the_capture(nonce in other_nonces(NONCE_3A7C, 0..2)) {
            let request = Request::new(&ProbeContext::default(), &nonce);
            other_nonce_property(&request, &hex(DNSMASQ_REFUSED))?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_capture(mutation in mutations()) {
            let _ = probe().recognise(&mutation.apply(&hex(DNSMASQ_REFUSED)));
        }
    }
}
