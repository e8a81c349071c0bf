//! Turning host arguments into the addresses to probe: literals (with an
//! IPv6 zone where one is needed), names through the system resolver and,
//! for `.local` names it does not know, by multicast DNS; all of them at
//! once under the run's deadline and stop signal. Only single hosts are
//! probed: broadcast, multicast and unspecified addresses are refused,
//! whether given literally or resolved from a name. Any device on a link
//! can answer a multicast DNS query, so its answers are checked like any
//! other, and a loopback address from one is refused too: no device on the
//! link has one, and it would turn the probe on this machine.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use super::Target;
use super::interfaces::{self, InterfaceAddress};
use super::mdns::{self, Unresolved};
use crate::wire::mdns_name;

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

    fn name(self) -> &'static str {
        if self == Family::V4 { "IPv4" } else { "IPv6" }
    }
}

/// Why an address is not one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotOneHost {
    /// 0.0.0.0/8 or `::`: "this host, any address".
    Unspecified,
    /// 224.0.0.0/4 or ff00::/8.
    Multicast,
    /// 255.255.255.255 or the broadcast address of a local subnet.
    Broadcast,
}

impl NotOneHost {
    fn what(self) -> &'static str {
        match self {
            NotOneHost::Unspecified => "the unspecified address",
            NotOneHost::Multicast => "a multicast address",
            NotOneHost::Broadcast => "a broadcast address",
        }
    }
}

/// How a host's addresses were found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolvedBy {
    /// The host was written as an address.
    Literal,
    /// The system resolver (`getaddrinfo`: the hosts file, DNS, whatever
    /// `/etc/nsswitch.conf` names).
    System,
    /// A multicast DNS query, for a `.local` name the system resolver did
    /// not know.
    Mdns {
        /// The interfaces answers came in on.
        interfaces: Vec<String>,
    },
}

/// A host's addresses, and how they were found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The addresses to probe.
    pub targets: Vec<Target>,
    /// How they were found.
    pub by: ResolvedBy,
}

/// The advice that ends every error about a `.local` name nobody knows.
const GIVE_ADDRESS: &str = "give its address instead (e.g. 192.0.2.10)";

/// A host that could not be turned into addresses.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resolver failed.
    #[error("cannot resolve {host}")]
    Lookup {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// A `.local` name the system resolver does not know, and no device
    /// answered a multicast DNS query for.
    #[error("cannot resolve {host}: the system resolver does not know it and no device answered a multicast DNS query for it on {}; {GIVE_ADDRESS}", .interfaces.join(", "))]
    MdnsUnanswered {
        /// The host.
        host: String,
        /// The interfaces the query went out on.
        interfaces: Vec<String>,
    },
    /// A `.local` name the system resolver does not know, on a computer
    /// with no interface to ask on by multicast DNS.
    #[error(
        "cannot resolve {host}: the system resolver does not know it and this computer has no up, multicast-capable network interface to ask on by multicast DNS; {GIVE_ADDRESS}"
    )]
    MdnsNoInterface {
        /// The host.
        host: String,
    },
    /// A `.local` name the system resolver does not know, whose multicast
    /// DNS query could not be sent.
    #[error("cannot resolve {host}: the system resolver does not know it and a multicast DNS query for it could not be sent on {} ({reason}); {GIVE_ADDRESS}", .interfaces.join(", "))]
    MdnsUnsent {
        /// The host.
        host: String,
        /// The interfaces tried.
        interfaces: Vec<String>,
        /// The operating system's error.
        reason: String,
    },
    /// The resolver gave no answer before the run's deadline.
    #[error("cannot resolve {host}: the name resolver did not answer in time")]
    TimedOut {
        /// The host.
        host: String,
    },
    /// The run was stopped before the resolver answered.
    #[error("{host} was not resolved: the run was stopped first")]
    Stopped {
        /// The host.
        host: String,
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
    /// The address (given or resolved) is not one host's.
    #[error("{host}{via} is {}, not a single host: portprobe probes one host at a time; give that host's own address or name", .kind.what())]
    NotOneHost {
        /// The host as given.
        host: String,
        /// " (resolved to ADDRESS)" when the address came from a name.
        via: String,
        /// What the address is.
        kind: NotOneHost,
    },
    /// Multicast DNS answered with a loopback address, which no device on
    /// the link has: a forged or broken answer.
    #[error(
        "{host} is not probed: multicast DNS answered with {address}, a loopback address, which no device on the link has (a forged or broken answer); give the host's address instead"
    )]
    MdnsLoopback {
        /// The host.
        host: String,
        /// The loopback address answered.
        address: IpAddr,
    },
    /// A link-local IPv6 address without the interface it belongs to.
    #[error("{host} is a link-local address: add the interface it is on, e.g. {host}%eth0")]
    NoZone {
        /// The host.
        host: String,
    },
    /// An IPv6 zone naming no interface of this machine.
    #[error(
        "{host}: this computer has no interface `{zone}` (name one of its interfaces, e.g. `ip link` lists them)"
    )]
    UnknownZone {
        /// The host.
        host: String,
        /// The zone as given.
        zone: String,
    },
    /// Not a name at all.
    #[error("`{host}` is not a host name or address")]
    Invalid {
        /// The text.
        host: String,
    },
}

