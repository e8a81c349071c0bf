//! Wire formats: one module per UDP protocol that portprobe speaks.
//!
//! Each module builds the request a real server of its protocol answers and
//! recognises the reply to *that* request (transaction ID, cookie, echoed
//! timestamp), as pure functions over bytes. Nothing here does I/O, and no
//! function panics on any input: every recogniser is fuzzed with arbitrary
//! bytes in its tests.
//!
//! A few protocols give a reply nothing of ours to carry (TFTP, Net
//! Assistant, serialnumberd, an mDNS answer with ID 0), so their replies are
//! recognised by layout alone, which anyone can forge. Every [`Reply`] says
//! how it was matched ([`Match`]), and [`Match::accepts`] tells the engine
//! from which senders that is enough.
//!
//! Which protocol speaks on which port is the catalog's to say
//! (its `udp_protocol`);
//! [`UdpProtocol::request`] builds a [`UdpRequest`] from per-probe random
//! bytes (a [`Nonce`]), which the engine sends and asks to recognise replies.
//!
//! [`mdns_name`] is no port's probe: it builds the multicast DNS query the
//! engine sends to resolve a `.local` name, and takes the addresses from
//! the answers to it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

mod ber;
mod bytes;
pub mod dhcp;
pub mod dns;
pub mod echo;
pub mod generic;
pub mod ike;
pub mod l2tp;
pub mod mdns;
pub mod mdns_name;
pub mod net_assistant;
pub mod netbios;
pub mod ntp;
pub mod responder;
pub mod rmcp;
pub mod rpc;
pub mod serialnumberd;
pub mod sip;
pub mod slp;
pub mod snmp;
pub mod syslog;
pub mod tftp;

/// Random bytes that make one probe unique; every transaction ID, cookie or
/// timestamp a request carries is taken from them, so that a reply can be
/// matched to the request that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// The first two bytes, big-endian.
    pub fn u16(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// The first four bytes, big-endian.
    pub fn u32(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// The first eight bytes, big-endian.
    pub fn u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// The last eight bytes, big-endian (independent of [`Nonce::u64`]).
    pub fn tail_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[8..]);
        u64::from_be_bytes(b)
    }
}

/// What a request may need to know about where it goes and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeContext {
    /// The address being probed.
    pub target: IpAddr,
    /// The local address the probe leaves from (DHCPINFORM puts it in ciaddr).
    pub source: IpAddr,
    /// SNMP v1/v2c community to try (`public` unless the user says otherwise).
    pub snmp_community: String,
    /// The secret shared with a far-side `portprobe listen`, when probing one.
    pub responder_secret: Option<responder::Secret>,
}

impl Default for ProbeContext {
    fn default() -> Self {
        ProbeContext {
            target: IpAddr::V4(Ipv4Addr::LOCALHOST),
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            snmp_community: "public".to_string(),
            responder_secret: None,
        }
    }
}

/// How a recognised reply was tied to the request, which decides which
/// senders it may come from. A reply that [`Match::accepts`] refuses proves
/// nothing about the probed port: treat it as an unrecognised datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Match {
    /// The reply carries a value only this request holds: our transaction
    /// ID, cookie, SPI, tunnel ID, Call-ID or echoed random bytes. It counts
    /// from any address and port, because a stranger cannot know the value,
    /// while a host may answer from another of its addresses.
    Ours,
    /// Recognised by its layout alone, for a protocol whose server answers
    /// from a new port (TFTP, RFC 1350: the reply comes from the server's
    /// fresh transfer ID). It counts only from the probed address, from any
    /// port.
    ShapeFromHost,
    /// Recognised by its layout alone (Net Assistant, serialnumberd, an mDNS
    /// answer with ID 0). It counts only from the probed address and port.
    ShapeFromPort,
    /// A far-side responder's reply with a valid tag, and what it saw of
    /// the hello. The proof is about the probed port, so it counts only from
    /// the probed address and port: a relay that asked the responder by
    /// another path cannot pass its answer off from elsewhere.
    Responder(responder::Seen),
}

