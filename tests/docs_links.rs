//! The README and the documents under docs/ link to each other and to
//! files of the repository; every relative link must lead somewhere: the
//! file exists, and an `#anchor` names a heading of the document it points
//! into, by GitHub's rules for heading anchors.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every `.md` file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut under: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("a docs/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    under.sort();
    docs.extend(under);
    docs
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if !fenced {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The prose with inline code spans blanked out (a span opened by N
/// backticks closes at the next run of exactly N, across lines too).
fn without_code_spans(prose: &str) -> String {
    let chars: Vec<char> = prose.chars().collect();
    let mut out = String::new();
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '`' {
            let run = chars[i..].iter().take_while(|c| **c == '`').count();
            match open {
                None => open = Some(run),
                Some(n) if n == run => open = None,
                Some(_) => {}
            }
            i += run;
            out.push(' ');
            continue;
        }
        out.push(if open.is_some() && chars[i] != '\n' {
            ' '
        } else {
            chars[i]
        });
        i += 1;
    }
    out
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped but `-`
/// and `_`, each space a `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a document's headings make, a repeated one numbered as
/// GitHub numbers it (`name`, `name-1`, ...).
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for line in prose(text).lines() {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of a document's links and images, `[text](target)`.
fn links(text: &str) -> Vec<String> {
    let text = without_code_spans(&prose(text));
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            let end = rest.find(')')?;
            Some(rest[..end].split_whitespace().next()?.to_owned())
        })
        .collect()
}

fn is_external(target: &str) -> bool {
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|p| target.starts_with(p))
}

#[test]
fn every_relative_link_and_anchor_leads_somewhere() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for target in links(&text).iter().filter(|t| !is_external(t)) {
            checked += 1;
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            if !path.exists() {
                broken.push(format!("{name}: {target}: no file {}", path.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let into = fs::read_to_string(&path).unwrap_or_default();
                if !anchors(&into).iter().any(|a| a == anchor) {
                    broken.push(format!(
                        "{name}: {target}: no heading with anchor #{anchor}"
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 50, "only {checked} relative links found");
}

#[test]
fn the_readme_links_every_document() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let linked = links(&readme);
    for doc in documents().iter().skip(1) {
        let target = format!("docs/{}", doc.file_name().unwrap().to_str().unwrap());
        assert!(
            linked
                .iter()
                .any(|l| l.split('#').next() == Some(target.as_str())),
            "README.md does not link {target}"
        );
    }
}

#[test]
fn the_readme_stays_a_front_door() {
    let size = fs::metadata(root().join("README.md")).unwrap().len();
    assert!(
        size <= 30_000,
        "README.md is {size} bytes; move depth into docs/"
    );
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    for early in ["## Port states", "## Exit codes"] {
        let line = readme
            .lines()
            .position(|l| l == early)
            .unwrap_or_else(|| panic!("README.md has {early}"));
        assert!(
            line < 200,
            "{early} is at line {}: keep it near the top",
            line + 1
        );
    }
}

#[test]
fn anchors_follow_githubs_rules() {
    assert_eq!(
        slug("Exporter: `cargo bench --bench serve`"),
        "exporter-cargo-bench---bench-serve"
    );
    assert_eq!(slug("For people: the terminal"), "for-people-the-terminal");
    assert_eq!(
        slug("A textfile for node_exporter"),
        "a-textfile-for-node_exporter"
    );
    assert_eq!(anchors("# A\n```\n# not\n```\n## A\n"), ["a", "a-1"]);
    assert_eq!(
        links("[x](a.md#b) `[y](no)` ``](no)``\n```\n[z](no)\n```\n![i](img.png)"),
        ["a.md#b", "img.png"]
    );
    assert!(Path::new(&root()).join("docs").is_dir());
}
