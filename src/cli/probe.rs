//! `portprobe HOST ...`: wiring a probe run.

use anyhow::{Result, bail};

use super::{ProbeArgs, find_products, nothing_to_probe};
use crate::catalog::Catalog;
use crate::report::Status;

/// Runs a probe and reports it.
pub fn run(catalog: &Catalog, args: ProbeArgs) -> Result<Status> {
    if args.hosts.is_empty() && args.targets.is_none() {
        bail!(
            "no host given: name one or more hosts, e.g. `portprobe server.local --product \"Mac OS X Server\"`"
        );
    }
    if args.products.is_empty() && args.ports.is_empty() {
        return Err(nothing_to_probe());
    }
    let products = find_products(catalog, &args.products)?;
    let _plan = catalog.plan(&products, &args.port_items());
    bail!("probing is not available yet")
}
