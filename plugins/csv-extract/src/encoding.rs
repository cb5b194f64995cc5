//! Text encodings of source files.
//!
//! UTF-8 is checked, not converted: the host validates every text cell again anyway, but a bad
//! byte must become a reject with its position here rather than fail a whole batch there.
//! Other ASCII-compatible encodings (windows-1252, latin-1, …) are decoded with `encoding_rs`,
//! only for records that contain a non-ASCII byte.

use encoding_rs::Encoding;
use std::borrow::Cow;

/// The encoding of a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 (a leading byte order mark is skipped).
    Utf8,
    /// An ASCII-compatible legacy encoding, decoded to UTF-8.
    Legacy(&'static Encoding),
}

impl TextEncoding {
    /// Look up a configured encoding label (WHATWG labels, plus `latin-1`).
    pub fn from_label(label: &str) -> Result<Self, String> {
        let norm = label.trim().to_ascii_lowercase();
        // `latin-1` is what people write; WHATWG spells it `latin1` (and maps it, like
        // `iso-8859-1`, to windows-1252, its superset).
        let norm = if norm == "latin-1" { "latin1" } else { &norm };
        match Encoding::for_label(norm.as_bytes()) {
            Some(enc) if enc == encoding_rs::UTF_8 => Ok(Self::Utf8),
            // Delimiters, quotes and line breaks are found byte-wise, so only encodings that
            // keep ASCII bytes as ASCII can be split before decoding (not UTF-16).
            Some(enc) if enc.is_ascii_compatible() && enc != encoding_rs::REPLACEMENT => {
                Ok(Self::Legacy(enc))
            }
            Some(enc) => Err(format!(
                "encoding \"{label}\" ({}) is not supported: fields are split byte-wise, so the \
                 encoding must be ASCII-compatible (utf-8, windows-1252, latin-1, …)",
                enc.name()
            )),
            None => Err(format!(
                "unknown encoding \"{label}\" (use utf-8, windows-1252, latin-1 or another \
                 WHATWG encoding label)"
            )),
        }
    }

    /// The canonical name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Legacy(enc) => enc.name(),
        }
    }

    /// Decode for humans (header names, reject text): never fails, replaces bad bytes.
    pub fn decode_lossy(self, bytes: &[u8]) -> String {
        match self {
            Self::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Self::Legacy(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
        }
    }

    /// Decode one field of a legacy encoding; `None` for a malformed byte sequence (possible
    /// in multi-byte encodings such as Shift_JIS, never in windows-1252).
    pub fn decode_field(self, bytes: &[u8]) -> Option<Cow<'_, str>> {
        match self {
            Self::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
            Self::Legacy(enc) => enc.decode_without_bom_handling_and_without_replacement(bytes),
        }
    }
}

/// At most `limit` bytes of `raw`, decoded lossily for a reject, without cutting a UTF-8
/// character in half.
pub fn raw_text(encoding: TextEncoding, raw: &[u8], limit: usize) -> String {
    let mut cut = raw.len().min(limit);
    if encoding == TextEncoding::Utf8 && cut < raw.len() {
        // Back up to a character boundary: continuation bytes are 0b10xx_xxxx.
        while cut > 0 && raw[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
    }
    let mut text = encoding.decode_lossy(&raw[..cut]);
    if cut < raw.len() {
        text.push('…');
    }
    text
}

/// A field quoted in a reject's reason: at most 64 bytes, with line breaks written as `\r` and
/// `\n` so that the reason stays one line (the reject's raw text has the record as it is).
pub fn shown(encoding: TextEncoding, field: &[u8]) -> String {
    raw_text(encoding, field, 64)
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(TextEncoding::from_label("utf-8"), Ok(TextEncoding::Utf8));
        assert_eq!(TextEncoding::from_label("UTF8"), Ok(TextEncoding::Utf8));
        for l in ["windows-1252", "latin-1", "Latin1", "iso-8859-1", "cp1252"] {
            assert_eq!(
                TextEncoding::from_label(l).unwrap().name(),
                "windows-1252",
                "{l}"
            );
        }
        assert!(
            TextEncoding::from_label("utf-16le")
                .unwrap_err()
                .contains("ASCII-compatible")
        );
        assert!(
            TextEncoding::from_label("klingon")
                .unwrap_err()
                .contains("unknown encoding")
        );
    }

    #[test]
    fn windows_1252_umlauts() {
        let enc = TextEncoding::from_label("windows-1252").unwrap();
        assert_eq!(enc.decode_field(b"\xE4\xF6\xFC \x80").unwrap(), "äöü €");
    }

    #[test]
    fn raw_text_cuts_on_char_boundary() {
        assert_eq!(raw_text(TextEncoding::Utf8, "aäb".as_bytes(), 2), "a…");
        assert_eq!(raw_text(TextEncoding::Utf8, b"ab", 2), "ab");
        assert_eq!(raw_text(TextEncoding::Utf8, b"a\xFFb", 9), "a\u{FFFD}b");
    }

    #[test]
    fn shown_fields_stay_on_one_line() {
        assert_eq!(shown(TextEncoding::Utf8, b"\"a\r\nb\"c"), "\"a\\r\\nb\"c");
        assert_eq!(shown(TextEncoding::Utf8, &[b'x'; 70]), "x".repeat(64) + "…");
    }
}
