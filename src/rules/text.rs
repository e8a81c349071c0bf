//! Text from outside (service and product names from a report or a
//! catalog) made fit for a comment in any firewall's language: only
//! characters that no format here gives a meaning to are kept, so that a
//! name can never close a double-quoted string, start a command or end a
//! comment early. The apostrophe is kept too: the formats that quote with
//! it (a shell, PowerShell, YAML) escape it by their own rules, as each
//! format quotes on top of this.

/// The most characters of outside text kept in one comment.
pub const MAX_TEXT: usize = 200;

/// Whether `c` is kept as it is: ASCII letters and digits, the space, and
/// punctuation that means nothing inside a quoted string or a comment of
/// nftables, a POSIX shell, pf, PowerShell, IOS, YAML or Junos, but for
/// the apostrophe (`the host's`), which the single-quoted strings of a
/// shell, PowerShell and YAML hold by their own escapes.
fn kept(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ()[],.:/_+-&@%=?'".contains(c)
}

/// `s` with every other character turned into `?` (control characters and
/// runs of white space into one space), trimmed, and cut to [`MAX_TEXT`]
/// characters. The result is ASCII.
pub fn safe(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(if kept(c) { c } else { '?' });
        }
        if out.len() > MAX_TEXT {
            break;
        }
    }
    fit(out.trim(), MAX_TEXT)
}

/// `s` cut to at most `max` bytes, ending in `...` when cut. `s` is ASCII
/// (as [`safe`] makes it), so a byte is a character.
pub fn fit(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(3);
    let cut = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    format!("{}...", s[..cut].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_keep_their_words_and_lose_what_could_inject() {
        assert_eq!(safe("Screen Sharing (VNC)"), "Screen Sharing (VNC)");
        assert_eq!(
            safe("Net Assistant (ARD) / SMB"),
            "Net Assistant (ARD) / SMB"
        );
        assert_eq!(
            safe("a\" accept; drop # $(reboot) `x` 'y' \\ {z} <w> */"),
            "a? accept? drop ? ?(reboot) ?x? 'y' ? ?z? ?w? ?/"
        );
        assert_eq!(safe("line\nnext\r\n\tend  "), "line next end");
        assert_eq!(safe("caf\u{e9} \u{2018}q\u{2019}"), "caf? ?q?");
        assert_eq!(safe(&"x".repeat(1000)).len(), MAX_TEXT);
    }

    #[test]
    fn fitting_cuts_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdefg", 6), "abc...");
        assert_eq!(fit("ab  defg", 6), "ab...");
    }

    proptest! {
        #[test]
        fn safe_text_is_short_ascii_without_double_quotes(s in any::<String>()) {
            let t = safe(&s);
            prop_assert!(t.len() <= MAX_TEXT);
            prop_assert!(t.chars().all(kept));
            prop_assert!(!t.contains("*/") && !t.contains('\n'));
        }
    }
}
