//! The probe plan: the individual (transport, port) pairs to probe for a
//! selection of products and `--ports` items, each with the services and
//! products that explain why it is probed, the service groups a report
//! judges one by one, and the ports the products leave out.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{Catalog, Entry, Product, Requirement};
use crate::engine::Probe;
use crate::port::{PortItem, PortRange, Transport};

/// One port to probe and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedPort {
    /// The transport.
    pub transport: Transport,
    /// The port.
    pub port: u16,
    /// How the port is probed (for UDP, the protocol spoken), chosen here
    /// once and carried to the results.
    pub probe: Probe,
    /// Short service names of the catalog rows that name this port (joined
    /// with " / " when several rows do), or `"unlisted"`.
    pub service: String,
    /// The most specific products that need the port: those whose own
    /// `needs` list it, whether asked for or reached through `includes`
    /// (`Mail`, not the `Mac OS X Server` that includes it), in the order
    /// of [`Plan::groups`]; empty when only `--ports` asked for it.
    pub products: Vec<String>,
}

/// A product whose ports a report judges together: one asked for, or one
/// it includes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceGroup {
    /// The product's canonical name.
    pub product: String,
    /// How many ports of the plan name it among their products (per
    /// address).
    pub ports: usize,
    /// Whether it includes other service groups of the plan, which are
    /// judged apart: its own ports are then only part of what it needs.
    pub includes_others: bool,
}

/// A port range the asked products leave out (see `leaves_out` in the
/// catalog format), and the product that would probe it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotProbed {
    /// `tcp` or `udp`.
    pub protocol: Transport,
    /// First port.
    pub port_start: u16,
    /// Last port.
    pub port_end: u16,
    /// The entry's short service name.
    pub service: String,
    /// The product to ask for to probe the range too.
    pub product: String,
    /// What the ports are for.
    pub why: String,
}

/// What to probe on every target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every port, sorted by transport then port, without duplicates.
    pub ports: Vec<PlannedPort>,
    /// The requirements behind the plan (one per catalog row, transport and
    /// range), for reports that speak of ranges.
    pub requirements: Vec<Requirement>,
    /// The service groups: every product asked for followed by the products
    /// it includes (depth first, in the order the catalog lists them), each
    /// once, and only those that some planned port names.
    pub groups: Vec<ServiceGroup>,
    /// Ranges the asked products leave out and no asked product or
    /// `--ports` item brings back in full, in the order they are declared.
    pub not_probed: Vec<NotProbed>,
}

impl Plan {
    /// Number of TCP and UDP ports in the plan.
    pub fn counts(&self) -> (usize, usize) {
        let tcp = self
            .ports
            .iter()
            .filter(|p| p.transport == Transport::Tcp)
            .count();
        (tcp, self.ports.len() - tcp)
    }
}

/// The service name of every port on each transport, as runs of
/// consecutive ports that share one name.
#[derive(Clone, Debug)]
pub(super) struct ServiceIndex {
    /// Every distinct name; the first is `"unlisted"`.
    names: Vec<String>,
    /// Per transport (TCP, then UDP): the first port of each run and the
    /// index of its name, sorted by port, starting at port 0; neighbouring
    /// runs have different names.
    runs: [Vec<(u16, usize)>; 2],
}

const UNLISTED: usize = 0;

fn slot(transport: Transport) -> usize {
    match transport {
        Transport::Tcp => 0,
        Transport::Udp => 1,
    }
}

