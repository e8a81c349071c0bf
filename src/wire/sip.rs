//! SIP (RFC 3261), UDP port 5060.
//!
//! The request is an `OPTIONS sip:<target> SIP/2.0` with the headers RFC 3261
//! section 8.1.1 requires: a Via with a `z9hG4bK` branch from the nonce and
//! the `rport` parameter (RFC 3581, so that the answer comes back to our
//! source port rather than to 5060), Max-Forwards 70, From with a tag, To,
//! a Call-ID from the nonce, CSeq and Content-Length 0. IPv6 addresses are
//! written in brackets. A SIP server answers OPTIONS with its capabilities
//! (200 OK) or an error status; garbage gets no answer at all, which is why
//! the request must be a complete SIP message.
//!
//! A reply counts when it is a SIP/2.0 response whose Call-ID and top Via
//! branch are ours. The report gives the status line and the Server or
//! User-Agent header when the response carries one.

use std::net::IpAddr;

use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The magic cookie RFC 3261 section 8.1.1.7 puts at the start of branches.
const BRANCH_COOKIE: &str = "z9hG4bK";
/// Longest Server/User-Agent value quoted in a report.
const MAX_PRODUCT_CHARS: usize = 80;

/// An OPTIONS probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    call_id: String,
    branch: String,
    payload: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let ids = Ids::from_nonce(nonce);
        Request {
            payload: request(ctx.target, ctx.source, &ids),
            call_id: ids.call_id,
            branch: ids.branch,
        }
    }
}

/// The identifiers a request carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// The Via branch, `z9hG4bK` followed by hex.
    pub branch: String,
    /// The From tag.
    pub tag: String,
    /// The Call-ID.
    pub call_id: String,
}

impl Ids {
    /// Identifiers from `nonce`: the branch from its first eight bytes, the
    /// tag from its last eight, the Call-ID from all sixteen.
    pub fn from_nonce(nonce: &Nonce) -> Ids {
        Ids {
            branch: format!("{BRANCH_COOKIE}{:016x}", nonce.u64()),
            tag: format!("{:016x}", nonce.tail_u64()),
            call_id: format!("{:016x}{:016x}@portprobe", nonce.u64(), nonce.tail_u64()),
        }
    }
}

/// An address as a SIP host: IPv6 in brackets (RFC 3261 section 25.1).
fn host(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The OPTIONS request from `source` to `target` with identifiers `ids`.
pub fn request(target: IpAddr, source: IpAddr, ids: &Ids) -> Vec<u8> {
    let target = host(target);
    let source = host(source);
    format!(
        "OPTIONS sip:{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {source};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:portprobe@{source}>;tag={tag}\r\n\
         To: <sip:{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\
         \r\n",
        branch = ids.branch,
        tag = ids.tag,
        call_id = ids.call_id,
    )
    .into_bytes()
}

/// A decoded SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The status code, 100-699.
    pub code: u16,
    /// The reason phrase.
    pub reason: String,
    /// The Call-ID header.
    pub call_id: Option<String>,
    /// The branch parameter of the first Via.
    pub branch: Option<String>,
    /// The Server header, or failing that the User-Agent header.
    pub product: Option<String>,
}

impl Parsed {
    /// One line for reports, e.g. `SIP/2.0 200 OK (kamailio (5.6.3 (x86_64/linux)))`.
    pub fn describe(&self) -> String {
        let status = format!("SIP/2.0 {} {}", self.code, self.reason);
        match &self.product {
            Some(product) => format!("{status} ({product})"),
            None => status,
        }
    }
}

/// Printable text of a header value, cut to a report-sized length.
fn printable(value: &str, max: usize) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The value of the `branch` parameter of the first via-parm in `via`.
fn first_branch(via: &str) -> Option<String> {
    let first = via.split(',').next()?;
    first.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("branch")
            .then(|| value.trim().to_string())
    })
}

