//! The `target=` of a probe request: a host, or a host and one TCP port
//! the way blackbox_exporter's `tcp_connect` module takes it
//! (`198.18.1.2:5900`, `[2001:db8::1]:22`, `server.example:548`), so that
//! a Prometheus scrape configuration written for blackbox works unchanged.
//! The query string's percent-encoding is undone before this reads it, so
//! `198.18.1.2%3A5900` arrives as `198.18.1.2:5900`. An IPv6 address
//! without brackets is a host, never a host and a port: `2001:db8::1:22`
//! is the address it reads as.

use std::net::{IpAddr, Ipv6Addr};

/// A target as asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host: a name or an address, without brackets.
    pub host: String,
    /// The TCP port of `HOST:PORT`, when one was given.
    pub port: Option<u16>,
}

impl Target {
    /// The target as it is written back into a query: `HOST`, `HOST:PORT`,
    /// or `[V6]:PORT` for an IPv6 address with a port.
    pub fn written(&self) -> String {
        match self.port {
            None => self.host.clone(),
            Some(port) if self.host.contains(':') => format!("[{}]:{port}", self.host),
            Some(port) => format!("{}:{port}", self.host),
        }
    }
}

/// What a `HOST:PORT` with a bad port is told.
const PORT_WANTED: &str = "target=HOST:PORT needs a TCP port from 1 to 65535 (e.g. target=192.0.2.10:22 or target=[2001:db8::1]:22)";

/// Reads a target (already percent-decoded and trimmed). The error quotes
/// nothing of it.
pub fn parse(target: &str) -> Result<Target, String> {
    if let Some(rest) = target.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(
                "target=[ must close its IPv6 address with ] (e.g. target=[2001:db8::1]:22)"
                    .to_string(),
            );
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(
                "target=[...] must hold an IPv6 address (e.g. target=[2001:db8::1]:22)".to_string(),
            );
        }
        let port = match after {
            "" => None,
            _ => Some(port(after.strip_prefix(':').ok_or(PORT_WANTED)?)?),
        };
        return Ok(Target {
            host: inside.to_string(),
            port,
        });
    }
    if target.parse::<IpAddr>().is_ok() {
        return Ok(host(target));
    }
    match target.split_once(':') {
        // More than one colon and not an address: a host for the resolver
        // to refuse (or a scoped address it reads), never a port.
        Some((_, rest)) if rest.contains(':') => Ok(host(target)),
        Some(("", _)) => Err(
            "target=HOST:PORT needs a host before the colon (e.g. target=192.0.2.10:22)"
                .to_string(),
        ),
        Some((name, p)) => Ok(Target {
            host: name.to_string(),
            port: Some(port(p)?),
        }),
        None => Ok(host(target)),
    }
}

fn host(target: &str) -> Target {
    Target {
        host: target.to_string(),
        port: None,
    }
}

fn port(text: &str) -> Result<u16, String> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PORT_WANTED.to_string());
    }
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PORT_WANTED.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(t: &str) -> (String, Option<u16>) {
        let t = parse(t).unwrap();
        (t.host, t.port)
    }

    #[test]
    fn hosts_and_ports_as_blackbox_takes_them() {
        assert_eq!(read("198.18.1.2:5900"), ("198.18.1.2".into(), Some(5900)));
        assert_eq!(read("198.18.1.2"), ("198.18.1.2".into(), None));
        assert_eq!(read("[2001:db8::1]:22"), ("2001:db8::1".into(), Some(22)));
        assert_eq!(read("[2001:db8::1]"), ("2001:db8::1".into(), None));
        assert_eq!(
            read("server.example:548"),
            ("server.example".into(), Some(548))
        );
        assert_eq!(read("server.example"), ("server.example".into(), None));
    }

    #[test]
    fn an_ipv6_address_without_brackets_is_a_host() {
        for a in ["2001:db8::1", "2001:db8::1:22", "::1", "::ffff:192.0.2.1"] {
            assert_eq!(read(a), (a.to_string(), None), "{a}");
        }
        // Not an address either: still no port, left to the resolver.
        assert_eq!(read("fe80::1%eth0"), ("fe80::1%eth0".into(), None));
    }

    #[test]
    fn bad_ports_and_brackets_say_what_is_right() {
        for (t, says) in [
            ("192.0.2.1:0", "from 1 to 65535"),
            ("192.0.2.1:65536", "from 1 to 65535"),
            ("192.0.2.1:", "from 1 to 65535"),
            ("192.0.2.1:+22", "from 1 to 65535"),
            ("192.0.2.1:ssh", "from 1 to 65535"),
            ("192.0.2.1:0000022", "from 1 to 65535"),
            (":22", "a host before the colon"),
            ("[2001:db8::1", "close its IPv6 address"),
            ("[server.example]:22", "must hold an IPv6 address"),
            ("[192.0.2.1]:22", "must hold an IPv6 address"),
            ("[2001:db8::1]22", "from 1 to 65535"),
            ("[2001:db8::1]:", "from 1 to 65535"),
        ] {
            let e = parse(t).unwrap_err();
            assert!(e.contains(says), "{t}: {e}");
        }
    }

    #[test]
    fn a_target_is_written_back_as_it_reads() {
        for t in [
            "198.18.1.2:5900",
            "[2001:db8::1]:22",
            "2001:db8::1",
            "server.example",
        ] {
            assert_eq!(parse(t).unwrap().written(), t);
        }
        assert_eq!(parse("[2001:db8::1]").unwrap().written(), "2001:db8::1");
    }
}
