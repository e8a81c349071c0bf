//! `portprobe HOST ...`: resolving the targets, running the engine (once, or
//! every interval with `--watch`), and writing the report in the chosen
//! format, with a progress bar for people at a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use super::{
    ColorChoice, Format, ProbeArgs, find_products, nothing_to_probe, targets, write_stdout,
};
use crate::catalog::{Catalog, Plan};
use crate::engine::{self, Config, Family, Phase, Probe, Progress, Resolved, Target};
use crate::report::{self, Report, Status, TextOptions, words};

/// The default bound on a run's time.
/// Runs shorter than this never show a progress bar.
const PROGRESS_DELAY: Duration = Duration::from_millis(300);

/// Everything a probe run needs, settled from the arguments.
struct Run<'a> {
    /// When the run began: the first round's deadline counts from here.
    begun: Instant,
    hosts: Vec<String>,
    family: Family,
    plan: Plan,
    products: Vec<String>,
    cfg: Config,
    args: &'a ProbeArgs,
    text: TextOptions,
}

/// Runs a probe (or a watch) and reports it.
pub fn run(catalog: &Catalog, args: ProbeArgs) -> Result<Status> {
    // The first round's --max-time counts from here: reading --targets
    // from a stream is part of it.
    let begun = Instant::now();
    let max_time = args.max_time;
    let hosts = targets::hosts(&args.hosts, args.targets.as_deref(), begun, max_time)?;
    if args.products.is_empty() && args.ports.is_empty() {
        return Err(nothing_to_probe());
    }
    let products = find_products(catalog, &args.products)?;
    let plan = catalog.plan(&products, &args.port_items());
    if let Some(path) = output(&args) {
        super::output::check(path)?;
    }
    let responder = if args.responder {
        Some(crate::input::secret::load(args.secret_file.as_deref())?)
    } else {
        None
    };
    let run = Run {
        begun,
        hosts,
        family: match (args.ipv4, args.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        },
        plan,
        products: products.iter().map(|p| p.name.clone()).collect(),
        cfg: Config {
            concurrency: args.concurrency.map(|c| c as usize),
            shared_limit: None,
            rate: args.rate,
            timeout: args.timeout,
            retries: args.retries,
            max_time: Some(max_time),
            snmp_community: args.snmp_community.clone(),
            locate: !args.no_locate,
            // Rounds of --watch keep what they located, and locate again
            // only what changed: every round draws on the same routers'
            // ICMP allowances.
            locator: args
                .watch
                .map(|_| std::sync::Arc::new(engine::Locator::new())),
            responder,
        },
        text: TextOptions {
            color: use_color(
                args.color,
                output(&args).is_none() && std::io::stdout().is_terminal(),
            ),
            verbose: args.verbose,
            quiet: args.quiet,
        },
        args: &args,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = runtime.block_on(run.go());
    // A name lookup the deadline or Ctrl-C gave up on may still be blocked
    // in the system resolver: do not wait for it.
    runtime.shutdown_background();
    status
}

/// Where `--output` sends the report; `None` for standard output, also
/// when given as `-o -`.
fn output(args: &ProbeArgs) -> Option<&Path> {
    args.output.as_deref().filter(|p| *p != Path::new("-"))
}

/// Colour for `--color`: `auto` means a terminal, with neither `NO_COLOR`
/// (non-empty) nor `TERM=dumb` set.
fn use_color(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// Set once Ctrl-C or SIGTERM arrives. Both are caught from the moment
/// this returns, so a signal that follows the first report (in `--watch`)
/// stops the run cleanly instead of killing it.
fn stop_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    tokio::spawn(async move {
        tokio::select! {
            () = arrival(term) => {}
            () = arrival(int) => {}
        }
        let _ = tx.send(true);
    });
    rx
}

/// Completes when `signal` arrives; never, when it could not be caught.
async fn arrival(signal: Option<Signal>) {
    match signal {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

impl Run<'_> {
    async fn go(&self) -> Result<Status> {
        let stop = stop_signal();
        let mut previous: Option<Report> = None;
        loop {
            let report = self.probe_once(stop.clone(), previous.is_none()).await?;
            if report.interrupted {
                // A round cut short: report it (once), then stop.
                if previous.is_none() || self.args.watch.is_none() {
                    self.emit(&report, None)?;
                    return Ok(Status::Unknown);
                }
                return Ok(previous.map_or(Status::Unknown, |p| p.status()));
            }
            self.emit(&report, previous.as_ref())?;
            let Some(interval) = self.args.watch else {
                return Ok(report.status());
            };
            let status = report.status();
            previous = Some(report);
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stopped(stop.clone()) => return Ok(status),
            }
        }
    }

    /// Writes one run's report: in full the first time, then (text in watch
    /// mode) only what changed.
    fn emit(&self, report: &Report, previous: Option<&Report>) -> Result<()> {
        let format = self.args.format();
        let full = match format {
            Format::Json => {
                let mut s = report::json::render(report);
                s.push('\n');
                s
            }
            Format::Nagios => report::nagios::render(report),
            Format::Prometheus => report::prometheus::render(report),
            Format::Text => report::text::render(report, self.text),
        };
        if let Some(path) = output(self.args) {
            return super::output::write(path, &full);
        }
        match (format, previous) {
            (Format::Text, Some(before)) => {
                let time = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
                write_stdout(&report::changes::render(before, report, &time))
            }
            _ => write_stdout(&full),
        }
    }

    /// Resolves every host, probes every address, and builds the report,
    /// all under one deadline (`--max-time`) and the stop signal.
    async fn probe_once(&self, stop: watch::Receiver<bool>, first: bool) -> Result<Report> {
        let started = if first {
            tokio::time::Instant::from_std(self.begun)
        } else {
            tokio::time::Instant::now()
        };
        let deadline = engine::later(started, self.args.max_time);
        let resolved = engine::resolve_all(
            &self.hosts,
            self.family,
            Some(deadline),
            stopped(stop.clone()),
        )
        .await;
        let mut targets: Vec<(String, Result<Resolved, String>)> = Vec::new();
        let mut addresses: Vec<Target> = Vec::new();
        for (host, result) in self.hosts.iter().zip(resolved) {
            match result {
                Err(e) if self.hosts.len() == 1 && self.args.watch.is_none() => {
                    return Err(e.into());
                }
                Err(e) => targets.push((host.clone(), Err(words::error_chain(&e)))),
                Ok(resolved) => {
                    for t in &resolved.targets {
                        if !addresses.iter().any(|a| a.ip == t.ip) {
                            addresses.push(*t);
                        }
                    }
                    targets.push((host.clone(), Ok(resolved)));
                }
            }
        }
        let ports: Vec<(Probe, u16)> = self.plan.ports.iter().map(|p| (p.probe, p.port)).collect();
        let mut bar = ProgressDisplay::new(
            first
                && self.args.format() == Format::Text
                && !self.args.quiet
                && std::io::stderr().is_terminal(),
        );
        let check = engine::Check {
            targets: &addresses,
            ports: &ports,
            cfg: &self.cfg,
            started,
            deadline,
        };
        let outcome = engine::check(check, &mut |p| bar.update(p), stopped(stop)).await;
        bar.finish();
        if self.args.verbose {
            let (ignored, more) = &outcome.ignored;
            for i in ignored {
                eprintln!("{}", words::ignored(i));
            }
            if *more > 0 {
                eprintln!("{}", words::ignored_more(*more));
            }
        }
        let mut report = Report::new(targets, self.products.clone(), &self.plan, outcome);
        report.ready_after(started.elapsed());
        Ok(report)
    }
}

/// The progress bar on stderr: ports done of the total, blocked so far,
/// elapsed time and an estimate. It appears only once a run has lasted a
/// moment, and is cleared before the report is written.
struct ProgressDisplay {
    bar: Option<ProgressBar>,
    started: Instant,
    shown: bool,
    explaining: bool,
}

/// Ports done of the total, with an estimate of the time left.
fn probing_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} ports, {msg}, about {eta} left",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