impl Match {
    /// Whether a reply matched this way counts when it comes from `from` in
    /// answer to a probe sent to `probed`. IPv4-mapped IPv6 addresses (as a
    /// dual-stack socket reports them) are compared as the IPv4 addresses
    /// they stand for.
    pub fn accepts(self, probed: SocketAddr, from: SocketAddr) -> bool {
        let same_host = probed.ip().to_canonical() == from.ip().to_canonical();
        match self {
            Match::Ours => true,
            Match::ShapeFromHost => same_host,
            Match::ShapeFromPort | Match::Responder(_) => same_host && probed.port() == from.port(),
        }
    }
}

/// A recognised reply: which protocol answered, a short human description
/// of what it said ("DNS response, rcode REFUSED"), and how it was matched
/// to the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Short protocol name, e.g. `"dns"`, `"snmp"`.
    pub protocol: &'static str,
    /// One line on what the reply said, for reports.
    pub detail: String,
    /// How the reply was tied to the request: see [`Match::accepts`].
    pub matched: Match,
}

impl Reply {
    /// A reply of `protocol` described by `detail`, matched by a value of
    /// ours it carries ([`Match::Ours`]).
    pub fn new(protocol: &'static str, detail: impl Into<String>) -> Self {
        Reply::with_match(protocol, detail, Match::Ours)
    }

    /// A reply recognised by its layout alone, from a protocol whose server
    /// answers from a new port ([`Match::ShapeFromHost`]).
    pub fn shape_from_host(protocol: &'static str, detail: impl Into<String>) -> Self {
        Reply::with_match(protocol, detail, Match::ShapeFromHost)
    }

    /// A reply recognised by its layout alone ([`Match::ShapeFromPort`]).
    pub fn shape_from_port(protocol: &'static str, detail: impl Into<String>) -> Self {
        Reply::with_match(protocol, detail, Match::ShapeFromPort)
    }

    /// A reply of `protocol` described by `detail`, matched as `matched` says.
    pub fn with_match(protocol: &'static str, detail: impl Into<String>, matched: Match) -> Self {
        Reply {
            protocol,
            detail: detail.into(),
            matched,
        }
    }

    /// Whether this reply counts when it comes from `from` in answer to a
    /// probe sent to `probed` ([`Match::accepts`]).
    pub fn accepts(&self, probed: SocketAddr, from: SocketAddr) -> bool {
        self.matched.accepts(probed, from)
    }
}

/// A request built for one probe: the datagrams to send and the recogniser
/// for replies to them.
pub trait UdpRequest: Send + Sync + fmt::Debug {
    /// The datagrams to send to the port, in order (usually one; SNMP sends a
    /// v2c get and a v3 discovery).
    fn datagrams(&self) -> Vec<Vec<u8>>;

    /// `Some` exactly when `reply` is a reply of this protocol *to this
    /// request*: one carrying our IDs, cookies or echoed values
    /// ([`Match::Ours`]), or, for a protocol that gives replies nothing of
    /// ours to carry, one of the reply layout ([`Match::ShapeFromHost`],
    /// [`Match::ShapeFromPort`]), which the engine must then check against
    /// the sender with [`Reply::accepts`]. Must not panic on any input.
    fn recognise(&self, reply: &[u8]) -> Option<Reply>;

    /// Whether `reply`, which [`UdpRequest::recognise`] refused, is this
    /// protocol's answer to another request (a far-side responder answering
    /// a hello forged with our address): neither an answer to us nor a sign
    /// of another program on the port, so it is ignored. Must not panic on
    /// any input.
    fn answers_another(&self, _reply: &[u8]) -> bool {
        false
    }
}

