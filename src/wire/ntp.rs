//! NTP (RFC 5905), UDP port 123.
//!
//! The probe is one NTPv4 client-mode (mode 3) packet of 48 bytes. Following
//! the data-minimisation practice for NTP clients, every field is zero
//! except the first byte (LI 0, VN 4, mode 3) and the transmit timestamp,
//! which holds eight random bytes from the nonce. Control (mode 6) and
//! private (mode 7, `monlist`) requests are never sent: they can amplify and
//! many servers ignore them.
//!
//! A reply is a server-mode (mode 4) packet of at least 48 bytes whose origin
//! timestamp is our transmit timestamp (RFC 5905 section 8: the server copies
//! it there). With stratum 0 the reference ID may hold a kiss code (RFC 5905
//! section 7.4): `RATE`, `DENY` and `RSTR` are kiss-o'-death proper, telling
//! the client to slow down or go away, while `INIT` is what ntpsec sends
//! before its first synchronisation; chrony without a source sends stratum 0
//! with a zero reference ID. All of these are NTP servers answering.

use super::bytes::be64;
use super::{Nonce, ProbeContext, Reply, UdpRequest};

/// Length of the NTP header without extension fields or MAC.
pub const HEADER_LEN: usize = 48;

/// Offset of the origin timestamp in the header.
const ORIGIN_OFFSET: usize = 24;

/// Offset of the transmit timestamp in the header.
const TRANSMIT_OFFSET: usize = 40;

/// The leap indicator that means "clock unsynchronised".
const LEAP_UNSYNCHRONISED: u8 = 3;

/// The stratum that RFC 5905 reserves for "unsynchronised".
const STRATUM_UNSYNCHRONISED: u8 = 16;

/// An NTP probe: a client request whose transmit timestamp is
/// [`Nonce::u64`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    transmit: u64,
    datagram: Vec<u8>,
}

impl Request {
    /// Builds the probe for one port.
    pub fn new(_ctx: &ProbeContext, nonce: &Nonce) -> Self {
        let transmit = nonce.u64();
        Request {
            transmit,
            datagram: request(transmit),
        }
    }
}

/// The 48-byte NTPv4 client request carrying `transmit` as its transmit
/// timestamp; all other fields after the first byte are zero.
pub fn request(transmit: u64) -> Vec<u8> {
    let mut packet = vec![0u8; HEADER_LEN];
    packet[0] = (4 << 3) | u8::from(Mode::Client);
    packet[TRANSMIT_OFFSET..].copy_from_slice(&transmit.to_be_bytes());
    packet
}

/// The association mode of an NTP packet (RFC 5905 figure 10). The field is
/// three bits wide and every value is assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 0: reserved.
    Reserved,
    /// 1: symmetric active.
    SymmetricActive,
    /// 2: symmetric passive.
    SymmetricPassive,
    /// 3: client.
    Client,
    /// 4: server.
    Server,
    /// 5: broadcast.
    Broadcast,
    /// 6: NTP control message.
    Control,
    /// 7: reserved for private use.
    Private,
}

impl From<u8> for Mode {
    /// The mode in the low three bits of `bits`.
    fn from(bits: u8) -> Self {
        match bits & 0x07 {
            1 => Mode::SymmetricActive,
            2 => Mode::SymmetricPassive,
            3 => Mode::Client,
            4 => Mode::Server,
            5 => Mode::Broadcast,
            6 => Mode::Control,
            7 => Mode::Private,
            _ => Mode::Reserved,
        }
    }
}

impl From<Mode> for u8 {
    fn from(mode: Mode) -> u8 {
        match mode {
            Mode::Reserved => 0,
            Mode::SymmetricActive => 1,
            Mode::SymmetricPassive => 2,
            Mode::Client => 3,
            Mode::Server => 4,
            Mode::Broadcast => 5,
            Mode::Control => 6,
            Mode::Private => 7,
        }
    }
}

/// The header fields of an NTP packet that the probe looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Leap indicator (0-3; 3 means unsynchronised).
    pub leap: u8,
    /// Version number (0-7).
    pub version: u8,
    /// Association mode.
    pub mode: Mode,
    /// Stratum: 0 kiss-o'-death or unspecified, 1 primary, 2-15 secondary,
    /// 16 unsynchronised.
    pub stratum: u8,
    /// Reference ID: a kiss code in a kiss-o'-death, else a source ID.
    pub reference_id: [u8; 4],
    /// Origin timestamp: in a server reply, the client's transmit timestamp.
    pub origin: u64,
    /// Transmit timestamp.
    pub transmit: u64,
}

