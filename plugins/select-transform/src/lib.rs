//! `select-transform`: the compliant subset of a stream. Only the columns listed in `columns`
//! leave (a column the source adds later is dropped, not passed through); rows must pass every
//! filter (a small expression language, `expr.rs`) or are dropped — counted as filtered, not
//! rejected; listed columns can leave masked (`redact`, `keep_last`, salted SHA-256
//! `pseudonym`). Per batch it reports `filtered.<rule>` and `masked.<column>` counts, which the
//! host sums into the run record.
//!
//! It declares a projection: only the columns it lists or filters on cross into it, only the
//! masked ones cross back, and the host copies the others.

mod config;
mod expr;
mod filter;
mod mask;

use config::{SelectConfig, Selection};
use weir_sdk::{
    Cell, Counts, Error, PluginInfo, Projection, Rows, Schema, Transform, Transformed, Transformer,
    Verdict, filter_map_rows,
};

const NAME: &str = "select-transform";

/// The plugin.
pub struct SelectTransformPlugin;

/// The transform of one stream.
pub struct SelectTransform {
    selection: Selection,
    /// Count names, built once: `filtered.<rule>` per rule, `masked.<column>` per mask.
    filtered_names: Vec<String>,
    masked_names: Vec<String>,
}

impl Transformer for SelectTransformPlugin {
    type Transform = SelectTransform;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "an explicit column allow-list, row filters and masking (redact, keep last N, salted pseudonym)".to_owned(),
            config_schema: config::CONFIG_SCHEMA.to_owned(),
        }
    }

    fn open(config: &str, input: Schema) -> Result<SelectTransform, Error> {
        let config: SelectConfig = weir_sdk::parse_config(NAME, config)?;
        let selection = config
            .resolve(&input)
            .map_err(|e| Error::InvalidConfig(format!("{NAME}: {e}")))?;
        if let Some(why) = &selection.key_dropped {
            weir_sdk::log::warn(&format!(
                "{NAME}: the output has no primary key ({why}); give each loader its `key`"
            ));
        }
        Ok(SelectTransform {
            filtered_names: selection
                .rules
                .iter()
                .map(|r| format!("filtered.{}", r.name))
                .collect(),
            masked_names: selection
                .masks
                .iter()
                .map(|m| format!("masked.{}", m.name))
                .collect(),
            selection,
        })
    }
}

impl Transform for SelectTransform {
    fn output_schema(&self) -> Schema {
        self.selection.schema.clone()
    }

    fn projection(&self) -> Option<Projection> {
        Some(self.selection.projection.clone())
    }

    fn apply(&mut self, input: Rows) -> Result<Transformed, Error> {
        let selection = &self.selection;
        let expected = selection.projection.reads.len();
        if input.columns.len() != expected {
            return Err(Error::Other(format!(
                "{NAME}: batch has {} columns, the projection reads {expected}",
                input.columns.len()
            )));
        }
        let mut filtered = vec![0u64; selection.rules.len()];
        let mut masked = vec![0u64; selection.masks.len()];
        let (mut scratch, mut text) = (String::new(), String::new());
        let result = filter_map_rows(&input, &selection.computed, |row, out| {
            for (count, rule) in filtered.iter_mut().zip(&selection.rules) {
                let keep = rule
                    .filter
                    .eval(&row)
                    .map_err(|e| format!("filter {}: {e}", rule.name))?;
                // Unknown (a null met a comparison) is not true: the row does not pass.
                if keep != Some(true) {
                    *count += 1;
                    return Ok(Verdict::Drop);
                }
            }
            for (k, (count, m)) in masked.iter_mut().zip(&selection.masks).enumerate() {
                match row.get(m.read) {
                    Cell::Null => out.set(k, Cell::Null)?,
                    cell => {
                        m.mask.apply(cell, &mut scratch, &mut text);
                        out.set(k, Cell::Text(&text))?;
                        *count += 1;
                    }
                }
            }
            Ok(Verdict::Keep)
        });
        let mut counts = Counts::default();
        for (name, n) in self.filtered_names.iter().zip(filtered) {
            counts.add(name, n);
        }
        for (name, n) in self.masked_names.iter().zip(masked) {
            counts.add(name, n);
        }
        Ok(result.with_counts(counts))
    }
}

