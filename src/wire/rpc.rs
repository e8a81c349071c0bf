//! ONC RPC version 2 (RFC 5531) over UDP: the portmapper/rpcbind (port 111),
//! NFS (port 2049) and the "Mac OS X RPC-based services" range 600-1023.
//!
//! The request is a CALL of procedure 0, the NULL procedure every RPC program
//! must implement, with AUTH_NONE credentials and verifier and the XID taken
//! from the nonce. The portmapper probe calls program 100000 version 2, the NFS
//! probe program 100003 version 3.
//!
//! For the 600-1023 range the program behind a port is unknown, so that probe
//! calls program 100000 version 2 as well: an RPC server answers a call for a
//! program it does not serve with an accepted reply saying PROG_UNAVAIL (or
//! PROG_MISMATCH for a version it lacks), and any such reply proves an RPC
//! service listens there.
//!
//! A reply counts when it is an RPC REPLY (message type 1) carrying our XID,
//! whether accepted (SUCCESS, PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL,
//! GARBAGE_ARGS, SYSTEM_ERR or an unknown status) or denied (RPC_MISMATCH or
//! AUTH_ERROR).

use super::bytes::be32;
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// The portmapper (rpcbind) program number.
pub const PORTMAPPER_PROGRAM: u32 = 100_000;
/// The NFS program number.
pub const NFS_PROGRAM: u32 = 100_003;

/// Message type of a call.
const CALL: u32 = 0;
/// Message type of a reply.
const REPLY: u32 = 1;
/// The only RPC protocol version (RFC 5531 section 8).
const RPC_VERSION: u32 = 2;
/// The AUTH_NONE flavor.
const AUTH_NONE: u32 = 0;
/// Longest opaque authentication body RFC 5531 allows.
const MAX_AUTH_BYTES: usize = 400;

/// An RPC NULL call for one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    protocol: &'static str,
    xid: u32,
    payload: Vec<u8>,
}

impl Request {
    /// Calls the portmapper: program 100000 version 2, NULL procedure.
    pub fn portmapper(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request::call("portmapper", nonce, PORTMAPPER_PROGRAM, 2)
    }

    /// Calls NFS: program 100003 version 3, NULL procedure.
    pub fn nfs(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request::call("nfs", nonce, NFS_PROGRAM, 3)
    }

    /// Calls a port whose RPC program is unknown: program 100000 version 2,
    /// whose PROG_UNAVAIL or PROG_MISMATCH answer from any other RPC server
    /// still proves an RPC service.
    pub fn any_program(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request::call("rpc", nonce, PORTMAPPER_PROGRAM, 2)
    }

    fn call(protocol: &'static str, nonce: &Nonce, program: u32, version: u32) -> Self {
        let xid = nonce.u32();
        Request {
            protocol,
            xid,
            payload: request(xid, program, version),
        }
    }
}

/// The NULL-procedure CALL with transaction ID `xid` to `program`, `version`,
/// with AUTH_NONE credentials and verifier (40 bytes).
pub fn request(xid: u32, program: u32, version: u32) -> Vec<u8> {
    [
        xid,
        CALL,
        RPC_VERSION,
        program,
        version,
        0, // procedure: NULL
        AUTH_NONE,
        0, // credential body length
        AUTH_NONE,
        0, // verifier body length
    ]
    .iter()
    .flat_map(|word| word.to_be_bytes())
    .collect()
}

/// A decoded RPC reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The transaction ID the reply carries.
    pub xid: u32,
    /// Whether the call was accepted or denied, and why.
    pub status: ReplyStatus,
}

/// The body of a reply: MSG_ACCEPTED or MSG_DENIED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyStatus {
    /// The server accepted the call; the status says what came of it.
    Accepted(AcceptStatus),
    /// The server rejected the call.
    Denied(RejectStatus),
}

/// The `accept_stat` of an accepted reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptStatus {
    /// The procedure ran.
    Success,
    /// The server does not serve the program called.
    ProgUnavail,
    /// The server serves the program, but only versions `low..=high`.
    ProgMismatch {
        /// Lowest version served.
        low: u32,
        /// Highest version served.
        high: u32,
    },
    /// The program has no such procedure.
    ProcUnavail,
    /// The procedure could not decode its arguments.
    GarbageArgs,
    /// The server failed (out of memory, for instance).
    SystemErr,
    /// A status RFC 5531 does not define.
    Unknown(u32),
}

/// The `reject_stat` of a denied reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectStatus {
    /// The server speaks RPC versions `low..=high` only.
    RpcMismatch {
        /// Lowest RPC version supported.
        low: u32,
        /// Highest RPC version supported.
        high: u32,
    },
    /// The server refused our credentials.
    AuthError(AuthStatus),
    /// A reject status RFC 5531 does not define.
    Unknown(u32),
}

