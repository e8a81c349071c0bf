//! The constant labels of the configuration file's `[labels]` table
//! (`site = "a"`), added to every series a probe's exposition carries.
//! Names follow Prometheus' rules (`[a-zA-Z_][a-zA-Z0-9_]*`, none starting
//! with `__`, which Prometheus keeps for itself) and clash with no label
//! of the series themselves nor with `job` and `instance`, which
//! Prometheus sets on every series it scrapes; values are neutralised and
//! escaped as every label value of the exposition is.

use std::fmt::Write as _;

use crate::clean;
use crate::report::prometheus;

/// The most constant labels.
pub const MAX_LABELS: usize = 32;
/// The longest label name.
const MAX_NAME: usize = 100;
/// The longest label value, in characters.
pub const MAX_VALUE: usize = 1024;

/// The labels Prometheus sets on what it scrapes.
const PROMETHEUS_OWN: &[&str] = &["job", "instance"];

/// Constant labels, in the order given, written ready for a series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    /// `name="escaped value"`, comma-separated.
    written: String,
    count: usize,
}

impl Labels {
    /// How many there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds `name="value"`; the error says what a right name or value is.
    /// A name given twice is refused by the file's parser before this.
    pub fn add(&mut self, name: &str, value: &str) -> Result<(), String> {
        check_name(name)?;
        if self.count == MAX_LABELS {
            return Err(format!("at most {MAX_LABELS} labels"));
        }
        if value.chars().count() > MAX_VALUE {
            return Err(format!(
                "the value of label {name} is longer than {MAX_VALUE} characters"
            ));
        }
        if !self.written.is_empty() {
            self.written.push(',');
        }
        let _ = write!(
            self.written,
            "{name}=\"{}\"",
            clean::prometheus_label(value)
        );
        self.count += 1;
        Ok(())
    }

    /// `exposition` with these labels on every series: first among each
    /// series' labels.
    pub fn apply(&self, exposition: &str) -> String {
        if self.is_empty() {
            return exposition.to_string();
        }
        let mut out = String::with_capacity(exposition.len() * 2);
        for line in exposition.split_inclusive('\n') {
            if line.starts_with('#') || line.trim().is_empty() {
                out.push_str(line);
                continue;
            }
            // A metric name holds neither a brace nor a space: the first
            // of either ends it.
            match line.find(['{', ' ']) {
                Some(at) if line.as_bytes()[at] == b'{' => {
                    out.push_str(&line[..=at]);
                    out.push_str(&self.written);
                    if !line[at + 1..].starts_with('}') {
                        out.push(',');
                    }
                    out.push_str(&line[at + 1..]);
                }
                Some(at) => {
                    out.push_str(&line[..at]);
                    let _ = write!(out, "{{{}}}", self.written);
                    out.push_str(&line[at..]);
                }
                None => out.push_str(line),
            }
        }
        out
    }
}

/// Checks a label name as the file's `[labels]` table gives it.
fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if !first_ok || name.len() > MAX_NAME || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!(
            "label names are a letter or _ then letters, digits and _, at most {MAX_NAME} (e.g. site = \"a\")"
        ));
    }
    if name.starts_with("__") {
        return Err(
            "label names starting with __ are Prometheus' own: name it without (e.g. site)"
                .to_string(),
        );
    }
    if prometheus::LABELS.contains(&name) {
        return Err(format!(
            "label {name} is one the series carry already ({}): choose another name",
            prometheus::LABELS.join(", ")
        ));
    }
    if PROMETHEUS_OWN.contains(&name) {
        return Err(format!(
            "label {name} is set by Prometheus on every series it scrapes: choose another name (e.g. site)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_rules() {
        let mut l = Labels::default();
        for good in ["site", "_x", "Rack_2", "a1"] {
            l.add(good, "v").unwrap();
        }
        for (bad, says) in [
            ("", "a letter or _"),
            ("2site", "a letter or _"),
            ("si-te", "a letter or _"),
            ("sité", "a letter or _"),
            ("__name", "Prometheus' own"),
            ("target", "carry already"),
            ("port", "carry already"),
            ("located_after_hop", "carry already"),
            ("instance", "set by Prometheus"),
        ] {
            let e = Labels::default().add(bad, "v").unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let mut many = Labels::default();
        for i in 0..MAX_LABELS {
            many.add(&format!("l{i}"), "v").unwrap();
        }
        assert!(
            many.add("one_more", "v")
                .unwrap_err()
                .contains("at most 32")
        );
        let long = "x".repeat(MAX_VALUE + 1);
        assert!(Labels::default().add("site", &long).is_err());
    }

    #[test]
    fn every_series_gets_the_labels_first_and_values_are_escaped() {
        let mut l = Labels::default();
        l.add("site", "a\"b\\c\nd\u{1b}[31m").unwrap();
        l.add("rack", "2").unwrap();
        let body = "# HELP x y\n# TYPE x gauge\nx{target=\"t\"} 1\nbare 2\nempty{} 3\n";
        assert_eq!(
            l.apply(body),
            "# HELP x y\n# TYPE x gauge\n\
             x{site=\"a\\\"b\\\\c\\\\x0ad\\\\x1b[31m\",rack=\"2\",target=\"t\"} 1\n\
             bare{site=\"a\\\"b\\\\c\\\\x0ad\\\\x1b[31m\",rack=\"2\"} 2\n\
             empty{site=\"a\\\"b\\\\c\\\\x0ad\\\\x1b[31m\",rack=\"2\"} 3\n"
        );
        assert_eq!(Labels::default().apply(body), body);
    }
}
