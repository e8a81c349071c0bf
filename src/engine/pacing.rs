//! The ICMP rate-limit rounds of one address, as a state machine without
//! I/O: the scheduler tells it what happened and asks it what to do.
//!
//! Linux sends about one ICMP error per second to each destination after a
//! burst of six, so a range of closed UDP ports goes silent after a few
//! port-unreachables, and silence alone cannot tell such a port from a
//! dropped one. When a UDP port of an address stays silent and some router
//! or host has sent ICMP errors about that address, the silent ports are
//! probed again in rounds, each started a spacing after the last ICMP error
//! from every sender, and each ending with a *canary*: a port that drew an
//! ICMP error from that sender before. The canary goes last, so if it is
//! answered, the sender still had capacity after every silent port of the
//! round, and a closed port among them would have been answered too: the
//! silent ports are confirmed. A host that answered some port but sent no
//! ICMP error at all may have been out of allowance for the whole first pass
//! (a run just before spent it), so it gets one *blind* round; if that draws
//! an ICMP error, canary rounds follow.
//!
//! The spacing starts at a second and doubles after each round that could
//! not confirm, up to six seconds: a Linux sender's allowance refills at one
//! error per second up to a burst of six, so a longer wait lets one round
//! reveal several hidden ports at the cost of one datagram per silent port.
//! The number of rounds is capped (each costs every silent port one more
//! datagram); ports a capped run could not confirm are reported as such.
//!
//! A far-side responder limits too: when a flood (its sources maybe forged)
//! spends its total allowance, it answers no one for a while, and its
//! silent ports would look blocked. So against a responder the responder
//! itself is a sender: its canary is a UDP port it proved, which goes last
//! in the round like every canary; one whose tagged replies said it was
//! limiting is a sender even without a canary (nothing can then confirm).
//! If the responder's canary goes silent, or it has none, the silent ports
//! are left unconfirmed ([`End::Limited`]), never called blocked.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Rounds at most, unless `--retries` says otherwise: each round sends every
/// silent UDP port of the address one more datagram.
pub const DEFAULT_ROUNDS: u32 = 8;
/// Rounds at most against a responder, unless `--retries` says otherwise:
/// a silent port is known to be blocked already (the responder always
/// answers, unless it is limiting, which the round's canary shows), and
/// the rounds only tell a rejection whose ICMP error the limit withheld
/// from a drop.
pub const RESPONDER_ROUNDS: u32 = 1;
/// The spacing before the first round.
const FIRST_SPACING: Duration = Duration::from_secs(1);
/// The longest spacing: a Linux sender's full burst of six errors.
const MAX_SPACING: Duration = Duration::from_secs(6);

/// Who limits what it sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// A router or host sending ICMP errors (its address, when known).
    Icmp(Option<IpAddr>),
    /// The far-side responder, answering hellos.
    Responder,
}

/// A router or host that sent ICMP errors about the address, or the
/// responder, and a port it answered (the canary).
#[derive(Clone, Debug)]
struct Sender {
    who: Who,
    last: Instant,
    canary: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// The address's first pass (and retries) are still running.
    FirstPass,
    /// Waiting for the senders' allowances to refill.
    Waiting { until: Instant },
    /// A round is running; `answered` lists senders whose canary answered.
    Round {
        started: Instant,
        answered: Vec<Who>,
    },
    /// Nothing (more) to do.
    Over(End),
}

/// How the rounds ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// No round was needed: nothing silent, or a host that answered nothing.
    Unneeded,
    /// Every sender answered its canary after the silent ports.
    Confirmed,
    /// The cap on rounds was reached first.
    Capped,
    /// The responder was limiting: its canary went silent in the last
    /// round, or it had none.
    Limited,
}

/// What the scheduler should do for the address now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing yet.
    Wait,
    /// Probe every silent UDP port once more, then these canaries.
    Round {
        /// Slots of the canaries, one per sender.
        canaries: Vec<usize>,
    },
}

/// The rounds of one address.
#[derive(Clone, Debug)]
pub struct Pacing {
    phase: Phase,
    senders: Vec<Sender>,
    max_rounds: u32,
    rounds: u32,
    revealed: u32,
    spacing: Duration,
    started: Option<Instant>,
    ended: Option<Instant>,
}

impl Pacing {
    /// Rounds for one address, at most `max_rounds` of them.
    pub fn new(max_rounds: u32) -> Self {
        Pacing {
            phase: Phase::FirstPass,
            senders: Vec::new(),
            max_rounds,
            rounds: 0,
            revealed: 0,
            spacing: FIRST_SPACING,
            started: None,
            ended: None,
        }
    }

    /// An ICMP error about a UDP probe of `slot` came from `from`.
    pub fn icmp_error(&mut self, from: Option<IpAddr>, slot: usize, now: Instant) {
        self.heard(Who::Icmp(from), Some(slot), now);
    }

