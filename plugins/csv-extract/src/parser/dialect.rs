//! What the scanner is asked to follow ([`Dialect`]) and what it reports ([`Outcome`]).

/// What to do with a quote where RFC 4180 allows none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quotes {
    /// The record is a reject ([`Outcome::StrayQuote`]).
    #[default]
    Strict,
    /// The field is kept verbatim, quote characters included.
    Lenient,
}

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
    /// Misplaced quotes: reject or keep verbatim.
    pub quotes: Quotes,
}

impl Default for Dialect {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: Some(b'"'),
            escape: None,
            trim: false,
            max_record_bytes: 1024 * 1024,
            quotes: Quotes::Strict,
        }
    }
}

/// Which misplaced quote a strict parse found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrayQuote {
    /// `ab"cd`: a quote in a field that did not start with one.
    InUnquotedField,
    /// `"ab"cd`: the quoted part ended but the field did not.
    TextAfterClosingQuote,
}

impl StrayQuote {
    /// What was found, in words, for a reject's reason.
    pub fn describe(self) -> &'static str {
        match self {
            Self::InUnquotedField => "quote inside an unquoted field",
            Self::TextAfterClosingQuote => "text after closing quote",
        }
    }
}

/// What [`Parser::next_record`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete record; its fields are in [`Parser::field`].
    Record,
    /// Strict quoting found a misplaced quote in field `field` (0-based); the record was read
    /// to its end as usual, and [`Parser::stray_field`] has the field as written.
    StrayQuote {
        /// Index of the first offending field.
        field: usize,
        /// What was wrong with it.
        kind: StrayQuote,
    },
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
