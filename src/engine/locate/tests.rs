//! Locating against a scripted path of routers under tokio's paused clock:
//! forward drops, rejections, drops before routing, a drop at the last
//! router, routers that limit their ICMP errors, and no control port.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::engine::attempt::Exhausted;
use crate::engine::evidence::{Evidence, Finished};
use crate::engine::icmp::IcmpError;
use crate::engine::icmp_allowance::Allowance;
use crate::engine::outcome::IcmpCode;
use crate::engine::{Config, Target};
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
    /// The router at this hop rejects it: administratively prohibited.
    Reject(u8),
    /// Reaches the host, which says nothing.
    HostSilent,
}

struct Topology {
    routers: u8,
    rules: HashMap<u16, Rule>,
    buckets: Vec<Allowance>,
    /// Routers that never send ICMP errors.
    mute: Vec<u8>,
    sent: Vec<(u16, u8)>,
    /// Probes waiting now, and the most at once.
    flying: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

struct Flying(Arc<AtomicUsize>);

impl Drop for Flying {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Topology {
    fn new(routers: u8, rules: &[(u16, Rule)], burst: f64) -> Self {
        let now = Instant::now();
        Topology {
            routers,
            rules: rules.iter().copied().collect(),
            buckets: (0..routers).map(|_| Allowance::new(burst, now)).collect(),
            mute: Vec::new(),
            sent: Vec::new(),
            flying: Arc::default(),
            most: Arc::default(),
        }
    }

