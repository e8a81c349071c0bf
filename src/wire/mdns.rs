//! Multicast DNS (RFC 6762) with DNS-SD (RFC 6763), UDP port 5353, queried
//! by unicast.
//!
//! The probe is a DNS query sent straight to the target's address (not to
//! the multicast group) for `_services._dns-sd._udp.local. PTR`, the DNS-SD
//! meta-query that every responder answers with the service types it
//! offers. The question class has the unicast-response ("QU") bit set, and
//! the message ID comes from the nonce (never 0, for the reason below).
//!
//! Because the probe does not come from port 5353, responders treat it as a
//! "legacy unicast" query (RFC 6762 section 6.7): they answer with a
//! conventional unicast DNS response to our address and port that repeats
//! our ID and question, as avahi does. A reply is a well-formed DNS response
//! with our ID and, if repeated, our question. RFC 6762 section 18.1 also
//! has multicast-style responses carry ID 0; a responder that answers our
//! port that way is accepted too, but only when its answer section holds a
//! PTR record for the name we asked about, so that an ID of 0 alone proves
//! nothing.
//!
//! Responders ignore queries from other links, and answer from their
//! interface address, which need not be the address we sent to. A reply
//! with our ID is [`Match::Ours`] and counts from any address; an ID-0
//! answer carries nothing of ours, so it is [`Match::ShapeFromPort`] and
//! counts only from the probed address and port.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::{Match, Nonce, ProbeContext, Reply, UdpRequest};

/// The DNS-SD service-type enumeration name (RFC 6763 section 9).
pub const SERVICES_NAME: &str = "_services._dns-sd._udp.local.";

/// How many service types a reply's detail lists before summarising.
const LISTED_SERVICES: usize = 6;

/// An mDNS probe: the DNS-SD meta-query with an ID taken from the nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    id: u16,
    datagram: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port; the message ID is [`Nonce::u16`], or
    /// 1 when that is 0, the ID of multicast-style answers.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let id = nonce.u16().max(1);
        Request {
            id,
            datagram: request(id),
        }
    }
}

/// The name the probe asks about, `_services._dns-sd._udp.local.`.
pub fn services_name() -> Name {
    Name::from_ascii(SERVICES_NAME).expect("the DNS-SD meta-query name is a valid name")
}

/// The question the probe asks: `_services._dns-sd._udp.local. IN PTR`
/// with the unicast-response bit set.
pub fn question() -> Query {
    let mut query = Query::query(services_name(), RecordType::PTR);
    query.set_mdns_unicast_response(true);
    query
}

/// The query datagram with message ID `id`: a standard query (RD clear, as
/// RFC 6762 section 18.6 asks) with one question, [`question`].
pub fn request(id: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(question());
    message
        .to_vec()
        .expect("a one-question query for a valid name always encodes")
}

/// What an mDNS response said, as far as the probe cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The message ID: ours for a legacy-unicast reply, 0 for a
    /// multicast-style one.
    pub id: u16,
    /// The question section the responder repeated (may be empty).
    pub questions: Vec<Query>,
    /// Targets of PTR records in the answer section owned by
    /// `_services._dns-sd._udp.local.`: the service types offered, as
    /// `_ssh._tcp.local.`.
    pub service_types: Vec<Name>,
}

/// Parses `bytes` as an mDNS/DNS response: a complete, well-formed message
/// with QR set and opcode QUERY. Anything else is `None`.
pub fn recognise(bytes: &[u8]) -> Option<Response> {
    let message = Message::from_vec(bytes).ok()?;
    if message.message_type != MessageType::Response || message.op_code != OpCode::Query {
        return None;
    }
    let services = services_name();
    let service_types = message
        .answers
        .iter()
        .filter(|record| record.name.eq_ignore_root_case(&services))
        .filter_map(|record| match &record.data {
            RData::PTR(ptr) => Some(ptr.0.clone()),
            _ => None,
        })
        .collect();
    Some(Response {
        id: message.id,
        questions: message.queries,
        service_types,
    })
}

/// Whether a repeated question section fits ours: empty, or one question
/// for our name, type PTR, class IN (the QU bit may or may not be echoed).
fn question_matches(questions: &[Query]) -> bool {
    match questions {
        [] => true,
        [q] => {
            q.name().eq_ignore_root_case(&services_name())
                && q.query_type() == RecordType::PTR
                && q.query_class() == DNSClass::IN
        }
        _ => false,
    }
}

