//! `--output FILE`: the report written to a file that a reader (cron, a
//! monitoring agent, node_exporter's textfile collector) may read at any
//! moment, possibly by a privileged process in a directory others can write.
//!
//! Each write goes to a new temporary file beside FILE, created exclusively
//! (`O_CREAT|O_EXCL`, so a planted symlink or file is never followed or
//! reused) under an unpredictable name; it is written, flushed to disk,
//! given the permission bits of the file it replaces, and renamed over FILE;
//! then the directory is flushed too. On any failure the temporary file is
//! removed. [`check`] runs before probing so that an output that cannot be
//! written fails at once rather than after the run.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use tempfile::{Builder, NamedTempFile};

/// Longest output file name copied into the temporary file's name; a longer
/// one would push the temporary name past the file system's limit.
const MAX_NAME_IN_PREFIX: usize = 128;

/// Checks that a report can be written to `path`: it names a file (not a
/// directory), its directory exists, and a file can be created there.
pub fn check(path: &Path) -> Result<()> {
    let dir = directory(path)?;
    let probe = temporary(path, &dir).map_err(|e| create_error(path, &dir, &e))?;
    drop(probe);
    Ok(())
}

/// Replaces `path` with `text` as described in the module documentation.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = directory(path)?;
    let fail = |what: String| anyhow!("cannot write --output {}: {what}", path.display());
    let mode = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => m.permissions().mode() & 0o777,
        _ => 0o666 & !umask(),
    };
    let mut tmp = temporary(path, &dir).map_err(|e| create_error(path, &dir, &e))?;
    let file = tmp.as_file_mut();
    file.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(plain(&e)))?;
    // On failure the returned temporary file is dropped, which removes it.
    tmp.persist(path).map_err(|e| fail(plain(&e.error)))?;
    match File::open(&dir).and_then(|d| d.sync_all()) {
        // Some file systems cannot flush a directory; the rename stands.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other.map_err(|e| {
            fail(format!(
                "the file was replaced, but flushing directory {} failed: {}",
                dir.display(),
                plain(&e)
            ))
        }),
    }
}

/// The directory `path` is in, or why `path` names no file in an existing
/// directory.
fn directory(path: &Path) -> Result<PathBuf> {
    let shown = path.display();
    let bad = |what: String| Err(anyhow!("cannot write --output {shown}: {what}"));
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return bad(
            "it ends in `/`, so it names a directory; give a file name, e.g. DIR/portprobe.prom"
                .into(),
        );
    }
    if path.file_name().is_none() {
        return bad("it names no file; give a file name, e.g. DIR/portprobe.prom".into());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return bad(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return bad(format!("directory {} does not exist", dir.display()));
        }
        Err(e) => return bad(format!("cannot use directory {}: {e}", dir.display())),
    }
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return bad(format!(
            "it is a directory; name a file in it, e.g. {}",
            path.join("portprobe.prom").display()
        ));
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

/// Why no file could be created in `dir`, as one message.
fn create_error(path: &Path, dir: &Path, e: &io::Error) -> anyhow::Error {
    let dir = dir.display();
    let why = match e.kind() {
        io::ErrorKind::PermissionDenied => format!("no permission to create files in {dir}"),
        io::ErrorKind::ReadOnlyFilesystem => format!("{dir} is on a read-only file system"),
        _ => format!("cannot create a file in {dir}: {}", plain(e)),
    };
    anyhow!("cannot write --output {}: {why}", path.display())
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
    fn paths_that_name_no_file_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let message = |p: &Path| format!("{:#}", check(p).unwrap_err());
        let slash = PathBuf::from(format!("{}/new/", dir.path().display()));
        assert!(
            message(&slash).contains("ends in `/`"),
            "{}",
            message(&slash)
        );
        assert!(message(dir.path()).contains("is a directory; name a file in it"));
        let missing = dir.path().join("missing/x.prom");
        assert!(
            message(&missing).ends_with(&format!(
                "directory {} does not exist",
                dir.path().join("missing").display()
            )),
            "{}",
            message(&missing)
        );
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(message(&file.join("x")).ends_with("is not a directory"));
        assert!(message(Path::new("..")).contains("names no file"));
        check(&dir.path().join("x.prom")).unwrap();
        let long = dir.path().join("n".repeat(250));
        check(&long).unwrap();
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 1, "the check left a file behind");
    }

    #[test]
    fn a_long_name_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("n".repeat(250));
        write_atomically(&long, "report\n").unwrap();
        assert_eq!(std::fs::read_to_string(&long).unwrap(), "report\n");
    }
}
