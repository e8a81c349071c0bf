//! Volleys in flight: each probe sent in order once it holds a ticket of the
//! run's shared bound, with the time it left (a canary vouches only for
//! probes just before it), and the answers gathered per volley.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::Instant;

use super::search::{Answer, answer};
use super::work::{Answers, Volley};
use crate::engine::attempt::{AttemptSpec, Prober, Started};
use crate::engine::evidence::Deadline;
use crate::engine::path::Path;
use crate::engine::rtt::TCP_FLOOR;
use crate::engine::share::Share;

/// The shortest wait for a probe's answer: the scan's own for TCP.
const FLOOR: Duration = TCP_FLOOR;

type Waiting = Pin<Box<dyn Future<Output = (usize, usize, Answer)> + Send>>;

struct Flight {
    work: usize,
    volley: Volley,
    answers: Vec<Option<(Answer, Instant)>>,
    sent: Vec<Option<Instant>>,
    pending: usize,
}

/// The volleys of every address being located.
pub(super) struct Flights<'a, P: Prober> {
    prober: &'a mut P,
    paths: &'a [Path],
    /// Per address: how long a probe waits, and a look's shorter wait.
    timeouts: Vec<(watch::Sender<Duration>, watch::Sender<Duration>)>,
    share: &'a mut Share,
    flights: Vec<Option<Flight>>,
    queue: VecDeque<(usize, usize)>,
    waiting: FuturesUnordered<Waiting>,
}

impl<'a, P: Prober> Flights<'a, P> {
    /// Nothing in flight; probes to `paths[i]` wait three round trips and a
    /// tenth of a second, at least [`FLOOR`] (a look: four round trips and
    /// 20 ms, for its quick answers only).
    pub(super) fn new(prober: &'a mut P, paths: &'a [Path], share: &'a mut Share) -> Self {
        let timeouts = paths
            .iter()
            .map(|p| {
                let srtt = p.srtt();
                let t = srtt.map_or(Duration::from_secs(1), |rtt| {
                    (rtt * 3 + Duration::from_millis(100)).clamp(FLOOR, Duration::from_secs(2))
                });
                let quick = srtt
                    .map_or(Duration::from_millis(100), |rtt| {
                        rtt * 4 + Duration::from_millis(20)
                    })
                    .min(t);
                (watch::Sender::new(t), watch::Sender::new(quick))
            })
            .collect();
        Flights {
            prober,
            paths,
            timeouts,
            share,
            flights: Vec::new(),
            queue: VecDeque::new(),
            waiting: FuturesUnordered::new(),
        }
    }

    /// Queues `volley` of work `work`.
    pub(super) fn launch(&mut self, work: usize, volley: Volley) {
        let n = volley.requests.len();
        let id = self.flights.len();
        self.flights.push(Some(Flight {
            work,
            volley,
            answers: vec![None; n],
            sent: vec![None; n],
            pending: n,
        }));
        self.queue.extend((0..n).map(|i| (id, i)));
    }

    /// Sends what is queued, in order, while tickets of the shared bound
    /// come at once; `addr` gives each work's address.
    pub(super) fn send(&mut self, addr: &[usize]) {
        while let Some(&(f, i)) = self.queue.front() {
            let Some(ticket) = self.share.take() else {
                break;
            };
            self.queue.pop_front();
            let flight = self.flights[f].as_mut().expect("a queued flight");
            let a = addr[flight.work];
            let path = &self.paths[a];
            let r = flight.volley.requests[i];
            let spec = AttemptSpec {
                target: path.target.socket(r.port),
                probe: r.probe,
                context: &path.context,
                local: path.local,
                ttl: r.ttl,
            };
            let (normal, quick) = &self.timeouts[a];
            let timeout = if flight.volley.quick { quick } else { normal };
            let deadline = Deadline::new(timeout.subscribe());
            let target = path.target.ip;
            let now = Instant::now();
            flight.sent[i] = Some(now);
            match self.prober.start(&spec, deadline) {
                Err(_) => self.record(f, i, Answer::NotSent),
                Ok(Started::Done(done)) => self.record(f, i, answer(&done.evidence, target)),
                Ok(Started::Waiting(fut)) => self.waiting.push(Box::pin(async move {
                    let finished = fut.await;
                    drop(ticket);
                    (f, i, answer(&finished.evidence, target))
                })),
            }
        }
    }

    /// Gives up on everything still queued: not sent.
    pub(super) fn drop_queued(&mut self) {
        while let Some((f, i)) = self.queue.pop_front() {
            self.record(f, i, Answer::NotSent);
        }
    }

    fn record(&mut self, f: usize, i: usize, a: Answer) {
        let flight = self.flights[f].as_mut().expect("a flight in the air");
        let sent = flight.sent[i].unwrap_or_else(Instant::now);
        if flight.answers[i].replace((a, sent)).is_none() {
            flight.pending -= 1;
        }
    }

    /// A volley whose every answer is in: its work, the volley and the
    /// answers, each with the time its probe left.
    pub(super) fn landed(&mut self) -> Option<(usize, Volley, Answers)> {
        let f = self
            .flights
            .iter()
            .position(|f| f.as_ref().is_some_and(|f| f.pending == 0))?;
        let flight = self.flights[f].take().expect("a landed flight");
        let answers = flight
            .answers
            .into_iter()
            .map(|a| a.expect("every answer is in"))
            .collect();
        if self.flights.iter().all(Option::is_none) {
            self.flights.clear();
        }
        Some((flight.work, flight.volley, answers))
    }

    /// Whether a volley has every answer in.
    pub(super) fn landed_any(&self) -> bool {
        self.flights
            .iter()
            .any(|f| f.as_ref().is_some_and(|f| f.pending == 0))
    }

    /// Nothing queued or waiting.
    pub(super) fn idle(&self) -> bool {
        self.queue.is_empty() && self.waiting.is_empty()
    }

    /// Waits for an answer, or for a ticket when probes are queued.
    pub(super) async fn progress(&mut self) {
        let queued = !self.queue.is_empty();
        tokio::select! {
            Some((f, i, a)) = self.waiting.next(), if !self.waiting.is_empty() => {
                self.record(f, i, a);
            }
            () = self.share.wait(), if queued => {}
            else => std::future::pending().await,
        }
    }
}
