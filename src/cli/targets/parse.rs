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
