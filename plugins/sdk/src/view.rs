//! Row-wise, zero-copy views over a columnar [`Rows`] and a [`Batch`].

use crate::bitmap;
use crate::{Batch, Cell, ColumnData, Rows, SourceReject, VarWidth};

/// The values of one column, borrowed and already checked.
#[derive(Debug, Clone, Copy)]
enum Values<'a> {
    Boolean(&'a [u8]),
    Integer(&'a [i64]),
    Real(&'a [f64]),
    Text { data: &'a str, ends: &'a [u32] },
    Blob { data: &'a [u8], ends: &'a [u32] },
}

#[derive(Debug, Clone, Copy)]
struct ColumnView<'a> {
    values: Values<'a>,
    nulls: Option<&'a [u8]>,
}

/// Row-wise access to a batch's columns: `view.cell(row, col)` instead of offsets and bitmaps.
///
/// Building the view checks each text column's UTF-8 once, so reading a text cell is a slice.
/// Accessors panic when `row` or `col` is out of range, like slice indexing.
#[derive(Debug, Clone)]
pub struct RowsView<'a> {
    len: usize,
    columns: Vec<ColumnView<'a>>,
}

impl<'a> RowsView<'a> {
    /// A view over `rows`.
    pub fn new(rows: &'a Rows) -> Self {
        let columns = rows
            .columns
            .iter()
            .map(|c| ColumnView {
                values: Values::new(&c.data),
                nulls: c.nulls.as_deref(),
            })
            .collect();
        Self {
            len: rows.row_count as usize,
            columns,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of columns.
    pub fn column_count(&self) -> usize {
        self.columns.len()
    }

    /// Whether the cell is null.
    pub fn is_null(&self, row: usize, col: usize) -> bool {
        self.columns[col]
            .nulls
            .is_some_and(|n| bitmap::is_set(n, row))
    }

    /// The cell at `row`, `col`.
    pub fn cell(&self, row: usize, col: usize) -> Cell<'a> {
        assert!(row < self.len, "row {row} out of range ({} rows)", self.len);
        let column = &self.columns[col];
        if column.nulls.is_some_and(|n| bitmap::is_set(n, row)) {
            return Cell::Null;
        }
        column.values.get(row)
    }

    /// The text at `row`, `col`; `None` when null or not a text column.
    pub fn text(&self, row: usize, col: usize) -> Option<&'a str> {
        self.cell(row, col).as_text()
    }

    /// The integer at `row`, `col`; `None` when null or not an integer column.
    pub fn integer(&self, row: usize, col: usize) -> Option<i64> {
        self.cell(row, col).as_integer()
    }

    /// The number at `row`, `col`; `None` when null or not a real or integer column.
    pub fn real(&self, row: usize, col: usize) -> Option<f64> {
        self.cell(row, col).as_real()
    }

    /// The boolean at `row`, `col`; `None` when null or not a boolean column.
    pub fn boolean(&self, row: usize, col: usize) -> Option<bool> {
        self.cell(row, col).as_boolean()
    }

    /// The bytes at `row`, `col`; `None` when null or not a blob column.
    pub fn blob(&self, row: usize, col: usize) -> Option<&'a [u8]> {
        self.cell(row, col).as_blob()
    }

    /// Row `index`.
    pub fn row(&self, index: usize) -> RowView<'_> {
        assert!(
            index < self.len,
            "row {index} out of range ({} rows)",
            self.len
        );
        RowView { view: self, index }
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = RowView<'_>> {
        (0..self.len).map(|index| RowView { view: self, index })
    }
}

impl<'a> Values<'a> {
    fn new(data: &'a ColumnData) -> Self {
        match data {
            ColumnData::Boolean(v) => Values::Boolean(v),
            ColumnData::Integer(v) => Values::Integer(v),
            ColumnData::Real(v) => Values::Real(v),
            // The host validates text, so this fails only with a broken host; the column then
            // reads as blobs, which a transform reports as a type mismatch instead of trapping.
            ColumnData::Text(VarWidth { data, ends }) => match std::str::from_utf8(data) {
                Ok(data) => Values::Text { data, ends },
                Err(_) => Values::Blob { data, ends },
            },
            ColumnData::Blob(VarWidth { data, ends }) => Values::Blob { data, ends },
        }
    }