/// What silence from a UDP port most likely means for a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// The protocol always answers our request, so silence points to a drop.
    DropLikelier,
    /// The service never answers (syslog, a DHCP client), so silence is what
    /// an open port looks like.
    ServiceSilent,
    /// Without a protocol-specific request, or with a responder that ignores
    /// other links, silence proves nothing either way.
    CannotTell,
}

/// The UDP protocols portprobe has a request for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UdpProtocol {
    /// Echo (RFC 862), port 7.
    Echo,
    /// DNS, port 53.
    Dns,
    /// BOOTP/DHCP server, port 67.
    Dhcp,
    /// BOOTP/DHCP client, port 68: clients never answer.
    DhcpClient,
    /// TFTP, port 69.
    Tftp,
    /// ONC RPC portmapper (program 100000), port 111.
    Portmapper,
    /// ONC RPC service of unknown program (Mac OS X RPC-based services 600-1023).
    Rpc,
    /// NFS (ONC RPC program 100003), port 2049.
    Nfs,
    /// NTP, port 123.
    Ntp,
    /// NetBIOS name service, port 137.
    NetbiosNs,
    /// NetBIOS datagram service, port 138: no reply exists.
    NetbiosDgm,
    /// SNMP, port 161.
    Snmp,
    /// SLPv2, port 427.
    Slp,
    /// IKE / ISAKMP, port 500.
    Ike,
    /// IKE NAT traversal, port 4500 (non-ESP marker).
    IkeNatT,
    /// Syslog, port 514: no reply exists.
    Syslog,
    /// RMCP / ASF presence ping (IPMI), port 623.
    Rmcp,
    /// serialnumberd (Apple), port 626.
    SerialNumberd,
    /// L2TP, port 1701.
    L2tp,
    /// Apple Remote Desktop / Net Assistant status query, port 3283.
    NetAssistant,
    /// SIP, port 5060.
    Sip,
    /// Multicast DNS (unicast query to the target), port 5353.
    Mdns,
    /// Any other port: a small generic datagram.
    Generic,
    /// The hello of a far-side `portprobe listen`, on any port.
    Responder,
}

