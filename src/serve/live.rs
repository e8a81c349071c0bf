//! What a request reads of the exporter's configuration, and how it is
//! put together: the flags laid over the file (a flag given wins over the
//! file's value, the file's over the default), and a request made
//! concrete under it: a module's products, ports and options, or the one
//! TCP port of blackbox_exporter's `target=HOST:PORT`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::allow::AllowList;
use super::config::{File, Module};
use super::labels::Labels;
use super::probe::Options;
use super::query::ProbeQuery;
use crate::port::{PortItem, PortRange, Transport};
use crate::report::prometheus::Success;

/// `--listen` when neither the flag nor the file gives it.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9199);
/// `--concurrency` when neither the flag nor the file gives it.
pub const DEFAULT_CONCURRENCY: u32 = 1024;
/// `--max-time` when neither the flag nor the file gives it.
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(30);

/// The values given on the command line, which win over the file's.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--allow` or `--allow-any`.
    pub allow: Option<AllowList>,
    /// `--concurrency`.
    pub concurrency: Option<u32>,
    /// `--max-time`.
    pub max_time: Option<Duration>,
}

/// What a request reads of the configuration.
#[derive(Clone, Debug)]
pub struct Live {
    /// The targets that may be probed.
    pub allow: AllowList,
    /// The deadline of a probe without Prometheus' timeout header, and
    /// the most any probe may take.
    pub max_time: Duration,
    /// The constant labels of every series of a probe.
    pub labels: Labels,
    /// The modules, by name.
    pub modules: BTreeMap<String, Module>,
}

/// A request made concrete: the query with what its module or its
/// `HOST:PORT` asks for, how it is probed, and what its success means.
#[derive(Debug)]
pub struct Ask {
    /// The query, with the module's products and ports.
    pub query: ProbeQuery,
    /// How it is probed.
    pub options: Options,
    /// What `probe_success` says of it.
    pub success: Success,
}

impl Live {
    /// What `q` asks for under this configuration; the error is a
    /// request's mistake (HTTP 400).
    pub fn ask(&self, mut q: ProbeQuery) -> Result<Ask, String> {
        if let Some(port) = q.target_port {
            let range = PortRange::single(port).map_err(|e| e.to_string())?;
            q.ports = vec![PortItem {
                transport: Transport::Tcp,
                range,
            }];
            let options = Options {
                locate: q.locate,
                ..Options::default()
            };
            return Ok(Ask {
                query: q,
                options,
                success: Success::Open,
            });
        }
        let mut options = Options::default();
        if let Some(name) = &q.module {
            let Some(m) = self.modules.get(name) else {
                let known: Vec<&str> = self.modules.keys().map(String::as_str).collect();
                return Err(if known.is_empty() {
                    format!(
                        "no module {name}: this exporter has none (modules are [modules.NAME] tables of serve --config FILE; tcp_connect takes target=HOST:PORT)"
                    )
                } else {
                    format!(
                        "no module {name}: give one of {}, or tcp_connect with target=HOST:PORT",
                        known.join(", ")
                    )
                });
            };
            q.products.clone_from(&m.products);
            q.ports.clone_from(&m.ports);
            options = m.options.clone();
        }
        options.locate = q.locate.or(options.locate);
        Ok(Ask {
            query: q,
            options,
            success: Success::NotBlocked,
        })
    }
}

/// The whole configuration at start.
#[derive(Debug)]
pub struct Settled {
    /// The address to serve on.
    pub listen: SocketAddr,
    /// Probes in flight at once, over every request.
    pub concurrency: u32,
    /// What requests read.
    pub live: Live,
}

