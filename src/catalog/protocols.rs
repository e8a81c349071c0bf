//! Which UDP protocol portprobe speaks on which port: Apple knowledge, so
//! it lives with the catalog and not in `wire`, which only knows how each
//! protocol builds a request and recognises a reply.

use crate::engine::Probe;
use crate::port::Transport;
use crate::wire::UdpProtocol;

/// The protocol portprobe speaks to UDP `port`.
pub fn udp_protocol(port: u16) -> UdpProtocol {
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
        // Kerberos 5 administration (kadmin, changepw) sits inside the
        // range below, where Mac OS X's RPC services bind, but is not ONC
        // RPC: a call it cannot parse proves nothing, so it gets the
        // generic datagram like any other port without a probe of its own.
        749 => UdpProtocol::Generic,
        600..=1023 => UdpProtocol::Rpc,
        _ => UdpProtocol::Generic,
    }
}

/// The probe for `port` on `transport`: a TCP connect, or the UDP request
/// of the protocol that speaks on that port.
pub fn probe_for(transport: Transport, port: u16) -> Probe {
    match transport {
        Transport::Tcp => Probe::Tcp,
        Transport::Udp => Probe::Udp(udp_protocol(port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_ports_win_over_the_rpc_range() {
        assert_eq!(udp_protocol(623), UdpProtocol::Rmcp);
        assert_eq!(udp_protocol(626), UdpProtocol::SerialNumberd);
        assert_eq!(udp_protocol(749), UdpProtocol::Generic);
        assert_eq!(udp_protocol(700), UdpProtocol::Rpc);
        assert_eq!(udp_protocol(6970), UdpProtocol::Generic);
    }

    #[test]
    fn tcp_is_a_connect_whatever_the_port() {
        assert_eq!(probe_for(Transport::Tcp, 53), Probe::Tcp);
        assert_eq!(probe_for(Transport::Udp, 53), Probe::Udp(UdpProtocol::Dns));
    }
}
