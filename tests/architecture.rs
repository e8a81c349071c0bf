//! The layers stay layers: reads the sources under `src/` and checks the
//! import rules that docs/architecture.md states. The wire codecs know
//! nothing of tokio or the engine; the engine knows nothing of Apple's
//! catalog or of reports; only the command line prints; and each layer
//! names only the layers its row of the table allows.

use std::fs;
use std::path::{Path, PathBuf};

/// A source file, with the code that is compiled only for its unit tests
/// taken out (a test may say on stderr why it skipped).
struct Source {
    path: PathBuf,
    code: String,
}

/// Every `.rs` file under `src/`, but the files that are test modules.
fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let test_only: Vec<PathBuf> = files.iter().flat_map(|f| test_modules(f)).collect();
    files
        .into_iter()
        .filter(|f| !test_only.iter().any(|t| f.starts_with(t)))
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            Source {
                code: without_test_blocks(&text),
                path: path.strip_prefix(&root).unwrap().to_owned(),
            }
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files (or directories) of the modules `file` declares under
/// `#[cfg(test)]` as `mod name;`.
fn test_modules(file: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string(file).unwrap();
    let dir = match file.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => file.parent().unwrap().to_owned(),
        _ => file.with_extension(""),
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].trim() == "#[cfg(test)]")
        .filter_map(|w| {
            let decl = w[1].trim().strip_suffix(';')?;
            let name = decl.rsplit(' ').next()?;
            decl.contains("mod ").then(|| {
                let file = dir.join(format!("{name}.rs"));
                if file.exists() { file } else { dir.join(name) }
            })
        })
        .collect()
}

/// The text without its inline `#[cfg(test)] mod name { ... }` blocks
/// (rustfmt closes a top-level module with a `}` alone at column 0).
fn without_test_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|l| l.starts_with("mod ") && l.ends_with('{'))
        {
            for inner in lines.by_ref() {
                if inner == "}" {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level module a file belongs to: `engine` for
/// `engine/locate/search.rs`, `port` for `port.rs`.
fn layer(path: &Path) -> String {
    let first = path
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_owned()
}

/// The crate's top-level modules a text names as `crate::name` (or, from
/// the binary, `portprobe::name`) or in a group, `crate::{name::Item, other}`.
fn named_layers(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut named = Vec::new();
    let paths = code
        .match_indices("crate::")
        .chain(code.match_indices("portprobe::"));
    for (i, m) in paths {
        let rest = &code[i + m.len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let (mut depth, mut item_start) = (0usize, true);
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        _ if item_start && !c.is_whitespace() => {
                            named.push(ident(&group[j..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            }
            None => named.push(ident(rest)),
        }
    }
    named.retain(|n| !n.is_empty());
    named.sort();
    named.dedup();
    named
}

#[test]
fn the_sources_are_found() {
    let all = sources();
    assert!(all.len() > 50, "only {} source files under src/", all.len());
    for layer_file in ["wire/dns.rs", "engine/mod.rs", "cli/mod.rs", "port.rs"] {
        assert!(
            all.iter().any(|s| s.path == Path::new(layer_file)),
            "src/{layer_file} is read"
        );
    }
}

#[test]
fn the_wire_codecs_use_neither_tokio_nor_the_engine() {
    for s in sources().iter().filter(|s| layer(&s.path) == "wire") {
        for banned in ["use tokio", "tokio::", "crate::engine"] {
            assert!(
                !s.code.contains(banned),
                "src/{} names `{banned}`: the wire codecs are pure functions over bytes",
                s.path.display()
            );
        }
    }
}

#[test]
fn the_engine_knows_neither_the_catalog_nor_the_reports() {
    for s in sources().iter().filter(|s| layer(&s.path) == "engine") {
        for banned in ["crate::catalog", "crate::report"] {
            assert!(
                !s.code.contains(banned),
                "src/{} names `{banned}`: the engine produces data, and knows nothing of \
                 Apple's products or of how results are worded",
                s.path.display()
            );
        }
    }
}

/// Only the command line (and the binary that calls it) writes to stdout
/// or stderr; every other layer returns what it has to say.
#[test]
fn nothing_outside_the_command_line_prints() {
    for s in sources() {
        let l = layer(&s.path);
        if l == "cli" || l == "main" {
            continue;
        }
        for mac in ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("] {
            assert!(
                !s.code.contains(mac),
                "src/{} uses `{mac}`: only src/cli prints",
                s.path.display()
            );
        }
    }
}

/// What each layer may name, as docs/architecture.md's table says.
const MAY_IMPORT: &[(&str, &[&str])] = &[
    ("catalog", &["engine", "port", "wire"]),
    ("port", &[]),
    ("clean", &[]),
    ("wire", &["port"]),
    ("input", &["engine", "wire"]),
    ("engine", &["port", "wire"]),
    (
        "report",
        &["catalog", "clean", "engine", "port", "rules", "wire"],
    ),
    ("rules", &["catalog", "engine", "port", "report"]),
    ("listen", &["clean", "port", "wire"]),
    (
        "serve",
        &[
            "catalog", "clean", "engine", "input", "port", "report", "wire",
        ],
    ),
    (
        "cli",
        &[
            "catalog", "clean", "engine", "input", "listen", "port", "report", "rules", "serve",
            "wire",
        ],
    ),
    ("lib", &[]),
    ("main", &["cli"]),
];

#[test]
fn each_layer_imports_only_what_its_row_allows() {
    for s in sources() {
        let l = layer(&s.path);
        let allowed = MAY_IMPORT
            .iter()
            .find(|(name, _)| *name == l)
            .unwrap_or_else(|| panic!("src/{l} has no row in docs/architecture.md's table"))
            .1;
        for named in named_layers(&s.code) {
            assert!(
                named == l || allowed.contains(&named.as_str()),
                "src/{} names crate::{named}, which {l} may not import (allowed: {allowed:?}); \
                 change the layering in docs/architecture.md and here together, or keep it",
                s.path.display()
            );
        }
    }
}

#[test]
fn the_table_matches_the_document() {
    let doc = include_str!("../docs/architecture.md");
    for (name, allowed) in MAY_IMPORT {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `src/{name}")))
            .unwrap_or_else(|| panic!("docs/architecture.md has a row for src/{name}"));
        let cell = row.rsplit('|').nth(1).unwrap();
        let listed: Vec<&str> = cell
            .split(',')
            .map(|c| c.trim().trim_matches('`'))
            .filter(|c| !c.is_empty() && *c != "nothing")
            .collect();
        assert_eq!(
            &listed, allowed,
            "the row of src/{name} in docs/architecture.md"
        );
    }
}

#[test]
fn test_blocks_are_left_out_and_nothing_else() {
    let text =
        "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() { eprintln!(\"x\"); }\n}\nfn c() {}\n";
    assert_eq!(without_test_blocks(text), "fn a() {}\nfn c() {}\n");
    assert_eq!(
        named_layers("use crate::{engine::{X, Y}, report};\n crate::wire::y; crate::engine"),
        ["engine", "report", "wire"]
    );
    assert_eq!(
        named_layers("fn main() { portprobe::cli::main() }"),
        ["cli"]
    );
}
