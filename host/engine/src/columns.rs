//! Host-side reading of columnar batches: validation against the schema (lengths, offsets,
//! UTF-8) once per column, then cheap per-cell access for binding into SQLite.

use rusqlite::types::ValueRef;
use weir_runtime::types::{ColumnData, Rows, Schema};

/// A validated column.
pub enum ColumnView<'a> {
    Boolean(&'a [u8]),
    Integer(&'a [i64]),
    Real(&'a [f64]),
    /// Valid UTF-8, split on character boundaries (checked by [`RowsView::new`]).
    Text {
        data: &'a [u8],
        ends: &'a [u32],
    },
    Blob {
        data: &'a [u8],
        ends: &'a [u32],
    },
}

/// A validated batch of rows.
pub struct RowsView<'a> {
    pub row_count: usize,
    columns: Vec<(ColumnView<'a>, Option<&'a [u8]>)>,
}

impl<'a> RowsView<'a> {
    /// Check `rows` against `schema`: column count, one value per row, monotonic offsets
    /// within the buffer, UTF-8 text split on character boundaries, bitmap length.
    pub fn new(rows: &'a Rows, schema: &Schema) -> Result<Self, String> {
        Self::build(rows, schema, true)
    }

    /// A view of rows that already passed [`RowsView::new`] against the same schema (the
    /// worker checks each batch once, where it comes out of a plugin): the layout is checked
    /// again, which is cheap, but not the UTF-8 of every text byte.
    pub fn prevalidated(rows: &'a Rows, schema: &Schema) -> Result<Self, String> {
        Self::build(rows, schema, false)
    }

    fn build(rows: &'a Rows, schema: &Schema, check_utf8: bool) -> Result<Self, String> {
        let n = rows.row_count as usize;
        if rows.columns.len() != schema.columns.len() {
            return Err(format!(
                "batch has {} columns, its schema {}",
                rows.columns.len(),
                schema.columns.len()
            ));
        }
        let mut columns = Vec::with_capacity(rows.columns.len());
        for (vector, column) in rows.columns.iter().zip(&schema.columns) {
            let name = &column.name;
            let view = match &vector.data {
                ColumnData::Boolean(v) => {
                    check_len(name, v.len(), n).map(|_| ColumnView::Boolean(v))?
                }
                ColumnData::Integer(v) => {
                    check_len(name, v.len(), n).map(|_| ColumnView::Integer(v))?
                }
                ColumnData::Real(v) => check_len(name, v.len(), n).map(|_| ColumnView::Real(v))?,
                ColumnData::Text(w) => {
                    check_offsets(name, &w.data, &w.ends, n)?;
                    if check_utf8 {
                        let data = std::str::from_utf8(&w.data)
                            .map_err(|e| format!("column {name}: text is not UTF-8: {e}"))?;
                        if let Some(end) =
                            w.ends.iter().find(|&&e| !data.is_char_boundary(e as usize))
                        {
                            return Err(format!(
                                "column {name}: offset {end} splits a UTF-8 character"
                            ));
                        }
                    }
                    ColumnView::Text {
                        data: &w.data,
                        ends: &w.ends,
                    }
                }
                ColumnData::Blob(w) => {
                    check_offsets(name, &w.data, &w.ends, n)?;
                    ColumnView::Blob {
                        data: &w.data,
                        ends: &w.ends,
                    }
                }
            };
            if let Some(bits) = &vector.nulls
                && bits.len() < n.div_ceil(8)
            {
                return Err(format!("column {name}: null bitmap too short for {n} rows"));
            }
            columns.push((view, vector.nulls.as_deref()));
        }
        Ok(Self {
            row_count: n,
            columns,
        })
    }

    /// The cell at (`row`, `col`) as a SQLite value.
    #[inline]
    pub fn value(&self, row: usize, col: usize) -> ValueRef<'a> {
        let (view, nulls) = &self.columns[col];
        if let Some(bits) = nulls
            && bits[row / 8] & (1 << (row % 8)) != 0
        {
            return ValueRef::Null;
        }
        match *view {
            ColumnView::Boolean(v) => ValueRef::Integer(i64::from(v[row] != 0)),
            ColumnView::Integer(v) => ValueRef::Integer(v[row]),
            ColumnView::Real(v) => ValueRef::Real(v[row]),
            ColumnView::Text { data, ends } => {
                let (s, e) = span(ends, row);
                ValueRef::Text(&data[s..e])
            }
            ColumnView::Blob { data, ends } => {
                let (s, e) = span(ends, row);
                ValueRef::Blob(&data[s..e])
            }
        }
    }

    /// A row as a JSON object `{column: value}`, for the rejects table.
    pub fn row_json(&self, row: usize, schema: &Schema) -> String {
        let mut map = serde_json::Map::new();
        for (col, column) in schema.columns.iter().enumerate() {
            let value = match self.value(row, col) {
                ValueRef::Null => serde_json::Value::Null,
                ValueRef::Integer(i) => i.into(),
                ValueRef::Real(r) => r.into(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                ValueRef::Blob(b) => format!("<{} bytes>", b.len()).into(),
            };
            map.insert(column.name.clone(), value);
        }
        serde_json::Value::Object(map).to_string()
    }
}

#[inline]
fn span(ends: &[u32], row: usize) -> (usize, usize) {
    let start = if row == 0 { 0 } else { ends[row - 1] as usize };
    (start, ends[row] as usize)
}

fn check_len(name: &str, len: usize, rows: usize) -> Result<(), String> {
    if len == rows {
        Ok(())
    } else {
        Err(format!("column {name} has {len} values for {rows} rows"))
    }
}

fn check_offsets(name: &str, data: &[u8], ends: &[u32], rows: usize) -> Result<(), String> {
    check_len(name, ends.len(), rows)?;
    let mut previous = 0u32;
    for &end in ends {
        if end < previous {
            return Err(format!(
                "column {name}: end offsets decrease ({previous} then {end})"
            ));
        }
        previous = end;
    }
    if previous as usize > data.len() {
        return Err(format!(
            "column {name}: offset {previous} is past the end of its {}-byte buffer",
            data.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_runtime::types::{Column, ColumnVector, Kind, VarWidth};

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: Kind::Integer,
                    nullable: false,
                },
                Column {
                    name: "name".into(),
                    kind: Kind::Text,
                    nullable: true,
                },
            ],
            primary_key: vec![],
        }
    }

    fn rows(ends: Vec<u32>, data: &[u8]) -> Rows {
        Rows {
            row_count: 3,
            columns: vec![
                ColumnVector {
                    data: ColumnData::Integer(vec![1, 2, 3]),
                    nulls: None,
                },
                ColumnVector {
                    data: ColumnData::Text(VarWidth {
                        data: data.to_vec(),
                        ends,
                    }),
                    nulls: Some(vec![0b010]),
                },
            ],
        }
    }

    #[test]
    fn reads_cells_and_nulls() {
        let r = rows(vec![2, 2, 9], "äbZürch".as_bytes());
        let v = RowsView::new(&r, &schema()).unwrap();
        assert_eq!(v.value(0, 0), ValueRef::Integer(1));
        assert_eq!(v.value(0, 1), ValueRef::Text("ä".as_bytes()));
        assert_eq!(v.value(1, 1), ValueRef::Null);
        assert_eq!(v.value(2, 1), ValueRef::Text("bZürch".as_bytes()));
        assert_eq!(v.row_json(2, &schema()), r#"{"id":3,"name":"bZürch"}"#);
    }

    #[test]
    fn filters_rows_with_their_nulls_and_flags_oversized_ones() {
        let r = rows(vec![2, 2, 9], "äbZürch".as_bytes());
        let kept = filter_rows(&r, &[false, true, true]);
        let v = RowsView::new(&kept, &schema()).unwrap();
        assert_eq!(v.row_count, 2);
        assert_eq!(v.value(0, 0), ValueRef::Integer(2));
        assert_eq!(v.value(0, 1), ValueRef::Null);
        assert_eq!(v.value(1, 1), ValueRef::Text("bZürch".as_bytes()));

        let bounds = SizeBounds {
            max_value_bytes: 5,
            max_row_bytes: 100,
            max_batch_bytes: 1000,
        };
        let verdict = oversized_rows(&r, &schema(), &bounds);
        assert_eq!(verdict[0], None);
        assert!(
            verdict[2]
                .as_deref()
                .unwrap()
                .contains("column name is 7 bytes")
        );
        assert_eq!(batch_bytes(&r), 3 * 8 + 9 + 3 * 4 + 1);

        // Each value fits, but the whole row (8 bytes of id + 7 of name) does not.
        let rows_only = SizeBounds {
            max_value_bytes: 100,
            max_row_bytes: 12,
            max_batch_bytes: 1000,
        };
        let verdict = oversized_rows(&r, &schema(), &rows_only);
        assert_eq!(&verdict[..2], &[None, None]);
        assert_eq!(
            verdict[2].as_deref(),
            Some("row is 15 bytes, more than max_row_bytes (12)")
        );
    }

    #[test]
    fn rejects_broken_batches() {
        let bad_boundary = rows(vec![1, 2, 7], "äbZürch".as_bytes());
        assert!(
            RowsView::new(&bad_boundary, &schema())
                .err()
                .unwrap()
                .contains("splits")
        );
        let past_end = rows(vec![1, 2, 99], b"abc");
        assert!(
            RowsView::new(&past_end, &schema())
                .err()
                .unwrap()
                .contains("past the end")
        );
        let decreasing = rows(vec![2, 1, 3], b"abc");
        assert!(
            RowsView::new(&decreasing, &schema())
                .err()
                .unwrap()
                .contains("decrease")
        );
        let bad_utf8 = rows(vec![1, 2, 3], &[b'a', 0xff, b'c']);
        assert!(
            RowsView::new(&bad_utf8, &schema())
                .err()
                .unwrap()
                .contains("UTF-8")
        );
    }
}

/// Size bounds on what an extractor hands over, so one absurd record is a reject with its
/// line instead of an out-of-memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeBounds {
    /// Largest single text or blob value.
    pub max_value_bytes: usize,
    /// Largest row (sum of its values).
    pub max_row_bytes: usize,
    /// Largest batch (sum of all buffers); past it the worker fails.
    pub max_batch_bytes: usize,
}

