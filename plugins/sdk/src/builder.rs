//! Building a columnar [`Rows`] one row at a time.

use std::fmt;
use std::io::Write as _;

use crate::bitmap::BitmapBuilder;
use crate::{Cell, Column, ColumnData, ColumnVector, Kind, Rows, Schema, VarWidth};

/// Why a cell could not be stored, naming the column (`amount: "x" is not an integer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError(String);

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellError {}

/// So `?` works inside a [`map_rows`](crate::map_rows) closure, whose error is a reject reason.
impl From<CellError> for String {
    fn from(e: CellError) -> Self {
        e.0
    }
}

/// Builds [`Rows`] shaped by a schema, row by row; the column buffers, offsets and null
/// bitmaps are its business.
///
/// Each column stores the [`ColumnData`] case its [`Kind`] calls for. A cell of another type
/// is converted where that is lossless and unsurprising (an integer into a text or real
/// column, `"42"` into an integer column, `1`/`"true"` into a boolean column); otherwise the
/// push fails with a [`CellError`] and the row is not added. Null into a column that is not
/// nullable fails too, so the rows always match the schema.
#[derive(Debug)]
pub struct RowsBuilder {
    len: usize,
    columns: Vec<ColumnBuilder>,
}

impl RowsBuilder {
    /// An empty builder for rows shaped by `schema`.
    pub fn new(schema: &Schema) -> Self {
        Self::with_capacity(schema, 0)
    }

    /// An empty builder with room for `rows` rows.
    pub fn with_capacity(schema: &Schema, rows: usize) -> Self {
        let columns = schema
            .columns
            .iter()
            .map(|c| ColumnBuilder::new(c, rows))
            .collect();
        Self { len: 0, columns }
    }

    /// Number of rows added so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row was added yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add one row of exactly one cell per column. On error nothing is added.
    pub fn push_row<'c>(
        &mut self,
        cells: impl IntoIterator<Item = Cell<'c>>,
    ) -> Result<(), CellError> {
        let expected = self.columns.len();
        let mut row = self.row();
        let mut count = 0;
        for cell in cells {
            if count < expected {
                row.set(count, cell)?;
            }
            count += 1;
        }
        if count != expected {
            return Err(CellError(format!(
                "row has {count} cells, the schema has {expected} columns"
            )));
        }
        row.commit()
    }

    /// Start a row whose cells are set one by one, in any order; see [`RowOut`].
    pub fn row(&mut self) -> RowOut<'_> {
        RowOut {
            builder: self,
            committed: false,
        }
    }

    /// The rows built so far.
    pub fn finish(self) -> Rows {
        Rows {
            row_count: u32::try_from(self.len).expect("a batch has fewer than 2^32 rows"),
            columns: self
                .columns
                .into_iter()
                .map(ColumnBuilder::finish)
                .collect(),
        }
    }

    /// Drop every column's values past the committed rows.
    fn discard_partial_row(&mut self) {
        for column in &mut self.columns {
            column.truncate(self.len);
        }
    }
}

/// One row being written. Cells not set are null; setting a cell twice keeps the last value.
///
/// [`commit`](Self::commit) adds the row. Dropping it without committing — an early `return`
/// or `?` — discards the row, so a half-written row never reaches the output.
#[derive(Debug)]
pub struct RowOut<'b> {
    builder: &'b mut RowsBuilder,
    committed: bool,
}

impl RowOut<'_> {
    /// Set column `col` (an index into the output schema) of this row.
    ///
    /// # Panics
    /// If `col` is not a column index of the schema.
    pub fn set<'c>(&mut self, col: usize, cell: impl Into<Cell<'c>>) -> Result<(), CellError> {
        let row = self.builder.len;
        let column = &mut self.builder.columns[col];
        // The column's last value is this row's: replacing it is a cheap truncate.
        column.truncate(row);
        column.push(cell.into())
    }

    /// Number of columns of the output schema.
    pub fn column_count(&self) -> usize {
        self.builder.columns.len()
    }

    /// Add the row, with null in every column not set. Fails (and discards the row) when such
    /// a column is not nullable.
    pub fn commit(mut self) -> Result<(), CellError> {
        let row = self.builder.len;
        for column in &mut self.builder.columns {
            if column.len == row {
                column.push(Cell::Null)?;
            }
        }
        self.builder.len += 1;
        self.committed = true;
        Ok(())
    }
}

impl Drop for RowOut<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.builder.discard_partial_row();
        }
    }
}

/// The values of one column in the storage its kind calls for.
#[derive(Debug)]
enum Values {
    Boolean(Vec<u8>),
    Integer(Vec<i64>),
    Real(Vec<f64>),
    Text(VarWidth),
    Blob(VarWidth),
}

