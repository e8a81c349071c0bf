//! Reports: turning catalog listings and probe results into text, HTML, JSON and
//! exit codes. Nothing here touches the network.

pub mod changes;
pub mod html;
pub mod json;
pub mod listing;
pub mod model;
pub mod nagios;
pub mod prometheus;
pub mod service;
pub mod text;
pub mod words;

pub use model::{HostVerdict, ProductVerdict, Report, Row, Summary, TargetReport};
pub use text::TextOptions;

/// The outcome of a run as a monitoring system reads it: the exit code
/// follows the Nagios / Icinga plugin convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// 0: every required port is reachable.
    Ok,
    /// 1: every required port is reachable, but some service did not answer
    /// or reachability could not be confirmed.
    Warning,
    /// 2: some required port is blocked.
    Critical,
    /// 3: the question could not be answered (bad input, name not resolved,
    /// internal error, interrupted run).
    Unknown,
}

impl Status {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// The word monitoring systems print: OK, WARNING, CRITICAL, UNKNOWN.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// The exit codes, as `--help` and the README state them.
pub const EXIT_CODES: &str = "\
Exit codes (the Nagios/Icinga plugin convention):
  0  OK        every required port is reachable
  1  WARNING   reachable, but some service is not answering or could not be confirmed
  2  CRITICAL  some required port is blocked
  3  UNKNOWN   bad input, host name not resolved, interrupted run or internal error";
