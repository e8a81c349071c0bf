//! `portprobe serve --config FILE`: the exporter's TOML file read and
//! checked whole, so that a file is taken in full or not at all (at start,
//! on SIGHUP, by `--check-config`). Top-level `listen`, `allow`,
//! `concurrency` and `max_time` take what the flags of the same names
//! take, within the same bounds; `[labels]` are constant labels for every
//! series of a probe; `[modules.NAME]` name what `/probe?module=NAME`
//! probes and how. Unknown keys are refused, every error names the file,
//! its line and column, and what would be right. Paths in the file (a
//! responder's secret) are read relative to the file's directory.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::allow::AllowList;
use super::labels::Labels;
use super::probe::Options;
use super::query::{MAX_MODULE_NAME, TCP_CONNECT};
use crate::catalog::Catalog;
use crate::clean::clean;
use crate::engine::Family;
use crate::port::{PortItem, merge, parse_port_list};

/// The largest configuration file read.
pub const MAX_FILE: u64 = 1 << 20;
/// The most modules in one file.
pub const MAX_MODULES: usize = 256;
/// The most products one module names.
const MAX_PRODUCTS: usize = 64;
/// The most retries a module may ask for, as `--retries` allows.
const MAX_RETRIES: i64 = 20;
/// The bounds of `concurrency`, as `--concurrency`'s.
const CONCURRENCY: std::ops::RangeInclusive<i64> = 1..=16384;

/// The file as TOML has it, every value with where it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<Spanned<String>>,
    allow: Option<Vec<Spanned<String>>>,
    concurrency: Option<Spanned<i64>>,
    max_time: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    modules: BTreeMap<Spanned<String>, RawModule>,
}

/// One `[modules.NAME]` table as TOML has it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    #[serde(default)]
    products: Vec<Spanned<String>>,
    ports: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
    locate: Option<bool>,
    family: Option<RawFamily>,
    responder_secret_file: Option<Spanned<String>>,
}

/// `family = "any" | "ipv4" | "ipv6"`.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawFamily {
    Any,
    Ipv4,
    Ipv6,
}

/// A module: what `/probe?module=NAME` probes, and how.
#[derive(Clone, Debug)]
pub struct Module {
    /// The products, by the catalog's names.
    pub products: Vec<String>,
    /// The ports, merged.
    pub ports: Vec<PortItem>,
    /// How they are probed.
    pub options: Options,
}

/// A configuration file read and checked.
#[derive(Clone, Debug)]
pub struct File {
    /// Where it was read from.
    pub path: PathBuf,
    /// `listen`.
    pub listen: Option<SocketAddr>,
    /// `allow`.
    pub allow: Option<AllowList>,
    /// `concurrency`.
    pub concurrency: Option<u32>,
    /// `max_time`.
    pub max_time: Option<Duration>,
    /// `[labels]`.
    pub labels: Labels,
    /// `[modules.NAME]`, by name.
    pub modules: BTreeMap<String, Module>,
}

