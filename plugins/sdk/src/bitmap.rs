//! Null bitmaps as the contract defines them: LSB-first, bit `i` set = row `i` is null.

/// Whether bit `i` of `bitmap` is set. Bits past the end of the bitmap count as unset, so a
/// short bitmap means "no further nulls" rather than a panic.
pub(crate) fn is_set(bitmap: &[u8], i: usize) -> bool {
    bitmap
        .get(i / 8)
        .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
}

/// A growable bitmap with one bit per pushed row.
#[derive(Debug, Default)]
pub(crate) struct BitmapBuilder {
    bytes: Vec<u8>,
    len: usize,
}

impl BitmapBuilder {
    pub(crate) fn with_capacity(bits: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bits.div_ceil(8)),
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, set: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if set {
            self.bytes[self.len / 8] |= 1 << (self.len % 8);
        }
        self.len += 1;
    }

    /// Forget every bit from `len` on. The cleared bits must really be zero: a later `push`
    /// only ever sets bits, it never clears them.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.bytes.truncate(len.div_ceil(8));
        if !len.is_multiple_of(8)
            && let Some(last) = self.bytes.last_mut()
        {
            *last &= (1u8 << (len % 8)) - 1;
        }
        self.len = len;
    }

    /// The bitmap, or `None` when no bit is set (the contract's "no nulls in this column").
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        self.bytes.iter().any(|&b| b != 0).then_some(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_lsb_first() {
        let mut b = BitmapBuilder::default();
        for i in 0..10 {
            b.push(i == 0 || i == 3 || i == 9);
        }
        let bytes = b.finish().unwrap();
        assert_eq!(bytes, vec![0b0000_1001, 0b0000_0010]);
        assert!(is_set(&bytes, 0) && is_set(&bytes, 3) && is_set(&bytes, 9));
        assert!(!is_set(&bytes, 1) && !is_set(&bytes, 8));
        assert!(!is_set(&bytes, 100), "past the end means not null");
    }

    #[test]
    fn no_set_bit_finishes_as_none() {
        let mut b = BitmapBuilder::default();
        (0..20).for_each(|_| b.push(false));
        assert_eq!(b.finish(), None);
    }

    #[test]
    fn truncate_clears_dropped_bits() {
        let mut b = BitmapBuilder::default();
        (0..12).for_each(|_| b.push(true));
        b.truncate(3);
        b.push(false);
        b.push(false);
        assert_eq!(b.finish().unwrap(), vec![0b0000_0111]);
    }
}
