//! The command-line arguments (clap derive).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::input::duration;
use crate::port::{PortItem, parse_port_list};
use crate::report::EXIT_CODES;

const ABOUT: &str = "Can this host be reached on every port an Apple product needs? \
Probes the TCP and UDP ports from Apple's table of well-known ports and reports which \
are open, which answer with no service, and which are blocked, and by whom.";

const STATES: &str = "\
Port states:
  open           TCP connect completed, or a UDP reply came back
  closed         the host answered that nothing listens (TCP reset, ICMP port unreachable):
                 the path is open; note that a firewall can forge a TCP reset too
  filtered       blocked: no answer at all (TCP), or an ICMP error such as
                 administratively prohibited, with the address of the router that sent it
  open|filtered  UDP only: no reply, which is either a silent service or a silent drop";

/// portprobe's command line.
#[derive(Debug, Parser)]
#[command(
    name = "portprobe",
    version,
    about = ABOUT,

    subcommand_negates_reqs = true,
    after_help = format!("Examples:\n  portprobe server.local --product \"Mac OS X Server\"\n  portprobe 192.0.2.10 --product ARD --product \"File Sharing\" --json\n  portprobe server.local --ports 548,5900,53/udp\n  portprobe products\n  portprobe ports --product \"Apple Remote Desktop\"\n\n{STATES}\n\n{EXIT_CODES}"),
)]
pub struct Cli {
    /// Use this catalog file instead of the built-in one (same format as data/apple-ports.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub catalog: Option<PathBuf>,

    /// The subcommand; none means a probe.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The probe's arguments, when no subcommand is given.
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// Print the man page or a shell completion script, made from this command line, and exit.
    #[arg(long, value_enum, value_name = "WHAT", conflicts_with_all = probe_option_ids())]
    pub generate: Option<Generate>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe hosts (the default when no subcommand is given).
    Probe(Box<ProbeArgs>),
    /// List the products the catalog knows, with aliases and port counts.
    Products(ProductsArgs),
    /// Show what would be probed, sending nothing.
    Ports(PortsArgs),
    /// Answer `--responder` probes on every port of a product, to prove a firewall path before the service runs.
    Listen(ListenArgs),
    /// Serve probes over HTTP: a Prometheus exporter (/probe?target=HOST&product=NAME), its own /metrics, and a page at /.
    Serve(ServeArgs),
    /// Write the firewall rules that allow exactly the ports a report found blocked (or a product needs), for nftables, iptables, pf, Windows, Cisco IOS or aerleon.
    Rules(RulesArgs),
}

/// The languages `portprobe rules` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// `nft -f` commands: `insert rule` into --nft-chain, or a table of its own.
    Nftables,
    /// A shell script of iptables and ip6tables `-I` commands.
    Iptables,
    /// pf.conf `pass in quick` rules.
    Pf,
    /// PowerShell `New-NetFirewallRule` commands, for the server's own firewall.
    Windows,
    /// Cisco IOS extended access lists.
    Cisco,
    /// aerleon (capirca) definitions, terms and a policy for `aclgen` (needs -o DIR).
    Aerleon,
}

/// Output formats for probe results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A report for people at a terminal.
    Text,
    /// One JSON document (JSON Lines with --watch).
    Json,
    /// A Nagios/Icinga plugin status line with performance data.
    Nagios,
    /// Prometheus text exposition format.
    Prometheus,
}

