//! One probe for the exporter or the page: the request checked against the
//! catalog, the target resolved and checked against the allow-list before
//! anything is sent to it, and the engine run into a report under the
//! concurrency limit every request shares: each attempt holds one slot of
//! it while it waits, and requests that find none free take turns.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::allow::AllowList;
use super::query::ProbeQuery;
use crate::catalog::{Catalog, Plan, Product};
use crate::engine::{self, Config, Family, Probe};
use crate::report::{Report, words};

/// The most probes one request may ask for: ports times the target's
/// addresses, enough for every port of both transports on an IPv4 and an
/// IPv6 address.
pub const MAX_PROBES: usize = 4 * 65535;

/// Why a probe was not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRun {
    /// The request names something the catalog does not know (HTTP 400).
    BadRequest(String),
    /// The target is outside the allow-list, or is no single host (HTTP
    /// 403); nothing was sent to it.
    Forbidden(String),
    /// Not one slot of the concurrency limit came free before the
    /// deadline: not a port was probed (HTTP 503).
    Busy,
}

/// A probe that ran, or a target that did not resolve.
#[derive(Debug)]
pub struct Probed {
    /// The report.
    pub report: Report,
    /// The target resolved and passed the allow-list; false when it did
    /// not resolve (and nothing was sent).
    pub allowed: bool,
}

/// How one request probes: what the module of the configuration file
/// says, or the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Locate blocked ports; `None` for yes.
    pub locate: Option<bool>,
    /// Retries for a silent port; `None` for the engine's default.
    pub retries: Option<u32>,
    /// Which addresses of the target are probed.
    pub family: Family,
    /// The secret of a far-side `portprobe listen`: every port is probed
    /// with its protocol.
    pub responder: Option<crate::wire::responder::Secret>,
}

/// What every probe shares.
#[derive(Debug)]
pub struct Prober {
    /// The catalog products are looked up in.
    pub catalog: Arc<Catalog>,
    /// Probes in flight, over every request: one permit per attempt.
    pub permits: Arc<Semaphore>,
    /// The size of `permits`.
    pub limit: usize,
    /// What every request's locating keeps and shares: answers located for
    /// one scrape are given to the next (with their age), and concurrent
    /// requests draw on one model of each router's ICMP allowance.
    pub locator: Arc<engine::Locator>,
}

/// A probe checked and planned, not yet sent.
#[derive(Debug)]
pub struct Prepared {
    target: String,
    started: Instant,
    deadline: Instant,
    options: Options,
    plan: Plan,
    names: Vec<String>,
    resolved: Result<engine::Resolved, String>,
}

impl Prepared {
    /// The products asked for, by the catalog's names.
    pub fn products(&self) -> &[String] {
        &self.names
    }

    /// Ports planned per address.
    pub fn ports(&self) -> usize {
        self.plan.ports.len()
    }

    /// The addresses to be probed (none when the target did not resolve).
    pub fn addresses(&self) -> usize {
        self.resolved.as_ref().map_or(0, |r| r.targets.len())
    }
}

impl Prober {
    /// Checks `q` before anything is sent: the target first (resolved
    /// in `options`' family and checked against `allow`), then what is
    /// asked, looked up and planned off the async workers, and its size.
    /// `budget` counts from here.
    pub async fn prepare(
        &self,
        q: &ProbeQuery,
        budget: Duration,
        options: Options,
        allow: &AllowList,
    ) -> Result<Prepared, NotRun> {
        let started = Instant::now();
        let deadline = engine::later(started, budget);
        let resolved = self
            .check_target(&q.target, options.family, allow, deadline)
            .await?;
        let (plan, names) = self.plan(q).await?;
        if let Ok(r) = &resolved {
            within_size(plan.ports.len(), r.targets.len())?;
        }
        Ok(Prepared {
            target: q.target.clone(),
            started,
            deadline,
            options,
            plan,
            names,
            resolved,
        })
    }

    /// Runs a prepared probe into its report, under the shared limit,
    /// within what is left of its budget, locating blocked ports when it
    /// was prepared to.
    pub async fn run(&self, p: Prepared) -> Result<Probed, NotRun> {
        let Prepared {
            target,
            started,
            deadline,
            options,
            plan,
            names,
            resolved,
        } = p;
        let resolved = match resolved {
            Ok(r) => r,
            Err(why) => {
                // Nothing to probe: the check says so, timed like any other.
                let nothing = engine::Check {
                    targets: &[],
                    ports: &[],
                    cfg: &Config::default(),
                    started,
                    deadline,
                };
                let outcome = engine::check(nothing, &mut |_| {}, std::future::pending()).await;
                let report = report(vec![(target, Err(why))], names, plan, outcome, started);
                return Ok(Probed {
                    report: report.await?,
                    allowed: false,
                });
            }
        };
        let ports: Vec<(Probe, u16)> = plan.ports.iter().map(|p| (p.probe, p.port)).collect();
        let cfg = Config {
            concurrency: Some(self.limit),
            shared_limit: Some(Arc::clone(&self.permits)),
            retries: options.retries,
            locate: options.locate.unwrap_or(true),
            locator: Some(Arc::clone(&self.locator)),
            responder: options.responder,
            ..Config::default()
        };
        let check = engine::Check {
            targets: &resolved.targets,
            ports: &ports,
            cfg: &cfg,
            started,
            deadline,
        };
        let outcome = engine::check(check, &mut |_| {}, std::future::pending()).await;
        if outcome.results.is_empty() && outcome.unprobed > 0 {
            return Err(NotRun::Busy);
        }
        let report = report(vec![(target, Ok(resolved))], names, plan, outcome, started);
        Ok(Probed {
            report: report.await?,
            allowed: true,
        })
    }