#[derive(Debug)]
struct ColumnBuilder {
    name: String,
    kind: Kind,
    nullable: bool,
    values: Values,
    nulls: BitmapBuilder,
    len: usize,
}

impl ColumnBuilder {
    fn new(column: &Column, rows: usize) -> Self {
        let var_width = || VarWidth {
            data: Vec::new(),
            ends: Vec::with_capacity(rows),
        };
        let values = match column.kind {
            Kind::Boolean => Values::Boolean(Vec::with_capacity(rows)),
            Kind::Integer => Values::Integer(Vec::with_capacity(rows)),
            Kind::Real => Values::Real(Vec::with_capacity(rows)),
            Kind::Blob => Values::Blob(var_width()),
            Kind::Text | Kind::Decimal | Kind::Date | Kind::Timestamp | Kind::Json => {
                Values::Text(var_width())
            }
        };
        Self {
            name: column.name.clone(),
            kind: column.kind,
            nullable: column.nullable,
            values,
            nulls: BitmapBuilder::with_capacity(rows),
            len: 0,
        }
    }

    fn push(&mut self, cell: Cell<'_>) -> Result<(), CellError> {
        self.store(cell)
            .map_err(|reason| CellError(format!("{}: {reason}", self.name)))?;
        self.nulls.push(cell.is_null());
        self.len += 1;
        Ok(())
    }

    /// Append exactly one value slot for `cell`, or nothing and an error.
    fn store(&mut self, cell: Cell<'_>) -> Result<(), String> {
        if cell.is_null() {
            if !self.nullable {
                return Err("null, but the column is not nullable".to_owned());
            }
            // A null row still has a slot (0 or empty); the bitmap says to ignore it.
            match &mut self.values {
                Values::Boolean(v) => v.push(0),
                Values::Integer(v) => v.push(0),
                Values::Real(v) => v.push(0.0),
                Values::Text(w) | Values::Blob(w) => push_bytes(w, b""),
            }
            return Ok(());
        }
        let mismatch = || format!("cannot store {} as {}", cell.describe(), self.kind);
        match (&mut self.values, cell) {
            (Values::Boolean(v), cell) => v.push(u8::from(to_boolean(cell).ok_or_else(mismatch)?)),
            (Values::Integer(v), cell) => v.push(to_integer(cell).ok_or_else(mismatch)?),
            (Values::Real(v), cell) => v.push(to_real(cell).ok_or_else(mismatch)?),
            (Values::Blob(w), Cell::Blob(b)) => push_bytes(w, b),
            (Values::Blob(w), Cell::Text(s)) => push_bytes(w, s.as_bytes()),
            (Values::Text(w), Cell::Text(s)) => push_bytes(w, s.as_bytes()),
            (Values::Text(w), cell) => {
                if !push_as_text(w, self.kind, cell) {
                    return Err(mismatch());
                }
            }
            (Values::Blob(_), _) => return Err(mismatch()),
        }
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        match &mut self.values {
            Values::Boolean(v) => v.truncate(len),
            Values::Integer(v) => v.truncate(len),
            Values::Real(v) => v.truncate(len),
            Values::Text(w) | Values::Blob(w) => {
                let end = len.checked_sub(1).map_or(0, |last| w.ends[last] as usize);
                w.data.truncate(end);
                w.ends.truncate(len);
            }
        }
        self.nulls.truncate(len);
        self.len = len;
    }

    fn finish(self) -> ColumnVector {
        let data = match self.values {
            Values::Boolean(v) => ColumnData::Boolean(v),
            Values::Integer(v) => ColumnData::Integer(v),
            Values::Real(v) => ColumnData::Real(v),
            Values::Text(w) => ColumnData::Text(w),
            Values::Blob(w) => ColumnData::Blob(w),
        };
        ColumnVector {
            data,
            nulls: self.nulls.finish(),
        }
    }
}

