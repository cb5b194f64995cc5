//! The row-by-row transform loop.

use crate::{RowOut, RowReject, RowView, Rows, RowsBuilder, RowsView, Schema, Transformed};

/// Run `f` once per input row to build the output rows of a transform.
///
/// `f` reads the input row and sets the output cells (unset ones are null). `Ok` keeps the
/// row; `Err(reason)` rejects it, with the input row's index, and nothing of it is output.
/// A row whose cells do not fit `output` (e.g. null in a non-nullable column) is rejected with
/// the builder's reason. Output rows stay in input order, which is what lets the host work out
/// their source positions from the rejects alone.
pub fn map_rows(
    input: &Rows,
    output: &Schema,
    mut f: impl FnMut(RowView<'_>, &mut RowOut<'_>) -> Result<(), String>,
) -> Transformed {
    let view = RowsView::new(input);
    let mut builder = RowsBuilder::with_capacity(output, view.len());
    let mut rejects = Vec::new();
    for row in view.rows() {
        let mut out = builder.row();
        let outcome = f(row, &mut out).and_then(|()| out.commit().map_err(String::from));
        if let Err(reason) = outcome {
            let index = u32::try_from(row.index()).expect("row indexes come from a u32 row count");
            rejects.push(RowReject { index, reason });
        }
    }
    Transformed {
        rows: builder.finish(),
        rejects,
        dropped: Vec::new(),
        counts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cell, Column, Kind};

    fn schema(columns: &[(&str, Kind, bool)]) -> Schema {
        Schema {
            columns: columns
                .iter()
                .map(|&(n, k, null)| Column::new(n, k, null))
                .collect(),
            primary_key: vec![],
        }
    }

    fn input() -> Rows {
        let s = schema(&[("name", Kind::Text, true), ("qty", Kind::Text, true)]);
        let mut b = RowsBuilder::new(&s);
        for (name, qty) in [("apple", "3"), ("pear", "x"), ("fig", ""), ("plum", "5")] {
            b.push_row([Cell::Text(name), Cell::Text(qty)]).unwrap();
        }
        b.finish()
    }

    #[test]
    fn keeps_order_and_reports_rejects_by_input_index() {
        let out_schema = schema(&[("qty", Kind::Integer, false), ("name", Kind::Text, true)]);
        let result = map_rows(&input(), &out_schema, |row, out| {
            let qty = row.text(1).unwrap_or_default();
            if qty.is_empty() {
                return Err("qty: missing".to_owned());
            }
            out.set(0, Cell::Text(qty))?;
            out.set(1, row.text(0).map(str::to_uppercase).as_ref())?;
            Ok(())
        });
        let view = RowsView::new(&result.rows);
        assert_eq!(view.len(), 2);
        assert_eq!(
            (view.integer(0, 0), view.text(0, 1)),
            (Some(3), Some("APPLE"))
        );
        assert_eq!(
            (view.integer(1, 0), view.text(1, 1)),
            (Some(5), Some("PLUM"))
        );
        let rejects: Vec<_> = result
            .rejects
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            rejects,
            vec![
                (1, r#"qty: cannot store "x" as integer"#),
                (2, "qty: missing")
            ]
        );
    }

    #[test]
    fn an_unset_non_nullable_column_rejects_the_row() {
        let out_schema = schema(&[("name", Kind::Text, false)]);
        let result = map_rows(&input(), &out_schema, |row, out| {
            if row.index() != 1 {
                out.set(0, row.get(0))?;
            }
            Ok(())
        });
        assert_eq!(result.rows.row_count, 3);
        assert_eq!(result.rejects.len(), 1);
        assert_eq!(result.rejects[0].index, 1);
        assert_eq!(
            result.rejects[0].reason,
            "name: null, but the column is not nullable"
        );
    }
}
