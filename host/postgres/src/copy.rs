//! Rows in `COPY … FROM STDIN (FORMAT binary)` form, encoded on the host straight from a
//! batch's columns. Each value is checked against the column's actual type while it is
//! encoded, so a value the column cannot take becomes a reject naming the column and the
//! reason, and the rest of the batch still goes in one COPY.

use bytes::{BufMut, BytesMut};
use postgres_types::Type;

use crate::codec;

/// The binary COPY header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A column type the encoder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytea,
    Date,
    Timestamp,
    Timestamptz,
    Json,
    Jsonb,
}

impl Target {
    /// The encoder for a column of type `ty`, if there is one.
    pub fn of(ty: &Type) -> Option<Self> {
        Some(match *ty {
            Type::BOOL => Self::Bool,
            Type::INT2 => Self::Int2,
            Type::INT4 => Self::Int4,
            Type::INT8 => Self::Int8,
            Type::FLOAT4 => Self::Float4,
            Type::FLOAT8 => Self::Float8,
            Type::NUMERIC => Self::Numeric,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Self::Text,
            Type::BYTEA => Self::Bytea,
            Type::DATE => Self::Date,
            Type::TIMESTAMP => Self::Timestamp,
            Type::TIMESTAMPTZ => Self::Timestamptz,
            Type::JSON => Self::Json,
            Type::JSONB => Self::Jsonb,
            _ => return None,
        })
    }

    /// Its PostgreSQL type.
    pub fn pg_type(self) -> Type {
        match self {
            Self::Bool => Type::BOOL,
            Self::Int2 => Type::INT2,
            Self::Int4 => Type::INT4,
            Self::Int8 => Type::INT8,
            Self::Float4 => Type::FLOAT4,
            Self::Float8 => Type::FLOAT8,
            Self::Numeric => Type::NUMERIC,
            Self::Text => Type::TEXT,
            Self::Bytea => Type::BYTEA,
            Self::Date => Type::DATE,
            Self::Timestamp => Type::TIMESTAMP,
            Self::Timestamptz => Type::TIMESTAMPTZ,
            Self::Json => Type::JSON,
            Self::Jsonb => Type::JSONB,
        }
    }
}

/// A batch cell as the encoder reads it (booleans arrive as integers 0/1).
#[derive(Debug, Clone, Copy)]
pub enum CellRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

/// Why a row was not encoded: its column (index into the row) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    pub column: usize,
    pub reason: String,
}

/// A growing binary COPY stream.
pub struct CopyBuffer {
    buf: BytesMut,
    scratch: Vec<u8>,
}

impl Default for CopyBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyBuffer {
    /// A stream with its header written.
    pub fn new() -> Self {
        let mut buf = BytesMut::with_capacity(1 << 20);
        buf.put_slice(HEADER);
        Self {
            buf,
            scratch: Vec::with_capacity(64),
        }
    }

    /// Bytes buffered (to send them in chunks).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes buffered so far, leaving the buffer empty for more rows.
    pub fn take(&mut self) -> bytes::Bytes {
        self.buf.split().freeze()
    }

    /// The end-of-data marker.
    pub fn finish(&mut self) {
        self.buf.put_i16(-1);
    }

    /// Append one row, or nothing and the first value the columns cannot take.
    pub fn row<'a>(
        &mut self,
        cells: impl ExactSizeIterator<Item = (CellRef<'a>, Target)>,
    ) -> Result<(), BadValue> {
        let start = self.buf.len();
        self.buf.put_i16(cells.len() as i16);
        for (column, (cell, target)) in cells.enumerate() {
            if let Err(reason) = self.field(cell, target) {
                self.buf.truncate(start);
                return Err(BadValue { column, reason });
            }
        }
        Ok(())
    }

