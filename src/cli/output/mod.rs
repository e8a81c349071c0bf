//! `--output FILE`: the report written where FILE leads. A regular file (or
//! a new one) is replaced atomically, so that a reader never sees part of a
//! report; a character device or a FIFO is written through, never replaced;
//! the process's own descriptors (`-`, `/dev/stdout`, `/dev/fd/N`) are
//! written as they are. Symbolic links are followed, and stay links.
//!
//! [`check`] runs before probing so that an output that cannot be written
//! fails at once rather than after the run; [`write`] looks again each
//! time, since what FILE leads to may change between `--watch` rounds.

mod destination;
mod replace;
mod through;

use std::io::Write;
use std::path::Path;

use anyhow::{Result, anyhow};

use destination::{Destination, Stream};

/// Checks that a report can be written to `path`: it names a file (or a
/// device, a FIFO, a descriptor), and a regular file's directory exists and
/// a file can be created there. Nothing is opened but a probe file in that
/// directory, removed at once.
pub fn check(path: &Path) -> Result<()> {
    let checked = replace::name_a_file(path)
        .and_then(|()| destination::resolve(path))
        .and_then(|d| match d {
            Destination::Stream(_) => Ok(()),
            Destination::Through { path, kind } => through::check(&path, kind),
            Destination::Replace(file) => replace::check(&file),
        });
    checked.map_err(|why| refused(path, &why))
}

/// Writes `text` where `path` leads, as the module documentation says.
pub fn write(path: &Path, text: &str) -> Result<()> {
    let written = replace::name_a_file(path)
        .and_then(|()| destination::resolve(path))
        .and_then(|d| match d {
            Destination::Stream(Stream::Stdout) => {
                super::write_stdout(text).map_err(|e| format!("{e:#}"))
            }
            Destination::Stream(Stream::Stderr) => write_stderr(text),
            Destination::Through { path, kind } => through::write(&path, kind, text),
            Destination::Replace(file) => replace::write(&file, text),
        });
    written.map_err(|why| refused(path, &why))
}

fn refused(path: &Path, why: &str) -> anyhow::Error {
    anyhow!("cannot write --output {}: {why}", path.display())
}

/// Writes to stderr; a closed pipe is not an error, as for stdout.
fn write_stderr(text: &str) -> Result<(), String> {
    let mut err = std::io::stderr().lock();
    match err.write_all(text.as_bytes()).and_then(|()| err.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| format!("cannot write to standard error: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;
    use std::path::PathBuf;

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
    fn a_link_stays_a_link_and_its_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        check(&link).unwrap();
        write(&link, "new\n").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        // A dangling link: the file it names is created, as `>` would.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("made", &dangling).unwrap();
        write(&dangling, "made\n").unwrap();
        assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made")).unwrap(),
            "made\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn a_fifo_is_never_opened_by_the_check_and_one_with_no_reader_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No reader: an open for writing would block or fail; the check
        // opens nothing, so it passes, and the write is refused at once.
        check(&fifo).unwrap();
        let e = format!("{:#}", write(&fifo, "report\n").unwrap_err());
        assert_eq!(
            e,
            format!(
                "cannot write --output {}: it is a FIFO that nothing is reading: start its reader first (e.g. `cat FIFO`)",
                fifo.display()
            )
        );
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