weir_sdk::export_transformer!(SelectTransformPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::{Column, Kind, OutputColumn, RowsBuilder, RowsView};

    fn input_schema() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("name", Kind::Text, true),
                Column::new("national_id", Kind::Text, true),
                Column::new("consent", Kind::Boolean, true),
                Column::new("status", Kind::Text, true),
                Column::new("phone", Kind::Text, true),
            ],
            primary_key: vec!["id".into()],
        }
    }

    const CONFIG: &str = r#"{
        "columns": ["id", "name", "phone", "status"],
        "filters": [
            {"name": "consent", "keep": "consent = true"},
            {"name": "status", "keep": "status in ('active', 'pending')"}
        ],
        "mask": {"name": "pseudonym", "phone": {"keep_last": 2}},
        "salt": "0123456789abcdef"
    }"#;

    /// Run the transform as the host would: only the projection's reads cross, and the host
    /// assembles the output from computed and copied columns.
    fn run(rows: &Rows) -> (Transformed, Vec<Vec<String>>) {
        let mut t = SelectTransformPlugin::open(CONFIG, input_schema()).unwrap();
        let p = t.projection().unwrap();
        let read = Rows {
            row_count: rows.row_count,
            columns: p
                .reads
                .iter()
                .map(|&j| rows.columns[j as usize].clone())
                .collect(),
        };
        let out = t.apply(read).unwrap();
        let computed = RowsView::new(&out.rows);
        let source = RowsView::new(rows);
        let survivors: Vec<usize> = (0..rows.row_count as usize)
            .filter(|i| {
                !out.dropped.contains(&(*i as u32))
                    && !out.rejects.iter().any(|r| r.index as usize == *i)
            })
            .collect();
        let table = survivors
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                p.outputs
                    .iter()
                    .map(|o| match *o {
                        OutputColumn::Computed(c) => format!("{:?}", computed.cell(k, c as usize)),
                        OutputColumn::Input(j) => format!("{:?}", source.cell(i, j as usize)),
                    })
                    .collect()
            })
            .collect();
        (out, table)
    }

    fn rows() -> Rows {
        let mut b = RowsBuilder::new(&input_schema());
        let data: [(i64, Option<&str>, Option<bool>, &str, Option<&str>); 5] = [
            (1, Some("Ada"), Some(true), "active", Some("0791234567")),
            (2, Some("Bob"), Some(false), "active", Some("0790000000")),
            (3, None, Some(true), "pending", None),
            (4, Some("Cy"), None, "active", Some("1")),
            (5, Some("Di"), Some(true), "closed", Some("55")),
        ];
        for (id, name, consent, status, phone) in data {
            b.push_row([
                Cell::Integer(id),
                name.into(),
                Cell::Text("756.0000.0000.00"),
                consent.into(),
                Cell::Text(status),
                phone.into(),
            ])
            .unwrap();
        }
        b.finish()
    }

    #[test]
    fn only_listed_consenting_rows_leave_masked_and_counted() {
        let (out, table) = run(&rows());
        assert_eq!(
            out.dropped,
            [1, 3, 4],
            "no consent, unknown consent, closed"
        );
        assert!(out.rejects.is_empty());
        let ada = &table[0];
        assert_eq!(ada[0], "Integer(1)");
        // SHA-256("0123456789abcdef" ‖ "Ada") in hex.
        assert_eq!(
            ada[1],
            r#"Text("b9d30d3bbef1d455b7a1ec515dbe4df526b3ba907d8e1a9503d0b05e91dac518")"#
        );
        assert_eq!(ada[2], r#"Text("********67")"#);
        assert_eq!(ada[3], r#"Text("active")"#);
        assert_eq!(
            table[1],
            ["Integer(3)", "Null", "Null", r#"Text("pending")"#]
        );
        let counts: Vec<_> = out
            .counts
            .iter()
            .map(|c| (c.name.as_str(), c.value))
            .collect();
        assert_eq!(
            counts,
            [
                ("filtered.consent", 2),
                ("filtered.status", 1),
                ("masked.name", 1),
                ("masked.phone", 1)
            ]
        );
        for row in &table {
            assert!(
                row.iter().all(|v| !v.contains("756.")),
                "national_id never leaves"
            );
        }
    }

    #[test]
    fn a_new_source_column_is_dropped_not_passed_through() {
        let mut wider = input_schema();
        wider
            .columns
            .push(Column::new("diagnosis", Kind::Text, true));
        let t = SelectTransformPlugin::open(CONFIG, wider).unwrap();
        let names: Vec<_> = t
            .output_schema()
            .columns
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["id", "name", "phone", "status"]);
        assert!(!t.projection().unwrap().reads.contains(&6));
    }

    #[test]
    fn config_errors_are_invalid_config_naming_the_plugin() {
        let Err(Error::InvalidConfig(m)) =
            SelectTransformPlugin::open(r#"{"columns": ["id"], "colums": []}"#, input_schema())
        else {
            panic!("unknown keys are refused");
        };
        assert!(
            m.starts_with("select-transform: invalid config: unknown field `colums`"),
            "{m}"
        );
        let Err(Error::InvalidConfig(m)) =
            SelectTransformPlugin::open(r#"{"columns": ["ssn"]}"#, input_schema())
        else {
            panic!("unknown columns are refused");
        };
        assert!(
            m.starts_with("select-transform: columns[0]: no column `ssn`"),
            "{m}"
        );
    }
}
