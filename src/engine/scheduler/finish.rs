//! The end of a run: everything still running is stopped, and the results
//! are gathered with what each address showed.

use super::*;

impl<P: Prober> Scheduler<'_, P> {
    /// Stops everything still running and gathers the results: ports tried
    /// but unanswered count as silent, ports never tried as unprobed.
    pub(super) fn finish(
        &mut self,
        interrupted: bool,
        out_of_time: bool,
        started: Instant,
    ) -> RunOutcome {
        self.inflight.abort_all();
        let now = Instant::now();
        let why = |end: Option<End>, rounds: u32| match end {
            Some(End::Capped) => Unconfirmed::RoundCap { rounds },
            Some(End::Limited) => Unconfirmed::ResponderLimiting,
            _ if interrupted => Unconfirmed::Stopped,
            _ => Unconfirmed::OutOfTime,
        };
        let unconfirmed: Vec<Option<Unconfirmed>> = self
            .paths
            .iter()
            .map(|p| {
                p.pacing
                    .left_unconfirmed(p.answered)
                    .then(|| why(p.pacing.end_state(), p.pacing.rounds()))
            })
            .collect();
        let mut unconfirmed_count = vec![0; self.paths.len()];
        let mut unprobed = 0;
        let mut results = Vec::with_capacity(self.slots.len());
        for slot in std::mem::take(&mut self.slots).into_inner() {
            let mut result = match slot.state() {
                SlotState::Settled(r) => r.clone(),
                SlotState::Queued { last: Some(r), .. }
                | SlotState::Running { last: Some(r), .. } => r.clone(),
                _ if slot.attempts > 0 => verdict::silent(&slot.job, slot.attempts),
                _ => {
                    unprobed += 1;
                    continue;
                }
            };
            if let Some(why) = unconfirmed[slot.addr]
                && is_silence(&result)
                && result.transport == Transport::Udp
            {
                result.note = Some(Note::Unconfirmed(why));
                // Silence a limiting responder may have caused blocks nothing.
                if why == Unconfirmed::ResponderLimiting {
                    result.state = State::OpenFiltered;
                }
                unconfirmed_count[slot.addr] += 1;
            }
            results.push(result);
        }
        results.sort_by_key(|r| (r.address, r.transport, r.port));
        let addresses = self
            .paths
            .iter()
            .zip(unconfirmed_count)
            .zip(unconfirmed)
            .map(|((p, count), why)| AddressNote {
                address: p.target.ip,
                icmp_senders: p.pacing.senders(),
                icmp_rounds: p.pacing.rounds(),
                icmp_revealed: p.pacing.revealed_count(),
                icmp_unconfirmed: count,
                icmp_unconfirmed_why: why.filter(|_| count > 0),
                icmp_time: p.pacing.time(now),
                loss_seen: p.loss_seen,
                srtt: p.srtt(),
                route: None,
            })
            .collect();
        RunOutcome {
            results,
            unprobed,
            interrupted,
            out_of_time,
            addresses,
            duration: started.elapsed(),
            ignored: (Vec::new(), 0),
        }
    }
}
