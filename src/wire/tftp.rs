//! TFTP (RFC 1350), UDP port 69.
//!
//! The probe is a read request (RRQ, opcode 1) in `octet` mode for a file
//! that cannot exist, `portprobe-<nonce hex>.absent`. A server answers with
//! an ERROR packet (opcode 5; "File not found" or, when it refuses the
//! request, another code), or, should the file exist, with DATA block 1.
//! Either proves a TFTP server. No options are sent (RFC 2347), so no OACK
//! can come back and DATA holds at most 512 bytes.
//!
//! TFTP replies come from a new port (the server's transfer ID) and carry no
//! identifier of ours, so a reply is recognised by its structure alone: an
//! ERROR with a two-byte code and a printable message ending in its single
//! NUL, or DATA for block 1. Such a reply is
//! [`Match::ShapeFromHost`](super::Match::ShapeFromHost): it counts only from
//! the probed address, from any port.

use super::bytes::Reader;
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// Opcode of a read request.
const OPCODE_RRQ: u16 = 1;

/// Opcode of a DATA packet.
const OPCODE_DATA: u16 = 3;

/// Opcode of an ERROR packet.
const OPCODE_ERROR: u16 = 5;

/// Largest DATA payload without the blksize option.
const BLOCK_SIZE: usize = 512;

/// How much of an error message a reply's detail shows.
const MESSAGE_CHARS: usize = 80;

/// A TFTP probe: a read request for a file named after the nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    datagram: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        Request {
            datagram: request(&file_name(nonce)),
        }
    }
}

/// `portprobe-<32 hex digits of the nonce>.absent`.
pub fn file_name(nonce: &Nonce) -> String {
    let hex: String = nonce.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("portprobe-{hex}.absent")
}

/// The read request for `file` in octet mode: opcode, file name, NUL,
/// `octet`, NUL.
pub fn request(file: &str) -> Vec<u8> {
    let mut packet = OPCODE_RRQ.to_be_bytes().to_vec();
    packet.extend_from_slice(file.as_bytes());
    packet.push(0);
    packet.extend_from_slice(b"octet");
    packet.push(0);
    packet
}