/// When to use colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal, and neither NO_COLOR nor TERM=dumb is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Arguments of a probe run.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Hosts to probe: names, IPv4 or IPv6 addresses.
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,

    /// Read more hosts from FILE (`-`: standard input), one per line; `#` starts a comment. A stream must end within --max-time.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,

    /// Probe the ports this product needs (repeatable; see `portprobe products`).
    #[arg(short = 'p', long = "product", value_name = "NAME")]
    pub products: Vec<String>,

    /// Probe these ports: PORT or LO-HI, comma-separated, each optionally /tcp or /udp (TCP by default).
    #[arg(long = "ports", value_name = "SPEC", value_parser = parse_ports)]
    pub ports: Vec<Vec<PortItem>>,

    /// Probe IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Probe IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Most probes in flight at once (default: as many as the open-file limit allows, up to 16384).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,

    /// Most probes started per second (at least 0.01).
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Wait this long for each answer instead of adapting to measured round-trip times (e.g. 500ms, 2s; 1ms to 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// Retries for a port that gave no answer [default: 1, raised automatically on a lossy path].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: Option<u32>,

    /// Stop probing after this long and report what is known (e.g. 30s, 2m; 100ms to 30d).
    #[arg(long, value_name = "DURATION", value_parser = parse_max_time, default_value = "60s")]
    pub max_time: Duration,

    /// SNMP v1/v2c community for the UDP 161 probe (an SNMPv3 discovery is sent too).
    #[arg(long, value_name = "COMMUNITY", default_value = "public")]
    pub snmp_community: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Write the report to FILE: a regular file is replaced atomically (written beside it, then renamed; a symlink is followed and stays a link); a device or FIFO is written through; `-` is stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Use colour in the text report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Print only the summary line.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// List every port, not only runs and problems; and say on stderr which datagrams were heard and not counted, and why.
    #[arg(short, long)]
    pub verbose: bool,

    /// Probe again every INTERVAL (e.g. 30s, 5m; 1s to 30d); print the report once, then only changes.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub watch: Option<Duration>,

    /// Do not look for the hop where blocked ports stop (TTL-limited probes after the scan).
    #[arg(long)]
    pub no_locate: bool,

    /// Probe a far-side `portprobe listen`: every port speaks its protocol, and open means the responder answered and proved the shared secret.
    #[arg(long)]
    pub responder: bool,

    /// Read the secret shared with `portprobe listen` from FILE (else from $PORTPROBE_SECRET; never give it on the command line).
    #[arg(long, value_name = "FILE", requires = "responder")]
    pub secret_file: Option<PathBuf>,
}

/// Arguments of `portprobe products`.
#[derive(Debug, Args)]
pub struct ProductsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `portprobe ports`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["products", "all", "ports"])))]
pub struct PortsArgs {
    /// Show the ports this product needs (repeatable).
    #[arg(short = 'p', long = "product", value_name = "NAME")]
    pub products: Vec<String>,

    /// Show every port of the catalog.
    #[arg(long, conflicts_with_all = ["products", "ports"])]
    pub all: bool,

    /// Show these ports as the probe would name them.
    #[arg(long = "ports", value_name = "SPEC", value_parser = parse_ports)]
    pub ports: Vec<Vec<PortItem>>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `portprobe listen`.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("what").required(true).multiple(true).args(["products", "ports"])),
    after_help = "The secret comes from --secret-file or $PORTPROBE_SECRET, never from the command line.\n\
Stop with Ctrl-C or SIGTERM: every socket is closed and a summary per port is printed.\n\n\
Example:\n  server$ portprobe listen --product \"QuickTime Streaming Server\" --secret-file key\n  \
client$ portprobe server.example --product \"QuickTime Streaming Server\" --responder --secret-file key"
)]
pub struct ListenArgs {
    /// Answer on the ports this product needs (repeatable; see `portprobe products`).
    #[arg(short = 'p', long = "product", value_name = "NAME")]
    pub products: Vec<String>,

    /// Answer on these ports: PORT or LO-HI, comma-separated, each optionally /tcp or /udp (TCP by default).
    #[arg(long = "ports", value_name = "SPEC", value_parser = parse_ports)]
    pub ports: Vec<Vec<PortItem>>,

    /// Listen on this address only (repeatable) [default: every address, IPv4 and IPv6].
    #[arg(long, value_name = "ADDR", value_parser = parse_bind)]
    pub bind: Vec<std::net::IpAddr>,

    /// Read the shared secret from FILE (else from $PORTPROBE_SECRET).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Once the ports are bound, drop root and run as this user (e.g. nobody).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

/// Arguments of `portprobe serve`.
#[derive(Debug, Args)]
#[command(after_help = "Prometheus scrapes /probe in the multi-target pattern: \
metrics_path /probe, params product, and relabelling __address__ to __param_target. \
A probe's deadline follows X-Prometheus-Scrape-Timeout-Seconds, less half a second. \
On SIGTERM or SIGINT it stops accepting, closes idle and half-sent connections, \
and exits once the requests being answered are, within --max-time and 5 s.\n\n\
Example:\n  portprobe serve --listen 127.0.0.1:9199 --allow 192.0.2.0/24 --allow server.example")]
pub struct ServeArgs {
    /// Read listen, allow, concurrency, max_time, `[labels]` and `[modules.NAME]` from this TOML file (see docs/exporter-config.md); a flag given here wins over the file's value. SIGHUP reads it again.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check this configuration file and exit: 0 and a one-line summary when it is good, 3 and where it is wrong when not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub check_config: Option<PathBuf>,

    /// Serve HTTP on this address and port [default: 127.0.0.1:9199].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,