impl UdpProtocol {
    /// Short name for reports and JSON (`"dns"`, `"generic"`).
    pub fn name(self) -> &'static str {
        match self {
            UdpProtocol::Echo => "echo",
            UdpProtocol::Dns => "dns",
            UdpProtocol::Dhcp => "dhcp",
            UdpProtocol::DhcpClient => "bootpc",
            UdpProtocol::Tftp => "tftp",
            UdpProtocol::Portmapper => "portmapper",
            UdpProtocol::Rpc => "rpc",
            UdpProtocol::Nfs => "nfs",
            UdpProtocol::Ntp => "ntp",
            UdpProtocol::NetbiosNs => "netbios-ns",
            UdpProtocol::NetbiosDgm => "netbios-dgm",
            UdpProtocol::Snmp => "snmp",
            UdpProtocol::Slp => "slp",
            UdpProtocol::Ike => "ike",
            UdpProtocol::IkeNatT => "ike-nat-t",
            UdpProtocol::Syslog => "syslog",
            UdpProtocol::Rmcp => "rmcp",
            UdpProtocol::SerialNumberd => "serialnumberd",
            UdpProtocol::L2tp => "l2tp",
            UdpProtocol::NetAssistant => "net-assistant",
            UdpProtocol::Sip => "sip",
            UdpProtocol::Mdns => "mdns",
            UdpProtocol::Generic => "generic",
            UdpProtocol::Responder => "responder",
        }
    }

    /// Builds the request for one probe of `port`.
    pub fn request(self, ctx: &ProbeContext, nonce: &Nonce, port: u16) -> Box<dyn UdpRequest> {
        match self {
            UdpProtocol::Responder => Box::new(responder::Request::new(ctx, nonce, port)),
            UdpProtocol::Echo => Box::new(echo::Request::new(ctx, nonce)),
            UdpProtocol::Dns => Box::new(dns::Request::new(ctx, nonce)),
            UdpProtocol::Dhcp => Box::new(dhcp::Request::new(ctx, nonce)),
            UdpProtocol::Tftp => Box::new(tftp::Request::new(ctx, nonce)),
            UdpProtocol::Portmapper => Box::new(rpc::Request::portmapper(ctx, nonce)),
            UdpProtocol::Rpc => Box::new(rpc::Request::any_program(ctx, nonce)),
            UdpProtocol::Nfs => Box::new(rpc::Request::nfs(ctx, nonce)),
            UdpProtocol::Ntp => Box::new(ntp::Request::new(ctx, nonce)),
            UdpProtocol::NetbiosNs => Box::new(netbios::Request::new(ctx, nonce)),
            UdpProtocol::Snmp => Box::new(snmp::Request::new(ctx, nonce)),
            UdpProtocol::Slp => Box::new(slp::Request::new(ctx, nonce)),
            UdpProtocol::Ike => Box::new(ike::Request::new(ctx, nonce)),
            UdpProtocol::IkeNatT => Box::new(ike::Request::nat_traversal(ctx, nonce)),
            UdpProtocol::Rmcp => Box::new(rmcp::Request::new(ctx, nonce)),
            UdpProtocol::SerialNumberd => Box::new(serialnumberd::Request::new(ctx, nonce)),
            UdpProtocol::L2tp => Box::new(l2tp::Request::new(ctx, nonce)),
            UdpProtocol::NetAssistant => Box::new(net_assistant::Request::new(ctx, nonce)),
            UdpProtocol::Sip => Box::new(sip::Request::new(ctx, nonce)),
            UdpProtocol::Mdns => Box::new(mdns::Request::new(ctx, nonce)),
            UdpProtocol::Syslog => Box::new(syslog::Request::new(ctx, nonce)),
            UdpProtocol::DhcpClient | UdpProtocol::NetbiosDgm | UdpProtocol::Generic => {
                Box::new(generic::Request::new(ctx, nonce))
            }
        }
    }

    /// What silence from this protocol's port most likely means.
    pub fn silence(self) -> Silence {
        match self {
            UdpProtocol::Syslog | UdpProtocol::DhcpClient | UdpProtocol::NetbiosDgm => {
                Silence::ServiceSilent
            }
            UdpProtocol::Mdns | UdpProtocol::Generic | UdpProtocol::Rpc => Silence::CannotTell,
            _ => Silence::DropLikelier,
        }
    }
}

