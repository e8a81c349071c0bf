//! `portprobe serve`: the configuration file and the flags laid over it
//! (a flag given wins), the exporter run until a signal; or
//! `--check-config FILE`, the file checked and the exporter not started.

use anyhow::{Result, anyhow};

use super::ServeArgs;
use crate::catalog::Catalog;
use crate::clean::clean;
use crate::report::Status;
use crate::serve::{self, AllowList, config, live, reload};

/// Runs the exporter, or checks its configuration file.
pub fn run(catalog: Catalog, args: &ServeArgs) -> Result<Status> {
    if let Some(path) = &args.check_config {
        let file = config::load(path, &catalog)?;
        let names: Vec<&str> = file.modules.keys().map(String::as_str).collect();
        println!(
            "{}: OK: {} module{}{}, {} label{}{}",
            clean(&path.to_string_lossy()),
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            },
            file.labels.len(),
            if file.labels.len() == 1 { "" } else { "s" },
            if file.allow.is_none() {
                "; no allow: the exporter needs --allow (or --allow-any) with it"
            } else {
                ""
            },
        );
        return Ok(Status::Ok);
    }
    let web = match &args.web_config_file {
        Some(path) => serve::Web::load(path)?,
        None => serve::Web::default(),
    };
    let overrides = live::Overrides {
        listen: args.listen,
        allow: allow(args)?,
        concurrency: args.concurrency,
        max_time: args.max_time,
    };
    let file = args
        .config
        .as_deref()
        .map(|path| config::load(path, &catalog))
        .transpose()?;
    let settled = live::settle(file.as_ref(), &overrides).map_err(|e| anyhow!(e))?;
    let config = serve::Config {
        settled,
        source: args
            .config
            .clone()
            .map(|path| reload::Source { path, overrides }),
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        web,
    };
    serve::run(config, catalog, &mut std::io::stdout())?;
    Ok(Status::Ok)
}

/// The allow-list of the flags, when they give one.
fn allow(args: &ServeArgs) -> Result<Option<AllowList>> {
    if args.allow_any {
        return Ok(Some(AllowList::any()));
    }
    if args.allow.is_empty() {
        return Ok(None);
    }
    let mut list = AllowList::default();
    for spec in &args.allow {
        list.add(spec).map_err(|e| anyhow!("--allow: {e}"))?;
    }
    Ok(Some(list))
}
