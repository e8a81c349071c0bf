//! What a probe found: states and reasons, as data.
//!
//! The vocabulary is nmap's, so that network engineers read it at once:
//! `open`, `closed`, `filtered`, `open|filtered`, each with the evidence
//! (`syn-ack`, `conn-refused`, `admin-prohibited`, ...) and, for ICMP
//! errors, the address of the router or host that sent them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::located::Located;
use crate::engine::Probe;
use crate::port::Transport;
use crate::wire::Reply;

/// The reachability state of one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// A connection completed or a UDP reply came back.
    Open,
    /// The host itself said nothing listens (TCP reset, ICMP port unreachable).
    Closed,
    /// Blocked: no answer at all (TCP), or an ICMP error from the path.
    Filtered,
    /// UDP without any reply: a silent service or a silent drop.
    OpenFiltered,
}

impl State {
    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::Filtered => "filtered",
            State::OpenFiltered => "open|filtered",
        }
    }

    /// Whether the port counts as blocked (exactly when `filtered`).
    pub fn is_blocked(self) -> bool {
        self == State::Filtered
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An ICMP or ICMPv6 error type and code as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpCode {
    /// True for ICMPv6.
    pub v6: bool,
    /// The ICMP type.
    pub kind: u8,
    /// The ICMP code.
    pub code: u8,
}

/// The evidence behind a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// TCP connect completed.
    SynAck,
    /// TCP connect refused by a reset.
    ConnRefused,
    /// A far-side `portprobe listen` answered and proved the shared secret.
    Responder,
    /// A connection or reply, but not from the responder (no valid tag):
    /// another program holds the port.
    NotResponder,
    /// TCP: the connection completed, but the responder said it had no
    /// room for it every time it was tried (its connection slots were
    /// taken): the path is open as far as a handshake shows, unproven.
    ResponderBusy,
    /// No answer after every attempt.
    NoResponse,
    /// A UDP reply recognised as the protocol asked.
    UdpResponse,
    /// Some other UDP reply from the target.
    UdpResponseUnrecognised,
    /// ICMP port unreachable.
    PortUnreachable,
    /// ICMP communication administratively prohibited (v4 type 3 code 13, v6 type 1 code 1).
    AdminProhibited,
    /// ICMP host unreachable (v4 type 3 code 1, v6 type 1 code 3).
    HostUnreachable,
    /// ICMP network unreachable (v4 type 3 code 0, v6 type 1 code 0).
    NetUnreachable,
    /// ICMP protocol unreachable.
    ProtocolUnreachable,
    /// ICMP host administratively prohibited (v4 code 10).
    HostProhibited,
    /// ICMP network administratively prohibited (v4 code 9).
    NetProhibited,
    /// ICMPv6 source address failed ingress/egress policy (code 5).
    PolicyFailed,
    /// ICMPv6 reject route to destination (code 6).
    RejectRoute,
    /// ICMP time exceeded: a routing loop or too small a TTL.
    TimeExceeded,
    /// The local host refused to send (a local firewall rule: EPERM).
    LocalFirewall,
    /// The local host has no route to the address.
    NoRoute,
    /// This computer could not send the probe (the operating system's error
    /// is in the result's note).
    LocalError,
    /// Any other ICMP error.
    Icmp(IcmpCode),
}

impl Reason {
    /// Classifies an ICMP error by type and code.
    pub fn from_icmp(icmp: IcmpCode) -> Reason {
        match (icmp.v6, icmp.kind, icmp.code) {
            (false, 3, 0) | (false, 3, 6) | (false, 3, 11) => Reason::NetUnreachable,
            (false, 3, 1) | (false, 3, 7) | (false, 3, 8) | (false, 3, 12) => {
                Reason::HostUnreachable
            }
            (false, 3, 2) => Reason::ProtocolUnreachable,
            (false, 3, 3) => Reason::PortUnreachable,
            (false, 3, 9) => Reason::NetProhibited,
            (false, 3, 10) => Reason::HostProhibited,
            (false, 3, 13) => Reason::AdminProhibited,
            (false, 11, _) => Reason::TimeExceeded,
            (true, 1, 0) => Reason::NetUnreachable,
            (true, 1, 1) => Reason::AdminProhibited,
            (true, 1, 3) => Reason::HostUnreachable,
            (true, 1, 4) => Reason::PortUnreachable,
            (true, 1, 5) => Reason::PolicyFailed,
            (true, 1, 6) => Reason::RejectRoute,
            (true, 3, _) => Reason::TimeExceeded,
            _ => Reason::Icmp(icmp),
        }
    }