/// While silent UDP ports are confirmed or blocked ports located: what is
/// being done and why, with no estimate (routers' and the target's ICMP
/// allowances set the pace).
fn explaining_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} ports; {msg}")
        .expect("a valid template")
}

impl ProgressDisplay {
    fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
            bar.set_style(probing_style());
            bar
        });
        ProgressDisplay {
            bar,
            started: Instant::now(),
            shown: false,
            explaining: false,
        }
    }

    fn update(&mut self, p: Progress) {
        let Some(bar) = &self.bar else { return };
        if !self.shown && self.started.elapsed() >= PROGRESS_DELAY {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            self.shown = true;
        }
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        let explained = match p.phase {
            Phase::Probing => None,
            Phase::Confirming {
                ports,
                addresses,
                round,
                max_rounds,
            } => Some(words::confirming(ports, addresses, round, max_rounds)),
            Phase::Locating { ports, waiting_for } => Some(words::locating(ports, waiting_for)),
        };
        // While confirming or locating, the bar says what and why instead
        // of an estimate.
        if explained.is_some() != self.explaining {
            bar.set_style(if explained.is_some() {
                explaining_style()
            } else {
                probing_style()
            });
            self.explaining = explained.is_some();
        }
        bar.set_message(explained.unwrap_or_else(|| format!("{} blocked", p.blocked)));
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
