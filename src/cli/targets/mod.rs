//! The hosts of a run: from the command line and `--targets FILE` (or
//! `-`), read with bounds on size and time, duplicates merged, literal
//! addresses checked before any packet is sent.

mod parse;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::source::{self, Source};

use crate::engine::{self, interfaces};

/// The hosts from the command line, then those of `file`, each once, in
/// the order first given. Reading `file` ends within `max_time` of
/// `begun`, the run's bound.
pub fn hosts(
    given: &[String],
    file: Option<&Path>,
    begun: Instant,
    max_time: Duration,
) -> Result<Vec<String>> {
    let mut hosts: Vec<String> = given.to_vec();
    if let Some(path) = file {
        hosts.extend(read_targets(path, begun, max_time)?);
    }
    if hosts.is_empty() {
        bail!(
            "no host given: name one or more hosts, e.g. `portprobe server.local --product \"Mac OS X Server\"`"
        );
    }
    let mut seen = HashSet::new();
    hosts.retain(|h| seen.insert(identity(h)));
    check_literals(&hosts)?;
    Ok(hosts)
}

/// What makes two host arguments the same host: the address for a literal
/// (`127.0.0.1` and `127.000.0.1` are one), the name without case or a
/// final dot for a name.
fn identity(host: &str) -> String {
    match engine::literal(host) {
        Some(Ok(t)) => format!("{}%{}", t.ip, t.scope_id),
        _ => host.trim_end_matches('.').to_lowercase(),
    }
}

/// The largest `--targets` file read: a million bytes is some fifty
/// thousand host names.
pub const MAX_TARGETS_FILE: u64 = 1 << 20;

/// One host per line; `#` starts a comment.
fn read_targets(path: &Path, begun: Instant, max_time: Duration) -> Result<Vec<String>> {
    let name = if path == Path::new("-") {
        "standard input (--targets -)".to_string()
    } else {
        format!("targets file {}", path.display())
    };
    let bytes = source::read(
        path,
        &Source {
            name: name.clone(),
            max_bytes: MAX_TARGETS_FILE,
            give: "a file with one host per line, or `--targets -` to read them from standard input",
            too_large: "split it into several runs",
            begun,
            max_time,
            time_bound: "--max-time",
            too_slow: "close it once the hosts are written, or give a regular file",
        },
    )?;
    match parse::hosts(&bytes) {
        Ok(hosts) => Ok(hosts),
        Err(parse::NotText::NotUtf8) => {
            bail!("{name} is not text (UTF-8): give one host name or address per line")
        }
        Err(parse::NotText::Nul) => {
            bail!("{name} is not text (it holds NUL bytes): give one host name or address per line")
        }
    }
}

/// Refuses, before anything is sent, a lone host given as an address that
/// is not one host's (broadcast, multicast, unspecified) or as a
/// link-local address without its interface. In a list, such a host is
/// that target's error instead (the engine refuses it, and sends it
/// nothing) and the others are probed. The same link-local address on two
/// interfaces refuses the run: results are kept per address, so the two
/// could not be told apart.
fn check_literals(hosts: &[String]) -> Result<()> {
    if let [host] = hosts
        && let Some(literal) = engine::literal(host)
    {
        let target = literal?;
        if let Err(kind) = engine::one_host(target.ip, &interfaces::addresses()) {
            return Err(engine::ResolveError::NotOneHost {
                host: host.clone(),
                via: String::new(),
                kind,
            }
            .into());
        }
        if is_link_local(target.ip) && target.scope_id == 0 {
            return Err(engine::ResolveError::NoZone { host: host.clone() }.into());
        }
    }
    let mut link_local = std::collections::HashMap::new();
    for host in hosts {
        let Some(Ok(target)) = engine::literal(host) else {
            continue;
        };
        if is_link_local(target.ip)
            && target.scope_id != 0
            && let Some(other) = link_local.insert(target.ip, host.clone())
        {
            bail!(
                "{other} and {host} are the same link-local address on two interfaces: probe them in separate runs"
            );
        }
    }
    Ok(())
}