    /// The responder proved the UDP port of `slot` (which becomes its
    /// canary, if it has none yet).
    pub fn responder_answered(&mut self, slot: usize, now: Instant) {
        self.heard(Who::Responder, Some(slot), now);
    }

    /// A reply of the responder said it was refusing hellos over its cap.
    pub fn responder_limiting(&mut self, now: Instant) {
        self.heard(Who::Responder, None, now);
    }

    fn heard(&mut self, who: Who, canary: Option<usize>, now: Instant) {
        match self.senders.iter_mut().find(|s| s.who == who) {
            Some(s) => {
                if who != Who::Responder {
                    s.last = now;
                }
                s.canary = s.canary.or(canary);
            }
            None => self.senders.push(Sender {
                who,
                last: now,
                canary,
            }),
        }
    }

    /// A canary was answered by `who` during a round.
    pub fn canary_answered(&mut self, who: Who) {
        if let Phase::Round { answered, .. } = &mut self.phase {
            answered.push(who);
        }
    }

    /// A port silent before answered during a round.
    pub fn revealed(&mut self) {
        self.revealed += 1;
    }

    /// Whether rounds are waiting or running.
    pub fn active(&self) -> bool {
        matches!(self.phase, Phase::Waiting { .. } | Phase::Round { .. })
    }

    /// Nothing of the address is queued or running: what next? `silent_udp`
    /// counts its silent UDP ports; `host_answered` says whether the address
    /// itself answered any port (open or closed).
    pub fn idle(&mut self, now: Instant, silent_udp: usize, host_answered: bool) -> Step {
        match &self.phase {
            Phase::Over(_) => Step::Wait,
            Phase::FirstPass => {
                if silent_udp == 0 || (self.senders.is_empty() && !host_answered) {
                    // Nothing silent, or a host that answered nothing at all:
                    // no ICMP limit can have hidden anything.
                    self.phase = Phase::Over(End::Unneeded);
                } else if self.max_rounds == 0 {
                    self.phase = Phase::Over(End::Capped);
                } else {
                    self.started = Some(now);
                    self.phase = Phase::Waiting {
                        until: self.round_start(now, now + self.spacing),
                    };
                }
                Step::Wait
            }
            Phase::Waiting { until } if now >= *until => {
                self.rounds += 1;
                self.phase = Phase::Round {
                    started: now,
                    answered: Vec::new(),
                };
                Step::Round {
                    canaries: self.senders.iter().filter_map(|s| s.canary).collect(),
                }
            }
            Phase::Waiting { .. } => Step::Wait,
            Phase::Round { started, answered } => {
                // Every sender, including one first heard during this round,
                // must have answered its canary after the silent ports; with
                // no sender at all, the blind round revealed nothing.
                let confirmed = self.senders.iter().all(|s| answered.contains(&s.who));
                let limited = self
                    .senders
                    .iter()
                    .any(|s| s.who == Who::Responder && !answered.contains(&Who::Responder));
                let started = *started;
                if confirmed || silent_udp == 0 {
                    self.end(End::Confirmed, now);
                } else if self.rounds >= self.max_rounds {
                    self.end(if limited { End::Limited } else { End::Capped }, now);
                } else {
                    self.spacing = (self.spacing * 2).min(MAX_SPACING);
                    self.phase = Phase::Waiting {
                        until: self.round_start(now, started + self.spacing),
                    };
                }
                Step::Wait
            }
        }
    }

    fn end(&mut self, end: End, now: Instant) {
        self.phase = Phase::Over(end);
        self.ended = Some(now);
    }

    /// When the next round may start: a spacing after the last ICMP error
    /// from every sender, and not before `earliest`.
    fn round_start(&self, now: Instant, earliest: Instant) -> Instant {
        self.senders
            .iter()
            .map(|s| s.last + self.spacing)
            .fold(earliest.max(now), Instant::max)
    }