impl Packet {
    /// The kiss code of a kiss-o'-death packet: stratum 0 with an ASCII
    /// reference ID such as `RATE`, `DENY` or `INIT` (RFC 5905 section 7.4).
    pub fn kiss_code(&self) -> Option<String> {
        if self.stratum != 0 {
            return None;
        }
        let end = self
            .reference_id
            .iter()
            .rposition(|b| *b != 0 && *b != b' ')
            .map_or(0, |last| last + 1);
        let code = self.reference_id.get(..end)?;
        let is_code = code.first().is_some_and(u8::is_ascii_uppercase)
            && code
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        is_code.then(|| String::from_utf8_lossy(code).into_owned())
    }

    /// Whether the kiss code tells the client to stop or slow down (`DENY`,
    /// `RSTR`, `RATE`), rather than report a state such as `INIT`.
    pub fn is_access_kiss(&self) -> bool {
        self.kiss_code()
            .is_some_and(|code| matches!(code.as_str(), "DENY" | "RSTR" | "RATE"))
    }

    /// Whether the server says its clock is not synchronised.
    pub fn unsynchronised(&self) -> bool {
        self.leap == LEAP_UNSYNCHRONISED
            || self.stratum == 0
            || self.stratum >= STRATUM_UNSYNCHRONISED
    }
}

/// Reads eight bytes at `offset` as a big-endian timestamp.
fn timestamp(bytes: &[u8], offset: usize) -> Option<u64> {
    be64(bytes, offset)
}

/// Parses the 48-byte NTP header at the start of `bytes` (extension fields
/// and MAC may follow and are ignored). `None` if it is shorter.
pub fn recognise(bytes: &[u8]) -> Option<Packet> {
    let header = bytes.get(..HEADER_LEN)?;
    let first = *header.first()?;
    Some(Packet {
        leap: first >> 6,
        version: (first >> 3) & 0x07,
        mode: Mode::from(first),
        stratum: *header.get(1)?,
        reference_id: header.get(12..16)?.try_into().ok()?,
        origin: timestamp(header, ORIGIN_OFFSET)?,
        transmit: timestamp(header, TRANSMIT_OFFSET)?,
    })
}

impl UdpRequest for Request {
    fn datagrams(&self) -> Vec<Vec<u8>> {
        vec![self.datagram.clone()]
    }