impl ServiceIndex {
    /// Sweeps each transport's ranges in port order, keeping the set of
    /// entries that cover the current port, so that every port between two
    /// range boundaries gets its name at once.
    fn build(entries: &[Entry]) -> ServiceIndex {
        let mut names = vec!["unlisted".to_string()];
        let mut ids: HashMap<String, usize> = HashMap::from([(names[0].clone(), UNLISTED)]);
        let mut runs = [Vec::new(), Vec::new()];
        for transport in [Transport::Tcp, Transport::Udp] {
            // (port, +1 or -1, entry): the first port a range covers and the
            // first port after it.
            let mut events: Vec<(u32, i8, usize)> = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                if e.transports.contains(&transport) {
                    for r in &e.ports {
                        events.push((u32::from(r.start()), 1, i));
                        events.push((u32::from(r.end()) + 1, -1, i));
                    }
                }
            }
            events.sort_unstable();
            let list: &mut Vec<(u16, usize)> = &mut runs[slot(transport)];
            list.push((0, UNLISTED));
            // Entry -> number of its ranges covering the current port.
            let mut active: BTreeMap<usize, u32> = BTreeMap::new();
            let mut next = 0;
            while next < events.len() {
                let port = events[next].0;
                while next < events.len() && events[next].0 == port {
                    let (_, step, entry) = events[next];
                    if step > 0 {
                        *active.entry(entry).or_insert(0) += 1;
                    } else if let Some(count) = active.get_mut(&entry) {
                        *count -= 1;
                        if *count == 0 {
                            active.remove(&entry);
                        }
                    }
                    next += 1;
                }
                let Ok(port) = u16::try_from(port) else {
                    break;
                };
                let name = joined_labels(active.keys().map(|&i| entries[i].label.as_str()));
                let id = match ids.get(&name) {
                    Some(&id) => id,
                    None => {
                        names.push(name.clone());
                        ids.insert(name, names.len() - 1);
                        names.len() - 1
                    }
                };
                if list.last().is_some_and(|&(_, last)| last != id) {
                    list.push((port, id));
                }
            }
        }
        ServiceIndex { names, runs }
    }

    /// Which run of `transport` holds `port`.
    fn run(&self, transport: Transport, port: u16) -> usize {
        // The first run starts at port 0, so at least one run starts at or
        // before any port.
        self.runs[slot(transport)].partition_point(|&(start, _)| start <= port) - 1
    }

    fn name(&self, transport: Transport, run: usize) -> &str {
        &self.names[self.runs[slot(transport)][run].1]
    }
}

/// The distinct labels, in the order given, joined with " / "; `"unlisted"`
/// when there are none.
fn joined_labels<'a>(labels: impl Iterator<Item = &'a str>) -> String {
    let mut seen: HashSet<&str> = HashSet::new();
    let distinct: Vec<&str> = labels.filter(|l| seen.insert(l)).collect();
    if distinct.is_empty() {
        "unlisted".to_string()
    } else {
        distinct.join(" / ")
    }
}

impl Catalog {
    fn services(&self) -> &ServiceIndex {
        self.services
            .get_or_init(|| ServiceIndex::build(self.entries()))
    }

    /// The short service name for a port the user named with `--ports`:
    /// every catalog row on that transport whose ports include it.
    pub fn service_name(&self, transport: Transport, port: u16) -> String {
        let services = self.services();
        services
            .name(transport, services.run(transport, port))
            .to_string()
    }

    /// Requirements for ports named only with `--ports`: one per item, named
    /// after the catalog rows that cover it ("several services" when the
    /// ports of a range belong to different rows).
    pub fn ad_hoc_requirements(&self, items: &[PortItem]) -> Vec<Requirement> {
        let services = self.services();
        items
            .iter()
            .map(|item| {
                let first = services.run(item.transport, item.range.start());
                let last = services.run(item.transport, item.range.end());
                Requirement {
                    protocol: item.transport,
                    port_start: item.range.start(),
                    port_end: item.range.end(),
                    service: if first == last {
                        services.name(item.transport, first).to_string()
                    } else {
                        "several services".to_string()
                    },
                    products: Vec::new(),
                    why: Vec::new(),
                    rfc: None,
                    note: None,
                    unregistered: false,
                    id: None,
                    row: None,
                    table_service: None,
                    used_by: None,
                    probe_reason: None,
                }
            })
            .collect()
    }

