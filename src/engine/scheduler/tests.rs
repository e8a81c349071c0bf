//! The scheduling loop under tokio's paused clock, with the socket work
//! replaced by scripted outcomes: loss, ICMP rate limiting, descriptor
//! exhaustion, self-connects, portprobe's own ports, local errors, the stop
//! signal and `--max-time`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::responder::BUSY_TRIES;
use super::*;
use crate::engine::Target;
use crate::engine::evidence::Answer;
use crate::engine::icmp::IcmpError;
use crate::engine::icmp_allowance::Allowance;
use crate::engine::outcome::{IcmpCode, Reason};
use crate::engine::path::{LOSSY_ATTEMPTS, Path};
use crate::wire::{ProbeContext, UdpProtocol};

const HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

/// What one scripted attempt does.
#[derive(Clone, Debug)]
enum Act {
    /// Evidence after a delay (unless the deadline comes first).
    After(Duration, Evidence),
    /// Evidence at once, as on loopback.
    Now(Evidence),
    /// Nothing: silence at the deadline.
    Silent,
    /// No socket to be had.
    Exhausted,
}

type Rule = Box<dyn FnMut(u16, u32, Instant) -> Act + Send>;

/// A prober that asks `rule(port, nth attempt of that port, now)` what each
/// attempt does, and records launches and the attempts in flight.
struct Scripted {
    rule: Rule,
    tries: HashMap<u16, u32>,
    launches: Arc<Mutex<Vec<(u16, Instant)>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// Attempts allowed in flight before sockets run out.
    sockets: usize,
}

struct Flying(Arc<AtomicUsize>);

impl Drop for Flying {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Prober for Scripted {
    fn start(&mut self, spec: &AttemptSpec<'_>, deadline: Deadline) -> Result<Started, Exhausted> {
        let port = spec.target.port();
        let now = Instant::now();
        if self.in_flight.load(Ordering::SeqCst) >= self.sockets {
            return Err(Exhausted(nix::libc::EMFILE));
        }
        let nth = self.tries.entry(port).or_insert(0);
        *nth += 1;
        let act = (self.rule)(port, *nth, now);
        if matches!(act, Act::Exhausted) {
            *nth -= 1;
            return Err(Exhausted(nix::libc::EMFILE));
        }
        self.launches.lock().unwrap().push((port, now));
        let start = deadline.start();
        let flying = match act {
            Act::Now(evidence) => {
                return Ok(Started::Done(Finished {
                    evidence,
                    rtt: Duration::ZERO,
                }));
            }
            _ => {
                let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_in_flight.fetch_max(n, Ordering::SeqCst);
                Flying(Arc::clone(&self.in_flight))
            }
        };
        Ok(Started::Waiting(Box::pin(async move {
            let _flying = flying;
            let evidence = match act {
                Act::After(delay, evidence) => tokio::select! {
                    () = tokio::time::sleep(delay) => evidence,
                    () = deadline.passed() => Evidence::Silent,
                },
                _ => {
                    deadline.passed().await;
                    Evidence::Silent
                }
            };
            Finished {
                evidence,
                rtt: start.elapsed(),
            }
        })))
    }
}

struct Run {
    outcome: RunOutcome,
    launches: Vec<(u16, Instant)>,
    most_in_flight: usize,
    phases: Vec<Phase>,
    started: Instant,
}

impl Run {
    fn result(&self, port: u16) -> &PortResult {
        self.outcome
            .results
            .iter()
            .find(|r| r.port == port)
            .unwrap_or_else(|| panic!("no result for port {port}"))
    }

