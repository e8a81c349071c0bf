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
            s.count(r.result.state);
        }
        s
    }

    /// Counts one more port in `state`.
    pub fn count(&mut self, state: State) {
        match state {
            State::Open => self.open += 1,
            State::Closed => self.closed += 1,
            State::Filtered => self.filtered += 1,
            State::OpenFiltered => self.open_filtered += 1,
        }
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
///
/// Built by [`Report::new`], or by [`TargetReport::probed`] and
/// [`TargetReport::unresolved`]: each address's verdict, the counts and
/// each service group's verdict are judged once, there, from the rows, so
/// that every renderer reads them in constant time. The fields are for
/// reading; a report whose rows change afterwards keeps the verdicts it was
/// built with.
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
    /// What the rows add up to, judged when the report was built.
    judged: Judged,
}

/// The verdicts of one target, judged once from its rows.
#[derive(Clone, Debug, Default)]
struct Judged {
    /// Counts of every row's state.
    summary: Summary,
    /// One verdict per address, in the order of `addresses`.
    hosts: Vec<HostVerdict>,
    /// One per service group, in the order of `services`.
    groups: Vec<GroupJudged>,
}

/// One service group's rows and what they add up to.
#[derive(Clone, Debug)]
struct GroupJudged {
    /// Indices into the target's rows, in their order.
    rows: Vec<usize>,
    summary: Summary,
    status: Status,
}

/// What one address's rows show, gathered in one pass.
#[derive(Clone, Copy, Default)]
struct HostEvidence {
    /// The first blocked row whose reason concerns the whole host.
    host_level: Option<(Reason, Option<IpAddr>)>,
    /// Some port is open or closed.
    answering: bool,
    /// Some port is a TCP port.
    tcp: bool,
    /// Some port got an answer of any kind (not `no-response`).
    any_reply: bool,
}

impl HostEvidence {
    fn add(&mut self, r: &PortResult) {
        if self.host_level.is_none() && r.reason.is_host_level() && r.state == State::Filtered {
            self.host_level = Some((r.reason, r.reason_from));
        }
        self.answering |= matches!(r.state, State::Open | State::Closed);
        self.tcp |= r.transport == Transport::Tcp;
        self.any_reply |= r.reason != Reason::NoResponse;
    }

    fn verdict(self) -> HostVerdict {
        match self.host_level {
            Some((reason, from)) if !self.answering => HostVerdict::Unreachable { reason, from },
            // UDP silence alone proves little (services may simply not
            // reply); a host is silent when TCP too got no answer anywhere.
            _ if self.tcp && !self.any_reply => HostVerdict::Silent,
            _ => HostVerdict::Answering,
        }
    }
}

impl Judged {
    /// Judges `rows` of `addresses` against the plan's `services`, in one
    /// pass over the rows.
    fn of(addresses: &[IpAddr], rows: &[Row], services: &[ServiceGroup]) -> Judged {
        let address_index: HashMap<IpAddr, usize> =
            addresses.iter().enumerate().map(|(i, &a)| (a, i)).collect();
        let group_index: HashMap<&str, usize> = services
            .iter()
            .enumerate()
            .map(|(i, g)| (g.product.as_str(), i))
            .collect();
        let mut evidence = vec![HostEvidence::default(); addresses.len()];
        let mut groups = vec![
            GroupJudged {
                rows: Vec::new(),
                summary: Summary::default(),
                status: Status::Unknown,
            };
            services.len()
        ];
        let mut summary = Summary::default();
        for (i, row) in rows.iter().enumerate() {
            summary.count(row.result.state);
            if let Some(&a) = address_index.get(&row.result.address) {
                evidence[a].add(&row.result);
            }
            for product in &row.products {
                if let Some(&g) = group_index.get(product.as_str()) {
                    groups[g].rows.push(i);
                    groups[g].summary.count(row.result.state);
                }
            }
        }
        for (group, service) in groups.iter_mut().zip(services) {
            let expected = service.ports * addresses.len();
            group.status = if group.rows.len() < expected {
                Status::Unknown
            } else {
                status_of(group.summary)
            };
        }
        Judged {
            summary,
            hosts: evidence.into_iter().map(HostEvidence::verdict).collect(),
            groups,
        }
    }
}

