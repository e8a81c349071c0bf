//! The report model: probe results joined with the catalog's names, grouped
//! per target, with summaries, host-level verdicts and the exit status.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::catalog::{NotProbed, Plan, ServiceGroup};
use crate::engine::{AddressNote, PortResult, Reason, Resolved, ResolvedBy, RunOutcome, State};
use crate::port::Transport;

use super::Status;

/// One port's result with the names that explain why it was probed.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The engine's result.
    pub result: PortResult,
    /// The service's short name.
    pub service: String,
    /// The most specific products that need the port (see
    /// [`PlannedPort::products`](crate::catalog::PlannedPort::products)).
    pub products: Vec<String>,
}

/// Counts of states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `open`.
    pub open: usize,
    /// `closed`.
    pub closed: usize,
    /// `filtered`.
    pub filtered: usize,
    /// `open|filtered`.
    pub open_filtered: usize,
}

impl Summary {
    /// Counts the states of `rows`.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Summary {
        let mut s = Summary::default();
        for r in rows {
            match r.result.state {
                State::Open => s.open += 1,
                State::Closed => s.closed += 1,
                State::Filtered => s.filtered += 1,
                State::OpenFiltered => s.open_filtered += 1,
            }
        }
        s
    }

    /// Ports blocked (exactly the filtered ones).
    pub fn blocked(&self) -> usize {
        self.filtered
    }

    /// All ports counted.
    pub fn total(&self) -> usize {
        self.open + self.closed + self.filtered + self.open_filtered
    }

    /// Adds another summary's counts.
    pub fn add(&mut self, other: Summary) {
        self.open += other.open;
        self.closed += other.closed;
        self.filtered += other.filtered;
        self.open_filtered += other.open_filtered;
    }
}

/// What one address as a whole looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostVerdict {
    /// Some port answered.
    Answering,
    /// Not one port answered, TCP ports included: the host is down,
    /// unreachable, or everything is dropped on the way.
    Silent,
    /// An ICMP error said the host or its network cannot be reached.
    Unreachable {
        /// The evidence.
        reason: Reason,
        /// Who said so.
        from: Option<IpAddr>,
    },
}

/// One target (a host argument) and its results.
#[derive(Clone, Debug)]
pub struct TargetReport {
    /// The host as given.
    pub host: String,
    /// The addresses it resolved to.
    pub addresses: Vec<IpAddr>,
    /// How they were found (`None` when the host could not be resolved).
    pub resolved_by: Option<ResolvedBy>,
    /// Why it could not be probed (resolution failure).
    pub error: Option<String>,
    /// One row per (address, port), sorted by address, transport, port.
    pub rows: Vec<Row>,
    /// The plan's service groups (none when the target could not be
    /// resolved).
    pub services: Vec<ServiceGroup>,
    /// Per-address observations from the engine.
    pub notes: Vec<AddressNote>,
    /// Ports of this target never probed (interrupted or out of time).
    pub unprobed: usize,
}

impl TargetReport {
    /// Counts of this target's states.
    pub fn summary(&self) -> Summary {
        Summary::of(&self.rows)
    }

    /// The verdict for one of the target's addresses.
    pub fn verdict(&self, address: IpAddr) -> HostVerdict {
        let rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.result.address == address)
            .collect();
        if let Some(r) = rows
            .iter()
            .find(|r| r.result.reason.is_host_level() && r.result.state == State::Filtered)
        {
            let answering = rows
                .iter()
                .any(|r| matches!(r.result.state, State::Open | State::Closed));
            if !answering {
                return HostVerdict::Unreachable {
                    reason: r.result.reason,
                    from: r.result.reason_from,
                };
            }
        }
        // UDP silence alone proves little (services may simply not reply);
        // a host is silent when TCP too got no answer anywhere.
        let silent = rows.iter().any(|r| r.result.transport == Transport::Tcp)
            && rows.iter().all(|r| r.result.reason == Reason::NoResponse);
        if silent {
            HostVerdict::Silent
        } else {
            HostVerdict::Answering
        }
    }

    /// The exit status this target alone would give.
    pub fn status(&self) -> Status {
        if self.error.is_some() || self.unprobed > 0 {
            return Status::Unknown;
        }
        status_of(self.summary())
    }

    /// The verdict per service group, in the plan's order: each group's
    /// rows (the results whose products name it), their counts, and the
    /// status they alone would give, UNKNOWN when some of its ports have no
    /// result.
    pub fn by_product(&self) -> Vec<ProductVerdict<'_>> {
        let index: HashMap<&str, usize> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, g)| (g.product.as_str(), i))
            .collect();
        let mut rows: Vec<Vec<&Row>> = vec![Vec::new(); self.services.len()];
        for row in &self.rows {
            for product in &row.products {
                if let Some(&i) = index.get(product.as_str()) {
                    rows[i].push(row);
                }
            }
        }
        self.services
            .iter()
            .zip(rows)
            .map(|(group, rows)| {
                let summary = Summary::of(rows.iter().copied());
                let expected = group.ports * self.addresses.len();
                let status = if rows.len() < expected {
                    Status::Unknown
                } else {
                    status_of(summary)
                };
                ProductVerdict {
                    product: &group.product,
                    includes_others: group.includes_others,
                    rows,
                    summary,
                    status,
                }
            })
            .collect()
    }
}