fn to_boolean(cell: Cell<'_>) -> Option<bool> {
    match cell {
        Cell::Boolean(b) => Some(b),
        Cell::Integer(0) => Some(false),
        Cell::Integer(1) => Some(true),
        Cell::Text(s) => match s.trim() {
            "1" => Some(true),
            "0" => Some(false),
            s if s.eq_ignore_ascii_case("true") => Some(true),
            s if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn to_integer(cell: Cell<'_>) -> Option<i64> {
    match cell {
        Cell::Integer(v) => Some(v),
        Cell::Boolean(b) => Some(i64::from(b)),
        // Only whole numbers inside i64's range; `as` would saturate silently.
        Cell::Real(r) if r.fract() == 0.0 && (-(2f64.powi(63))..2f64.powi(63)).contains(&r) => {
            Some(r as i64)
        }
        Cell::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn to_real(cell: Cell<'_>) -> Option<f64> {
    match cell {
        Cell::Real(r) => Some(r),
        Cell::Integer(v) => Some(v as f64),
        Cell::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Format a non-text cell into a text-stored column where the result is canonical for `kind`.
/// Dates and timestamps take only text: no number is a canonical date.
fn push_as_text(w: &mut VarWidth, kind: Kind, cell: Cell<'_>) -> bool {
    let ok = match (kind, cell) {
        (Kind::Text | Kind::Decimal | Kind::Json, Cell::Integer(v)) => {
            write!(w.data, "{v}").is_ok()
        }
        // f64's Display never uses an exponent, so the text is a valid decimal literal.
        (Kind::Text, Cell::Real(r)) => write!(w.data, "{r}").is_ok(),
        (Kind::Decimal | Kind::Json, Cell::Real(r)) if r.is_finite() => {
            write!(w.data, "{r}").is_ok()
        }
        (Kind::Text | Kind::Json, Cell::Boolean(b)) => write!(w.data, "{b}").is_ok(),
        (Kind::Text, Cell::Blob(b)) => match std::str::from_utf8(b) {
            Ok(s) => {
                w.data.extend_from_slice(s.as_bytes());
                true
            }
            Err(_) => false,
        },
        _ => false,
    };
    if ok {
        w.ends.push(end_offset(&w.data));
    }
    ok
}

fn push_bytes(w: &mut VarWidth, bytes: &[u8]) {
    w.data.extend_from_slice(bytes);
    w.ends.push(end_offset(&w.data));
}

fn end_offset(data: &[u8]) -> u32 {
    // A wasm32 guest's memory ends at 4 GiB, so a buffer inside it always fits.
    u32::try_from(data.len()).expect("a column's data stays below 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RowsView;

    fn schema(columns: &[(&str, Kind, bool)]) -> Schema {
        Schema {
            columns: columns
                .iter()
                .map(|&(n, k, null)| Column::new(n, k, null))
                .collect(),
            primary_key: vec![],
        }
    }

    #[test]
    fn builds_every_storage_with_offsets_and_nulls() {
        let s = schema(&[
            ("name", Kind::Text, true),
            ("n", Kind::Integer, true),
            ("x", Kind::Real, false),
            ("ok", Kind::Boolean, false),
            ("raw", Kind::Blob, true),
        ]);
        let mut b = RowsBuilder::new(&s);
        b.push_row([
            Cell::Text("ab"),
            Cell::Integer(1),
            Cell::Real(0.5),
            Cell::Boolean(true),
            Cell::Null,
        ])
        .unwrap();
        b.push_row([
            Cell::Null,
            Cell::Null,
            Cell::Real(2.0),
            Cell::Boolean(false),
            Cell::Blob(&[9]),
        ])
        .unwrap();
        b.push_row([
            Cell::Text("ü"),
            Cell::Integer(-3),
            Cell::Real(-1.0),
            Cell::Boolean(true),
            Cell::Null,
        ])
        .unwrap();
        let rows = b.finish();
        assert_eq!(rows.row_count, 3);
        let name = &rows.columns[0];
        assert_eq!(
            name.data,
            ColumnData::Text(VarWidth {
                data: "abü".into(),
                ends: vec![2, 2, 4]
            })
        );
        assert_eq!(name.nulls, Some(vec![0b010]));
        assert_eq!(rows.columns[1].data, ColumnData::Integer(vec![1, 0, -3]));
        assert_eq!(rows.columns[2].nulls, None, "no null, no bitmap");
        assert_eq!(rows.columns[3].data, ColumnData::Boolean(vec![1, 0, 1]));
        assert_eq!(rows.columns[4].nulls, Some(vec![0b101]));

        let view = RowsView::new(&rows);
        assert_eq!(view.text(2, 0), Some("ü"));
        assert_eq!(view.cell(1, 1), Cell::Null);
        assert_eq!(view.blob(1, 4), Some(&[9][..]));
    }

    #[test]
    fn converts_losslessly_and_refuses_the_rest() {
        let s = schema(&[
            ("t", Kind::Text, true),
            ("i", Kind::Integer, true),
            ("r", Kind::Real, true),
            ("b", Kind::Boolean, true),
            ("d", Kind::Decimal, true),
            ("day", Kind::Date, true),
        ]);
        let mut b = RowsBuilder::new(&s);
        b.push_row([
            Cell::Integer(42),
            Cell::Text(" 17 "),
            Cell::Integer(3),
            Cell::Text("TRUE"),
            Cell::Real(-12.5),
            Cell::Text("2026-01-31"),
        ])
        .unwrap();
        b.push_row([
            Cell::Real(1.5),
            Cell::Real(4.0),
            Cell::Text("2.25"),
            Cell::Integer(0),
            Cell::Integer(7),
            Cell::Null,
        ])
        .unwrap();
        let rows = b.finish();
        let view = RowsView::new(&rows);
        assert_eq!(view.text(0, 0), Some("42"));
        assert_eq!(view.text(1, 0), Some("1.5"));
        assert_eq!(view.integer(0, 1), Some(17));
        assert_eq!(view.integer(1, 1), Some(4));
        assert_eq!(view.real(0, 2), Some(3.0));
        assert_eq!(view.real(1, 2), Some(2.25));
        assert_eq!(view.boolean(0, 3), Some(true));
        assert_eq!(view.boolean(1, 3), Some(false));
        assert_eq!(view.text(0, 4), Some("-12.5"));
        assert_eq!(view.text(1, 4), Some("7"));

        let mut b = RowsBuilder::new(&s);
        let refused = |b: &mut RowsBuilder, col: usize, cell: Cell<'_>| {
            let mut row = b.row();
            row.set(col, cell).unwrap_err().to_string()
        };
        assert_eq!(
            refused(&mut b, 1, Cell::Text("x1")),
            r#"i: cannot store "x1" as integer"#
        );
        assert_eq!(
            refused(&mut b, 1, Cell::Real(1.5)),
            "i: cannot store 1.5 as integer"
        );
        assert_eq!(
            refused(&mut b, 3, Cell::Integer(2)),
            "b: cannot store 2 as boolean"
        );
        assert_eq!(
            refused(&mut b, 4, Cell::Real(f64::NAN)),
            "d: cannot store NaN as decimal"
        );
        assert_eq!(
            refused(&mut b, 5, Cell::Integer(20260131)),
            "day: cannot store 20260131 as date"
        );
        assert!(b.is_empty());
    }

    #[test]
    fn null_in_a_non_nullable_column_is_refused() {
        let s = schema(&[("id", Kind::Integer, false), ("note", Kind::Text, true)]);
        let mut b = RowsBuilder::new(&s);
        let err = b.push_row([Cell::Null, Cell::Text("x")]).unwrap_err();
        assert_eq!(err.to_string(), "id: null, but the column is not nullable");
        let mut row = b.row();
        row.set(1, "only the note").unwrap();
        assert!(
            row.commit().is_err(),
            "an unset non-nullable column is null too"
        );
        assert_eq!(b.finish().row_count, 0);
    }

    #[test]
    fn failed_and_dropped_rows_leave_no_trace() {
        let s = schema(&[("a", Kind::Text, true), ("b", Kind::Integer, true)]);
        let mut b = RowsBuilder::new(&s);
        b.push_row([Cell::Text("kept"), Cell::Integer(1)]).unwrap();
        // "half" is stored in `a` before `b` fails: the whole row must go.
        assert!(
            b.push_row([Cell::Text("half"), Cell::Text("nope")])
                .is_err()
        );
        {
            let mut row = b.row();
            row.set(0, "dropped").unwrap();
        }
        b.push_row([Cell::Null, Cell::Integer(3)]).unwrap();
        let rows = b.finish();
        assert_eq!(rows.row_count, 2);
        assert_eq!(
            rows.columns[0].data,
            ColumnData::Text(VarWidth {
                data: b"kept".to_vec(),
                ends: vec![4, 4]
            })
        );
        assert_eq!(rows.columns[0].nulls, Some(vec![0b10]));
        assert_eq!(rows.columns[1].data, ColumnData::Integer(vec![1, 3]));
    }

    #[test]
    fn set_twice_keeps_the_last_value_and_unset_is_null() {
        let s = schema(&[("a", Kind::Text, true), ("b", Kind::Text, true)]);
        let mut b = RowsBuilder::new(&s);
        let mut row = b.row();
        row.set(1, "first").unwrap();
        row.set(1, "second").unwrap();
        row.commit().unwrap();
        let rows = b.finish();
        let view = RowsView::new(&rows);
        assert_eq!(view.cell(0, 0), Cell::Null);
        assert_eq!(view.text(0, 1), Some("second"));
        assert_eq!(
            rows.columns[1].data,
            ColumnData::Text(VarWidth {
                data: b"second".to_vec(),
                ends: vec![6]
            })
        );
    }

    #[test]
    fn wrong_cell_count_is_refused() {
        let s = schema(&[("a", Kind::Integer, true)]);
        let mut b = RowsBuilder::new(&s);
        let err = b
            .push_row([Cell::Integer(1), Cell::Integer(2)])
            .unwrap_err();
        assert_eq!(err.to_string(), "row has 2 cells, the schema has 1 columns");
        assert!(b.push_row([]).is_err());
        assert!(b.is_empty());
    }
}
