//! Text from outside (host names and files from the user, catalog files,
//! replies from the network) made safe to print: a terminal never receives
//! a control character or a bidirectional override from it, and no
//! monitoring format's syntax can be broken by it.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 and C1 controls,
/// DEL, and the Unicode formatting characters that reorder or hide text.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'   // zero-width spaces and marks, LRM, RLM
            | '\u{202a}'..='\u{202e}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{feff}'              // zero-width no-break space
        )
}

/// `s` with every unsafe character shown as an escape (`\x1b`, `\u{202e}`).
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// `s` cleaned for a Nagios plugin's status line, where `|` starts the
/// performance data: it becomes `¦`.
pub fn nagios(s: &str) -> String {
    clean(s).replace('|', "\u{a6}")
}

/// `s` cleaned and escaped as a Prometheus label value (backslash, double
/// quote and newline escaped as the text format requires).
pub fn prometheus_label(s: &str) -> String {
    clean(s)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A serialised JSON document with every unsafe character that the JSON
/// encoder left as it is (C1 controls, formatting characters) written as a
/// `\uXXXX` escape: the same document, safe to show on a terminal. Such
/// characters occur only inside strings, where the escape means the same.
pub fn json(doc: String) -> String {
    if !doc.chars().any(unsafe_char) {
        return doc;
    }
    let mut out = String::with_capacity(doc.len() + 16);
    for c in doc.chars() {
        if unsafe_char(c) {
            // All of them are in the Basic Multilingual Plane.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_overrides_are_shown_not_passed() {
        assert_eq!(clean("server.local"), "server.local");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        assert_eq!(clean("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(clean("line\nbreak\r"), "line\\x0abreak\\x0d");
        assert_eq!(clean("x\u{9b}31m"), "x\\x9b31m");
        assert_eq!(clean("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(clean("del\u{7f}"), "del\\x7f");
        assert_eq!(clean("Zürich ok"), "Zürich ok");
    }

    #[test]
    fn json_escapes_what_its_encoder_leaves() {
        let doc = serde_json::to_string(&serde_json::json!({"host": "a\u{1b}b\u{9b}c\u{202e}d"}))
            .unwrap();
        let safe = json(doc.clone());
        assert!(
            !safe.contains('\u{9b}') && !safe.contains('\u{202e}'),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        let before: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(back, before);
    }

    #[test]
    fn formats_keep_their_syntax() {
        assert_eq!(nagios("a|b\u{1b}"), "a\u{a6}b\\x1b");
        assert_eq!(prometheus_label("a\"b\\c\nd"), "a\\\"b\\\\c\\\\x0ad");
    }
}