impl TargetReport {
    /// A target that resolved and was probed: its rows (sorted by address,
    /// transport, port) judged here, once.
    pub fn probed(
        host: String,
        addresses: Vec<IpAddr>,
        resolved_by: ResolvedBy,
        rows: Vec<Row>,
        services: Vec<ServiceGroup>,
        notes: Vec<AddressNote>,
        unprobed: usize,
    ) -> TargetReport {
        let judged = Judged::of(&addresses, &rows, &services);
        TargetReport {
            host,
            addresses,
            resolved_by: Some(resolved_by),
            error: None,
            rows,
            services,
            notes,
            unprobed,
            judged,
        }
    }

    /// A target that could not be resolved, and why.
    pub fn unresolved(host: String, error: String) -> TargetReport {
        TargetReport {
            host,
            addresses: Vec::new(),
            resolved_by: None,
            error: Some(error),
            rows: Vec::new(),
            services: Vec::new(),
            notes: Vec::new(),
            unprobed: 0,
            judged: Judged::default(),
        }
    }

    /// Counts of this target's states.
    pub fn summary(&self) -> Summary {
        self.judged.summary
    }

    /// The verdict for one of the target's addresses (`Answering` for an
    /// address that is not the target's).
    pub fn verdict(&self, address: IpAddr) -> HostVerdict {
        self.verdicts()
            .find(|(a, _)| *a == address)
            .map_or(HostVerdict::Answering, |(_, v)| v.clone())
    }

    /// Each address with its verdict, in the order of `addresses`.
    pub fn verdicts(&self) -> impl Iterator<Item = (IpAddr, &HostVerdict)> {
        self.addresses.iter().copied().zip(&self.judged.hosts)
    }

    /// Whether the target has addresses and not one of them answers: what
    /// is wrong is said once for the host, not per port or service.
    pub fn host_level(&self) -> bool {
        !self.judged.hosts.is_empty()
            && self
                .judged
                .hosts
                .iter()
                .all(|v| *v != HostVerdict::Answering)
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
        self.services
            .iter()
            .zip(&self.judged.groups)
            .map(|(group, judged)| ProductVerdict {
                product: &group.product,
                includes_others: group.includes_others,
                rows: judged.rows.iter().map(|&i| &self.rows[i]).collect(),
                summary: judged.summary,
                status: judged.status,
            })
            .collect()
    }

