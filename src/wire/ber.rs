//! The subset of BER (ITU-T X.690) that SNMP speaks: definite lengths in
//! short and long form, one-byte tags, INTEGER, OCTET STRING, NULL, OBJECT
//! IDENTIFIER and SEQUENCE, encoded and decoded with every length checked
//! against the bytes that are there. A TLV whose length runs past its
//! enclosing bytes, a long form of more than four length bytes, an integer
//! wider than 64 bits or an arc wider than 32 bits is `None`.

use super::bytes;

/// BER universal tags.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
}

/// Appends a BER definite length (short form below 128, else long form
/// with the fewest length bytes).
fn push_length(out: &mut Vec<u8>, len: usize) {
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    match bytes.get(skip..).unwrap_or_default() {
        [] => out.push(0),
        [short] if *short < 0x80 => out.push(*short),
        long => {
            out.push(0x80 | long.len() as u8);
            out.extend_from_slice(long);
        }
    }
}

/// One TLV with the given tag and content.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// An INTEGER in minimal two's complement.
pub fn integer(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (first, next) = (bytes[start], bytes[start + 1]);
        let redundant = (first == 0x00 && next & 0x80 == 0) || (first == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    tlv(tag::INTEGER, bytes.get(start..).unwrap_or_default())
}

/// An OCTET STRING.
pub fn octets(value: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, value)
}

/// A SEQUENCE (or context-tagged PDU) of already encoded parts.
pub fn constructed(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// An OBJECT IDENTIFIER of at least two arcs (first arc 0-2, second below
/// 40 unless the first is 2). Callers pass constants.
pub fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut content = Vec::new();
    if let [first, second, rest @ ..] = arcs {
        push_base128(
            &mut content,
            first.saturating_mul(40).saturating_add(*second),
        );
        for arc in rest {
            push_base128(&mut content, *arc);
        }
    }
    tlv(tag::OID, &content)
}

/// Appends one OID sub-identifier in base 128, high bit marking continuation.
fn push_base128(out: &mut Vec<u8>, value: u32) {
    let mut groups = [0u8; 5];
    let mut count = 0;
    let mut rest = value;
    loop {
        groups[count] = (rest & 0x7f) as u8;
        count += 1;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for (i, group) in groups.iter().take(count).enumerate().rev() {
        out.push(if i == 0 { *group } else { group | 0x80 });
    }
}

/// A cursor over BER TLVs in a byte slice, on the checked byte reader.
pub struct Reader<'a> {
    bytes: bytes::Reader<'a>,
}

impl<'a> Reader<'a> {
    /// A reader at the first TLV of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes: bytes::Reader::new(bytes),
        }
    }

    /// Whether every TLV has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next TLV's tag and content. Only one-byte tags and definite
    /// lengths of up to four length bytes are accepted, as SNMP needs. A
    /// TLV that does not fit leaves the reader where it was.
    pub fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let mut r = self.bytes.clone();
        let tag = r.u8()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let first = r.u8()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return None;
            }
            r.take(count)?.iter().try_fold(0usize, |acc, d| {
                acc.checked_mul(256)?.checked_add(usize::from(*d))
            })?
        };
        let content = r.take(len)?;
        self.bytes = r;
        Some((tag, content))
    }

    /// The next TLV's content, which must carry `expected` as its tag.
    pub fn expect(&mut self, expected: u8) -> Option<&'a [u8]> {
        let (tag, content) = self.any()?;
        (tag == expected).then_some(content)
    }

    /// The next TLV as an INTEGER that fits an `i64`.
    pub fn integer(&mut self) -> Option<i64> {
        signed(self.expect(tag::INTEGER)?)
    }
}

/// A two's-complement integer of 1 to 8 bytes.
pub fn signed(content: &[u8]) -> Option<i64> {
    let (&first, _) = content.split_first()?;
    if content.len() > 8 {
        return None;
    }
    let fill = if first & 0x80 != 0 { 0xff } else { 0x00 };
    let mut bytes = [fill; 8];
    let start = 8usize.checked_sub(content.len())?;
    bytes.get_mut(start..)?.copy_from_slice(content);
    Some(i64::from_be_bytes(bytes))
}

/// A non-negative integer of 1 to 9 bytes (the ninth only as a leading zero
/// that keeps a 64-bit value positive).
pub fn unsigned(content: &[u8]) -> Option<u64> {
    let (&first, _) = content.split_first()?;
    if first & 0x80 != 0 {
        return None;
    }
    let digits = match content.len() {
        9 if first == 0 => content.get(1..)?,
        9.. => return None,
        _ => content,
    };
    digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(256)?.checked_add(u64::from(*d))
    })
}

/// An OBJECT IDENTIFIER's arcs; every sub-identifier must fit 32 bits.
pub fn decode_oid(content: &[u8]) -> Option<Vec<u32>> {
    let mut subids = Vec::new();
    let mut current: u32 = 0;
    let mut in_progress = false;
    for &byte in content {
        current = current
            .checked_mul(128)?
            .checked_add(u32::from(byte & 0x7f))?;
        in_progress = byte & 0x80 != 0;
        if !in_progress {
            subids.push(current);
            current = 0;
        }
    }
    if in_progress {
        return None;
    }
    let (&first, rest) = subids.split_first()?;
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut arcs = vec![a, b];
    arcs.extend_from_slice(rest);
    Some(arcs)
}

/// Dotted form of an OID, `1.3.6.1.2.1.1.1.0`.
pub fn dotted(arcs: &[u32]) -> String {
    arcs.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}
