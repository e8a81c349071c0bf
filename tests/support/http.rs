//! The exporter's tests speak HTTP/1.1 by hand: one GET per connection (a
//! chunked body put together), and `portprobe serve` started where its
//! first line says it serves.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::proc::KillOnDrop;

/// An HTTP response: the status code, the head (status line and headers),
/// and the body.
#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub head: String,
    pub body: String,
}

/// GETs `path` from `at`, with `headers` (each line ending in `\r\n`).
pub fn get(at: SocketAddr, path: &str, headers: &str) -> io::Result<Response> {
    let mut s = TcpStream::connect(at)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\n{headers}\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let bad = || io::Error::other(format!("not an HTTP response: {raw:?}"));
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(bad)?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let body = if head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"))
    {
        dechunk(body).ok_or_else(bad)?
    } else {
        body.to_string()
    };
    Ok(Response {
        code,
        head: head.to_string(),
        body,
    })
}

/// A chunked body's content (RFC 9112 section 7.1), or `None` when it is
/// not one.
fn dechunk(mut raw: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = raw.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        raw = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// Starts `cmd` (a `portprobe serve`) and returns it with the address its
/// first line says it serves on (`serving on http://ADDR: ...`).
pub fn start_exporter(cmd: &mut Command) -> (KillOnDrop, SocketAddr) {
    let mut child = KillOnDrop::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::inherit())).unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let at = line
        .strip_prefix("serving on http://")
        .and_then(|l| l.split_once(": "))
        .and_then(|(addr, _)| addr.parse().ok())
        .unwrap_or_else(|| panic!("not where it serves: {line}"));
    (child, at)
}
