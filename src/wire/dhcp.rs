//! BOOTP/DHCP server (RFC 951, RFC 2131, options RFC 2132), UDP port 67.
//!
//! The probe is a unicast DHCPINFORM: a BOOTREQUEST (op 1, Ethernet
//! hardware type, 6-byte address) whose transaction ID (xid) comes from the
//! nonce, ciaddr set to the address the probe leaves from, flags 0 (never
//! the broadcast flag), a locally administered unicast client hardware
//! address derived from the nonce (`02:xx:xx:xx:xx:xx`), the magic cookie,
//! option 53 (message type 8, INFORM), option 55 (parameter request list)
//! and the end option, padded to the 300-byte BOOTP minimum. INFORM asks for
//! configuration only: it leases no address and changes no server state.
//! A server ignores an INFORM whose ciaddr is 0.0.0.0, and answers the
//! address in ciaddr, which is why it must be ours.
//!
//! The probe is IPv4-only: DHCPv4 has no IPv6 transport. For an IPv6 source
//! the same INFORM is built with ciaddr 0.0.0.0; it proves nothing, but the
//! engine still gets a datagram to send and reads ICMP errors as usual.
//!
//! A reply is a BOOTREPLY (op 2) with our xid and the magic cookie, whose
//! options are well-formed up to the end option. Servers that reply to the
//! request's source port (dnsmasq does) can be seen this way; others send
//! their DHCPACK to port 68 only.

use std::net::{IpAddr, Ipv4Addr};

use super::bytes::be32;
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The magic cookie that starts the options field (RFC 2131 section 3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Length of the fixed BOOTP header before the magic cookie.
const FIXED_LEN: usize = 236;

/// The minimum BOOTP message length relays and servers accept (RFC 1542).
const MIN_LEN: usize = 300;

/// Option codes used here.
const OPTION_PAD: u8 = 0;
const OPTION_MESSAGE_TYPE: u8 = 53;
const OPTION_SERVER_ID: u8 = 54;
const OPTION_PARAMETER_LIST: u8 = 55;
const OPTION_END: u8 = 255;

/// Parameters the INFORM asks for: subnet mask, router, DNS servers,
/// domain name.
const PARAMETERS: [u8; 4] = [1, 3, 6, 15];

/// A DHCP probe: a DHCPINFORM with xid [`Nonce::u32`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    xid: u32,
    datagram: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port: ciaddr is `ctx.source` when it is
    /// IPv4, else 0.0.0.0; chaddr is `02` followed by nonce bytes 4 to 8.
    pub fn new(ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let xid = nonce.u32();
        let ciaddr = match ctx.source {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let b = nonce.0;
        let chaddr = [0x02, b[4], b[5], b[6], b[7], b[8]];
        Request {
            xid,
            datagram: request(xid, ciaddr, chaddr),
        }
    }
}

/// The DHCPINFORM with transaction ID `xid`, client address `ciaddr` and
/// hardware address `chaddr`, 300 bytes long.
pub fn request(xid: u32, ciaddr: Ipv4Addr, chaddr: [u8; 6]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(MIN_LEN);
    packet.extend_from_slice(&[1, 1, 6, 0]);
    packet.extend_from_slice(&xid.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0, 0]);
    packet.extend_from_slice(&ciaddr.octets());
    packet.extend_from_slice(&[0; 12]);
    packet.extend_from_slice(&chaddr);
    packet.resize(FIXED_LEN, 0);
    packet.extend_from_slice(&MAGIC_COOKIE);
    packet.extend_from_slice(&[OPTION_MESSAGE_TYPE, 1, MessageType::Inform.into()]);
    packet.extend_from_slice(&[OPTION_PARAMETER_LIST, PARAMETERS.len() as u8]);
    packet.extend_from_slice(&PARAMETERS);
    packet.push(OPTION_END);
    packet.resize(MIN_LEN, OPTION_PAD);
    packet
}

