//! Asking the devices on a link for a `.local` host's addresses by
//! multicast DNS (RFC 6762), as a one-shot query: the query, and the
//! answers to it.
//!
//! A one-shot query (RFC 6762 section 5.1) is a DNS query sent to the mDNS
//! group (224.0.0.251 or ff02::fb, port 5353) from an ephemeral port. A
//! responder that owns the name answers it by unicast to that port as a
//! "legacy unicast" response (section 6.7): a conventional DNS response
//! that repeats our message ID and our questions. The query asks for the
//! name's A and AAAA records at once, each question with the
//! unicast-response ("QU") bit set.
//!
//! An answer counts only when it is a well-formed response (QR set, opcode
//! QUERY, response code 0, as section 18 requires) with our ID, every
//! repeated question is one of ours, and its answer section holds A or AAAA
//! records of class IN owned by exactly the name asked for (compared
//! ignoring ASCII case, section 16). Other records, and records in the
//! authority and additional sections, are ignored. Messages longer than
//! 9000 bytes (section 17) are refused, and at most [`MAX_ADDRESSES`]
//! addresses are taken from one message.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

/// The largest mDNS message (RFC 6762 section 17); longer ones are refused.
pub const MAX_MESSAGE: usize = 9000;

/// The most addresses taken from one answer.
pub const MAX_ADDRESSES: usize = 16;

/// The multicast DNS domain.
const LOCAL: &str = "local";

/// Whether `host` is a name in the multicast DNS domain: one or more labels
/// followed by `local` (in any case), with or without a final dot, as
/// `server.local` or `Server.Local.`.
pub fn is_local_name(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host);
    let Some(split) = h.len().checked_sub(LOCAL.len() + 1) else {
        return false;
    };
    split > 0
        && h.is_char_boundary(split)
        && h[split..].eq_ignore_ascii_case(".local")
        && !h[..split].split('.').any(str::is_empty)
}

/// `host` as the name to ask for: its labels as the bytes they are written
/// in (multicast DNS names are UTF-8, RFC 6762 section 16), fully
/// qualified. `None` when `host` is not a `.local` name or is no valid
/// name (a label longer than 63 bytes, a name longer than 255).
pub fn name(host: &str) -> Option<Name> {
    if !is_local_name(host) {
        return None;
    }
    let h = host.strip_suffix('.').unwrap_or(host);
    let name = Name::from_labels(h.split('.').map(str::as_bytes)).ok()?;
    // The encoder checks the total length.
    query(1, &name).map(|_| name)
}

/// One question for `name` of type `kind`, class IN, with the
/// unicast-response bit set.
fn question(name: &Name, kind: RecordType) -> Query {
    let mut query = Query::query(name.clone(), kind);
    query.set_mdns_unicast_response(true);
    query
}

/// The one-shot query with message ID `id`: a standard query (RD clear,
/// RFC 6762 section 18.6) asking for `name`'s A and then AAAA records.
/// `None` only when `name` is too long to encode.
pub fn query(id: u16, name: &Name) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(question(name, RecordType::A));
    message.add_query(question(name, RecordType::AAAA));
    message.to_vec().ok()
}

/// Whether a repeated question is one of ours: `name`, type A or AAAA,
/// class IN (the QU bit may or may not be echoed).
fn ours(q: &Query, name: &Name) -> bool {
    q.name().eq_ignore_root(name)
        && matches!(q.query_type(), RecordType::A | RecordType::AAAA)
        && q.query_class() == DNSClass::IN
}

