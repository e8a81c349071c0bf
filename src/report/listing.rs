//! Listings of the catalog: `portprobe products` and `portprobe ports`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::catalog::{Catalog, Requirement};
use crate::clean::clean;

/// One product as `portprobe products --json` lists it.
#[derive(Debug, Serialize)]
pub struct ProductSummary<'a> {
    /// Canonical name.
    pub name: &'a str,
    /// Other names it answers to.
    pub aliases: &'a [String],
    /// What it covers.
    pub summary: &'a str,
    /// Products it includes.
    pub includes: &'a [String],
    /// Distinct TCP ports it needs.
    pub tcp_ports: usize,
    /// Distinct UDP ports it needs.
    pub udp_ports: usize,
}

/// Every product of the catalog, with its port counts.
pub fn product_summaries(catalog: &Catalog) -> Vec<ProductSummary<'_>> {
    catalog
        .products()
        .iter()
        .map(|p| {
            let (tcp_ports, udp_ports) = catalog.port_counts(p);
            ProductSummary {
                name: &p.name,
                aliases: &p.aliases,
                summary: &p.summary,
                includes: &p.includes,
                tcp_ports,
                udp_ports,
            }
        })
        .collect()
}

/// `portprobe products` as a text table.
pub fn products_text(catalog: &Catalog) -> String {
    let rows = product_summaries(catalog);
    let name_w = rows
        .iter()
        .map(|r| clean(r.name).chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!(
        "{:<name_w$}  {:>5}  {:>5}  ALIASES\n",
        "PRODUCT", "TCP", "UDP"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<name_w$}  {:>5}  {:>5}  {}",
            clean(r.name),
            r.tcp_ports,
            r.udp_ports,
            clean(&r.aliases.join(", "))
        );
    }
    let _ = write!(
        out,
        "\n{} products from the {}. Names match ignoring case, spaces and punctuation.\n",
        rows.len(),
        clean(catalog.origin())
    );
    out
}

/// `portprobe ports` as a text table.
pub fn ports_text(requirements: &[Requirement]) -> String {
    let port_w = requirements
        .iter()
        .map(|r| r.range().to_string().len())
        .max()
        .unwrap_or(0)
        .max(4);
    let service_w = requirements
        .iter()
        .map(|r| clean(&r.service).chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!(
        "{:<5}{:<port_w$}  {:<service_w$}  PRODUCTS\n",
        "", "PORT", "SERVICE"
    );
    for r in requirements {
        let products = if r.products.is_empty() {
            "-".to_string()
        } else {
            clean(&r.products.join(", ")).into_owned()
        };
        let _ = writeln!(
            out,
            "{:<5}{:<port_w$}  {:<service_w$}  {products}",
            r.protocol.label(),
            r.range().to_string(),
            clean(&r.service)
        );
    }
    let ports: u64 = requirements
        .iter()
        .map(|r| u64::from(r.port_end - r.port_start) + 1)
        .sum();
    let _ = write!(out, "\n{} rows, {ports} ports.\n", requirements.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_table_lists_every_product_with_counts() {
        let c = Catalog::builtin();
        let text = products_text(&c);
        let ard = text
            .lines()
            .find(|l| l.starts_with("Apple Remote Desktop"))
            .unwrap();
        let cols: Vec<&str> = ard.split_whitespace().collect();
        assert_eq!(&cols[3..6], ["4", "2", "ARD,"]);
        assert_eq!(text.lines().count(), c.products().len() + 3);
    }

    #[test]
    fn ports_table_shows_ranges_and_products() {
        let c = Catalog::builtin();
        let xsan = c.find_product("xsan").unwrap();
        let text = ports_text(&c.requirements(&[xsan]));
        assert!(text.contains("TCP  49152-65535  Xsan"), "{text}");
        assert!(text.ends_with("3 rows, 16386 ports.\n"), "{text}");
    }
}
