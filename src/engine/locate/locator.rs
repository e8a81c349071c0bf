//! What locating keeps between runs and shares among runs at once: the
//! located answers and paths (`memory`), and each router's ICMP allowance
//! (`budget`). A front end that probes again and again (the exporter,
//! `--watch`) gives every run the same [`Locator`]; a single run gets one
//! of its own.

use std::sync::{Mutex, MutexGuard};

use super::budget::Budgets;
use super::memory::Memory;

/// Located answers and routers' ICMP allowances, shared by the runs given
/// it (`Config::locator`). Answers are given again for
/// [`REUSE`](super::REUSE), re-checked within the routers' allowances until
/// [`KEEP`](super::KEEP), then forgotten; a scan that shows their ports
/// behaving otherwise forgets them at once.
#[derive(Debug, Default)]
pub struct Locator {
    budgets: Mutex<Budgets>,
    memory: Mutex<Memory>,
}

impl Locator {
    /// Nothing located yet, nothing known of any router.
    pub fn new() -> Self {
        Locator::default()
    }

    pub(super) fn budgets(&self) -> MutexGuard<'_, Budgets> {
        self.budgets.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }
}