/// Whether `host` is written as an address (with or without brackets or an
/// IPv6 zone) rather than a name.
pub fn is_literal(host: &str) -> bool {
    let h = unbracket(host);
    let ip = h.split_once('%').map_or(h, |(ip, _)| ip);
    ip.parse::<IpAddr>().is_ok()
}

fn unbracket(host: &str) -> &str {
    let h = host.trim();
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
}

/// An address literal, with or without brackets (`[2001:db8::1]`), with an
/// IPv6 zone (`fe80::1%eth0`, `fe80::1%2`) kept as the scope id. `None` when
/// `host` is not written as an address.
pub fn literal(host: &str) -> Option<Result<Target, ResolveError>> {
    let h = unbracket(host);
    let Some((ip, zone)) = h.split_once('%') else {
        return h.parse().ok().map(|ip| Ok(Target::new(ip)));
    };
    let ip: Ipv6Addr = ip.parse().ok()?;
    let scope_id = match zone.parse::<u32>() {
        Ok(n) => n,
        Err(_) => match nix::net::if_::if_nametoindex(zone) {
            Ok(n) => n,
            Err(_) => {
                return Some(Err(ResolveError::UnknownZone {
                    host: host.to_string(),
                    zone: zone.to_string(),
                }));
            }
        },
    };
    Some(Ok(Target {
        ip: IpAddr::V6(ip),
        scope_id,
    }))
}

