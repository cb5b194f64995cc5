//! The scanner's byte-level helpers: finding the next special byte, building field spans, and
//! keeping the buffer filled without losing the current record.

use super::{Parser, RAW_LIMIT, Span};
use std::io::{self, Read};

impl<R: Read> Parser<R> {
    /// The first index from `pos` whose class intersects `mask`, or `end`; `lanes` are the
    /// bytes of `mask`, one per word.
    ///
    /// Eight bytes at a time (SWAR) while they last: fields are mostly runs of ordinary bytes,
    /// and the byte-wise table loop was the scanner's main cost (wasm has no cheap SIMD here).
    // Always inlined: each call site then has its own constant stop set (and this is the
    // innermost loop; a call per field run cost about 2% of the scanner's time).
    #[inline(always)]
    pub(super) fn scan(&self, lanes: &[u64; 4], mask: u8) -> usize {
        let mut i = self.pos;
        while i + 8 <= self.end {
            let word = u64::from_le_bytes(self.buf[i..i + 8].try_into().expect("8 bytes"));
            let mut hits = 0;
            for &s in lanes {
                hits |= zero_bytes(word ^ s);
            }
            if hits != 0 {
                // The lowest flagged byte is exact (see `zero_bytes`); little-endian load, so
                // it is the first in memory.
                return i + (hits.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        let rest = &self.buf[i..self.end];
        match rest
            .iter()
            .position(|&b| self.class[usize::from(b)] & mask != 0)
        {
            Some(j) => i + j,
            None => self.end,
        }
    }

    /// A field starts at `pos`.
    #[inline]
    pub(super) fn begin_field(&mut self) {
        self.f_start = self.pos - self.rec_start;
        self.f_in_scratch = false;
    }

    /// Move to `stop`, past a run of the current field (copied only in scratch mode).
    #[inline]
    pub(super) fn take_run(&mut self, stop: usize) {
        if self.f_in_scratch && !self.oversized {
            self.scratch.extend_from_slice(&self.buf[self.pos..stop]);
        }
        self.pos = stop;
    }

    /// Continue the current field in `scratch`, starting with its content up to `buf[upto]`.
    pub(super) fn spill_to_scratch(&mut self, upto: usize) {
        if self.f_in_scratch || self.oversized {
            return;
        }
        self.f_scratch = self.scratch.len();
        let from = self.rec_start + self.f_start;
        self.scratch.extend_from_slice(&self.buf[from..upto]);
        self.f_in_scratch = true;
    }

    #[inline]
    pub(super) fn scratch_byte(&mut self, b: u8) {
        if self.f_in_scratch && !self.oversized {
            self.scratch.push(b);
        }
    }

    /// Count a line break byte seen inside a quoted field: `\r`, `\n` and `\r\n` are one each.
    pub(super) fn count_break(&mut self, b: u8, prev_cr: &mut bool) {
        if b == b'\r' {
            self.line += 1;
            *prev_cr = true;
        } else {
            if !*prev_cr {
                self.line += 1;
            }
            *prev_cr = false;
        }
    }

    /// The current field ends at `buf[end]` (unless it is in scratch); `trim` strips
    /// trailing blanks.
    pub(super) fn end_field(&mut self, end: usize, trim: bool) {
        if self.oversized {
            return;
        }
        let blank = |b: u8| b == b' ' || b == b'\t';
        let span = if self.f_in_scratch {
            let mut e = self.scratch.len();
            while trim && e > self.f_scratch && blank(self.scratch[e - 1]) {
                e -= 1;
            }
            Span {
                start: self.f_scratch,
                end: e,
                in_scratch: true,
            }
        } else {
            let mut e = end - self.rec_start;
            while trim && e > self.f_start && blank(self.buf[self.rec_start + e - 1]) {
                e -= 1;
            }
            Span {
                start: self.f_start,
                end: e,
                in_scratch: false,
            }
        };
        self.spans.push(span);
    }

    /// Skip empty lines before a record. `Ok(false)` at end of input.
    pub(super) fn skip_blank_lines(&mut self) -> io::Result<bool> {
        loop {
            if self.pos == self.end && !self.fill(self.pos)? {
                return Ok(false);
            }
            match self.buf[self.pos] {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                }
                b'\r' => {
                    self.pos += 1;
                    self.line += 1;
                    if self.pos == self.end {
                        self.fill(self.pos)?;
                    }
                    if self.pos < self.end && self.buf[self.pos] == b'\n' {
                        self.pos += 1;
                    }
                }
                _ => return Ok(true),
            }
        }
    }

    /// Refill inside a record, keeping the record's bytes unless it is already too long.
    pub(super) fn refill_in_record(&mut self) -> io::Result<bool> {
        if !self.oversized && self.pos - self.rec_start > self.dialect.max_record_bytes {
            let keep = (self.pos - self.rec_start).min(RAW_LIMIT);
            self.prefix.clear();
            self.prefix
                .extend_from_slice(&self.buf[self.rec_start..self.rec_start + keep]);
            self.spans.clear();
            self.scratch.clear();
            self.oversized = true;
        }
        let keep_from = if self.oversized {
            self.pos
        } else {
            self.rec_start
        };
        self.fill(keep_from)
    }

    /// Drop `buf[..keep_from]`, then read more. `Ok(false)` at end of input.
    pub(super) fn fill(&mut self, keep_from: usize) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if keep_from > 0 {
            self.buf.copy_within(keep_from..self.end, 0);
            self.end -= keep_from;
            self.pos -= keep_from;
            self.rec_start = self.rec_start.saturating_sub(keep_from);
            self.base += keep_from as u64;
        }
        if self.end == self.buf.len() {
            // A record longer than the buffer: grow (bounded by `max_record_bytes`).
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Flags the zero bytes of `v` (bit 7 of each such byte). The lowest flag is always a real
/// zero byte; a borrow may add false flags only above it, which `scan` never looks at.
#[inline]
pub(super) fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080
}
