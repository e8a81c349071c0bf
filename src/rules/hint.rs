//! The closing line of the text report that points to `portprobe rules`
//! with the arguments for that run: the addresses and exactly the ports it
//! found blocked, when those are the same on every address and short
//! enough to type; and always the way through a saved JSON report, whose
//! rules also say where each port stops.

use std::net::IpAddr;

use crate::port::{PortItem, PortRange, Transport, merge};
use crate::report::{HostVerdict, TargetReport};

/// The longest `--ports` value the line spells out.
const MAX_SPEC: usize = 120;

/// The formats, as the line lists them.
const FORMATS: &str = "--format nftables, iptables, pf, windows, cisco or aerleon";

/// The line for target `t`, when ports of an address that answers were
/// found blocked.
pub fn line(t: &TargetReport) -> Option<String> {
    if t.host_level() {
        return None;
    }
    let mut per_address: Vec<(IpAddr, Vec<PortItem>)> = Vec::new();
    for row in &t.rows {
        let r = &row.result;
        if !r.blocked() || t.verdict(r.address) != HostVerdict::Answering {
            continue;
        }
        let Ok(range) = PortRange::single(r.port) else {
            continue;
        };
        let item = PortItem {
            transport: r.transport,
            range,
        };
        match per_address.iter_mut().find(|(a, _)| *a == r.address) {
            Some((_, items)) => items.push(item),
            None => per_address.push((r.address, vec![item])),
        }
    }
    let (_, first) = per_address.first()?;
    let first = merge(first);
    let same = per_address.iter().all(|(_, items)| merge(items) == first);
    let spec = spec(&first);
    if same && spec.len() <= MAX_SPEC {
        let to: Vec<String> = per_address
            .iter()
            .map(|(a, _)| format!("--to {a}"))
            .collect();
        Some(format!(
            "portprobe rules {} --ports {spec} writes the firewall rules that allow exactly these ports ({FORMATS}); from a run saved with --json -o report.json, portprobe rules --from report.json also says in each rule where the port stops",
            to.join(" ")
        ))
    } else {
        Some(format!(
            "a run saved with --json -o report.json gives the firewall rules that allow exactly these ports: portprobe rules --from report.json ({FORMATS})"
        ))
    }
}

/// Items as `--ports` takes them: `445,5900-5902,3283/udp`.
fn spec(items: &[PortItem]) -> String {
    let list: Vec<String> = items
        .iter()
        .map(|i| match i.transport {
            Transport::Tcp => i.range.to_string(),
            Transport::Udp => format!("{}/udp", i.range),
        })
        .collect();
    list.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::parse_port_list;

    #[test]
    fn a_spec_reads_back_as_the_same_ports() {
        let items = merge(&parse_port_list("5901,445,5900,5902,3283/udp,3284/udp,7/udp").unwrap());
        let s = spec(&items);
        assert_eq!(s, "445,5900-5902,7/udp,3283-3284/udp");
        assert_eq!(merge(&parse_port_list(&s).unwrap()), items);
    }
}