    fn icmp(&mut self, hop: u8, kind: u8, code: u8) -> Evidence {
        if self.mute.contains(&hop) || !self.buckets[usize::from(hop) - 1].take(Instant::now()) {
            return Evidence::Silent;
        }
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
}

impl Prober for Topology {
    fn start(&mut self, spec: &AttemptSpec<'_>, deadline: Deadline) -> Result<Started, Exhausted> {
        let port = spec.target.port();
        let ttl = spec.ttl.expect("locating sets a TTL");
        self.sent.push((port, ttl));
        let evidence = self.fate(port, ttl);
        let start = deadline.start();
        let n = self.flying.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        let flying = Flying(Arc::clone(&self.flying));
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
        address: HOST,
        transport: Transport::Tcp,
        port,
        probe: Probe::Tcp,
        state,
        reason,
        reason_from: from,
        rtt: None,
        attempts: 2,
        reply: None,
        reply_from: None,
        note: None,
        located: None,
    }
}

fn blocked(port: u16) -> PortResult {
    result(port, State::Filtered, Reason::NoResponse, None)
}

fn closed(port: u16) -> PortResult {
    result(port, State::Closed, Reason::ConnRefused, None)
}

fn paths() -> Vec<Path> {
    vec![Path::new(
        Target::new(HOST),
        ProbeContext::default(),
        false,
        None,
        Config::default().max_rounds(),
    )]
}

async fn run(topology: &mut Topology, results: &mut [PortResult]) -> Route {
    let paths = paths();
    let routes = locate(topology, &paths, results, None, &mut Share::new(None)).await;
    routes[0].clone().expect("a route")
}

fn located(after_hop: u8, how: Stop, routers: u8) -> Option<Located> {
    let at = |hop: u8| match hop {
        0 => None,
        h if h <= routers => Some(router(h)),
        _ => Some(HOST),
    };
    Some(Located {
        after_hop,
        after: at(after_hop),
        before: at(after_hop + 1),
        how,
    })
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
        result(
            445,
            State::Filtered,
            Reason::AdminProhibited,
            Some(router(2)),
        ),
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
    // At most three probes per hop and port.
    let mut per_hop: HashMap<(u16, u8), usize> = HashMap::new();
    for &(port, ttl) in &t.sent {
        *per_hop.entry((port, ttl)).or_default() += 1;
    }
    assert!(per_hop.values().all(|&n| n <= 3), "{per_hop:?}");
}

#[tokio::test(start_paused = true)]
async fn routers_that_limit_icmp_errors_are_waited_for_not_misread() {
    // Two tokens per router and a dozen traced ports: most first answers are
    // missing, and only the confirmations against the control tell.
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
    run(&mut t, &mut results).await;
    for r in &results[1..] {
        let want = match t.rules[&r.port] {
            Rule::ForwardDrop(h) => h,
            _ => unreachable!(),
        };
        let l = r
            .located
            .unwrap_or_else(|| panic!("{} not located", r.port));
        if l.how == Stop::Dropped {
            assert_eq!(l.after_hop, want, "{}: {l:?}", r.port);
        } else {
            // Unconfirmed is honest, never wrong: it says how far it got.
            assert_eq!(l.how, Stop::Unconfirmed, "{}: {l:?}", r.port);
            assert!(l.after_hop <= want, "{}: {l:?}", r.port);
        }
    }
    let confirmed = results[1..]
        .iter()
        .filter(|r| r.located.is_some_and(|l| l.how == Stop::Dropped))
        .count();
    assert!(confirmed >= 4, "only {confirmed} of 6 confirmed");
}

#[tokio::test(start_paused = true)]
async fn a_run_of_ports_is_traced_by_a_sample_and_located_once() {
    let mut rules = vec![(22, Rule::Through)];
    let mut results = vec![closed(22)];
    for port in 49152..=49351 {
        rules.push((port, Rule::ForwardDrop(2)));
        results.push(blocked(port));
    }
    let mut t = Topology::new(3, &rules, 100.0);
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
    assert_eq!(traced.len(), 2 + BETWEEN, "{traced:?}");
    assert!(traced.contains(&49152) && traced.contains(&49351));
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
async fn a_router_that_answers_no_one_is_left_unnamed() {
    let mut t = Topology::new(3, &[(22, Rule::Through), (5900, Rule::ForwardDrop(2))], 6.0);
    t.mute.push(2);
    let mut results = vec![closed(22), blocked(5900)];
    let route = run(&mut t, &mut results).await;
    assert_eq!(route.hops, vec![Some(router(1)), None, Some(router(3))]);
    // Hop 3 answers the control but not the port: it stops at hop 1 or 2.
    let l = results[1].located.unwrap();
    assert_eq!(
        (l.after_hop, l.after, l.before, l.how),
        (1, Some(router(1)), None, Stop::Dropped)
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_blocked_means_no_probe_at_all() {
    let mut t = Topology::new(3, &[(22, Rule::Through)], 6.0);
    let mut results = vec![closed(22)];
    let routes = locate(&mut t, &paths(), &mut results, None, &mut Share::new(None)).await;
    assert!(routes[0].is_none());
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
    )
    .await;
    assert!(
        started.elapsed() <= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(results[1].located.map(|l| l.how), Some(Stop::Unconfirmed));
}

#[test]
fn socket_addresses_of_the_scripted_host() {
    let t = Target::new(HOST);
    assert_eq!(t.socket(22), SocketAddr::new(HOST, 22));
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
        (5901, Rule::Reject(3)),
        (5902, Rule::PreroutingDrop(1)),
    ];
    let ports = || vec![closed(22), blocked(5900), blocked(5901), blocked(5902)];
    let mut free = Topology::new(4, &rules, 1000.0);
    let mut alone = ports();
    let route = run(&mut free, &mut alone).await;
    assert!(free.most.load(Ordering::SeqCst) > 4);

    let bound = Arc::new(tokio::sync::Semaphore::new(4));
    let mut t = Topology::new(4, &rules, 1000.0);
    let mut results = ports();
    let routes = locate(
        &mut t,
        &paths(),
        &mut results,
        None,
        &mut Share::new(Some(Arc::clone(&bound))),
    )
    .await;
    assert!(t.most.load(Ordering::SeqCst) <= 4, "{:?}", t.most);
    assert_eq!(routes[0].as_ref(), Some(&route));
    let found = |rs: &[PortResult]| rs.iter().map(|r| r.located).collect::<Vec<_>>();
    assert_eq!(found(&results), found(&alone));
    assert!(results[1].located.is_some() && results[2].located.is_some());
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
    )
    .await;
    assert!(t.sent.is_empty(), "{:?}", t.sent);
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
