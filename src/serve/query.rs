//! The parameters of a probe request (`/probe?target=HOST&product=NAME&...`
//! for Prometheus, the same from the page's form; `module=NAME` for a
//! module of the configuration file; `target=HOST:PORT` alone, or with
//! `module=tcp_connect`, for one TCP port as blackbox_exporter probes it;
//! `locate=0` or `locate=1` says whether blocked ports are located): read from the query
//! string with every value checked and bounded, so nothing unbounded or
//! unchecked reaches the engine or a response. The size of what is asked
//! is measured here, before anything is expanded: port ranges are merged
//! (each port once, however often it is named) without listing a port.

use super::target;
use crate::clean::clean;
use crate::port::{PortItem, merge, parse_port_list};

/// The longest query string read.
pub const MAX_QUERY: usize = 4096;
/// The most `product` parameters in one request.
const MAX_PRODUCTS: usize = 16;
/// The most `ports` parameters in one request.
const MAX_PORT_LISTS: usize = 16;
/// The longest product name read (the catalog's are far shorter).
const MAX_PRODUCT_NAME: usize = 100;
/// The longest module name read.
pub const MAX_MODULE_NAME: usize = 64;
/// blackbox_exporter's name for a probe of one TCP port, built in.
pub const TCP_CONNECT: &str = "tcp_connect";

/// What to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeQuery {
    /// The host.
    pub target: String,
    /// The TCP port of `target=HOST:PORT`: that port alone is probed.
    pub target_port: Option<u16>,
    /// The module of the configuration file asked for (`tcp_connect`:
    /// the port of `target=HOST:PORT`).
    pub module: Option<String>,
    /// The products, as named.
    pub products: Vec<String>,
    /// `ports=SPEC` items, merged: sorted, each port once.
    pub ports: Vec<PortItem>,
    /// Locate blocked ports within the deadline (`locate=1`) or not
    /// (`locate=0`); `None` for what the module says (by default, yes).
    pub locate: Option<bool>,
}

impl ProbeQuery {
    /// The query string that asks for this probe again
    /// (`target=HOST&product=NAME&ports=548/tcp,53/udp`), percent-encoded:
    /// [`parse`] reads it back to the same request.
    pub fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        let target = target::Target {
            host: self.target.clone(),
            port: self.target_port,
        };
        s.append_pair("target", &target.written());
        if let Some(m) = &self.module {
            s.append_pair("module", m);
        }
        for p in &self.products {
            s.append_pair("product", p);
        }
        if !self.ports.is_empty() {
            let ports: Vec<String> = self.ports.iter().map(ToString::to_string).collect();
            s.append_pair("ports", &ports.join(","));
        }
        s.finish()
    }
}

