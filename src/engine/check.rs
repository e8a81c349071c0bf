//! A whole check as one call: the ports of every resolved address probed
//! under one deadline and the stop signal, timed from when the check
//! began. Every front end (a run, a `--watch` round, a scrape) makes this
//! one call and renders what it returns.

use std::future::Future;

use tokio::time::Instant;

use super::{Config, Probe, Progress, RunOutcome, Target, run};

/// What one check probes, and within what.
#[derive(Debug)]
pub struct Check<'a> {
    /// Every address to probe, as resolved; an address given twice (two
    /// names for one host) is probed once.
    pub targets: &'a [Target],
    /// The ports, each with the probe the plan chose for it; with
    /// `cfg.responder` set, each is probed as a far-side responder's port
    /// instead.
    pub ports: &'a [(Probe, u16)],
    /// How to probe; its `max_time` is ignored for `deadline`.
    pub cfg: &'a Config,
    /// When the check began: the wait it reports counts from here, name
    /// resolution included.
    pub started: Instant,
    /// When the check must be done, locating included.
    pub deadline: Instant,
}

/// Runs `check`, reporting progress to `progress`, until every port has
/// its answer, the deadline passes or `stop` completes. The outcome's
/// `duration` counts from `check.started`.
pub async fn check(
    check: Check<'_>,
    progress: &mut (dyn FnMut(Progress) + Send),
    stop: impl Future<Output = ()>,
) -> RunOutcome {
    let ports: Vec<(Probe, u16)> = check
        .ports
        .iter()
        .map(|&(probe, port)| match check.cfg.responder {
            Some(_) => (Probe::responder(probe.transport()), port),
            None => (probe, port),
        })
        .collect();
    let cfg = Config {
        max_time: Some(check.deadline.saturating_duration_since(Instant::now())),
        ..check.cfg.clone()
    };
    let mut outcome = run(check.targets, &ports, &cfg, progress, stop).await;
    outcome.duration = check.started.elapsed();
    outcome
}
