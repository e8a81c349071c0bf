//! What the scheduler does with a far-side responder's answers, beside its
//! loop: a proof's news for the address's rounds (a UDP port it proved is
//! the responder's canary, which vouches for a round only when its reply
//! says the responder refused nothing over its cap meanwhile; a reply
//! saying it was limiting makes it a sender that can leave silent ports
//! unconfirmed, see `pacing`), and a
//! port it had no room for, or whose connection brought nothing back in
//! time, probed again after a pause that doubles, a few times within
//! `--max-time`, keeping the result so far meanwhile (so a run that ends
//! first reports it busy, never blocked).

use std::time::Duration;

use tokio::time::Instant;

use super::Scheduler;
use crate::engine::attempt::Prober;
use crate::engine::evidence::{Answer, Evidence};
use crate::engine::outcome::PortResult;
use crate::engine::pacing::Who;
use crate::engine::slot::{SlotState, Stage};
use crate::port::Transport;

/// Attempts a port gets while the responder answers it busy.
pub(super) const BUSY_TRIES: u32 = 6;
/// The pause before the first attempt after a busy answer; it doubles
/// after each, up to [`BUSY_PAUSE_MAX`].
const BUSY_PAUSE: Duration = Duration::from_millis(250);
const BUSY_PAUSE_MAX: Duration = Duration::from_secs(2);

impl<P: Prober> Scheduler<'_, P> {
    /// Tells the rounds of address `addr` what the answer of `slot`'s
    /// attempt (in `stage`) shows of the responder.
    pub(super) fn responder_news(
        &mut self,
        addr: usize,
        slot: usize,
        stage: Stage,
        evidence: &Evidence,
        now: Instant,
    ) {
        let Evidence::Responder {
            answer: Answer::Proved(seen),
            ..
        } = evidence
        else {
            return;
        };
        let pacing = &mut self.paths[addr].pacing;
        if seen.limiting {
            pacing.responder_limiting(now);
        }
        if self.slots.get(slot).job.probe.transport() == Transport::Udp {
            match stage {
                // A canary vouches for the round only if the responder had
                // refused no hello over its cap meanwhile: else the silent
                // ports may have been refused where the canary was lucky.
                Stage::Canary if !seen.limiting => pacing.canary_answered(Who::Responder),
                Stage::Canary => {}
                Stage::Pass | Stage::Round => pacing.responder_answered(slot, now),
            }
        }
    }

    /// Queues `slot` again after a pause when the responder gave `answer`
    /// of no use yet and the port has tries left (a busy notice, up to
    /// [`BUSY_TRIES`]; no answer at all, as many as a silent port gets),
    /// keeping `result` meanwhile; `result` is handed back when it is the
    /// port's answer.
    pub(super) fn retry_unanswered(
        &mut self,
        slot: usize,
        answer: Option<Answer>,
        result: PortResult,
    ) -> Option<PortResult> {
        let s = self.slots.get(slot);
        let (waits, attempts) = (s.waits, s.attempts);
        let again = match answer {
            Some(Answer::Busy) => waits + 1 < BUSY_TRIES,
            Some(Answer::Nothing) => attempts < self.paths[s.addr].max_attempts(self.cfg.retries),
            _ => false,
        };
        if !again {
            return Some(result);
        }
        self.slots.get_mut(slot).waits = waits + 1;
        let pause = BUSY_PAUSE
            .saturating_mul(1 << waits.min(8))
            .min(BUSY_PAUSE_MAX);
        self.slots.set(
            slot,
            SlotState::Queued {
                stage: Stage::Pass,
                last: Some(result),
            },
        );
        self.defer(Instant::now() + pause, slot);
        None
    }

    /// Holds `slot` back until `at`, keeping the waiting ports in the order
    /// they are due.
    pub(super) fn defer(&mut self, at: Instant, slot: usize) {
        let i = self.deferred.partition_point(|&(t, _)| t <= at);
        self.deferred.insert(i, (at, slot));
    }
}
