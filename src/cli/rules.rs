//! `portprobe rules`: reads a JSON report (`--from FILE`, or `-` for
//! standard input, within bounds of size and time) or plans a product's
//! ports (`-p NAME --to ADDR`), and writes the rules in the language asked
//! for, to stdout or `-o`. Nothing is sent on the network.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::args::{RulesArgs, RulesFormat};
use super::source::{self, Source};
use super::{find_products, output, write_stdout};
use crate::catalog::Catalog;
use crate::clean::clean;
use crate::report::Status;
use crate::rules::report::Families;
use crate::rules::{Hook, Rules, Sources, aerleon, cisco, iptables, nftables, pf, plan, windows};

/// The largest report read: a report of every TCP and UDP port of one
/// address is some 55 MB.
pub const MAX_REPORT: u64 = 256 << 20;

/// How long standard input (or a FIFO) may take to end: a probe piped in
/// has this long to finish.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Runs `portprobe rules`.
pub fn run(catalog: &Catalog, args: &RulesArgs) -> Result<Status> {
    let families = Families {
        v4_only: args.ipv4,
        v6_only: args.ipv6,
    };
    let place = place(args)?;
    let (wanted, notes) = match &args.from {
        Some(path) => {
            let r = read_report(path, families)?;
            (r.wanted, r.notes)
        }
        None => {
            let products = find_products(catalog, &args.products)?;
            let names: Vec<String> = products.iter().map(|p| p.name.clone()).collect();
            let to: Vec<IpAddr> = args
                .to
                .iter()
                .copied()
                .filter(|&a| families.keep(a))
                .collect();
            if to.is_empty() {
                bail!("every --to address is of the family -4/-6 leaves out: no rules to write");
            }
            plan::wanted(&catalog.plan(&products, &args.port_items()), &names, &to)
        }
    };
    let sources = Sources::new(&args.source).map_err(|e| anyhow!(e))?;
    let rules = Rules::new(wanted, sources, notes).map_err(|e| anyhow!(e))?;
    if rules.rules.is_empty() {
        eprintln!(
            "portprobe: nothing to allow: no port was found blocked on an address that answered, so there are no rules"
        );
    }
    let text = match place {
        Place::Nftables(p) => nftables::render(&rules, &p).map_err(|e| anyhow!(e))?,
        Place::Iptables(chain) => iptables::render(&rules, &chain),
        Place::Pf => pf::render(&rules),
        Place::Windows => windows::render(&rules),
        Place::Cisco(name) => cisco::render(&rules, &name),
        Place::Aerleon(hook) => return write_aerleon(args, &rules, hook),
    };
    match &args.output {
        Some(path) => output::write(path, &text)?,
        None => write_stdout(&text)?,
    }
    Ok(Status::Ok)
}

/// The format, with where its rules go.
enum Place {
    Nftables(nftables::Place),
    Iptables(String),
    Pf,
    Windows,
    Cisco(String),
    Aerleon(Hook),
}

