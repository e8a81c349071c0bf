//! The scheduler's rounds: once a run's first attempts have settled, each
//! idle address moves on, with more attempts for its silent ports when the
//! path has shown loss, then the ICMP rate-limit rounds its `Pacing` asks
//! for.

use super::*;

impl<P: Prober> Scheduler<'_, P> {
    /// Moves every idle address forward: more attempts for silent ports once
    /// the path has shown loss, then ICMP rate-limit rounds.
    pub(super) fn advance(&mut self, now: Instant, progress: &mut (dyn FnMut(Progress) + Send)) {
        let mut changed = false;
        for a in 0..self.paths.len() {
            if self.slots.in_progress(a) > 0 || self.paths[a].pacing.end_state().is_some() {
                continue;
            }
            if !self.paths[a].pacing.active() && self.retry_silent(a) {
                continue;
            }
            let was_active = self.paths[a].pacing.active();
            let silent_udp = self.slots.silent_udp(a);
            let answered = self.paths[a].answered;
            match self.paths[a].pacing.idle(now, silent_udp, answered) {
                Step::Wait => {}
                Step::Round { canaries } => {
                    self.start_round(a, &canaries);
                    changed = true;
                }
            }
            changed |= was_active != self.paths[a].pacing.active();
        }
        if changed {
            self.phase = self.current_phase();
            self.report(progress);
        }
    }

    /// Queues silent ports of address `a` that have had fewer attempts than
    /// the path now allows (it showed loss after they were tried).
    fn retry_silent(&mut self, a: usize) -> bool {
        let max = self.paths[a].max_attempts(self.cfg.retries);
        let retry: Vec<usize> = self
            .slots
            .of_addr(a)
            .iter()
            .copied()
            .filter(|&i| {
                let s = self.slots.get(i);
                matches!(s.state(), SlotState::Settled(r) if is_silence(r)) && s.attempts < max
            })
            .collect();
        for &i in &retry {
            self.requeue_settled(i, Stage::Pass);
        }
        !retry.is_empty()
    }

    /// Queues a settled port again for `stage`, keeping its result so far.
    fn requeue_settled(&mut self, i: usize, stage: Stage) {
        self.slots.update(i, |state| match state {
            SlotState::Settled(r) => SlotState::Queued {
                stage,
                last: Some(r),
            },
            other => other,
        });
        self.queue.push_back(i);
    }

    /// A round re-probes every silent UDP port, then one canary per sender
    /// (none in a blind round, before any sender is known).
    fn start_round(&mut self, a: usize, canaries: &[usize]) {
        let members: Vec<usize> = self
            .slots
            .of_addr(a)
            .iter()
            .copied()
            .filter(|&i| {
                matches!(self.slots.get(i).state(), SlotState::Settled(r)
                    if is_silence(r) && r.transport == Transport::Udp)
            })
            .collect();
        for (stage, list) in [(Stage::Round, &members[..]), (Stage::Canary, canaries)] {
            for &i in list {
                if matches!(self.slots.get(i).state(), SlotState::Settled(_)) {
                    self.requeue_settled(i, stage);
                }
            }
        }
    }
}