/// Captured replies and the helpers the wire-format tests share
/// (`fixtures/mod.rs`).
#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{NONCE_3A7C, REPLIES, context_5a17, hex, nonce_5a17};
    use std::net::Ipv6Addr;

    fn at(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("an address"), port)
    }

    #[test]
    fn a_reply_of_ours_counts_from_any_sender() {
        let probed = at("192.0.2.7", 53);
        for from in [
            probed,
            at("192.0.2.7", 40000),
            at("198.51.100.1", 53),
            at("2001:db8::1", 5353),
        ] {
            assert!(Match::Ours.accepts(probed, from), "{from}");
        }
    }

    #[test]
    fn a_shape_from_the_host_counts_from_any_port_of_the_probed_address() {
        let probed = at("192.0.2.7", 69);
        assert!(Match::ShapeFromHost.accepts(probed, at("192.0.2.7", 69)));
        assert!(Match::ShapeFromHost.accepts(probed, at("192.0.2.7", 51234)));
        assert!(Match::ShapeFromHost.accepts(probed, at("::ffff:192.0.2.7", 51234)));
        assert!(!Match::ShapeFromHost.accepts(probed, at("192.0.2.8", 69)));
        assert!(!Match::ShapeFromHost.accepts(probed, at("::1", 69)));
        let v6 = at("2001:db8::7", 69);
        assert!(Match::ShapeFromHost.accepts(v6, at("2001:db8::7", 4000)));
        assert!(!Match::ShapeFromHost.accepts(v6, at("2001:db8::8", 69)));
    }

    #[test]
    fn a_shape_counts_only_from_the_probed_address_and_port() {
        let probed = at("192.0.2.7", 3283);
        assert!(Match::ShapeFromPort.accepts(probed, probed));
        assert!(Match::ShapeFromPort.accepts(probed, at("::ffff:192.0.2.7", 3283)));
        assert!(Match::ShapeFromPort.accepts(at("::ffff:192.0.2.7", 3283), probed));
        assert!(!Match::ShapeFromPort.accepts(probed, at("192.0.2.7", 3284)));
        assert!(!Match::ShapeFromPort.accepts(probed, at("192.0.2.8", 3283)));
        assert!(!Match::ShapeFromPort.accepts(probed, at("::ffff:192.0.2.8", 3283)));
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 626);
        assert!(Match::ShapeFromPort.accepts(v6, at("::1", 626)));
        assert!(!Match::ShapeFromPort.accepts(v6, at("127.0.0.1", 626)));
        assert!(!Match::ShapeFromPort.accepts(v6, at("::1", 627)));
    }

    #[test]
    fn constructors_set_the_match_and_the_reply_asks_it() {
        assert_eq!(Reply::new("dns", "x").matched, Match::Ours);
        assert_eq!(
            Reply::shape_from_host("tftp", "x").matched,
            Match::ShapeFromHost
        );
        assert_eq!(
            Reply::shape_from_port("serialnumberd", "x").matched,
            Match::ShapeFromPort
        );
        let reply = Reply::with_match("mdns", "x", Match::ShapeFromPort);
        assert!(reply.accepts(at("192.0.2.7", 5353), at("192.0.2.7", 5353)));
        assert!(!reply.accepts(at("192.0.2.7", 5353), at("192.0.2.9", 5353)));
    }

    /// Each captured or published reply: the port it answered, the context
    /// and nonce of the request that drew it, and how it is matched.
    fn pinned(file: &str) -> (u16, ProbeContext, Nonce, Match) {
        let capture_3a7c = |port| (port, ProbeContext::default(), NONCE_3A7C, Match::Ours);
        let run = |port, run| (port, context_5a17(), nonce_5a17(run), Match::Ours);
        match file {
            "dhcp-dnsmasq-ack.hex" => (67, context_5a17(), NONCE_3A7C, Match::Ours),
            "dns-dnsmasq-refused.hex" => capture_3a7c(53),
            "mdns-avahi-services.hex" => capture_3a7c(5353),
            "netbios-nmbd-negative.hex" | "netbios-nmbd-node-status.hex" => capture_3a7c(137),
            "ntp-chrony-stratum8.hex" | "ntp-chrony-unsynchronised.hex" | "ntp-ntpsec-init.hex" => {
                capture_3a7c(123)
            }
            "snmp-netsnmp-v2c-response.hex" | "snmp-netsnmp-v3-report.hex" => capture_3a7c(161),
            "tftp-hpa-data.hex" | "tftp-hpa-error.hex" => (
                69,
                ProbeContext::default(),
                NONCE_3A7C,
                Match::ShapeFromHost,
            ),
            "rpcbind-portmapper-reply.hex" => run(111, 1),
            "ganesha-nfs-reply.hex" => run(2049, 1),
            "ganesha-prog-unavail-reply.hex" => run(700, 2),
            "ganesha-mountd-prog-unavail-reply.hex" => run(700, 3),
            "charon-no-proposal-chosen.hex" => run(500, 1),
            "charon-invalid-ke-payload.hex" => run(500, 2),
            "charon-ike-sa-init-response.hex" => run(500, 3),
            "charon-nat-t-response.hex" => run(4500, 1),
            "xl2tpd-sccrp.hex" => run(1701, 1),
            "kamailio-200-ok.hex" => run(5060, 1),
            "ipmi-sim-pong.hex" => (623, context_5a17(), nonce_5a17(1), Match::ShapeFromPort),
            "ard-status-reply.hex" => (3283, context_5a17(), nonce_5a17(1), Match::ShapeFromPort),
            other => panic!("no match kind pinned for {other}"),
        }
    }

    #[test]
    fn every_fixture_is_recognised_with_its_protocols_match_kind() {
        // Answers to a name query (`mdns_name`) answer no port's probe.
        let probe_replies = REPLIES.iter().filter(|(of, _, _)| *of != "mdns_name");
        for (_, file, text) in probe_replies {
            let (port, ctx, nonce, kind) = pinned(file);
            let request = crate::catalog::udp_protocol(port).request(&ctx, &nonce, port);
            let reply = request.recognise(&hex(text));
            assert_eq!(reply.map(|reply| reply.matched), Some(kind), "{file}");
        }
    }

    #[test]
    fn replies_built_by_hand_are_recognised_with_their_protocols_match_kind() {
        let ctx = context_5a17();
        let nonce = nonce_5a17(1);
        let echo = UdpProtocol::Echo.request(&ctx, &nonce, 7);
        let echoed = echo.datagrams().remove(0);
        // An SLPv2 SrvAck (RFC 2608 section 8.3) with XID 5a17, no error.
        let slp_ack = hex("02 05 000012 0000 000000 5a17 0002 656e 0000");
        let forty = "0123456789ABCDEF0123456789ABCDEF01234567";
        let snresps = format!("SNRESPS:host:0x{forty}:xsvr:0x{forty}:0x0badf00d:0x{forty}:host\0");
        let mut mdns_id_zero = hex(include_str!("fixtures/mdns-avahi-services.hex"));
        mdns_id_zero[..2].copy_from_slice(&[0, 0]);
        let cases: [(UdpProtocol, Nonce, Vec<u8>, Match); 4] = [
            (UdpProtocol::Echo, nonce, echoed, Match::Ours),
            (UdpProtocol::Slp, nonce, slp_ack, Match::Ours),
            (
                UdpProtocol::SerialNumberd,
                nonce,
                snresps.into_bytes(),
                Match::ShapeFromPort,
            ),
            (
                UdpProtocol::Mdns,
                NONCE_3A7C,
                mdns_id_zero,
                Match::ShapeFromPort,
            ),
        ];
        for (protocol, nonce, reply, kind) in cases {
            let request = protocol.request(&ctx, &nonce, 0);
            let matched = request.recognise(&reply).map(|reply| reply.matched);
            assert_eq!(matched, Some(kind), "{}", protocol.name());
        }
    }

    #[test]
    fn protocols_without_replies_recognise_no_fixture() {
        let ctx = ProbeContext::default();
        for (protocol, port) in [
            (UdpProtocol::DhcpClient, 68),
            (UdpProtocol::NetbiosDgm, 138),
            (UdpProtocol::Syslog, 514),
            (UdpProtocol::Generic, 6970),
        ] {
            let request = protocol.request(&ctx, &NONCE_3A7C, port);
            for (_, file, text) in REPLIES {
                assert_eq!(request.recognise(&hex(text)), None, "{port} {file}");
            }
            for sent in request.datagrams() {
                assert_eq!(request.recognise(&sent), None, "{port}");
            }
        }
    }

    #[test]
    fn every_protocol_builds_a_request_that_does_not_recognise_noise() {
        let ctx = ProbeContext::default();
        let nonce = Nonce([7; 16]);
        for port in [
            7, 53, 67, 68, 69, 111, 123, 137, 138, 161, 427, 500, 514, 623, 626, 700, 1701, 2049,
            3283, 4500, 5060, 5353, 6970,
        ] {
            let proto = crate::catalog::udp_protocol(port);
            let request = proto.request(&ctx, &nonce, port);
            assert!(!request.datagrams().is_empty(), "{port}");
            assert_eq!(request.recognise(b"\xde\xad\xbe\xef noise"), None, "{port}");
        }
    }
}