    /// When the state machine wants to be asked again, if it waits for time.
    pub fn wake(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            _ => None,
        }
    }

    /// How the rounds ended, once they have.
    pub fn end_state(&self) -> Option<End> {
        match self.phase {
            Phase::Over(end) => Some(end),
            _ => None,
        }
    }

    /// Whether silent UDP ports are left unconfirmed: the rounds were needed
    /// (`host_answered` or ICMP senders) and did not confirm them.
    pub fn left_unconfirmed(&self, host_answered: bool) -> bool {
        match self.phase {
            Phase::Over(End::Capped | End::Limited) => true,
            Phase::Over(_) => false,
            _ => host_answered || !self.senders.is_empty(),
        }
    }

    /// Senders of ICMP errors, in the order first heard.
    pub fn senders(&self) -> Vec<IpAddr> {
        self.senders
            .iter()
            .filter_map(|s| match s.who {
                Who::Icmp(ip) => ip,
                Who::Responder => None,
            })
            .collect()
    }

    /// Rounds started.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Silent ports that answered in a round.
    pub fn revealed_count(&self) -> u32 {
        self.revealed
    }

    /// Time spent waiting and re-probing, up to `now` if not over.
    pub fn time(&self, now: Instant) -> Duration {
        match self.started {
            Some(s) => self.ended.unwrap_or(now) - s,
            None => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const HOST: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)));
    const ROUTER: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)));

    fn after(t: Instant, ms: u64) -> Instant {
        t + Duration::from_millis(ms)
    }

    #[test]
    fn nothing_silent_or_a_dead_host_needs_no_round() {
        let t = Instant::now();
        let mut p = Pacing::new(DEFAULT_ROUNDS);
        p.icmp_error(HOST, 1, t);
        assert_eq!(p.idle(t, 0, true), Step::Wait);
        assert_eq!(p.end_state(), Some(End::Unneeded));
        let mut dead = Pacing::new(DEFAULT_ROUNDS);
        assert_eq!(dead.idle(t, 40, false), Step::Wait);
        assert_eq!(dead.end_state(), Some(End::Unneeded));
        assert!(!dead.left_unconfirmed(false));
    }

    #[test]
    fn a_round_waits_a_second_after_the_last_icmp_error_and_ends_with_the_canaries() {
        let t = Instant::now();
        let mut p = Pacing::new(DEFAULT_ROUNDS);
        p.icmp_error(HOST, 7, t);
        p.icmp_error(ROUTER, 9, after(t, 200));
        p.icmp_error(HOST, 8, after(t, 300));
        // A second after the pass ended at 400 ms, and after the last error.
        assert_eq!(p.idle(after(t, 400), 3, true), Step::Wait);
        assert_eq!(p.wake(), Some(after(t, 1400)));
        assert_eq!(p.idle(after(t, 1399), 3, true), Step::Wait);
        assert_eq!(
            p.idle(after(t, 1400), 3, true),
            Step::Round {
                canaries: vec![7, 9]
            }
        );
        assert!(p.active());
        p.canary_answered(Who::Icmp(HOST));
        p.canary_answered(Who::Icmp(ROUTER));
        assert_eq!(p.idle(after(t, 1400), 3, true), Step::Wait);
        assert_eq!(p.end_state(), Some(End::Confirmed));
        assert_eq!(p.time(after(t, 5000)), Duration::from_millis(1000));
        p.icmp_error(HOST, 7, after(t, 2000));
        assert_eq!(p.wake(), None, "over is over");
        assert!(!p.left_unconfirmed(true));
    }

    #[test]
    fn an_unanswered_canary_means_another_round_after_a_longer_wait() {
        let t = Instant::now();
        let mut p = Pacing::new(DEFAULT_ROUNDS);
        p.icmp_error(HOST, 1, t);
        p.idle(t, 5, true);
        assert!(matches!(
            p.idle(after(t, 1000), 5, true),
            Step::Round { .. }
        ));
        // A hidden closed port answered and spent the allowance: the canary
        // stays silent.
        p.revealed();
        p.icmp_error(HOST, 4, after(t, 1010));
        assert_eq!(p.idle(after(t, 1400), 4, true), Step::Wait);
        assert_eq!(
            p.wake(),
            Some(after(t, 3010)),
            "two seconds after the last error"
        );
        assert!(matches!(
            p.idle(after(t, 3010), 4, true),
            Step::Round { .. }
        ));
        p.icmp_error(HOST, 1, after(t, 3020));
        p.canary_answered(Who::Icmp(HOST));
        p.idle(after(t, 3300), 4, true);
        assert_eq!(p.end_state(), Some(End::Confirmed));
        assert_eq!((p.rounds(), p.revealed_count()), (2, 1));
    }

    #[test]
    fn the_spacing_grows_to_six_seconds() {
        let t = Instant::now();
        let mut p = Pacing::new(20);
        p.icmp_error(HOST, 1, t);
        p.idle(t, 5, true);
        let mut now = t;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let until = p.wake().unwrap();
            waits.push((until - now).as_millis());
            now = until;
            assert!(matches!(p.idle(now, 5, true), Step::Round { .. }));
            p.idle(now, 5, true);
        }
        assert_eq!(waits, [1000, 2000, 4000, 6000, 6000]);
    }

    #[test]
    fn rounds_stop_at_the_cap_and_leave_the_ports_unconfirmed() {
        let t = Instant::now();
        let mut p = Pacing::new(3);
        p.icmp_error(ROUTER, 1, t);
        p.idle(t, 10, true);
        let mut rounds = 0;
        while let Some(until) = p.wake() {
            assert!(matches!(p.idle(until, 10, true), Step::Round { .. }));
            rounds += 1;
            p.idle(until, 10, true);
        }
        assert_eq!(rounds, 3);
        assert_eq!(p.end_state(), Some(End::Capped));
        assert!(p.left_unconfirmed(true));
    }

    #[test]
    fn no_rounds_allowed_leaves_suspect_ports_unconfirmed_at_once() {
        let t = Instant::now();
        let mut p = Pacing::new(0);
        p.icmp_error(HOST, 1, t);
        assert_eq!(p.idle(t, 2, true), Step::Wait);
        assert_eq!(p.end_state(), Some(End::Capped));
        assert_eq!(p.rounds(), 0);
        assert!(p.left_unconfirmed(true));
    }

    #[test]
    fn a_blind_round_that_draws_an_error_is_followed_by_a_canary_round() {
        let t = Instant::now();
        let mut p = Pacing::new(DEFAULT_ROUNDS);
        p.idle(t, 3, true);
        assert_eq!(
            p.idle(after(t, 1000), 3, true),
            Step::Round { canaries: vec![] }
        );
        p.revealed();
        p.icmp_error(HOST, 5, after(t, 1001));
        p.idle(after(t, 1400), 2, true);
        assert_eq!(p.end_state(), None);
        assert_eq!(
            p.idle(p.wake().unwrap(), 2, true),
            Step::Round { canaries: vec![5] }
        );
        p.canary_answered(Who::Icmp(HOST));
        p.idle(after(t, 4000), 2, true);
        assert_eq!(p.end_state(), Some(End::Confirmed));
    }

    #[test]
    fn a_blind_round_that_draws_nothing_confirms() {
        let t = Instant::now();
        let mut p = Pacing::new(DEFAULT_ROUNDS);
        p.idle(t, 3, true);
        assert!(matches!(
            p.idle(after(t, 1000), 3, true),
            Step::Round { .. }
        ));
        p.idle(after(t, 1400), 3, true);
        assert_eq!(p.end_state(), Some(End::Confirmed));
        assert!(p.senders().is_empty());
    }

    #[test]
    fn a_run_cut_short_leaves_suspect_ports_unconfirmed() {
        let t = Instant::now();
        let mut p = Pacing::new(DEFAULT_ROUNDS);
        p.icmp_error(HOST, 1, t);
        p.idle(t, 3, true);
        assert!(p.active());
        assert!(p.left_unconfirmed(true));
    }

    #[test]
    fn the_responder_is_a_sender_whose_silent_canary_leaves_ports_limited() {
        let t = Instant::now();
        let mut p = Pacing::new(RESPONDER_ROUNDS);
        p.responder_answered(3, t);
        p.responder_answered(4, t);
        p.idle(t, 2, true);
        assert_eq!(
            p.idle(p.wake().unwrap(), 2, true),
            Step::Round { canaries: vec![3] },
            "its first proven port is its canary"
        );
        p.idle(after(t, 1500), 2, true);
        assert_eq!(p.end_state(), Some(End::Limited));
        assert!(p.left_unconfirmed(true));
        assert!(p.senders().is_empty(), "the responder is no ICMP sender");

        // Its canary answering after the silent ports confirms them.
        let mut p = Pacing::new(RESPONDER_ROUNDS);
        p.responder_answered(3, t);
        p.idle(t, 2, true);
        assert!(matches!(
            p.idle(p.wake().unwrap(), 2, true),
            Step::Round { .. }
        ));
        p.canary_answered(Who::Responder);
        p.idle(after(t, 1500), 2, true);
        assert_eq!(p.end_state(), Some(End::Confirmed));
    }

    #[test]
    fn a_responder_saying_it_limits_confirms_nothing_without_a_canary() {
        let t = Instant::now();
        let mut p = Pacing::new(RESPONDER_ROUNDS);
        p.responder_limiting(t);
        p.idle(t, 4, true);
        assert_eq!(
            p.idle(p.wake().unwrap(), 4, true),
            Step::Round { canaries: vec![] }
        );
        p.idle(after(t, 1500), 4, true);
        assert_eq!(p.end_state(), Some(End::Limited));
        // ICMP senders answering their canaries do not vouch for it.
        let mut p = Pacing::new(RESPONDER_ROUNDS);
        p.icmp_error(ROUTER, 9, t);
        p.responder_limiting(t);
        p.idle(t, 4, true);
        assert_eq!(
            p.idle(p.wake().unwrap(), 4, true),
            Step::Round { canaries: vec![9] }
        );
        p.canary_answered(Who::Icmp(ROUTER));
        p.idle(after(t, 1500), 4, true);
        assert_eq!(p.end_state(), Some(End::Limited));
    }
}
