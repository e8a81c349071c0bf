//! How one port is probed: the engine's instruction for a port, chosen by
//! whoever plans the run (the catalog, for a product's ports) and carried
//! to the port's result.

use crate::port::Transport;
use crate::wire::UdpProtocol;

/// How one port is probed: a TCP connect, or a UDP request of a protocol.
/// Chosen once, when the plan is made, and carried to the results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Probe {
    /// A TCP connect.
    Tcp,
    /// A TCP connect, then the hello of a far-side `portprobe listen`.
    TcpResponder,
    /// A UDP request of this protocol.
    Udp(UdpProtocol),
}

impl Probe {
    /// The probe of a far-side `portprobe listen` on `transport`.
    pub fn responder(transport: Transport) -> Probe {
        match transport {
            Transport::Tcp => Probe::TcpResponder,
            Transport::Udp => Probe::Udp(UdpProtocol::Responder),
        }
    }

    /// The transport.
    pub fn transport(self) -> Transport {
        match self {
            Probe::Tcp | Probe::TcpResponder => Transport::Tcp,
            Probe::Udp(_) => Transport::Udp,
        }
    }

    /// The UDP protocol, for a UDP probe.
    pub fn udp(self) -> Option<UdpProtocol> {
        match self {
            Probe::Tcp | Probe::TcpResponder => None,
            Probe::Udp(p) => Some(p),
        }
    }

    /// Whether the probe speaks to a far-side `portprobe listen`.
    pub fn is_responder(self) -> bool {
        matches!(
            self,
            Probe::TcpResponder | Probe::Udp(UdpProtocol::Responder)
        )
    }
}