/// Reads a query string; the error says what is wrong, in one line that
/// quotes nothing of the request but its parameter names and a `ports=`
/// item, with control characters escaped.
pub fn parse(query: &str) -> Result<ProbeQuery, String> {
    if query.len() > MAX_QUERY {
        return Err(format!(
            "the query is longer than {MAX_QUERY} bytes: give target, product and ports only"
        ));
    }
    let mut target: Option<String> = None;
    let mut products = Vec::new();
    let mut ports = Vec::new();
    let mut port_lists = 0;
    let mut locate = None;
    let mut module: Option<String> = None;
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
            "product" if value.chars().count() > MAX_PRODUCT_NAME => {
                return Err(format!(
                    "product= names longer than {MAX_PRODUCT_NAME} characters are no product (e.g. product=ARD)"
                ));
            }
            "product" if !value.is_empty() => products.push(value.to_string()),
            "ports" if port_lists == MAX_PORT_LISTS => {
                return Err(format!(
                    "at most {MAX_PORT_LISTS} ports= parameters (one may list many: ports=548,5900-5902,53/udp)"
                ));
            }
            "ports" if !value.is_empty() => {
                port_lists += 1;
                ports.extend(
                    parse_port_list(value)
                        .map_err(|e| format!("ports=: {}", clean(&e.to_string())))?,
                );
                ports = merge(&ports);
            }
            "module" if module.is_some() => {
                return Err("give one module per probe (module= appears twice)".to_string());
            }
            "module" if !value.is_empty() => {
                if value.len() > MAX_MODULE_NAME
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(format!(
                        "module= names a module of the configuration file: letters, digits, _ and -, at most {MAX_MODULE_NAME} (e.g. module=ard)"
                    ));
                }
                module = Some(value.to_string());
            }
            "locate" if locate.is_some() => {
                return Err("give locate= once (0 or 1)".to_string());
            }
            "locate" => {
                locate = Some(match value {
                    "1" => true,
                    "0" => false,
                    _ => return Err("locate= must be 0 or 1 (e.g. locate=0)".to_string()),
                });
            }
            // Prometheus adds nothing else, but a page or a proxy may: other
            // parameters change nothing.
            _ => {}
        }
    }
    let Some(target) = target else {
        return Err("target= is missing (e.g. /probe?target=192.0.2.10&product=ARD)".to_string());
    };
    let target = target::parse(&target)?;
    let asked = !products.is_empty() || !ports.is_empty();
    match (&target.port, module.as_deref()) {
        (Some(_), Some(m)) if m != TCP_CONNECT => {
            return Err(format!(
                "target=HOST:PORT probes that one TCP port (alone, or with module={TCP_CONNECT}): give module=NAME with target=HOST"
            ));
        }
        (Some(_), _) if asked => {
            return Err(
                "target=HOST:PORT probes that one TCP port: give product= or ports= with target=HOST instead"
                    .to_string(),
            );
        }
        (None, Some(TCP_CONNECT)) => {
            return Err(format!(
                "module={TCP_CONNECT} probes the port of target=HOST:PORT (e.g. target=192.0.2.10:22)"
            ));
        }
        (None, Some(_)) if asked => {
            return Err(
                "give module=NAME or product=/ports=, not both: a module names what it probes"
                    .to_string(),
            );
        }
        (None, None) if !asked => {
            return Err(
                "nothing to probe: give product=NAME, ports=SPEC, module=NAME or target=HOST:PORT (e.g. product=ARD)"
                    .to_string(),
            );
        }
        _ => {}
    }
    Ok(ProbeQuery {
        target: target.host,
        target_port: target.port,
        module: module.filter(|m| target.port.is_none() || m != TCP_CONNECT),
        products,
        ports,
        locate,
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
        let q = parse("target=server.example&ports=548,53/udp&other=x").unwrap();
        assert_eq!(q.ports.len(), 2);
        let q = parse("target=a&ports=5900-5910,548&ports=5905-5920,549").unwrap();
        let shown: Vec<String> = q.ports.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["548-549/tcp", "5900-5920/tcp"]);
    }

    #[test]
    fn an_encoded_query_reads_back_the_same() {
        let q = parse(
            "target=server.example&product=Apple+Remote+Desktop&product=A%26B%3Dc&ports=548,53/udp,5900-5902",
        )
        .unwrap();
        let encoded = q.encode();
        assert_eq!(
            encoded,
            "target=server.example&product=Apple+Remote+Desktop&product=A%26B%3Dc&ports=548%2Ftcp%2C5900-5902%2Ftcp%2C53%2Fudp"
        );
        assert_eq!(parse(&encoded).unwrap(), q);
    }

    #[test]
    fn blocked_ports_are_located_unless_locate_is_0() {
        assert_eq!(parse("target=a&product=ARD").unwrap().locate, None);
        assert_eq!(
            parse("target=a&product=ARD&locate=1").unwrap().locate,
            Some(true)
        );
        assert_eq!(
            parse("target=a&product=ARD&locate=0").unwrap().locate,
            Some(false)
        );
        for query in [
            "target=a&product=ARD&locate=yes",
            "target=a&locate=1&locate=0&product=ARD",
        ] {
            let e = parse(query).unwrap_err();
            assert!(e.contains("locate="), "{query}: {e}");
        }
    }

    #[test]
    fn blackbox_targets_with_a_port_probe_that_port() {
        for (query, host, port) in [
            ("target=198.18.1.2%3A5900", "198.18.1.2", 5900),
            ("target=198.18.1.2:5900", "198.18.1.2", 5900),
            ("target=%5B2001%3Adb8%3A%3A1%5D%3A22", "2001:db8::1", 22),
            ("target=[2001:db8::1]:22", "2001:db8::1", 22),
            ("module=tcp_connect&target=127.0.0.1%3A22", "127.0.0.1", 22),
        ] {
            let q = parse(query).unwrap();
            assert_eq!(
                (q.target.as_str(), q.target_port),
                (host, Some(port)),
                "{query}"
            );
            assert_eq!(q.module, None, "{query}");
            assert!(q.products.is_empty() && q.ports.is_empty(), "{query}");
            assert_eq!(parse(&q.encode()).unwrap(), q, "{query}");
        }
        let q = parse("target=2001%3Adb8%3A%3A1&product=ARD").unwrap();
        assert_eq!((q.target.as_str(), q.target_port), ("2001:db8::1", None));
        let q = parse("target=a&module=ard-1").unwrap();
        assert_eq!(q.module.as_deref(), Some("ard-1"));
        assert_eq!(parse(&q.encode()).unwrap(), q);
    }

    #[test]
    fn modules_ports_and_products_do_not_mix() {
        for (query, says) in [
            ("target=a:22&product=ARD", "with target=HOST instead"),
            ("target=a:22&ports=22", "with target=HOST instead"),
            (
                "target=a:22&module=ard",
                "give module=NAME with target=HOST",
            ),
            (
                "target=a&module=tcp_connect",
                "probes the port of target=HOST:PORT",
            ),
            ("target=a&module=ard&product=ARD", "not both"),
            ("target=a&module=ard&module=b", "one module"),
            ("target=a&module=%1b[31m", "letters, digits"),
            ("target=a:0", "from 1 to 65535"),
            ("target=a", "module=NAME or target=HOST:PORT"),
        ] {
            let e = parse(query).unwrap_err();
            assert!(e.contains(says), "{query}: {e}");
            assert!(!e.contains('\u{1b}'), "{query}: {e}");
        }
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
        let lists = "ports=1-65535&".repeat(MAX_PORT_LISTS + 1) + "target=a";
        assert!(parse(&lists).unwrap_err().contains("at most 16 ports="));
        let long = format!("target=a&product={}", "x".repeat(MAX_PRODUCT_NAME + 1));
        assert!(parse(&long).unwrap_err().contains("longer than 100"));
    }

    mod properties {
        use super::*;
        use crate::port::Transport;
        use proptest::prelude::*;

        /// `key=value` pairs of the keys a probe reads (and one it does
        /// not), with values in the alphabet of targets and port lists,
        /// percent-escapes of control characters and separators included.
        fn query_like() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                Just("target"),
                Just("product"),
                Just("ports"),
                Just("module"),
                Just("")
            ];
            let value = proptest::string::string_regex(
                "([0-9a-zA-Z,./:_ +-]|%1b|%0a|%00|%26|%3d|%e2%80%ae|%ff|1-65535|/udp){0,40}",
            )
            .unwrap();
            proptest::collection::vec((key, value), 0..40).prop_map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            })
        }

        proptest! {
            #[test]
            fn any_query_is_read_within_its_bounds_or_refused_in_one_clean_line(
                query in prop_oneof![query_like(), ".{0,200}", "(ports=1-65535&){0,400}target=a"],
            ) {
                match parse(&query) {
                    Ok(q) => {
                        prop_assert!(query.len() <= MAX_QUERY);
                        prop_assert!(!q.target.is_empty() && q.target.len() <= 253);
                        prop_assert_eq!(q.target.trim(), &q.target);
                        prop_assert!(q.products.len() <= MAX_PRODUCTS);
                        prop_assert!(q.products.iter().all(|p| !p.is_empty() && p.chars().count() <= MAX_PRODUCT_NAME));
                        prop_assert!(!q.products.is_empty() || !q.ports.is_empty() || q.module.is_some() || q.target_port.is_some());
                        // Merged: in order, each port once.
                        for w in q.ports.windows(2) {
                            prop_assert!(
                                w[0].transport < w[1].transport
                                    || u32::from(w[0].range.end()) + 1 < u32::from(w[1].range.start())
                            );
                        }
                        let ports: u32 = q.ports.iter().map(|i| i.range.len()).sum();
                        prop_assert!(ports <= 2 * 65535);
                        prop_assert!(q.ports.iter().filter(|i| i.transport == Transport::Tcp).count() <= query.len());
                    }
                    Err(why) => {
                        prop_assert!(!why.is_empty());
                        prop_assert!(!why.chars().any(char::is_control), "{:?}", why);
                        prop_assert!(why.len() <= 300 + query.len(), "{}", why);
                        if query.len() > MAX_QUERY {
                            prop_assert!(why.contains("longer than 4096 bytes"));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_port_named_many_times_is_one_port() {
        let query = format!("target=a&ports={}", vec!["1-65535"; 290].join(","));
        assert!(query.len() <= MAX_QUERY);
        let q = parse(&query).unwrap();
        assert_eq!(q.ports.len(), 1);
        assert_eq!(q.ports[0].range.len(), 65535);
    }
}
