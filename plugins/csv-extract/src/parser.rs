//! The CSV record scanner: a byte-level state machine over one refillable buffer.
//!
//! Why not the `csv` crate: the extractor needs things it does not expose — the byte offset and
//! physical line where each record starts (counting `\r\n`, `\n` and old-Mac `\r` inside quoted
//! fields too), "this record ended inside an open quote at end of file", a bounded record size
//! that skips the rest of a runaway record without holding it, and the raw record bytes for
//! rejects. The scanner does all of that in one pass, finds the special bytes eight at a time,
//! and hands out fields as slices of the record's own bytes: only a field with doubled quotes
//! or escapes is copied (unescaped) into a scratch buffer.
//!
//! Records are RFC 4180 with the usual leniencies: a quote inside an unquoted field is literal,
//! text after a closing quote is appended to the field, fields may be quoted with an escape byte
//! (`\"`) as well as doubled quotes, and empty lines are skipped (they still count as lines).

use std::io::{self, Read};

/// Byte classes of the scanner's lookup table (bit flags, so one lookup tests a set).
const DELIM: u8 = 1;
const QUOTE: u8 = 2;
const ESCAPE: u8 = 4;
const CR: u8 = 8;
const LF: u8 = 16;
/// Bytes that end a run of an unquoted field.
const UNQUOTED_STOP: u8 = DELIM | CR | LF;
/// Bytes that end a run of a quoted field. Line breaks stop it only to be counted.
const QUOTED_STOP: u8 = QUOTE | ESCAPE | CR | LF;

/// How many raw bytes of a record a reject keeps.
pub const RAW_LIMIT: usize = 4096;

/// The default read buffer: large enough that refills are rare, small enough for a sandbox.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

/// The CSV dialect the scanner follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    /// Field separator, one ASCII byte.
    pub delimiter: u8,
    /// Quote byte; `None` turns quoting off (every quote is literal).
    pub quote: Option<u8>,
    /// Escape byte inside quoted fields; `None` means doubled quotes only.
    pub escape: Option<u8>,
    /// Strip spaces and tabs around fields (outside quotes).
    pub trim: bool,
    /// Records longer than this (without their line break) are rejected.
    pub max_record_bytes: usize,
}

impl Default for Dialect {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: Some(b'"'),
            escape: None,
            trim: false,
            max_record_bytes: 1024 * 1024,
        }
    }
}

/// What [`Parser::next_record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete record; its fields are in [`Parser::field`].
    Record,
    /// The file ended inside a quoted field that opened on `quote_line`.
    Unterminated {
        /// Physical line where the open quote is.
        quote_line: u64,
    },
    /// The record was longer than [`Dialect::max_record_bytes`]; it was skipped to its end.
    Oversized {
        /// Its length in bytes, without the line break.
        bytes: u64,
    },
}

/// Where the scanner is inside a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just saw a quote inside a quoted field: a doubled quote or the closing one.
    QuoteInQuoted,
    /// Just saw the escape byte inside a quoted field.
    Escaped,
    /// After a closing quote, before the delimiter or line break.
    AfterClose,
}

/// Reads CSV records from `R`, one at a time, into a reused field buffer.
///
/// It also tracks, for the caller's positions and checkpoints: the byte offset of everything
/// consumed (always a record boundary between calls) and the physical line number there.
pub struct Parser<R> {
    src: R,
    class: [u8; 256],
    /// The bytes of `UNQUOTED_STOP` and `QUOTED_STOP`, each repeated in all eight lanes of a
    /// word (absent ones repeat a byte already in the set).
    unquoted_stops: [u64; 3],
    quoted_stops: [u64; 4],
    dialect: Dialect,
    buf: Vec<u8>,
    /// Next byte to scan.
    pos: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// The source returned end of file; never read again.
    eof: bool,
    /// Source offset of `buf[0]`.
    base: u64,
    /// Physical line (1-based) of the byte at `pos`.
    line: u64,
    /// Index in `buf` where the current record starts (kept across refills).
    rec_start: usize,
    /// Source offset, line and length (without line break) of the current record.
    rec_offset: u64,
    rec_line: u64,
    rec_bytes: u64,
    /// The current record went past `max_record_bytes`: its fields are dropped and only the
    /// first bytes are kept in `prefix`.
    oversized: bool,
    prefix: Vec<u8>,
    /// Where each field of the current record is.
    spans: Vec<Span>,
    /// Contents of fields that are not one run of `buf` (doubled quotes, escapes).
    scratch: Vec<u8>,
    /// The field being read: its start and (for quoted fields) end in `buf`, relative to
    /// `rec_start` so that refills do not move them; whether it is in `scratch` instead, and
    /// where it starts there.
    f_start: usize,
    f_end: usize,
    f_in_scratch: bool,
    f_scratch: usize,
}