impl Default for SizeBounds {
    fn default() -> Self {
        Self {
            max_value_bytes: 16 << 20,
            max_row_bytes: 32 << 20,
            max_batch_bytes: 128 << 20,
        }
    }
}

/// Bytes a batch occupies (buffers only).
pub fn batch_bytes(rows: &Rows) -> usize {
    rows.columns
        .iter()
        .map(|c| {
            let data = match &c.data {
                ColumnData::Boolean(v) => v.len(),
                ColumnData::Integer(v) => v.len() * 8,
                ColumnData::Real(v) => v.len() * 8,
                ColumnData::Text(w) | ColumnData::Blob(w) => w.data.len() + w.ends.len() * 4,
            };
            data + c.nulls.as_ref().map_or(0, Vec::len)
        })
        .sum()
}

/// For each row, why it breaks the bounds (`None` = fine). Call on a validated batch.
pub fn oversized_rows(rows: &Rows, schema: &Schema, bounds: &SizeBounds) -> Vec<Option<String>> {
    let n = rows.row_count as usize;
    let mut row_bytes = vec![0usize; n];
    let mut verdict: Vec<Option<String>> = vec![None; n];
    for (vector, column) in rows.columns.iter().zip(&schema.columns) {
        match &vector.data {
            ColumnData::Text(w) | ColumnData::Blob(w) => {
                let mut start = 0usize;
                for (row, &end) in w.ends.iter().enumerate() {
                    let len = end as usize - start;
                    start = end as usize;
                    row_bytes[row] += len;
                    if len > bounds.max_value_bytes && verdict[row].is_none() {
                        verdict[row] = Some(format!(
                            "value of column {} is {len} bytes, more than max_value_bytes ({})",
                            column.name, bounds.max_value_bytes
                        ));
                    }
                }
            }
            _ => row_bytes.iter_mut().for_each(|b| *b += 8),
        }
    }
    for (row, bytes) in row_bytes.into_iter().enumerate() {
        if bytes > bounds.max_row_bytes && verdict[row].is_none() {
            verdict[row] = Some(format!(
                "row is {bytes} bytes, more than max_row_bytes ({})",
                bounds.max_row_bytes
            ));
        }
    }
    verdict
}