/// The BOOTP op field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// 1: BOOTREQUEST.
    BootRequest,
    /// 2: BOOTREPLY.
    BootReply,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for Op {
    fn from(n: u8) -> Self {
        match n {
            1 => Op::BootRequest,
            2 => Op::BootReply,
            n => Op::Unknown(n),
        }
    }
}

/// The DHCP message type, option 53 (RFC 2132 section 9.6, RFC 3203, RFC
/// 4388, RFC 6926).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// 1.
    Discover,
    /// 2.
    Offer,
    /// 3.
    Request,
    /// 4.
    Decline,
    /// 5.
    Ack,
    /// 6.
    Nak,
    /// 7.
    Release,
    /// 8.
    Inform,
    /// 9.
    ForceRenew,
    /// 10.
    LeaseQuery,
    /// 11.
    LeaseUnassigned,
    /// 12.
    LeaseUnknown,
    /// 13.
    LeaseActive,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(n: u8) -> Self {
        use MessageType::*;
        match n {
            1 => Discover,
            2 => Offer,
            3 => Request,
            4 => Decline,
            5 => Ack,
            6 => Nak,
            7 => Release,
            8 => Inform,
            9 => ForceRenew,
            10 => LeaseQuery,
            11 => LeaseUnassigned,
            12 => LeaseUnknown,
            13 => LeaseActive,
            n => Unknown(n),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(kind: MessageType) -> u8 {
        use MessageType::*;
        match kind {
            Discover => 1,
            Offer => 2,
            Request => 3,
            Decline => 4,
            Ack => 5,
            Nak => 6,
            Release => 7,
            Inform => 8,
            ForceRenew => 9,
            LeaseQuery => 10,
            LeaseUnassigned => 11,
            LeaseUnknown => 12,
            LeaseActive => 13,
            Unknown(n) => n,
        }
    }
}

impl MessageType {
    /// The short name used in reports: `ACK`, `NAK`, `OFFER`, `Unknown(n)`.
    pub fn name(self) -> String {
        use MessageType::*;
        let name = match self {
            Discover => "DISCOVER",
            Offer => "OFFER",
            Request => "REQUEST",
            Decline => "DECLINE",
            Ack => "ACK",
            Nak => "NAK",
            Release => "RELEASE",
            Inform => "INFORM",
            ForceRenew => "FORCERENEW",
            LeaseQuery => "LEASEQUERY",
            LeaseUnassigned => "LEASEUNASSIGNED",
            LeaseUnknown => "LEASEUNKNOWN",
            LeaseActive => "LEASEACTIVE",
            Unknown(n) => return format!("Unknown({n})"),
        };
        name.to_string()
    }
}

/// A BOOTP/DHCP message, as far as the probe reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// op: request or reply.
    pub op: Op,
    /// Transaction ID.
    pub xid: u32,
    /// "Your" address (what the server offers or assigns).
    pub yiaddr: Ipv4Addr,
    /// Option 53, if present.
    pub message_type: Option<MessageType>,
    /// Option 54, the server identifier, if present and 4 bytes long.
    pub server_id: Option<Ipv4Addr>,
}

