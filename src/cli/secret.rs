//! The secret shared by `portprobe listen` and `--responder` probes: read
//! from a file or the environment, never from the command line (where `ps`
//! would show it to every user of the machine).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::wire::responder::{MIN_SECRET, Secret};

/// The environment variable that may hold the secret.
pub const ENV: &str = "PORTPROBE_SECRET";
/// The largest secret file read.
const MAX_FILE: u64 = 4096;

/// The secret from `file`, else from `$PORTPROBE_SECRET`; one final
/// newline of either is not part of it.
pub fn load(file: Option<&Path>) -> Result<Secret> {
    let bytes = match file {
        Some(path) => {
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
                .with_context(|| format!("cannot read the secret file {}", path.display()))?;
            if bytes.len() as u64 > MAX_FILE {
                bail!(
                    "the secret file {} is larger than {MAX_FILE} bytes: give a file with the secret alone",
                    path.display()
                );
            }
            bytes
        }
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
            "the shared secret is {len} bytes long: it needs at least {MIN_SECRET} (e.g. `head -c 32 /dev/urandom | base64 > key`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_the_secret_without_its_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "0123456789abcdefXYZ\n").unwrap();
        let from_file = load(Some(&path)).unwrap();
        assert_eq!(
            from_file,
            Secret::new(b"0123456789abcdefXYZ".to_vec()).unwrap()
        );
        std::fs::write(&path, "short\n").unwrap();
        let e = load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("5 bytes long: it needs at least 16"), "{e}");
        std::fs::write(&path, vec![b'a'; 5000]).unwrap();
        let e = load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("larger than 4096 bytes"), "{e}");
        let e = load(Some(&dir.path().join("none")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the secret file"), "{e}");
    }
}
