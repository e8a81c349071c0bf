//! Locating against a scripted path of routers under tokio's paused clock:
//! forward drops, rejections, drops before routing, a drop at the last
//! router, routers that limit their ICMP errors (one bucket per router,
//! shared by every run, as Linux keeps it per destination), routers that
//! send no time-exceeded, no control port, answers kept across runs, and
//! runs at once drawing on one model of each router's allowance.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::engine::attempt::{AttemptSpec, Exhausted, Started};
use crate::engine::evidence::{Deadline, Evidence, Finished};
use crate::engine::icmp::IcmpError;
use crate::engine::icmp_allowance::Allowance;
use crate::engine::outcome::IcmpCode;
use crate::engine::{Config, Probe, Target};
use crate::port::Transport;
use crate::wire::{ProbeContext, UdpProtocol};

const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 23, 2));

fn router(hop: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 19 + hop, 2))
}

/// What happens to a port's packets on the way.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Reaches the host, which answers (a closed port).
    Through,
    /// The router at this hop drops it after its TTL check.
    ForwardDrop(u8),
    /// The router at this hop drops it before its TTL check.
    PreroutingDrop(u8),
    /// The router at this hop rejects it after its TTL check:
    /// administratively prohibited.
    Reject(u8),
    /// Reaches the host, which says nothing.
    HostSilent,
}

/// The routers' ICMP buckets towards this computer: one per router,
/// shared by every run.
#[derive(Clone)]
struct Buckets(Arc<Mutex<Vec<Allowance>>>);

impl Buckets {
    fn new(routers: u8, burst: f64, rate: f64) -> Self {
        let now = Instant::now();
        Buckets(Arc::new(Mutex::new(
            (0..routers)
                .map(|_| Allowance::new(burst, now).with_rate(rate))
                .collect(),
        )))
    }

    fn take(&self, hop: u8) -> bool {
        self.0.lock().unwrap()[usize::from(hop) - 1].take(Instant::now())
    }

    fn set_left(&self, hop: u8, tokens: f64) {
        self.0.lock().unwrap()[usize::from(hop) - 1].set_left(tokens);
    }
}

#[derive(Clone, Default)]
struct Counts {
    /// Errors each router sent (index hop - 1).
    sent: Arc<Mutex<HashMap<u8, usize>>>,
    /// Errors a router withheld for want of allowance.
    withheld: Arc<AtomicUsize>,
    /// Probes waiting now, and the most at once.
    flying: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

struct Topology {
    routers: u8,
    rules: HashMap<u16, Rule>,
    buckets: Buckets,
    /// Routers that send no time-exceeded (their other errors go out).
    mute: Vec<u8>,
    /// Probes sent: port and TTL (64: the system's).
    sent: Vec<(u16, u8)>,
    counts: Counts,
}

struct Flying(Arc<AtomicUsize>);

impl Drop for Flying {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Topology {
    fn new(routers: u8, rules: &[(u16, Rule)], burst: f64) -> Self {
        Self::with(routers, rules, Buckets::new(routers, burst, 1.0))
    }

    fn with(routers: u8, rules: &[(u16, Rule)], buckets: Buckets) -> Self {
        Topology {
            routers,
            rules: rules.iter().copied().collect(),
            buckets,
            mute: Vec::new(),
            sent: Vec::new(),
            counts: Counts::default(),
        }
    }

    fn icmp(&mut self, hop: u8, kind: u8, code: u8) -> Evidence {
        if kind == 11 && self.mute.contains(&hop) {
            return Evidence::Silent;
        }
        if !self.buckets.take(hop) {
            self.counts.withheld.fetch_add(1, Ordering::SeqCst);
            return Evidence::Silent;
        }
        *self.counts.sent.lock().unwrap().entry(hop).or_default() += 1;
        Evidence::Icmp(IcmpError {
            icmp: IcmpCode {
                v6: false,
                kind,
                code,
            },
            from: Some(router(hop)),
            destination: None,
        })
    }