/// Why authentication failed (`auth_stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStatus {
    /// AUTH_OK (not expected in a denial).
    Ok,
    /// Bad credential (seal broken).
    BadCred,
    /// The client must begin a new session.
    RejectedCred,
    /// Bad verifier (seal broken).
    BadVerf,
    /// Verifier expired or replayed.
    RejectedVerf,
    /// Rejected for security reasons: AUTH_NONE is not good enough.
    TooWeak,
    /// Bogus response verifier.
    InvalidResp,
    /// Reason unknown.
    Failed,
    /// A status this module does not name.
    Unknown(u32),
}

impl AcceptStatus {
    fn from_code(code: u32, rest: &[u8]) -> Option<AcceptStatus> {
        Some(match code {
            0 => AcceptStatus::Success,
            1 => AcceptStatus::ProgUnavail,
            2 => AcceptStatus::ProgMismatch {
                low: word(rest, 0)?,
                high: word(rest, 1)?,
            },
            3 => AcceptStatus::ProcUnavail,
            4 => AcceptStatus::GarbageArgs,
            5 => AcceptStatus::SystemErr,
            n => AcceptStatus::Unknown(n),
        })
    }
}

impl AuthStatus {
    fn from_code(code: u32) -> AuthStatus {
        match code {
            0 => AuthStatus::Ok,
            1 => AuthStatus::BadCred,
            2 => AuthStatus::RejectedCred,
            3 => AuthStatus::BadVerf,
            4 => AuthStatus::RejectedVerf,
            5 => AuthStatus::TooWeak,
            6 => AuthStatus::InvalidResp,
            7 => AuthStatus::Failed,
            n => AuthStatus::Unknown(n),
        }
    }

    fn name(self) -> String {
        match self {
            AuthStatus::Ok => "AUTH_OK".into(),
            AuthStatus::BadCred => "AUTH_BADCRED".into(),
            AuthStatus::RejectedCred => "AUTH_REJECTEDCRED".into(),
            AuthStatus::BadVerf => "AUTH_BADVERF".into(),
            AuthStatus::RejectedVerf => "AUTH_REJECTEDVERF".into(),
            AuthStatus::TooWeak => "AUTH_TOOWEAK".into(),
            AuthStatus::InvalidResp => "AUTH_INVALIDRESP".into(),
            AuthStatus::Failed => "AUTH_FAILED".into(),
            AuthStatus::Unknown(n) => format!("auth status {n}"),
        }
    }
}

impl ReplyStatus {
    /// One line for reports, e.g. `RPC reply: program unavailable`.
    pub fn describe(&self) -> String {
        match self {
            ReplyStatus::Accepted(status) => match status {
                AcceptStatus::Success => "RPC reply: success".into(),
                AcceptStatus::ProgUnavail => "RPC reply: program unavailable".into(),
                AcceptStatus::ProgMismatch { low, high } => {
                    format!("RPC reply: program version mismatch (serves {low}-{high})")
                }
                AcceptStatus::ProcUnavail => "RPC reply: procedure unavailable".into(),
                AcceptStatus::GarbageArgs => "RPC reply: garbage arguments".into(),
                AcceptStatus::SystemErr => "RPC reply: system error".into(),
                AcceptStatus::Unknown(n) => format!("RPC reply: accept status {n}"),
            },
            ReplyStatus::Denied(status) => match status {
                RejectStatus::RpcMismatch { low, high } => {
                    format!("RPC reply denied: RPC version mismatch (speaks {low}-{high})")
                }
                RejectStatus::AuthError(auth) => {
                    format!("RPC reply denied: authentication error {}", auth.name())
                }
                RejectStatus::Unknown(n) => format!("RPC reply denied: reject status {n}"),
            },
        }
    }
}

/// The big-endian 32-bit word at word index `index` of `bytes`.
fn word(bytes: &[u8], index: usize) -> Option<u32> {
    be32(bytes, index.checked_mul(4)?)
}

