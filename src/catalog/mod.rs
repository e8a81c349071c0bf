//! The port catalog: every row of Apple's table of well-known TCP and UDP
//! ports, the products that need them, and product lookup.
//!
//! The built-in catalog (`data/apple-ports.toml`) is compiled into the binary;
//! [`Catalog::from_file`] loads a user's own file of the same format and
//! validates it strictly, naming the file, the entry and the field of every
//! error. Nothing here touches the network.
//!
//! # The file format
//!
//! A catalog is TOML: `[[entry]]` tables, one per row of the port table
//! (see [`Entry`] for the fields), then `[[product]]` tables:
//!
//! ```toml
//! [[product]]
//! name = "Mac OS X Server"               # canonical name, unique
//! aliases = ["OS X Server"]              # other names it answers to
//! summary = "what the product covers"
//! includes = ["Mail", "QuickTime Streaming Server"]  # every port of these too
//! needs = [{ entry = "serialnumberd", why = "serial number registration" }]
//! leaves_out = [
//!   { entry = "qtss-rtp", product = "QuickTime Streaming Server", why = "QuickTime Streaming Server RTP media" },
//! ]
//! ```
//!
//! `needs` lists entries by id; a need may narrow a TCP/UDP entry with
//! `protocols = ["tcp"]`, and says in `why` what the port does for the
//! product. `includes` pulls in every port of other products, and of the
//! products they include.
//!
//! `leaves_out` keeps an entry that the product would reach through its
//! includes out of its ports: a very large range that belongs to one of the
//! products it includes, say. Every field is required: `entry`, the entry's
//! id; `product`, a product this one includes (directly or through other
//! includes) that needs the entry, which reports tell the user to ask for to
//! probe those ports too; and `why`, a few words on what the ports are for,
//! which reports show in parentheses. The entry is left out of everything
//! the product includes; an entry the product names in its own `needs`
//! cannot be left out. Asking for the named product too (or for any other
//! product that needs the entry) probes the ports after all. A product's
//! leaves_out applies wherever it is included.

mod load;
mod lookup;
mod plan;
mod protocols;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use serde::Serialize;

use crate::port::{PortRange, Transport};

pub use load::CatalogError;
pub use lookup::LookupError;
pub use plan::{NotProbed, Plan, PlannedPort, ServiceGroup};
pub use protocols::{probe_for, udp_protocol};

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
    /// Entries it keeps out of what it includes.
    pub leaves_out: Vec<LeaveOut>,
}

/// An entry a product keeps out of the ports it includes (the `leaves_out`
/// field of the catalog format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveOut {
    /// The entry's id.
    pub entry: String,
    /// The included product that needs the entry: the one to ask for to
    /// probe these ports too.
    pub product: String,
    /// What the ports are for, in a few words for reports.
    pub why: String,
    /// The transports of the entry that `product` needs (set at load).
    pub transports: Vec<Transport>,
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

    /// The products `root` reaches through `includes`: itself first, then
    /// depth first in the order the includes are listed, each once. With
    /// `cut`, the includes of every product that leaves out the entry `cut`
    /// are not followed.
    fn reach<'a>(&'a self, root: &'a Product, cut: Option<&str>) -> Vec<&'a Product> {
        let mut out = Vec::new();
        let mut stack = vec![root];
        let mut seen: HashSet<&str> = HashSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p.name.as_str()) {
                continue;
            }
            out.push(p);
            if cut.is_some_and(|cut| p.leaves_out.iter().any(|l| l.entry == cut)) {
                continue;
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

    /// Every (entry, transport) a product needs, following `includes` and
    /// honouring `leaves_out`, each with the why given for it and the
    /// product whose own `needs` list it.
    ///
    /// An entry that no reached product leaves out is needed wherever it is
    /// listed. An entry that some do is needed only by the products reached
    /// without passing through one of those: one more walk of the includes
    /// per entry left out.
    fn needs_of<'a>(&'a self, product: &'a Product) -> Vec<Reached<'a>> {
        let all = self.reach(product, None);
        let cut: BTreeSet<&str> = all
            .iter()
            .flat_map(|p| p.leaves_out.iter().map(|l| l.entry.as_str()))
            .collect();
        let mut out = Vec::new();
        let mut add = |owner: &'a Product, need: &'a Need| {
            let entry = self.entry(&need.entry).expect("validated at load");
            let transports = need.transports.as_deref().unwrap_or(&entry.transports);
            for &transport in transports {
                out.push(Reached {
                    entry,
                    transport,
                    why: need.why.as_deref(),
                    owner,
                });
            }
        };
        for &p in &all {
            for need in &p.needs {
                if !cut.contains(need.entry.as_str()) {
                    add(p, need);
                }
            }
        }
        for &entry in &cut {
            for p in self.reach(product, Some(entry)) {
                for need in p.needs.iter().filter(|n| n.entry == entry) {
                    add(p, need);
                }
            }
        }
        out
    }

    /// The requirements of `products`, each with the products whose own
    /// `needs` list it, in the order they are reached.
    fn merged<'a>(&'a self, products: &[&'a Product]) -> Vec<(Requirement, Vec<&'a Product>)> {
        type Key = (u32, Transport, PortRange);
        let mut merged: BTreeMap<Key, (Requirement, Vec<&'a Product>)> = BTreeMap::new();
        let mut whys: HashSet<(u32, Transport, PortRange, &str)> = HashSet::new();
        let mut done: HashSet<&str> = HashSet::new();
        for product in products {
            // A product given twice adds nothing the first time did not.
            if !done.insert(product.name.as_str()) {
                continue;
            }
            for need in self.needs_of(product) {
                let (entry, transport) = (need.entry, need.transport);
                for &range in &entry.ports {
                    let (req, owners) = merged
                        .entry((entry.row, transport, range))
                        .or_insert_with(|| (requirement(entry, transport, range), Vec::new()));
                    // Every name this product adds is added while it is the
                    // product at hand, so it can only be the last one.
                    if req.products.last() != Some(&product.name) {
                        req.products.push(product.name.clone());
                    }
                    if !owners.iter().any(|o| o.name == need.owner.name) {
                        owners.push(need.owner);
                    }
                    if let Some(why) = need.why
                        && whys.insert((entry.row, transport, range, why))
                    {
                        req.why.push(why.to_string());
                    }
                }
            }
        }
        merged.into_values().collect()
    }

    /// The ports `products` need, one requirement per (entry, transport, range),
    /// merged across products, in table order.
    pub fn requirements(&self, products: &[&Product]) -> Vec<Requirement> {
        self.merged(products)
            .into_iter()
            .map(|(req, _)| req)
            .collect()
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
        for need in self.needs_of(product) {
            match need.transport {
                Transport::Tcp => tcp.extend_from_slice(&need.entry.ports),
                Transport::Udp => udp.extend_from_slice(&need.entry.ports),
            }
        }
        tcp.sort_unstable();
        udp.sort_unstable();
        (distinct_ports(&tcp), distinct_ports(&udp))
    }
}

/// One (entry, transport) a product needs, and the product whose own
/// `needs` list it.
struct Reached<'a> {
    entry: &'a Entry,
    transport: Transport,
    why: Option<&'a str>,
    owner: &'a Product,
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
mod load_props;
#[cfg(test)]
mod tests;