    fn recognise(&self, reply: &[u8]) -> Option<Reply> {
        let packet = recognise(reply)?;
        if packet.mode != Mode::Server || packet.origin != self.transmit {
            return None;
        }
        let detail = match packet.kiss_code() {
            Some(code) if packet.is_access_kiss() => format!("NTP server, kiss-o'-death {code}"),
            Some(code) => format!("NTP server, unsynchronised (kiss code {code})"),
            None if packet.unsynchronised() => {
                format!("NTP server, stratum {}, unsynchronised", packet.stratum)
            }
            None => format!("NTP server, stratum {}", packet.stratum),
        };
        Some(Reply::new("ntp", detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::{
        NONCE_3A7C, assert_bit_flips_refused, assert_other_replies_refused,
        assert_truncations_refused, byte_changes, datagrams, hex, id_field_property, mutations,
        other_nonce_property, other_nonces,
    };
    use proptest::prelude::*;

    /// The request this module builds for `NONCE_3A7C`, as sent to chronyd.
    const SENT: &str = include_str!("fixtures/ntp-request.hex");

    /// chronyd 4.3 with `local stratum 8` answering `SENT`.
    const CHRONY: &str = include_str!("fixtures/ntp-chrony-stratum8.hex");

    /// chronyd 4.3 with no time source answering `SENT`: LI 3, stratum 0,
    /// reference ID zero.
    const CHRONY_UNSYNCHRONISED: &str = include_str!("fixtures/ntp-chrony-unsynchronised.hex");

    /// ntpd from ntpsec 1.2.2 (Debian 1.2.2+dfsg1-1+deb12u1), never
    /// synchronised, answering `SENT`: LI 3, stratum 0, kiss code `INIT`.
    const NTPSEC_INIT: &str = include_str!("fixtures/ntp-ntpsec-init.hex");

    fn probe() -> Request {
        Request::new(&ProbeContext::default(), &NONCE_3A7C)
    }

    #[test]
    fn builds_the_request_chrony_answered() {
        assert_eq!(probe().datagrams(), vec![hex(SENT)]);
    }

    #[test]
    fn request_fields_sit_at_rfc_5905_offsets() {
        let packet = request(0x0102_0304_0506_0708);
        assert_eq!(packet.len(), 48);
        assert_eq!(packet[0] >> 6, 0, "LI 0");
        assert_eq!((packet[0] >> 3) & 7, 4, "VN 4");
        assert_eq!(packet[0] & 7, 3, "mode 3, client");
        assert!(packet[1..40].iter().all(|b| *b == 0), "all else zero");
        assert_eq!(
            packet[40..48],
            [1, 2, 3, 4, 5, 6, 7, 8],
            "transmit timestamp"
        );
    }

    #[test]
    fn recognises_chrony() {
        let reply = probe().recognise(&hex(CHRONY));
        assert_eq!(reply, Some(Reply::new("ntp", "NTP server, stratum 8")));
        let packet = recognise(&hex(CHRONY)).expect("an NTP packet");
        assert_eq!(packet.mode, Mode::Server);
        assert_eq!(packet.version, 4);
        assert_eq!(packet.origin, NONCE_3A7C.u64());
    }

    #[test]
    fn recognises_an_unsynchronised_chrony() {
        let reply = probe().recognise(&hex(CHRONY_UNSYNCHRONISED));
        assert_eq!(
            reply,
            Some(Reply::new("ntp", "NTP server, stratum 0, unsynchronised"))
        );
    }

    #[test]
    fn recognises_ntpsec_before_its_first_synchronisation() {
        let reply = probe().recognise(&hex(NTPSEC_INIT));
        assert_eq!(
            reply,
            Some(Reply::new(
                "ntp",
                "NTP server, unsynchronised (kiss code INIT)"
            ))
        );
    }

    #[test]
    fn a_kiss_o_death_is_still_an_ntp_server() {
        let mut kod = hex(CHRONY);
        kod[0] = 0xe4;
        kod[1] = 0;
        kod[12..16].copy_from_slice(b"RATE");
        let reply = probe().recognise(&kod);
        assert_eq!(
            reply,
            Some(Reply::new("ntp", "NTP server, kiss-o'-death RATE"))
        );
    }

    #[test]
    fn rejects_an_origin_timestamp_one_bit_away() {
        assert_bit_flips_refused(&probe(), &hex(CHRONY), 24..32);
    }

    #[test]
    fn rejects_other_modes() {
        for mode in [0u8, 1, 2, 3, 5, 6, 7] {
            let mut reply = hex(CHRONY);
            reply[0] = (reply[0] & !7) | mode;
            assert_eq!(probe().recognise(&reply), None, "mode {mode}");
        }
    }

    #[test]
    fn rejects_every_truncation() {
        assert_truncations_refused(&probe(), &hex(CHRONY));
    }

    #[test]
    fn rejects_its_own_request_and_other_protocols() {
        assert_eq!(probe().recognise(&hex(SENT)), None);
        assert_other_replies_refused(&probe(), "ntp");
    }

    proptest! {
        #[test]
        fn an_origin_timestamp_byte_changed_is_refused(
            which in 0..3usize,
            change in byte_changes(),
        ) {
            let fixture = [CHRONY, CHRONY_UNSYNCHRONISED, NTPSEC_INIT][which];
            id_field_property(&probe(), &hex(fixture), ORIGIN_OFFSET..ORIGIN_OFFSET + 8, change)?;
        }

        #[test]
        fn a_request_with_another_timestamp_refuses_the_captures(
            nonce in other_nonces(NONCE_3A7C, 0..8),
        ) {
            let request = Request::new(&ProbeContext::default(), &nonce);
            for fixture in [CHRONY, CHRONY_UNSYNCHRONISED, NTPSEC_INIT] {
                other_nonce_property(&request, &hex(fixture))?;
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in datagrams()) {
            let _ = recognise(&bytes);
            let _ = probe().recognise(&bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_capture(mutation in mutations()) {
            let _ = probe().recognise(&mutation.apply(&hex(CHRONY)));
        }
    }
}
