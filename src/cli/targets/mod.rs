//! The hosts of a run: from the command line and `--targets FILE` (or
//! `-`), read with bounds on size and time, duplicates merged, literal
//! addresses checked before any packet is sent.

mod parse;
mod source;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

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

/// One host per line; `#` starts a comment.
fn read_targets(path: &Path, begun: Instant, max_time: Duration) -> Result<Vec<String>> {
    let bytes = source::read(path, begun, max_time)?;
    let name = if path == Path::new("-") {
        "standard input (--targets -)".to_string()
    } else {
        format!("targets file {}", path.display())
    };
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

/// Refuses, before anything is sent, addresses given literally that are
/// not one host's, and link-local addresses without their interface.
fn check_literals(hosts: &[String]) -> Result<()> {
    let local = interfaces::addresses();
    let mut link_local = std::collections::HashMap::new();
    for host in hosts {
        let target = match engine::literal(host) {
            None => continue,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(t)) => t,
        };
        if let Err(kind) = engine::one_host(target.ip, &local) {
            return Err(engine::ResolveError::NotOneHost {
                host: host.clone(),
                via: String::new(),
                kind,
            }
            .into());
        }
        if let std::net::IpAddr::V6(v6) = target.ip
            && v6.is_unicast_link_local()
        {
            if target.scope_id == 0 {
                return Err(engine::ResolveError::NoZone { host: host.clone() }.into());
            }
            if let Some(other) = link_local.insert(target.ip, host.clone()) {
                bail!(
                    "{other} and {host} are the same link-local address on two interfaces: probe them in separate runs"
                );
            }
        }
    }
    Ok(())
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
    fn literals_that_are_not_one_host_are_refused() {
        for bad in [
            "255.255.255.255",
            "224.0.0.251",
            "0.0.0.0",
            "::",
            "ff02::fb",
            "fe80::1",
        ] {
            let e = hosts(&strings(&["127.0.0.1", bad]), None).unwrap_err();
            assert!(e.to_string().contains(bad), "{bad}: {e}");
        }
        let e = hosts(&strings(&["fe80::1%lo", "fe80::1%4000"]), None).unwrap_err();
        assert!(e.to_string().contains("two interfaces"), "{e}");
    }

    #[test]
    fn a_targets_file_is_bounded_and_must_be_text() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; (source::MAX_TARGETS_FILE + 1) as usize]).unwrap();
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
}
