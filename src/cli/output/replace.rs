//! Replacing a regular file atomically, for a reader (cron, a monitoring
//! agent, node_exporter's textfile collector) that may read it at any
//! moment, possibly by a privileged process in a directory others can write.
//!
//! Each write goes to a new temporary file beside the file, created
//! exclusively (`O_CREAT|O_EXCL`, so a planted symlink or file is never
//! followed or reused) under an unpredictable name; it is written, flushed
//! to disk, given the permission bits of the file it replaces, and renamed
//! over the file; then the directory is flushed too. On any failure the
//! temporary file is removed.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::{Builder, NamedTempFile};

/// Longest output file name copied into the temporary file's name; a longer
/// one would push the temporary name past the file system's limit.
const MAX_NAME_IN_PREFIX: usize = 128;

/// Checks that `file` can be replaced: its directory exists and a file can
/// be created there. The error ends a sentence about the output.
pub fn check(file: &Path) -> Result<(), String> {
    let dir = directory(file)?;
    let probe = temporary(file, &dir).map_err(|e| create_error(&dir, &e))?;
    drop(probe);
    Ok(())
}

/// Replaces `file` with `text` as described in the module documentation.
pub fn write(file: &Path, text: &str) -> Result<(), String> {
    let dir = directory(file)?;
    let mode = match std::fs::symlink_metadata(file) {
        Ok(m) if m.is_file() => m.permissions().mode() & 0o777,
        _ => 0o666 & !umask(),
    };
    let mut tmp = temporary(file, &dir).map_err(|e| create_error(&dir, &e))?;
    let f = tmp.as_file_mut();
    f.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| f.write_all(text.as_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(|e| plain(&e))?;
    // On failure the returned temporary file is dropped, which removes it.
    tmp.persist(file).map_err(|e| plain(&e.error))?;
    match File::open(&dir).and_then(|d| d.sync_all()) {
        // Some file systems cannot flush a directory; the rename stands.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other.map_err(|e| {
            format!(
                "the file was replaced, but flushing directory {} failed: {}",
                dir.display(),
                plain(&e)
            )
        }),
    }
}

/// Refuses a name that cannot be a file's, whatever is there: one ending
/// in `/`, or one with no last component (`..`).
pub fn name_a_file(path: &Path) -> Result<(), String> {
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(
            "it ends in `/`, so it names a directory; give a file name, e.g. DIR/portprobe.prom"
                .into(),
        );
    }
    if path.file_name().is_none() {
        return Err("it names no file; give a file name, e.g. DIR/portprobe.prom".into());
    }
    Ok(())
}

/// The directory `file` is in, or why `file` names no file in an existing
/// directory.
fn directory(file: &Path) -> Result<PathBuf, String> {
    name_a_file(file)?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("directory {} does not exist", dir.display()));
        }
        Err(e) => return Err(format!("cannot use directory {}: {e}", dir.display())),
    }
    Ok(dir)
}

/// A new, empty file in `dir` that nobody else has opened: created with
/// `O_EXCL` and mode 0600 under a random name (`.NAME.XXXXXX.tmp`), removed
/// when dropped.
fn temporary(path: &Path, dir: &Path) -> io::Result<NamedTempFile> {
    let name = path.file_name().unwrap_or(OsStr::new("portprobe"));
    let mut prefix = OsString::from(".");
    if name.len() <= MAX_NAME_IN_PREFIX {
        prefix.push(name);
    } else {
        prefix.push("portprobe");
    }
    prefix.push(".");
    Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Why no file could be created in `dir`.
fn create_error(dir: &Path, e: &io::Error) -> String {
    let dir = dir.display();
    match e.kind() {
        io::ErrorKind::PermissionDenied => format!("no permission to create files in {dir}"),
        io::ErrorKind::ReadOnlyFilesystem => format!("{dir} is on a read-only file system"),
        _ => format!("cannot create a file in {dir}: {}", plain(e)),
    }
}

/// The operating system's message for `e`, without the temporary file's
/// name that `tempfile` attaches to it.
fn plain(e: &io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.source()) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    }
}

/// The process's file mode creation mask, read from `/proc/self/status`
/// (reading it with `umask(2)` would briefly change it for every thread);
/// 022 when it cannot be read.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_umask(&s))
        .unwrap_or(0o022)
}

fn parse_umask(status: &str) -> Option<u32> {
    let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_from_proc_status() {
        assert_eq!(
            parse_umask("Name:\tportprobe\nUmask:\t0027\nState:\tR\n"),
            Some(0o027)
        );
        assert_eq!(parse_umask("Name:\tportprobe\n"), None);
        assert_eq!(parse_umask("Umask:\tzz\n"), None);
        assert_eq!(parse_umask("Umask:\t7777\n"), None);
    }

    #[test]
    fn a_long_name_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("n".repeat(250));
        write(&long, "report\n").unwrap();
        assert_eq!(std::fs::read_to_string(&long).unwrap(), "report\n");
    }
}
