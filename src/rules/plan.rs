//! What to allow for products without probing: every port of the catalog's
//! plan (the products asked for, what they include, and `--ports` items),
//! to each address given, as a probe of the same products would have
//! probed them.

use std::net::IpAddr;

use super::model::Wanted;
use super::report::what;
use super::text;
use crate::catalog::Plan;
use crate::port::PortRange;

/// The ports of `plan` to every address of `to`, and the header lines
/// that say what they are for and what the products leave out.
pub fn wanted(plan: &Plan, products: &[String], to: &[IpAddr]) -> (Vec<Wanted>, Vec<String>) {
    let wanted = to
        .iter()
        .flat_map(|&destination| {
            plan.ports.iter().map(move |p| Wanted {
                destination,
                transport: p.transport,
                port: p.port,
                what: what(&p.products, &p.service),
                found: None,
            })
        })
        .collect();
    let asked = if products.is_empty() {
        "the ports given with --ports".to_string()
    } else {
        products.join(", ")
    };
    let mut notes = vec![text::safe(&format!(
        "for {asked}, without probing: every port, blocked or not"
    ))];
    for n in &plan.not_probed {
        let range = PortRange::new(n.port_start, n.port_end)
            .map_or_else(|_| n.port_start.to_string(), |r| r.to_string());
        notes.push(text::safe(&format!(
            "not included, as a probe leaves it out: {} {range} ({}), which the product {} needs",
            n.protocol.label(),
            n.why,
            n.product
        )));
    }
    (wanted, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::port::parse_port_list;
    use crate::rules::model::group;

    #[test]
    fn a_product_gets_every_port_it_needs_with_its_service() {
        let c = Catalog::builtin();
        let ard = c.find_product("ARD").unwrap();
        let plan = c.plan(&[ard], &parse_port_list("22").unwrap());
        let to: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap()];
        let (wanted, notes) = wanted(&plan, std::slice::from_ref(&ard.name), &to);
        assert_eq!(wanted.len(), plan.ports.len());
        let rules = group(wanted);
        let vnc = rules
            .iter()
            .find(|r| r.ports_label() == "TCP 5900")
            .unwrap();
        assert_eq!(vnc.what, "Apple Remote Desktop: Screen Sharing (VNC)");
        assert!(
            rules
                .iter()
                .any(|r| r.what == "SSH" && r.ports_label() == "TCP 22")
        );
        assert_eq!(
            notes,
            ["for Apple Remote Desktop, without probing: every port, blocked or not"]
        );
        let server = c.find_product("Mac OS X Server").unwrap();
        let (_, notes) = super::wanted(&c.plan(&[server], &[]), &[], &to);
        assert_eq!(
            notes[1],
            "not included, as a probe leaves it out: UDP 6970-9999 (QuickTime Streaming Server RTP media), which the product QuickTime Streaming Server needs"
        );
    }
}