fn is_link_local(ip: std::net::IpAddr) -> bool {
    matches!(ip, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The hosts of a run given `list` and `file`, with a minute to read.
    fn hosts(list: &[String], file: Option<&Path>) -> Result<Vec<String>> {
        super::hosts(list, file, Instant::now(), Duration::from_secs(60))
    }

    #[test]
    fn duplicates_merge_in_first_given_order() {
        let hosts = hosts(
            &strings(&[
                "Server.Local",
                "127.0.0.1",
                "server.local.",
                "::1",
                "[::1]",
                "0:0::1",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(hosts, strings(&["Server.Local", "127.0.0.1", "::1"]));
    }

    #[test]
    fn a_lone_literal_that_is_not_one_host_is_refused_and_one_in_a_list_kept() {
        for (bad, says) in [
            (
                "255.255.255.255",
                "is a broadcast address, not a single host",
            ),
            ("224.0.0.251", "is a multicast address, not a single host"),
            ("0.0.0.0", "is the unspecified address, not a single host"),
            ("::", "is the unspecified address, not a single host"),
            ("ff02::fb", "is a multicast address, not a single host"),
            ("fe80::1", "is a link-local address: add the interface"),
        ] {
            let e = hosts(&strings(&[bad]), None).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("{bad} {says}")),
                "{bad}: {e}"
            );
            // In a list it is left for the engine to make that target's
            // error.
            let list = strings(&["127.0.0.1", bad]);
            assert_eq!(hosts(&list, None).unwrap(), list);
        }
        let e = hosts(&strings(&["fe80::1%lo", "fe80::1%4000"]), None).unwrap_err();
        assert!(e.to_string().contains("two interfaces"), "{e}");
        // Without its zone a link-local address is no duplicate of one with it.
        let list = strings(&["fe80::1%lo", "fe80::1"]);
        assert_eq!(hosts(&list, None).unwrap(), list);
    }

    #[test]
    fn a_targets_file_is_bounded_and_must_be_text() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; (MAX_TARGETS_FILE + 1) as usize]).unwrap();
        let e = hosts(&[], Some(&big)).unwrap_err();
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
        let nul = dir.path().join("nul");
        std::fs::write(&nul, b"127.0.0.1\n\0\0\n").unwrap();
        let e = hosts(&[], Some(&nul)).unwrap_err();
        assert!(e.to_string().contains("not text"), "{e}");
        let zero = hosts(&[], Some(Path::new("/dev/zero"))).unwrap_err();
        assert!(zero.to_string().contains("larger than"), "{zero}");
        let ok = dir.path().join("ok");
        std::fs::write(
            &ok,
            "# lab\n127.0.0.1  # loopback\n\n127.0.0.1\nlocalhost\n",
        )
        .unwrap();
        assert_eq!(
            hosts(&[], Some(&ok)).unwrap(),
            strings(&["127.0.0.1", "localhost"])
        );
    }

    /// One host written in one of the ways that mean the same host.
    fn spelling() -> impl proptest::strategy::Strategy<Value = (usize, String)> {
        use proptest::prelude::*;
        let names = ["server.local", "mac.example", "a"];
        let literals = [
            ["127.0.0.1", "127.0.0.1", "[127.0.0.1]"],
            ["::1", "[::1]", "0:0::1"],
            ["2001:db8::1", "[2001:DB8::1]", "2001:db8:0::1"],
        ];
        prop_oneof![
            (0..names.len(), any::<u8>(), any::<bool>()).prop_map(move |(i, case, dot)| {
                // Same name, any case, with or without a final dot.
                let name: String = names[i]
                    .chars()
                    .enumerate()
                    .map(|(n, c)| {
                        if case >> (n % 8) & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                (i, if dot { format!("{name}.") } else { name })
            }),
            (0..literals.len(), 0..3usize)
                .prop_map(move |(i, form)| (names.len() + i, literals[i][form].to_string())),
        ]
    }

    proptest::proptest! {
        /// Each host is kept once, spelled as first given, in the order
        /// first given, whatever mix of spellings of the same hosts arrives.
        #[test]
        fn every_host_once_as_first_given(list in proptest::collection::vec(spelling(), 1..30)) {
            let given: Vec<String> = list.iter().map(|(_, s)| s.clone()).collect();
            let mut expected: Vec<String> = Vec::new();
            let mut seen = Vec::new();
            for (which, spelled) in &list {
                if !seen.contains(which) {
                    seen.push(*which);
                    expected.push(spelled.clone());
                }
            }
            proptest::prop_assert_eq!(hosts(&given, None).unwrap(), expected);
        }
    }
}