/// The flags laid over the file (when there is one); the error is the
/// refusal of a configuration without an allow-list.
pub fn settle(file: Option<&File>, over: &Overrides) -> Result<Settled, String> {
    let allow = over
        .allow
        .clone()
        .or_else(|| file.and_then(|f| f.allow.clone()))
        .unwrap_or_default();
    if allow.is_empty() {
        return Err(
            "portprobe serve needs --allow CIDR|HOST (or allow = [...] in --config FILE), the targets it may probe (or --allow-any): an open exporter is a scanning proxy for whoever reaches it"
                .to_string(),
        );
    }
    Ok(Settled {
        listen: over
            .listen
            .or(file.and_then(|f| f.listen))
            .unwrap_or(DEFAULT_LISTEN),
        concurrency: over
            .concurrency
            .or(file.and_then(|f| f.concurrency))
            .unwrap_or(DEFAULT_CONCURRENCY),
        live: Live {
            allow,
            max_time: over
                .max_time
                .or(file.and_then(|f| f.max_time))
                .unwrap_or(DEFAULT_MAX_TIME),
            labels: file.map(|f| f.labels.clone()).unwrap_or_default(),
            modules: file.map(|f| f.modules.clone()).unwrap_or_default(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::query;

    fn live(modules: BTreeMap<String, Module>) -> Live {
        let mut allow = AllowList::default();
        allow.add("127.0.0.1").unwrap();
        Live {
            allow,
            max_time: DEFAULT_MAX_TIME,
            labels: Labels::default(),
            modules,
        }
    }

    #[test]
    fn a_host_and_port_is_one_tcp_port_that_succeeds_when_open() {
        let a = live(BTreeMap::new())
            .ask(query::parse("target=127.0.0.1%3A22").unwrap())
            .unwrap();
        assert_eq!(a.success, Success::Open);
        let ports: Vec<String> = a.query.ports.iter().map(ToString::to_string).collect();
        assert_eq!(ports, ["22/tcp"]);
        assert!(a.query.products.is_empty());
        assert_eq!(a.query.target, "127.0.0.1");
    }

    #[test]
    fn a_module_gives_its_ports_and_options_and_an_unknown_one_is_named() {
        let mut modules = BTreeMap::new();
        modules.insert(
            "web".to_string(),
            Module {
                products: Vec::new(),
                ports: crate::port::parse_port_list("80,443").unwrap(),
                options: Options {
                    locate: Some(false),
                    retries: Some(3),
                    ..Options::default()
                },
            },
        );
        let l = live(modules);
        let a = l.ask(query::parse("target=h&module=web").unwrap()).unwrap();
        assert_eq!(a.query.ports.len(), 2);
        assert_eq!(a.options.locate, Some(false));
        assert_eq!(a.options.retries, Some(3));
        assert_eq!(a.success, Success::NotBlocked);
        // The query's locate= wins over the module's.
        let a = l
            .ask(query::parse("target=h&module=web&locate=1").unwrap())
            .unwrap();
        assert_eq!(a.options.locate, Some(true));
        let e = l
            .ask(query::parse("target=h&module=wbe").unwrap())
            .unwrap_err();
        assert!(e.contains("no module wbe: give one of web"), "{e}");
        let e = live(BTreeMap::new())
            .ask(query::parse("target=h&module=web").unwrap())
            .unwrap_err();
        assert!(e.contains("this exporter has none"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_the_defaults() {
        let mut file_allow = AllowList::default();
        file_allow.add("192.0.2.0/24").unwrap();
        let file = File {
            path: "f.toml".into(),
            listen: Some("127.0.0.1:9300".parse().unwrap()),
            allow: Some(file_allow.clone()),
            concurrency: Some(10),
            max_time: Some(Duration::from_secs(5)),
            labels: Labels::default(),
            modules: BTreeMap::new(),
        };
        let s = settle(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(s.listen.port(), 9300);
        assert_eq!(s.concurrency, 10);
        assert_eq!(s.live.max_time, Duration::from_secs(5));
        assert_eq!(s.live.allow, file_allow);
        let over = Overrides {
            listen: Some("127.0.0.1:9400".parse().unwrap()),
            allow: Some(AllowList::any()),
            concurrency: Some(20),
            max_time: Some(Duration::from_secs(7)),
        };
        let s = settle(Some(&file), &over).unwrap();
        assert_eq!(s.listen.port(), 9400);
        assert_eq!(s.concurrency, 20);
        assert_eq!(s.live.max_time, Duration::from_secs(7));
        assert_eq!(s.live.allow, AllowList::any());
        let s = settle(
            None,
            &Overrides {
                allow: Some(AllowList::any()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(
            (s.listen, s.concurrency, s.live.max_time),
            (DEFAULT_LISTEN, DEFAULT_CONCURRENCY, DEFAULT_MAX_TIME)
        );
        assert!(
            settle(None, &Overrides::default())
                .unwrap_err()
                .contains("needs --allow")
        );
    }
}