    /// Targets that may be probed: a network (192.0.2.0/24), an address or a host name; repeatable, or comma-separated. Anything else gets HTTP 403 and no packet.
    #[arg(long, value_name = "CIDR|HOST")]
    pub allow: Vec<String>,

    /// Probe any target (the exporter becomes a scanning proxy for whoever reaches it).
    #[arg(long, conflicts_with = "allow")]
    pub allow_any: bool,

    /// Most probes in flight at once, shared by every request [default: 1024].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub concurrency: Option<u32>,

    /// The deadline of a probe without Prometheus' timeout header, and the most any probe may take (500ms to 1h) [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_serve_max_time)]
    pub max_time: Option<Duration>,

    /// Close a connection whose request head is not complete this long after it opened, or after the first byte of a later request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_header_timeout)]
    pub header_timeout: Duration,

    /// Close a kept-alive connection that sends nothing for this long between requests.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_idle_timeout)]
    pub idle_timeout: Duration,

    /// TLS and basic authentication from FILE, in the Prometheus exporter toolkit's web configuration format (tls_server_config, basic_auth_users).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
}

/// Arguments of `portprobe rules`.
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("what").required(true).multiple(true).args(["from", "products", "ports"])),
    after_help = "Rules allow exactly the ports asked for, to exactly the addresses: from a report, \
the blocked ports of the addresses that answered; each rule's comment names the product and \
service and where the port was found blocked.\n\n\
Examples:\n  portprobe server.example -p ARD --json -o report.json\n  \
portprobe rules --from report.json --format nftables --nft-chain \"inet filter forward\"\n  \
portprobe rules -p ARD --to 192.0.2.10 --source 198.51.100.0/24 --format cisco"
)]
pub struct RulesArgs {
    /// Allow the ports this JSON report (`portprobe HOST --json -o report.json`) found blocked, to the addresses it probed; `-` reads standard input.
    #[arg(long, value_name = "REPORT", conflicts_with_all = ["products", "ports", "to"])]
    pub from: Option<PathBuf>,

    /// Allow every port this product needs, without probing (repeatable; with --to).
    #[arg(short = 'p', long = "product", value_name = "NAME", requires = "to")]
    pub products: Vec<String>,

    /// Allow these ports: PORT or LO-HI, comma-separated, each optionally /tcp or /udp (with --to).
    #[arg(long = "ports", value_name = "SPEC", value_parser = parse_ports, requires = "to")]
    pub ports: Vec<Vec<PortItem>>,

    /// The address the ports are allowed to, with -p or --ports (repeatable).
    #[arg(long, value_name = "ADDR", value_parser = parse_to)]
    pub to: Vec<std::net::IpAddr>,

    /// The clients' network, as CIDR (one per address family) [default: any source].
    #[arg(long, value_name = "CIDR", value_parser = parse_source)]
    pub source: Vec<ipnet::IpNet>,

    /// The firewall's language.
    #[arg(long, value_enum, default_value_t = RulesFormat::Nftables)]
    pub format: RulesFormat,

    /// nftables: insert the rules at the top of this chain of yours, e.g. "inet filter forward".
    #[arg(long, value_name = "FAMILY TABLE CHAIN", value_parser = parse_nft_chain)]
    pub nft_chain: Option<crate::rules::nftables::Chain>,

    /// The chain: FORWARD (a router, the default) or INPUT (the server's own firewall); for iptables any chain, for cisco the access list's name.
    #[arg(long, value_name = "NAME")]
    pub chain: Option<String>,

    /// Write rules for IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Write rules for IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Write the rules to FILE (replaced atomically, as for a report); for aerleon, the directory to write its files in.
    #[arg(short = 'o', long, value_name = "FILE|DIR")]
    pub output: Option<PathBuf>,
}

impl RulesArgs {
    /// Every --ports item, flattened.
    pub fn port_items(&self) -> Vec<PortItem> {
        self.ports.iter().flatten().copied().collect()
    }
}

fn parse_to(s: &str) -> Result<std::net::IpAddr, String> {
    let ip: std::net::IpAddr = s.trim().parse().map_err(|_| {
        format!("`{s}` is not an IP address (expected the server's address, e.g. 192.0.2.10 or 2001:db8::10)")
    })?;
    let broadcast = matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(format!(
            "`{s}` is not one host's address (expected the server's address, e.g. 192.0.2.10)"
        ));
    }
    Ok(ip)
}

fn parse_source(s: &str) -> Result<ipnet::IpNet, String> {
    crate::rules::parse_source(s)
}

