//! Parsing and strict validation of catalog files.
//!
//! Every error names the file, the entry or product (by position, line and
//! id), and the field, so that a site maintaining its own catalog can find
//! the mistake at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;

use super::{Catalog, Entry, LeaveOut, Need, Product};
use crate::port::{PortRange, Transport};

/// What was wrong with a catalog file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog {file}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or its top level is wrong.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// One entry or product is invalid.
    #[error("{file}: {item}: field `{field}`: {message}")]
    Field {
        /// The file.
        file: String,
        /// Which entry or product, e.g. `entry 3 (line 40, id "ssh")`.
        item: String,
        /// The field at fault.
        field: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    entry: Vec<toml::Value>,
    #[serde(default)]
    product: Vec<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    row: u32,
    label: String,
    table_port: String,
    ports: Vec<String>,
    table_protocol: String,
    probe_protocols: Option<Vec<String>>,
    probe_reason: Option<String>,
    service: Option<String>,
    rfc: Option<String>,
    used_by: Option<String>,
    #[serde(default)]
    unregistered: bool,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    includes: Vec<String>,
    #[serde(default)]
    needs: Vec<RawNeed>,
    #[serde(default)]
    leaves_out: Vec<RawLeaveOut>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeaveOut {
    entry: Option<String>,
    product: Option<String>,
    why: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeed {
    entry: String,
    protocols: Option<Vec<String>>,
    why: Option<String>,
}

/// Identifies an entry or product in error messages.
struct Item {
    kind: &'static str,
    index: usize,
    line: Option<usize>,
    name: Option<String>,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.index + 1)?;
        match (&self.line, &self.name) {
            (Some(line), Some(name)) => write!(f, " (line {line}, {name})"),
            (Some(line), None) => write!(f, " (line {line})"),
            (None, Some(name)) => write!(f, " ({name})"),
            (None, None) => Ok(()),
        }
    }
}

