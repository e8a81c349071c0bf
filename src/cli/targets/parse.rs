//! The text of a `--targets` file into hosts: one per line, `#` starts a
//! comment, blank lines and surrounding white space ignored. Pure: the
//! bytes in, the hosts (or the one reason they are refused) out.

/// Why the bytes of a targets file are no list of hosts.
#[derive(Debug, PartialEq, Eq)]
pub enum NotText {
    /// Not UTF-8.
    NotUtf8,
    /// Holds NUL bytes (a binary file that happens to be UTF-8).
    Nul,
}

/// The hosts of a targets file, in order, repeats kept.
pub fn hosts(bytes: &[u8]) -> Result<Vec<String>, NotText> {
    let text = std::str::from_utf8(bytes).map_err(|_| NotText::NotUtf8)?;
    if text.contains('\0') {
        return Err(NotText::Nul);
    }
    Ok(text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|host| !host.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn comments_blank_lines_and_space_are_not_hosts() {
        let text = "# lab\r\n  127.0.0.1  # loopback\r\n\n\t\nserver.local#x\n#only\n ::1";
        assert_eq!(
            hosts(text.as_bytes()),
            Ok(strings(&["127.0.0.1", "server.local", "::1"]))
        );
        assert_eq!(hosts(b""), Ok(vec![]));
        assert_eq!(hosts(b"a\xff\n"), Err(NotText::NotUtf8));
        assert_eq!(hosts(b"a\n\0\n"), Err(NotText::Nul));
    }

    /// Bytes that are sometimes text, sometimes not, often with the
    /// characters the parser treats specially.
    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            any::<String>().prop_map(String::into_bytes),
            "[ -~\t\r\n#\u{a0}\u{2028}\u{0}]{0,600}".prop_map(String::into_bytes),
        ]
    }

    /// A host as a targets file may name one: no white space, no `#`.
    fn host() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._:%\\[\\]-]{1,40}"
    }

    /// What may surround a host on its line without being part of it.
    fn padding() -> impl Strategy<Value = String> {
        "[ \t]{0,3}"
    }

    proptest! {
        /// Any bytes give the hosts or the one documented reason; every
        /// host is a trimmed, non-empty piece of one line of the text, with
        /// no comment in it, and there are no more hosts than lines, nor
        /// more text out than in.
        #[test]
        fn any_bytes_give_hosts_or_the_reason(bytes in input()) {
            match hosts(&bytes) {
                Err(NotText::NotUtf8) => prop_assert!(std::str::from_utf8(&bytes).is_err()),
                Err(NotText::Nul) => {
                    prop_assert!(std::str::from_utf8(&bytes).is_ok());
                    prop_assert!(bytes.contains(&0));
                }
                Ok(list) => {
                    let text = std::str::from_utf8(&bytes).unwrap();
                    prop_assert!(!text.contains('\0'));
                    prop_assert!(list.len() <= text.lines().count());
                    prop_assert!(list.iter().map(String::len).sum::<usize>() <= bytes.len());
                    let mut lines = text.lines();
                    for h in &list {
                        prop_assert!(!h.is_empty());
                        prop_assert_eq!(h.trim(), h.as_str());
                        prop_assert!(!h.contains('#') && !h.contains('\n'), "{:?}", h);
                        // In order: each host is on a later line than the last.
                        prop_assert!(
                            lines.any(|l| l.split('#').next().unwrap_or("").trim() == h),
                            "{:?} not found in order", h
                        );
                    }
                }
            }
        }

        /// Hosts written one per line, padded, with comments, blank lines
        /// and either line ending, read back as exactly those hosts.
        #[test]
        fn written_hosts_read_back(
            lines in prop::collection::vec(
                (host(), padding(), padding(), prop::option::of("[^\n\r\0]{0,30}"), 0..3usize, any::<bool>()),
                0..60,
            ),
        ) {
            let mut text = String::new();
            let mut expected = Vec::new();
            for (host, before, after, comment, blanks, crlf) in &lines {
                let end = if *crlf { "\r\n" } else { "\n" };
                for _ in 0..*blanks {
                    text.push_str(before);
                    text.push_str(end);
                }
                text.push_str(&format!("{before}{host}{after}"));
                if let Some(c) = comment {
                    text.push_str(&format!("#{c}"));
                }
                text.push_str(end);
                expected.push(host.clone());
            }
            prop_assert_eq!(hosts(text.as_bytes()), Ok(expected));
        }
    }
}