    /// The name used in JSON (`syn-ack`, `admin-prohibited`, `icmp-3-5`).
    pub fn as_str(self) -> String {
        let s = match self {
            Reason::SynAck => "syn-ack",
            Reason::ConnRefused => "conn-refused",
            Reason::Responder => "responder",
            Reason::NotResponder => "not-responder",
            Reason::ResponderBusy => "responder-busy",
            Reason::NoResponse => "no-response",
            Reason::UdpResponse => "udp-response",
            Reason::UdpResponseUnrecognised => "udp-response-unrecognised",
            Reason::PortUnreachable => "port-unreachable",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::HostUnreachable => "host-unreachable",
            Reason::NetUnreachable => "net-unreachable",
            Reason::ProtocolUnreachable => "protocol-unreachable",
            Reason::HostProhibited => "host-prohibited",
            Reason::NetProhibited => "net-prohibited",
            Reason::PolicyFailed => "policy-failed",
            Reason::RejectRoute => "reject-route",
            Reason::TimeExceeded => "time-exceeded",
            Reason::LocalFirewall => "local-firewall",
            Reason::NoRoute => "no-route",
            Reason::LocalError => "local-error",
            Reason::Icmp(c) => {
                let family = if c.v6 { "icmp6" } else { "icmp" };
                return format!("{family}-{}-{}", c.kind, c.code);
            }
        };
        s.to_string()
    }

    /// Whether the reason says the whole host, not one port, is unreachable.
    pub fn is_host_level(self) -> bool {
        matches!(
            self,
            Reason::HostUnreachable
                | Reason::NetUnreachable
                | Reason::HostProhibited
                | Reason::NetProhibited
                | Reason::NoRoute
                | Reason::LocalError
                | Reason::RejectRoute
                | Reason::TimeExceeded
        )
    }
}

impl std::str::FromStr for Reason {
    type Err = ();

    /// The reason a JSON name stands for: the inverse of [`Reason::as_str`].
    fn from_str(s: &str) -> Result<Reason, ()> {
        let named = [
            Reason::SynAck,
            Reason::ConnRefused,
            Reason::Responder,
            Reason::NotResponder,
            Reason::ResponderBusy,
            Reason::NoResponse,
            Reason::UdpResponse,
            Reason::UdpResponseUnrecognised,
            Reason::PortUnreachable,
            Reason::AdminProhibited,
            Reason::HostUnreachable,
            Reason::NetUnreachable,
            Reason::ProtocolUnreachable,
            Reason::HostProhibited,
            Reason::NetProhibited,
            Reason::PolicyFailed,
            Reason::RejectRoute,
            Reason::TimeExceeded,
            Reason::LocalFirewall,
            Reason::NoRoute,
            Reason::LocalError,
        ];
        if let Some(r) = named.into_iter().find(|r| r.as_str() == s) {
            return Ok(r);
        }
        let (v6, rest) = match (s.strip_prefix("icmp6-"), s.strip_prefix("icmp-")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return Err(()),
        };
        let (kind, code) = rest.split_once('-').ok_or(())?;
        let number = |n: &str| match n.parse::<u8>() {
            Ok(v) if n == v.to_string() => Ok(v),
            _ => Err(()),
        };
        let icmp = IcmpCode {
            v6,
            kind: number(kind)?,
            code: number(code)?,
        };
        // Only a code without a name of its own is written this way.
        match Reason::from_icmp(icmp) {
            Reason::Icmp(c) => Ok(Reason::Icmp(c)),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

/// Why a silent UDP port could not be confirmed while a host limited its
/// ICMP errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unconfirmed {
    /// `--max-time` ran out first.
    OutOfTime,
    /// The run was stopped from outside first.
    Stopped,
    /// The re-probing rounds reached their cap (see [`Config::retries`](super::Config::retries)).
    RoundCap {
        /// Rounds run.
        rounds: u32,
    },
    /// A far-side responder was limiting its replies: a port it had
    /// answered went silent too when probed again after the silent ones,
    /// or its replies said it was refusing hellos over its total cap. The
    /// silence may be its own (a flood, maybe with forged addresses).
    ResponderLimiting,
}

/// What a responder's proof showed of the hello that differs from what this
/// computer sent: a translation on the way (a NAT, port forwarding) or a
/// relay that asked the responder itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Translation {
    /// Where the responder saw the hello come from, and where this computer
    /// sent it from, when they differ.
    pub source: Option<(SocketAddr, SocketAddr)>,
    /// Where the responder saw the hello arrive, when not at the probed
    /// address and port (an unspecified address: it could not tell which).
    pub destination: Option<SocketAddr>,
}

/// What qualifies a result, as data; the report puts it into words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Note {
    /// Every connect reached the connecting socket itself (the kernel chose
    /// the probed port as the source port), which happens only when nothing
    /// listens on the port.
    SelfConnectOnly,
    /// The port stayed silent while a host limited its ICMP errors, so a
    /// closed port may hide behind the silence.
    Unconfirmed(Unconfirmed),
    /// The responder proved the port, but saw the hello otherwise than this
    /// computer sent it.
    Translated(Translation),
    /// This computer could not send the probe; the operating system's error
    /// number (`errno`).
    LocalError {
        /// The error number.
        errno: i32,
    },
}