    fn field(&mut self, cell: CellRef<'_>, target: Target) -> Result<(), String> {
        let buf = &mut self.buf;
        match (cell, target) {
            (CellRef::Null, _) => buf.put_i32(-1),
            (CellRef::Integer(i), Target::Bool) => {
                buf.put_i32(1);
                buf.put_u8(u8::from(i != 0));
            }
            (CellRef::Integer(i), Target::Int8) => {
                buf.put_i32(8);
                buf.put_i64(i);
            }
            (CellRef::Integer(i), Target::Int4) => {
                let v = i32::try_from(i).map_err(|_| format!("{i} is out of range for integer"))?;
                buf.put_i32(4);
                buf.put_i32(v);
            }
            (CellRef::Integer(i), Target::Int2) => {
                let v =
                    i16::try_from(i).map_err(|_| format!("{i} is out of range for smallint"))?;
                buf.put_i32(2);
                buf.put_i16(v);
            }
            (CellRef::Integer(i), Target::Float8) => {
                buf.put_i32(8);
                buf.put_f64(i as f64);
            }
            (CellRef::Real(r), Target::Float8) => {
                buf.put_i32(8);
                buf.put_f64(r);
            }
            (CellRef::Integer(i), Target::Float4) => {
                buf.put_i32(4);
                buf.put_f32(i as f32);
            }
            (CellRef::Real(r), Target::Float4) => {
                buf.put_i32(4);
                buf.put_f32(r as f32);
            }
            (CellRef::Integer(i), Target::Numeric) => self.numeric(&i.to_string())?,
            (CellRef::Real(r), Target::Numeric) => {
                if !r.is_finite() {
                    return Err(format!("{r} is not a finite number"));
                }
                self.numeric(&format!("{r:?}"))?;
            }
            (CellRef::Text(t), Target::Numeric) => self.numeric(text(t)?)?,
            (CellRef::Text(t), Target::Text) => {
                if t.contains(&0) {
                    return Err(
                        "text contains a NUL character, which PostgreSQL cannot store".into(),
                    );
                }
                put_bytes(buf, t);
            }
            (CellRef::Integer(i), Target::Text) => put_bytes(buf, i.to_string().as_bytes()),
            (CellRef::Real(r), Target::Text) => put_bytes(buf, format!("{r:?}").as_bytes()),
            (CellRef::Blob(b) | CellRef::Text(b), Target::Bytea) => put_bytes(buf, b),
            (CellRef::Text(t), Target::Date) => {
                let days = codec::encode_date(text(t)?)?;
                buf.put_i32(4);
                buf.put_i32(days);
            }
            (CellRef::Text(t), Target::Timestamp | Target::Timestamptz) => {
                let micros = codec::encode_timestamp(text(t)?)?;
                buf.put_i32(8);
                buf.put_i64(micros);
            }
            (CellRef::Text(t), Target::Json | Target::Jsonb) => {
                let json = text(t)?;
                check_json(json, target == Target::Jsonb)?;
                if target == Target::Jsonb {
                    buf.put_i32(t.len() as i32 + 1);
                    buf.put_u8(1);
                    buf.put_slice(t);
                } else {
                    put_bytes(buf, t);
                }
            }
            (cell, target) => {
                return Err(format!(
                    "a {} value cannot go into a {} column",
                    match cell {
                        CellRef::Null => "null",
                        CellRef::Integer(_) => "integer",
                        CellRef::Real(_) => "real",
                        CellRef::Text(_) => "text",
                        CellRef::Blob(_) => "blob",
                    },
                    target.pg_type()
                ));
            }
        }
        Ok(())
    }

    fn numeric(&mut self, text: &str) -> Result<(), String> {
        self.scratch.clear();
        codec::encode_numeric(text, &mut self.scratch)?;
        put_bytes(&mut self.buf, &self.scratch);
        Ok(())
    }
}

fn text(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| "text is not UTF-8".to_owned())
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    buf.put_i32(bytes.len() as i32);
    buf.put_slice(bytes);
}

/// JSON the server will take: well-formed, and for `jsonb` no `\u0000` (it cannot store one).
fn check_json(json: &str, jsonb: bool) -> Result<(), String> {
    serde_json::from_str::<serde::de::IgnoredAny>(json)
        .map_err(|e| format!("not a JSON document: {e}"))?;
    if jsonb && json.contains("\\u0000") {
        return Err("JSON contains \\u0000, which jsonb cannot store".to_owned());
    }
    Ok(())
}

/// A one-word tag for a target, for messages.
pub fn describe(target: Target) -> String {
    target.pg_type().to_string()
}

/// Send one binary COPY stream (`copy` names the table and columns) and return the rows the
/// server took.
pub async fn copy_in(
    client: &tokio_postgres::Client,
    copy: &str,
    data: bytes::Bytes,
) -> Result<u64, tokio_postgres::Error> {
    use futures_util::SinkExt as _;
    let sink = client.copy_in::<_, bytes::Bytes>(copy).await?;
    futures_util::pin_mut!(sink);
    sink.send(data).await?;
    sink.as_mut().finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_column_and_leave_no_partial_row() {
        let mut copy = CopyBuffer::new();
        let before = copy.len();
        let err = copy
            .row(
                [
                    (CellRef::Integer(1), Target::Int8),
                    (CellRef::Text(b"12,3x"), Target::Numeric),
                ]
                .into_iter(),
            )
            .unwrap_err();
        assert_eq!(err.column, 1);
        assert!(err.reason.contains("not a decimal"), "{}", err.reason);
        assert_eq!(copy.len(), before);
        for (cell, target, why) in [
            (CellRef::Integer(70000), Target::Int2, "out of range"),
            (CellRef::Text(b"a\0b"), Target::Text, "NUL"),
            (CellRef::Text(b"{\"a\":"), Target::Jsonb, "JSON"),
            (CellRef::Text(b"\"\\u0000\""), Target::Jsonb, "u0000"),
            (CellRef::Text(b"2026-13-01"), Target::Date, "not a date"),
            (CellRef::Blob(b"x"), Target::Int8, "cannot go into"),
        ] {
            let err = copy.row([(cell, target)].into_iter()).unwrap_err();
            assert!(
                err.reason.contains(why),
                "{cell:?} → {target:?}: {}",
                err.reason
            );
        }
        copy.row([(CellRef::Null, Target::Int4)].into_iter())
            .unwrap();
        assert_eq!(copy.len(), before + 2 + 4);
    }
}