    /// The plan for `products` plus the explicit `items`.
    pub fn plan(&self, products: &[&Product], items: &[PortItem]) -> Plan {
        // The service groups, in order: each asked product, then what it
        // includes.
        let mut order: Vec<&Product> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for &product in products {
            for p in self.reach(product, None) {
                if seen.insert(p.name.as_str()) {
                    order.push(p);
                }
            }
        }
        let rank: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        let merged = self.merged(products);
        let mut ports: BTreeMap<(Transport, u16), PlannedPort> = BTreeMap::new();
        for (req, owners) in &merged {
            for port in req.range().iter() {
                let planned = ports
                    .entry((req.protocol, port))
                    .or_insert_with(|| PlannedPort {
                        transport: req.protocol,
                        port,
                        probe: crate::catalog::probe_for(req.protocol, port),
                        service: String::new(),
                        products: Vec::new(),
                    });
                if planned.service.is_empty() {
                    planned.service = req.service.clone();
                } else if !planned.service.split(" / ").any(|s| s == req.service) {
                    planned.service = format!("{} / {}", planned.service, req.service);
                }
                for owner in owners {
                    if !planned.products.contains(&owner.name) {
                        planned.products.push(owner.name.clone());
                    }
                }
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for planned in ports.values_mut() {
            planned
                .products
                .sort_by_key(|p| rank.get(p.as_str()).copied().unwrap_or(usize::MAX));
            for p in &planned.products {
                if let Some((name, _)) = rank.get_key_value(p.as_str()) {
                    *counts.entry(name).or_insert(0) += 1;
                }
            }
        }
        for item in items {
            for port in item.range.iter() {
                ports
                    .entry((item.transport, port))
                    .or_insert_with(|| PlannedPort {
                        transport: item.transport,
                        port,
                        probe: crate::catalog::probe_for(item.transport, port),
                        service: self.service_name(item.transport, port),
                        products: Vec::new(),
                    });
            }
        }
        let groups = order
            .iter()
            .filter_map(|p| {
                counts.get(p.name.as_str()).map(|&ports| ServiceGroup {
                    product: p.name.clone(),
                    ports,
                    includes_others: p.includes.iter().any(|i| counts.contains_key(i.as_str())),
                })
            })
            .collect();
        let not_probed = self.not_probed(&order, &ports);
        Plan {
            ports: ports.into_values().collect(),
            requirements: merged.into_iter().map(|(req, _)| req).collect(),
            groups,
            not_probed,
        }
    }

    /// The ranges that the `leaves_out` of the reached products keep out of
    /// the plan, each once, unless every port of the range is planned after
    /// all.
    fn not_probed(
        &self,
        reached: &[&Product],
        planned: &BTreeMap<(Transport, u16), PlannedPort>,
    ) -> Vec<NotProbed> {
        let mut out: Vec<NotProbed> = Vec::new();
        let mut seen: HashSet<(Transport, PortRange)> = HashSet::new();
        for product in reached {
            for leave in &product.leaves_out {
                let entry = self.entry(&leave.entry).expect("validated at load");
                for &transport in &leave.transports {
                    for &range in &entry.ports {
                        if !seen.insert((transport, range)) {
                            continue;
                        }
                        let all_planned = planned
                            .range((transport, range.start())..=(transport, range.end()))
                            .count()
                            == range.len() as usize;
                        if !all_planned {
                            out.push(NotProbed {
                                protocol: transport,
                                port_start: range.start(),
                                port_end: range.end(),
                                service: entry.label.clone(),
                                product: leave.product.clone(),
                                why: leave.why.clone(),
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;
    use crate::port::{PortItem, PortRange, Transport, parse_port_list};

    /// Rows that overlap, share labels, reach port 65535, and name the same
    /// service in two ways ("A" and "B" together, and "A / B").
    const OVERLAPS: &str = r#"
[[entry]]
id = "web"
row = 1
label = "Web"
table_port = "80-90 & 85 & 65535"
ports = ["80-90", "85", "65535"]
table_protocol = "TCP"

[[entry]]
id = "alt"
row = 2
label = "Alt"
table_port = "88-100"
ports = ["88-100"]
table_protocol = "TCP/UDP"

[[entry]]
id = "web-high"
row = 3
label = "Web"
table_port = "95-65535"
ports = ["95-65535"]
table_protocol = "TCP"

[[entry]]
id = "a"
row = 4
label = "A"
table_port = "200"
ports = ["200"]
table_protocol = "UDP"

[[entry]]
id = "b"
row = 5
label = "B"
table_port = "200"
ports = ["200"]
table_protocol = "UDP"

[[entry]]
id = "a-b"
row = 6
label = "A / B"
table_port = "201"
ports = ["201"]
table_protocol = "UDP"

[[product]]
name = "Site"
needs = [{ entry = "web" }]
"#;

    /// The service name by its definition: the label of every row on the
    /// transport whose ports include the port, in table order, each once.
    fn defined_name(c: &Catalog, transport: Transport, port: u16) -> String {
        let mut labels: Vec<&str> = Vec::new();
        for e in c.entries() {
            if e.transports.contains(&transport)
                && e.ports.iter().any(|r| r.contains(port))
                && !labels.contains(&e.label.as_str())
            {
                labels.push(&e.label);
            }
        }
        if labels.is_empty() {
            "unlisted".to_string()
        } else {
            labels.join(" / ")
        }
    }

    fn catalogs() -> [Catalog; 2] {
        [
            Catalog::builtin(),
            Catalog::parse(OVERLAPS, "overlaps.toml").unwrap(),
        ]
    }

    #[test]
    fn every_port_has_the_service_name_its_rows_define() {
        for c in catalogs() {
            for transport in [Transport::Tcp, Transport::Udp] {
                for port in 0..=u16::MAX {
                    assert_eq!(
                        c.service_name(transport, port),
                        defined_name(&c, transport, port),
                        "{} {transport} {port}",
                        c.origin()
                    );
                }
            }
        }
    }

    #[test]
    fn ad_hoc_ranges_are_one_service_only_when_every_port_is() {
        let ranges = [
            (1, 65535),
            (1, 1),
            (65535, 65535),
            (49152, 65535),
            (600, 1023),
            (8000, 8999),
            (16384, 16403),
            (16384, 16404),
            (80, 87),
            (80, 88),
            (91, 94),
            (95, 100),
            (101, 65534),
            (101, 65535),
            (200, 201),
            (199, 200),
        ];
        for c in catalogs() {
            for transport in [Transport::Tcp, Transport::Udp] {
                let items: Vec<PortItem> = ranges
                    .iter()
                    .map(|&(start, end)| PortItem {
                        transport,
                        range: PortRange::new(start, end).unwrap(),
                    })
                    .collect();
                for (item, req) in items.iter().zip(c.ad_hoc_requirements(&items)) {
                    let first = defined_name(&c, transport, item.range.start());
                    let same = item
                        .range
                        .iter()
                        .all(|p| defined_name(&c, transport, p) == first);
                    let expected = if same {
                        first
                    } else {
                        "several services".to_string()
                    };
                    assert_eq!(req.service, expected, "{} {item}", c.origin());
                    assert_eq!(
                        (req.port_start, req.port_end),
                        (item.range.start(), item.range.end())
                    );
                }
            }
        }
        let c = Catalog::parse(OVERLAPS, "overlaps.toml").unwrap();
        let names: Vec<String> = c
            .ad_hoc_requirements(&parse_port_list("200-201/udp,65535,101-65535,90-95").unwrap())
            .into_iter()
            .map(|r| r.service)
            .collect();
        assert_eq!(names, ["A / B", "Web", "Web", "several services"]);
    }

    #[test]
    fn products_and_ports_combine_without_duplicates() {
        let c = Catalog::builtin();
        let ard = c.find_product("ARD").unwrap();
        let plan = c.plan(&[ard], &parse_port_list("5900,22,53/udp").unwrap());
        let list: Vec<String> = plan
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}/{} {} [{}]",
                    p.port,
                    p.transport,
                    p.service,
                    p.products.join(",")
                )
            })
            .collect();
        assert_eq!(
            list,
            [
                "22/tcp SSH []",
                "3283/tcp Net Assistant (ARD) [Apple Remote Desktop]",
                "5432/tcp ARD database [Apple Remote Desktop]",
                "5900/tcp Screen Sharing (VNC) [Apple Remote Desktop]",
                "5988/tcp WBEM HTTP [Apple Remote Desktop]",
                "53/udp DNS []",
                "626/udp serialnumberd [Apple Remote Desktop]",
                "3283/udp Net Assistant (ARD) [Apple Remote Desktop]",
            ]
        );
        assert_eq!(plan.counts(), (5, 3));
    }

    #[test]
    fn ports_named_by_several_rows_join_their_names() {
        let c = Catalog::builtin();
        assert_eq!(
            c.service_name(Transport::Tcp, 8080),
            "HTTP alternate (Apache) / Web service, iTunes Radio / Tomcat/JBoss HTTP(S)"
        );
        assert_eq!(c.service_name(Transport::Udp, 700), "Mac OS X RPC services");
        assert_eq!(c.service_name(Transport::Udp, 12345), "unlisted");
    }
}