    fn get(&self, row: usize) -> Cell<'a> {
        match *self {
            Values::Boolean(v) => Cell::Boolean(v[row] != 0),
            Values::Integer(v) => Cell::Integer(v[row]),
            Values::Real(v) => Cell::Real(v[row]),
            Values::Text { data, ends } => {
                let range = var_width_range(ends, row);
                // A whole-buffer check does not prove each value starts on a char boundary.
                match data.get(range.clone()) {
                    Some(s) => Cell::Text(s),
                    None => Cell::Blob(&data.as_bytes()[range]),
                }
            }
            Values::Blob { data, ends } => Cell::Blob(&data[var_width_range(ends, row)]),
        }
    }
}

/// The byte range of value `row`: it starts where the previous one ended.
fn var_width_range(ends: &[u32], row: usize) -> std::ops::Range<usize> {
    let start = if row == 0 { 0 } else { ends[row - 1] as usize };
    start..ends[row] as usize
}

/// One row of a [`RowsView`].
#[derive(Debug, Clone, Copy)]
pub struct RowView<'v> {
    view: &'v RowsView<'v>,
    index: usize,
}

impl<'v> RowView<'v> {
    /// This row's index in the batch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The cell in column `col`.
    pub fn get(&self, col: usize) -> Cell<'v> {
        self.view.cell(self.index, col)
    }

    /// Whether the cell in column `col` is null.
    pub fn is_null(&self, col: usize) -> bool {
        self.view.is_null(self.index, col)
    }

    /// The text in column `col`; `None` when null or not a text column.
    pub fn text(&self, col: usize) -> Option<&'v str> {
        self.get(col).as_text()
    }

    /// The integer in column `col`; `None` when null or not an integer column.
    pub fn integer(&self, col: usize) -> Option<i64> {
        self.get(col).as_integer()
    }

    /// The number in column `col`; `None` when null or not a real or integer column.
    pub fn real(&self, col: usize) -> Option<f64> {
        self.get(col).as_real()
    }

    /// The boolean in column `col`; `None` when null or not a boolean column.
    pub fn boolean(&self, col: usize) -> Option<bool> {
        self.get(col).as_boolean()
    }

    /// The bytes in column `col`; `None` when null or not a blob column.
    pub fn blob(&self, col: usize) -> Option<&'v [u8]> {
        self.get(col).as_blob()
    }

    /// Every cell of the row, in column order.
    pub fn cells(&self) -> impl ExactSizeIterator<Item = Cell<'v>> + '_ {
        (0..self.view.column_count()).map(|col| self.get(col))
    }
}

/// A batch as a [`Sink`](crate::Sink) receives it: the rows through a [`RowsView`], plus
/// where they came from.
#[derive(Debug, Clone)]
pub struct BatchView<'a> {
    batch: &'a Batch,
    view: RowsView<'a>,
}

impl<'a> BatchView<'a> {
    /// A view over `batch`.
    pub fn new(batch: &'a Batch) -> Self {
        Self {
            batch,
            view: RowsView::new(&batch.rows),
        }
    }

