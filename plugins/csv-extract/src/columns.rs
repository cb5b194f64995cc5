//! Building a batch's columns straight from parsed records.
//!
//! Text cells are appended to one byte buffer per column with an end offset per row (the
//! contract's `var-width`), so no `String` is allocated per cell. A record is added as a whole
//! or not at all: any problem (field count, encoding, a number that does not parse) rolls the
//! columns back to the last row boundary and becomes the reject's reason.

use crate::config::ColumnType;
use crate::encoding::TextEncoding;
use crate::parser::Parser;
use weir_sdk::{ColumnData, ColumnVector, VarWidth};

/// The values of one column of the batch being built.
#[derive(Debug)]
enum Values {
    Text { data: Vec<u8>, ends: Vec<u32> },
    Integer(Vec<i64>),
    Real(Vec<f64>),
}

/// One column being built.
#[derive(Debug)]
struct ColumnBuf {
    name: String,
    values: Values,
    /// Rows that are null (only typed columns have any), ascending.
    null_rows: Vec<u32>,
}

/// Collects rows into columnar buffers.
#[derive(Debug)]
pub struct BatchBuilder {
    columns: Vec<ColumnBuf>,
    encoding: TextEncoding,
    rows: usize,
    /// Every column is text (no parsing, nothing per cell can fail).
    all_text: bool,
}

impl BatchBuilder {
    /// A builder for columns `names` of kinds `types` (same length), decoding `encoding`.
    pub fn new(names: &[String], types: &[ColumnType], encoding: TextEncoding) -> Self {
        let columns = names
            .iter()
            .zip(types)
            .map(|(name, ty)| ColumnBuf {
                name: name.clone(),
                values: empty_values(*ty, 0, 0),
                null_rows: Vec::new(),
            })
            .collect();
        Self {
            columns,
            encoding,
            rows: 0,
            all_text: types.iter().all(|t| *t == ColumnType::Text),
        }
    }

    /// Rows added since the last [`BatchBuilder::take`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Add the parser's current record as a row, or explain why it cannot be one (the builder
    /// is then unchanged).
    pub fn push_record<R: std::io::Read>(&mut self, p: &Parser<R>) -> Result<(), String> {
        if p.field_count() != self.columns.len() {
            return Err(format!(
                "expected {} fields, found {}",
                self.columns.len(),
                p.field_count()
            ));
        }
        let raw = p.raw();
        // Whether text fields can be copied as they are.
        let verbatim = match self.encoding {
            TextEncoding::Utf8 => {
                if let Err(e) = std::str::from_utf8(raw) {
                    let at = p.record_offset() + e.valid_up_to() as u64;
                    return Err(format!("invalid UTF-8 at byte {at}"));
                }
                true
            }
            // ASCII is the same in every supported encoding: decode only records that need it.
            TextEncoding::Legacy(_) => raw.is_ascii(),
        };
        if verbatim && self.all_text {
            // The common case, kept tight: one copy per field, nothing that can fail.
            for (i, col) in self.columns.iter_mut().enumerate() {
                if let Values::Text { data, ends } = &mut col.values {
                    data.extend_from_slice(p.field(i));
                    ends.push(data.len() as u32);
                }
            }
            self.rows += 1;
            return Ok(());
        }
        for (i, col) in self.columns.iter_mut().enumerate() {
            if let Err(reason) = col.push(p.field(i), verbatim, self.encoding, self.rows) {
                self.rollback();
                return Err(reason);
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Undo a partly added row.
    fn rollback(&mut self) {
        let rows = self.rows;
        for col in &mut self.columns {
            match &mut col.values {
                Values::Text { data, ends } => {
                    ends.truncate(rows);
                    data.truncate(ends.last().map_or(0, |&e| e as usize));
                }
                Values::Integer(v) => v.truncate(rows),
                Values::Real(v) => v.truncate(rows),
            }
            while col.null_rows.last().is_some_and(|&r| r as usize >= rows) {
                col.null_rows.pop();
            }
        }
    }

    /// The columns built so far, leaving the builder empty (with room for as many rows).
    pub fn take(&mut self) -> Vec<ColumnVector> {
        let rows = std::mem::take(&mut self.rows);
        self.columns
            .iter_mut()
            .map(|col| {
                let bytes = match &col.values {
                    Values::Text { data, .. } => data.len(),
                    _ => 0,
                };
                let ty = match col.values {
                    Values::Text { .. } => ColumnType::Text,
                    Values::Integer(_) => ColumnType::Integer,
                    Values::Real(_) => ColumnType::Real,
                };
                let values = std::mem::replace(&mut col.values, empty_values(ty, rows, bytes));
                let nulls = (!col.null_rows.is_empty()).then(|| {
                    let mut bitmap = vec![0u8; rows.div_ceil(8)];
                    for &r in &col.null_rows {
                        bitmap[r as usize / 8] |= 1 << (r % 8);
                    }
                    bitmap
                });
                col.null_rows.clear();
                let data = match values {
                    Values::Text { data, ends } => ColumnData::Text(VarWidth { data, ends }),
                    Values::Integer(v) => ColumnData::Integer(v),
                    Values::Real(v) => ColumnData::Real(v),
                };
                ColumnVector { data, nulls }
            })
            .collect()
    }
}

fn empty_values(ty: ColumnType, rows: usize, bytes: usize) -> Values {
    match ty {
        ColumnType::Text => Values::Text {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        },
        ColumnType::Integer => Values::Integer(Vec::with_capacity(rows)),
        ColumnType::Real => Values::Real(Vec::with_capacity(rows)),
    }
}

impl ColumnBuf {
    /// Append `field` as row `row`.
    fn push(
        &mut self,
        field: &[u8],
        verbatim: bool,
        encoding: TextEncoding,
        row: usize,
    ) -> Result<(), String> {
        match &mut self.values {
            Values::Text { data, ends } => {
                if verbatim {
                    data.extend_from_slice(field);
                } else {
                    let text = encoding.decode_field(field).ok_or_else(|| {
                        format!("column \"{}\": invalid {} text", self.name, encoding.name())
                    })?;
                    data.extend_from_slice(text.as_bytes());
                }
                ends.push(data.len() as u32);
            }
            Values::Integer(v) => {
                let text = field.trim_ascii();
                if text.is_empty() {
                    v.push(0);
                    self.null_rows.push(row as u32);
                } else {
                    let n =
                        parse_i64(text).ok_or_else(|| not_a(&self.name, field, "an integer"))?;
                    v.push(n);
                }
            }
            Values::Real(v) => {
                let text = field.trim_ascii();
                if text.is_empty() {
                    v.push(0.0);
                    self.null_rows.push(row as u32);
                } else {
                    let n = weir_sdk::exact_decimal(text, b'.')
                        .or_else(|| std::str::from_utf8(text).ok()?.parse::<f64>().ok())
                        .ok_or_else(|| not_a(&self.name, field, "a number"))?;
                    v.push(n);
                }
            }
        }
        Ok(())
    }
}

/// `str::parse::<i64>` on bytes (optional sign, then digits), without the UTF-8 check first.
/// Up to 18 digits cannot overflow, so they need no checked (in WebAssembly: 128-bit library)
/// multiplication; longer values take `str::parse`.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return std::str::from_utf8(bytes).ok()?.parse().ok();
    }
    let mut acc: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc * 10 + i64::from(d);
    }
    Some(if negative { -acc } else { acc })
}

