//! Reading a file given on the command line (`--targets FILE`, `rules
//! --from FILE`, or `-`) with bounds on size and time: a regular file is
//! read at once; standard input and anything that is a stream rather than
//! a file (a FIFO, `<(command)`, a terminal, a device) is read on a thread
//! of its own and given up on at a deadline, so that a writer that never
//! comes, or never ends, cannot hang the run.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use nix::fcntl::OFlag;

/// What is read, its bounds, and the words its refusals use.
#[derive(Clone, Debug)]
pub struct Source {
    /// The source as errors name it: `targets file hosts.txt`, `standard
    /// input (--targets -)`.
    pub name: String,
    /// The most bytes read; a larger source is refused.
    pub max_bytes: u64,
    /// What to give instead of a directory, a socket or a block device.
    pub give: &'static str,
    /// What to do about a source larger than `max_bytes`.
    pub too_large: &'static str,
    /// When reading began, and how long a stream may take to end.
    pub begun: Instant,
    /// How long a stream may take to end, from `begun`.
    pub max_time: Duration,
    /// The bound on time as errors name it, before its value: `--max-time`.
    pub time_bound: &'static str,
    /// What to do about a stream that did not end in time.
    pub too_slow: &'static str,
}

/// The bytes of `path` (`-` for standard input), at most
/// `source.max_bytes`, read within `source.max_time` of `source.begun`.
pub fn read(path: &Path, source: &Source) -> Result<Vec<u8>> {
    let stdin = path == Path::new("-");
    let name = &source.name;
    let limit = source.max_bytes;
    let read = if stdin {
        within(source, move || bounded(io::stdin().lock(), limit))?
    } else {
        let meta = std::fs::metadata(path).map_err(|e| anyhow!("cannot read {name}: {e}"))?;
        let kind = meta.file_type();
        if kind.is_file() {
            bounded(open_file(path, name)?, limit)
        } else if kind.is_fifo() || kind.is_char_device() {
            // Opening a FIFO waits for its writer: on the thread too.
            let owned = path.to_path_buf();
            within(source, move || bounded(File::open(owned)?, limit))?
        } else {
            bail!("{name} is {}: give {}", what(&meta), source.give);
        }
    };
    let bytes = read.map_err(|e| anyhow!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > limit {
        bail!("{name} is larger than {limit} bytes: {}", source.too_large);
    }
    Ok(bytes)
}

/// A regular file, opened without waiting (`O_NONBLOCK`) and checked on
/// the opened descriptor, in case it was swapped for a FIFO meanwhile.
fn open_file(path: &Path, name: &str) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
        .map_err(|e| anyhow!("cannot read {name}: {e}"))?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => bail!("{name} changed while being opened: run again"),
        Err(e) => bail!("cannot read {name}: {e}"),
    }
}

/// Up to one byte more than `limit` from `r`, so that a larger source is
/// seen to be one.
fn bounded(r: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(limit + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `read` run on a thread of its own, given up on once the source's time
/// has passed. A thread given up on stays blocked until the process exits.
fn within(
    source: &Source,
    read: impl FnOnce() -> io::Result<Vec<u8>> + Send + 'static,
) -> Result<io::Result<Vec<u8>>> {
    let name = &source.name;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("source".into())
        .spawn(move || {
            let _ = tx.send(read());
        })
        .map_err(|e| anyhow!("cannot start reading {name}: {e}"))?;
    let left = source.max_time.saturating_sub(source.begun.elapsed());
    match rx.recv_timeout(left) {
        Ok(result) => Ok(result),
        Err(_) => bail!(
            "{name} did not end within {} ({:?}): {}",
            source.time_bound,
            source.max_time,
            source.too_slow
        ),
    }
}

/// What a path that is neither a file, a FIFO nor a character device is,
/// as a noun phrase.
fn what(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `--targets` file, as `targets` reads one.
    fn targets(path: &Path, begun: Instant, max_time: Duration) -> Source {
        Source {
            name: format!("targets file {}", path.display()),
            max_bytes: 1 << 20,
            give: "a file with one host per line, or `--targets -` to read them from standard input",
            too_large: "split it into several runs",
            begun,
            max_time,
            time_bound: "--max-time",
            too_slow: "close it once the hosts are written, or give a regular file",
        }
    }

    fn read(path: &Path, begun: Instant, max_time: Duration) -> Result<Vec<u8>> {
        super::read(path, &targets(path, begun, max_time))
    }

    fn mkfifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    #[test]
    fn a_fifo_nobody_writes_is_given_up_on_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let begun = Instant::now();
        let e = read(&fifo, begun, Duration::from_millis(200)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "targets file {} did not end within --max-time (200ms): close it once the hosts are written, or give a regular file",
                fifo.display()
            )
        );
        assert!(begun.elapsed() >= Duration::from_millis(200));
        // Time already spent counts: nothing is left to wait.
        if let Some(long_ago) = Instant::now().checked_sub(Duration::from_secs(5)) {
            assert!(read(&fifo, long_ago, Duration::from_secs(1)).is_err());
        }
    }

    #[test]
    fn a_fifo_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "127.0.0.1\n::1\n").unwrap())
        };
        let bytes = read(&fifo, Instant::now(), Duration::from_secs(60)).unwrap();
        writer.join().unwrap();
        assert_eq!(bytes, b"127.0.0.1\n::1\n");
    }

    #[test]
    fn what_is_no_file_of_hosts_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limit = Duration::from_secs(60);
        let e = read(dir.path(), Instant::now(), limit).unwrap_err();
        assert!(e.to_string().ends_with("is a directory: give a file with one host per line, or `--targets -` to read them from standard input"), "{e}");
        let e = read(Path::new("/dev/zero"), Instant::now(), limit).unwrap_err();
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
        let e = read(&dir.path().join("none"), Instant::now(), limit).unwrap_err();
        assert!(e.to_string().starts_with("cannot read targets file"), "{e}");
    }
}
