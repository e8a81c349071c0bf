//! Turning a host argument into the addresses to probe.

use std::net::IpAddr;

/// Which address families to probe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// IPv4 and IPv6.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

impl Family {
    fn admits(self, a: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => a.is_ipv4(),
            Family::V6 => a.is_ipv6(),
        }
    }
}

/// A host that could not be turned into addresses.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resolver failed.
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The host has addresses, but none of the requested family.
    #[error("{host} has no {family} address (it resolves to {found})")]
    NoneOfFamily {
        /// The host.
        host: String,
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// What it does resolve to.
        found: String,
    },
    /// An address literal of the other family than requested.
    #[error("{host} is not an {family} address")]
    WrongFamily {
        /// The host.
        host: String,
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
    /// Not a name at all.
    #[error("`{host}` is not a host name or address")]
    Invalid {
        /// The text.
        host: String,
    },
}

/// An address literal, with or without brackets (`[2001:db8::1]`).
pub fn literal(host: &str) -> Option<IpAddr> {
    let h = host.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    h.parse().ok()
}

/// Every address of `host` (A and AAAA) in the resolver's order, without
/// duplicates, restricted to `family`.
pub async fn resolve(host: &str, family: Family) -> Result<Vec<IpAddr>, ResolveError> {
    let family_name = if family == Family::V4 { "IPv4" } else { "IPv6" };
    if let Some(a) = literal(host) {
        return if family.admits(&a) {
            Ok(vec![a])
        } else {
            Err(ResolveError::WrongFamily {
                host: host.to_string(),
                family: family_name,
            })
        };
    }
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return Err(ResolveError::Invalid {
            host: host.to_string(),
        });
    }
    let found =
        tokio::net::lookup_host((host, 0))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_string(),
                source,
            })?;
    let mut all: Vec<IpAddr> = Vec::new();
    for sa in found {
        let ip = match sa.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if !all.contains(&ip) {
            all.push(ip);
        }
    }
    let admitted: Vec<IpAddr> = all.iter().copied().filter(|a| family.admits(a)).collect();
    if admitted.is_empty() {
        return Err(ResolveError::NoneOfFamily {
            host: host.to_string(),
            family: family_name,
            found: all
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal("::1"), Some("::1".parse().unwrap()));
        assert_eq!(literal("server.local"), None);
    }

    #[tokio::test]
    async fn families_filter_literals_and_names() {
        assert!(matches!(
            resolve("::1", Family::V4).await,
            Err(ResolveError::WrongFamily { .. })
        ));
        assert_eq!(resolve("127.0.0.1", Family::Any).await.unwrap().len(), 1);
        let local = resolve("localhost", Family::V4).await.unwrap();
        assert!(
            local.iter().all(|a| a.is_loopback() && a.is_ipv4()),
            "{local:?}"
        );
        let err = resolve("bad host", Family::Any).await.unwrap_err();
        assert_eq!(err.to_string(), "`bad host` is not a host name or address");
    }
}