/// Where the rules go, from `--format`, `--chain` and `--nft-chain`;
/// an option the format has no use for is refused.
fn place(args: &RulesArgs) -> Result<Place> {
    let format = args.format;
    if args.nft_chain.is_some() && format != RulesFormat::Nftables {
        bail!("--nft-chain is for --format nftables; for this format give --chain NAME");
    }
    let hook = |chain: &Option<String>| -> Result<Hook> {
        match chain {
            None => Ok(Hook::Forward),
            Some(name) => Hook::of_chain(name).ok_or_else(|| {
                anyhow!(
                    "`{name}` is not a hook for a chain of its own (expected --chain FORWARD or INPUT){}",
                    if format == RulesFormat::Nftables {
                        "; to insert into a chain of yours give --nft-chain \"FAMILY TABLE CHAIN\""
                    } else {
                        ""
                    }
                )
            }),
        }
    };
    Ok(match format {
        RulesFormat::Nftables => match (&args.nft_chain, &args.chain) {
            (Some(_), Some(_)) => bail!(
                "give --nft-chain (a chain of yours to insert into) or --chain (the hook of a table of its own), not both"
            ),
            (Some(c), None) => Place::Nftables(nftables::Place::Insert(c.clone())),
            (None, chain) => Place::Nftables(nftables::Place::Table(hook(chain)?)),
        },
        RulesFormat::Iptables => Place::Iptables(
            iptables::chain_name(args.chain.as_deref().unwrap_or("FORWARD"))
                .map_err(|e| anyhow!(e))?,
        ),
        RulesFormat::Cisco => Place::Cisco(
            cisco::list_name(args.chain.as_deref().unwrap_or(cisco::DEFAULT_NAME))
                .map_err(|e| anyhow!(e))?,
        ),
        RulesFormat::Aerleon => {
            if args.output.is_none() {
                bail!(
                    "--format aerleon writes three files (definitions, terms and a policy): give -o DIR, the directory to write them in"
                );
            }
            Place::Aerleon(hook(&args.chain)?)
        }
        RulesFormat::Pf | RulesFormat::Windows if args.chain.is_some() => bail!(
            "--chain has no meaning for --format {}: its rules are {}",
            if format == RulesFormat::Pf {
                "pf"
            } else {
                "windows"
            },
            if format == RulesFormat::Pf {
                "pass in quick rules for pf.conf"
            } else {
                "inbound rules of the server's own firewall"
            }
        ),
        RulesFormat::Pf => Place::Pf,
        RulesFormat::Windows => Place::Windows,
    })
}

/// The report at `path` (`-`: standard input), read within bounds.
fn read_report(path: &Path, families: Families) -> Result<crate::rules::report::FromReport> {
    let stdin = path == Path::new("-");
    let name = if stdin {
        "standard input (--from -)".to_string()
    } else {
        format!("report {}", path.display())
    };
    if stdin && std::io::stdin().is_terminal() {
        bail!(
            "{name} is a terminal: pipe a report in (portprobe HOST --json | portprobe rules --from -) or give a file"
        );
    }
    let bytes = source::read(
        path,
        &Source {
            name: name.clone(),
            max_bytes: MAX_REPORT,
            give: "the JSON report a run wrote (portprobe HOST --json -o report.json), or `--from -` to read it from standard input",
            too_large: "write rules from a report on fewer ports or targets",
            begun: Instant::now(),
            max_time: MAX_WAIT,
            time_bound: "an hour",
            too_slow: "write the report to a file, then give that",
        },
    )?;
    crate::rules::report::parse(&bytes, families).map_err(|e| {
        anyhow!(
            "{name} is not a portprobe JSON report as `portprobe HOST --json -o report.json` writes it: {e}"
        )
    })
}

/// Writes aerleon's files under `-o DIR` and says on stdout what was
/// written and how to compile it.
fn write_aerleon(args: &RulesArgs, rules: &Rules, hook: Hook) -> Result<Status> {
    let dir = args.output.as_deref().expect("checked in place()");
    let files = aerleon::render(rules, hook);
    if files.is_empty() {
        let header: String = rules.header().iter().map(|l| format!("# {l}\n")).collect();
        write_stdout(&header)?;
        return Ok(Status::Ok);
    }
    let mut written = Vec::new();
    for f in &files {
        let path = dir.join(f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow!("cannot make directory {}: {e}", parent.display()))?;
        }
        output::write(&path, &f.text)?;
        written.push(clean(&path.display().to_string()).into_owned());
    }
    let d = clean(&dir.display().to_string()).into_owned();
    let text = format!(
        "wrote {}\n\
         compile: aclgen --base_directory {d}/policies --definitions_directory {d}/def --output_directory OUT\n\
         to unblock the ports, put the definitions beside yours and add to the terms of the filter that blocks them:\n    - include: {}\n",
        written.join(", "),
        aerleon::TERMS_INCLUDE
    );
    write_stdout(&text)?;
    Ok(Status::Ok)
}