    /// `target` resolved within `deadline` and checked: refused when it is
    /// no single host or outside the allow-list, in words that do not say
    /// where a name points (that is not the visitor's to learn); its
    /// addresses, or why it did not resolve.
    async fn check_target(
        &self,
        target: &str,
        family: Family,
        allow: &AllowList,
        deadline: Instant,
    ) -> Result<Result<engine::Resolved, String>, NotRun> {
        // A `.local` name the system cannot resolve is asked for by
        // multicast on every link: only for a name allowed as such.
        if target
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .ends_with(".local")
            && !allow.names(target)
        {
            return Err(NotRun::Forbidden(
                "a .local name is probed only when --allow names it: asking for it sends multicast queries on every link"
                    .to_string(),
            ));
        }
        let hosts = [target.to_string()];
        let resolved = engine::resolve_all(&hosts, family, Some(deadline), std::future::pending())
            .await
            .pop()
            .expect("one result per host");
        let resolved = match resolved {
            Ok(r) => r,
            Err(
                engine::ResolveError::NotOneHost { .. } | engine::ResolveError::MdnsLoopback { .. },
            ) => {
                return Err(NotRun::Forbidden(
                    "the target is not a single host that may be probed (a broadcast, multicast or unspecified address, or a loopback address answered by multicast DNS): nothing was sent"
                        .to_string(),
                ));
            }
            Err(e) => return Ok(Err(words::error_chain(&e))),
        };
        let addresses: Vec<std::net::IpAddr> = resolved.targets.iter().map(|t| t.ip).collect();
        let by_mdns = matches!(resolved.by, engine::ResolvedBy::Mdns { .. });
        match allow.permits(target, &addresses, by_mdns) {
            Ok(()) => Ok(Ok(resolved)),
            Err(refused) if refused.address.is_some() => Err(NotRun::Forbidden(
                "the target is not in this exporter's allow-list: nothing was sent (allow it with --allow)"
                    .to_string(),
            )),
            Err(_) => Err(NotRun::Forbidden(
                "the target has no address in this exporter's allow-list: nothing was sent"
                    .to_string(),
            )),
        }
    }

    /// The products of `q` looked up and its plan made, on a blocking
    /// thread: a plan may hold every port of both transports.
    async fn plan(&self, q: &ProbeQuery) -> Result<(Plan, Vec<String>), NotRun> {
        let catalog = Arc::clone(&self.catalog);
        let (asked, items) = (q.products.clone(), q.ports.clone());
        blocking(move || {
            let mut products: Vec<&Product> = Vec::new();
            for name in &asked {
                let p = catalog
                    .find_product(name)
                    .map_err(|e| NotRun::BadRequest(words::error_chain(&e)))?;
                if !products.iter().any(|x| x.name == p.name) {
                    products.push(p);
                }
            }
            let names = products.iter().map(|p| p.name.clone()).collect();
            Ok((catalog.plan(&products, &items), names))
        })
        .await?
    }
}

/// Refuses a request of more than [`MAX_PROBES`] probes.
fn within_size(ports: usize, addresses: usize) -> Result<(), NotRun> {
    let probes = ports.saturating_mul(addresses);
    if probes > MAX_PROBES {
        return Err(NotRun::BadRequest(format!(
            "this asks for {probes} probes (ports times the target's addresses), more than {MAX_PROBES}: ask for fewer ports"
        )));
    }
    Ok(())
}

/// The report of a run that began at `started`, put together on a
/// blocking thread.
async fn report(
    targets: Vec<(String, Result<engine::Resolved, String>)>,
    names: Vec<String>,
    plan: Plan,
    outcome: engine::RunOutcome,
    started: Instant,
) -> Result<Report, NotRun> {
    blocking(move || {
        let mut report = Report::new(targets, names, &plan, outcome);
        report.ready_after(started.elapsed());
        report
    })
    .await
}

/// Runs `f` off the async workers (`Busy` only when the runtime is
/// shutting down; a panic goes on as one).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NotRun> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Ok(v),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(NotRun::Busy),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_of_both_transports_on_two_addresses_is_the_most() {
        assert!(within_size(2 * 65535, 2).is_ok());
        assert!(within_size(2 * 65535, 1).is_ok());
        let Err(NotRun::BadRequest(why)) = within_size(2 * 65535, 3) else {
            panic!("three addresses of every port allowed");
        };
        assert!(
            why.contains("393210 probes") && why.contains("more than 262140"),
            "{why}"
        );
        assert!(within_size(usize::MAX, usize::MAX).is_err());
    }
}
