//! Values crossing the `sql` import on a PostgreSQL grant: parameters bound from the contract's
//! values, results typed back into them.
//!
//! Parameters travel in PostgreSQL's text format (blobs into `bytea` in binary): the server
//! parses `42` into whatever the parameter's type is (`int4`, `numeric`, `text`), exactly as a
//! literal, so a plugin binds the same values on both dialects. Results are decoded by type:
//! booleans, integers and floats as such; `numeric`, dates, times and JSON as canonical text;
//! `bytea` as a blob. Anything else is refused with the fix (cast it in the query).

use std::error::Error as StdError;

use bytes::BytesMut;
use postgres_types::{Format, FromSql, IsNull, Kind, ToSql, Type};

use crate::codec;

/// A value of the contract's `sql` interface, independent of the bindings.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Boolean(bool),
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// Bytes the value costs a result, beyond its record.
    pub fn payload_len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Blob(b) => b.len(),
            _ => 0,
        }
    }
}

/// A parameter: see the module docs for the formats.
#[derive(Debug)]
pub struct Param<'a>(pub &'a Cell);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self.0 {
            Cell::Null => return Ok(IsNull::Yes),
            Cell::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Cell::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Cell::Real(r) => out.extend_from_slice(real_text(*r).as_bytes()),
            Cell::Text(t) => {
                if t.contains('\0') {
                    return Err(
                        "text contains a NUL character, which PostgreSQL cannot store".into(),
                    );
                }
                out.extend_from_slice(t.as_bytes());
            }
            Cell::Blob(b) if *ty == Type::BYTEA => out.extend_from_slice(b),
            Cell::Blob(b) => {
                let text = std::str::from_utf8(b)
                    .map_err(|_| format!("a blob cannot be bound to a parameter of type {ty}"))?;
                out.extend_from_slice(text.as_bytes());
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        match self.0 {
            Cell::Blob(_) if *ty == Type::BYTEA => Format::Binary,
            _ => Format::Text,
        }
    }

    postgres_types::to_sql_checked!();
}

fn real_text(r: f64) -> String {
    if r.is_nan() {
        "NaN".to_owned()
    } else if r.is_infinite() {
        if r > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        // Rust prints the shortest text that reads back as the same f64.
        format!("{r:?}")
    }
}

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let text = |raw: &[u8]| -> Result<Self, Box<dyn StdError + Sync + Send>> {
            Ok(Self::Text(std::str::from_utf8(raw)?.to_owned()))
        };
        Ok(match *ty {
            Type::BOOL => Self::Boolean(bool::from_sql(ty, raw)?),
            Type::INT2 => Self::Integer(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Self::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Self::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Self::Integer(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Self::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Self::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => Self::Text(codec::decode_numeric(raw)?),
            Type::DATE => Self::Text(codec::decode_date(i32::from_sql(ty, raw)?)),
            Type::TIMESTAMP => Self::Text(codec::decode_timestamp(i64::from_sql(ty, raw)?, false)),
            Type::TIMESTAMPTZ => Self::Text(codec::decode_timestamp(i64::from_sql(ty, raw)?, true)),
            Type::JSONB => match raw.split_first() {
                Some((1, json)) => text(json)?,
                _ => return Err("unsupported jsonb version".into()),
            },
            Type::UUID => {
                let b: [u8; 16] = raw.try_into()?;
                let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                Self::Text(format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                ))
            }
            Type::BYTEA => Self::Blob(raw.to_vec()),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
                text(raw)?
            }
            _ if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" => text(raw)?,
            _ => {
                return Err(format!(
                    "a result column has type {ty}, which the sql import does not return; cast it in the query (e.g. `column::text`)"
                )
                .into());
            }
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Self::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
