//! Turning an attempt's evidence into a port's state and reason.

use std::net::SocketAddr;

use super::Job;
use super::evidence::{Answer, Evidence, Finished};
use super::outcome::{Note, PortResult, Reason, State};
use super::responder::translation;
use crate::port::Transport;

/// The result of a port that stayed silent through `attempts` attempts: TCP
/// silence is a drop (`filtered`); UDP silence may be a silent service too
/// (`open|filtered`).
pub(super) fn silent(job: &Job, attempts: u32) -> PortResult {
    PortResult {
        address: job.address,
        transport: job.probe.transport(),
        port: job.port,
        probe: job.probe,
        // A responder always answers: its silence is a drop.
        state: match job.probe.transport() {
            Transport::Udp if !job.probe.is_responder() => State::OpenFiltered,
            _ => State::Filtered,
        },
        reason: Reason::NoResponse,
        reason_from: None,
        rtt: None,
        attempts,
        reply: None,
        reply_from: None,
        note: None,
        located: None,
    }
}

/// Whether a result records silence (and may still change on a later attempt).
pub(super) fn is_silence(r: &PortResult) -> bool {
    r.reason == Reason::NoResponse
}

/// Judges the evidence of the `attempts`-th attempt at `job`.
pub(super) fn judge(job: &Job, attempts: u32, finished: Finished) -> PortResult {
    let mut r = silent(job, attempts);
    r.rtt = Some(finished.rtt);
    match finished.evidence {
        Evidence::Connected => {
            r.state = State::Open;
            r.reason = Reason::SynAck;
        }
        Evidence::Responder { answer, sent_from } => {
            r.state = State::Open;
            r.reason = match answer {
                Answer::Proved(seen) => {
                    let probed = SocketAddr::new(job.address, job.port);
                    r.note = translation(&seen, sent_from, probed).map(Note::Translated);
                    Reason::Responder
                }
                Answer::Busy => Reason::ResponderBusy,
                Answer::Nothing | Answer::Not => Reason::NotResponder,
            };
        }
        Evidence::SelfConnect => {
            r.state = State::Closed;
            r.reason = Reason::ConnRefused;
            r.note = Some(Note::SelfConnectOnly);
        }
        Evidence::Refused => {
            r.state = State::Closed;
            r.reason = match job.probe.transport() {
                Transport::Tcp => Reason::ConnRefused,
                Transport::Udp => Reason::PortUnreachable,
            };
        }
        Evidence::Datagram { reply, from } => {
            r.state = State::Open;
            r.reason = match (reply.is_some(), job.probe.is_responder()) {
                // A responder's proof is `Evidence::Responder`: anything
                // else from its port is another program's.
                (_, true) => Reason::NotResponder,
                (true, false) => Reason::UdpResponse,
                (false, false) => Reason::UdpResponseUnrecognised,
            };
            r.reply = reply;
            if from != SocketAddr::new(job.address, job.port) {
                r.reply_from = Some(from);
            }
        }
        Evidence::Icmp(e) => {
            r.state = State::Filtered;
            r.reason = Reason::from_icmp(e.icmp);
            r.reason_from = e.from;
            let from_target = e.from.is_none_or(|f| f == job.address);
            if r.reason == Reason::PortUnreachable && from_target {
                r.state = State::Closed;
            }
        }
        Evidence::Local(reason) => {
            r.state = State::Filtered;
            r.reason = reason;
            r.rtt = None;
        }
        Evidence::LocalError(errno) => local_error(&mut r, errno),
        // Held by our own sockets every time it was tried: this computer
        // could not probe it.
        Evidence::OwnPort => local_error(&mut r, nix::libc::EADDRINUSE),
        Evidence::Silent => r.rtt = None,
    }
    r
}

fn local_error(r: &mut PortResult, errno: i32) {
    r.rtt = None;
    r.state = State::Filtered;
    r.reason = Reason::LocalError;
    r.note = Some(Note::LocalError { errno });
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::engine::Probe;
    use crate::engine::icmp::IcmpError;
    use crate::engine::outcome::IcmpCode;
    use crate::wire::{Reply, UdpProtocol};

    const TARGET: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

    fn job(probe: Probe) -> Job {
        Job {
            address: TARGET,
            port: 53,
            probe,
        }
    }

    fn judged(probe: Probe, evidence: Evidence) -> PortResult {
        judge(
            &job(probe),
            1,
            Finished {
                evidence,
                rtt: Duration::from_millis(2),
            },
        )
    }

    fn port_unreachable(from: IpAddr) -> Evidence {
        Evidence::Icmp(IcmpError {
            icmp: IcmpCode {
                v6: false,
                kind: 3,
                code: 3,
            },
            from: Some(from),
            destination: None,
        })
    }

    #[test]
    fn port_unreachable_is_closed_from_the_target_and_filtered_from_a_router() {
        let udp = Probe::Udp(UdpProtocol::Dns);
        let own = judged(udp, port_unreachable(TARGET));
        assert_eq!(
            (own.state, own.reason),
            (State::Closed, Reason::PortUnreachable)
        );
        let router = judged(udp, port_unreachable(ROUTER));
        assert_eq!(
            (router.state, router.reason, router.reason_from),
            (State::Filtered, Reason::PortUnreachable, Some(ROUTER))
        );
    }

    #[test]
    fn silence_is_filtered_for_tcp_and_open_filtered_for_udp() {
        let tcp = judged(Probe::Tcp, Evidence::Silent);
        assert_eq!((tcp.state, tcp.rtt), (State::Filtered, None));
        assert!(is_silence(&tcp));
        let udp = judged(Probe::Udp(UdpProtocol::Dns), Evidence::Silent);
        assert_eq!(udp.state, State::OpenFiltered);
        assert_eq!(udp.probe, Probe::Udp(UdpProtocol::Dns));
    }

    #[test]
    fn a_reply_from_elsewhere_is_named() {
        let from = SocketAddr::new(TARGET, 40000);
        let r = judged(
            Probe::Udp(UdpProtocol::Tftp),
            Evidence::Datagram {
                reply: Some(Reply::new("tftp", "TFTP ERROR 1")),
                from,
            },
        );
        assert_eq!((r.state, r.reason), (State::Open, Reason::UdpResponse));
        assert_eq!(r.reply_from, Some(from));
        let same = judged(
            Probe::Udp(UdpProtocol::Generic),
            Evidence::Datagram {
                reply: None,
                from: SocketAddr::new(TARGET, 53),
            },
        );
        assert_eq!(same.reason, Reason::UdpResponseUnrecognised);
        assert_eq!(same.reply_from, None);
    }

    #[test]
    fn local_errors_keep_the_os_error() {
        let r = judged(Probe::Tcp, Evidence::LocalError(nix::libc::EINVAL));
        assert_eq!((r.state, r.reason), (State::Filtered, Reason::LocalError));
        assert_eq!(
            r.note,
            Some(Note::LocalError {
                errno: nix::libc::EINVAL
            })
        );
        assert!(!is_silence(&r));
        let own = judged(Probe::Udp(UdpProtocol::Generic), Evidence::OwnPort);
        assert_eq!(
            own.note,
            Some(Note::LocalError {
                errno: nix::libc::EADDRINUSE
            })
        );
    }

    #[test]
    fn self_connects_are_closed_with_a_note() {
        let r = judged(Probe::Tcp, Evidence::SelfConnect);
        assert_eq!(
            (r.state, r.note),
            (State::Closed, Some(Note::SelfConnectOnly))
        );
    }
}