/// The result for one port of one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortResult {
    /// The address probed.
    pub address: IpAddr,
    /// The transport.
    pub transport: Transport,
    /// The port.
    pub port: u16,
    /// How the port was probed (for UDP, the protocol spoken).
    pub probe: Probe,
    /// What was found.
    pub state: State,
    /// The evidence.
    pub reason: Reason,
    /// Who sent the ICMP error, for ICMP reasons.
    pub reason_from: Option<IpAddr>,
    /// Round-trip time of the answering attempt.
    pub rtt: Option<Duration>,
    /// Attempts sent (retries included).
    pub attempts: u32,
    /// For UDP: the protocol asked and what its reply said.
    pub reply: Option<Reply>,
    /// For UDP: where the reply came from, when not the probed address and port.
    pub reply_from: Option<SocketAddr>,
    /// What qualifies the result (e.g. ICMP rate limiting left it unconfirmed).
    pub note: Option<Note>,
    /// For a blocked port (or a UDP port without a reply): where it stops on
    /// the way, when TTL-limited probes could tell.
    pub located: Option<Located>,
}

impl PortResult {
    /// A result of one attempt with nothing beyond its state and reason: no
    /// sender, round trip, reply, note or place on the path. The fields are
    /// public; set the others where the evidence gives them.
    pub fn new(address: IpAddr, probe: Probe, port: u16, state: State, reason: Reason) -> Self {
        PortResult {
            address,
            transport: probe.transport(),
            port,
            probe,
            state,
            reason,
            reason_from: None,
            rtt: None,
            attempts: 1,
            reply: None,
            reply_from: None,
            note: None,
            located: None,
        }
    }

    /// Whether the port counts as blocked.
    pub fn blocked(&self) -> bool {
        self.state.is_blocked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_codes_map_to_reasons() {
        let v4 = |kind, code| {
            Reason::from_icmp(IcmpCode {
                v6: false,
                kind,
                code,
            })
        };
        let v6 = |kind, code| {
            Reason::from_icmp(IcmpCode {
                v6: true,
                kind,
                code,
            })
        };
        assert_eq!(v4(3, 13), Reason::AdminProhibited);
        assert_eq!(v4(3, 3), Reason::PortUnreachable);
        assert_eq!(v4(3, 1), Reason::HostUnreachable);
        assert_eq!(v6(1, 1), Reason::AdminProhibited);
        assert_eq!(v6(1, 4), Reason::PortUnreachable);
        assert_eq!(v6(1, 3), Reason::HostUnreachable);
        assert_eq!(v4(3, 5).as_str(), "icmp-3-5");
        assert_eq!(v6(4, 0).as_str(), "icmp6-4-0");
        assert_eq!(v6(1, 1).as_str(), "admin-prohibited");
    }

    #[test]
    fn every_reason_reads_back_from_its_json_name() {
        for v6 in [false, true] {
            for kind in 0..=255u8 {
                for code in 0..=255u8 {
                    let r = Reason::from_icmp(IcmpCode { v6, kind, code });
                    assert_eq!(r.as_str().parse::<Reason>(), Ok(r), "{r}");
                }
            }
        }
        for r in [Reason::SynAck, Reason::ResponderBusy, Reason::LocalError] {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(r));
        }
        for bad in [
            "",
            "icmp-3-13",
            "icmp-3-05",
            "icmp-300-1",
            "icmp-3",
            "icmp6-x-1",
            "SYN-ACK",
        ] {
            assert_eq!(bad.parse::<Reason>(), Err(()), "{bad}");
        }
    }

    #[test]
    fn only_filtered_is_blocked() {
        assert!(State::Filtered.is_blocked());
        for s in [State::Open, State::Closed, State::OpenFiltered] {
            assert!(!s.is_blocked());
        }
        assert_eq!(State::OpenFiltered.to_string(), "open|filtered");
    }
}