/// Parses an RPC REPLY; `None` for calls, truncated replies and anything else.
pub fn recognise(bytes: &[u8]) -> Option<Parsed> {
    let xid = word(bytes, 0)?;
    if word(bytes, 1)? != REPLY {
        return None;
    }
    let status = match word(bytes, 2)? {
        0 => {
            // opaque_auth verifier: flavor, length, body padded to 4 bytes.
            let verf_len = usize::try_from(word(bytes, 4)?).ok()?;
            if verf_len > MAX_AUTH_BYTES {
                return None;
            }
            let after_verf = 20 + verf_len.div_ceil(4) * 4;
            let rest = bytes.get(after_verf..)?;
            let code = word(rest, 0)?;
            ReplyStatus::Accepted(AcceptStatus::from_code(code, rest.get(4..)?)?)
        }
        1 => ReplyStatus::Denied(match word(bytes, 3)? {
            0 => RejectStatus::RpcMismatch {
                low: word(bytes, 4)?,
                high: word(bytes, 5)?,
            },
            1 => RejectStatus::AuthError(AuthStatus::from_code(word(bytes, 4)?)),
            n => RejectStatus::Unknown(n),
        }),
        _ => return None,
    };
    Some(Parsed { xid, status })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.payload.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let parsed = recognise(reply)?;
        (parsed.xid == self.xid).then(|| Reply::new(self.protocol, parsed.status.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{
        assert_bit_flips_refused, assert_other_replies_refused, assert_truncations_refused,
        byte_changes, capture_and_other_nonce, context_5a17, datagrams, hex, id_field_property,
        mutations, nonce_5a17, other_nonce_property,
    };
    use proptest::prelude::*;

    /// Captures: constructor, capture run, request sent, reply received,
    /// expected report. rpcbind 1.2.6 and nfs-ganesha 4.3 (VFS, NFSv3+v4,
    /// mountd on 20048), see fixtures/README.md.
    type Constructor = fn(&ProbeContext, &Nonce) -> Request;
    const CAPTURES: &[(Constructor, u8, &str, &str, &str, &str)] = &[
        (
            Request::portmapper,
            1,
            include_str!("fixtures/rpcbind-portmapper-request.hex"),
            include_str!("fixtures/rpcbind-portmapper-reply.hex"),
            "portmapper",
            "RPC reply: success",
        ),
        (
            Request::nfs,
            1,
            include_str!("fixtures/ganesha-nfs-request.hex"),
            include_str!("fixtures/ganesha-nfs-reply.hex"),
            "nfs",
            "RPC reply: success",
        ),
        (
            Request::any_program,
            2,
            include_str!("fixtures/ganesha-any-program-request.hex"),
            include_str!("fixtures/ganesha-prog-unavail-reply.hex"),
            "rpc",
            "RPC reply: program unavailable",
        ),
        (
            Request::any_program,
            3,
            include_str!("fixtures/ganesha-mountd-any-program-request.hex"),
            include_str!("fixtures/ganesha-mountd-prog-unavail-reply.hex"),
            "rpc",
            "RPC reply: program unavailable",
        ),
    ];

    fn words(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn call_layout_follows_rfc_5531() {
        let call = request(0x0102_0304, NFS_PROGRAM, 3);
        assert_eq!(call.len(), 40);
        assert_eq!(call[0..4], [1, 2, 3, 4], "xid");
        assert_eq!(call[4..8], [0, 0, 0, 0], "msg_type CALL");
        assert_eq!(call[8..12], [0, 0, 0, 2], "rpcvers 2");
        assert_eq!(call[12..16], 100_003u32.to_be_bytes(), "prog");
        assert_eq!(call[16..20], [0, 0, 0, 3], "vers");
        assert_eq!(call[20..24], [0, 0, 0, 0], "proc NULL");
        assert_eq!(call[24..32], [0; 8], "cred AUTH_NONE, empty body");
        assert_eq!(call[32..40], [0; 8], "verf AUTH_NONE, empty body");
    }

    #[test]
    fn constructors_call_the_right_programs_with_the_nonce_xid() {
        let ctx = ProbeContext::default();
        let nonce = Nonce([0xab; 16]);
        let xid = nonce.u32();
        let cases: [(Constructor, u32, u32); 3] = [
            (Request::portmapper, PORTMAPPER_PROGRAM, 2),
            (Request::nfs, NFS_PROGRAM, 3),
            (Request::any_program, PORTMAPPER_PROGRAM, 2),
        ];
        for (make, program, version) in cases {
            let sent = make(&ctx, &nonce).datagrams();
            assert_eq!(sent, vec![request(xid, program, version)]);
        }
    }

    #[test]
    fn generated_requests_drew_the_captured_replies() {
        for &(make, run, sent, received, protocol, detail) in CAPTURES {
            let req = make(&context_5a17(), &nonce_5a17(run));
            assert_eq!(req.datagrams(), vec![hex(sent)]);
            assert_eq!(
                req.recognise(&hex(received)),
                Some(Reply::new(protocol, detail))
            );
        }
    }

    #[test]
    fn a_reply_with_another_xid_is_not_ours() {
        for &(make, run, _, received, _, _) in CAPTURES {
            let req = make(&context_5a17(), &nonce_5a17(run));
            assert_bit_flips_refused(&req, &hex(received), 0..4);
        }
    }

    #[test]
    fn truncated_replies_are_refused() {
        for &(make, run, _, received, _, _) in CAPTURES {
            let req = make(&context_5a17(), &nonce_5a17(run));
            assert_truncations_refused(&req, &hex(received));
        }
    }

    #[test]
    fn other_protocols_replies_are_refused() {
        for &(make, run, _, _, _, _) in CAPTURES {
            let req = make(&context_5a17(), &nonce_5a17(run));
            assert_other_replies_refused(&req, "rpc");
        }
    }

    #[test]
    fn our_own_call_echoed_back_is_not_a_reply() {
        let req = Request::portmapper(&ProbeContext::default(), &Nonce([1; 16]));
        assert_eq!(req.recognise(&req.datagrams()[0]), None);
    }

    #[test]
    fn every_accept_and_reject_status_is_decoded() {
        let xid = 77;
        let accepted = |rest: &[u32]| {
            let mut w = vec![xid, REPLY, 0, AUTH_NONE, 0];
            w.extend_from_slice(rest);
            recognise(&words(&w)).map(|p| p.status)
        };
        let denied = |rest: &[u32]| {
            let mut w = vec![xid, REPLY, 1];
            w.extend_from_slice(rest);
            recognise(&words(&w)).map(|p| p.status)
        };
        use AcceptStatus as A;
        use ReplyStatus::{Accepted, Denied};
        assert_eq!(accepted(&[0]), Some(Accepted(A::Success)));
        assert_eq!(accepted(&[1]), Some(Accepted(A::ProgUnavail)));
        assert_eq!(
            accepted(&[2, 2, 4]),
            Some(Accepted(A::ProgMismatch { low: 2, high: 4 }))
        );
        assert_eq!(accepted(&[2, 2]), None, "mismatch without its high version");
        assert_eq!(accepted(&[3]), Some(Accepted(A::ProcUnavail)));
        assert_eq!(accepted(&[4]), Some(Accepted(A::GarbageArgs)));
        assert_eq!(accepted(&[5]), Some(Accepted(A::SystemErr)));
        assert_eq!(accepted(&[9]), Some(Accepted(A::Unknown(9))));
        assert_eq!(
            denied(&[0, 2, 2]),
            Some(Denied(RejectStatus::RpcMismatch { low: 2, high: 2 }))
        );
        assert_eq!(
            denied(&[1, 5]),
            Some(Denied(RejectStatus::AuthError(AuthStatus::TooWeak)))
        );
        assert_eq!(
            denied(&[1, 13]),
            Some(Denied(RejectStatus::AuthError(AuthStatus::Unknown(13))))
        );
        assert_eq!(denied(&[7]), Some(Denied(RejectStatus::Unknown(7))));
        assert_eq!(recognise(&words(&[xid, REPLY, 2, 0, 0, 0])), None);
    }

    #[test]
    fn the_verifier_body_is_skipped_with_its_padding() {
        // AUTH_SHORT-style verifier of 5 bytes, padded to 8, then PROG_MISMATCH.
        let mut reply = words(&[9, REPLY, 0, 2, 5]);
        reply.extend_from_slice(&[1, 2, 3, 4, 5, 0, 0, 0]);
        reply.extend(words(&[2, 3, 3]));
        let parsed = recognise(&reply).expect("reply");
        assert_eq!(
            parsed.status,
            ReplyStatus::Accepted(AcceptStatus::ProgMismatch { low: 3, high: 3 })
        );
        assert_eq!(
            parsed.status.describe(),
            "RPC reply: program version mismatch (serves 3-3)"
        );
        let oversized = words(&[9, REPLY, 0, 2, 404, 0]);
        assert_eq!(recognise(&oversized), None);
        let huge = words(&[9, REPLY, 0, 2, u32::MAX, 0]);
        assert_eq!(recognise(&huge), None);
    }

    proptest! {
        #[test]
        fn an_xid_byte_changed_is_refused(which in 0..CAPTURES.len(), change in byte_changes()) {
            let (make, run, _, received, _, _) = CAPTURES[which];
            let req = make(&context_5a17(), &nonce_5a17(run));
            id_field_property(&req, &hex(received), 0..4, change)?;
        }

        #[test]
        fn a_request_with_another_xid_refuses_the_captures(
            (which, nonce) in capture_and_other_nonce(
                CAPTURES.len(),
                |which| nonce_5a17(CAPTURES[which].1),
                0..4,
            ),
        ) {
            let (make, _, _, received, _, _) = CAPTURES[which];
            other_nonce_property(&make(&context_5a17(), &nonce), &hex(received))?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let req = Request::nfs(&context_5a17(), &nonce_5a17(1));
            let _ = req.recognise(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_captures(which in 0..CAPTURES.len(), mutation in mutations()) {
            let (make, run, _, received, _, _) = CAPTURES[which];
            let req = make(&context_5a17(), &nonce_5a17(run));
            let _ = req.recognise(&mutation.apply(&hex(received)));
        }
    }
}
