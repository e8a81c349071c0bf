//! Writing through a character device, a FIFO or a descriptor opened by
//! name, as a shell redirection does: opened for writing, written, closed;
//! never replaced.
//!
//! A FIFO is never opened before the report is ready (a reader would see
//! end-of-file at once). It is opened with `O_NONBLOCK`, so that a FIFO
//! nobody reads is refused (`ENXIO`) instead of blocking forever; the flag
//! is cleared before writing, so a slow reader is waited for.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::{AccessFlags, access};

use super::destination::Kind;

/// Checks, without opening it, that `path` can be written.
pub fn check(path: &Path, kind: Kind) -> Result<(), String> {
    if let Kind::Descriptor(n) = kind {
        return match std::fs::symlink_metadata(path) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("descriptor {n} is not open")),
        };
    }
    match access(path, AccessFlags::W_OK) {
        Ok(()) => Ok(()),
        Err(Errno::EROFS) => Err(format!("{} is on a read-only file system", what(kind))),
        Err(e) => Err(format!("cannot write to {}: {}", what(kind), e.desc())),
    }
}

/// Opens `path`, writes `text` and closes it.
pub fn write(path: &Path, kind: Kind, text: &str) -> Result<(), String> {
    let mut file = open(path, kind)?;
    file.write_all(text.as_bytes()).map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => format!("the reader of {} went away", what(kind)),
        _ => format!("cannot write to {}: {e}", what(kind)),
    })
}

fn open(path: &Path, kind: Kind) -> Result<File, String> {
    let mut options = OpenOptions::new();
    options
        .write(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits());
    // A descriptor's file is rewritten from its start, as `>` would.
    if let Kind::Descriptor(_) = kind {
        options.truncate(true);
    }
    let file = options.open(path).map_err(|e| {
        match (kind, e.raw_os_error().map(Errno::from_raw)) {
            (Kind::Fifo, Some(Errno::ENXIO)) => {
                "it is a FIFO that nothing is reading: start its reader first (e.g. `cat FIFO`)"
                    .to_string()
            }
            (Kind::Descriptor(n), Some(Errno::ENXIO)) => format!(
                "descriptor {n} is a socket or a pipe nobody reads, which cannot be opened by name; write to standard output (-o -) instead"
            ),
            (Kind::Descriptor(n), Some(Errno::ENOENT)) => format!("descriptor {n} is not open"),
            _ => format!("cannot open {}: {e}", what(kind)),
        }
    })?;
    let changed = match (kind, file.metadata()) {
        (Kind::CharDevice, Ok(m)) => !m.file_type().is_char_device(),
        (Kind::Fifo, Ok(m)) => !m.file_type().is_fifo(),
        (Kind::Descriptor(_), Ok(_)) => false,
        (_, Err(e)) => return Err(format!("cannot inspect {}: {e}", what(kind))),
    };
    if changed {
        return Err(format!(
            "it was replaced by something other than {} while being opened; run again",
            what(kind)
        ));
    }
    let flags = fcntl(&file, FcntlArg::F_GETFL)
        .and_then(|f| {
            let blocking = OFlag::from_bits_truncate(f) - OFlag::O_NONBLOCK;
            fcntl(&file, FcntlArg::F_SETFL(blocking))
        })
        .map_err(|e| format!("cannot make {} blocking: {}", what(kind), e.desc()));
    flags.map(|_| file)
}

/// The destination, as a phrase.
fn what(kind: Kind) -> String {
    match kind {
        Kind::CharDevice => "the character device".into(),
        Kind::Fifo => "the FIFO".into(),
        Kind::Descriptor(n) => format!("descriptor {n}"),
    }
}