/// Line numbers (from 1) of each `[[header]]` in the text, in order.
fn header_lines(text: &str, header: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .map(|(i, _)| i + 1)
        .collect()
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, item: &Item, field: &str, message: impl Into<String>) -> CatalogError {
        CatalogError::Field {
            file: self.file.to_string(),
            item: item.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Turns a serde error for one table into a located error; serde names
    /// unknown and missing fields in its message, which we lift into `field`.
    fn serde_err(&self, item: &Item, e: toml::de::Error) -> CatalogError {
        let message = e.message().trim().to_string();
        let field = between_backticks(&message).unwrap_or("?").to_string();
        self.err(item, &field, message)
    }
}

fn between_backticks(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}

/// Parses and validates a whole catalog: its entries, then its products
/// (names unique as typed), then what the products include, then what
/// they leave out.
pub(super) fn parse(text: &str, file: &str) -> Result<Catalog, CatalogError> {
    let ctx = Ctx { file };
    let raw: RawFile = toml::from_str(text).map_err(|e| CatalogError::Syntax {
        file: file.to_string(),
        message: syntax_message(text, &e),
    })?;
    let entry_lines = header_lines(text, "[[entry]]");
    let product_lines = header_lines(text, "[[product]]");
    let (entries, entry_ids) = parse_entries(&ctx, raw.entry, &entry_lines)?;
    let (products, lookup_names) =
        parse_products(&ctx, raw.product, &product_lines, &entries, &entry_ids)?;
    let (products, product_names) = check_includes(&ctx, products, &product_lines)?;
    let mut catalog = Catalog {
        origin: file.to_string(),
        entries,
        products,
        entry_ids,
        product_names,
        lookup_names,
        services: OnceLock::new(),
    };
    settle_leaves_out(&ctx, &mut catalog, &product_lines)?;
    Ok(catalog)
}

/// The `[[entry]]` tables, each validated, with ids and rows unique; and
/// each id's index.
fn parse_entries(
    ctx: &Ctx<'_>,
    raw: Vec<toml::Value>,
    lines: &[usize],
) -> Result<(Vec<Entry>, HashMap<String, usize>), CatalogError> {
    let mut entries = Vec::with_capacity(raw.len());
    let mut entry_ids: HashMap<String, usize> = HashMap::new();
    let mut rows: HashSet<u32> = HashSet::new();
    for (index, value) in raw.into_iter().enumerate() {
        let mut item = Item {
            kind: "entry",
            index,
            line: lines.get(index).copied(),
            name: value
                .get("id")
                .and_then(|v| v.as_str())
                .map(|id| format!("id \"{id}\"")),
        };
        let raw = RawEntry::deserialize(value).map_err(|e| ctx.serde_err(&item, e))?;
        item.name = Some(format!("id \"{}\"", raw.id));
        let entry = validate_entry(ctx, &item, raw)?;
        if entry_ids.insert(entry.id.clone(), index).is_some() {
            return Err(ctx.err(
                &item,
                "id",
                format!(
                    "id \"{}\" is used by an earlier entry (ids must be unique)",
                    entry.id
                ),
            ));
        }
        if !rows.insert(entry.row) {
            return Err(ctx.err(
                &item,
                "row",
                format!(
                    "row {} is used by an earlier entry (rows must be unique)",
                    entry.row
                ),
            ));
        }
        entries.push(entry);
    }
    Ok((entries, entry_ids))
}

/// Each normalised name or alias, and the product it names.
type LookupNames = BTreeMap<String, usize>;

/// The `[[product]]` tables, each validated against the entries, with
/// every name and alias unique as a person types it; and each normalised
/// name's product.
fn parse_products(
    ctx: &Ctx<'_>,
    raw: Vec<toml::Value>,
    lines: &[usize],
    entries: &[Entry],
    entry_ids: &HashMap<String, usize>,
) -> Result<(Vec<(Item, Product)>, LookupNames), CatalogError> {
    let mut products: Vec<(Item, Product)> = Vec::with_capacity(raw.len());
    // Normalised name or alias -> the product it names.
    let mut lookup_names = LookupNames::new();
    for (index, value) in raw.into_iter().enumerate() {
        let mut item = Item {
            kind: "product",
            index,
            line: lines.get(index).copied(),
            name: value
                .get("name")
                .and_then(|v| v.as_str())
                .map(|n| format!("\"{n}\"")),
        };
        let raw = RawProduct::deserialize(value).map_err(|e| ctx.serde_err(&item, e))?;
        item.name = Some(format!("\"{}\"", raw.name));
        let product = validate_product(ctx, &item, raw, entries, entry_ids)?;
        for (field, name) in std::iter::once(("name", &product.name))
            .chain(product.aliases.iter().map(|a| ("aliases", a)))
        {
            let key = super::lookup::normalise(name);
            if key.is_empty() {
                return Err(ctx.err(
                    &item,
                    field,
                    format!("\"{name}\" has no letters or digits to match on"),
                ));
            }
            if let Some(owner) = lookup_names.insert(key, index)
                && owner != index
            {
                let owner = &products[owner].1.name;
                return Err(ctx.err(&item, field, format!("\"{name}\" already names product \"{owner}\" (names and aliases must be unique, ignoring case, spaces and punctuation)")));
            }
        }
        products.push((item, product));
    }
    Ok((products, lookup_names))
}

/// Every product a product includes exists, and no product includes
/// itself through others; the products, and each name's index.
fn check_includes(
    ctx: &Ctx<'_>,
    products: Vec<(Item, Product)>,
    lines: &[usize],
) -> Result<(Vec<Product>, HashMap<String, usize>), CatalogError> {
    let product_names: HashMap<String, usize> = products
        .iter()
        .enumerate()
        .map(|(i, (_, p))| (p.name.clone(), i))
        .collect();
    for (item, product) in &products {
        for name in &product.includes {
            if !product_names.contains_key(name) {
                let known: Vec<&str> = products.iter().map(|(_, p)| p.name.as_str()).collect();
                return Err(ctx.err(
                    item,
                    "includes",
                    format!(
                        "no product named \"{name}\" ({})",
                        closest_hint(name, &known)
                    ),
                ));
            }
        }
    }
    let products: Vec<Product> = products.into_iter().map(|(_, p)| p).collect();
    if let Some(cycle) = include_cycle(&products, &product_names) {
        let index = product_names.get(&cycle[0]).copied().unwrap_or(0);
        let item = Item {
            kind: "product",
            index,
            line: lines.get(index).copied(),
            name: Some(format!("\"{}\"", cycle[0])),
        };
        return Err(ctx.err(
            &item,
            "includes",
            format!(
                "products include each other in a cycle: {}",
                cycle.join(" -> ")
            ),
        ));
    }
    Ok((products, product_names))
}

/// Checks what each `leaves_out` names against the whole catalog (the
/// product exists, this product includes it, and it needs the entry) and
/// records the transports of the entry that the named product needs.
fn settle_leaves_out(
    ctx: &Ctx<'_>,
    catalog: &mut Catalog,
    product_lines: &[usize],
) -> Result<(), CatalogError> {
    let mut settled: Vec<(usize, usize, Vec<Transport>)> = Vec::new();
    for (index, product) in catalog.products.iter().enumerate() {
        if product.leaves_out.is_empty() {
            continue;
        }
        let item = Item {
            kind: "product",
            index,
            line: product_lines.get(index).copied(),
            name: Some(format!("\"{}\"", product.name)),
        };
        let reached = catalog.reach(product, None);
        for (i, leave) in product.leaves_out.iter().enumerate() {
            let field = format!("leaves_out[{i}].product");
            let Some(named) = catalog.product(&leave.product) else {
                let known: Vec<&str> = catalog.products.iter().map(|p| p.name.as_str()).collect();
                return Err(ctx.err(
                    &item,
                    &field,
                    format!(
                        "no product named \"{}\" ({})",
                        leave.product,
                        closest_hint(&leave.product, &known)
                    ),
                ));
            };
            if named.name == product.name || !reached.iter().any(|p| p.name == named.name) {
                return Err(ctx.err(
                    &item,
                    &field,
                    format!(
                        "\"{}\" is not a product that \"{}\" includes (directly or through the products it includes); name the included product that needs entry \"{}\"",
                        named.name, product.name, leave.entry
                    ),
                ));
            }
            let entry = catalog
                .entry(&leave.entry)
                .expect("checked with the product");
            // What `named` needs of the entry: the direct needs of the
            // products it reaches without passing one that leaves the entry
            // out (one walk, as `needs_of` makes for each entry left out).
            let needed: Vec<Transport> = catalog
                .reach(named, Some(&leave.entry))
                .iter()
                .flat_map(|p| p.needs.iter().filter(|n| n.entry == leave.entry))
                .flat_map(|n| n.transports.as_deref().unwrap_or(&entry.transports))
                .copied()
                .collect();
            let transports: Vec<Transport> = entry
                .transports
                .iter()
                .copied()
                .filter(|t| needed.contains(t))
                .collect();
            if transports.is_empty() {
                return Err(ctx.err(
                    &item,
                    &field,
                    format!(
                        "product \"{}\" does not need entry \"{}\" (name the included product that does: reports tell the user to ask for it)",
                        named.name, leave.entry
                    ),
                ));
            }
            settled.push((index, i, transports));
        }
    }
    for (product, i, transports) in settled {
        catalog.products[product].leaves_out[i].transports = transports;
    }
    Ok(())
}

fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_string(),
    }
}