    /// The products with a blocked port, in the plan's order.
    pub fn blocked_products(&self) -> impl Iterator<Item = &str> {
        self.services
            .iter()
            .zip(&self.judged.groups)
            .filter(|(_, judged)| judged.summary.blocked() > 0)
            .map(|(group, _)| group.product.as_str())
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
    /// From the run's start until its last probe was done, resolving the
    /// targets included.
    pub probing: Duration,
    /// From the run's start until the report was ready: the time its user
    /// waited. [`Report::new`] makes it `probing`; whoever builds the report
    /// sets it with [`Report::ready_after`].
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
                Err(error) => TargetReport::unresolved(host, error),
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
                    TargetReport::probed(
                        host,
                        addresses,
                        resolved.by,
                        rows,
                        plan.groups.clone(),
                        notes,
                        unprobed,
                    )
                }
            })
            .collect();
        Report {
            targets,
            products,
            not_probed: plan.not_probed.clone(),
            planned: plan.counts(),
            probing: outcome.duration,
            duration: outcome.duration,
            interrupted: outcome.interrupted,
            out_of_time: outcome.out_of_time,
        }
    }

    /// Records that the report was ready `elapsed` after the run's start
    /// (never before its probing was done).
    pub fn ready_after(&mut self, elapsed: Duration) {
        self.duration = elapsed.max(self.probing);
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3));
    const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

    fn row(address: IpAddr, transport: Transport, port: u16, state: State, reason: Reason) -> Row {
        Row {
            result: PortResult::new(
                address,
                crate::catalog::probe_for(transport, port),
                port,
                state,
                reason,
            ),
            service: "svc".to_string(),
            products: vec!["Mail".to_string()],
        }
    }

    fn open(address: IpAddr, port: u16) -> Row {
        row(address, Transport::Tcp, port, State::Open, Reason::SynAck)
    }

    fn dropped(address: IpAddr, transport: Transport, port: u16) -> Row {
        let state = match transport {
            Transport::Tcp => State::Filtered,
            Transport::Udp => State::OpenFiltered,
        };
        row(address, transport, port, state, Reason::NoResponse)
    }

    fn from(mut r: Row, sender: IpAddr) -> Row {
        r.result.reason_from = Some(sender);
        r
    }

    fn group(product: &str, ports: usize) -> ServiceGroup {
        ServiceGroup {
            product: product.to_string(),
            ports,
            includes_others: false,
        }
    }

    /// A target of `addresses` whose rows all name Mail, one Mail port per
    /// row of the first address.
    fn target(addresses: &[IpAddr], rows: Vec<Row>) -> TargetReport {
        let ports = rows
            .iter()
            .filter(|r| r.result.address == addresses[0])
            .count();
        TargetReport::probed(
            "server.local".to_string(),
            addresses.to_vec(),
            ResolvedBy::Literal,
            rows,
            vec![group("Mail", ports)],
            Vec::new(),
            0,
        )
    }

    fn report(targets: Vec<TargetReport>) -> Report {
        Report {
            targets,
            products: vec!["Mail".to_string()],
            not_probed: Vec::new(),
            planned: (1, 0),
            probing: Duration::from_millis(100),
            duration: Duration::from_millis(100),
            interrupted: false,
            out_of_time: false,
        }
    }

    #[test]
    fn every_host_verdict() {
        let answering = target(&[A], vec![open(A, 25), dropped(A, Transport::Tcp, 587)]);
        assert_eq!(answering.verdict(A), HostVerdict::Answering);

        let silent = target(
            &[A],
            vec![
                dropped(A, Transport::Tcp, 25),
                dropped(A, Transport::Udp, 500),
            ],
        );
        assert_eq!(silent.verdict(A), HostVerdict::Silent);
        assert!(silent.host_level());

        // UDP silence alone proves little: the host is not called silent.
        let udp_only = target(&[A], vec![dropped(A, Transport::Udp, 500)]);
        assert_eq!(udp_only.verdict(A), HostVerdict::Answering);

        // The first ICMP error that concerns the whole host is the evidence.
        let unreachable = target(
            &[A],
            vec![
                dropped(A, Transport::Tcp, 24),
                from(
                    row(
                        A,
                        Transport::Tcp,
                        25,
                        State::Filtered,
                        Reason::HostUnreachable,
                    ),
                    ROUTER,
                ),
                from(
                    row(
                        A,
                        Transport::Tcp,
                        26,
                        State::Filtered,
                        Reason::NetUnreachable,
                    ),
                    B,
                ),
            ],
        );
        assert_eq!(
            unreachable.verdict(A),
            HostVerdict::Unreachable {
                reason: Reason::HostUnreachable,
                from: Some(ROUTER)
            }
        );
        let no_route = target(
            &[A],
            vec![row(A, Transport::Tcp, 25, State::Filtered, Reason::NoRoute)],
        );
        assert_eq!(
            no_route.verdict(A),
            HostVerdict::Unreachable {
                reason: Reason::NoRoute,
                from: None
            }
        );

        // A port that answers makes a host-level error one port's.
        let partly = target(
            &[A],
            vec![
                from(
                    row(
                        A,
                        Transport::Tcp,
                        25,
                        State::Filtered,
                        Reason::HostProhibited,
                    ),
                    ROUTER,
                ),
                row(A, Transport::Tcp, 26, State::Closed, Reason::ConnRefused),
            ],
        );
        assert_eq!(partly.verdict(A), HostVerdict::Answering);
        // An address that is not the target's has no evidence against it.
        assert_eq!(partly.verdict(B), HostVerdict::Answering);

        let nothing = TargetReport::unresolved("nosuch.example".to_string(), "no".to_string());
        assert_eq!(nothing.verdicts().count(), 0);
        assert!(!nothing.host_level());
    }

    #[test]
    fn partial_reachability_is_judged_per_address() {
        // A answers; B is silent on every port.
        let t = target(
            &[A, B],
            vec![
                open(A, 25),
                open(A, 587),
                dropped(B, Transport::Tcp, 25),
                dropped(B, Transport::Tcp, 587),
            ],
        );
        let verdicts: Vec<(IpAddr, HostVerdict)> =
            t.verdicts().map(|(a, v)| (a, v.clone())).collect();
        assert_eq!(
            verdicts,
            [(A, HostVerdict::Answering), (B, HostVerdict::Silent)]
        );
        assert!(!t.host_level(), "one address answers");
        assert_eq!(
            t.summary(),
            Summary {
                open: 2,
                filtered: 2,
                ..Summary::default()
            }
        );
        assert_eq!(t.status(), Status::Critical);
        let mail = &t.by_product()[0];
        assert_eq!((mail.rows.len(), mail.status), (4, Status::Critical));
        assert_eq!(mail.blocked().count(), 2);
        assert_eq!(t.blocked_products().collect::<Vec<_>>(), ["Mail"]);
    }

    #[test]
    fn every_product_verdict() {
        let mut web = open(A, 80);
        web.products = vec!["Web Service".to_string(), "NetBoot".to_string()];
        let mut tftp = row(A, Transport::Udp, 69, State::Open, Reason::UdpResponse);
        tftp.products = vec!["NetBoot".to_string()];
        let mut vpn = dropped(A, Transport::Udp, 500);
        vpn.products = vec!["VPN".to_string()];
        let mut afp = row(A, Transport::Tcp, 548, State::Closed, Reason::ConnRefused);
        afp.products = vec!["File Sharing".to_string()];
        let smtp = dropped(A, Transport::Tcp, 25);
        let mut unlisted = open(A, 9);
        unlisted.products = Vec::new();
        let services = vec![
            group("Mail", 1),
            group("Web Service", 1),
            group("NetBoot", 3),
            group("VPN", 1),
            group("File Sharing", 1),
            group("Xgrid", 0),
        ];
        let t = TargetReport::probed(
            "server.local".to_string(),
            vec![A],
            ResolvedBy::Literal,
            vec![unlisted, smtp, web, afp, tftp, vpn],
            services,
            Vec::new(),
            0,
        );
        let seen: Vec<(&str, Status, Vec<u16>)> = t
            .by_product()
            .iter()
            .map(|g| {
                (
                    g.product,
                    g.status,
                    g.rows.iter().map(|r| r.result.port).collect(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("Mail", Status::Critical, vec![25]),
                ("Web Service", Status::Ok, vec![80]),
                // Three ports planned, two with a result.
                ("NetBoot", Status::Unknown, vec![80, 69]),
                ("VPN", Status::Warning, vec![500]),
                ("File Sharing", Status::Warning, vec![548]),
                ("Xgrid", Status::Ok, vec![]),
            ]
        );
        let vpn = &t.by_product()[3];
        assert_eq!(vpn.summary.open_filtered, 1);
        assert_eq!(t.blocked_products().collect::<Vec<_>>(), ["Mail"]);
        assert_eq!(t.summary().total(), 6);
    }

    #[test]
    fn the_exit_status() {
        let ok = || target(&[A], vec![open(A, 25)]);
        let closed = target(
            &[A],
            vec![row(
                A,
                Transport::Tcp,
                25,
                State::Closed,
                Reason::ConnRefused,
            )],
        );
        let silent_udp = target(&[A], vec![open(A, 25), dropped(A, Transport::Udp, 500)]);
        let blocked = || target(&[A], vec![open(A, 25), dropped(A, Transport::Tcp, 587)]);
        let unresolved = || TargetReport::unresolved("nosuch.example".to_string(), "no".into());
        let mut cut_short = ok();
        cut_short.unprobed = 1;

        assert_eq!(report(vec![ok()]).status(), Status::Ok);
        assert_eq!(report(vec![closed]).status(), Status::Warning);
        assert_eq!(report(vec![silent_udp]).status(), Status::Warning);
        assert_eq!(report(vec![blocked()]).status(), Status::Critical);
        assert_eq!(report(vec![unresolved()]).status(), Status::Unknown);
        assert_eq!(report(vec![cut_short]).status(), Status::Unknown);
        assert_eq!(report(Vec::new()).status(), Status::Unknown);
        // The worst target's.
        assert_eq!(report(vec![ok(), blocked()]).status(), Status::Critical);
        assert_eq!(
            report(vec![blocked(), unresolved()]).status(),
            Status::Unknown
        );
        assert!(!report(vec![ok(), unresolved()]).complete());
        // An interrupted run answers nothing for sure.
        let mut stopped = report(vec![ok()]);
        stopped.interrupted = true;
        assert_eq!(stopped.status(), Status::Unknown);
        assert!(!stopped.complete());
        assert!(report(vec![ok(), blocked()]).complete());
        assert_eq!(Status::Critical.code(), 2);
    }

    #[test]
    fn the_report_is_ready_after_its_probing() {
        let mut r = report(vec![target(&[A], vec![open(A, 25)])]);
        assert_eq!(r.duration, r.probing);
        r.ready_after(Duration::from_millis(180));
        assert_eq!(
            (r.probing, r.duration),
            (Duration::from_millis(100), Duration::from_millis(180))
        );
        r.ready_after(Duration::from_millis(20));
        assert_eq!(r.duration, r.probing);
    }
}
