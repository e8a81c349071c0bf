//! The exporter's tests speak HTTP/1.1 by hand: one GET per connection (a
//! chunked body put together), connections held open from a chosen source
//! address (idle or with half a request), the exporter's own series read
//! back, and `portprobe serve` started where its first line says it serves.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::proc::KillOnDrop;

/// An HTTP response: the status code, the head (status line and headers),
/// and the body.
#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub head: String,
    pub body: String,
}

/// The first line of a request head, and the `Host` header: sent alone, a
/// request the server waits to see the end of.
pub const HALF_A_REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n";

/// GETs `path` from `at`, with `headers` (each line ending in `\r\n`).
pub fn get(at: SocketAddr, path: &str, headers: &str) -> io::Result<Response> {
    let s = TcpStream::connect(at)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    request(s, at, path, headers)
}

/// As [`get`], giving up when connecting takes longer than `limit` or when
/// nothing comes for `limit`.
pub fn get_within(
    at: SocketAddr,
    path: &str,
    headers: &str,
    limit: Duration,
) -> io::Result<Response> {
    let s = TcpStream::connect_timeout(&at, limit)?;
    s.set_read_timeout(Some(limit))?;
    request(s, at, path, headers)
}

/// GETs `path` over `s`, a connection to `at` already open (a TLS stream,
/// say) whose reads are bounded by the caller, and reads the response to
/// its end.
pub fn request(
    mut s: impl Read + Write,
    at: SocketAddr,
    path: &str,
    headers: &str,
) -> io::Result<Response> {
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

/// A TCP connection to `at` from `source` (on loopback, any address of
/// 127.0.0.0/8 is a source of its own), within `limit`.
pub fn connect_from(source: IpAddr, at: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    s.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
    s.connect_timeout(&SockAddr::from(at), limit)?;
    Ok(s.into())
}

/// Reads and discards what `s` receives until the peer closes it (end of
/// stream or reset), for at most `limit`: how long that took, or `None`
/// while it is still open.
pub fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if started.elapsed() >= limit {
                    return None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// The value of `series` (a name with its labels, as the exposition
/// writes them) in `body`.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `q` encoded for a URL's query (a PromQL expression for Prometheus'
/// `/api/v1/query?query=`).
pub fn form_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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
/// first line says it serves on (`serving on http://ADDR: ...`, or
/// `https://` with TLS).
pub fn start_exporter(cmd: &mut Command) -> (KillOnDrop, SocketAddr) {
    start_exporter_with(cmd, Stdio::inherit())
}

/// As [`start_exporter`], its stderr going to `stderr` (a file the test
/// reads, for what the exporter says as it runs).
pub fn start_exporter_with(cmd: &mut Command, stderr: Stdio) -> (KillOnDrop, SocketAddr) {
    let mut child = KillOnDrop::spawn(cmd.stdout(Stdio::piped()).stderr(stderr)).unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let at = line
        .strip_prefix("serving on http://")
        .or_else(|| line.strip_prefix("serving on https://"))
        .and_then(|l| l.split_once(": "))
        .and_then(|(addr, _)| addr.parse().ok())
        .unwrap_or_else(|| panic!("not where it serves: {line}"));
    (child, at)
}