/// A batch of no rows shaped by `schema`.
pub fn empty_rows(schema: &Schema) -> Rows {
    use weir_runtime::types::{ColumnVector, Kind, VarWidth};
    let columns = schema
        .columns
        .iter()
        .map(|c| ColumnVector {
            data: match c.kind {
                Kind::Integer => ColumnData::Integer(Vec::new()),
                Kind::Real => ColumnData::Real(Vec::new()),
                Kind::Boolean => ColumnData::Boolean(Vec::new()),
                Kind::Blob => ColumnData::Blob(VarWidth {
                    data: Vec::new(),
                    ends: Vec::new(),
                }),
                _ => ColumnData::Text(VarWidth {
                    data: Vec::new(),
                    ends: Vec::new(),
                }),
            },
            nulls: None,
        })
        .collect();
    Rows {
        row_count: 0,
        columns,
    }
}

/// Keep the rows where `keep[i]` is true, in order.
pub fn filter_rows(rows: &Rows, keep: &[bool]) -> Rows {
    let kept = keep.iter().filter(|k| **k).count();
    Rows {
        row_count: kept as u32,
        columns: rows
            .columns
            .iter()
            .map(|c| filter_column(c, rows.row_count as usize, keep, kept))
            .collect(),
    }
}

/// One column of `row_count` rows with only the rows `keep` says (`kept` of them).
pub fn filter_column(
    column: &weir_runtime::types::ColumnVector,
    row_count: usize,
    keep: &[bool],
    kept: usize,
) -> weir_runtime::types::ColumnVector {
    use weir_runtime::types::{ColumnVector, VarWidth};
    let pick = |len: usize| (0..len).filter(|&i| keep[i]);
    let data = match &column.data {
        ColumnData::Boolean(v) => ColumnData::Boolean(pick(v.len()).map(|i| v[i]).collect()),
        ColumnData::Integer(v) => ColumnData::Integer(pick(v.len()).map(|i| v[i]).collect()),
        ColumnData::Real(v) => ColumnData::Real(pick(v.len()).map(|i| v[i]).collect()),
        ColumnData::Text(w) | ColumnData::Blob(w) => {
            let mut out = VarWidth {
                data: Vec::new(),
                ends: Vec::with_capacity(kept),
            };
            for i in pick(w.ends.len()) {
                let (s, e) = span(&w.ends, i);
                out.data.extend_from_slice(&w.data[s..e]);
                out.ends.push(out.data.len() as u32);
            }
            if matches!(column.data, ColumnData::Text(_)) {
                ColumnData::Text(out)
            } else {
                ColumnData::Blob(out)
            }
        }
    };
    let nulls = column.nulls.as_ref().map(|bits| {
        let mut out = vec![0u8; kept.div_ceil(8)];
        for (j, i) in pick(row_count).enumerate() {
            if bits[i / 8] & (1 << (i % 8)) != 0 {
                out[j / 8] |= 1 << (j % 8);
            }
        }
        out
    });
    ColumnVector { data, nulls }
}