/// Parses a SIP/2.0 response: status line, then headers up to the blank line
/// (compact header names included). `None` for requests, for a head without
/// its closing blank line, and for a body shorter than its Content-Length:
/// those are truncated messages.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    let head_len = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let body_len = bytes.len().checked_sub(head_len.checked_add(4)?)?;
    let head = String::from_utf8_lossy(bytes.get(..head_len)?);
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("SIP/2.0 ")?;
    let (code_text, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code_text.len() != 3 || !code_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code_text.parse().ok()?;
    if !(100..=699).contains(&code) {
        return None;
    }
    let mut parsed = Parsed {
        code,
        reason: printable(reason, MAX_PRODUCT_CHARS),
        call_id: None,
        branch: None,
        product: None,
    };
    let mut user_agent = None;
    let mut via_seen = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "call-id" | "i" if parsed.call_id.is_none() => {
                parsed.call_id = Some(value.to_string());
            }
            "via" | "v" if !via_seen => {
                via_seen = true;
                parsed.branch = first_branch(value);
            }
            "server" if parsed.product.is_none() => {
                parsed.product = Some(printable(value, MAX_PRODUCT_CHARS));
            }
            "user-agent" if user_agent.is_none() => {
                user_agent = Some(printable(value, MAX_PRODUCT_CHARS));
            }
            "content-length" | "l" => {
                let declared: usize = value.parse().ok()?;
                if body_len < declared {
                    return None;
                }
            }
            _ => {}
        }
    }
    if parsed.product.is_none() {
        parsed.product = user_agent;
    }
    parsed.product = parsed.product.filter(|p| !p.is_empty());
    Some(parsed)
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.payload.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let parsed = recognise(reply)?;
        let ours = parsed.call_id.as_deref() == Some(self.call_id.as_str())
            && parsed.branch.as_deref() == Some(self.branch.as_str());
        ours.then(|| Reply::new("sip", parsed.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{
        assert_bit_flips_refused, assert_other_replies_refused, assert_truncations_refused,
        byte_changes, context_5a17, datagrams, hex, id_field_property, mutations, nonce_5a17,
        other_nonce_property, other_nonces,
    };
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    /// kamailio 5.6.3's answer to our OPTIONS (fixtures/README.md).
    const SENT: &str = include_str!("fixtures/kamailio-options.hex");
    const RECEIVED: &str = include_str!("fixtures/kamailio-200-ok.hex");

    fn captured_request() -> Request {
        Request::new(&context_5a17(), &nonce_5a17(1))
    }

    #[test]
    fn options_request_carries_every_mandatory_header() {
        let ids = Ids::from_nonce(&Nonce(*b"\x01\x23\x45\x67\x89\xab\xcd\xef01234567"));
        let sent = request(
            "192.0.2.7".parse().unwrap(),
            "192.0.2.1".parse().unwrap(),
            &ids,
        );
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "OPTIONS sip:192.0.2.7 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK0123456789abcdef;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:portprobe@192.0.2.1>;tag=3031323334353637\r\n\
             To: <sip:192.0.2.7>\r\n\
             Call-ID: 0123456789abcdef3031323334353637@portprobe\r\n\
             CSeq: 1 OPTIONS\r\n\
             Accept: application/sdp\r\n\
             Content-Length: 0\r\n\
             \r\n"
        );
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let ctx = ProbeContext {
            target: IpAddr::V6(Ipv6Addr::LOCALHOST),
            source: "2001:db8::1".parse().unwrap(),
            ..ProbeContext::default()
        };
        let sent = Request::new(&ctx, &Nonce([5; 16])).datagrams().remove(0);
        let text = String::from_utf8(sent).unwrap();
        assert!(text.starts_with("OPTIONS sip:[::1] SIP/2.0\r\n"), "{text}");
        assert!(
            text.contains("Via: SIP/2.0/UDP [2001:db8::1];branch="),
            "{text}"
        );
        assert!(text.contains("To: <sip:[::1]>\r\n"), "{text}");
    }

    #[test]
    fn generated_request_drew_the_captured_200_ok() {
        let req = captured_request();
        assert_eq!(req.datagrams(), vec![hex(SENT)]);
        assert_eq!(
            req.recognise(&hex(RECEIVED)),
            Some(Reply::new(
                "sip",
                "SIP/2.0 200 OK (kamailio (5.6.3 (x86_64/linux)))"
            ))
        );
    }

    /// Offsets of `value` inside `haystack`, which must contain it.
    fn span(haystack: &[u8], value: &str) -> std::ops::Range<usize> {
        let start = haystack
            .windows(value.len())
            .position(|w| w == value.as_bytes())
            .expect("value present");
        start..start + value.len()
    }

    #[test]
    fn a_reply_with_another_call_id_or_branch_is_not_ours() {
        let req = captured_request();
        let reply = hex(RECEIVED);
        let ids = Ids::from_nonce(&nonce_5a17(1));
        for value in [&ids.call_id, &ids.branch] {
            assert_bit_flips_refused(&req, &reply, span(&reply, value));
        }
    }

    #[test]
    fn truncated_replies_are_refused() {
        assert_truncations_refused(&captured_request(), &hex(RECEIVED));
    }

    #[test]
    fn other_protocols_replies_and_our_own_request_are_refused() {
        let req = captured_request();
        assert_other_replies_refused(&req, "sip");
        assert_eq!(req.recognise(&hex(SENT)), None);
    }

    #[test]
    fn compact_headers_and_user_agent_are_understood() {
        let req = Request::new(&ProbeContext::default(), &Nonce([0x42; 16]));
        let ids = Ids::from_nonce(&Nonce([0x42; 16]));
        let reply = format!(
            "SIP/2.0 404 Not Found\r\n\
             v: SIP/2.0/UDP 127.0.0.1;branch={};rport=5060, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKother\r\n\
             i: {}\r\n\
             User-Agent: Example phone 1.0\r\n\
             l: 4\r\n\
             \r\n\
             body",
            ids.branch, ids.call_id
        );
        assert_eq!(
            req.recognise(reply.as_bytes()),
            Some(Reply::new(
                "sip",
                "SIP/2.0 404 Not Found (Example phone 1.0)"
            ))
        );
        // The body falls short of its Content-Length: truncated.
        assert_eq!(req.recognise(&reply.as_bytes()[..reply.len() - 1]), None);
    }

    #[test]
    fn only_the_top_via_counts() {
        let req = Request::new(&ProbeContext::default(), &Nonce([0x42; 16]));
        let ids = Ids::from_nonce(&Nonce([0x42; 16]));
        let reply = format!(
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKproxy\r\n\
             Via: SIP/2.0/UDP 127.0.0.1;branch={}\r\n\
             Call-ID: {}\r\n\
             \r\n",
            ids.branch, ids.call_id
        );
        assert_eq!(req.recognise(reply.as_bytes()), None);
    }

    #[test]
    fn status_lines_are_checked() {
        for bad in [
            "SIP/2.0 20 OK\r\n\r\n",
            "SIP/2.0 2000 OK\r\n\r\n",
            "SIP/2.0 099 Low\r\n\r\n",
            "SIP/2.0 700 High\r\n\r\n",
            "SIP/3.0 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\n",
        ] {
            assert_eq!(recognise(bad.as_bytes()), None, "{bad:?}");
        }
        let parsed =
            recognise(b"SIP/2.0 183 Session Progress\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(
            (parsed.code, parsed.reason.as_str()),
            (183, "Session Progress")
        );
        assert_eq!(
            recognise(b"SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n"),
            None
        );
    }

    proptest! {
        #[test]
        fn a_call_id_or_branch_byte_changed_is_refused(
            branch in any::<bool>(),
            change in byte_changes(),
        ) {
            let reply = hex(RECEIVED);
            let ids = Ids::from_nonce(&nonce_5a17(1));
            let value = if branch { &ids.branch } else { &ids.call_id };
            id_field_property(&captured_request(), &reply, span(&reply, value), change)?;
        }

        #[test]
        fn a_request_with_other_ids_refuses_the_capture(
            nonce in other_nonces(nonce_5a17(1), 0..16),
        ) {
            let request = Request::new(&context_5a17(), &nonce);
            other_nonce_property(&request, &hex(RECEIVED))?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = captured_request().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_captures(mutation in mutations()) {
            let _ = captured_request().recognise(&mutation.apply(&hex(RECEIVED)));
        }
    }
}
