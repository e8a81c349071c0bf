//! SIGHUP reading the exporter's configuration file again. Each request
//! takes a snapshot of what is in force when it starts
//! ([`State::current`]), so a reload changes new scrapes only and never
//! one in flight. A file that does not check keeps the running
//! configuration whole; what cannot change without a restart (the
//! listening address, the concurrency limit the connection caps are sized
//! from) is kept and said so. The outcome of the last reload is exported
//! as Prometheus exports its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::live::{Live, Overrides, Settled, settle};
use crate::catalog::Catalog;

/// Where the configuration comes from, for a reload.
#[derive(Debug)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// The flags.
    pub overrides: Overrides,
}

/// The outcome of the last reload.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    successful: bool,
    last_success: SystemTime,
}

/// The configuration in force, and how it came to be.
#[derive(Debug)]
pub struct State {
    live: RwLock<Arc<Live>>,
    outcome: Mutex<Outcome>,
    source: Option<Source>,
    listen: SocketAddr,
    concurrency: u32,
}

impl State {
    /// The configuration `settled` at start, from `source` when there is
    /// a file.
    pub fn new(settled: &Settled, source: Option<Source>) -> State {
        State {
            live: RwLock::new(Arc::new(settled.live.clone())),
            outcome: Mutex::new(Outcome {
                successful: true,
                last_success: SystemTime::now(),
            }),
            source,
            listen: settled.listen,
            concurrency: settled.concurrency,
        }
    }

    /// What is in force now: a snapshot that a reload does not change.
    pub fn current(&self) -> Arc<Live> {
        Arc::clone(&self.live.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the file again: a good one is in force for the requests
    /// that start from now on; a bad one changes nothing. The lines to
    /// tell (on stderr), each whole.
    pub fn reload(&self, catalog: &Catalog) -> Vec<String> {
        let Some(source) = &self.source else {
            return vec![
                "portprobe serve: SIGHUP: no --config FILE to read again; nothing changed"
                    .to_string(),
            ];
        };
        let settled = super::config::load(&source.path, catalog)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                let settled = settle(Some(&file), &source.overrides)?;
                Ok((file, settled))
            });
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let (file, settled) = match settled {
            Ok(s) => s,
            Err(why) => {
                outcome.successful = false;
                return vec![format!(
                    "portprobe serve: reload: {why}; the running configuration is kept"
                )];
            }
        };
        let shown = crate::clean::clean(&source.path.to_string_lossy()).into_owned();
        let mut said = Vec::new();
        if settled.listen != self.listen {
            said.push(format!(
                "portprobe serve: reload: {shown}: listen cannot change without a restart: still serving on {} (not {})",
                self.listen, settled.listen
            ));
        }
        if settled.concurrency != self.concurrency {
            said.push(format!(
                "portprobe serve: reload: {shown}: concurrency cannot change without a restart: still {} (not {})",
                self.concurrency, settled.concurrency
            ));
        }
        said.push(format!(
            "portprobe serve: reloaded {shown}: {} module{}, {} label{}",
            file.modules.len(),
            if file.modules.len() == 1 { "" } else { "s" },
            file.labels.len(),
            if file.labels.len() == 1 { "" } else { "s" },
        ));
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settled.live);
        *outcome = Outcome {
            successful: true,
            last_success: SystemTime::now(),
        };
        said
    }

    /// The reload series, as Prometheus names its own.
    pub fn render(&self) -> String {
        let outcome = *self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        let at = outcome
            .last_success
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        format!(
            "# HELP portprobe_config_last_reload_successful 1 when the last reading of the configuration file (at start or on SIGHUP) was taken, 0 when it was refused and the configuration before it is in force.\n\
             # TYPE portprobe_config_last_reload_successful gauge\n\
             portprobe_config_last_reload_successful {}\n\
             # HELP portprobe_config_last_reload_success_timestamp_seconds When the configuration in force was read, in seconds since the Unix epoch.\n\
             # TYPE portprobe_config_last_reload_success_timestamp_seconds gauge\n\
             portprobe_config_last_reload_success_timestamp_seconds {at}\n",
            u8::from(outcome.successful)
        )
    }
}
