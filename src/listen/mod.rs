//! `portprobe listen`: the far-side responder. It binds every port of a
//! product, answers each well-formed hello with a reply tagged under the
//! shared secret (see [`crate::wire::responder`]), and at SIGINT or SIGTERM
//! closes every socket and says what arrived on each port.
//!
//! The order of a run is the order of its safety: bind everything (raising
//! the open-file limit or refusing clearly), drop root if asked, then
//! serve, within per-source limits and a fixed amount of memory per port.

mod bind;
mod holder;
mod limit;
mod pktinfo;
mod serve;
mod summary;
mod tcp;
mod user;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

pub use bind::Addresses;
pub use limit::{CONNECTIONS_PER_SOURCE, SOURCE_BURST, SOURCE_RATE, TOTAL_BURST, TOTAL_RATE};
pub use serve::MAX_CONNECTIONS;

use crate::port::Transport;
use crate::wire::responder::Secret;

/// Everything a responder needs.
#[derive(Debug)]
pub struct Config {
    /// Where to listen.
    pub addresses: Addresses,
    /// The ports to answer on.
    pub ports: Vec<(Transport, u16)>,
    /// The secret shared with the clients.
    pub secret: Secret,
    /// The user to become once the ports are bound.
    pub user: Option<String>,
}

/// Runs the responder until SIGINT or SIGTERM, writing what it does to
/// `out`: the skipped ports and the ports answered on, once all are bound;
/// the summary per port at shutdown.
pub fn run(config: Config, out: &mut dyn Write) -> Result<()> {
    let account = config.user.as_deref().map(user::lookup).transpose()?;
    let bindings = bind::bind_all(&config.addresses, &config.ports, serve::MAX_CONNECTIONS)?;
    if let Some(account) = &account {
        user::become_user(account)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shared = Arc::new(serve::Shared::new(config.secret, bindings.connections));
    let started = summary::started(
        &bindings,
        account.as_ref().map(|a| (a.name.as_str(), a.uid)),
    );
    let began = Instant::now();
    let signal_name = runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
        let tasks = serve::spawn_all(bindings.bound, &shared)
            .context("cannot register the sockets with the runtime")?;
        write!(out, "{started}").and_then(|()| out.flush())?;
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        drop(tasks);
        anyhow::Ok(name)
    })?;
    // Every task and connection ends with the runtime: no socket outlives it.
    drop(runtime);
    let ran = began.elapsed();
    let report = summary::stopped(&shared.take_tally(), &config.ports, ran, signal_name);
    write!(out, "{report}").and_then(|()| out.flush())?;
    Ok(())
}
