//! Wire formats: one module per UDP protocol that portprobe speaks.
//!
//! Each module builds the request a real server of its protocol answers and
//! recognises the reply to *that* request (transaction ID, cookie, echoed
//! timestamp), as pure functions over bytes. Nothing here does I/O, and no
//! function panics on any input: every recogniser is fuzzed with arbitrary
//! bytes in its tests.
//!
//! [`UdpProtocol::for_port`] picks the protocol for a port number and
//! [`UdpProtocol::request`] builds a [`UdpRequest`] from per-probe random
//! bytes (a [`Nonce`]), which the engine sends and asks to recognise replies.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

pub mod dhcp;
pub mod dns;
pub mod echo;
pub mod generic;
pub mod ike;
pub mod l2tp;
pub mod mdns;
pub mod net_assistant;
pub mod netbios;
pub mod ntp;
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
}

impl Default for ProbeContext {
    fn default() -> Self {
        ProbeContext {
            target: IpAddr::V4(Ipv4Addr::LOCALHOST),
            source: IpAddr::V4(Ipv4Addr::LOCALHOST),
            snmp_community: "public".to_string(),
        }
    }
}

/// A recognised reply: which protocol answered, and a short human description
/// of what it said ("DNS response, rcode REFUSED").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Short protocol name, e.g. `"dns"`, `"snmp"`.
    pub protocol: &'static str,
    /// One line on what the reply said, for reports.
    pub detail: String,
}

impl Reply {
    /// A reply of `protocol` described by `detail`.
    pub fn new(protocol: &'static str, detail: impl Into<String>) -> Self {
        Reply {
            protocol,
            detail: detail.into(),
        }
    }
}

/// A request built for one probe: the datagrams to send and the recogniser
/// for replies to them.
pub trait UdpRequest: Send + Sync + fmt::Debug {
    /// The datagrams to send to the port, in order (usually one; SNMP sends a
    /// v2c get and a v3 discovery).
    fn datagrams(&self) -> Vec<Vec<u8>>;

    /// `Some` exactly when `reply` is a reply of this protocol *to this
    /// request* (matching IDs, cookies or echoed values). Must not panic on
    /// any input.
    fn recognise(&self, reply: &[u8]) -> Option<Reply>;
}

/// What silence from a UDP port most likely means for a protocol, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// The protocol always answers our request, so silence points to a drop.
    DropLikelier(&'static str),
    /// The service never answers (syslog, a DHCP client), so silence is what
    /// an open port looks like.
    ServiceSilent(&'static str),
    /// Without a protocol-specific request, silence proves nothing either way.
    CannotTell(&'static str),
}

impl Silence {
    /// The sentence that explains it.
    pub fn explanation(self) -> &'static str {
        match self {
            Silence::DropLikelier(s) | Silence::ServiceSilent(s) | Silence::CannotTell(s) => s,
        }
    }
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
}

impl UdpProtocol {
    /// The protocol portprobe speaks to UDP `port`.
    pub fn for_port(port: u16) -> UdpProtocol {
        match port {
            7 => UdpProtocol::Echo,
            53 => UdpProtocol::Dns,
            67 => UdpProtocol::Dhcp,
            68 => UdpProtocol::DhcpClient,
            69 => UdpProtocol::Tftp,
            111 => UdpProtocol::Portmapper,
            123 => UdpProtocol::Ntp,
            137 => UdpProtocol::NetbiosNs,
            138 => UdpProtocol::NetbiosDgm,
            161 => UdpProtocol::Snmp,
            427 => UdpProtocol::Slp,
            500 => UdpProtocol::Ike,
            514 => UdpProtocol::Syslog,
            623 => UdpProtocol::Rmcp,
            626 => UdpProtocol::SerialNumberd,
            1701 => UdpProtocol::L2tp,
            2049 => UdpProtocol::Nfs,
            3283 => UdpProtocol::NetAssistant,
            4500 => UdpProtocol::IkeNatT,
            5060 => UdpProtocol::Sip,
            5353 => UdpProtocol::Mdns,
            749 => UdpProtocol::Generic,
            600..=1023 => UdpProtocol::Rpc,
            _ => UdpProtocol::Generic,
        }
    }

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
        }
    }

    /// Builds the request for one probe.
    pub fn request(self, ctx: &ProbeContext, nonce: &Nonce) -> Box<dyn UdpRequest> {
        match self {
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
            UdpProtocol::Syslog => Silence::ServiceSilent(
                "syslog receivers never reply, so an open syslog port is silent too",
            ),
            UdpProtocol::DhcpClient => {
                Silence::ServiceSilent("a DHCP client never answers a datagram sent to it")
            }
            UdpProtocol::NetbiosDgm => Silence::ServiceSilent(
                "the NetBIOS datagram service does not answer unsolicited datagrams",
            ),
            UdpProtocol::Mdns => Silence::CannotTell(
                "mDNS responders ignore queries from other links, so silence through a router is expected even when Bonjour runs",
            ),
            UdpProtocol::Generic => Silence::CannotTell(
                "this port's protocol is private or session-bound, so a live service may ignore a probe",
            ),
            UdpProtocol::Rpc => Silence::CannotTell(
                "an RPC service answers any call, but these ports are often unused without sending port-unreachable",
            ),
            UdpProtocol::Snmp => Silence::DropLikelier(
                "an SNMPv3 agent answers engine discovery whatever its communities, but a v1/v2c-only agent ignores a wrong community",
            ),
            UdpProtocol::SerialNumberd | UdpProtocol::NetAssistant => Silence::DropLikelier(
                "the Apple service answers this request when it runs; silence points to a drop",
            ),
            _ => Silence::DropLikelier(
                "a server of this protocol answers the request portprobe sends, so silence points to a drop",
            ),
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

    #[test]
    fn specific_ports_win_over_the_rpc_range() {
        assert_eq!(UdpProtocol::for_port(623), UdpProtocol::Rmcp);
        assert_eq!(UdpProtocol::for_port(626), UdpProtocol::SerialNumberd);
        assert_eq!(UdpProtocol::for_port(749), UdpProtocol::Generic);
        assert_eq!(UdpProtocol::for_port(700), UdpProtocol::Rpc);
        assert_eq!(UdpProtocol::for_port(6970), UdpProtocol::Generic);
    }

    #[test]
    fn every_protocol_builds_a_request_that_does_not_recognise_noise() {
        let ctx = ProbeContext::default();
        let nonce = Nonce([7; 16]);
        for port in [
            7, 53, 67, 68, 69, 111, 123, 137, 138, 161, 427, 500, 514, 623, 626, 700, 1701, 2049,
            3283, 4500, 5060, 5353, 6970,
        ] {
            let proto = UdpProtocol::for_port(port);
            let request = proto.request(&ctx, &nonce);
            assert!(!request.datagrams().is_empty(), "{port}");
            assert_eq!(request.recognise(b"\xde\xad\xbe\xef noise"), None, "{port}");
        }
    }
}