/// `column "amount": "12,x" is not a number`, with the value shortened for long fields.
fn not_a(column: &str, field: &[u8], what: &str) -> String {
    let value = crate::encoding::raw_text(TextEncoding::Utf8, field, 64);
    format!("column \"{column}\": {value:?} is not {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::Dialect;

    fn build(
        data: &[u8],
        types: &[ColumnType],
        enc: TextEncoding,
    ) -> (Vec<ColumnVector>, Vec<String>) {
        let names: Vec<String> = (0..types.len()).map(|i| format!("c{i}")).collect();
        let mut b = BatchBuilder::new(&names, types, enc);
        let d = Dialect {
            delimiter: b';',
            ..Dialect::default()
        };
        let mut p = Parser::new(data, d, 0, 1);
        let mut errors = Vec::new();
        while p.next_record().unwrap().is_some() {
            if let Err(e) = b.push_record(&p) {
                errors.push(format!("line {}: {e}", p.record_line()));
            }
        }
        (b.take(), errors)
    }

    fn texts(col: &ColumnVector) -> Vec<String> {
        let ColumnData::Text(VarWidth { data, ends }) = &col.data else {
            panic!("not text")
        };
        let mut start = 0;
        ends.iter()
            .map(|&e| {
                let s = String::from_utf8(data[start..e as usize].to_vec()).unwrap();
                start = e as usize;
                s
            })
            .collect()
    }

    #[test]
    fn text_columns_and_rejects_roll_back() {
        let t = [ColumnType::Text, ColumnType::Text];
        let (cols, errors) = build(b"a;b\nx\nc;\xFF\n;d\n1;2;3\n", &t, TextEncoding::Utf8);
        assert_eq!(texts(&cols[0]), ["a", ""]);
        assert_eq!(texts(&cols[1]), ["b", "d"]);
        assert_eq!(
            errors,
            [
                "line 2: expected 2 fields, found 1",
                "line 3: invalid UTF-8 at byte 8",
                "line 5: expected 2 fields, found 3"
            ]
        );
        assert!(cols.iter().all(|c| c.nulls.is_none()));
    }

    #[test]
    fn windows_1252_is_decoded() {
        let enc = TextEncoding::from_label("windows-1252").unwrap();
        let (cols, errors) = build(
            b"M\xFCller;\xE4\xF6\xFC\nplain;x\n",
            &[ColumnType::Text; 2],
            enc,
        );
        assert!(errors.is_empty());
        assert_eq!(texts(&cols[0]), ["Müller", "plain"]);
        assert_eq!(texts(&cols[1]), ["äöü", "x"]);
    }

    #[test]
    fn fast_integer_parsing_agrees_with_the_standard_library() {
        for s in [
            "0",
            "-0",
            "+7",
            "-",
            "+",
            "",
            "12a",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "00012",
            "1 2",
            "--1",
            "١٢",
        ] {
            assert_eq!(parse_i64(s.as_bytes()), s.parse::<i64>().ok(), "{s:?}");
        }
    }

    #[test]
    fn typed_columns_with_nulls() {
        let t = [ColumnType::Integer, ColumnType::Real, ColumnType::Text];
        let (cols, errors) = build(
            b"1;2.5;a\n;;b\n-7; 1e3 ;c\nx;1;d\n2;y;e\n",
            &t,
            TextEncoding::Utf8,
        );
        assert_eq!(cols[0].data, ColumnData::Integer(vec![1, 0, -7]));
        assert_eq!(cols[1].data, ColumnData::Real(vec![2.5, 0.0, 1000.0]));
        assert_eq!(cols[0].nulls, Some(vec![0b010]));
        assert_eq!(cols[1].nulls, Some(vec![0b010]));
        assert_eq!(texts(&cols[2]), ["a", "b", "c"]);
        assert_eq!(
            errors,
            [
                "line 4: column \"c0\": \"x\" is not an integer",
                "line 5: column \"c1\": \"y\" is not a number"
            ]
        );
    }
}
