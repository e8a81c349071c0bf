//! One way to read bytes from the network: every protocol module reads its
//! fields through these checked accessors, so a datagram shorter than its
//! header, or a length field that points past the end, is `None` and never
//! a panic, whatever arrives.

/// The `N` bytes at `at`, when the slice holds them.
fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The big-endian u16 at `at`.
pub fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    array(bytes, at).map(u16::from_be_bytes)
}

/// The big-endian 24-bit value at `at` (SLP's lengths).
pub fn be24(bytes: &[u8], at: usize) -> Option<u32> {
    let [high, middle, low] = array(bytes, at)?;
    Some(u32::from_be_bytes([0, high, middle, low]))
}

/// The big-endian u32 at `at`.
pub fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    array(bytes, at).map(u32::from_be_bytes)
}

/// The big-endian u64 at `at`.
pub fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    array(bytes, at).map(u64::from_be_bytes)
}

/// A cursor over a datagram that reads front to back, every read checked:
/// a read past the end is `None` and leaves the cursor where it was.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        self.rest = tail;
        Some(first)
    }

    /// The next two bytes, big-endian.
    pub fn be16(&mut self) -> Option<u16> {
        let value = be16(self.rest, 0)?;
        self.rest = self.rest.get(2..)?;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_fields_read_big_endian_and_never_past_the_end() {
        let bytes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        assert_eq!(be16(&bytes, 0), Some(0x0102));
        assert_eq!(be16(&bytes, 6), Some(0x0708));
        assert_eq!(be16(&bytes, 7), None);
        assert_eq!(be24(&bytes, 1), Some(0x02_0304));
        assert_eq!(be32(&bytes, 4), Some(0x0506_0708));
        assert_eq!(be32(&bytes, 5), None);
        assert_eq!(be64(&bytes, 0), Some(0x0102_0304_0506_0708));
        assert_eq!(be64(&bytes, 1), None);
        assert_eq!(be16(&bytes, usize::MAX), None);
        assert_eq!(be64(&[], 0), None);
    }

    #[test]
    fn a_reader_moves_only_on_a_whole_read() {
        let mut r = Reader::new(&[0xaa, 0x01, 0x02, 0x03]);
        assert_eq!(r.u8(), Some(0xaa));
        assert_eq!(r.take(4), None);
        assert_eq!(r.rest(), [0x01, 0x02, 0x03]);
        assert_eq!(r.be16(), Some(0x0102));
        assert_eq!(r.take(2), None);
        assert_eq!(r.take(1), Some(&[0x03][..]));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
        assert_eq!(r.be16(), None);
    }
}
