//! How much the exporter holds at once, sized from the open-file limit: the
//! probes' sockets come first, the HTTP connections get what is left (up to
//! a ceiling), and no single source address may take more than its share of
//! either. A file limit the exporter cannot reach is what let idle
//! connections stop it from answering.

/// The most HTTP connections open at once, whatever the file limit allows:
/// each costs a descriptor, a task and a read buffer.
pub const MAX_CONNECTIONS: usize = 4096;
/// The most HTTP connections one source address may hold open.
pub const MAX_PER_SOURCE: usize = 512;
/// The most requests one source address may have in progress (429 past
/// that): enough for a Prometheus that scrapes hundreds of targets in the
/// same second.
pub const MAX_REQUESTS_PER_SOURCE: usize = 256;
/// The connections kept for HTTP when the file limit is too low for the
/// probe concurrency asked for: the probes get less instead.
const MIN_CONNECTIONS: usize = 64;
/// A source's share of the connections: one eighth.
const SOURCE_SHARE: usize = 8;

/// What the exporter holds at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Probe sockets in flight, over every request.
    pub probes: usize,
    /// HTTP connections open, over every source.
    pub connections: usize,
    /// HTTP connections open from one source address.
    pub per_source: usize,
    /// Requests in progress from one source address.
    pub requests_per_source: usize,
}

impl Caps {
    /// The caps for `budget` descriptors (what the open-file limit leaves
    /// once the process's own are counted) and the probe concurrency asked
    /// for. Probes and connections together stay within the budget.
    pub fn derive(budget: usize, concurrency: usize) -> Caps {
        let budget = budget.max(2);
        let reserve = MIN_CONNECTIONS.min(budget / 2);
        let probes = concurrency.clamp(1, budget - reserve);
        let connections = (budget - probes).clamp(1, MAX_CONNECTIONS);
        let per_source = (connections / SOURCE_SHARE).clamp(1, MAX_PER_SOURCE);
        Caps {
            probes,
            connections,
            per_source,
            // Every request in progress holds a connection of its own.
            requests_per_source: MAX_REQUESTS_PER_SOURCE.min(per_source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_limit_gives_the_ceilings() {
        assert_eq!(
            Caps::derive(1 << 20, 1024),
            Caps {
                probes: 1024,
                connections: MAX_CONNECTIONS,
                per_source: 512,
                requests_per_source: 256,
            }
        );
    }

    #[test]
    fn connections_get_what_the_probes_leave() {
        // A file limit of 4096 less the process's own descriptors.
        let caps = Caps::derive(4020, 1024);
        assert_eq!(caps.probes, 1024);
        assert_eq!(caps.connections, 2996);
        assert_eq!(caps.per_source, 374);
        assert_eq!(caps.requests_per_source, 256);
        assert!(caps.probes + caps.connections <= 4020);
    }

    #[test]
    fn a_small_limit_lowers_the_probes_not_the_exporter() {
        // 1024 descriptors cannot hold 1024 probes and any connection.
        let caps = Caps::derive(950, 1024);
        assert_eq!(caps.connections, 64);
        assert_eq!(caps.probes, 886);
        assert_eq!(caps.per_source, 8);
        assert_eq!(caps.requests_per_source, 8);
        for budget in 0..300 {
            for concurrency in [1, 7, 64, 1024, 16384] {
                let c = Caps::derive(budget, concurrency);
                assert!(c.probes >= 1 && c.connections >= 1 && c.per_source >= 1);
                assert!(c.probes + c.connections <= budget.max(2), "{budget} {c:?}");
                assert!(c.per_source <= c.connections);
                assert!(c.requests_per_source <= c.per_source);
            }
        }
    }
}
