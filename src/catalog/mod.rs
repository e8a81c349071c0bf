//! The port catalog: every row of Apple's table of well-known TCP and UDP
//! ports, the products that need them, and product lookup.
//!
//! The built-in catalog (`data/apple-ports.toml`) is compiled into the binary;
//! [`Catalog::from_file`] loads a user's own file of the same format and
//! validates it strictly, naming the file, the entry and the field of every
//! error. Nothing here touches the network.

mod load;
mod lookup;
mod plan;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use serde::Serialize;

use crate::port::{PortRange, Transport};

pub use load::CatalogError;
pub use lookup::LookupError;
pub use plan::{Plan, PlannedPort};

/// The catalog text compiled into the binary.
pub const BUILTIN: &str = include_str!("../../data/apple-ports.toml");

/// Where the built-in catalog comes from, for `--help` and reports.
pub const BUILTIN_SOURCE: &str =
    "Apple's article \"Well known\" TCP and UDP ports used by Apple software products";

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Stable name that products refer to.
    pub id: String,
    /// Position of the row in the article's table, from 1.
    pub row: u32,
    /// Short name for reports.
    pub label: String,
    /// The Port column exactly as printed, e.g. `1099 & 8043`.
    pub table_port: String,
    /// The ports the row names.
    pub ports: Vec<PortRange>,
    /// The TCP-or-UDP column exactly as printed (`TCP`, `UDP`, `TCP/UDP`, `-`).
    pub table_protocol: String,
    /// The transports portprobe probes for this row.
    pub transports: Vec<Transport>,
    /// Why portprobe probes these transports, where the table states none.
    pub probe_reason: Option<String>,
    /// The Service or Protocol Name column, if the table gives one.
    pub service: Option<String>,
    /// The RFC column, if the table gives one.
    pub rfc: Option<String>,
    /// The Used by / Additional information column, if the table gives one.
    pub used_by: Option<String>,
    /// Whether the table marks the use as unregistered with IANA.
    pub unregistered: bool,
    /// What the notes under the table say about this row.
    pub note: Option<String>,
}

/// A product and the ports it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    /// Canonical name, e.g. `Apple Remote Desktop`.
    pub name: String,
    /// Other names it answers to, e.g. `ARD`.
    pub aliases: Vec<String>,
    /// One line on what the product covers.
    pub summary: String,
    /// Products whose ports this one needs too.
    pub includes: Vec<String>,
    /// The entries it needs directly.
    pub needs: Vec<Need>,
}

/// One entry a product needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// The entry's id.
    pub entry: String,
    /// The transports needed, when fewer than the entry's.
    pub transports: Option<Vec<Transport>>,
    /// What the port does for this product.
    pub why: Option<String>,
}

/// The whole catalog.
#[derive(Clone, Debug)]
pub struct Catalog {
    origin: String,
    entries: Vec<Entry>,
    products: Vec<Product>,
    /// Entry id -> position in `entries`.
    entry_ids: HashMap<String, usize>,
    /// Canonical product name -> position in `products`.
    product_names: HashMap<String, usize>,
    /// Every product name and alias in [`lookup::normalise`]d form ->
    /// position in `products`; sorted, so that the names beginning with a
    /// prefix are one range.
    lookup_names: BTreeMap<String, usize>,
    /// The service name of every port, built the first time a port named
    /// with `--ports` needs one.
    services: OnceLock<plan::ServiceIndex>,
}

/// A port range on one transport that a selection of products needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// `tcp` or `udp`.
    pub protocol: Transport,
    /// First port.
    pub port_start: u16,
    /// Last port.
    pub port_end: u16,
    /// The service's short name.
    pub service: String,
    /// The products that need it (canonical names).
    pub products: Vec<String>,
    /// What the port does, per product that says so.
    pub why: Vec<String>,
    /// The table's RFC column.
    pub rfc: Option<String>,
    /// What the table's notes say about it.
    pub note: Option<String>,
    /// Whether the table marks the use as unregistered.
    pub unregistered: bool,
    /// The catalog entry's id (none for ports named only with `--ports`).
    pub id: Option<String>,
    /// The table row (none for ports named only with `--ports`).
    pub row: Option<u32>,
    /// The table's Service or Protocol Name column.
    pub table_service: Option<String>,
    /// The table's Used by column.
    pub used_by: Option<String>,
    /// Why this transport is probed, where the table states none.
    pub probe_reason: Option<String>,
}

impl Requirement {
    /// The port range.
    pub fn range(&self) -> PortRange {
        PortRange::new(self.port_start, self.port_end).expect("validated at load")
    }
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Catalog {
        load::parse(BUILTIN, "built-in catalog").expect("the built-in catalog is valid")
    }

