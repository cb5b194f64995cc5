//! The row-by-row transform loops, and counts a transform reports.

use std::collections::BTreeMap;

use crate::{Count, RowOut, RowReject, RowView, Rows, RowsBuilder, RowsView, Schema, Transformed};

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
    filter_map_rows(input, output, |row, out| {
        f(row, out).map(|()| Verdict::Keep)
    })
}

/// What a [`filter_map_rows`] closure decided for its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Output the row with the cells set.
    Keep,
    /// Leave the row out on purpose (a row filter): it is reported in `dropped`, which the
    /// host counts as filtered, not as a reject. Cells already set are discarded.
    Drop,
}

/// [`map_rows`] for a transform that also filters: `f` returns [`Verdict::Drop`] to leave a row
/// out on purpose. Dropped rows are listed in the result's `dropped` (the host counts them as
/// filtered); `Err(reason)` still rejects the row. Output rows stay in input order.
///
/// ```
/// use weir_sdk::{Cell, Column, Kind, Rows, RowsBuilder, Schema, Verdict, filter_map_rows};
///
/// let schema = Schema { columns: vec![Column::new("n", Kind::Integer, false)], primary_key: vec![] };
/// let mut input = RowsBuilder::new(&schema);
/// for n in [1, 2, 3, 4] {
///     input.push_row([Cell::Integer(n)]).unwrap();
/// }
/// // Keep the even numbers.
/// let out = filter_map_rows(&input.finish(), &schema, |row, out| {
///     if row.integer(0).unwrap_or(0) % 2 == 1 {
///         return Ok(Verdict::Drop);
///     }
///     out.set(0, row.get(0))?;
///     Ok(Verdict::Keep)
/// });
/// assert_eq!((out.rows.row_count, out.dropped), (2, vec![0, 2]));
/// ```
pub fn filter_map_rows(
    input: &Rows,
    output: &Schema,
    mut f: impl FnMut(RowView<'_>, &mut RowOut<'_>) -> Result<Verdict, String>,
) -> Transformed {
    let view = RowsView::new(input);
    let mut builder = RowsBuilder::with_capacity(output, view.len());
    let mut rejects = Vec::new();
    let mut dropped = Vec::new();
    for row in view.rows() {
        let index = u32::try_from(row.index()).expect("row indexes come from a u32 row count");
        let mut out = builder.row();
        match f(row, &mut out) {
            // Dropping `out` uncommitted discards whatever cells were set.
            Ok(Verdict::Drop) => dropped.push(index),
            Ok(Verdict::Keep) => {
                if let Err(e) = out.commit() {
                    rejects.push(RowReject {
                        index,
                        reason: e.into(),
                    });
                }
            }
            Err(reason) => rejects.push(RowReject { index, reason }),
        }
    }
    Transformed {
        rows: builder.finish(),
        rejects,
        dropped,
        counts: Vec::new(),
    }
}

/// Named counts a transform reports for a batch (`masked.email`, `filtered.consent`): the host
/// sums each over the run and keeps the totals in the run record as `"<transform>.<name>"`.
///
/// ```
/// let mut counts = weir_sdk::Counts::default();
/// counts.add("masked.email", 3);
/// counts.add("masked.email", 2);
/// counts.add("filtered.consent", 0); // zeros are not reported
/// let reported = counts.into_counts();
/// assert_eq!(reported.len(), 1);
/// assert_eq!((reported[0].name.as_str(), reported[0].value), ("masked.email", 5));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<String, u64>);

impl Counts {
    /// Add `n` to the count `name` (a short snake_case name; dots group related counts).
    pub fn add(&mut self, name: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.0.get_mut(name) {
            Some(total) => *total += n,
            None => {
                self.0.insert(name.to_owned(), n);
            }
        }
    }

    /// The count `name` so far (0 if never added).
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The non-zero counts, by name, as `Transformed::counts` takes them.
    pub fn into_counts(self) -> Vec<Count> {
        self.0
            .into_iter()
            .map(|(name, value)| Count { name, value })
            .collect()
    }
}

impl Transformed {
    /// The same result, reporting `counts` for its batch.
    pub fn with_counts(mut self, counts: Counts) -> Self {
        self.counts.extend(counts.into_counts());
        self
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
    fn dropped_rows_are_neither_output_nor_rejected() {
        let out_schema = schema(&[("name", Kind::Text, false), ("qty", Kind::Integer, true)]);
        let result = filter_map_rows(&input(), &out_schema, |row, out| {
            out.set(0, row.get(0))?;
            match row.text(1) {
                // Cells were set before the drop: they must not leak into the next row.
                Some("") => return Ok(Verdict::Drop),
                Some(qty) => out.set(1, Cell::Text(qty))?,
                None => {}
            }
            Ok(Verdict::Keep)
        });
        let view = RowsView::new(&result.rows);
        let names: Vec<_> = (0..view.len()).map(|r| view.text(r, 0)).collect();
        assert_eq!(names, vec![Some("apple"), Some("plum")]);
        assert_eq!(result.dropped, vec![2], "fig has an empty qty");
        let rejects: Vec<_> = result.rejects.iter().map(|r| r.index).collect();
        assert_eq!(rejects, vec![1], "pear's qty is not an integer");
        assert_eq!(view.integer(1, 1), Some(5));
    }

    #[test]
    fn counts_sum_by_name_and_skip_zeros() {
        let mut counts = Counts::default();
        counts.add("masked.phone", 2);
        counts.add("filtered.consent", 0);
        counts.add("masked.phone", 1);
        counts.add("filtered.status", 4);
        assert_eq!(counts.get("masked.phone"), 3);
        assert_eq!(counts.get("filtered.consent"), 0);
        let result = map_rows(&input(), &schema(&[]), |_, _| Ok(())).with_counts(counts);
        let reported: Vec<_> = result
            .counts
            .iter()
            .map(|c| (c.name.as_str(), c.value))
            .collect();
        assert_eq!(reported, vec![("filtered.status", 4), ("masked.phone", 3)]);
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
