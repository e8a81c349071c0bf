//! The UDP ports portprobe's own probe sockets hold. Probing this machine
//! itself, a datagram from one probe socket can land on another (its port
//! is in the probed range), and would otherwise read as a reply; and a port
//! held by a probe socket cannot be probed until that socket is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// IPv4 or IPv6, and a port.
type Key = (bool, u16);

/// The ports held by live probe sockets, shared by every attempt of a run.
#[derive(Debug, Default)]
pub struct OwnPorts {
    held: Mutex<HashMap<Key, usize>>,
}

impl OwnPorts {
    /// Whether a probe socket of this family holds `port`.
    pub fn holds(&self, v6: bool, port: u16) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(v6, port))
    }

    /// Records that a probe socket holds `port` until the guard is dropped.
    pub fn hold(self: &Arc<Self>, v6: bool, port: u16) -> Held {
        *self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((v6, port))
            .or_insert(0) += 1;
        Held {
            ports: Arc::clone(self),
            key: (v6, port),
        }
    }
}

/// A port held by a probe socket; released on drop.
#[derive(Debug)]
pub struct Held {
    ports: Arc<OwnPorts>,
    key: Key,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self
            .ports
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_held_while_a_guard_lives() {
        let own = Arc::new(OwnPorts::default());
        let a = own.hold(false, 40000);
        let b = own.hold(false, 40000);
        assert!(own.holds(false, 40000));
        assert!(!own.holds(true, 40000), "families are apart");
        drop(a);
        assert!(own.holds(false, 40000));
        drop(b);
        assert!(!own.holds(false, 40000));
    }
}