    fn fate(&mut self, port: u16, ttl: u8) -> Evidence {
        let rule = self.rules[&port];
        for hop in 1..=self.routers {
            if matches!(rule, Rule::PreroutingDrop(h) if h == hop) {
                return Evidence::Silent;
            }
            if ttl == hop {
                return self.icmp(hop, 11, 0);
            }
            match rule {
                Rule::ForwardDrop(h) if h == hop => return Evidence::Silent,
                Rule::Reject(h) if h == hop => return self.icmp(hop, 3, 13),
                _ => {}
            }
        }
        match rule {
            Rule::HostSilent => Evidence::Silent,
            _ => Evidence::Refused,
        }
    }

    /// Errors router `hop` sent.
    fn errors_from(&self, hop: u8) -> usize {
        self.counts
            .sent
            .lock()
            .unwrap()
            .get(&hop)
            .copied()
            .unwrap_or(0)
    }
}

impl Prober for Topology {
    fn start(&mut self, spec: &AttemptSpec<'_>, deadline: Deadline) -> Result<Started, Exhausted> {
        let port = spec.target.port();
        let ttl = spec.ttl.unwrap_or(64);
        self.sent.push((port, ttl));
        let evidence = self.fate(port, ttl);
        let start = deadline.start();
        let c = &self.counts;
        let n = c.flying.fetch_add(1, Ordering::SeqCst) + 1;
        c.most.fetch_max(n, Ordering::SeqCst);
        let flying = Flying(Arc::clone(&c.flying));
        Ok(Started::Waiting(Box::pin(async move {
            let _flying = flying;
            let evidence = match evidence {
                Evidence::Silent => {
                    deadline.passed().await;
                    Evidence::Silent
                }
                e => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    e
                }
            };
            Finished {
                evidence,
                rtt: start.elapsed(),
            }
        })))
    }
}

fn result(port: u16, state: State, reason: Reason, from: Option<IpAddr>) -> PortResult {
    PortResult {
        reason_from: from,
        attempts: 2,
        ..PortResult::new(HOST, Probe::Tcp, port, state, reason)
    }
}

fn blocked(port: u16) -> PortResult {
    result(port, State::Filtered, Reason::NoResponse, None)
}

fn closed(port: u16) -> PortResult {
    result(port, State::Closed, Reason::ConnRefused, None)
}

fn rejected_by(port: u16, hop: u8) -> PortResult {
    result(
        port,
        State::Filtered,
        Reason::AdminProhibited,
        Some(router(hop)),
    )
}

fn paths() -> Vec<Path> {
    let context = ProbeContext {
        source: IpAddr::V4(Ipv4Addr::new(198, 18, 20, 1)),
        ..ProbeContext::default()
    };
    vec![Path::new(
        Target::new(HOST),
        context,
        false,
        None,
        Config::default().max_rounds(),
    )]
}

/// Locates `results` with `locator`, recording what locating waited for.
async fn run_with(
    topology: &mut Topology,
    results: &mut [PortResult],
    locator: &Locator,
    waits: &mut Vec<Option<IpAddr>>,
) -> Option<Route> {
    let paths = paths();
    let routes = locate(
        topology,
        &paths,
        results,
        None,
        &mut Share::new(None),
        locator,
        &mut |w| waits.push(w),
    )
    .await;
    routes[0].clone()
}

async fn run(topology: &mut Topology, results: &mut [PortResult]) -> Route {
    run_with(topology, results, &Locator::new(), &mut Vec::new())
        .await
        .expect("a route")
}

/// Where a port stops on the scripted path of `routers` routers: after
/// `after_hop`, before `before_hop`.
fn at(after_hop: u8, before_hop: u8, how: Stop, routers: u8) -> Option<Located> {
    let address = |hop: u8| match hop {
        0 => None,
        h if h <= routers => Some(router(h)),
        _ => Some(HOST),
    };
    Some(Located {
        after_hop,
        after: address(after_hop),
        before_hop,
        before: address(before_hop),
        how,
        age: Duration::ZERO,
    })
}

fn located(after_hop: u8, how: Stop, routers: u8) -> Option<Located> {
    at(after_hop, after_hop + 1, how, routers)
}

#[tokio::test(start_paused = true)]
async fn each_kind_of_filter_is_located_at_its_hop() {
    let mut t = Topology::new(
        3,
        &[
            (22, Rule::Through),
            (5900, Rule::ForwardDrop(2)),
            (445, Rule::Reject(2)),
            (548, Rule::ForwardDrop(3)),
            (3283, Rule::PreroutingDrop(1)),
        ],
        6.0,
    );
    let mut results = vec![
        closed(22),
        rejected_by(445, 2),
        blocked(548),
        blocked(3283),
        blocked(5900),
    ];
    let route = run(&mut t, &mut results).await;
    assert_eq!(
        route.hops,
        vec![Some(router(1)), Some(router(2)), Some(router(3))]
    );
    assert!(route.reached);
    assert_eq!(route.control, Some((Probe::Tcp, 22)));
    assert_eq!(results[4].located, located(2, Stop::Dropped, 3), "5900");
    assert_eq!(
        results[1].located,
        located(2, Stop::Rejected(Reason::AdminProhibited), 3),
        "445"
    );
    assert_eq!(results[2].located, located(3, Stop::AtHost, 3), "548");
    assert_eq!(results[3].located, located(0, Stop::Dropped, 3), "3283");
    assert_eq!(results[0].located, None, "the control is not blocked");
    // The rejection the scan saw places itself: not one probe for it.
    assert!(t.sent.iter().all(|(p, _)| *p != 445), "{:?}", t.sent);
    // At most three probes per hop and port.
    let mut per_hop: HashMap<(u16, u8), usize> = HashMap::new();
    for &(port, ttl) in &t.sent {
        *per_hop.entry((port, ttl)).or_default() += 1;
    }
    assert!(per_hop.values().all(|&n| n <= 3), "{per_hop:?}");
    // No router asked for more errors than its burst: nothing withheld.
    assert_eq!(t.counts.withheld.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn routers_that_limit_icmp_errors_are_waited_for_not_misread() {
    // Two errors per router and six questions: the routers' allowances set
    // the pace, and every answer is still exact.
    let mut rules: Vec<(u16, Rule)> = vec![(22, Rule::Through)];
    let mut results = vec![closed(22)];
    for (i, port) in (6000..6012).step_by(2).enumerate() {
        let rule = if i % 2 == 0 {
            Rule::ForwardDrop(2)
        } else {
            Rule::ForwardDrop(1)
        };
        rules.push((port, rule));
        results.push(blocked(port));
    }
    let mut t = Topology::new(3, &rules, 2.0);
    let started = Instant::now();
    let mut waits = Vec::new();
    run_with(&mut t, &mut results, &Locator::new(), &mut waits).await;
    for r in &results[1..] {
        let want = match t.rules[&r.port] {
            Rule::ForwardDrop(h) => h,
            _ => unreachable!(),
        };
        assert_eq!(r.located, located(want, Stop::Dropped, 3), "{}", r.port);
    }
    // It waited, and said for which router.
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(waits.iter().any(Option::is_some), "{waits:?}");
    assert_eq!(waits.last(), Some(&None));
}

#[tokio::test(start_paused = true)]
async fn a_run_of_ports_is_one_question() {
    let mut rules = vec![(22, Rule::Through)];
    let mut results = vec![closed(22)];
    for port in 49152..=65535 {
        rules.push((port, Rule::ForwardDrop(2)));
        results.push(blocked(port));
    }
    let mut t = Topology::new(3, &rules, 6.0);
    run(&mut t, &mut results).await;
    assert!(
        results[1..]
            .iter()
            .all(|r| r.located == located(2, Stop::Dropped, 3)),
        "every port of the run is located"
    );
    let traced: std::collections::BTreeSet<u16> = t
        .sent
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p != 22)
        .collect();
    assert_eq!(traced.len(), 1, "{traced:?}");
}

#[tokio::test(start_paused = true)]
async fn a_udp_port_a_router_drops_becomes_blocked_and_one_reaching_the_host_does_not() {
    let mut t = Topology::new(
        2,
        &[
            (22, Rule::Through),
            (3283, Rule::ForwardDrop(1)),
            (6970, Rule::HostSilent),
        ],
        6.0,
    );
    let udp = |port, protocol| PortResult {
        transport: Transport::Udp,
        probe: Probe::Udp(protocol),
        ..result(port, State::OpenFiltered, Reason::NoResponse, None)
    };
    let mut results = vec![
        closed(22),
        udp(3283, UdpProtocol::NetAssistant),
        udp(6970, UdpProtocol::Generic),
    ];
    run(&mut t, &mut results).await;
    assert_eq!(results[1].state, State::Filtered);
    assert_eq!(results[1].located, located(1, Stop::Dropped, 2));
    assert_eq!(results[2].state, State::OpenFiltered);
    assert_eq!(results[2].located, located(2, Stop::AtHost, 2));
}

#[tokio::test(start_paused = true)]
async fn without_a_control_port_only_what_answered_is_claimed() {
    let mut t = Topology::new(3, &[(5900, Rule::ForwardDrop(2))], 6.0);
    let mut results = vec![blocked(5900)];
    let route = run(&mut t, &mut results).await;
    assert_eq!(route.control, None);
    assert!(route.hops.is_empty() && !route.reached);
    let l = results[0].located.unwrap();
    assert_eq!(
        (l.after_hop, l.after, l.how),
        (2, Some(router(2)), Stop::Unconfirmed)
    );
    assert_eq!(l.before, None);
}

#[tokio::test(start_paused = true)]
async fn a_router_that_sends_no_time_exceeded_keeps_what_is_known_on_both_sides() {
    let mut t = Topology::new(
        3,
        &[
            (22, Rule::Through),
            (5900, Rule::ForwardDrop(2)),
            (445, Rule::Reject(2)),
        ],
        6.0,
    );
    t.mute.push(2);
    let mut results = vec![closed(22), rejected_by(445, 2), blocked(5900)];
    let route = run(&mut t, &mut results).await;
    assert_eq!(route.hops, vec![Some(router(1)), None, Some(router(3))]);
    // Hop 3 answers the control but not the port, hop 1 answers both: it
    // passes hop 1 and never reaches hop 3.
    assert_eq!(results[2].located, at(1, 3, Stop::Dropped, 3));
    // The rejection comes from an address the path does not show, from a
    // probe that passes hop 1 and reaches no further than hop 3: the one
    // hop between that answers no one.
    let l = results[1].located.unwrap();
    assert_eq!(
        (l.after_hop, l.after, l.how),
        (2, Some(router(2)), Stop::Rejected(Reason::AdminProhibited))
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_blocked_means_no_probe_at_all() {
    let mut t = Topology::new(3, &[(22, Rule::Through)], 6.0);
    let mut results = vec![closed(22)];
    let routes = run_with(&mut t, &mut results, &Locator::new(), &mut Vec::new()).await;
    assert!(routes.is_none());
    assert!(t.sent.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_locating() {
    let mut t = Topology::new(3, &[(22, Rule::Through), (5900, Rule::ForwardDrop(2))], 0.0);
    let mut results = vec![closed(22), blocked(5900)];
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1500);
    locate(
        &mut t,
        &paths(),
        &mut results,
        Some(deadline),
        &mut Share::new(None),
        &Locator::new(),
        &mut |_| {},
    )
    .await;
    assert!(
        started.elapsed() <= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(results[1].located.map(|l| l.how), Some(Stop::Unconfirmed));
}

#[test]
fn a_port_the_responder_answered_is_a_control() {
    let mut udp = result(7000, State::Open, Reason::Responder, None);
    udp.transport = Transport::Udp;
    udp.probe = Probe::responder(Transport::Udp);
    let rs = [blocked(8000), udp];
    let refs: Vec<&PortResult> = rs.iter().collect();
    assert_eq!(
        super::sample::control(&refs),
        Some((Probe::responder(Transport::Udp), 7000))
    );
    let mut tcp = result(1220, State::Open, Reason::Responder, None);
    tcp.probe = Probe::responder(Transport::Tcp);
    let rs = [blocked(8000), rs[1].clone(), tcp];
    let refs: Vec<&PortResult> = rs.iter().collect();
    assert_eq!(
        super::sample::control(&refs),
        Some((Probe::responder(Transport::Tcp), 1220))
    );
}

#[tokio::test(start_paused = true)]
async fn locating_holds_the_shared_bound_and_finds_the_same() {
    let rules = [
        (22, Rule::Through),
        (5900, Rule::ForwardDrop(2)),
        (5902, Rule::Reject(3)),
        (5904, Rule::PreroutingDrop(1)),
    ];
    let ports = || vec![closed(22), blocked(5900), blocked(5902), blocked(5904)];
    let mut free = Topology::new(4, &rules, 1000.0);
    let mut alone = ports();
    let route = run(&mut free, &mut alone).await;
    assert!(free.counts.most.load(Ordering::SeqCst) > 4);

    let bound = Arc::new(tokio::sync::Semaphore::new(4));
    let mut t = Topology::new(4, &rules, 1000.0);
    let mut results = ports();
    let routes = locate(
        &mut t,
        &paths(),
        &mut results,
        None,
        &mut Share::new(Some(Arc::clone(&bound))),
        &Locator::new(),
        &mut |_| {},
    )
    .await;
    assert!(
        t.counts.most.load(Ordering::SeqCst) <= 4,
        "{:?}",
        t.counts.most
    );
    assert_eq!(routes[0].as_ref(), Some(&route));
    let found = |rs: &[PortResult]| rs.iter().map(|r| r.located).collect::<Vec<_>>();
    assert_eq!(found(&results), found(&alone));
    assert_eq!(results[1].located, located(2, Stop::Dropped, 4));
    assert_eq!(
        results[2].located,
        located(3, Stop::Rejected(Reason::AdminProhibited), 4)
    );
    assert_eq!(bound.available_permits(), 4);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_the_shared_bound_ends_at_the_deadline() {
    let mut t = Topology::new(3, &[(22, Rule::Through), (5900, Rule::ForwardDrop(2))], 6.0);
    let mut results = vec![closed(22), blocked(5900)];
    let taken = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1500);
    locate(
        &mut t,
        &paths(),
        &mut results,
        Some(deadline),
        &mut Share::new(Some(taken)),
        &Locator::new(),
        &mut |_| {},
    )
    .await;
    assert!(t.sent.is_empty(), "{:?}", t.sent);
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// The one-router lab: TCP 5900 and 49152-65535 dropped by the router,
/// 311 and 625 rejected by it.
fn one_router() -> Vec<(u16, Rule)> {
    let mut rules = vec![
        (22, Rule::Through),
        (311, Rule::Reject(1)),
        (625, Rule::Reject(1)),
        (5900, Rule::ForwardDrop(1)),
    ];
    rules.extend((49152..=49200).map(|p| (p, Rule::ForwardDrop(1))));
    rules
}

/// The scan of the one-router lab, with 311 and 625 as it saw them.
fn one_router_scan(rejections_seen: bool) -> Vec<PortResult> {
    let mut results = vec![closed(22)];
    for port in [311, 625] {
        results.push(if rejections_seen {
            rejected_by(port, 1)
        } else {
            blocked(port)
        });
    }
    results.push(blocked(5900));
    results.extend((49152..=49200).map(blocked));
    results
}

#[tokio::test(start_paused = true)]
async fn a_first_run_locates_within_the_routers_burst() {
    // The scan's two rejections spent two of the router's six errors:
    // locating needs three of the four left (the control's path and a look
    // at each dropped run), and waits for none.
    let buckets = Buckets::new(1, 6.0, 1.0);
    buckets.set_left(1, 4.0);
    let mut t = Topology::with(1, &one_router(), buckets);
    let mut results = one_router_scan(true);
    let started = Instant::now();
    let mut waits = Vec::new();
    run_with(&mut t, &mut results, &Locator::new(), &mut waits).await;
    assert!(t.errors_from(1) <= 3, "{}", t.errors_from(1));
    assert_eq!(t.counts.withheld.load(Ordering::SeqCst), 0);
    assert!(waits.iter().all(Option::is_none), "{waits:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for r in &results[3..] {
        assert_eq!(r.located, located(1, Stop::AtHost, 1), "{}", r.port);
    }
}

#[tokio::test(start_paused = true)]
async fn a_second_run_at_once_is_as_exact_as_the_first() {
    // The first run spent the router's allowance: the second one's scan
    // saw 311 and 625 silent. Locating finds their rejections and gives
    // every port the first run's answer.
    let mut first = one_router_scan(true);
    let buckets = Buckets::new(1, 6.0, 1.0);
    buckets.set_left(1, 4.0);
    run(&mut Topology::with(1, &one_router(), buckets), &mut first).await;
    let buckets = Buckets::new(1, 6.0, 1.0);
    buckets.set_left(1, 0.0);
    let mut t = Topology::with(1, &one_router(), buckets);
    let mut second = one_router_scan(false);
    let mut waits = Vec::new();
    run_with(&mut t, &mut second, &Locator::new(), &mut waits).await;
    assert_eq!(second, first);
    assert_eq!(
        second[1].located,
        located(1, Stop::Rejected(Reason::AdminProhibited), 1)
    );
    assert_eq!(second[1].reason_from, Some(router(1)));
    assert!(waits.contains(&Some(router(1))), "{waits:?}");
}

#[tokio::test(start_paused = true)]
async fn runs_at_once_share_one_model_of_each_routers_allowance() {
    // Two runs at once behind one router that limits its errors: with one
    // model they take turns for its errors, and neither misreads silence.
    let rules = [
        (22, Rule::Through),
        (5900, Rule::ForwardDrop(1)),
        (5902, Rule::PreroutingDrop(1)),
        (5904, Rule::ForwardDrop(1)),
    ];
    let scan = || vec![closed(22), blocked(5900), blocked(5902), blocked(5904)];
    let want = [
        None,
        located(1, Stop::AtHost, 1),
        located(0, Stop::Dropped, 1),
        located(1, Stop::AtHost, 1),
    ];
    let withheld = |shared: bool| async move {
        let buckets = Buckets::new(1, 6.0, 1.0);
        let (mut a, mut b) = (
            Topology::with(1, &rules, buckets.clone()),
            Topology::with(1, &rules, buckets),
        );
        b.counts = a.counts.clone();
        let (one, other) = (Locator::new(), Locator::new());
        let (mut ra, mut rb) = (scan(), scan());
        let second = if shared { &one } else { &other };
        let (mut wa, mut wb) = (Vec::new(), Vec::new());
        tokio::join!(
            run_with(&mut a, &mut ra, &one, &mut wa),
            run_with(&mut b, &mut rb, second, &mut wb),
        );
        let got = |rs: &[PortResult]| rs.iter().map(|r| r.located).collect::<Vec<_>>();
        (got(&ra), got(&rb), a.counts.withheld.load(Ordering::SeqCst))
    };
    let (a, b, shared) = withheld(true).await;
    assert_eq!(a, want);
    assert_eq!(b, want);
    let (_, _, apart) = withheld(false).await;
    assert!(shared < apart, "withheld: {shared} shared, {apart} apart");
    assert!(shared <= 1, "{shared}");
}

#[tokio::test(start_paused = true)]
async fn a_router_slower_than_linux_is_measured_and_waited_for() {
    // One error every four seconds: the model learns the rate it gets,
    // and the answers stay exact.
    let ports: Vec<u16> = (6000..6024).step_by(2).collect();
    let mut rules = vec![(22, Rule::Through)];
    rules.extend(ports.iter().map(|&p| (p, Rule::ForwardDrop(1))));
    let buckets = Buckets::new(2, 1.0, 0.25);
    let mut t = Topology::with(2, &rules, buckets);
    let mut results = vec![closed(22)];
    results.extend(ports.iter().map(|&p| blocked(p)));
    let locator = Locator::new();
    run_with(&mut t, &mut results, &locator, &mut Vec::new()).await;
    for r in &results[1..] {
        assert_eq!(r.located, located(1, Stop::Dropped, 2), "{}", r.port);
    }
    // Errors the routers withheld: probes sent before they had one. The
    // model starts from Linux's burst and rate, six times and four times
    // the routers', and learns the rate they give.
    let withheld = t.counts.withheld.load(Ordering::SeqCst);
    let answered = t.errors_from(1) + t.errors_from(2);
    let source = paths()[0].context.source;
    let now = Instant::now();
    // The canaries went to hop 2, the router the searches went down from.
    let interval = locator.budgets().of(source, router(2), now).interval();
    assert!(
        withheld <= answered,
        "{withheld} withheld, {answered} answered"
    );
    assert!(interval > Duration::from_secs(2), "{interval:?}");
}

#[tokio::test(start_paused = true)]
async fn a_located_answer_is_kept_for_the_next_run_with_its_age() {
    let rules = one_router();
    let buckets = Buckets::new(1, 6.0, 1.0);
    let locator = Locator::new();
    let mut t = Topology::with(1, &rules, buckets.clone());
    let mut first = one_router_scan(true);
    let route = run_with(&mut t, &mut first, &locator, &mut Vec::new()).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    // The next scrape: the same scan, at once after the first.
    let mut again = Topology::with(1, &rules, buckets.clone());
    let mut second = one_router_scan(true);
    let kept = run_with(&mut again, &mut second, &locator, &mut Vec::new()).await;
    assert!(again.sent.is_empty(), "{:?}", again.sent);
    assert_eq!(kept, route);
    for (a, b) in first.iter().zip(&second) {
        let (Some(x), Some(y)) = (a.located, b.located) else {
            assert_eq!(a.located, b.located);
            continue;
        };
        assert_eq!(Located { age: x.age, ..y }, x);
        assert_eq!(y.age, Duration::from_secs(15));
    }
    // A port of the run that now behaves otherwise: that run is located
    // again, the others are not.
    let mut changed = one_router_scan(true);
    changed[4] = closed(49152);
    let mut third = Topology::with(1, &rules, buckets);
    run_with(&mut third, &mut changed, &locator, &mut Vec::new()).await;
    let traced: std::collections::BTreeSet<u16> = third
        .sent
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p != 22)
        .collect();
    assert_eq!(traced, [49153].into_iter().collect(), "{:?}", third.sent);
    assert_eq!(
        changed[3].located.map(|l| l.age),
        Some(Duration::from_secs(15))
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_answer_is_rechecked_only_with_errors_to_spare() {
    let rules = one_router();
    let buckets = Buckets::new(1, 6.0, 1.0);
    let locator = Locator::new();
    let mut first = one_router_scan(true);
    run_with(
        &mut Topology::with(1, &rules, buckets.clone()),
        &mut first,
        &locator,
        &mut Vec::new(),
    )
    .await;
    tokio::time::sleep(REUSE + Duration::from_secs(1)).await;
    // The router's allowance is spent by others: the re-check waits for
    // nothing, and the answers kept stand.
    buckets.set_left(1, 0.0);
    let source = paths()[0].context.source;
    locator
        .budgets()
        .of(source, router(1), Instant::now())
        .empty(Instant::now());
    let mut t = Topology::with(1, &rules, buckets.clone());
    let mut second = one_router_scan(true);
    let mut waits = Vec::new();
    run_with(&mut t, &mut second, &locator, &mut waits).await;
    assert!(waits.iter().all(Option::is_none), "{waits:?}");
    assert!(t.sent.is_empty(), "{:?}", t.sent);
    assert_eq!(second[3].located.map(|l| l.how), Some(Stop::AtHost));
    assert!(second[3].located.unwrap().age > REUSE);
    // With errors to spare, it is re-checked and young again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut t = Topology::with(1, &rules, buckets);
    let mut third = one_router_scan(true);
    run_with(&mut t, &mut third, &locator, &mut Vec::new()).await;
    assert!(!t.sent.is_empty());
    assert_eq!(third[3].located, located(1, Stop::AtHost, 1));
}