    /// Every row, in order: `for row in batch.rows() { row.text(col) … }`.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = RowView<'_>> {
        self.view.rows()
    }

    /// The rows as a [`RowsView`], for access by (row, column).
    pub fn view(&self) -> &RowsView<'a> {
        &self.view
    }

    /// Number of rows (may be 0: a batch whose records were all rejected).
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// The source position of each row (the line number for files), one per row.
    pub fn positions(&self) -> &'a [u64] {
        &self.batch.positions
    }

    /// Where the source resumes after this batch; opaque, for logs.
    pub fn checkpoint(&self) -> &'a str {
        &self.batch.checkpoint
    }

    /// The records of this stretch of the source that did not parse. The host records them
    /// in `_weir_rejects` itself; a sink need not.
    pub fn source_rejects(&self) -> &'a [SourceReject] {
        &self.batch.rejects
    }

    /// The columnar batch itself, for bulk access to whole columns.
    pub fn batch(&self) -> &'a Batch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ColumnVector;

    fn text(values: &[&str], nulls: Option<Vec<u8>>) -> ColumnVector {
        let mut data = Vec::new();
        let mut ends = Vec::new();
        for v in values {
            data.extend_from_slice(v.as_bytes());
            ends.push(data.len() as u32);
        }
        ColumnVector {
            data: ColumnData::Text(VarWidth { data, ends }),
            nulls,
        }
    }

    fn sample() -> Rows {
        Rows {
            row_count: 3,
            columns: vec![
                text(&["Zürich", "", "Bern"], Some(vec![0b010])),
                ColumnVector {
                    data: ColumnData::Integer(vec![7, 0, -2]),
                    nulls: None,
                },
                ColumnVector {
                    data: ColumnData::Real(vec![0.5, 1.0, 0.0]),
                    nulls: Some(vec![0b100]),
                },
                ColumnVector {
                    data: ColumnData::Boolean(vec![1, 0, 1]),
                    nulls: None,
                },
                ColumnVector {
                    data: ColumnData::Blob(VarWidth {
                        data: vec![1, 2, 3],
                        ends: vec![0, 2, 3],
                    }),
                    nulls: None,
                },
            ],
        }
    }

    #[test]
    fn reads_every_kind_and_honours_nulls() {
        let rows = sample();
        let view = RowsView::new(&rows);
        assert_eq!((view.len(), view.column_count()), (3, 5));
        assert_eq!(view.cell(0, 0), Cell::Text("Zürich"));
        assert_eq!(view.cell(1, 0), Cell::Null);
        assert_eq!(view.text(2, 0), Some("Bern"));
        assert_eq!(view.integer(2, 1), Some(-2));
        assert_eq!(view.real(0, 2), Some(0.5));
        assert_eq!(view.cell(2, 2), Cell::Null);
        assert!(view.is_null(2, 2) && !view.is_null(0, 2));
        assert_eq!(view.boolean(1, 3), Some(false));
        assert_eq!(view.blob(0, 4), Some(&[][..]));
        assert_eq!(view.blob(1, 4), Some(&[1, 2][..]));
        assert_eq!(view.text(0, 1), None, "an integer column has no text");
    }

    #[test]
    fn rows_iterate_in_order_with_cells() {
        let rows = sample();
        let view = RowsView::new(&rows);
        let firsts: Vec<_> = view.rows().map(|r| (r.index(), r.text(0))).collect();
        assert_eq!(
            firsts,
            vec![(0, Some("Zürich")), (1, None), (2, Some("Bern"))]
        );
        let row = view.row(2);
        assert_eq!(row.cells().count(), 5);
        assert_eq!(row.get(1), Cell::Integer(-2));
    }

    #[test]
    fn text_split_inside_a_character_reads_as_blob() {
        // "ü" is two bytes; ends [1, 2] cut it in half although the whole buffer is valid.
        let rows = Rows {
            row_count: 2,
            columns: vec![ColumnVector {
                data: ColumnData::Text(VarWidth {
                    data: "ü".as_bytes().to_vec(),
                    ends: vec![1, 2],
                }),
                nulls: None,
            }],
        };
        let view = RowsView::new(&rows);
        assert!(matches!(view.cell(0, 0), Cell::Blob(b) if b.len() == 1));
    }

    #[test]
    fn batch_view_reads_rows_positions_and_checkpoint() {
        let batch = Batch {
            rows: sample(),
            positions: vec![2, 3, 5],
            rejects: vec![SourceReject {
                position: 4,
                reason: "too few fields".into(),
                raw: "x".into(),
            }],
            checkpoint: "offset=42".into(),
            progress: crate::Progress {
                done: 42,
                total: None,
            },
        };
        let view = BatchView::new(&batch);
        assert_eq!((view.len(), view.is_empty()), (3, false));
        let ids: Vec<_> = view.rows().map(|r| r.integer(1)).collect();
        assert_eq!(ids, vec![Some(7), Some(0), Some(-2)]);
        assert_eq!(view.view().text(2, 0), Some("Bern"));
        assert_eq!(view.positions(), &[2, 3, 5]);
        assert_eq!(view.checkpoint(), "offset=42");
        assert_eq!(view.source_rejects()[0].position, 4);
        assert_eq!(view.batch().rows.row_count, 3);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn out_of_range_row_panics() {
        let rows = sample();
        RowsView::new(&rows).cell(3, 0);
    }
}