/// Why a file was not taken: where, and what would be right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The file.
    pub path: PathBuf,
    /// Line and column (from 1) of what is wrong, when it is in the text.
    pub at: Option<(usize, usize)>,
    /// What is wrong and what would be right, in one line.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = clean(&self.path.to_string_lossy()).into_owned();
        match self.at {
            Some((line, column)) => write!(f, "{path}:{line}:{column}: {}", self.message),
            None => write!(f, "{path}: {}", self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Reads and checks the file at `path`, its products looked up in
/// `catalog`.
pub fn load(path: &Path, catalog: &Catalog) -> Result<File, Error> {
    let text = read(path).map_err(|message| Error {
        path: path.to_path_buf(),
        at: None,
        message,
    })?;
    parse(&text, path, catalog)
}

/// The text of the file: a regular file of at most [`MAX_FILE`] bytes, in
/// UTF-8.
fn read(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file: give a TOML file".to_string());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!(
            "is larger than {MAX_FILE} bytes: a configuration is far shorter"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "is not UTF-8 (byte {}): TOML files are UTF-8",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Line and column (from 1, in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Checks the text of a file read from `path`.
pub fn parse(text: &str, path: &Path, catalog: &Catalog) -> Result<File, Error> {
    let fail = |span: Option<Range<usize>>, message: String| Error {
        path: path.to_path_buf(),
        at: span.map(|s| line_column(text, s.start)),
        message: clean(&message).into_owned(),
    };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', " ");
        fail(e.span(), message)
    })?;
    let listen = raw
        .listen
        .map(|l| {
            l.get_ref().parse::<SocketAddr>().map_err(|_| {
                fail(
                    Some(l.span()),
                    "listen must be an address and a port (e.g. listen = \"127.0.0.1:9199\" or \"[::1]:9199\")"
                        .to_string(),
                )
            })
        })
        .transpose()?;
    let allow = match raw.allow {
        None => None,
        Some(items) => {
            let mut list = AllowList::default();
            for item in &items {
                list.add(item.get_ref())
                    .map_err(|e| fail(Some(item.span()), format!("allow: {e}")))?;
            }
            Some(list)
        }
    };
    let concurrency = raw
        .concurrency
        .map(|c| {
            let n = *c.get_ref();
            if CONCURRENCY.contains(&n) {
                Ok(n as u32)
            } else {
                Err(fail(
                    Some(c.span()),
                    format!(
                        "concurrency must be from {} to {} (e.g. concurrency = 1024)",
                        CONCURRENCY.start(),
                        CONCURRENCY.end()
                    ),
                ))
            }
        })
        .transpose()?;
    let max_time = raw
        .max_time
        .map(|m| {
            crate::input::duration::parse(m.get_ref(), crate::input::duration::SERVE_MAX_TIME)
                .map_err(|e| fail(Some(m.span()), format!("max_time: {e}")))
        })
        .transpose()?;
    let mut labels = Labels::default();
    for (name, value) in &raw.labels {
        labels
            .add(name.get_ref(), value.get_ref())
            .map_err(|e| fail(Some(name.span()), format!("[labels]: {e}")))?;
    }
    if raw.modules.len() > MAX_MODULES {
        return Err(fail(None, format!("more than {MAX_MODULES} modules")));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut modules = BTreeMap::new();
    for (name, m) in raw.modules {
        let span = name.span();
        let name = name.into_inner();
        let module = module(&name, m, catalog, dir)
            .map_err(|(s, e)| fail(Some(s.unwrap_or(span)), format!("[modules.{name}]: {e}")))?;
        modules.insert(name, module);
    }
    Ok(File {
        path: path.to_path_buf(),
        listen,
        allow,
        concurrency,
        max_time,
        labels,
        modules,
    })
}

/// One module checked: the error is where (when not the module's name)
/// and what.
fn module(
    name: &str,
    m: RawModule,
    catalog: &Catalog,
    dir: &Path,
) -> Result<Module, (Option<Range<usize>>, String)> {
    if name.is_empty()
        || name.len() > MAX_MODULE_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err((
            None,
            format!(
                "module names are letters, digits, _ and -, at most {MAX_MODULE_NAME} (e.g. [modules.ard])"
            ),
        ));
    }
    if name == TCP_CONNECT {
        return Err((
            None,
            format!(
                "{TCP_CONNECT} is built in (blackbox_exporter's name for one TCP port of target=HOST:PORT): name the module otherwise"
            ),
        ));
    }
    if m.products.len() > MAX_PRODUCTS {
        return Err((None, format!("at most {MAX_PRODUCTS} products")));
    }
    let mut products: Vec<String> = Vec::new();
    for p in &m.products {
        let found = catalog
            .find_product(p.get_ref())
            .map_err(|e| (Some(p.span()), crate::report::words::error_chain(&e)))?;
        if !products.contains(&found.name) {
            products.push(found.name.clone());
        }
    }
    let ports = match &m.ports {
        None => Vec::new(),
        Some(spec) => merge(&parse_port_list(spec.get_ref()).map_err(|e| {
            (
                Some(spec.span()),
                format!("ports: {e} (e.g. ports = \"548,5900-5902,53/udp\")"),
            )
        })?),
    };
    if products.is_empty() && ports.is_empty() {
        return Err((
            None,
            "a module needs products = [...] or ports = \"...\" (e.g. products = [\"ARD\"])"
                .to_string(),
        ));
    }
    let retries = m
        .retries
        .map(|r| {
            let n = *r.get_ref();
            if (0..=MAX_RETRIES).contains(&n) {
                Ok(n as u32)
            } else {
                Err((
                    Some(r.span()),
                    format!("retries must be from 0 to {MAX_RETRIES} (e.g. retries = 2)"),
                ))
            }
        })
        .transpose()?;
    let responder = m
        .responder_secret_file
        .map(|f| {
            let file = dir.join(f.get_ref());
            crate::input::secret::load(Some(&file))
                .map_err(|e| (Some(f.span()), format!("responder_secret_file: {e:#}")))
        })
        .transpose()?;
    Ok(Module {
        products,
        ports,
        options: Options {
            locate: m.locate,
            retries,
            family: match m.family {
                None | Some(RawFamily::Any) => Family::Any,
                Some(RawFamily::Ipv4) => Family::V4,
                Some(RawFamily::Ipv6) => Family::V6,
            },
            responder,
        },
    })
}

#[cfg(test)]
mod tests;
