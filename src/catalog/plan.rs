//! The probe plan: the individual (transport, port) pairs to probe for a
//! selection of products and `--ports` items, each with the services and
//! products that explain why it is probed.

use std::collections::BTreeMap;

use super::{Catalog, Product, Requirement};
use crate::port::{PortItem, Probe, Transport};

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
    /// Products that need the port; empty when only `--ports` asked for it.
    pub products: Vec<String>,
}

/// What to probe on every target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every port, sorted by transport then port, without duplicates.
    pub ports: Vec<PlannedPort>,
    /// The requirements behind the plan (one per catalog row, transport and
    /// range), for reports that speak of ranges.
    pub requirements: Vec<Requirement>,
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

impl Catalog {
    /// The short service name for a port the user named with `--ports`:
    /// every catalog row on that transport whose ports include it.
    pub fn service_name(&self, transport: Transport, port: u16) -> String {
        let mut labels: Vec<&str> = Vec::new();
        for e in self.entries() {
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

    /// Requirements for ports named only with `--ports`: one per item, named
    /// after the catalog rows that cover it ("several services" when the
    /// ports of a range belong to different rows).
    pub fn ad_hoc_requirements(&self, items: &[PortItem]) -> Vec<Requirement> {
        items
            .iter()
            .map(|item| {
                let first = self.service_name(item.transport, item.range.start());
                let same = item
                    .range
                    .iter()
                    .all(|p| self.service_name(item.transport, p) == first);
                Requirement {
                    protocol: item.transport,
                    port_start: item.range.start(),
                    port_end: item.range.end(),
                    service: if same {
                        first
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
        let requirements = self.requirements(products);
        let mut ports: BTreeMap<(Transport, u16), PlannedPort> = BTreeMap::new();
        for req in &requirements {
            for port in req.range().iter() {
                let planned = ports
                    .entry((req.protocol, port))
                    .or_insert_with(|| PlannedPort {
                        transport: req.protocol,
                        port,
                        probe: Probe::for_port(req.protocol, port),
                        service: String::new(),
                        products: Vec::new(),
                    });
                if planned.service.is_empty() {
                    planned.service = req.service.clone();
                } else if !planned.service.split(" / ").any(|s| s == req.service) {
                    planned.service = format!("{} / {}", planned.service, req.service);
                }
                for p in &req.products {
                    if !planned.products.contains(p) {
                        planned.products.push(p.clone());
                    }
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
                        probe: Probe::for_port(item.transport, port),
                        service: self.service_name(item.transport, port),
                        products: Vec::new(),
                    });
            }
        }
        Plan {
            ports: ports.into_values().collect(),
            requirements,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;
    use crate::port::{Transport, parse_port_list};

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
