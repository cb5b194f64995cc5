//! The CSV record scanner: a byte-level state machine over one refillable buffer.
//!
//! Why not the `csv` crate: the extractor needs things it does not expose — the byte offset and
//! physical line where each record starts (counting `\r\n`, `\n` and old-Mac `\r` inside quoted
//! fields too), "this record ended inside an open quote at end of file", "this record has no
//! complete line break yet", a bounded record size that skips the rest of a runaway record
//! without holding it, and the raw record bytes for rejects. The scanner does all of that in
//! one pass, finds the special bytes eight at a time, and hands out fields as slices of the
//! record's own bytes: only a field with doubled quotes or escapes is copied (unescaped) into a
//! scratch buffer.
//!
//! Records are RFC 4180: a field is quoted only if it starts with the quote, and a closing
//! quote must be followed by the delimiter or the line break. Under [`Quotes::Strict`] (the
//! default) a quote anywhere else makes the record an [`Outcome::StrayQuote`]; under
//! [`Quotes::Lenient`] such a field is kept exactly as written, quotes included, because
//! guessing what a misplaced quote meant would change data. Beyond RFC 4180: fields may be
//! quoted with an escape byte (`\"`) as well as doubled quotes, `\r` alone is a line break, and
//! empty lines are skipped (they still count as lines).

mod dialect;
mod scan;
#[cfg(test)]
mod tests;

pub use dialect::{Dialect, Outcome, Quotes, StrayQuote};
use std::io::{self, Read};

/// Byte classes of the scanner's lookup table (bit flags, so one lookup tests a set).
const DELIM: u8 = 1;
const QUOTE: u8 = 2;
const ESCAPE: u8 = 4;
const CR: u8 = 8;
const LF: u8 = 16;
/// Bytes that end a field when it is not quoted.
const FIELD_END: u8 = DELIM | CR | LF;
/// Bytes that end a run of a quoted field. Line breaks stop it only to be counted.
const QUOTED_STOP: u8 = QUOTE | ESCAPE | CR | LF;

/// How many raw bytes of a record a reject keeps.
pub const RAW_LIMIT: usize = 4096;

/// The default read buffer: large enough that refills are rare, small enough for a sandbox.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

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
    /// The stop bytes of an unquoted and of a quoted field, each repeated in all eight lanes of
    /// a word (absent ones repeat a byte already in the set), and the class masks they stand for.
    unquoted_stops: [u64; 4],
    unquoted_mask: u8,
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
    /// The current record reached the end of the input without a complete line break.
    unfinished: bool,
    /// The current record went past `max_record_bytes`: its fields are dropped and only the
    /// first bytes are kept in `prefix`.
    oversized: bool,
    prefix: Vec<u8>,
    /// The first misplaced quote of the current record (strict quoting only).
    stray: Option<Stray>,
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