/// `_ssh._tcp.local.` as `_ssh._tcp`.
fn short_service(name: &Name) -> String {
    let text = name.to_ascii();
    let text = text.strip_suffix('.').unwrap_or(&text);
    text.strip_suffix(".local").unwrap_or(text).to_string()
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.datagram.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let response = recognise(reply)?;
        let matched = if response.id == self.id {
            Match::Ours
        } else if response.id == 0 && !response.service_types.is_empty() {
            Match::ShapeFromPort
        } else {
            return None;
        };
        if !question_matches(&response.questions) {
            return None;
        }
        let types = &response.service_types;
        let detail = if types.is_empty() {
            "mDNS response, no service types".to_string()
        } else {
            let mut listed: Vec<String> = types
                .iter()
                .take(LISTED_SERVICES)
                .map(short_service)
                .collect();
            if types.len() > LISTED_SERVICES {
                listed.push(format!("{} more", types.len() - LISTED_SERVICES));
            }
            format!("mDNS response: {}", listed.join(", "))
        };
        Some(Reply::with_match("mdns", detail, matched))
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
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::PTR;
    use proptest::prelude::*;

    /// The query this module builds for `NONCE_3A7C`, as sent to avahi.
    const SENT: &str = include_str!("fixtures/mdns-request.hex");

    /// avahi-daemon 0.8 answering `SENT` as a legacy-unicast query: our ID,
    /// our question (QU bit echoed), four PTR answers with TTL 10.
    const AVAHI: &str = include_str!("fixtures/mdns-avahi-services.hex");

    fn probe() -> Request {
        Request::new(&ProbeContext::default(), &NONCE_3A7C)
    }

    #[test]
    fn builds_the_query_avahi_answered() {
        assert_eq!(probe().datagrams(), vec![hex(SENT)]);
    }

    #[test]
    fn query_fields_sit_at_rfc_6762_offsets() {
        let q = request(0x1234);
        assert_eq!(q[0..2], [0x12, 0x34], "ID");
        assert_eq!(q[2..4], [0, 0], "standard query, RD clear");
        assert_eq!(q[4..12], [0, 1, 0, 0, 0, 0, 0, 0], "one question");
        let name = b"\x09_services\x07_dns-sd\x04_udp\x05local\x00";
        assert_eq!(&q[12..12 + name.len()], name);
        let tail = &q[12 + name.len()..];
        assert_eq!(
            tail,
            [0, 12, 0x80, 1],
            "QTYPE PTR, QCLASS IN with the QU bit"
        );
    }

    #[test]
    fn recognises_avahi_and_lists_its_service_types() {
        let reply = probe().recognise(&hex(AVAHI));
        assert_eq!(
            reply,
            Some(Reply::new(
                "mdns",
                "mDNS response: _workstation._tcp, _airplay._tcp, _ssh._tcp, _device-info._tcp"
            ))
        );
        let parsed = recognise(&hex(AVAHI)).expect("a DNS response");
        assert_eq!(parsed.id, NONCE_3A7C.u16());
        assert_eq!(parsed.service_types.len(), 4);
    }

    #[test]
    fn rejects_an_id_one_bit_away() {
        assert_bit_flips_refused(&probe(), &hex(AVAHI), 0..2);
    }

    #[test]
    fn accepts_id_zero_only_with_an_answer_to_our_question() {
        assert_eq!(
            probe()
                .recognise(&with_id_zero(&hex(AVAHI)))
                .map(|reply| reply.matched),
            Some(Match::ShapeFromPort)
        );

        let empty = Message::new(0, MessageType::Response, OpCode::Query)
            .to_vec()
            .expect("encodes");
        assert_eq!(probe().recognise(&empty), None);

        let mut elsewhere = Message::new(0, MessageType::Response, OpCode::Query);
        let owner = Name::from_ascii("_other._udp.local.").expect("valid");
        let target = Name::from_ascii("_ssh._tcp.local.").expect("valid");
        elsewhere.add_answer(Record::from_rdata(owner, 10, RData::PTR(PTR(target))));
        let bytes = elsewhere.to_vec().expect("encodes");
        assert_eq!(probe().recognise(&bytes), None);
    }

    #[test]
    fn lists_at_most_six_service_types() {
        let mut message = Message::new(NONCE_3A7C.u16(), MessageType::Response, OpCode::Query);
        for i in 0..8 {
            let target = Name::from_ascii(format!("_s{i}._tcp.local.")).expect("valid");
            message.add_answer(Record::from_rdata(
                services_name(),
                10,
                RData::PTR(PTR(target)),
            ));
        }
        let bytes = message.to_vec().expect("encodes");
        let reply = probe().recognise(&bytes).expect("recognised");
        assert_eq!(
            reply.detail,
            "mDNS response: _s0._tcp, _s1._tcp, _s2._tcp, _s3._tcp, _s4._tcp, _s5._tcp, 2 more"
        );
    }

    #[test]
    fn rejects_every_truncation() {
        assert_truncations_refused(&probe(), &hex(AVAHI));
    }

    #[test]
    fn rejects_its_own_query_and_other_protocols() {
        assert_eq!(probe().recognise(&hex(SENT)), None);
        assert_other_replies_refused(&probe(), "mdns");
    }

    /// `reply` with its message ID set to 0, as a multicast-style answer.
    fn with_id_zero(reply: &[u8]) -> Vec<u8> {
        let mut zero = reply.to_vec();
        zero[..2].copy_from_slice(&[0, 0]);
        zero
    }

    #[test]
    fn a_nonce_starting_with_zeros_still_asks_with_a_nonzero_id() {
        let request = Request::new(&ProbeContext::default(), &Nonce([0; 16]));
        assert_eq!(request.datagrams()[0][..2], [0, 1]);
        assert_eq!(
            request
                .recognise(&with_id_zero(&hex(AVAHI)))
                .map(|reply| reply.matched),
            Some(Match::ShapeFromPort)
        );
    }

    proptest! {
        #[test]
        fn an_id_byte_changed_is_refused(change in byte_changes()) {
            id_field_property(&probe(), &hex(AVAHI), 0..2, change)?;
        }

        #[test]
        fn a_request_with_another_id_refuses_the_capture(nonce in other_nonces(NONCE_3A7C, 0..2)) {
            let request = Request::new(&ProbeContext::default(), &nonce);
            other_nonce_property(&request, &hex(AVAHI))?;
        }

        #[test]
        fn an_id_zero_answer_is_only_ever_a_shape_match(nonce in any::<[u8; 16]>()) {
            let request = Request::new(&ProbeContext::default(), &Nonce(nonce));
            prop_assert_eq!(
                request.recognise(&with_id_zero(&hex(AVAHI))).map(|reply| reply.matched),
                Some(Match::ShapeFromPort)
            );
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_capture(mutation in mutations()) {
            let _ = probe().recognise(&mutation.apply(&hex(AVAHI)));
        }
    }
}
