//! The exporter's tests speak HTTP/1.1 by hand: one GET per connection, and
//! `portprobe serve` started where its first line says it serves.

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
    Ok(Response {
        code,
        head: head.to_string(),
        body: body.to_string(),
    })
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
