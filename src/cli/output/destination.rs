//! Where `--output FILE` really writes. FILE is followed through symbolic
//! links to what it names: a regular file (or no file yet), which is
//! replaced in its own directory; a character device or a FIFO, which is
//! written through as a shell redirection would, never replaced; or one of
//! the process's own descriptors (`/dev/stdout`, `/dev/fd/N`,
//! `/proc/self/fd/N`), which is written as it is, whatever it leads to.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// The most symbolic links followed from one output name, as the kernel's
/// own limit (`ELOOP` after 40).
const MAX_LINKS: usize = 40;

/// What an output name leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// The process's standard output or standard error, written as it is.
    Stream(Stream),
    /// Opened for writing, written and closed each time; never replaced.
    Through {
        /// The name to open.
        path: PathBuf,
        /// What it is.
        kind: Kind,
    },
    /// A regular file, or a name with no file yet: replaced atomically (a
    /// new file renamed over it) in the directory it is in.
    Replace(PathBuf),
}

/// One of the standard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Descriptor 1.
    Stdout,
    /// Descriptor 2.
    Stderr,
}

/// What a write-through destination is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A character device (`/dev/null`, a terminal).
    CharDevice,
    /// A named pipe.
    Fifo,
    /// Another of the process's descriptors, opened by its name in `/proc`
    /// like a shell redirection (`>`) would.
    Descriptor(u32),
}

/// What `given` leads to, or why it cannot be an output (as the end of a
/// sentence that starts with the output's name).
pub fn resolve(given: &Path) -> Result<Destination, String> {
    if given == Path::new("-") {
        return Ok(Destination::Stream(Stream::Stdout));
    }
    let mut path = given.to_path_buf();
    for _ in 0..=MAX_LINKS {
        if let Some(fd) = descriptor_name(&path) {
            return Ok(descriptor(fd));
        }
        // Neither a file nor a link: a new file is created there, or the
        // replacing writer says why none can be.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(Destination::Replace(path));
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            if let Some(fd) = descriptor_link(&path) {
                return Ok(descriptor(fd));
            }
            followable(&path, &meta)?;
            let target = std::fs::read_link(&path)
                .map_err(|e| format!("cannot read the symbolic link {}: {e}", path.display()))?;
            // Relative to the link's own directory; an absolute target
            // replaces the whole path.
            path = parent(&path).join(target);
            continue;
        }
        let through = |kind| {
            Ok(Destination::Through {
                path: path.clone(),
                kind,
            })
        };
        return if kind.is_file() {
            Ok(Destination::Replace(path))
        } else if kind.is_char_device() {
            through(Kind::CharDevice)
        } else if kind.is_fifo() {
            through(Kind::Fifo)
        } else if kind.is_dir() {
            Err(if path == given {
                format!(
                    "it is a directory; name a file in it, e.g. {}",
                    given.join("portprobe.prom").display()
                )
            } else {
                format!(
                    "it leads to the directory {}; name a file in it, e.g. {}",
                    path.display(),
                    path.join("portprobe.prom").display()
                )
            })
        } else {
            let what = if kind.is_block_device() {
                "a block device"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "neither a file, a character device nor a FIFO"
            };
            let shown = if path == given {
                "it".to_string()
            } else {
                format!("it leads to {}, which", path.display())
            };
            Err(format!(
                "{shown} is {what}; give a regular file, a character device or a FIFO"
            ))
        };
    }
    Err(format!(
        "more than {MAX_LINKS} symbolic links lead on from it; give the file itself"
    ))
}

fn descriptor(fd: u32) -> Destination {
    match fd {
        1 => Destination::Stream(Stream::Stdout),
        2 => Destination::Stream(Stream::Stderr),
        n => Destination::Through {
            path: PathBuf::from(format!("/proc/self/fd/{n}")),
            kind: Kind::Descriptor(n),
        },
    }
}

/// The directory a path is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The descriptor a name for one of the process's own descriptors stands
/// for, by its spelling: `/dev/stdin`, `/dev/stdout`, `/dev/stderr`,
/// `/dev/fd/N`, `/proc/self/fd/N`, `/proc/thread-self/fd/N` and
/// `/proc/PID/fd/N` with this process's id. Shells treat these names so
/// even where `/dev` lacks them.
fn descriptor_name(path: &Path) -> Option<u32> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => parts.push("/"),
            Component::Normal(s) => parts.push(s.to_str()?),
            _ => return None,
        }
    }
    let me = std::process::id().to_string();
    match parts.as_slice() {
        ["/", "dev", "stdin"] => Some(0),
        ["/", "dev", "stdout"] => Some(1),
        ["/", "dev", "stderr"] => Some(2),
        ["/", "dev", "fd", n] => number(n),
        ["/", "proc", "self" | "thread-self", "fd", n] => number(n),
        ["/", "proc", pid, "fd", n] if *pid == me => number(n),
        _ => None,
    }
}