fn parse_transport(s: &str) -> Option<Transport> {
    s.parse().ok()
}

fn validate_entry(ctx: &Ctx<'_>, item: &Item, raw: RawEntry) -> Result<Entry, CatalogError> {
    if raw.id.trim().is_empty() {
        return Err(ctx.err(item, "id", "must not be empty"));
    }
    if raw.row == 0 {
        return Err(ctx.err(item, "row", "rows count from 1"));
    }
    if raw.label.trim().is_empty() {
        return Err(ctx.err(item, "label", "must not be empty"));
    }
    if raw.ports.is_empty() {
        return Err(ctx.err(
            item,
            "ports",
            "lists no ports (expected e.g. [\"548\"] or [\"600-1023\"])",
        ));
    }
    let mut ports = Vec::with_capacity(raw.ports.len());
    for p in &raw.ports {
        let range: PortRange = p
            .parse()
            .map_err(|e| ctx.err(item, "ports", format!("\"{p}\": {e}")))?;
        ports.push(range);
    }
    let stated: Option<Vec<Transport>> =
        match raw.table_protocol.trim().to_ascii_uppercase().as_str() {
            "TCP" => Some(vec![Transport::Tcp]),
            "UDP" => Some(vec![Transport::Udp]),
            "TCP/UDP" | "UDP/TCP" => Some(vec![Transport::Tcp, Transport::Udp]),
            "-" => None,
            other => {
                return Err(ctx.err(
                item,
                "table_protocol",
                format!(
                    "unknown protocol \"{other}\" (expected \"TCP\", \"UDP\", \"TCP/UDP\" or \"-\")"
                ),
            ));
            }
        };
    let transports = match (stated, raw.probe_protocols) {
        (Some(t), None) => t,
        (Some(_), Some(_)) => {
            return Err(ctx.err(
                item,
                "probe_protocols",
                format!(
                    "only for rows whose table_protocol is \"-\"; this row states \"{}\"",
                    raw.table_protocol
                ),
            ));
        }
        (None, None) => {
            return Err(ctx.err(item, "probe_protocols", "required when table_protocol is \"-\": say which of \"tcp\" and \"udp\" to probe, and why in probe_reason"));
        }
        (None, Some(list)) => {
            if list.is_empty() {
                return Err(ctx.err(
                    item,
                    "probe_protocols",
                    "lists no protocol (expected \"tcp\", \"udp\" or both)",
                ));
            }
            let mut out = Vec::new();
            for p in &list {
                let t = parse_transport(p).ok_or_else(|| {
                    ctx.err(
                        item,
                        "probe_protocols",
                        format!("unknown protocol \"{p}\" (expected \"tcp\" or \"udp\")"),
                    )
                })?;
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            if raw
                .probe_reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
            {
                return Err(ctx.err(item, "probe_reason", "required with probe_protocols: say why these protocols are probed when the table states none"));
            }
            out
        }
    };
    Ok(Entry {
        id: raw.id,
        row: raw.row,
        label: raw.label,
        table_port: raw.table_port,
        ports,
        table_protocol: raw.table_protocol,
        transports,
        probe_reason: raw.probe_reason,
        service: raw.service,
        rfc: raw.rfc,
        used_by: raw.used_by,
        unregistered: raw.unregistered,
        note: raw.note,
    })
}

fn validate_product(
    ctx: &Ctx<'_>,
    item: &Item,
    raw: RawProduct,
    entries: &[Entry],
    entry_ids: &HashMap<String, usize>,
) -> Result<Product, CatalogError> {
    if raw.name.trim().is_empty() {
        return Err(ctx.err(item, "name", "must not be empty"));
    }
    if raw.needs.is_empty() && raw.includes.is_empty() {
        return Err(ctx.err(
            item,
            "needs",
            "the product needs no ports and includes no product",
        ));
    }
    let mut needs = Vec::with_capacity(raw.needs.len());
    for (i, need) in raw.needs.into_iter().enumerate() {
        let field = format!("needs[{i}].entry");
        let Some(entry) = entry_ids.get(&need.entry).map(|&i| &entries[i]) else {
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            return Err(ctx.err(
                item,
                &field,
                format!(
                    "no entry with id \"{}\" ({})",
                    need.entry,
                    closest_hint(&need.entry, &ids)
                ),
            ));
        };
        let transports = match need.protocols {
            None => None,
            Some(list) => {
                let field = format!("needs[{i}].protocols");
                let mut out = Vec::new();
                for p in &list {
                    let t = parse_transport(p).ok_or_else(|| {
                        ctx.err(
                            item,
                            &field,
                            format!("unknown protocol \"{p}\" (expected \"tcp\" or \"udp\")"),
                        )
                    })?;
                    if !entry.transports.contains(&t) {
                        return Err(ctx.err(
                            item,
                            &field,
                            format!(
                                "entry \"{}\" has no {} port (it is {})",
                                entry.id,
                                t.label(),
                                entry.table_protocol
                            ),
                        ));
                    }
                    out.push(t);
                }
                if out.is_empty() {
                    return Err(ctx.err(
                        item,
                        &field,
                        "lists no protocol (omit the field to need every protocol of the entry)",
                    ));
                }
                Some(out)
            }
        };
        needs.push(Need {
            entry: need.entry,
            transports,
            why: need.why,
        });
    }
    let leaves_out = validate_leaves_out(ctx, item, raw.leaves_out, &needs, entries, entry_ids)?;
    Ok(Product {
        name: raw.name,
        aliases: raw.aliases,
        summary: raw.summary,
        includes: raw.includes,
        needs,
        leaves_out,
    })
}

/// The checks of a `leaves_out` list that need no other product: every
/// field present, the entry known, not listed twice, and not one the
/// product needs itself.
fn validate_leaves_out(
    ctx: &Ctx<'_>,
    item: &Item,
    raw: Vec<RawLeaveOut>,
    needs: &[Need],
    entries: &[Entry],
    entry_ids: &HashMap<String, usize>,
) -> Result<Vec<LeaveOut>, CatalogError> {
    let mut out: Vec<LeaveOut> = Vec::with_capacity(raw.len());
    for (i, leave) in raw.into_iter().enumerate() {
        let field = |name: &str| format!("leaves_out[{i}].{name}");
        let Some(entry) = leave.entry.filter(|e| !e.trim().is_empty()) else {
            return Err(ctx.err(
                item,
                &field("entry"),
                "required: the id of the entry to leave out",
            ));
        };
        if !entry_ids.contains_key(&entry) {
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            return Err(ctx.err(
                item,
                &field("entry"),
                format!(
                    "no entry with id \"{entry}\" ({})",
                    closest_hint(&entry, &ids)
                ),
            ));
        }
        if let Some(j) = needs.iter().position(|n| n.entry == entry) {
            return Err(ctx.err(
                item,
                &field("entry"),
                format!(
                    "the product needs entry \"{entry}\" itself (needs[{j}]); only ports reached through `includes` can be left out"
                ),
            ));
        }
        if out.iter().any(|l| l.entry == entry) {
            return Err(ctx.err(
                item,
                &field("entry"),
                format!("entry \"{entry}\" is left out twice"),
            ));
        }
        let Some(product) = leave.product.filter(|p| !p.trim().is_empty()) else {
            return Err(ctx.err(
                item,
                &field("product"),
                "required: the included product that needs the entry, which reports tell the user to ask for",
            ));
        };
        let Some(why) = leave.why.filter(|w| !w.trim().is_empty()) else {
            return Err(ctx.err(
                item,
                &field("why"),
                "required: what the left-out ports are for, in a few words (reports show it)",
            ));
        };
        out.push(LeaveOut {
            entry,
            product,
            why,
            transports: Vec::new(),
        });
    }
    Ok(out)
}

/// "closest: a, b, c" for a misspelt name.
fn closest_hint(name: &str, known: &[&str]) -> String {
    let close = super::lookup::closest(name, known.iter().copied(), 3);
    if close.is_empty() {
        "no similar name".to_string()
    } else {
        format!("closest: {}", close.join(", "))
    }
}

/// A chain of product names that includes itself, if any: a depth-first walk
/// of the includes, without recursion so that a long chain cannot exhaust the
/// stack. Every included name must be in `index`.
fn include_cycle(products: &[Product], index: &HashMap<String, usize>) -> Option<Vec<String>> {
    let mut done = vec![false; products.len()];
    // Position of each product on the current path, if it is on it.
    let mut on_path: Vec<Option<usize>> = vec![None; products.len()];
    for root in 0..products.len() {
        if done[root] {
            continue;
        }
        // The products on the path, each with the next include to follow.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        on_path[root] = Some(0);
        while let Some((product, next)) = path.last_mut() {
            let product = *product;
            let Some(name) = products[product].includes.get(*next) else {
                path.pop();
                on_path[product] = None;
                done[product] = true;
                continue;
            };
            *next += 1;
            let Some(&included) = index.get(name) else {
                continue;
            };
            if let Some(start) = on_path[included] {
                let mut cycle: Vec<String> = path[start..]
                    .iter()
                    .map(|&(p, _)| products[p].name.clone())
                    .collect();
                cycle.push(products[included].name.clone());
                return Some(cycle);
            }
            if !done[included] {
                on_path[included] = Some(path.len());
                path.push((included, 0));
            }
        }
    }
    None
}
