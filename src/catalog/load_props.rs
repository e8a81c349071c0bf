//! Property tests of the catalog loader over text from outside: whatever a
//! `--catalog` file holds (any text, or the built-in catalog cut, doubled or
//! garbled anywhere), loading never panics, a refusal names the file, and a
//! catalog that loads is whole: every product's plan can be made.

use proptest::prelude::*;

use super::{BUILTIN, Catalog, CatalogError};

const ORIGIN: &str = "sites.toml";

/// The file an error names.
fn file_of(e: &CatalogError) -> &str {
    match e {
        CatalogError::Read { file, .. }
        | CatalogError::Syntax { file, .. }
        | CatalogError::Field { file, .. } => file,
    }
}

/// Loads `text`, checking what every outcome must satisfy.
fn load(text: &str) -> Result<(), TestCaseError> {
    match Catalog::parse(text, ORIGIN) {
        Err(e) => {
            prop_assert_eq!(file_of(&e), ORIGIN);
            prop_assert!(!e.to_string().contains('\n'), "one line: {}", e);
        }
        Ok(c) => {
            // Nothing is made that the text did not declare.
            prop_assert!(c.entries().len() <= text.matches("[[entry]]").count());
            prop_assert!(c.products().len() <= text.matches("[[product]]").count());
            for p in c.products() {
                let found = c.find_product(&p.name).map(|f| f.name.clone());
                prop_assert_eq!(found.ok(), Some(p.name.clone()));
                let plan = c.plan(&[p], &[]);
                prop_assert!(plan.ports.len() <= 2 * 65_536);
                let _ = c.requirements(&[p]);
            }
            let _ = c.all_requirements();
        }
    }
    Ok(())
}

/// One change to the built-in catalog's lines.
#[derive(Clone, Debug)]
enum Edit {
    /// Remove the line.
    Delete(usize),
    /// Repeat the line.
    Double(usize),
    /// Replace the line with this text.
    Replace(usize, String),
    /// Replace one byte of the line (kept valid UTF-8 by using ASCII).
    Byte(usize, usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Double),
        (any::<usize>(), "[ -~]{0,40}").prop_map(|(l, s)| Edit::Replace(l, s)),
        (any::<usize>(), any::<usize>(), 0x20u8..0x7f).prop_map(|(l, i, b)| Edit::Byte(l, i, b)),
    ]
}

fn apply(lines: &mut Vec<String>, edit: &Edit) {
    if lines.is_empty() {
        return;
    }
    let at = |l: usize| l % lines.len();
    match edit {
        Edit::Delete(l) => {
            let l = at(*l);
            lines.remove(l);
        }
        Edit::Double(l) => {
            let l = at(*l);
            lines.insert(l, lines[l].clone());
        }
        Edit::Replace(l, s) => {
            let l = at(*l);
            lines[l] = s.clone();
        }
        Edit::Byte(l, i, b) => {
            let l = at(*l);
            let line = &mut lines[l];
            if line.is_ascii() && !line.is_empty() {
                let i = i % line.len();
                line.replace_range(i..=i, &char::from(*b).to_string());
            }
        }
    }
}

proptest! {
    #[test]
    fn any_text_loads_or_is_refused_naming_the_file(text in "\\PC{0,400}") {
        load(&text)?;
    }

    #[test]
    fn a_garbled_catalog_loads_whole_or_is_refused(edits in proptest::collection::vec(edit(), 1..6)) {
        let mut lines: Vec<String> = BUILTIN.lines().map(str::to_string).collect();
        for e in &edits {
            apply(&mut lines, e);
        }
        load(&lines.join("\n"))?;
    }
}