/// The addresses `bytes` gives for `name`, when it is an answer to our
/// query with ID `id` (see the module documentation); in the order of its
/// answer section, without duplicates, at most [`MAX_ADDRESSES`]. `None`
/// when it is not such an answer or holds no address for `name`.
pub fn answer(bytes: &[u8], id: u16, name: &Name) -> Option<Vec<IpAddr>> {
    if bytes.len() > MAX_MESSAGE {
        return None;
    }
    let message = Message::from_vec(bytes).ok()?;
    if message.id != id
        || message.message_type != MessageType::Response
        || message.op_code != OpCode::Query
        || message.response_code != ResponseCode::NoError
        || !message.queries.iter().all(|q| ours(q, name))
    {
        return None;
    }
    let mut found: Vec<IpAddr> = Vec::new();
    for record in &message.answers {
        if record.dns_class != DNSClass::IN || !record.name.eq_ignore_root(name) {
            continue;
        }
        let ip = match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
            _ => continue,
        };
        if !found.contains(&ip) {
            found.push(ip);
            if found.len() == MAX_ADDRESSES {
                break;
            }
        }
    }
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{NONCE_3A7C, REPLIES, byte_changes, datagrams, hex, mutations};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, AAAA, PTR};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The query this module builds for `macserver.local` with ID 0x3a7c,
    /// as sent to avahi.
    const SENT: &str = include_str!("fixtures/mdns-name-request.hex");

    /// avahi-daemon 0.8 answering `SENT`, sent to 224.0.0.251 from an
    /// ephemeral port: our ID, both questions (the QU bit echoed), then the
    /// AAAA and the A record, TTL 10, no cache-flush bit.
    const AVAHI_V4: &str = include_str!("fixtures/mdns-name-avahi-v4.hex");

    /// avahi-daemon 0.8 answering `SENT`, sent to ff02::fb: the same bytes.
    const AVAHI_V6: &str = include_str!("fixtures/mdns-name-avahi-v6.hex");

    const ID: u16 = 0x3a7c;
    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2));

    fn macserver() -> Name {
        name("macserver.local").expect("a .local name")
    }

    #[test]
    fn local_names_end_in_local_with_an_optional_dot() {
        for yes in [
            "server.local",
            "Server.LOCAL.",
            "a.b.local",
            "mac-mini_2.local",
            "café.local",
        ] {
            assert!(is_local_name(yes), "{yes}");
        }
        for no in [
            "local",
            ".local",
            "local.",
            "server.local..",
            "server..local",
            "server.localhost",
            "server.locale",
            "serverlocal",
            "server.example.com",
            "192.0.2.1",
            "abélocal",
            "",
        ] {
            assert!(!is_local_name(no), "{no}");
        }
    }

    #[test]
    fn names_keep_their_labels_and_refuse_what_dns_cannot_carry() {
        let n = name("Mac-Mini.Local.").expect("valid");
        assert!(n.is_fqdn());
        assert!(n.eq_ignore_root(&macserver_like("mac-mini")));
        let utf8 = name("café.local").expect("valid");
        assert_eq!(utf8.iter().next(), Some("café".as_bytes()));
        let long_label = format!("{}.local", "a".repeat(64));
        assert_eq!(name(&long_label), None);
        let long_name = format!("{}local", "abcdefghi.".repeat(26));
        assert!(long_name.len() > 255);
        assert_eq!(name(&long_name), None);
        assert_eq!(name("server.example.com"), None);
    }

    fn macserver_like(host: &str) -> Name {
        Name::from_ascii(format!("{host}.local.")).expect("valid")
    }

    #[test]
    fn builds_the_query_avahi_answered() {
        assert_eq!(query(ID, &macserver()), Some(hex(SENT)));
        assert_eq!(ID, NONCE_3A7C.u16());
    }

    #[test]
    fn query_fields_sit_at_rfc_6762_offsets() {
        let q = query(0x1234, &macserver()).expect("encodes");
        assert_eq!(q[0..2], [0x12, 0x34], "ID");
        assert_eq!(q[2..4], [0, 0], "standard query, RD clear");
        assert_eq!(q[4..12], [0, 2, 0, 0, 0, 0, 0, 0], "two questions");
        let name = b"\x09macserver\x05local\x00";
        assert_eq!(&q[12..12 + name.len()], name);
        let rest = &q[12 + name.len()..];
        assert_eq!(rest[..4], [0, 1, 0x80, 1], "A, IN with the QU bit");
        assert_eq!(
            rest[4..],
            [0xc0, 12, 0, 28, 0x80, 1],
            "the same name, AAAA, IN with the QU bit"
        );
    }

    #[test]
    fn takes_both_of_avahis_addresses_over_ipv4_and_ipv6() {
        assert_eq!(answer(&hex(AVAHI_V4), ID, &macserver()), Some(vec![V6, V4]));
        assert_eq!(answer(&hex(AVAHI_V6), ID, &macserver()), Some(vec![V6, V4]));
    }

    #[test]
    fn the_name_matches_ignoring_case_and_the_final_dot() {
        for host in ["MacServer.local", "macserver.LOCAL.", "MACSERVER.Local"] {
            let other = name(host).expect("valid");
            assert_eq!(answer(&hex(AVAHI_V4), ID, &other), Some(vec![V6, V4]));
        }
        let relative = Name::from_ascii("macserver.local").expect("valid");
        assert!(!relative.is_fqdn());
        assert_eq!(answer(&hex(AVAHI_V4), ID, &relative), Some(vec![V6, V4]));
    }

    #[test]
    fn refuses_another_name_or_id() {
        for host in ["macserver2.local", "server.local", "macserve.local"] {
            let other = name(host).expect("valid");
            assert_eq!(answer(&hex(AVAHI_V4), ID, &other), None, "{host}");
        }
        for other in [0, ID ^ 1, ID ^ 0x8000, 0xffff] {
            assert_eq!(answer(&hex(AVAHI_V4), other, &macserver()), None);
        }
    }

    #[test]
    fn refuses_its_own_query_and_every_other_capture() {
        assert_eq!(answer(&hex(SENT), ID, &macserver()), None);
        for (module, file, text) in REPLIES {
            if *module != "mdns_name" {
                assert_eq!(answer(&hex(text), ID, &macserver()), None, "{file}");
            }
        }
    }

    #[test]
    fn refuses_every_truncation() {
        for capture in [AVAHI_V4, AVAHI_V6] {
            let bytes = hex(capture);
            for len in 0..bytes.len() {
                assert_eq!(
                    answer(&bytes[..len], ID, &macserver()),
                    None,
                    "cut to {len}"
                );
            }
        }
    }

    fn response(id: u16) -> Message {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = true;
        m
    }

    fn a(owner: &str, ip: Ipv4Addr) -> Record {
        Record::from_rdata(Name::from_ascii(owner).expect("valid"), 10, RData::A(A(ip)))
    }

    fn encode(m: &Message) -> Vec<u8> {
        m.to_vec().expect("encodes")
    }

    #[test]
    fn takes_only_address_records_of_the_name_from_the_answer_section() {
        let mine = Ipv4Addr::new(192, 0, 2, 10);
        let mut m = response(ID);
        m.add_answer(a("other.local.", Ipv4Addr::new(192, 0, 2, 66)));
        m.add_answer(Record::from_rdata(
            macserver(),
            10,
            RData::PTR(PTR(macserver_like("alias"))),
        ));
        m.add_answer(a("macserver.local.", mine));
        m.add_answer(a("MACSERVER.local.", mine));
        m.add_additional(a("macserver.local.", Ipv4Addr::new(192, 0, 2, 77)));
        m.add_additional(Record::from_rdata(
            macserver(),
            10,
            RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
        ));
        assert_eq!(
            answer(&encode(&m), ID, &macserver()),
            Some(vec![IpAddr::V4(mine)])
        );

        let mut others_only = response(ID);
        others_only.add_answer(a("other.local.", mine));
        others_only.add_additional(a("macserver.local.", mine));
        assert_eq!(answer(&encode(&others_only), ID, &macserver()), None);
    }

    #[test]
    fn refuses_a_query_an_error_or_a_question_of_another_name() {
        let mut query = Message::new(ID, MessageType::Query, OpCode::Query);
        query.add_answer(a("macserver.local.", Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(answer(&encode(&query), ID, &macserver()), None);

        let mut error = response(ID);
        error.metadata.response_code = ResponseCode::Refused;
        error.add_answer(a("macserver.local.", Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(answer(&encode(&error), ID, &macserver()), None);

        let mut asked_else = response(ID);
        asked_else.add_query(question(&macserver_like("other"), RecordType::A));
        asked_else.add_answer(a("macserver.local.", Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(answer(&encode(&asked_else), ID, &macserver()), None);

        let mut ptr_question = response(ID);
        ptr_question.add_query(question(&macserver(), RecordType::PTR));
        ptr_question.add_answer(a("macserver.local.", Ipv4Addr::new(192, 0, 2, 10)));
        assert_eq!(answer(&encode(&ptr_question), ID, &macserver()), None);
    }

    #[test]
    fn takes_at_most_sixteen_addresses_and_nothing_oversized() {
        let mut m = response(ID);
        for i in 0..40 {
            m.add_answer(a("macserver.local.", Ipv4Addr::new(192, 0, 2, i)));
        }
        let found = answer(&encode(&m), ID, &macserver()).expect("an answer");
        assert_eq!(found.len(), MAX_ADDRESSES);
        assert_eq!(found[0], IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)));

        let mut padded = hex(AVAHI_V4);
        padded.resize(MAX_MESSAGE + 1, 0);
        assert_eq!(answer(&padded, ID, &macserver()), None);
    }

    proptest! {
        #[test]
        fn any_text_is_a_name_or_not_without_panicking(host in "\\PC{0,70}(\\.[lL][oO][cC][aA][lL])?\\.?") {
            let trimmed = host.strip_suffix('.').unwrap_or(&host);
            let fits = trimmed.split('.').all(|l| l.len() <= 63)
                && trimmed.split('.').map(|l| l.len() + 1).sum::<usize>() < 255;
            prop_assert_eq!(name(&host).is_some(), is_local_name(&host) && fits, "{:?}", host);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams(), id in any::<u16>()) {
            let _ = answer(&bytes, id, &macserver());
        }

        #[test]
        fn never_panics_on_a_mutated_capture(mutation in mutations()) {
            let _ = answer(&mutation.apply(&hex(AVAHI_V4)), ID, &macserver());
            let _ = answer(&mutation.apply(&hex(AVAHI_V6)), ID, &macserver());
        }

        #[test]
        fn an_id_byte_changed_is_refused(change in byte_changes()) {
            for capture in [AVAHI_V4, AVAHI_V6] {
                let changed = change.apply(&hex(capture), 0..2);
                prop_assert_eq!(answer(&changed, ID, &macserver()), None);
            }
        }

        #[test]
        fn another_id_refuses_the_capture(id in any::<u16>().prop_filter("not ours", |id| *id != ID)) {
            prop_assert_eq!(answer(&hex(AVAHI_V4), id, &macserver()), None);
        }

        #[test]
        fn another_name_refuses_the_capture(label in "[a-z0-9-]{1,20}") {
            let other = name(&format!("{label}.local")).expect("valid");
            let expected = (label == "macserver").then(|| vec![V6, V4]);
            prop_assert_eq!(answer(&hex(AVAHI_V4), ID, &other), expected);
        }

        #[test]
        fn a_changed_letter_of_the_name_is_refused(at in 0usize..9, mask in 1u8..=0x7f) {
            // avahi writes the name once, in the first question, and points
            // to it from the second question and from every answer.
            let bytes = hex(AVAHI_V4);
            prop_assert_eq!(&bytes[12..22], b"\x09macserver");
            let mut changed = bytes.clone();
            changed[13 + at] ^= mask;
            prop_assume!(!changed[13 + at].eq_ignore_ascii_case(&bytes[13 + at]));
            prop_assert_eq!(answer(&changed, ID, &macserver()), None);
        }
    }
}
