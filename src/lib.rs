//! portprobe: can this host be reached on every port an Apple product needs,
//! and if not, which ports are blocked and by whom?
//!
//! The crate is laid out as the stages of one run:
//!
//! - [`catalog`]: the port catalog (built from Apple's article on well-known
//!   TCP and UDP ports) and product lookup. Pure data.
//! - [`port`]: transports, port ranges and the `--ports` language.
//! - [`wire`]: one module per UDP protocol, building requests and recognising
//!   replies as pure functions over bytes.
//! - [`engine`]: resolving, scheduling, timeouts, retries and socket work.
//!   Knows nothing of Apple or of terminals, and never prints.
//! - [`report`]: turns results into text, JSON and exit codes. No network.
//! - [`rules`]: `portprobe rules`, the firewall rules that allow exactly
//!   the ports a report found blocked, in a firewall's own language. No
//!   network.
//! - [`cli`]: the command line, wiring the others together.
//! - [`listen`]: `portprobe listen`, the far-side responder that `--responder`
//!   probes prove a path against.
//! - [`serve`]: `portprobe serve`, a Prometheus exporter and a page for
//!   people, over the same engine.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "portprobe runs on Linux only: it reads ICMP errors from each socket's error queue \
     (IP_RECVERR, IPV6_RECVERR), which other systems do not have; from a Mac, use the \
     page of a `portprobe serve` running on a Linux host"
);

pub mod catalog;
pub mod clean;
pub mod cli;
pub mod engine;
pub(crate) mod input;
pub mod listen;
pub mod port;
pub mod report;
pub mod rules;
pub mod serve;
pub mod wire;
