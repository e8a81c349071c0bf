//! `portprobe HOST ...`: resolving the targets, running the engine, and
//! writing the report.

use std::net::IpAddr;

use anyhow::{Context, Result, bail};

use super::{Format, ProbeArgs, find_products, nothing_to_probe, write_stdout};
use crate::catalog::{Catalog, Plan};
use crate::engine::{self, Config, Family, Job};
use crate::report::{self, Report, Status, TextOptions};

/// Runs a probe and reports it.
pub fn run(catalog: &Catalog, args: ProbeArgs) -> Result<Status> {
    let hosts = hosts(&args)?;
    if args.products.is_empty() && args.ports.is_empty() {
        return Err(nothing_to_probe());
    }
    let products = find_products(catalog, &args.products)?;
    let plan = catalog.plan(&products, &args.port_items());
    let product_names: Vec<String> = products.iter().map(|p| p.name.clone()).collect();
    let cfg = Config {
        concurrency: args.concurrency.map(|c| c as usize),
        rate: args.rate,
        timeout: args.timeout,
        retries: args.retries,
        max_time: Some(args.max_time.unwrap_or(std::time::Duration::from_secs(60))),
        snmp_community: args.snmp_community.clone(),
    };
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(probe_once(&hosts, family, &plan, product_names, &cfg))?;
    let text = match args.format() {
        Format::Json => {
            let mut s = report::json::render(&report);
            s.push('\n');
            s
        }
        _ => report::text::render(
            &report,
            TextOptions {
                color: false,
                verbose: args.verbose,
                quiet: args.quiet,
            },
        ),
    };
    write_stdout(&text)?;
    Ok(report.status())
}

/// The hosts from the command line and --targets.
fn hosts(args: &ProbeArgs) -> Result<Vec<String>> {
    let mut hosts = args.hosts.clone();
    if let Some(path) = &args.targets {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read targets file {}", path.display()))?;
        for line in text.lines() {
            let host = line.split('#').next().unwrap_or("").trim();
            if !host.is_empty() {
                hosts.push(host.to_string());
            }
        }
    }
    if hosts.is_empty() {
        bail!(
            "no host given: name one or more hosts, e.g. `portprobe server.local --product \"Mac OS X Server\"`"
        );
    }
    Ok(hosts)
}

/// Resolves every host, probes every address, and builds the report.
async fn probe_once(
    hosts: &[String],
    family: Family,
    plan: &Plan,
    products: Vec<String>,
    cfg: &Config,
) -> Result<Report> {
    let mut targets: Vec<(String, Result<Vec<IpAddr>, String>)> = Vec::new();
    for host in hosts {
        let resolved = engine::resolve(host, family).await;
        if hosts.len() == 1 {
            let addresses = resolved?;
            targets.push((host.clone(), Ok(addresses)));
        } else {
            targets.push((host.clone(), resolved.map_err(|e| e.to_string())));
        }
    }
    let mut addresses: Vec<IpAddr> = Vec::new();
    for (_, r) in &targets {
        for a in r.iter().flatten() {
            if !addresses.contains(a) {
                addresses.push(*a);
            }
        }
    }
    let jobs: Vec<Job> = addresses
        .iter()
        .flat_map(|&address| {
            plan.ports.iter().map(move |p| Job {
                address,
                transport: p.transport,
                port: p.port,
            })
        })
        .collect();
    let outcome = engine::run(jobs, cfg, &mut |_| {}, interrupted()).await?;
    Ok(Report::new(targets, products, plan, outcome))
}

/// Completes on Ctrl-C or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
