//! The parameters of a probe request (`/probe?target=HOST&product=NAME&...`
//! for Prometheus, the same from the page's form): read from the query
//! string with every value checked and bounded, so nothing unbounded or
//! unchecked reaches the engine or a response.

use crate::port::{PortItem, parse_port_list};

/// The longest query string read.
pub const MAX_QUERY: usize = 4096;
/// The most `product` parameters in one request.
const MAX_PRODUCTS: usize = 16;

/// What to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeQuery {
    /// The host.
    pub target: String,
    /// The products, as named.
    pub products: Vec<String>,
    /// `ports=SPEC` items.
    pub ports: Vec<PortItem>,
}

/// Reads a query string; the error says what is wrong, in words that
/// quote nothing of the request but its parameter names.
pub fn parse(query: &str) -> Result<ProbeQuery, String> {
    if query.len() > MAX_QUERY {
        return Err(format!(
            "the query is longer than {MAX_QUERY} bytes: give target, product and ports only"
        ));
    }
    let mut target: Option<String> = None;
    let mut products = Vec::new();
    let mut ports = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.trim();
        match &*key {
            "target" => {
                if target.is_some() {
                    return Err("give one target per probe (target= appears twice)".to_string());
                }
                if value.is_empty() || value.len() > 253 {
                    return Err(
                        "target= must be a host name or an address (e.g. 192.0.2.10)".to_string(),
                    );
                }
                target = Some(value.to_string());
            }
            "product" if products.len() == MAX_PRODUCTS => {
                return Err(format!("at most {MAX_PRODUCTS} product= parameters"));
            }
            "product" if !value.is_empty() => products.push(value.to_string()),
            "ports" if !value.is_empty() => {
                ports.extend(parse_port_list(value).map_err(|e| format!("ports=: {e}"))?);
            }
            // Prometheus adds nothing else, but a page or a proxy may: other
            // parameters change nothing.
            _ => {}
        }
    }
    let Some(target) = target else {
        return Err("target= is missing (e.g. /probe?target=192.0.2.10&product=ARD)".to_string());
    };
    if products.is_empty() && ports.is_empty() {
        return Err(
            "nothing to probe: give product=NAME or ports=SPEC (e.g. product=ARD)".to_string(),
        );
    }
    Ok(ProbeQuery {
        target,
        products,
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_style_queries() {
        let q =
            parse("product=Apple+Remote+Desktop&product=File%20Sharing&target=198.18.1.2").unwrap();
        assert_eq!(q.target, "198.18.1.2");
        assert_eq!(q.products, ["Apple Remote Desktop", "File Sharing"]);
        assert!(q.ports.is_empty());
        let q = parse("target=server.example&ports=548,53/udp&module=x").unwrap();
        assert_eq!(q.ports.len(), 2);
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        for (query, says) in [
            ("", "target= is missing"),
            ("product=ARD", "target= is missing"),
            ("target=a&target=b&product=ARD", "one target"),
            ("target=&product=ARD", "must be a host name"),
            ("target=a", "nothing to probe"),
            ("target=a&ports=99999", "ports=:"),
        ] {
            let e = parse(query).unwrap_err();
            assert!(e.contains(says), "{query}: {e}");
        }
        assert!(parse(&"a".repeat(MAX_QUERY + 1)).is_err());
        let many = "product=x&".repeat(MAX_PRODUCTS + 1) + "target=a";
        assert!(parse(&many).unwrap_err().contains("at most"));
    }
}