/// Where a field's content is: usually a run of the record's own bytes (no copy at all);
/// fields that needed unescaping are in the scratch buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    in_scratch: bool,
}

impl<R: Read> Parser<R> {
    /// A parser reading `src`, whose first byte is at source offset `offset` on physical line
    /// `line` (0 and 1 for a file read from its start).
    pub fn new(src: R, dialect: Dialect, offset: u64, line: u64) -> Self {
        Self::with_capacity(src, dialect, offset, line, DEFAULT_BUFFER)
    }

    /// Like [`Parser::new`] with a chosen initial buffer size (tests use tiny ones to cross
    /// buffer boundaries everywhere).
    pub fn with_capacity(src: R, dialect: Dialect, offset: u64, line: u64, cap: usize) -> Self {
        let mut class = [0u8; 256];
        class[usize::from(b'\r')] |= CR;
        class[usize::from(b'\n')] |= LF;
        class[usize::from(dialect.delimiter)] |= DELIM;
        let quote = dialect.quote.unwrap_or(b'\n');
        let mut escape = quote;
        if let Some(q) = dialect.quote {
            class[usize::from(q)] |= QUOTE;
            if let Some(e) = dialect.escape.filter(|&e| e != q) {
                class[usize::from(e)] |= ESCAPE;
                escape = e;
            }
        }
        let lanes = |b: u8| u64::from(b) * 0x0101_0101_0101_0101;
        Self {
            src,
            class,
            unquoted_stops: [lanes(dialect.delimiter), lanes(b'\r'), lanes(b'\n')],
            quoted_stops: [lanes(quote), lanes(escape), lanes(b'\r'), lanes(b'\n')],
            dialect,
            buf: vec![0; cap.max(1)],
            pos: 0,
            end: 0,
            eof: false,
            base: offset,
            line,
            rec_start: 0,
            rec_offset: offset,
            rec_line: line,
            rec_bytes: 0,
            oversized: false,
            prefix: Vec::new(),
            spans: Vec::with_capacity(64),
            scratch: Vec::new(),
            f_start: 0,
            f_end: 0,
            f_in_scratch: false,
            f_scratch: 0,
        }
    }

    /// Source offset just after the last record returned (plus any blank lines after it that
    /// were skipped while looking for the next one): always a record boundary.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Physical line number at [`Parser::offset`].
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The underlying source, e.g. to read a fingerprint. Callers must restore its position.
    pub fn source_mut(&mut self) -> &mut R {
        &mut self.src
    }

    /// The underlying source, e.g. to reposition it and start a new parser there.
    pub fn into_source(self) -> R {
        self.src
    }

    /// Source offset where the last record starts.
    pub fn record_offset(&self) -> u64 {
        self.rec_offset
    }

    /// Physical line where the last record starts.
    pub fn record_line(&self) -> u64 {
        self.rec_line
    }

    /// Number of fields of the last [`Outcome::Record`].
    pub fn field_count(&self) -> usize {
        self.spans.len()
    }

    /// Field `i` of the last record, unquoted and unescaped.
    pub fn field(&self, i: usize) -> &[u8] {
        let Span {
            start,
            end,
            in_scratch,
        } = self.spans[i];
        if in_scratch {
            &self.scratch[start..end]
        } else {
            &self.buf[self.rec_start + start..self.rec_start + end]
        }
    }

    /// The raw bytes of the last record without its line break; for an oversized record only
    /// its first [`RAW_LIMIT`] bytes.
    pub fn raw(&self) -> &[u8] {
        if self.oversized {
            &self.prefix
        } else {
            // `rec_bytes` fits: the whole record is in `buf`.
            &self.buf[self.rec_start..self.rec_start + self.rec_bytes as usize]
        }
    }

