//! The command line: parses arguments and wires the catalog, the engine and
//! the reports together. Errors reach the user as one line on stderr and exit
//! code 3 (UNKNOWN), whatever went wrong.

mod args;
mod generate;
mod listen;
mod output;
mod probe;
mod rules;
mod serve;
mod source;
mod targets;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use clap::error::ErrorKind;

pub use args::{
    Cli, ColorChoice, Command, Format, Generate, ListenArgs, PortsArgs, ProbeArgs, ProductsArgs,
    RulesArgs, RulesFormat, ServeArgs,
};

use crate::catalog::{Catalog, Product};
use crate::clean::clean;
use crate::report::{Status, listing, service, words};

/// Runs portprobe with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let args = args::hoist_probe(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args).and_then(generate::alone) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    match run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(e) => {
            let message = one_line(&words::error_chain(e.as_ref()));
            eprintln!("portprobe: {}", clean(&message));
            ExitCode::from(Status::Unknown.code())
        }
    }
}

/// Help and version go to stdout with exit 0; every other argument error is
/// one line on stderr with exit 3, since clap's own code (2) would read as
/// CRITICAL to a monitoring system.
fn clap_exit(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = e.to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            let message = message.join(" ").replace(" tip: ", "; ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("portprobe: {} (see `portprobe --help`)", clean(message));
            ExitCode::from(Status::Unknown.code())
        }
    }
}

/// Joins a message onto one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(cli: Cli) -> Result<Status> {
    if let Some(what) = cli.generate {
        return generate::print(what);
    }
    let catalog = match &cli.catalog {
        Some(path) => Catalog::from_file(path)?,
        None => Catalog::builtin(),
    };
    match cli.command {
        // Probe options given before a listing's name shape nothing it
        // prints, except the output format.
        Some(Command::Products(args)) => products(&catalog, args.json || cli.probe.json_asked()),
        Some(Command::Ports(args)) => {
            let json = args.json || cli.probe.json_asked();
            ports(&catalog, &args, json)
        }
        Some(Command::Probe(args)) => probe::run(&catalog, *args),
        Some(Command::Listen(args)) => listen::run(&catalog, &args),
        Some(Command::Serve(args)) => serve::run(catalog, &args),
        Some(Command::Rules(args)) => rules::run(&catalog, &args),
        None => probe::run(&catalog, cli.probe),
    }
}

/// Looks up every product name, failing on the first unknown one.
fn find_products<'a>(catalog: &'a Catalog, names: &[String]) -> Result<Vec<&'a Product>> {
    let mut found: Vec<&Product> = Vec::new();
    for name in names {
        let p = catalog.find_product(name)?;
        if !found.iter().any(|q| q.name == p.name) {
            found.push(p);
        }
    }
    Ok(found)
}

fn products(catalog: &Catalog, json: bool) -> Result<Status> {
    let text = if json {
        let mut s = serde_json::to_string_pretty(&listing::product_summaries(catalog))?;
        s.push('\n');
        s
    } else {
        listing::products_text(catalog)
    };
    write_stdout(&text)?;
    Ok(Status::Ok)
}

fn ports(catalog: &Catalog, args: &PortsArgs, json: bool) -> Result<Status> {
    let (requirements, left_out) = if args.all {
        (catalog.all_requirements(), None)
    } else {
        let products = find_products(catalog, &args.products)?;
        let items: Vec<_> = args.ports.iter().flatten().copied().collect();
        let mut reqs = catalog.requirements(&products);
        reqs.extend(catalog.ad_hoc_requirements(&items));
        let left_out = service::not_probed_line(&catalog.plan(&products, &items).not_probed);
        (reqs, left_out)
    };
    if json {
        write_json_stdout(&requirements)?;
    } else {
        let mut text = listing::ports_text(&requirements);
        if let Some(line) = left_out {
            text.push_str(&clean(&line));
            text.push('\n');
        }
        write_stdout(&text)?;
    }
    Ok(Status::Ok)
}

/// Writes to stdout; a closed pipe (`portprobe ports --all | head`) is not an error.
fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// Writes `value` to stdout as pretty JSON and a newline, rendering it
/// straight into the stream rather than into one string first; a closed pipe
/// is not an error.
fn write_json_stdout(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// The error for a probe run that names neither products nor ports.
fn nothing_to_probe() -> anyhow::Error {
    anyhow::anyhow!(
        "nothing to probe: give --product NAME or --ports SPEC (run `portprobe products` to list the products)"
    )
}
