//! The secret shared by `portprobe listen` and `--responder` probes: read
//! from a file or the environment, never from the command line (where `ps`
//! would show it to every user of the machine).
//!
//! A secret file must be a regular file (after following links) that
//! others can neither read nor write and its group cannot write: as
//! OpenSSH refuses a private key others can read, a secret anyone on the
//! machine could read or change is refused. A group may read it (0640), so
//! that a service's group can share a key. It is opened with `O_NONBLOCK`
//! and checked on the opened descriptor, so a FIFO is refused at once
//! rather than waited on, and what is checked is what is read.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;

use crate::wire::responder::{MIN_SECRET, Secret};

/// The environment variable that may hold the secret.
pub const ENV: &str = "PORTPROBE_SECRET";
/// The largest secret file read.
const MAX_FILE: u64 = 4096;
/// Permission bits that refuse a secret file: readable or writable by
/// others, writable by its group.
const REFUSED_MODE: u32 = 0o026;

/// The secret from `file`, else from `$PORTPROBE_SECRET`; one final
/// newline of either is not part of it.
pub fn load(file: Option<&Path>) -> Result<Secret> {
    let bytes = match file {
        Some(path) => read_file(path)?,
        None => match std::env::var_os(ENV) {
            Some(v) => v.into_encoded_bytes(),
            None => bail!(
                "the shared secret is missing: give --secret-file FILE or set {ENV} (never on the command line)"
            ),
        },
    };
    let mut bytes = bytes;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let len = bytes.len();
    match Secret::new(bytes) {
        Some(s) => Ok(s),
        None => bail!(
            "the shared secret is {len} bytes long: it needs at least {MIN_SECRET} (e.g. `(umask 077; head -c 32 /dev/urandom | base64 > key)`)"
        ),
    }
}

/// The bytes of a secret file, checked as the module documentation says.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
        .with_context(|| format!("cannot read the secret file {shown}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the secret file {shown}"))?;
    if !meta.is_file() {
        bail!(
            "the secret file {shown} is {}, not a regular file: give a file holding the secret alone (e.g. `(umask 077; head -c 32 /dev/urandom | base64 > key)`)",
            kind(&meta)
        );
    }
    let mode = meta.mode() & 0o7777;
    if let Some(why) = exposed(mode) {
        bail!(
            "the secret file {shown} is {why} (mode {mode:04o}): make it private with `chmod 600 {shown}` (its group may read it: 0640)"
        );
    }
    if meta.len() > MAX_FILE {
        bail!(too_large(path));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the secret file {shown}"))?;
    if bytes.len() as u64 > MAX_FILE {
        bail!(too_large(path));
    }
    Ok(bytes)
}

fn too_large(path: &Path) -> String {
    format!(
        "the secret file {} is larger than {MAX_FILE} bytes: give a file with the secret alone",
        path.display()
    )
}

/// Who besides its owner (and its group, reading) may use a file of
/// `mode`, when that refuses it as a secret.
fn exposed(mode: u32) -> Option<String> {
    if mode & REFUSED_MODE == 0 {
        return None;
    }
    let mut who = Vec::new();
    match (mode & 0o004 != 0, mode & 0o002 != 0) {
        (true, true) => who.push("readable and writable by others"),
        (true, false) => who.push("readable by others"),
        (false, true) => who.push("writable by others"),
        (false, false) => {}
    }
    if mode & 0o020 != 0 {
        who.push("writable by its group");
    }
    Some(who.join(" and "))
}

/// What a file that is not a regular one is, as a noun phrase.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;

    /// Writes a file of `mode`.
    fn write(path: &Path, text: impl AsRef<[u8]>, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_gives_the_secret_without_its_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write(&path, "0123456789abcdefXYZ\n", 0o600);
        let from_file = load(Some(&path)).unwrap();
        assert_eq!(
            from_file,
            Secret::new(b"0123456789abcdefXYZ".to_vec()).unwrap()
        );
        write(&path, "short\n", 0o600);
        let e = load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("5 bytes long: it needs at least 16"), "{e}");
        write(&path, vec![b'a'; 5000], 0o600);
        let e = load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("larger than 4096 bytes"), "{e}");
        let e = load(Some(&dir.path().join("none")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the secret file"), "{e}");
    }

    #[test]
    fn which_modes_are_refused() {
        for (mode, why) in [
            (0o600, None),
            (0o400, None),
            (0o640, None),
            (0o700, None),
            (0o601, None),
            (0o644, Some("readable by others")),
            (0o604, Some("readable by others")),
            (0o602, Some("writable by others")),
            (
                0o666,
                Some("readable and writable by others and writable by its group"),
            ),
            (0o620, Some("writable by its group")),
            (0o660, Some("writable by its group")),
            (0o4644, Some("readable by others")),
        ] {
            assert_eq!(exposed(mode).as_deref(), why, "{mode:o}");
        }
    }

    #[test]
    fn an_exposed_or_irregular_file_is_refused_and_a_private_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let secret = "0123456789abcdefXYZ";
        for (mode, ok) in [(0o600, true), (0o640, true), (0o644, false), (0o666, false)] {
            write(&path, secret, mode);
            match load(Some(&path)) {
                Ok(s) => {
                    assert!(ok, "{mode:o} accepted");
                    assert_eq!(s, Secret::new(secret.as_bytes().to_vec()).unwrap());
                }
                Err(e) => {
                    assert!(!ok, "{mode:o}: {e}");
                    let e = e.to_string();
                    assert!(
                        e.contains(&format!(
                            "(mode {mode:04o}): make it private with `chmod 600 {}`",
                            path.display()
                        )),
                        "{e}"
                    );
                }
            }
        }
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = load(Some(&fifo)).unwrap_err().to_string();
        assert!(e.contains("is a FIFO, not a regular file"), "{e}");
        let e = load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        let e = load(Some(Path::new("/dev/zero"))).unwrap_err().to_string();
        assert!(
            e.contains("is a character device, not a regular file"),
            "{e}"
        );
        // A link is followed to the file it names.
        write(&path, secret, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(load(Some(&link)).is_ok());
    }
}