    /// Skip a UTF-8 byte order mark at the current position (call once, at offset 0).
    pub fn skip_bom(&mut self) -> io::Result<()> {
        while self.end - self.pos < 3 && self.fill(self.pos)? {}
        if self.buf[self.pos..self.end].starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.pos += 3;
        }
        Ok(())
    }

    /// Scan the next record. `Ok(None)` at end of input.
    pub fn next_record(&mut self) -> io::Result<Option<Outcome>> {
        if !self.skip_blank_lines()? {
            return Ok(None);
        }
        self.rec_start = self.pos;
        self.rec_offset = self.offset();
        self.rec_line = self.line;
        self.rec_bytes = 0;
        self.oversized = false;
        self.spans.clear();
        self.scratch.clear();

        let mut state = State::FieldStart;
        // Whether the current field was quoted (then `trim` leaves its end alone).
        let mut quoted = false;
        let mut quote_line = 0;
        // The previous byte inside a quoted field was `\r`, so a `\n` now is the same break.
        let mut prev_cr = false;
        loop {
            if self.pos == self.end && !self.refill_in_record()? {
                return Ok(Some(self.finish_at_eof(state, quoted, quote_line)));
            }
            match state {
                State::FieldStart => {
                    let b = self.buf[self.pos];
                    let c = self.class[usize::from(b)];
                    if c & DELIM != 0 {
                        self.begin_field();
                        self.end_field(self.pos, false);
                        self.pos += 1;
                    } else if c & QUOTE != 0 {
                        quoted = true;
                        quote_line = self.line;
                        prev_cr = false;
                        self.pos += 1;
                        self.begin_field();
                        state = State::Quoted;
                    } else if c & (CR | LF) != 0 {
                        self.begin_field();
                        self.end_field(self.pos, false);
                        return self.terminate(c).map(Some);
                    } else if self.dialect.trim && (b == b' ' || b == b'\t') {
                        self.pos += 1;
                    } else {
                        self.begin_field();
                        state = State::Unquoted;
                    }
                }
                State::Unquoted => {
                    let stop = self.scan(UNQUOTED_STOP);
                    self.take_run(stop);
                    if stop == self.end {
                        continue;
                    }
                    let c = self.class[usize::from(self.buf[stop])];
                    self.end_field(stop, self.dialect.trim && !quoted);
                    quoted = false;
                    if c & DELIM != 0 {
                        self.pos += 1;
                        state = State::FieldStart;
                    } else {
                        return self.terminate(c).map(Some);
                    }
                }
                State::Quoted => {
                    let stop = self.scan(QUOTED_STOP);
                    if stop > self.pos {
                        prev_cr = false;
                    }
                    self.take_run(stop);
                    if stop == self.end {
                        continue;
                    }
                    let b = self.buf[stop];
                    let c = self.class[usize::from(b)];
                    if c & QUOTE != 0 {
                        // Maybe the closing quote: the content would end here.
                        self.f_end = stop - self.rec_start;
                        state = State::QuoteInQuoted;
                    } else if c & ESCAPE != 0 {
                        self.spill_to_scratch(stop);
                        state = State::Escaped;
                    } else {
                        // A line break inside the field is part of the value.
                        self.count_break(b, &mut prev_cr);
                        self.scratch_byte(b);
                    }
                    self.pos += 1;
                }
                State::Escaped => {
                    let b = self.buf[self.pos];
                    self.pos += 1;
                    if b == b'\r' || b == b'\n' {
                        self.count_break(b, &mut prev_cr);
                    } else {
                        prev_cr = false;
                    }
                    self.scratch_byte(b);
                    state = State::Quoted;
                }
                State::QuoteInQuoted => {
                    let b = self.buf[self.pos];
                    if self.class[usize::from(b)] & QUOTE != 0 {
                        // A doubled quote stands for one quote: keep the first, skip this one.
                        if self.f_in_scratch {
                            self.scratch_byte(b);
                        } else {
                            self.spill_to_scratch(self.rec_start + self.f_end + 1);
                        }
                        self.pos += 1;
                        prev_cr = false;
                        state = State::Quoted;
                    } else {
                        state = State::AfterClose;
                    }
                }
                State::AfterClose => {
                    let b = self.buf[self.pos];
                    let c = self.class[usize::from(b)];
                    if c & DELIM != 0 {
                        self.end_field(self.rec_start + self.f_end, false);
                        quoted = false;
                        self.pos += 1;
                        state = State::FieldStart;
                    } else if c & (CR | LF) != 0 {
                        self.end_field(self.rec_start + self.f_end, false);
                        return self.terminate(c).map(Some);
                    } else if self.dialect.trim && (b == b' ' || b == b'\t') {
                        self.pos += 1;
                    } else {
                        // Lenient like most readers: `"ab"cd` is `abcd`.
                        self.spill_to_scratch(self.rec_start + self.f_end);
                        state = State::Unquoted;
                    }
                }
            }
        }
    }

    /// The first index from `pos` whose class intersects `mask`, or `end`.
    ///
    /// Eight bytes at a time (SWAR) while they last: fields are mostly runs of ordinary bytes,
    /// and the byte-wise table loop was the scanner's main cost (wasm has no cheap SIMD here).
    #[inline]
    fn scan(&self, mask: u8) -> usize {
        let specials = if mask == UNQUOTED_STOP {
            &self.unquoted_stops[..]
        } else {
            &self.quoted_stops[..]
        };
        let mut i = self.pos;
        while i + 8 <= self.end {
            let word = u64::from_le_bytes(self.buf[i..i + 8].try_into().expect("8 bytes"));
            let mut hits = 0;
            for &s in specials {
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
    fn begin_field(&mut self) {
        self.f_start = self.pos - self.rec_start;
        self.f_in_scratch = false;
    }

    /// Move to `stop`, past a run of the current field (copied only in scratch mode).
    #[inline]
    fn take_run(&mut self, stop: usize) {
        if self.f_in_scratch && !self.oversized {
            self.scratch.extend_from_slice(&self.buf[self.pos..stop]);
        }
        self.pos = stop;
    }

    /// Continue the current field in `scratch`, starting with its content up to `buf[upto]`.
    fn spill_to_scratch(&mut self, upto: usize) {
        if self.f_in_scratch || self.oversized {
            return;
        }
        self.f_scratch = self.scratch.len();
        let from = self.rec_start + self.f_start;
        self.scratch.extend_from_slice(&self.buf[from..upto]);
        self.f_in_scratch = true;
    }

    #[inline]
    fn scratch_byte(&mut self, b: u8) {
        if self.f_in_scratch && !self.oversized {
            self.scratch.push(b);
        }
    }

    /// Count a line break byte seen inside a quoted field: `\r`, `\n` and `\r\n` are one each.
    fn count_break(&mut self, b: u8, prev_cr: &mut bool) {
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
    fn end_field(&mut self, end: usize, trim: bool) {
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

    /// Consume the record's line break (class `c`, at `pos`) and finish the record.
    fn terminate(&mut self, c: u8) -> io::Result<Outcome> {
        self.rec_bytes = self.offset() - self.rec_offset;
        self.pos += 1;
        self.line += 1;
        if c & CR != 0 {
            // `\r\n` is one break; look ahead even across a refill so that the offset after
            // this record never splits it (a resume there would count an extra line).
            // Not `refill_in_record`: the `\r` is no content, so it must not make the
            // record count as too long.
            if self.pos == self.end {
                self.fill(if self.oversized {
                    self.pos
                } else {
                    self.rec_start
                })?;
            }
            if self.pos < self.end && self.buf[self.pos] == b'\n' {
                self.pos += 1;
            }
        }
        Ok(self.complete())
    }

    /// End of input inside a record: finish the open field unless a quote is still open.
    fn finish_at_eof(&mut self, state: State, quoted: bool, quote_line: u64) -> Outcome {
        self.rec_bytes = self.offset() - self.rec_offset;
        match state {
            State::Quoted | State::Escaped => return Outcome::Unterminated { quote_line },
            // The last line has no line break: it is still a record (see the crate docs).
            State::FieldStart => {
                // After a delimiter: an empty last field.
                self.begin_field();
                self.end_field(self.pos, false);
            }
            State::Unquoted => self.end_field(self.pos, self.dialect.trim && !quoted),
            State::QuoteInQuoted | State::AfterClose => {
                self.end_field(self.rec_start + self.f_end, false);
            }
        }
        self.complete()
    }

    fn complete(&self) -> Outcome {
        if self.oversized || self.rec_bytes > self.dialect.max_record_bytes as u64 {
            Outcome::Oversized {
                bytes: self.rec_bytes,
            }
        } else {
            Outcome::Record
        }
    }

    /// Skip empty lines before a record. `Ok(false)` at end of input.
    fn skip_blank_lines(&mut self) -> io::Result<bool> {
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
    fn refill_in_record(&mut self) -> io::Result<bool> {
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
    fn fill(&mut self, keep_from: usize) -> io::Result<bool> {
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
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that hands out at most `step` bytes per read, to cross every buffer boundary.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// (line, fields) of every record, or the outcome for rejects, plus the final offset/line.
    type Rec = (u64, Result<Vec<String>, Outcome>);

    fn parse_with(data: &[u8], dialect: &Dialect, step: usize, cap: usize) -> (Vec<Rec>, u64, u64) {
        let src = Trickle { data, step };
        let mut p = Parser::with_capacity(src, dialect.clone(), 0, 1, cap);
        p.skip_bom().unwrap();
        let mut out = Vec::new();
        while let Some(o) = p.next_record().unwrap() {
            let fields = match o {
                Outcome::Record => Ok((0..p.field_count())
                    .map(|i| String::from_utf8_lossy(p.field(i)).into_owned())
                    .collect()),
                other => Err(other),
            };
            out.push((p.record_line(), fields));
        }
        (out, p.offset(), p.line())
    }

    /// Parse with several buffer/read sizes and check they all agree.
    fn parse(data: &[u8], dialect: &Dialect) -> Vec<Rec> {
        let reference = parse_with(data, dialect, usize::MAX, DEFAULT_BUFFER);
        for (step, cap) in [(1, 1), (1, 4), (3, 2), (7, 16)] {
            assert_eq!(
                parse_with(data, dialect, step, cap),
                reference,
                "step {step} cap {cap}"
            );
        }
        assert_eq!(reference.1, data.len() as u64, "everything consumed");
        reference.0
    }

    fn ok(line: u64, fields: &[&str]) -> Rec {
        (line, Ok(fields.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn simple_lf_crlf_and_cr() {
        let d = Dialect::default();
        let want = vec![ok(1, &["a", "b"]), ok(2, &["1", "2"])];
        assert_eq!(parse(b"a,b\n1,2\n", &d), want);
        assert_eq!(parse(b"a,b\r\n1,2\r\n", &d), want);
        assert_eq!(parse(b"a,b\r1,2\r", &d), want);
        assert_eq!(parse(b"a,b\n1,2", &d), want, "no final line break");
    }

    #[test]
    fn quoted_newlines_count_physical_lines() {
        let d = Dialect::default();
        let data = b"h\n\"x\r\ny\"\n\"p\rq\nr\"\nlast\n";
        assert_eq!(
            parse(data, &d),
            vec![
                ok(1, &["h"]),
                ok(2, &["x\r\ny"]),
                ok(4, &["p\rq\nr"]),
                ok(7, &["last"])
            ]
        );
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let d = Dialect::default();
        let (recs, off, line) = parse_with(b"a\n\n\r\n\rb\n\n", &d, 2, 2);
        assert_eq!(recs, vec![ok(1, &["a"]), ok(5, &["b"])]);
        assert_eq!((off, line), (9, 7));
    }

    #[test]
    fn quotes_escapes_and_leniency() {
        let d = Dialect::default();
        assert_eq!(
            parse(b"\"a\"\"b\",\"\",x\"y,\"ab\"cd,\n", &d),
            vec![ok(1, &["a\"b", "", "x\"y", "abcd", ""])]
        );
        assert_eq!(
            parse(b"\"\"\"\"\"\",\"a\"\"\nb\"\"\"\"c\"d\"e\",\"\"\n", &d),
            vec![ok(1, &["\"\"", "a\"\nb\"\"cd\"e\"", ""])]
        );
        let e = Dialect {
            escape: Some(b'\\'),
            ..Dialect::default()
        };
        assert_eq!(
            parse(b"\"a\\\"b\",\"c\\\\\",d\\e\n", &e),
            vec![ok(1, &["a\"b", "c\\", "d\\e"])]
        );
        let none = Dialect {
            quote: None,
            ..Dialect::default()
        };
        assert_eq!(parse(b"\"a,b\"\n", &none), vec![ok(1, &["\"a", "b\""])]);
    }

    #[test]
    fn trim_strips_outside_quotes_only() {
        let d = Dialect {
            trim: true,
            delimiter: b';',
            ..Dialect::default()
        };
        assert_eq!(
            parse(b" a ;\t\" b \" ; c\t\n  \n", &d),
            vec![ok(1, &["a", " b ", "c"]), ok(2, &[""])]
        );
    }

    #[test]
    fn unterminated_quote_at_eof() {
        let d = Dialect::default();
        assert_eq!(
            parse(b"a,b\n1,\"x\ny\n", &d),
            vec![
                ok(1, &["a", "b"]),
                (2, Err(Outcome::Unterminated { quote_line: 2 }))
            ]
        );
    }

    #[test]
    fn oversized_records_are_skipped_whole() {
        let d = Dialect {
            max_record_bytes: 10,
            ..Dialect::default()
        };
        let data = b"a,b\n\"0123456789\n0123456789\",x\nc,d\n0123456789ab\n";
        assert_eq!(
            parse(data, &d),
            vec![
                ok(1, &["a", "b"]),
                (2, Err(Outcome::Oversized { bytes: 25 })),
                ok(4, &["c", "d"]),
                (5, Err(Outcome::Oversized { bytes: 12 })),
            ]
        );
        // The raw prefix of an oversized record survives even with a tiny buffer.
        let mut p = Parser::with_capacity(Trickle { data, step: 1 }, d, 0, 1, 1);
        p.next_record().unwrap();
        p.next_record().unwrap();
        assert!(p.raw().starts_with(b"\"0123456789"), "{:?}", p.raw());
    }

    #[test]
    fn bom_and_offsets() {
        let d = Dialect::default();
        let data = b"\xEF\xBB\xBFa,b\r\n1,2\r\n";
        let mut p = Parser::with_capacity(&data[..], d, 0, 1, 2);
        p.skip_bom().unwrap();
        assert_eq!(p.next_record().unwrap(), Some(Outcome::Record));
        assert_eq!(p.field(0), b"a");
        assert_eq!((p.record_offset(), p.offset(), p.line()), (3, 8, 2));
        assert_eq!(p.raw(), b"a,b");
        assert_eq!(p.next_record().unwrap(), Some(Outcome::Record));
        assert_eq!((p.record_offset(), p.offset(), p.line()), (8, 13, 3));
        assert_eq!(p.next_record().unwrap(), None);
    }

    #[test]
    fn word_scan_finds_the_first_special_byte() {
        let d = Dialect::default();
        // Every position of a delimiter inside and across 8-byte words, with high bytes
        // around it (which could fool a careless zero-byte test).
        for at in 0..20 {
            let mut line = vec![0xFFu8; 20];
            line[at] = b',';
            line.push(b'\n');
            let (recs, _, _) = parse_with(&line, &d, usize::MAX, 64);
            let Ok(fields) = &recs[0].1 else { panic!() };
            assert_eq!(fields.len(), 2, "delimiter at {at}");
            assert_eq!(fields[0].len(), at * 3, "U+FFFD per 0xFF byte");
        }
        // Byte 1 (0x01) is falsely flagged by the borrow from byte 0, but byte 0 comes first.
        assert_eq!(zero_bytes(0xFFFF_FFFF_FFFF_0100), 0x8080);
    }

    /// Random inputs from a hostile alphabet: every buffer and read size must agree (that is
    /// where resumable scanning goes wrong), nothing may panic, and everything is consumed.
    #[test]
    fn random_inputs_parse_the_same_at_any_buffer_size() {
        let alphabet = b"ab,\"\r\n \\\xC3\xA9;";
        let dialects = [
            Dialect::default(),
            Dialect {
                escape: Some(b'\\'),
                trim: true,
                ..Dialect::default()
            },
            Dialect {
                max_record_bytes: 5,
                delimiter: b';',
                ..Dialect::default()
            },
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for case in 0..3000 {
            let len = (case % 40) + 1;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    // xorshift64*: deterministic, no dependency.
                    seed ^= seed >> 12;
                    seed ^= seed << 25;
                    seed ^= seed >> 27;
                    let r = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
                    alphabet[(r >> 33) as usize % alphabet.len()]
                })
                .collect();
            parse(&data, &dialects[case % dialects.len()]);
        }
    }

    #[test]
    fn resume_mid_file() {
        let d = Dialect::default();
        let data = b"a\n\"x\ny\"\nz\n";
        let mut p = Parser::new(&data[8..], d, 8, 4);
        assert_eq!(p.next_record().unwrap(), Some(Outcome::Record));
        assert_eq!((p.record_line(), p.field(0)), (4, &b"z"[..]));
    }
}