fn parse_nft_chain(s: &str) -> Result<crate::rules::nftables::Chain, String> {
    s.parse()
}

impl ListenArgs {
    /// Every --ports item, flattened.
    pub fn port_items(&self) -> Vec<PortItem> {
        self.ports.iter().flatten().copied().collect()
    }
}

fn parse_bind(s: &str) -> Result<std::net::IpAddr, String> {
    match s.trim().parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_multicast() => Err(format!(
            "`{s}` is a multicast address (expected an address of this host, e.g. 192.0.2.10 or ::1)"
        )),
        Ok(ip) => Ok(ip),
        Err(_) => Err(format!(
            "`{s}` is not an IP address (expected an address of this host, e.g. 192.0.2.10 or ::1)"
        )),
    }
}

/// The command line with a `probe` subcommand named after options moved to
/// the front, so that `portprobe -4 probe HOST ...` means what `portprobe
/// probe -4 HOST ...` does (the options are the probe's). Listings
/// (`products`, `ports`) need no move: clap runs them whatever options
/// come first.
pub fn hoist_probe(mut args: Vec<OsString>) -> Vec<OsString> {
    let cmd = Cli::command();
    if let Some(at) = subcommand_at(&cmd, &args)
        && at > 1
        && args[at] == "probe"
    {
        let name = args.remove(at);
        args.insert(1, name);
    }
    args
}

/// Where the subcommand's name is in `args` (the first argument that is no
/// option and no option's value), if it names one.
fn subcommand_at(cmd: &clap::Command, args: &[OsString]) -> Option<usize> {
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_str()?;
        if a == "--" {
            return None;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = long
                .split_once('=')
                .map_or((long, false), |(n, _)| (n, true));
            let arg = cmd.get_arguments().find(|x| x.get_long() == Some(name));
            if arg.is_some_and(takes_value) && !inline {
                i += 1;
            }
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (n, c) in shorts.char_indices() {
                let arg = cmd.get_arguments().find(|x| x.get_short() == Some(c));
                if arg.is_some_and(takes_value) {
                    if n + c.len_utf8() == shorts.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            return cmd
                .get_subcommands()
                .any(|s| s.get_name() == a)
                .then_some(i);
        }
        i += 1;
    }
    None
}

impl ProbeArgs {
    /// Whether JSON output was asked for (`--json` or `--format json`).
    pub fn json_asked(&self) -> bool {
        self.format() == Format::Json
    }

    /// The output format, with --json folded in.
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }

    /// Every --ports item, flattened.
    pub fn port_items(&self) -> Vec<PortItem> {
        self.ports.iter().flatten().copied().collect()
    }
}

fn parse_ports(s: &str) -> Result<Vec<PortItem>, String> {
    parse_port_list(s).map_err(|e| e.to_string())
}

/// The slowest `--rate` accepted: one probe every 100 seconds.
const MIN_RATE: f64 = 0.01;

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= MIN_RATE => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate (expected probes per second, a number of at least {MIN_RATE}, e.g. 100)"
        )),
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    duration::parse(s, duration::TIMEOUT)
}

fn parse_max_time(s: &str) -> Result<Duration, String> {
    duration::parse(s, duration::MAX_TIME)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    duration::parse(s, duration::WATCH)
}

fn parse_serve_max_time(s: &str) -> Result<Duration, String> {
    duration::parse(s, duration::SERVE_MAX_TIME)
}

fn parse_header_timeout(s: &str) -> Result<Duration, String> {
    duration::parse(s, duration::SERVE_HEADER_TIMEOUT)
}

fn parse_idle_timeout(s: &str) -> Result<Duration, String> {
    duration::parse(s, duration::SERVE_IDLE_TIMEOUT)
}

/// What `--generate` prints on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page, in roff (`man -l` reads it).
    Man,
    /// A completion script for bash.
    CompleteBash,
    /// A completion script for zsh.
    CompleteZsh,
    /// A completion script for fish.
    CompleteFish,
    /// A completion script for PowerShell.
    CompletePowershell,
}

/// The ids of the probe's options and hosts, each of which `--generate`
/// conflicts with (one by one, so that clap's error names the one given).
fn probe_option_ids() -> Vec<clap::Id> {
    ProbeArgs::augment_args(clap::Command::new("probe"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100"), Ok(100.0));
        assert_eq!(parse_rate("0.01"), Ok(0.01));
        assert_eq!(parse_rate("1e9"), Ok(1e9));
        for bad in [
            "0", "-1", "1e-300", "1e-19", "0.009", "inf", "NaN", "fast", "",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
