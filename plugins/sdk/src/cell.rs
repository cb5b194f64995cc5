//! One value of a row, borrowed from a batch or from the plugin.

use crate::Value;

/// One cell of a row: what [`RowsView`](crate::RowsView) reads and
/// [`RowsBuilder`](crate::RowsBuilder) writes. Text and blobs borrow, so reading a batch
/// allocates nothing.
///
/// Decimals, dates, timestamps and JSON are `Text` in their canonical form (see `types.wit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// No value.
    Null,
    /// A `boolean` column's value.
    Boolean(bool),
    /// An `integer` column's value.
    Integer(i64),
    /// A `real` column's value.
    Real(f64),
    /// The value of a `text`, `decimal`, `date`, `timestamp` or `json` column.
    Text(&'a str),
    /// A `blob` column's value.
    Blob(&'a [u8]),
}

impl<'a> Cell<'a> {
    /// Whether the cell is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The text, if this is a text cell.
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer cell.
    pub fn as_integer(&self) -> Option<i64> {
        match *self {
            Cell::Integer(v) => Some(v),
            _ => None,
        }
    }

    /// The number, if this is a real or an integer cell.
    pub fn as_real(&self) -> Option<f64> {
        match *self {
            Cell::Real(v) => Some(v),
            // Deliberately lossy above 2^53, like every SQL engine's integer-to-real cast.
            Cell::Integer(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean cell.
    pub fn as_boolean(&self) -> Option<bool> {
        match *self {
            Cell::Boolean(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes, if this is a blob cell.
    pub fn as_blob(&self) -> Option<&'a [u8]> {
        match *self {
            Cell::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// The cell as a short human string for reject reasons: text quoted, blobs by size.
    pub fn describe(&self) -> String {
        match self {
            Cell::Null => "null".to_owned(),
            Cell::Boolean(v) => v.to_string(),
            Cell::Integer(v) => v.to_string(),
            Cell::Real(v) => v.to_string(),
            Cell::Text(s) => format!("{s:?}"),
            Cell::Blob(b) => format!("<{} bytes>", b.len()),
        }
    }
}

impl From<bool> for Cell<'_> {
    fn from(v: bool) -> Self {
        Cell::Boolean(v)
    }
}

impl From<i64> for Cell<'_> {
    fn from(v: i64) -> Self {
        Cell::Integer(v)
    }
}

impl From<f64> for Cell<'_> {
    fn from(v: f64) -> Self {
        Cell::Real(v)
    }
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(v: &'a str) -> Self {
        Cell::Text(v)
    }
}

impl<'a> From<&'a String> for Cell<'a> {
    fn from(v: &'a String) -> Self {
        Cell::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Cell<'a> {
    fn from(v: &'a [u8]) -> Self {
        Cell::Blob(v)
    }
}

/// `None` is null, so `out.set(col, maybe_value)` needs no `match`.
impl<'a, T: Into<Cell<'a>>> From<Option<T>> for Cell<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

/// An owned copy, e.g. a parameter for [`sql`](crate::sql): `db.execute(stmt, &[row.get(k).into()])`.
impl From<Cell<'_>> for Value {
    fn from(cell: Cell<'_>) -> Self {
        match cell {
            Cell::Null => Value::Null,
            Cell::Boolean(v) => Value::Boolean(v),
            Cell::Integer(v) => Value::Integer(v),
            Cell::Real(v) => Value::Real(v),
            Cell::Text(s) => Value::Text(s.to_owned()),
            Cell::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_become_owned_values() {
        assert_eq!(Value::from(Cell::Null), Value::Null);
        assert_eq!(Value::from(Cell::Boolean(true)), Value::Boolean(true));
        assert_eq!(Value::from(Cell::Integer(-3)), Value::Integer(-3));
        assert_eq!(Value::from(Cell::Real(0.5)), Value::Real(0.5));
        assert_eq!(Value::from(Cell::Text("a")), Value::Text("a".into()));
        assert_eq!(Value::from(Cell::Blob(&[1, 2])), Value::Blob(vec![1, 2]));
    }
}
