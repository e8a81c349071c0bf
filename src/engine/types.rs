//! The engine's core types: what a check probes and how (`Target`, `Job`,
//! `Config`), what it reports while it runs (`Phase`, `Progress`), and what
//! it returns (`AddressNote`, `RunOutcome`).

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use super::{
    DEFAULT_ROUNDS, Locator, PortResult, Probe, RESPONDER_ROUNDS, Route, Unconfirmed, ignored,
};

/// An address to probe, with its IPv6 scope (the interface of a link-local
/// address; 0 for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The address.
    pub ip: IpAddr,
    /// The IPv6 scope id, 0 for none.
    pub scope_id: u32,
}

impl Target {
    /// An address without a scope.
    pub fn new(ip: IpAddr) -> Self {
        Target { ip, scope_id: 0 }
    }

    /// The socket address of `port` on this target.
    pub fn socket(self, port: u16) -> SocketAddr {
        match self.ip {
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, self.scope_id)),
            v4 => SocketAddr::new(v4, port),
        }
    }
}

/// One port of one address to probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    /// The address.
    pub address: IpAddr,
    /// The port.
    pub port: u16,
    /// How it is probed.
    pub probe: Probe,
}

/// How to probe.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most attempts in flight; `None` for as many as the open-file limit
    /// allows, up to [`DEFAULT_CONCURRENCY`](super::DEFAULT_CONCURRENCY).
    pub concurrency: Option<usize>,
    /// A bound on attempts in flight shared with other runs given the same
    /// semaphore: each attempt (locating's included) holds one permit
    /// while it waits for its evidence, and runs that find none free take
    /// turns, one attempt each, as permits come free.
    pub shared_limit: Option<Arc<tokio::sync::Semaphore>>,
    /// Most attempts started per second.
    pub rate: Option<f64>,
    /// A fixed timeout per attempt instead of the adaptive one.
    pub timeout: Option<Duration>,
    /// Retries for a silent port; `None` for one, raised on a lossy path.
    /// When given, it also caps the ICMP rate-limit rounds (each round sends
    /// every silent UDP port one more datagram), which are otherwise capped
    /// at [`DEFAULT_ROUNDS`] ([`RESPONDER_ROUNDS`] against a responder).
    pub retries: Option<u32>,
    /// Stop after this long and report what is known.
    pub max_time: Option<Duration>,
    /// SNMP v1/v2c community for the UDP 161 probe.
    pub snmp_community: String,
    /// After probing, find where blocked ports stop with TTL-limited probes.
    pub locate: bool,
    /// What locating keeps and shares: runs given the same one reuse each
    /// other's located answers and draw on one model of each router's ICMP
    /// allowance; `None` for one of this run's own.
    pub locator: Option<Arc<Locator>>,
    /// The secret shared with a far-side `portprobe listen`, for probes that
    /// speak its protocol.
    pub responder: Option<crate::wire::responder::Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            concurrency: None,
            shared_limit: None,
            rate: None,
            timeout: None,
            retries: None,
            max_time: None,
            snmp_community: "public".to_string(),
            locate: true,
            locator: None,
            responder: None,
        }
    }
}

impl Config {
    /// The cap on ICMP rate-limit rounds per address.
    pub fn max_rounds(&self) -> u32 {
        let default = if self.responder.is_some() {
            RESPONDER_ROUNDS
        } else {
            DEFAULT_ROUNDS
        };
        self.retries.unwrap_or(default)
    }
}

/// What a run is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Probing ports (first attempts and retries).
    Probing,
    /// Re-probing silent UDP ports slowly, because some host limits its ICMP
    /// errors (about one per second) and a closed port may hide behind the
    /// silence.
    Confirming {
        /// Silent UDP ports being confirmed.
        ports: usize,
        /// Addresses whose ports are being confirmed.
        addresses: usize,
        /// The highest round started so far.
        round: u32,
        /// The cap on rounds.
        max_rounds: u32,
    },
    /// Finding where blocked ports stop, with TTL-limited probes.
    Locating {
        /// Blocked ports (and UDP ports without a reply) being located.
        ports: usize,
        /// The router whose next ICMP error locating waits for, while it
        /// waits for one.
        waiting_for: Option<IpAddr>,
    },
}

/// Progress of a run, reported after every port's result and whenever the
/// phase changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Ports with a result.
    pub done: usize,
    /// Ports in the run.
    pub total: usize,
    /// Ports found blocked so far.
    pub blocked: usize,
    /// What the run is doing.
    pub phase: Phase,
}

/// What a run showed about one address as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressNote {
    /// The address.
    pub address: IpAddr,
    /// Routers or hosts that sent ICMP errors about UDP probes.
    pub icmp_senders: Vec<IpAddr>,
    /// Re-probing rounds spent on UDP ports that ICMP rate limiting may have
    /// silenced (0 when none were needed).
    pub icmp_rounds: u32,
    /// UDP ports that were silent at first and answered in those rounds.
    pub icmp_revealed: u32,
    /// UDP ports left unconfirmed when the rounds could not finish.
    pub icmp_unconfirmed: usize,
    /// Why they were left unconfirmed.
    pub icmp_unconfirmed_why: Option<Unconfirmed>,
    /// Time spent in those rounds.
    pub icmp_time: Duration,
    /// Whether a port answered only on a retry (a lossy path).
    pub loss_seen: bool,
    /// Smoothed round-trip time measured to the address.
    pub srtt: Option<Duration>,
    /// The path to the address as the control port's TTL-limited probes
    /// showed it, when blocked ports were located.
    pub route: Option<Route>,
}

/// The results of a run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// One result per probed port, sorted by address, transport and port.
    pub results: Vec<PortResult>,
    /// Ports never probed (the run was interrupted or ran out of time).
    pub unprobed: usize,
    /// The run was stopped from outside (Ctrl-C).
    pub interrupted: bool,
    /// `max_time` passed before the run finished.
    pub out_of_time: bool,
    /// Per-address observations.
    pub addresses: Vec<AddressNote>,
    /// Wall time of the run.
    pub duration: Duration,
    /// The first datagrams the run heard and did not count, and how many
    /// more (see [`ignored`]).
    pub ignored: (Vec<ignored::Ignored>, usize),
}