/// One service group's verdict on one target.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductVerdict<'a> {
    /// The product's canonical name.
    pub product: &'a str,
    /// Whether it includes other service groups, judged apart (see
    /// [`ServiceGroup::includes_others`]).
    pub includes_others: bool,
    /// Its results, in the target's order.
    pub rows: Vec<&'a Row>,
    /// Counts of their states.
    pub summary: Summary,
    /// OK, WARNING or CRITICAL as the exit codes define them, for these
    /// rows alone; UNKNOWN when some of the group's ports were not probed.
    pub status: Status,
}

impl ProductVerdict<'_> {
    /// The group's blocked rows.
    pub fn blocked(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().copied().filter(|r| r.result.blocked())
    }
}

/// OK when everything is open; WARNING when something is closed or
/// unconfirmed; CRITICAL when something is blocked.
pub fn status_of(s: Summary) -> Status {
    if s.filtered > 0 {
        Status::Critical
    } else if s.closed > 0 || s.open_filtered > 0 {
        Status::Warning
    } else {
        Status::Ok
    }
}

/// A whole run: every target, what was asked, how long it took.
#[derive(Clone, Debug)]
pub struct Report {
    /// The targets, in the order given.
    pub targets: Vec<TargetReport>,
    /// Products asked for (canonical names).
    pub products: Vec<String>,
    /// Ranges the asked products leave out (see the plan).
    pub not_probed: Vec<NotProbed>,
    /// TCP and UDP ports probed per address.
    pub planned: (usize, usize),
    /// Wall time of the run.
    pub duration: Duration,
    /// The run was interrupted (Ctrl-C or SIGTERM).
    pub interrupted: bool,
    /// `--max-time` passed before the run finished.
    pub out_of_time: bool,
}

impl Report {
    /// Joins an engine run with the plan's names. `targets` lists each host
    /// with its addresses and how they were found (or the error that
    /// prevented resolving it).
    pub fn new(
        targets: Vec<(String, Result<Resolved, String>)>,
        products: Vec<String>,
        plan: &Plan,
        outcome: RunOutcome,
    ) -> Report {
        let names: HashMap<(Transport, u16), (&str, &[String])> = plan
            .ports
            .iter()
            .map(|p| {
                (
                    (p.transport, p.port),
                    (p.service.as_str(), p.products.as_slice()),
                )
            })
            .collect();
        let row = |r: &PortResult| {
            let (service, products) = names
                .get(&(r.transport, r.port))
                .copied()
                .unwrap_or(("unlisted", &[]));
            Row {
                result: r.clone(),
                service: service.to_string(),
                products: products.to_vec(),
            }
        };
        let per_address = plan.ports.len();
        let targets = targets
            .into_iter()
            .map(|(host, resolved)| match resolved {
                Err(error) => TargetReport {
                    host,
                    addresses: Vec::new(),
                    resolved_by: None,
                    error: Some(error),
                    rows: Vec::new(),
                    services: Vec::new(),
                    notes: Vec::new(),
                    unprobed: 0,
                },
                Ok(resolved) => {
                    let addresses: Vec<IpAddr> = resolved.targets.iter().map(|t| t.ip).collect();
                    let rows: Vec<Row> = outcome
                        .results
                        .iter()
                        .filter(|r| addresses.contains(&r.address))
                        .map(row)
                        .collect();
                    let notes = outcome
                        .addresses
                        .iter()
                        .filter(|n| addresses.contains(&n.address))
                        .cloned()
                        .collect();
                    let unprobed = (addresses.len() * per_address).saturating_sub(rows.len());
                    TargetReport {
                        host,
                        addresses,
                        resolved_by: Some(resolved.by),
                        error: None,
                        rows,
                        services: plan.groups.clone(),
                        notes,
                        unprobed,
                    }
                }
            })
            .collect();
        Report {
            targets,
            products,
            not_probed: plan.not_probed.clone(),
            planned: plan.counts(),
            duration: outcome.duration,
            interrupted: outcome.interrupted,
            out_of_time: outcome.out_of_time,
        }
    }

    /// Counts over every target.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for t in &self.targets {
            s.add(t.summary());
        }
        s
    }

    /// One target's status in this run: UNKNOWN when the run was
    /// interrupted, else the target's own.
    pub fn target_status(&self, t: &TargetReport) -> Status {
        if self.interrupted {
            Status::Unknown
        } else {
            t.status()
        }
    }

    /// Whether every planned port of `t` has a result.
    pub fn target_complete(&self, t: &TargetReport) -> bool {
        !self.interrupted && t.error.is_none() && t.unprobed == 0
    }

    /// Whether every planned port of every target has a result.
    pub fn complete(&self) -> bool {
        self.targets.iter().all(|t| self.target_complete(t))
    }

    /// The exit status: the worst of the targets', UNKNOWN when incomplete.
    pub fn status(&self) -> Status {
        self.targets
            .iter()
            .map(|t| self.target_status(t))
            .max()
            .unwrap_or(Status::Unknown)
    }
}