/// The descriptor a symbolic link stands for when it is one of the kernel's
/// links in this process's `/proc/PID/fd` (or a thread's), however it was
/// reached.
fn descriptor_link(link: &Path) -> Option<u32> {
    let dir = std::fs::canonicalize(parent(link)).ok()?;
    let me = std::process::id().to_string();
    let parts: Vec<&str> = dir
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    let own = match parts.as_slice() {
        ["/", "proc", pid, "fd"] => *pid == me,
        ["/", "proc", pid, "task", _, "fd"] => *pid == me,
        _ => false,
    };
    if !own {
        return None;
    }
    number(link.file_name()?.to_str()?)
}

/// A descriptor number as `/proc` spells it: decimal, no sign, no leading
/// zero.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Refuses to follow another user's symbolic link in a sticky directory
/// that anyone may write (`/tmp`), where it may have been planted to aim a
/// privileged writer at a file of the planter's choosing: the rule the
/// kernel applies with `fs.protected_symlinks`. A link owned by this user
/// or by the directory's owner is followed.
fn followable(link: &Path, meta: &Metadata) -> Result<(), String> {
    let dir = parent(link);
    let Ok(d) = std::fs::metadata(dir) else {
        return Ok(());
    };
    let me = nix::unistd::geteuid().as_raw();
    if d.mode() & 0o1002 == 0o1002 && meta.uid() != me && meta.uid() != d.uid() {
        return Err(format!(
            "{} is a symbolic link of another user (uid {}) in {}, a sticky directory anyone can write: not followed, as the kernel's fs.protected_symlinks would not; give the file it names instead",
            link.display(),
            meta.uid(),
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_names_by_spelling() {
        let me = std::process::id();
        for (name, fd) in [
            ("/dev/stdin", Some(0)),
            ("/dev/stdout", Some(1)),
            ("/dev/stderr", Some(2)),
            ("/dev/fd/7", Some(7)),
            ("/dev//fd/7", Some(7)),
            ("/proc/self/fd/1", Some(1)),
            ("/proc/thread-self/fd/12", Some(12)),
            (&format!("/proc/{me}/fd/2"), Some(2)),
            ("/proc/1/fd/2", None),
            ("/dev/fd/01", None),
            ("/dev/fd/+1", None),
            ("/dev/fd/", None),
            ("/dev/fd/1/x", None),
            ("dev/stdout", None),
            ("/dev/../dev/stdout", None),
            ("/dev/null", None),
        ] {
            assert_eq!(descriptor_name(Path::new(name)), fd, "{name}");
        }
    }

    #[test]
    fn what_names_lead_to() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = d.join("file");
        std::fs::write(&file, "x").unwrap();
        std::os::unix::fs::symlink("file", d.join("rel")).unwrap();
        std::os::unix::fs::symlink(d.join("rel"), d.join("chain")).unwrap();
        std::os::unix::fs::symlink("missing", d.join("dangling")).unwrap();
        std::os::unix::fs::symlink("/dev/null", d.join("null")).unwrap();
        std::os::unix::fs::symlink("/proc/self/fd/1", d.join("out")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        std::os::unix::fs::symlink(".", d.join("here")).unwrap();
        let at = |name: &str| resolve(&d.join(name));
        assert_eq!(at("file"), Ok(Destination::Replace(file.clone())));
        assert_eq!(at("rel"), Ok(Destination::Replace(d.join("file"))));
        assert_eq!(at("chain"), Ok(Destination::Replace(d.join("file"))));
        assert_eq!(at("dangling"), Ok(Destination::Replace(d.join("missing"))));
        assert_eq!(at("new"), Ok(Destination::Replace(d.join("new"))));
        assert_eq!(
            at("null"),
            Ok(Destination::Through {
                path: "/dev/null".into(),
                kind: Kind::CharDevice
            })
        );
        assert_eq!(at("out"), Ok(Destination::Stream(Stream::Stdout)));
        assert_eq!(
            resolve(Path::new("/dev/stderr")),
            Ok(Destination::Stream(Stream::Stderr))
        );
        assert_eq!(
            resolve(Path::new("-")),
            Ok(Destination::Stream(Stream::Stdout))
        );
        assert_eq!(
            resolve(Path::new("/dev/fd/5")),
            Ok(Destination::Through {
                path: "/proc/self/fd/5".into(),
                kind: Kind::Descriptor(5)
            })
        );
        let e = at("loop").unwrap_err();
        assert!(e.starts_with("more than 40 symbolic links"), "{e}");
        let e = at("here").unwrap_err();
        assert!(e.starts_with("it leads to the directory"), "{e}");
        let e = resolve(d).unwrap_err();
        assert!(e.starts_with("it is a directory"), "{e}");
    }
}
