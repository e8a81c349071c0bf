//! `portprobe listen`: the ports of the named products (or `--ports`), the
//! secret, and the responder run until a signal.

use std::io::Write;

use anyhow::Result;

use super::{ListenArgs, find_products};
use crate::catalog::Catalog;
use crate::listen::{self, Addresses};
use crate::report::{Status, service};

/// Runs the responder and reports what it saw.
pub fn run(catalog: &Catalog, args: &ListenArgs) -> Result<Status> {
    let products = find_products(catalog, &args.products)?;
    let plan = catalog.plan(&products, &args.port_items());
    let secret = crate::input::secret::load(args.secret_file.as_deref())?;
    let mut out = std::io::stdout();
    if let Some(line) = service::not_probed_line(&plan.not_probed) {
        writeln!(out, "{}", line.replacen("not probed", "not answered on", 1))?;
    }
    let config = listen::Config {
        addresses: if args.bind.is_empty() {
            Addresses::Every
        } else {
            Addresses::These(args.bind.clone())
        },
        ports: plan.ports.iter().map(|p| (p.transport, p.port)).collect(),
        secret,
        user: args.user.clone(),
    };
    listen::run(config, &mut out)?;
    Ok(Status::Ok)
}
