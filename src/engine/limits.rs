//! The open-file budget: every probe in flight holds one socket.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// File descriptors kept free for everything that is not a probe socket
/// (standard streams, the runtime, the resolver, an output file).
pub const HEADROOM: u64 = 64;

/// The default ceiling on probes in flight: enough for every port of a
/// large silent range to wait at once.
pub const DEFAULT_CONCURRENCY: usize = 16384;

/// Raises the soft open-file limit as far as the hard limit allows and
/// returns how many sockets probes may hold at once.
pub fn raise_nofile_limit() -> usize {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 256;
    };
    let wanted = hard.min(1 << 20);
    let soft = if wanted > soft && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        wanted
    } else {
        soft
    };
    let open = open_descriptors().unwrap_or(16);
    usize::try_from(soft.saturating_sub(open + HEADROOM).max(8)).unwrap_or(usize::MAX)
}

/// Descriptors already open in this process.
fn open_descriptors() -> Option<u64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    u64::try_from(n).ok()
}
