//! `portprobe serve`: the allow-list and limits from the arguments, and the
//! exporter run until a signal.

use anyhow::{Result, anyhow};

use super::ServeArgs;
use crate::catalog::Catalog;
use crate::report::Status;
use crate::serve::{self, AllowList};

/// Runs the exporter.
pub fn run(catalog: Catalog, args: &ServeArgs) -> Result<Status> {
    let allow = if args.allow_any {
        AllowList::any()
    } else {
        let mut list = AllowList::default();
        for spec in &args.allow {
            list.add(spec).map_err(|e| anyhow!("--allow: {e}"))?;
        }
        list
    };
    if allow.is_empty() {
        return Err(anyhow!(
            "portprobe serve needs --allow CIDR|HOST, the targets it may probe (or --allow-any): an open exporter is a scanning proxy for whoever reaches it"
        ));
    }
    let web = match &args.web_config_file {
        Some(path) => serve::Web::load(path)?,
        None => serve::Web::default(),
    };
    let config = serve::Config {
        listen: args.listen,
        allow,
        concurrency: args.concurrency as usize,
        max_time: args.max_time,
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        web,
    };
    serve::run(config, catalog, &mut std::io::stdout())?;
    Ok(Status::Ok)
}