    fn datagrams(&self, port: u16) -> usize {
        self.launches.iter().filter(|(p, _)| *p == port).count()
    }
}

fn udp(ports: impl IntoIterator<Item = u16>) -> Vec<(Probe, u16)> {
    ports
        .into_iter()
        .map(|p| (Probe::Udp(UdpProtocol::Generic), p))
        .collect()
}

fn tcp(ports: impl IntoIterator<Item = u16>) -> Vec<(Probe, u16)> {
    ports.into_iter().map(|p| (Probe::Tcp, p)).collect()
}

fn path(cfg: &Config) -> Path {
    Path::new(
        Target::new(HOST),
        ProbeContext::default(),
        false,
        cfg.timeout,
        cfg.max_rounds(),
    )
}

/// Attempts in flight, counted over every prober that shares it.
#[derive(Clone, Default)]
struct Flight {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

async fn run_with(
    ports: &[(Probe, u16)],
    cfg: &Config,
    sockets: usize,
    limit: usize,
    stop: impl Future<Output = ()>,
    rule: impl FnMut(u16, u32, Instant) -> Act + Send + 'static,
) -> Run {
    run_counted(ports, cfg, sockets, limit, stop, Flight::default(), rule).await
}

async fn run_counted(
    ports: &[(Probe, u16)],
    cfg: &Config,
    sockets: usize,
    limit: usize,
    stop: impl Future<Output = ()>,
    flight: Flight,
    rule: impl FnMut(u16, u32, Instant) -> Act + Send + 'static,
) -> Run {
    let launches = Arc::new(Mutex::new(Vec::new()));
    let most = Arc::clone(&flight.most);
    let prober = Scripted {
        rule: Box::new(rule),
        tries: HashMap::new(),
        launches: Arc::clone(&launches),
        in_flight: flight.now,
        most_in_flight: flight.most,
        sockets,
    };
    let mut phases = Vec::new();
    let started = Instant::now();
    // Locating has tests of its own (`engine::locate`).
    let cfg = &Config {
        locate: false,
        ..cfg.clone()
    };
    let outcome = Scheduler::new(vec![path(cfg)], ports, cfg, prober, limit)
        .run(
            &mut |p: Progress| {
                if phases.last() != Some(&p.phase) {
                    phases.push(p.phase);
                }
            },
            stop,
        )
        .await;
    let launches = launches.lock().unwrap().clone();
    Run {
        outcome,
        launches,
        most_in_flight: most.load(Ordering::SeqCst),
        phases,
        started,
    }
}

async fn run(
    ports: &[(Probe, u16)],
    cfg: &Config,
    rule: impl FnMut(u16, u32, Instant) -> Act + Send + 'static,
) -> Run {
    run_with(ports, cfg, usize::MAX, 1000, std::future::pending(), rule).await
}

fn icmp(from: IpAddr, code: u8) -> Evidence {
    Evidence::Icmp(IcmpError {
        icmp: IcmpCode {
            v6: false,
            kind: 3,
            code,
        },
        from: Some(from),
        destination: None,
    })
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn a_port_answering_only_on_a_retry_marks_the_path_lossy() {
    let cfg = Config::default();
    let r = run(&tcp(1..=10), &cfg, |port, nth, _| match (port, nth) {
        (1, 1) => Act::Silent,
        (1, _) => Act::After(ms(5), Evidence::Connected),
        (2..=5, _) => Act::Silent,
        _ => Act::After(ms(5), Evidence::Connected),
    })
    .await;
    assert_eq!(r.result(1).state, State::Open);
    assert_eq!(r.result(1).attempts, 2);
    assert!(r.outcome.addresses[0].loss_seen);
    for port in 2..=5 {
        assert_eq!(r.result(port).state, State::Filtered);
        assert_eq!(r.result(port).attempts, LOSSY_ATTEMPTS, "port {port}");
        assert_eq!(r.datagrams(port), LOSSY_ATTEMPTS as usize);
    }
    assert_eq!(r.result(6).attempts, 1);
    assert!(!r.outcome.interrupted && !r.outcome.out_of_time);
}

#[tokio::test(start_paused = true)]
async fn timeouts_follow_the_first_answers_for_attempts_already_waiting() {
    let cfg = Config::default();
    let r = run(&tcp(1..=3), &cfg, |port, _, _| match port {
        1 => Act::After(ms(10), Evidence::Connected),
        _ => Act::Silent,
    })
    .await;
    // The initial timeout is a second; after a 10 ms answer it shrinks to
    // the 100 ms floor, for the silent attempts already waiting too.
    assert_eq!(r.result(2).attempts, 2);
    let elapsed = r.started.elapsed();
    assert!(elapsed <= ms(250), "{elapsed:?}");
    assert_eq!(r.outcome.addresses[0].srtt, Some(ms(10)));
}

#[tokio::test(start_paused = true)]
async fn icmp_rate_limiting_is_worked_around_in_rounds_within_the_datagram_cap() {
    let cfg = Config::default();
    let mut bucket = Allowance::linux(Instant::now());
    // Ports 1-12 closed, 13-40 dropped: the first pass gets six port
    // unreachables, the other closed ports look dropped.
    let r = run(&udp(1..=40), &cfg, move |port, _, now| {
        if port <= 12 && bucket.take(now) {
            Act::After(ms(1), icmp(HOST, 3))
        } else {
            Act::Silent
        }
    })
    .await;
    for port in 1..=12 {
        let res = r.result(port);
        assert_eq!(
            (res.state, res.reason),
            (State::Closed, Reason::PortUnreachable),
            "port {port}"
        );
    }
    for port in 13..=40 {
        assert_eq!(r.result(port).state, State::OpenFiltered, "port {port}");
        assert_eq!(r.result(port).note, None, "port {port}");
        assert!(
            r.datagrams(port) <= 2 + crate::engine::DEFAULT_ROUNDS as usize,
            "port {port}: {} datagrams",
            r.datagrams(port)
        );
    }
    let note = &r.outcome.addresses[0];
    assert_eq!(note.icmp_senders, vec![HOST]);
    assert_eq!(note.icmp_revealed, 6);
    assert_eq!(note.icmp_unconfirmed, 0);
    assert!(note.icmp_rounds >= 2, "{note:?}");
    assert!(
        r.phases
            .iter()
            .any(|p| matches!(p, Phase::Confirming { addresses: 1, .. })),
        "{:?}",
        r.phases
    );
    assert_eq!(r.phases.last(), Some(&Phase::Probing));
}

#[tokio::test(start_paused = true)]
async fn rounds_stop_at_the_cap_and_say_which_ports_are_unconfirmed() {
    let cfg = Config {
        retries: Some(2),
        ..Config::default()
    };
    let mut answered = false;
    // A sender that answers once and never again: no canary ever returns.
    let r = run(&udp(1..=5), &cfg, move |port, _, _| {
        if port == 1 && !answered {
            answered = true;
            Act::After(ms(1), icmp(ROUTER, 13))
        } else {
            Act::Silent
        }
    })
    .await;
    assert_eq!(r.result(1).reason, Reason::AdminProhibited);
    let note = &r.outcome.addresses[0];
    assert_eq!(note.icmp_rounds, 2);
    assert_eq!(note.icmp_unconfirmed, 4);
    for port in 2..=5 {
        // Three attempts (--retries 2), then one datagram per round.
        assert_eq!(r.datagrams(port), 3 + 2, "port {port}");
        assert_eq!(
            r.result(port).note,
            Some(Note::Unconfirmed(Unconfirmed::RoundCap { rounds: 2 }))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn descriptor_exhaustion_lowers_the_concurrency_and_loses_nothing() {
    let cfg = Config::default();
    let r = run_with(
        &tcp(1..=50),
        &cfg,
        5,
        100,
        std::future::pending(),
        |port, _, _| {
            if port % 2 == 0 {
                Act::After(ms(20), Evidence::Refused)
            } else {
                Act::Silent
            }
        },
    )
    .await;
    assert!(r.most_in_flight <= 5, "{}", r.most_in_flight);
    assert_eq!(r.outcome.results.len(), 50);
    assert_eq!(r.outcome.unprobed, 0);
    assert!(
        r.outcome
            .results
            .iter()
            .all(|x| x.reason != Reason::LocalError)
    );
    assert_eq!(r.result(2).state, State::Closed);
    assert_eq!(r.result(3).state, State::Filtered);
}

#[tokio::test(start_paused = true)]
async fn with_no_socket_at_all_each_port_reports_the_local_error() {
    let cfg = Config::default();
    let r = run(&tcp(1..=3), &cfg, |_, _, _| Act::Exhausted).await;
    assert_eq!(r.outcome.results.len(), 3);
    for x in &r.outcome.results {
        assert_eq!(x.reason, Reason::LocalError);
        assert_eq!(
            x.note,
            Some(Note::LocalError {
                errno: nix::libc::EMFILE
            })
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_local_error_on_one_port_leaves_the_others_probed() {
    let cfg = Config::default();
    let r = run(&tcp(1..=3), &cfg, |port, _, _| match port {
        2 => Act::Now(Evidence::LocalError(nix::libc::EINVAL)),
        _ => Act::After(ms(3), Evidence::Connected),
    })
    .await;
    assert_eq!(r.result(2).reason, Reason::LocalError);
    assert_eq!(r.datagrams(2), 1, "a local error is not retried");
    assert_eq!(r.result(1).state, State::Open);
    assert_eq!(r.result(3).state, State::Open);
    // Local errors time nothing: the path's round trip is the answers'.
    assert_eq!(r.outcome.addresses[0].srtt, Some(ms(3)));
}

#[tokio::test(start_paused = true)]
async fn self_connects_are_probed_again_and_not_counted() {
    let cfg = Config::default();
    let r = run(&tcp([7, 8]), &cfg, |port, nth, _| match (port, nth) {
        (7, 1..=3) => Act::Now(Evidence::SelfConnect),
        (7, _) => Act::Now(Evidence::Refused),
        _ => Act::Now(Evidence::SelfConnect),
    })
    .await;
    assert_eq!(r.result(7).state, State::Closed);
    assert_eq!(r.result(7).note, None);
    assert_eq!(r.result(7).attempts, 1);
    assert_eq!(r.datagrams(7), 4);
    assert_eq!(r.result(8).note, Some(Note::SelfConnectOnly));
    assert_eq!(r.datagrams(8), SELF_CONNECT_LIMIT as usize);
}

#[tokio::test(start_paused = true)]
async fn a_port_held_by_our_own_socket_waits_until_it_is_free() {
    let cfg = Config::default();
    let r = run(&udp([40000]), &cfg, |_, nth, _| {
        if nth <= 3 {
            Act::Now(Evidence::OwnPort)
        } else {
            Act::Now(icmp(HOST, 3))
        }
    })
    .await;
    assert_eq!(r.result(40000).state, State::Closed);
    assert_eq!(r.result(40000).attempts, 1);
    let times: Vec<Instant> = r.launches.iter().map(|(_, t)| *t).collect();
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= OWN_PORT_DELAY, "{times:?}");
    }
    let never = run(&udp([40001]), &cfg, |_, _, _| Act::Now(Evidence::OwnPort)).await;
    assert_eq!(never.datagrams(40001), OWN_PORT_LIMIT as usize);
    assert_eq!(never.result(40001).reason, Reason::LocalError);
}

#[tokio::test(start_paused = true)]
async fn the_stop_signal_ends_the_run_with_what_it_has() {
    let cfg = Config {
        rate: Some(10.0),
        ..Config::default()
    };
    let r = run_with(
        &tcp(1..=100),
        &cfg,
        usize::MAX,
        1000,
        tokio::time::sleep(ms(1050)),
        |_, _, _| Act::After(ms(5), Evidence::Connected),
    )
    .await;
    assert!(r.outcome.interrupted);
    assert_eq!(r.started.elapsed(), ms(1050));
    // Ten a second, the first at once: 11 launched, the rest never probed.
    assert_eq!(r.launches.len(), 11);
    assert_eq!(r.outcome.results.len(), 11);
    assert_eq!(r.outcome.unprobed, 89);
    let gaps: Vec<Duration> = r.launches.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps.iter().all(|g| *g == ms(100)), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn max_time_ends_the_rounds_and_marks_ports_unconfirmed() {
    let cfg = Config {
        max_time: Some(ms(2500)),
        ..Config::default()
    };
    let mut bucket = Allowance::linux(Instant::now());
    bucket.set_left(1.0);
    let r = run(&udp(1..=20), &cfg, move |port, _, now| {
        if port <= 10 && bucket.take(now) {
            Act::After(ms(1), icmp(HOST, 3))
        } else {
            Act::Silent
        }
    })
    .await;
    assert!(r.outcome.out_of_time);
    assert_eq!(r.started.elapsed(), ms(2500));
    let unconfirmed: Vec<&PortResult> = r
        .outcome
        .results
        .iter()
        .filter(|x| x.note == Some(Note::Unconfirmed(Unconfirmed::OutOfTime)))
        .collect();
    assert!(!unconfirmed.is_empty());
    assert!(unconfirmed.iter().all(|x| x.state == State::OpenFiltered));
    assert_eq!(r.outcome.addresses[0].icmp_unconfirmed, unconfirmed.len());
}

#[tokio::test(start_paused = true)]
async fn a_tiny_rate_is_bounded_by_max_time() {
    let cfg = Config {
        rate: Some(1e-300),
        max_time: Some(ms(300)),
        ..Config::default()
    };
    let r = run(&tcp(1..=3), &cfg, |_, _, _| Act::Now(Evidence::Refused)).await;
    assert!(r.outcome.out_of_time);
    assert_eq!(r.launches.len(), 1);
    assert_eq!(r.outcome.unprobed, 2);
}

/// Two runs at once under one shared bound of `bound` attempts in flight.
fn shared(bound: usize, max_time: Duration) -> Config {
    Config {
        shared_limit: Some(Arc::new(tokio::sync::Semaphore::new(bound))),
        max_time: Some(max_time),
        ..Config::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_shared_bound_holds_over_runs_at_once() {
    let cfg = shared(10, Duration::from_secs(60));
    let flight = Flight::default();
    let (dropped_ports, answering_ports) = (tcp(1..=200), tcp(1001..=1050));
    let dropped = run_counted(
        &dropped_ports,
        &cfg,
        usize::MAX,
        1000,
        std::future::pending(),
        flight.clone(),
        |_, _, _| Act::Silent,
    );
    let answering = run_counted(
        &answering_ports,
        &cfg,
        usize::MAX,
        1000,
        std::future::pending(),
        flight.clone(),
        |port, _, _| match port % 3 {
            0 => Act::Now(Evidence::Refused),
            _ => Act::After(ms(5), Evidence::Connected),
        },
    );
    let (dropped, answering) = tokio::join!(dropped, answering);
    let most = flight.most.load(Ordering::SeqCst);
    assert!(most <= 10, "{most} attempts in flight over a bound of 10");
    assert_eq!(most, 10, "the bound is used in full");
    assert!(!dropped.outcome.out_of_time && !answering.outcome.out_of_time);
    assert_eq!(dropped.outcome.results.len(), 200);
    assert!(
        dropped
            .outcome
            .results
            .iter()
            .all(|r| r.state == State::Filtered)
    );
    assert_eq!(answering.outcome.results.len(), 50);
    assert_eq!(answering.result(1001).state, State::Open);
    assert_eq!(answering.result(1001).attempts, 1);
    assert_eq!(answering.result(1002).state, State::Closed);
    let bound = cfg.shared_limit.as_ref().unwrap();
    assert_eq!(bound.available_permits(), 10, "every ticket given back");
}

#[tokio::test(start_paused = true)]
async fn a_small_run_finishes_while_a_large_one_holds_the_bound() {
    let cfg = shared(16, Duration::from_secs(20));
    let flight = Flight::default();
    let large_ports = tcp(1..=5000);
    let large = run_counted(
        &large_ports,
        &cfg,
        usize::MAX,
        1000,
        std::future::pending(),
        flight.clone(),
        |_, _, _| Act::Silent,
    );
    let small = async {
        // The large run has taken every ticket by now.
        tokio::time::sleep(ms(100)).await;
        let started = Instant::now();
        let r = run_counted(
            &tcp(7001..=7006),
            &cfg,
            usize::MAX,
            1000,
            std::future::pending(),
            flight.clone(),
            |_, _, _| Act::After(ms(5), Evidence::Connected),
        )
        .await;
        (r, started.elapsed(), Instant::now())
    };
    let (large, (small, took, small_ended)) = tokio::join!(large, small);
    assert!(
        large.outcome.out_of_time,
        "the large run needs more than its deadline"
    );
    assert!(small_ended < large.started + ms(20_000));
    assert_eq!(small.outcome.results.len(), 6);
    assert!(small.outcome.results.iter().all(|r| r.state == State::Open));
    // Its turn comes with the first tickets the large run gives back, at
    // its attempts' one-second timeout: a share, not the leftovers.
    assert!(took <= ms(1000), "{took:?}");
    assert!(flight.most.load(Ordering::SeqCst) <= 16);
    // The large run got on meanwhile, with its share of the bound.
    assert!(large.launches.len() > 16 * 10, "{}", large.launches.len());
}

fn responder_cfg() -> Config {
    Config {
        responder: crate::wire::responder::Secret::new(b"a scripted responder's secret".to_vec()),
        ..Config::default()
    }
}

fn responder(transport: Transport, ports: impl IntoIterator<Item = u16>) -> Vec<(Probe, u16)> {
    ports
        .into_iter()
        .map(|p| (Probe::responder(transport), p))
        .collect()
}

fn proof(transport: Transport, port: u16, limiting: bool) -> Evidence {
    Evidence::Responder {
        answer: Answer::Proved(crate::wire::responder::Seen {
            transport,
            from: "198.18.0.2:40000".parse().unwrap(),
            to: std::net::SocketAddr::new(HOST, port),
            limiting,
        }),
        sent_from: Some("198.18.0.2:40000".parse().unwrap()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_responder_whose_proven_port_goes_silent_leaves_the_silent_ones_unconfirmed() {
    // Ports 1-7 proven at first, 8-10 never answered; when probed again
    // (the round's canary among them), nothing answers: the responder is
    // refusing everyone now.
    let r = run(
        &responder(Transport::Udp, 1..=10),
        &responder_cfg(),
        |port, nth, _| match (port, nth) {
            (1..=7, 1) => Act::After(ms(1), proof(Transport::Udp, port, false)),
            _ => Act::Silent,
        },
    )
    .await;
    for port in 1..=7 {
        assert_eq!(r.result(port).reason, Reason::Responder, "port {port}");
    }
    let canaries = (1..=7).filter(|&p| r.datagrams(p) == 2).count();
    assert_eq!(
        canaries, 1,
        "one proven port probed again, after the silent ones"
    );
    for port in 8..=10 {
        let res = r.result(port);
        assert_eq!(
            (res.state, res.note),
            (
                State::OpenFiltered,
                Some(Note::Unconfirmed(Unconfirmed::ResponderLimiting))
            ),
            "port {port}"
        );
        assert!(!res.blocked());
    }
    let note = &r.outcome.addresses[0];
    assert_eq!(
        (note.icmp_unconfirmed, note.icmp_unconfirmed_why),
        (3, Some(Unconfirmed::ResponderLimiting))
    );
}

#[tokio::test(start_paused = true)]
async fn a_responder_that_answers_its_canary_confirms_the_drops() {
    let r = run(
        &responder(Transport::Udp, 1..=10),
        &responder_cfg(),
        |port, _, _| match port {
            1..=7 => Act::After(ms(1), proof(Transport::Udp, port, false)),
            _ => Act::Silent,
        },
    )
    .await;
    for port in 8..=10 {
        let res = r.result(port);
        assert_eq!(
            (res.state, res.note),
            (State::Filtered, None),
            "port {port}"
        );
        // Two attempts, then one round.
        assert_eq!(r.datagrams(port), 3, "port {port}");
    }
    // The canary went after the silent ports of the round.
    let last_silent = r
        .launches
        .iter()
        .filter(|(p, _)| *p >= 8)
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    let canary = r
        .launches
        .iter()
        .filter(|(p, _)| *p <= 7)
        .map(|(_, t)| *t)
        .max()
        .unwrap();
    assert!(canary >= last_silent);
    assert_eq!(r.outcome.addresses[0].icmp_unconfirmed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_responder_saying_it_limits_leaves_silent_udp_ports_unconfirmed() {
    // Nothing UDP gets through, and the TCP proof says the responder was
    // refusing UDP hellos over its cap: no canary can tell a drop from that.
    let mut ports = responder(Transport::Tcp, [1]);
    ports.extend(responder(Transport::Udp, 2..=4));
    let r = run(&ports, &responder_cfg(), |port, _, _| match port {
        1 => Act::After(ms(1), proof(Transport::Tcp, 1, true)),
        _ => Act::Silent,
    })
    .await;
    assert_eq!(r.result(1).reason, Reason::Responder);
    for port in 2..=4 {
        assert_eq!(
            (r.result(port).state, r.result(port).note),
            (
                State::OpenFiltered,
                Some(Note::Unconfirmed(Unconfirmed::ResponderLimiting))
            ),
            "port {port}"
        );
    }
    // Without that news, the same silence is a drop.
    let r = run(&ports, &responder_cfg(), |port, _, _| match port {
        1 => Act::After(ms(1), proof(Transport::Tcp, 1, false)),
        _ => Act::Silent,
    })
    .await;
    for port in 2..=4 {
        assert_eq!(r.result(port).state, State::Filtered, "port {port}");
    }
}

fn busy() -> Evidence {
    Evidence::Responder {
        answer: Answer::Busy,
        sent_from: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_busy_responder_is_asked_again_after_pauses_and_reported_busy_not_blocked() {
    let r = run(
        &responder(Transport::Tcp, 1..=2),
        &responder_cfg(),
        |port, nth, _| match (port, nth) {
            (2, 3..) => Act::After(ms(1), proof(Transport::Tcp, 2, false)),
            _ => Act::After(ms(1), busy()),
        },
    )
    .await;
    let always = r.result(1);
    assert_eq!(
        (always.state, always.reason, always.attempts),
        (State::Open, Reason::ResponderBusy, BUSY_TRIES)
    );
    let times: Vec<Instant> = r
        .launches
        .iter()
        .filter(|(p, _)| *p == 1)
        .map(|(_, t)| *t)
        .collect();
    let pauses: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(
        pauses,
        [251, 501, 1001, 2001, 2001],
        "pauses after each busy answer"
    );
    let later = r.result(2);
    assert_eq!((later.reason, later.attempts), (Reason::Responder, 3));
    assert!(!r.outcome.addresses[0].loss_seen, "busy is no loss");
}

#[tokio::test(start_paused = true)]
async fn a_run_that_ends_while_the_responder_is_busy_reports_it_busy() {
    let cfg = Config {
        max_time: Some(ms(600)),
        ..responder_cfg()
    };
    let r = run(&responder(Transport::Tcp, [1]), &cfg, |_, _, _| {
        Act::After(ms(1), busy())
    })
    .await;
    assert!(r.outcome.out_of_time);
    assert_eq!(
        (r.result(1).state, r.result(1).reason),
        (State::Open, Reason::ResponderBusy)
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_brings_nothing_back_is_tried_again_before_it_counts() {
    let nothing = || Evidence::Responder {
        answer: Answer::Nothing,
        sent_from: None,
    };
    let r = run(
        &responder(Transport::Tcp, 1..=2),
        &responder_cfg(),
        move |port, nth, _| match (port, nth) {
            // A responder slow to take its connections, then in time.
            (1, 1) => Act::After(ms(900), nothing()),
            (1, _) => Act::After(ms(1), proof(Transport::Tcp, 1, false)),
            // A program that holds the connection and says nothing.
            _ => Act::After(ms(900), nothing()),
        },
    )
    .await;
    assert_eq!(
        (r.result(1).reason, r.result(1).attempts),
        (Reason::Responder, 2)
    );
    assert_eq!(
        (r.result(2).state, r.result(2).reason, r.result(2).attempts),
        (State::Open, Reason::NotResponder, 2)
    );
    assert!(!r.outcome.addresses[0].loss_seen);
}
