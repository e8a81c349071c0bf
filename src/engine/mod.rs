//! The probe engine: resolving, scheduling, timeouts, retries and the socket
//! work of TCP connects, UDP probes and ICMP errors.
//!
//! The engine knows nothing of Apple products or of terminals, and never
//! prints: it takes a list of [`Job`]s and returns a [`PortResult`] for each,
//! reporting progress through a callback. It needs no privileges: TCP uses
//! ordinary connects and ICMP errors are read from each socket's error queue.

mod attempt;
mod icmp;
mod limits;
mod outcome;
mod resolve;
mod rtt;
mod scheduler;

use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

pub use limits::DEFAULT_CONCURRENCY;
pub use outcome::{IcmpCode, PortResult, Reason, State};
pub use resolve::{Family, ResolveError, literal, resolve};

use crate::port::Transport;

/// One port of one address to probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Job {
    /// The address.
    pub address: IpAddr,
    /// The transport.
    pub transport: Transport,
    /// The port.
    pub port: u16,
}

/// How to probe.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most attempts in flight; `None` for as many as the open-file limit
    /// allows, up to [`DEFAULT_CONCURRENCY`].
    pub concurrency: Option<usize>,
    /// Most attempts started per second.
    pub rate: Option<f64>,
    /// A fixed timeout per attempt instead of the adaptive one.
    pub timeout: Option<Duration>,
    /// Retries for a silent port; `None` for one, raised on a lossy path.
    pub retries: Option<u32>,
    /// Stop after this long and report what is known.
    pub max_time: Option<Duration>,
    /// SNMP v1/v2c community for the UDP 161 probe.
    pub snmp_community: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            concurrency: None,
            rate: None,
            timeout: None,
            retries: None,
            max_time: None,
            snmp_community: "public".to_string(),
        }
    }
}

/// Progress of a run, reported after every port's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Ports with a result.
    pub done: usize,
    /// Ports in the run.
    pub total: usize,
    /// Ports found blocked so far.
    pub blocked: usize,
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
    /// Time spent in those rounds.
    pub icmp_time: Duration,
    /// Whether a port answered only on a retry (a lossy path).
    pub loss_seen: bool,
    /// Smoothed round-trip time measured to the address.
    pub srtt: Option<Duration>,
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
}

/// A local failure that stops a run (not a probe outcome).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A socket could not be created or used.
    #[error("{0}")]
    Socket(#[source] std::io::Error),
}

/// The local address that probes to `target` leave from (no packet is sent:
/// a UDP socket is connected, which only consults the routing table).
pub fn source_address(target: IpAddr) -> IpAddr {
    let unspecified: IpAddr = if target.is_ipv4() {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    };
    UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .and_then(|s| {
            s.connect(SocketAddr::new(target, 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(unspecified)
}

/// The concurrency a run will use: the configured one, bounded by what the
/// open-file limit allows (raised to the hard limit first).
pub fn effective_concurrency(cfg: &Config) -> usize {
    let budget = limits::raise_nofile_limit();
    cfg.concurrency
        .unwrap_or(DEFAULT_CONCURRENCY)
        .min(budget)
        .max(1)
}

/// Probes every job and returns the results. `progress` is called after each
/// result; when `stop` completes the run ends early with what it has.
pub async fn run(
    jobs: Vec<Job>,
    cfg: &Config,
    progress: &mut dyn FnMut(Progress),
    stop: impl Future<Output = ()>,
) -> Result<RunOutcome, EngineError> {
    let limit = effective_concurrency(cfg);
    let mut addresses: Vec<IpAddr> = Vec::new();
    for j in &jobs {
        if !addresses.contains(&j.address) {
            addresses.push(j.address);
        }
    }
    let addresses = addresses
        .into_iter()
        .map(|a| (a, source_address(a)))
        .collect();
    scheduler::Scheduler::new(jobs, cfg, addresses, limit)
        .run(progress, stop)
        .await
}