/// Whether `ip` is one host's address; `interfaces` tells the local
/// subnets, whose broadcast addresses are refused too.
pub fn one_host(ip: IpAddr, interfaces: &[InterfaceAddress]) -> Result<(), NotOneHost> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.octets()[0] == 0 {
                Err(NotOneHost::Unspecified)
            } else if v4.is_multicast() {
                Err(NotOneHost::Multicast)
            } else if v4 == Ipv4Addr::BROADCAST
                || interfaces.iter().any(|i| i.broadcast() == Some(v4))
            {
                Err(NotOneHost::Broadcast)
            } else {
                Ok(())
            }
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => one_host(IpAddr::V4(v4), interfaces),
            None if v6.is_unspecified() => Err(NotOneHost::Unspecified),
            None if v6.is_multicast() => Err(NotOneHost::Multicast),
            None => Ok(()),
        },
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// Whether `host` may be a host name: no spaces, control characters or
/// punctuation other than `-`, `.` and `_`, at most 253 characters.
fn plausible_name(host: &str) -> bool {
    !host.is_empty()
        && host.chars().count() <= 253
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Every address of `host` (A and AAAA) in the resolver's order, without
/// duplicates, restricted to `family`, each one host's address, and how
/// they were found. A `.local` name the system resolver fails on, or finds
/// no address for, is asked for by multicast DNS on every up,
/// multicast-capable interface.
pub async fn resolve(
    host: &str,
    family: Family,
    interfaces: &[InterfaceAddress],
) -> Result<Resolved, ResolveError> {
    if let Some(resolved) = resolve_literal(host, family, interfaces) {
        return resolved;
    }
    if !plausible_name(host) {
        return Err(ResolveError::Invalid {
            host: host.to_string(),
        });
    }
    let system = tokio::net::lookup_host((host, 0)).await.map(system_targets);
    let (all, by) = match (system, mdns_name::name(host)) {
        (Ok(all), _) if !all.is_empty() => (all, ResolvedBy::System),
        (_, Some(name)) => {
            let (all, by) = mdns_lookup(host, &name).await?;
            from_the_link(host, &all)?;
            (all, by)
        }
        (Ok(all), None) => (all, ResolvedBy::System),
        (Err(source), None) => {
            return Err(ResolveError::Lookup {
                host: host.to_string(),
                source,
            });
        }
    };
    let admitted: Vec<Target> = all
        .iter()
        .copied()
        .filter(|t| family.admits(&t.ip))
        .collect();
    if admitted.is_empty() {
        return Err(ResolveError::NoneOfFamily {
            host: host.to_string(),
            family: family.name(),
            found: all
                .iter()
                .map(|t| t.ip.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(Resolved {
        targets: checked(host, admitted, true, interfaces)?,
        by,
    })
}

/// The system resolver's addresses as targets, IPv4-mapped ones as IPv4,
/// without duplicates.
fn system_targets(found: impl Iterator<Item = std::net::SocketAddr>) -> Vec<Target> {
    let mut all: Vec<Target> = Vec::new();
    for sa in found {
        let target = match sa {
            std::net::SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
                Some(v4) => Target::new(IpAddr::V4(v4)),
                None => Target {
                    ip: IpAddr::V6(*v6.ip()),
                    scope_id: v6.scope_id(),
                },
            },
            std::net::SocketAddr::V4(v4) => Target::new(IpAddr::V4(*v4.ip())),
        };
        if !all.iter().any(|t| t.ip == target.ip) {
            all.push(target);
        }
    }
    all
}

/// `host`'s addresses by multicast DNS, or the error that says where
/// nobody answered.
async fn mdns_lookup(
    host: &str,
    name: &hickory_proto::rr::Name,
) -> Result<(Vec<Target>, ResolvedBy), ResolveError> {
    let host = host.to_string();
    match mdns::resolve(name, &interfaces::multicast()).await {
        Ok(found) => Ok((
            found.targets,
            ResolvedBy::Mdns {
                interfaces: found.interfaces,
            },
        )),
        Err(Unresolved::NoInterface) => Err(ResolveError::MdnsNoInterface { host }),
        Err(Unresolved::Unanswered { interfaces }) => {
            Err(ResolveError::MdnsUnanswered { host, interfaces })
        }
        Err(Unresolved::Unsent { interfaces, error }) => Err(ResolveError::MdnsUnsent {
            host,
            interfaces,
            reason: error.to_string(),
        }),
    }
}

/// Refuses a host whose multicast DNS answers give a loopback address.
fn from_the_link(host: &str, targets: &[Target]) -> Result<(), ResolveError> {
    match targets.iter().find(|t| t.ip.to_canonical().is_loopback()) {
        Some(t) => Err(ResolveError::MdnsLoopback {
            host: host.to_string(),
            address: t.ip,
        }),
        None => Ok(()),
    }
}

/// The address `host` is written as, checked; `None` for a name.
fn resolve_literal(
    host: &str,
    family: Family,
    interfaces: &[InterfaceAddress],
) -> Option<Result<Resolved, ResolveError>> {
    let target = match literal(host)? {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    if !family.admits(&target.ip) {
        return Some(Err(ResolveError::WrongFamily {
            host: host.to_string(),
            family: family.name(),
        }));
    }
    Some(
        checked(host, vec![target], false, interfaces).map(|targets| Resolved {
            targets,
            by: ResolvedBy::Literal,
        }),
    )
}

/// Refuses the whole host when any of its addresses is not one host's, or
/// is link-local without a zone.
fn checked(
    host: &str,
    targets: Vec<Target>,
    resolved: bool,
    interfaces: &[InterfaceAddress],
) -> Result<Vec<Target>, ResolveError> {
    for t in &targets {
        if let Err(kind) = one_host(t.ip, interfaces) {
            return Err(ResolveError::NotOneHost {
                host: host.to_string(),
                via: if resolved {
                    format!(" (resolved to {})", t.ip)
                } else {
                    String::new()
                },
                kind,
            });
        }
        if is_link_local(t.ip) && t.scope_id == 0 {
            return Err(ResolveError::NoZone {
                host: host.to_string(),
            });
        }
    }
    Ok(targets)
}

/// Resolves every host at once. Literals need no resolver and are never
/// late; a name not resolved by `deadline` (by the system resolver, or by
/// multicast DNS after it), or when `stop` completes, gets an error of its
/// own, and the others keep their addresses.
pub async fn resolve_all(
    hosts: &[String],
    family: Family,
    deadline: Option<Instant>,
    stop: impl Future<Output = ()>,
) -> Vec<Result<Resolved, ResolveError>> {
    let interfaces = interfaces::addresses();
    let interfaces = &interfaces;
    let mut results: Vec<Option<Result<Resolved, ResolveError>>> = hosts
        .iter()
        .map(|host| resolve_literal(host, family, interfaces))
        .collect();
    let mut pending: FuturesUnordered<_> = hosts
        .iter()
        .enumerate()
        .filter(|(i, _)| results[*i].is_none())
        .map(|(i, host)| async move { (i, resolve(host, family, interfaces).await) })
        .collect();
    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, timeout);
    let mut stopped = false;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        tokio::select! {
            biased;
            () = &mut stop => { stopped = true; break; }
            () = &mut timeout => break,
            next = pending.next() => match next {
                Some((i, r)) => results[i] = Some(r),
                None => break,
            },
        }
    }
    results
        .into_iter()
        .zip(hosts)
        .map(|(r, host)| {
            r.unwrap_or_else(|| {
                let host = host.clone();
                Err(if stopped {
                    ResolveError::Stopped { host }
                } else {
                    ResolveError::TimedOut { host }
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(host: &str) -> Target {
        literal(host).unwrap().unwrap()
    }

    #[test]
    fn literals() {
        assert_eq!(lit("127.0.0.1"), Target::new("127.0.0.1".parse().unwrap()));
        assert_eq!(lit("[::1]"), Target::new("::1".parse().unwrap()));
        assert_eq!(lit("::1").ip, "::1".parse::<IpAddr>().unwrap());
        assert!(literal("server.local").is_none());
        assert!(is_literal("fe80::1%eth7") && !is_literal("server.local"));
    }

    #[test]
    fn zones_become_scope_ids() {
        let numeric = lit("fe80::1%7");
        assert_eq!(numeric.scope_id, 7);
        let lo = lit("[fe80::1%lo]");
        assert_eq!(lo.scope_id, nix::net::if_::if_nametoindex("lo").unwrap());
        assert!(matches!(
            literal("fe80::1%no-such-if0"),
            Some(Err(ResolveError::UnknownZone { .. }))
        ));
    }

    #[test]
    fn only_single_hosts_pass() {
        let lo = [InterfaceAddress {
            interface: "lo".into(),
            address: "127.0.0.1".parse().unwrap(),
            prefix: 8,
        }];
        let kind = |s: &str| one_host(s.parse().unwrap(), &lo).err();
        assert_eq!(kind("255.255.255.255"), Some(NotOneHost::Broadcast));
        assert_eq!(kind("127.255.255.255"), Some(NotOneHost::Broadcast));
        assert_eq!(kind("224.0.0.251"), Some(NotOneHost::Multicast));
        assert_eq!(kind("239.255.255.250"), Some(NotOneHost::Multicast));
        assert_eq!(kind("ff02::fb"), Some(NotOneHost::Multicast));
        assert_eq!(kind("0.0.0.0"), Some(NotOneHost::Unspecified));
        assert_eq!(kind("::"), Some(NotOneHost::Unspecified));
        assert_eq!(kind("::ffff:224.0.0.1"), Some(NotOneHost::Multicast));
        assert_eq!(kind("127.0.0.1"), None);
        assert_eq!(kind("198.18.1.255"), None, "not a local subnet's broadcast");
        assert_eq!(kind("2001:db8::1"), None);
    }

    #[test]
    fn a_loopback_address_from_the_link_is_refused() {
        let t = |s: &str, scope_id| Target {
            ip: s.parse().unwrap(),
            scope_id,
        };
        for forged in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            let err =
                from_the_link("printer.local", &[t("198.18.1.2", 0), t(forged, 0)]).unwrap_err();
            assert!(
                matches!(&err, ResolveError::MdnsLoopback { address, .. } if address.to_string() == forged),
                "{forged}: {err}"
            );
            assert!(err.to_string().contains("a loopback address"), "{err}");
        }
        assert!(from_the_link("printer.local", &[t("198.18.1.2", 0), t("fe80::2", 7)]).is_ok());
    }

    #[tokio::test]
    async fn families_filter_literals_and_names() {
        let none = [];
        assert!(matches!(
            resolve("::1", Family::V4, &none).await,
            Err(ResolveError::WrongFamily { .. })
        ));
        let literal = resolve("127.0.0.1", Family::Any, &none).await.unwrap();
        assert_eq!(literal.targets.len(), 1);
        assert_eq!(literal.by, ResolvedBy::Literal);
        let local = resolve("localhost", Family::V4, &none).await.unwrap();
        assert!(
            local
                .targets
                .iter()
                .all(|a| a.ip.is_loopback() && a.ip.is_ipv4()),
            "{local:?}"
        );
        assert_eq!(local.by, ResolvedBy::System);
        let err = resolve("bad host", Family::Any, &none).await.unwrap_err();
        assert_eq!(err.to_string(), "`bad host` is not a host name or address");
        let escape = resolve("x\u{1b}[2J", Family::Any, &none).await.unwrap_err();
        assert!(matches!(escape, ResolveError::Invalid { .. }));
        let err = resolve("fe80::1", Family::Any, &none).await.unwrap_err();
        assert!(matches!(err, ResolveError::NoZone { .. }), "{err}");
        let err = resolve("224.0.0.251", Family::Any, &none)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "224.0.0.251 is a multicast address, not a single host: portprobe probes one host at a time; give that host's own address or name"
        );
    }

    #[test]
    fn a_local_name_nobody_knows_is_explained_with_the_address_advice() {
        let unanswered = ResolveError::MdnsUnanswered {
            host: "server.local".into(),
            interfaces: vec!["eth0".into(), "eth1".into()],
        };
        assert_eq!(
            unanswered.to_string(),
            "cannot resolve server.local: the system resolver does not know it and no device \
             answered a multicast DNS query for it on eth0, eth1; give its address instead \
             (e.g. 192.0.2.10)"
        );
        let unsent = ResolveError::MdnsUnsent {
            host: "server.local".into(),
            interfaces: vec!["eth0".into()],
            reason: "Network is unreachable (os error 101)".into(),
        };
        assert!(
            unsent
                .to_string()
                .ends_with("could not be sent on eth0 (Network is unreachable (os error 101)); give its address instead (e.g. 192.0.2.10)"),
            "{unsent}"
        );
        let nowhere = ResolveError::MdnsNoInterface {
            host: "server.local".into(),
        };
        assert!(
            nowhere
                .to_string()
                .contains("no up, multicast-capable network interface")
        );
    }

    #[tokio::test]
    async fn a_deadline_or_a_stop_ends_resolution_for_names_still_waiting() {
        let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let out = resolve_all(
            &hosts,
            Family::Any,
            Some(Instant::now()),
            std::future::pending(),
        )
        .await;
        assert!(out[0].is_ok(), "a literal is never late: {out:?}");
        assert!(
            matches!(&out[1], Err(ResolveError::TimedOut { host }) if host == "localhost"),
            "{out:?}"
        );
        let stopped = resolve_all(&hosts, Family::Any, None, async {}).await;
        assert!(stopped[0].is_ok(), "{stopped:?}");
        assert!(
            matches!(&stopped[1], Err(ResolveError::Stopped { .. })),
            "{stopped:?}"
        );
    }

    #[tokio::test]
    async fn every_host_gets_its_own_answer() {
        let hosts = vec![
            "127.0.0.1".to_string(),
            "255.255.255.255".to_string(),
            "localhost".to_string(),
        ];
        let out = resolve_all(&hosts, Family::V4, None, std::future::pending()).await;
        assert!(out[0].is_ok());
        assert!(matches!(out[1], Err(ResolveError::NotOneHost { .. })));
        assert!(out[2].is_ok());
    }
}