    /// Loads and validates a catalog file.
    pub fn from_file(path: &std::path::Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            file: path.display().to_string(),
            source,
        })?;
        load::parse(&text, &path.display().to_string())
    }

    /// Parses and validates catalog text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        load::parse(text, origin)
    }

    /// Where the catalog came from (file name or "built-in catalog").
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every entry, in table order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every product, in catalog order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The entry with this id.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entry_ids.get(id).map(|&i| &self.entries[i])
    }

    /// The product with exactly this canonical name.
    pub fn product(&self, name: &str) -> Option<&Product> {
        self.product_names.get(name).map(|&i| &self.products[i])
    }

    /// Every (entry, transport) a product needs, following `includes`, each
    /// with the why given for it.
    fn needs_of<'a>(
        &'a self,
        product: &'a Product,
    ) -> Vec<(&'a Entry, Transport, Option<&'a str>)> {
        let mut out = Vec::new();
        let mut stack = vec![product];
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p.name.as_str()) {
                continue;
            }
            for need in &p.needs {
                let entry = self.entry(&need.entry).expect("validated at load");
                let transports = need.transports.as_deref().unwrap_or(&entry.transports);
                for &t in transports {
                    out.push((entry, t, need.why.as_deref()));
                }
            }
            stack.extend(
                p.includes
                    .iter()
                    .rev()
                    .filter_map(|name| self.product(name)),
            );
        }
        out
    }

    /// The ports `products` need, one requirement per (entry, transport, range),
    /// merged across products, in table order.
    pub fn requirements(&self, products: &[&Product]) -> Vec<Requirement> {
        let mut merged: BTreeMap<(u32, Transport, PortRange), Requirement> = BTreeMap::new();
        let mut whys: HashSet<(u32, Transport, PortRange, &str)> = HashSet::new();
        let mut done: HashSet<&str> = HashSet::new();
        for product in products {
            // A product given twice adds nothing the first time did not.
            if !done.insert(product.name.as_str()) {
                continue;
            }
            for (entry, transport, why) in self.needs_of(product) {
                for &range in &entry.ports {
                    let req = merged
                        .entry((entry.row, transport, range))
                        .or_insert_with(|| requirement(entry, transport, range));
                    // Every name this product adds is added while it is the
                    // product at hand, so it can only be the last one.
                    if req.products.last() != Some(&product.name) {
                        req.products.push(product.name.clone());
                    }
                    if let Some(why) = why {
                        if whys.insert((entry.row, transport, range, why)) {
                            req.why.push(why.to_string());
                        }
                    }
                }
            }
        }
        merged.into_values().collect()
    }

    /// Every port of the table, one requirement per (entry, transport, range),
    /// each naming all the products that need it.
    pub fn all_requirements(&self) -> Vec<Requirement> {
        let all: Vec<&Product> = self.products.iter().collect();
        let mut claimed = self.requirements(&all);
        let mut listed: HashSet<(Option<u32>, Transport, PortRange)> = claimed
            .iter()
            .map(|r| (r.row, r.protocol, r.range()))
            .collect();
        for entry in &self.entries {
            for &t in &entry.transports {
                for &range in &entry.ports {
                    if listed.insert((Some(entry.row), t, range)) {
                        claimed.push(requirement(entry, t, range));
                    }
                }
            }
        }
        claimed.sort_by_key(|r| (r.row, r.protocol, r.port_start));
        claimed
    }

    /// Number of distinct (transport, port) pairs a product needs, per transport.
    pub fn port_counts(&self, product: &Product) -> (usize, usize) {
        let mut tcp: Vec<PortRange> = Vec::new();
        let mut udp: Vec<PortRange> = Vec::new();
        for (entry, transport, _) in self.needs_of(product) {
            match transport {
                Transport::Tcp => tcp.extend_from_slice(&entry.ports),
                Transport::Udp => udp.extend_from_slice(&entry.ports),
            }
        }
        tcp.sort_unstable();
        udp.sort_unstable();
        (distinct_ports(&tcp), distinct_ports(&udp))
    }
}

pub(crate) fn requirement(entry: &Entry, transport: Transport, range: PortRange) -> Requirement {
    Requirement {
        protocol: transport,
        port_start: range.start(),
        port_end: range.end(),
        service: entry.label.clone(),
        products: Vec::new(),
        why: Vec::new(),
        rfc: entry.rfc.clone(),
        note: entry.note.clone(),
        unregistered: entry.unregistered,
        id: Some(entry.id.clone()),
        row: Some(entry.row),
        table_service: entry.service.clone(),
        used_by: entry.used_by.clone(),
        probe_reason: entry.probe_reason.clone(),
    }
}

/// Counts the ports covered by sorted, possibly overlapping ranges.
fn distinct_ports(sorted: &[PortRange]) -> usize {
    let mut total = 0usize;
    let mut covered_to: u32 = 0;
    for r in sorted {
        let start = u32::from(r.start()).max(covered_to + 1);
        let end = u32::from(r.end());
        if end >= start {
            total += (end - start + 1) as usize;
            covered_to = end;
        }
    }
    total
}

#[cfg(test)]
mod tests;