/// Four bytes at `offset` as an IPv4 address.
fn address(bytes: &[u8], offset: usize) -> Option<Ipv4Addr> {
    let octets: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

/// Parses a BOOTP message that carries the DHCP magic cookie. The options
/// must be well-formed (each option's length within the message) up to the
/// end option; a message without one is cut short and is `None`.
pub fn recognise(bytes: &[u8]) -> Option<Packet> {
    let op = Op::from(*bytes.first()?);
    let xid = be32(bytes, 4)?;
    let yiaddr = address(bytes, 16)?;
    let (_, rest) = bytes.split_at_checked(FIXED_LEN)?;
    let (cookie, mut options) = rest.split_at_checked(MAGIC_COOKIE.len())?;
    if cookie != MAGIC_COOKIE {
        return None;
    }
    let mut message_type = None;
    let mut server_id = None;
    loop {
        let (&code, after) = options.split_first()?;
        match code {
            OPTION_PAD => options = after,
            OPTION_END => break,
            _ => {
                let (&len, after) = after.split_first()?;
                let (data, after) = after.split_at_checked(usize::from(len))?;
                match code {
                    OPTION_MESSAGE_TYPE => {
                        message_type = data.first().copied().map(MessageType::from);
                    }
                    OPTION_SERVER_ID => server_id = address(data, 0),
                    _ => {}
                }
                options = after;
            }
        }
    }
    Some(Packet {
        op,
        xid,
        yiaddr,
        message_type,
        server_id,
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.datagram.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let packet = recognise(reply)?;
        if packet.op != Op::BootReply || packet.xid != self.xid {
            return None;
        }
        let mut detail = match packet.message_type {
            Some(kind) => format!("DHCP {}", kind.name()),
            None => "BOOTP reply".to_string(),
        };
        if let Some(server) = packet.server_id {
            detail.push_str(&format!(", server identifier {server}"));
        }
        Some(Reply::new("dhcp", detail))
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

    /// The DHCPINFORM this module builds for `NONCE_3A7C` from 198.18.9.1, as
    /// sent to dnsmasq.
    const SENT: &str = include_str!("fixtures/dhcp-request.hex");

    /// dnsmasq 2.90's DHCPACK to `SENT`, sent back to our source port.
    const DNSMASQ_ACK: &str = include_str!("fixtures/dhcp-dnsmasq-ack.hex");

    fn context(source: IpAddr) -> ProbeContext {
        ProbeContext {
            target: source,
            source,
            ..ProbeContext::default()
        }
    }

    fn probe() -> Request {
        Request::new(
            &context(IpAddr::V4(Ipv4Addr::new(198, 18, 9, 1))),
            &NONCE_3A7C,
        )
    }

    #[test]
    fn builds_the_inform_dnsmasq_answered() {
        assert_eq!(probe().datagrams(), vec![hex(SENT)]);
    }

    #[test]
    fn inform_fields_sit_at_rfc_2131_offsets() {
        let chaddr = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let packet = request(0xdead_beef, Ipv4Addr::new(192, 0, 2, 7), chaddr);
        assert_eq!(packet.len(), 300);
        assert_eq!(
            packet[0..4],
            [1, 1, 6, 0],
            "BOOTREQUEST, Ethernet, hlen 6, hops 0"
        );
        assert_eq!(packet[4..8], [0xde, 0xad, 0xbe, 0xef], "xid");
        assert_eq!(
            packet[8..12],
            [0, 0, 0, 0],
            "secs 0, flags 0: no broadcast bit"
        );
        assert_eq!(packet[12..16], [192, 0, 2, 7], "ciaddr");
        assert_eq!(packet[16..28], [0; 12], "yiaddr, siaddr, giaddr");
        assert_eq!(packet[28..34], chaddr, "chaddr");
        assert!(
            packet[34..236].iter().all(|b| *b == 0),
            "chaddr padding, sname, file"
        );
        assert_eq!(packet[236..240], MAGIC_COOKIE);
        assert_eq!(packet[240..243], [53, 1, 8], "DHCPINFORM");
        assert_eq!(
            packet[243..249],
            [55, 4, 1, 3, 6, 15],
            "parameter request list"
        );
        assert_eq!(packet[249], 255, "end");
        assert!(packet[250..].iter().all(|b| *b == 0), "pad");
    }

    #[test]
    fn chaddr_is_a_locally_administered_unicast_address() {
        let packet = &probe().datagrams()[0];
        assert_eq!(packet[28] & 0x03, 0x02, "local bit set, group bit clear");
        assert_eq!(packet[29..34], NONCE_3A7C.0[4..9]);
    }

    #[test]
    fn an_ipv6_source_gives_ciaddr_zero() {
        let request = Request::new(
            &context(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
            &NONCE_3A7C,
        );
        let packet = &request.datagrams()[0];
        assert_eq!(packet[12..16], [0, 0, 0, 0]);
        assert!(request.recognise(&hex(DNSMASQ_ACK)).is_some(), "same xid");
    }

    #[test]
    fn recognises_the_dnsmasq_ack() {
        let reply = probe().recognise(&hex(DNSMASQ_ACK));
        assert_eq!(
            reply,
            Some(Reply::new("dhcp", "DHCP ACK, server identifier 198.18.9.1"))
        );
        let packet = recognise(&hex(DNSMASQ_ACK)).expect("a DHCP message");
        assert_eq!(packet.op, Op::BootReply);
        assert_eq!(packet.yiaddr, Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn rejects_an_xid_one_bit_away() {
        let reply = hex(DNSMASQ_ACK);
        assert_eq!(reply[4..8], NONCE_3A7C.u32().to_be_bytes());
        assert_bit_flips_refused(&probe(), &reply, 4..8);
    }

    #[test]
    fn rejects_a_changed_cookie_or_op() {
        let reply = hex(DNSMASQ_ACK);
        assert_eq!(reply[236..240], MAGIC_COOKIE);
        assert_bit_flips_refused(&probe(), &reply, 236..240);
        let mut request_op = hex(DNSMASQ_ACK);
        request_op[0] = 1;
        assert_eq!(probe().recognise(&request_op), None);
    }

    #[test]
    fn rejects_every_truncation_before_the_end_option() {
        let reply = hex(DNSMASQ_ACK);
        let end = 240
            + reply[240..]
                .iter()
                .position(|b| *b == OPTION_END)
                .expect("end");
        assert_truncations_refused(&probe(), &reply[..=end]);
    }

    #[test]
    fn rejects_its_own_inform_and_other_protocols() {
        assert_eq!(probe().recognise(&hex(SENT)), None);
        assert_other_replies_refused(&probe(), "dhcp");
    }

    /// A BOOTREPLY to the probe with the given options after the cookie.
    fn reply_with_options(options: &[u8]) -> Vec<u8> {
        let mut packet = hex(DNSMASQ_ACK);
        packet.truncate(240);
        packet.extend_from_slice(options);
        packet
    }

    #[test]
    fn describes_nak_bootp_and_unknown_types() {
        let detail = |options: &[u8]| {
            probe()
                .recognise(&reply_with_options(options))
                .map(|r| r.detail)
        };
        assert_eq!(detail(&[53, 1, 6, 255]).as_deref(), Some("DHCP NAK"));
        assert_eq!(
            detail(&[0, 0, 53, 1, 2, 54, 4, 10, 0, 0, 1, 255]).as_deref(),
            Some("DHCP OFFER, server identifier 10.0.0.1")
        );
        assert_eq!(
            detail(&[53, 1, 200, 255]).as_deref(),
            Some("DHCP Unknown(200)")
        );
        assert_eq!(detail(&[255]).as_deref(), Some("BOOTP reply"));
        assert_eq!(detail(&[53, 1, 5]), None, "no end option");
        assert_eq!(
            detail(&[53, 9, 5, 255]),
            None,
            "option longer than the message"
        );
    }

    proptest! {
        #[test]
        fn an_xid_byte_changed_is_refused(change in byte_changes()) {
            id_field_property(&probe(), &hex(DNSMASQ_ACK), 4..8, change)?;
        }

        #[test]
        fn a_request_with_another_xid_refuses_the_capture(nonce in other_nonces(NONCE_3A7C, 0..4)) {
            let source = IpAddr::V4(Ipv4Addr::new(198, 18, 9, 1));
            let request = Request::new(&context(source), &nonce);
            other_nonce_property(&request, &hex(DNSMASQ_ACK))?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_options(options in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = probe().recognise(&reply_with_options(&options));
        }

        #[test]
        fn never_panics_on_a_mutated_capture(mutation in mutations()) {
            let _ = probe().recognise(&mutation.apply(&hex(DNSMASQ_ACK)));
        }
    }
}