/// A misplaced quote: in which field, what kind, where the field starts in the record
/// (its opening quote, if any) and where the offending byte is.
#[derive(Debug, Clone, Copy)]
struct Stray {
    field: usize,
    kind: StrayQuote,
    start: usize,
    at: usize,
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
        let lanes = |b: u8| u64::from(b) * 0x0101_0101_0101_0101;
        let mut unquoted_stops = [lanes(dialect.delimiter), lanes(b'\r'), lanes(b'\n'), 0];
        unquoted_stops[3] = unquoted_stops[0];
        let mut unquoted_mask = FIELD_END;
        let quote = dialect.quote.unwrap_or(b'\n');
        let mut escape = quote;
        if let Some(q) = dialect.quote {
            class[usize::from(q)] |= QUOTE;
            if let Some(e) = dialect.escape.filter(|&e| e != q) {
                class[usize::from(e)] |= ESCAPE;
                escape = e;
            }
            if dialect.quotes == Quotes::Strict {
                // A quote must stop an unquoted run to be reported; leniently it is content.
                unquoted_stops[3] = lanes(q);
                unquoted_mask |= QUOTE;
            }
        }
        Self {
            src,
            class,
            unquoted_stops,
            unquoted_mask,
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
            unfinished: false,
            oversized: false,
            prefix: Vec::new(),
            stray: None,
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

    /// Whether the last record ran into the end of the input before a complete line break:
    /// none at all (an open quote included), or a `\r` as the very last byte, which may be the
    /// first half of a `\r\n`. A writer may still be appending to such a record.
    pub fn unfinished(&self) -> bool {
        self.unfinished
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

    /// The field of the last [`Outcome::StrayQuote`] exactly as written (from its first byte,
    /// opening quote included, to the delimiter or line break after the misplaced quote).
    pub fn stray_field(&self) -> &[u8] {
        let Some(Stray { start, at, .. }) = self.stray else {
            return &[];
        };
        let raw = self.raw();
        // After a stray quote the rest of the field was read unquoted, so its end is the first
        // delimiter or line break from there.
        let end = raw[at..]
            .iter()
            .position(|&b| self.class[usize::from(b)] & FIELD_END != 0)
            .map_or(raw.len(), |i| at + i);
        &raw[start..end]
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
        self.unfinished = false;
        self.oversized = false;
        self.stray = None;
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
                    let stop = self.scan(&self.unquoted_stops, self.unquoted_mask);
                    self.take_run(stop);
                    if stop == self.end {
                        continue;
                    }
                    let c = self.class[usize::from(self.buf[stop])];
                    if c & QUOTE != 0 {
                        // Only strict quoting stops here; the record is read on to its end.
                        self.note_stray(StrayQuote::InUnquotedField, self.f_start, stop);
                        self.pos += 1;
                        continue;
                    }
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
                    let stop = self.scan(&self.quoted_stops, QUOTED_STOP);
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
                        // `"ab"cd`: the opening quote is one byte before the content.
                        let opening = self.f_start.saturating_sub(1);
                        if self.dialect.quotes == Quotes::Strict {
                            let at = self.pos;
                            self.note_stray(StrayQuote::TextAfterClosingQuote, opening, at);
                        } else {
                            self.keep_verbatim(opening);
                            quoted = false;
                        }
                        state = State::Unquoted;
                    }
                }
            }
        }
    }

    /// Remember the first misplaced quote of the record: `field_start` (relative to the
    /// record) is where the field begins, `at` (in `buf`) the byte that broke the rules.
    #[cold]
    fn note_stray(&mut self, kind: StrayQuote, field_start: usize, at: usize) {
        if self.stray.is_none() && !self.oversized {
            self.stray = Some(Stray {
                field: self.spans.len(),
                kind,
                start: field_start,
                at: at - self.rec_start,
            });
        }
    }

    /// Lenient quoting met text after a closing quote: the field becomes its raw bytes from
    /// `opening` (relative to the record), so nothing the file holds is dropped or reordered.
    #[cold]
    fn keep_verbatim(&mut self, opening: usize) {
        if self.f_in_scratch {
            self.scratch.truncate(self.f_scratch);
            self.f_in_scratch = false;
        }
        self.f_start = opening;
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
            if self.pos == self.end {
                // The input ends right after the `\r`: its `\n` may not be written yet.
                self.unfinished = true;
            } else if self.buf[self.pos] == b'\n' {
                self.pos += 1;
            }
        }
        Ok(self.complete())
    }

    /// End of input inside a record: finish the open field unless a quote is still open.
    fn finish_at_eof(&mut self, state: State, quoted: bool, quote_line: u64) -> Outcome {
        self.rec_bytes = self.offset() - self.rec_offset;
        self.unfinished = true;
        match state {
            State::Quoted | State::Escaped => {
                // The open quote is the verdict; a stray quote before it is moot.
                self.stray = None;
                return Outcome::Unterminated { quote_line };
            }
            // The last line has no line break: it is still a record (whether it is complete
            // is the caller's call, see `unfinished`).
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

    fn complete(&mut self) -> Outcome {
        if self.oversized || self.rec_bytes > self.dialect.max_record_bytes as u64 {
            self.stray = None;
            Outcome::Oversized {
                bytes: self.rec_bytes,
            }
        } else if let Some(Stray { field, kind, .. }) = self.stray {
            Outcome::StrayQuote { field, kind }
        } else {
            Outcome::Record
        }
    }
}
