//! The fixed-layout byte encoding that is signed and hashed (see README "Canonical
//! encoding"): a domain tag, then fields in a fixed order, integers big-endian, variable
//! fields length-prefixed. Unlike a protobuf encoding it does not depend on a library's
//! field order, default omission or unknown-field handling, so any language can rebuild it.

/// Builds canonical bytes; every encoding starts with a domain tag so bytes signed for one
/// purpose can never verify for another.
#[derive(Debug)]
pub struct Canonical(Vec<u8>);

impl Canonical {
    /// Starts an encoding with its domain tag, e.g. `HSN-LEDGER/RECORD/V1`.
    pub fn new(domain: &str) -> Self {
        let mut bytes = Vec::with_capacity(160);
        bytes.extend_from_slice(domain.as_bytes());
        bytes.push(0);
        Self(bytes)
    }

    /// Appends one byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    /// Appends a big-endian u32.
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian u64.
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends fixed-size bytes (keys, hashes, signatures) without a length.
    pub fn fixed(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }

    /// Appends a string with a big-endian u16 length; callers bound names well below 65535.
    pub fn str(mut self, v: &str) -> Self {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(&v.as_bytes()[..usize::from(len)]);
        self
    }

    /// Appends variable bytes with a big-endian u32 length.
    pub fn var(mut self, v: &[u8]) -> Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_fixed() {
        let bytes = Canonical::new("T")
            .u8(7)
            .u32(1)
            .u64(2)
            .str("ab")
            .var(&[9])
            .finish();
        assert_eq!(
            bytes,
            [
                b'T', 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, b'a', b'b', 0, 0, 0, 1, 9
            ]
        );
    }

    #[test]
    fn length_prefix_keeps_adjacent_strings_apart() {
        let a = Canonical::new("T").str("ab").str("c").finish();
        let b = Canonical::new("T").str("a").str("bc").finish();
        assert_ne!(a, b);
    }
}