/// A TFTP error code (RFC 1350 appendix, RFC 2347 for 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    NotDefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: option negotiation refused.
    OptionRefused,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for ErrorCode {
    fn from(n: u16) -> Self {
        match n {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionRefused,
            n => ErrorCode::Unknown(n),
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> u16 {
        match code {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionRefused => 8,
            ErrorCode::Unknown(n) => n,
        }
    }
}

/// A TFTP packet a server sends in answer to a read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// ERROR (opcode 5).
    Error {
        /// The error code.
        code: ErrorCode,
        /// The message, without its terminating NUL.
        message: String,
    },
    /// DATA (opcode 3).
    Data {
        /// The block number.
        block: u16,
        /// How many data bytes followed.
        len: usize,
    },
}

/// Whether a byte may appear in an error message: printable text, tab, CR
/// or LF (netascii), or a byte of a non-ASCII encoding.
fn message_byte(byte: u8) -> bool {
    !byte.is_ascii_control() || matches!(byte, b'\t' | b'\r' | b'\n')
}

/// Parses an ERROR (code, then a message whose only NUL is the last byte)
/// or a DATA packet of at most 512 data bytes. Anything else is `None`.
pub fn recognise(bytes: &[u8]) -> Option<Packet> {
    let mut reader = Reader::new(bytes);
    let opcode = reader.be16()?;
    let number = reader.be16()?;
    let rest = reader.rest();
    match opcode {
        OPCODE_ERROR => {
            let (&last, text) = rest.split_last()?;
            if last != 0 || !text.iter().all(|b| message_byte(*b)) {
                return None;
            }
            Some(Packet::Error {
                code: ErrorCode::from(number),
                message: String::from_utf8_lossy(text).into_owned(),
            })
        }
        OPCODE_DATA if rest.len() <= BLOCK_SIZE => Some(Packet::Data {
            block: number,
            len: rest.len(),
        }),
        _ => None,
    }
}

/// An error message fit for one line of a report.
fn one_line(message: &str) -> String {
    let flat: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = flat.trim();
    if trimmed.chars().count() > MESSAGE_CHARS {
        let cut: String = trimmed.chars().take(MESSAGE_CHARS).collect();
        format!("{cut}...")
    } else {
        trimmed.to_string()
    }
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.datagram.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let detail = match recognise(reply)? {
            Packet::Error { code, message } => {
                let message = one_line(&message);
                let code = u16::from(code);
                if message.is_empty() {
                    format!("TFTP ERROR {code}")
                } else {
                    format!("TFTP ERROR {code}: {message}")
                }
            }
            Packet::Data { block: 1, len } => format!("TFTP DATA block 1 ({len} bytes)"),
            Packet::Data { .. } => return None,
        };
        Some(Reply::shape_from_host("tftp", detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Match;
    use crate::wire::fixtures::{
        NONCE_3A7C, assert_bit_flips_refused, assert_other_replies_refused,
        assert_truncations_refused, byte_changes, datagrams, hex, layout_property, mutations,
    };
    use proptest::prelude::*;

    /// The read request this module builds for `NONCE_3A7C`, as sent to
    /// tftpd-hpa.
    const SENT: &str = include_str!("fixtures/tftp-request.hex");

    /// tftpd-hpa 5.2 answering `SENT`, from a new port.
    const HPA_ERROR: &str = include_str!("fixtures/tftp-hpa-error.hex");

    /// tftpd-hpa 5.2 sending the first block of an existing file.
    const HPA_DATA: &str = include_str!("fixtures/tftp-hpa-data.hex");

    fn probe() -> Request {
        Request::new(&ProbeContext::default(), &NONCE_3A7C)
    }

    #[test]
    fn builds_the_request_tftpd_answered() {
        assert_eq!(probe().datagrams(), vec![hex(SENT)]);
    }

    #[test]
    fn request_fields_sit_at_rfc_1350_offsets() {
        let packet = request("f.absent");
        assert_eq!(packet, b"\x00\x01f.absent\x00octet\x00");
        assert_eq!(
            file_name(&NONCE_3A7C),
            "portprobe-3a7c91e2b45f0d68c1e9f2a3b4c5d6e7.absent"
        );
    }

    #[test]
    fn recognises_the_file_not_found_error() {
        let reply = probe().recognise(&hex(HPA_ERROR));
        assert_eq!(
            reply,
            Some(Reply::shape_from_host(
                "tftp",
                "TFTP ERROR 1: File not found"
            ))
        );
        assert_eq!(
            recognise(&hex(HPA_ERROR)),
            Some(Packet::Error {
                code: ErrorCode::FileNotFound,
                message: "File not found".to_string()
            })
        );
    }

    #[test]
    fn recognises_data_block_one_only() {
        let reply = probe().recognise(&hex(HPA_DATA));
        assert_eq!(
            reply,
            Some(Reply::shape_from_host(
                "tftp",
                "TFTP DATA block 1 (16 bytes)"
            ))
        );
        let mut block_two = hex(HPA_DATA);
        block_two[3] = 2;
        assert_eq!(probe().recognise(&block_two), None);
    }

    #[test]
    fn rejects_a_changed_opcode() {
        for fixture in [HPA_ERROR, HPA_DATA] {
            assert_bit_flips_refused(&probe(), &hex(fixture), 0..2);
        }
    }

    #[test]
    fn rejects_every_truncation_of_the_error() {
        assert_truncations_refused(&probe(), &hex(HPA_ERROR));
    }

    #[test]
    fn errors_need_one_terminating_nul_and_text() {
        assert_eq!(recognise(&hex("0005 0001 4142")), None, "no NUL");
        assert_eq!(recognise(&hex("0005 0001 41 00 42 00")), None, "two NULs");
        assert_eq!(recognise(&hex("0005 0001 41 07 00")), None, "control byte");
        let reply = probe()
            .recognise(&hex("0005 0000 00"))
            .expect("empty message");
        assert_eq!(reply.detail, "TFTP ERROR 0");
        let reply = probe()
            .recognise(&hex("0005 0063 6e6f 0d0a 00"))
            .expect("netascii CR LF");
        assert_eq!(reply.detail, "TFTP ERROR 99: no");
        assert_eq!(ErrorCode::from(99), ErrorCode::Unknown(99));
    }

    #[test]
    fn data_is_at_most_one_block() {
        let mut full = hex("0003 0001");
        full.extend_from_slice(&[0; BLOCK_SIZE]);
        assert!(probe().recognise(&full).is_some());
        full.push(0);
        assert_eq!(probe().recognise(&full), None);
    }

    #[test]
    fn rejects_its_own_request_and_other_protocols() {
        assert_eq!(probe().recognise(&hex(SENT)), None);
        assert_other_replies_refused(&probe(), "tftp");
    }

    proptest! {
        #[test]
        fn data_with_its_opcode_or_block_changed_is_refused(change in byte_changes()) {
            layout_property(&probe(), &hex(HPA_DATA), Match::ShapeFromHost, &[0, 1, 2, 3], change)?;
        }

        #[test]
        fn an_error_with_its_opcode_or_terminator_changed_is_refused(change in byte_changes()) {
            let error = hex(HPA_ERROR);
            prop_assert_eq!(
                probe().recognise(&error).map(|reply| reply.matched),
                Some(Match::ShapeFromHost)
            );
            let changed = change.apply_among(&error, &[0, 1, error.len() - 1]);
            let recognised = probe().recognise(&changed).map(|reply| reply.matched);
            if changed[..4] == [0, 3, 0, 1] {
                // Opcode 3 makes DATA of the error, whose code 1 reads as
                // block 1: still a TFTP packet the probe can draw.
                prop_assert_eq!(recognised, Some(Match::ShapeFromHost));
            } else {
                prop_assert_eq!(recognised, None);
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_capture(
            data in any::<bool>(),
            mutation in mutations(),
        ) {
            let fixture = if data { HPA_DATA } else { HPA_ERROR };
            let _ = probe().recognise(&mutation.apply(&hex(fixture)));
        }
    }
}
