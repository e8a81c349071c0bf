//! A bound on attempts in flight shared by runs that go on at once (the
//! exporter's requests): every attempt holds one permit of a common
//! semaphore for as long as it waits for its evidence, on top of its own
//! run's concurrency.
//!
//! A run that finds no permit free queues for one, one waiter per run at a
//! time. tokio's semaphore hands freed permits to its waiters first come,
//! first served, so runs that want more than there is take turns, one
//! attempt each: a large or slow run slows a small one down but never
//! starves it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

type Acquiring = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// One attempt's hold on the shared bound (nothing without one), given
/// back when dropped: it travels with the attempt.
#[derive(Debug)]
pub(super) struct Ticket(Option<OwnedSemaphorePermit>);

/// A run's side of the shared bound.
pub(super) struct Share {
    bound: Option<Arc<Semaphore>>,
    /// A permit got by waiting, not yet given to an attempt.
    spare: Option<OwnedSemaphorePermit>,
    /// The run's place in the semaphore's queue, kept while the run does
    /// other things, so that it is not lost to a cancelled wait.
    acquiring: Option<Acquiring>,
}

impl Share {
    /// A run's side of `bound`; without one, every attempt gets a ticket.
    pub(super) fn new(bound: Option<Arc<Semaphore>>) -> Share {
        Share {
            bound,
            spare: None,
            acquiring: None,
        }
    }

    /// A ticket for one attempt now, if one is free.
    pub(super) fn take(&mut self) -> Option<Ticket> {
        let Some(bound) = &self.bound else {
            return Some(Ticket(None));
        };
        if let Some(permit) = self.spare.take() {
            return Some(Ticket(Some(permit)));
        }
        if self.acquiring.is_some() {
            // Others are queued; the run's turn comes through `wait`.
            return None;
        }
        Arc::clone(bound)
            .try_acquire_owned()
            .ok()
            .map(|p| Ticket(Some(p)))
    }

    /// Keeps a ticket that was taken but not used, for the next attempt.
    pub(super) fn put_back(&mut self, ticket: Ticket) {
        if let Some(permit) = ticket.0 {
            self.spare = Some(permit);
        }
    }

    /// Whether [`Share::take`] may succeed now.
    pub(super) fn ready(&self) -> bool {
        match &self.bound {
            None => true,
            Some(bound) => {
                self.spare.is_some() || (self.acquiring.is_none() && bound.available_permits() > 0)
            }
        }
    }

    /// Completes once a ticket can be taken: at once without a bound or
    /// with a spare permit, else when the run's turn in the queue comes.
    /// Cancel-safe: a cancelled wait keeps the run's place.
    pub(super) async fn wait(&mut self) {
        let Some(bound) = &self.bound else {
            return;
        };
        if self.spare.is_some() {
            return;
        }
        let acquiring = self
            .acquiring
            .get_or_insert_with(|| Box::pin(Arc::clone(bound).acquire_owned()));
        let got = acquiring.await;
        self.acquiring = None;
        match got {
            Ok(permit) => self.spare = Some(permit),
            // Nobody closes the semaphore; if it were, it would bound
            // nothing any more.
            Err(_) => self.bound = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tickets_hold_permits_until_dropped() {
        let bound = Arc::new(Semaphore::new(2));
        let mut a = Share::new(Some(Arc::clone(&bound)));
        let t1 = a.take().unwrap();
        let t2 = a.take().unwrap();
        assert!(a.take().is_none() && !a.ready());
        drop(t1);
        assert!(a.ready());
        let t3 = a.take().unwrap();
        a.put_back(t3);
        assert_eq!(bound.available_permits(), 0);
        assert!(a.ready(), "the spare is kept for the run");
        drop(t2);
        assert!(Share::new(None).take().is_some());
    }

    #[tokio::test]
    async fn waiting_runs_take_turns() {
        let bound = Arc::new(Semaphore::new(1));
        let mut a = Share::new(Some(Arc::clone(&bound)));
        let mut b = Share::new(Some(Arc::clone(&bound)));
        let held = a.take().unwrap();
        // b queues first, then a: the freed permit goes to b.
        let b_waits = futures::FutureExt::now_or_never(b.wait());
        assert!(b_waits.is_none());
        assert!(futures::FutureExt::now_or_never(a.wait()).is_none());
        drop(held);
        assert!(futures::FutureExt::now_or_never(a.wait()).is_none());
        assert!(futures::FutureExt::now_or_never(b.wait()).is_some());
        let ticket = b.take().unwrap();
        drop(ticket);
        assert!(futures::FutureExt::now_or_never(a.wait()).is_some());
        assert!(a.take().is_some());
    }
}
