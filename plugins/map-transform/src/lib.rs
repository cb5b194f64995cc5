//! `map-transform`: rename, select, trim, cast and validate columns.
//!
//! Per output column, in this order: trim (configured text columns; typed columns always),
//! default for a null or empty value, `required` check (primary key columns are required),
//! cast by `types`. A value that does not
//! cast rejects its row, naming the column (`amount: "12,x" is not a decimal (decimal
//! comma)`); empty text in a typed column is null. Casts give the contract's canonical text:
//! decimal `-1234.50`, date `2026-01-31`, timestamp `2026-01-31T07:05:00`.

mod cast;
mod config;
mod date;

use config::{MapTransformConfig, Mapping};
use weir_sdk::{
    ColumnData, ColumnVector, Error, PluginInfo, Rows, Schema, Transform, Transformed, Transformer,
    VarWidth, map_rows,
};

const NAME: &str = "map-transform";

/// The plugin.
pub struct MapTransformPlugin;

/// The transform of one stream.
pub struct MapTransform {
    mapping: Mapping,
    /// Scratch space for canonical text, reused across cells.
    buf: String,
}

impl Transformer for MapTransformPlugin {
    type Transform = MapTransform;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "rename, select, trim, cast and validate columns".to_owned(),
            config_schema: config::CONFIG_SCHEMA.to_owned(),
        }
    }

    fn open(config: &str, input: Schema) -> Result<MapTransform, Error> {
        let config: MapTransformConfig = weir_sdk::parse_config(NAME, config)?;
        let mapping = config
            .resolve(&input)
            .map_err(|e| Error::InvalidConfig(format!("{NAME}: {e}")))?;
        Ok(MapTransform {
            mapping,
            buf: String::new(),
        })
    }
}

impl Transform for MapTransform {
    fn output_schema(&self) -> Schema {
        self.mapping.schema.clone()
    }

    fn apply(&mut self, input: Rows) -> Result<Transformed, Error> {
        let mapping = &self.mapping;
        if input.columns.len() != mapping.input_columns {
            return Err(Error::Other(format!(
                "{NAME}: batch has {} columns, the input schema has {}",
                input.columns.len(),
                mapping.input_columns
            )));
        }
        let buf = &mut self.buf;
        let moved = moved_columns(mapping, &input);
        if !moved.iter().any(|&m| m) {
            return Ok(map_rows(&input, &mapping.schema, |row, out| {
                for (index, column) in mapping.columns.iter().enumerate() {
                    out.set(index, mapping.value(column, row.get(column.input), buf)?)?;
                }
                Ok(())
            }));
        }
        // Only the columns that change go through the row loop; the others are moved over
        // whole (minus the rejected rows), which for wide text columns is most of the batch.
        let computed: Vec<usize> = (0..moved.len()).filter(|&o| !moved[o]).collect();
        let schema = Schema {
            columns: computed
                .iter()
                .map(|&o| mapping.schema.columns[o].clone())
                .collect(),
            primary_key: Vec::new(),
        };
        let Transformed { rows, rejects, .. } = map_rows(&input, &schema, |row, out| {
            for (index, &o) in computed.iter().enumerate() {
                let column = &mapping.columns[o];
                out.set(index, mapping.value(column, row.get(column.input), buf)?)?;
            }
            Ok(())
        });
        let keep = (!rejects.is_empty()).then(|| {
            let mut keep = vec![true; input.row_count as usize];
            for r in &rejects {
                keep[r.index as usize] = false;
            }
            keep
        });
        let mut inputs: Vec<Option<ColumnVector>> = input.columns.into_iter().map(Some).collect();
        let mut computed_columns = rows.columns.into_iter();
        let columns = mapping
            .columns
            .iter()
            .zip(&moved)
            .map(|(column, &moved)| {
                if !moved {
                    return computed_columns.next().expect("one per computed column");
                }
                let vector = inputs[column.input]
                    .take()
                    .expect("a moved column's input feeds only that column");
                match &keep {
                    Some(keep) => keep_rows(vector, keep),
                    None => vector,
                }
            })
            .collect();
        Ok(Transformed {
            rows: Rows {
                row_count: rows.row_count,
                columns,
            },
            rejects,
            dropped: Vec::new(),
            counts: Vec::new(),
        })
    }
}

/// Which output columns are moved from the input as they are: verbatim columns whose input
/// feeds no other output column, and whose nulls (if any) the output allows.
fn moved_columns(mapping: &Mapping, input: &Rows) -> Vec<bool> {
    let mut uses = vec![0usize; input.columns.len()];
    for column in &mapping.columns {
        uses[column.input] += 1;
    }
    mapping
        .columns
        .iter()
        .zip(&mapping.schema.columns)
        .map(|(column, output)| {
            column.is_verbatim()
                && uses[column.input] == 1
                && (output.nullable || input.columns[column.input].nulls.is_none())
        })
        .collect()
}

/// The values of the rows where `keep` is true, in order.
fn keep_rows(vector: ColumnVector, keep: &[bool]) -> ColumnVector {
    fn pick<T: Copy>(values: &[T], keep: &[bool]) -> Vec<T> {
        values
            .iter()
            .zip(keep)
            .filter_map(|(v, &k)| k.then_some(*v))
            .collect()
    }
    fn pick_var(w: &VarWidth, keep: &[bool]) -> VarWidth {
        let mut out = VarWidth {
            data: Vec::with_capacity(w.data.len()),
            ends: Vec::with_capacity(w.ends.len()),
        };
        let mut start = 0usize;
        for (&end, &k) in w.ends.iter().zip(keep) {
            if k {
                out.data.extend_from_slice(&w.data[start..end as usize]);
                out.ends.push(out.data.len() as u32);
            }
            start = end as usize;
        }
        out
    }
    let data = match &vector.data {
        ColumnData::Boolean(v) => ColumnData::Boolean(pick(v, keep)),
        ColumnData::Integer(v) => ColumnData::Integer(pick(v, keep)),
        ColumnData::Real(v) => ColumnData::Real(pick(v, keep)),
        ColumnData::Text(w) => ColumnData::Text(pick_var(w, keep)),
        ColumnData::Blob(w) => ColumnData::Blob(pick_var(w, keep)),
    };
    let nulls = vector.nulls.as_ref().and_then(|bits| {
        let is_null = |i: usize| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
        let kept: Vec<bool> = (0..keep.len()).filter(|&i| keep[i]).map(is_null).collect();
        kept.iter().any(|&n| n).then(|| {
            let mut out = vec![0u8; kept.len().div_ceil(8)];
            for (j, _) in kept.iter().enumerate().filter(|(_, n)| **n) {
                out[j / 8] |= 1 << (j % 8);
            }
            out
        })
    });
    ColumnVector { data, nulls }
}

weir_sdk::export_transformer!(MapTransformPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::{Cell, Column, Kind, RowsBuilder, RowsView};

    fn input_schema() -> Schema {
        let text = |n: &str| Column::new(n, Kind::Text, true);
        Schema {
            columns: vec![
                text("Datum"),
                text("Betrag"),
                text("Text"),
                text("Bezahlt"),
                text("id"),
            ],
            primary_key: vec!["id".into()],
        }
    }

    fn rows(values: &[[&str; 5]]) -> Rows {
        let mut b = RowsBuilder::new(&input_schema());
        for row in values {
            b.push_row(row.iter().map(|v| Cell::Text(v))).unwrap();
        }
        b.finish()
    }

    fn open(config: &str) -> Result<MapTransform, Error> {
        MapTransformPlugin::open(config, input_schema())
    }

    fn invalid_config(config: &str) -> String {
        match open(config) {
            Err(Error::InvalidConfig(m)) => m,
            other => panic!(
                "expected invalid-config, got {:?}",
                other.map(|t| t.output_schema())
            ),
        }
    }

    const BANK: &str = r#"{
        "rename": {"Datum": "date", "Betrag": "amount", "Text": "memo", "Bezahlt": "paid"},
        "types": {"date": "date", "amount": "decimal", "paid": "boolean", "id": "integer"},
        "decimal_comma": true, "thousands_separator": "'", "date_format": "%d.%m.%Y",
        "trim": ["memo"], "required": ["amount"], "defaults": {"paid": "nein"}
    }"#;

    #[test]
    fn bank_statement_end_to_end() {
        let mut t = open(BANK).unwrap();
        let schema = t.output_schema();
        let shape: Vec<_> = schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind, c.nullable))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("date", Kind::Date, true),
                ("amount", Kind::Decimal, false),
                ("memo", Kind::Text, true),
                ("paid", Kind::Boolean, false),
                ("id", Kind::Integer, false),
            ]
        );
        assert_eq!(schema.primary_key, vec!["id"]);

        let out = t
            .apply(rows(&[
                ["31.01.2026", "-1'234,50", "  Miete ", "ja", "1"],
                ["1.2.2026", "12,x", "x", "", "2"],
                ["", " 0,05 ", "", "", " 3 "],
                ["31.02.2026", "1", "", "", "4"],
                ["01.03.2026", "", "", "", "5"],
            ]))
            .unwrap();
        let reasons: Vec<_> = out
            .rejects
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (
                    1,
                    r#"amount: "12,x" is not a decimal (decimal comma, thousands separator "'")"#
                ),
                (3, r#"date: "31.02.2026" is not a date (expected %d.%m.%Y)"#),
                (4, "amount: required, but empty"),
            ]
        );
        let view = RowsView::new(&out.rows);
        assert_eq!(view.len(), 2);
        let row0: Vec<_> = view.row(0).cells().collect();
        assert_eq!(
            row0,
            vec![
                Cell::Text("2026-01-31"),
                Cell::Text("-1234.50"),
                Cell::Text("Miete"),
                Cell::Boolean(true),
                Cell::Integer(1)
            ]
        );
        let row1: Vec<_> = view.row(1).cells().collect();
        assert_eq!(
            row1,
            vec![
                Cell::Null,
                Cell::Text("0.05"),
                Cell::Text(""),
                Cell::Boolean(false),
                Cell::Integer(3)
            ]
        );
    }

    #[test]
    fn select_orders_and_drop_removes() {
        let t = open(r#"{"rename": {"Betrag": "amount"}, "select": ["id", "amount"]}"#).unwrap();
        let names: Vec<_> = t
            .output_schema()
            .columns
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["id", "amount"]);
        assert_eq!(t.output_schema().primary_key, vec!["id"]);

        let mut t = open(r#"{"drop": ["Text", "id"]}"#).unwrap();
        let names: Vec<_> = t
            .output_schema()
            .columns
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, vec!["Datum", "Betrag", "Bezahlt"]);
        assert!(
            t.output_schema().primary_key.is_empty(),
            "the key column is gone"
        );
        let out = t.apply(rows(&[["a", "b", "c", "d", "e"]])).unwrap();
        let view = RowsView::new(&out.rows);
        assert_eq!((view.text(0, 0), view.text(0, 2)), (Some("a"), Some("d")));
    }

    #[test]
    fn verbatim_columns_are_moved_without_the_rejected_rows() {
        let mut t = open(r#"{"types": {"Betrag": "integer"}, "trim": ["Text"]}"#).unwrap();
        let mut b = RowsBuilder::new(&input_schema());
        let rows: [[Cell<'_>; 5]; 5] = [
            [
                Cell::Text("d1"),
                Cell::Text("1"),
                Cell::Text(" t1 "),
                Cell::Null,
                Cell::Text("a"),
            ],
            [
                Cell::Text("d2"),
                Cell::Text("x"),
                Cell::Text("t2"),
                Cell::Text("p2"),
                Cell::Text("b"),
            ],
            [
                Cell::Null,
                Cell::Text("3"),
                Cell::Text("t3"),
                Cell::Text("Zürich"),
                Cell::Text("c"),
            ],
            [
                Cell::Text("d4"),
                Cell::Text("y"),
                Cell::Text("t4"),
                Cell::Text("p4"),
                Cell::Text("d"),
            ],
            [
                Cell::Text(""),
                Cell::Text("5"),
                Cell::Null,
                Cell::Text("p5"),
                Cell::Text("e"),
            ],
        ];
        for row in rows {
            b.push_row(row).unwrap();
        }
        let out = t.apply(b.finish()).unwrap();
        let rejected: Vec<u32> = out.rejects.iter().map(|r| r.index).collect();
        assert_eq!(rejected, vec![1, 3]);
        let view = RowsView::new(&out.rows);
        assert_eq!(view.len(), 3);
        let cells: Vec<Vec<Cell<'_>>> = (0..3).map(|r| view.row(r).cells().collect()).collect();
        assert_eq!(
            cells,
            vec![
                vec![
                    Cell::Text("d1"),
                    Cell::Integer(1),
                    Cell::Text("t1"),
                    Cell::Null,
                    Cell::Text("a")
                ],
                vec![
                    Cell::Null,
                    Cell::Integer(3),
                    Cell::Text("t3"),
                    Cell::Text("Zürich"),
                    Cell::Text("c")
                ],
                vec![
                    Cell::Text(""),
                    Cell::Integer(5),
                    Cell::Null,
                    Cell::Text("p5"),
                    Cell::Text("e")
                ],
            ]
        );
        // Without rejects the moved columns are the input's own vectors.
        let mut b = RowsBuilder::new(&input_schema());
        b.push_row([
            Cell::Text("d"),
            Cell::Text("7"),
            Cell::Text("t"),
            Cell::Text("p"),
            Cell::Text("i"),
        ])
        .unwrap();
        let out = t.apply(b.finish()).unwrap();
        assert!(out.rejects.is_empty());
        let view = RowsView::new(&out.rows);
        assert_eq!(view.integer(0, 1), Some(7));
        assert_eq!(view.text(0, 4), Some("i"));
    }

    #[test]
    fn trim_everything_and_key_columns_are_required() {
        let mut t = open(r#"{"trim": true, "primary_key": ["Datum", "Text"]}"#).unwrap();
        let schema = t.output_schema();
        assert_eq!(schema.primary_key, vec!["Datum", "Text"]);
        assert!(!schema.columns[0].nullable && schema.columns[1].nullable);
        let out = t
            .apply(rows(&[
                [" a ", "\tb", "c\n", "", " "],
                ["  ", "b", "c", "", ""],
            ]))
            .unwrap();
        let view = RowsView::new(&out.rows);
        let cells: Vec<_> = view.row(0).cells().collect();
        let text = |s| Cell::Text(s);
        assert_eq!(
            cells,
            vec![text("a"), text("b"), text("c"), text(""), text("")]
        );
        assert_eq!(view.len(), 1);
        assert_eq!(out.rejects[0].reason, "Datum: required, but empty");
    }

    #[test]
    fn typed_text_turns_empty_into_null_and_timestamps_parse() {
        let config = r#"{"types": {"Text": "text", "Datum": "timestamp", "Betrag": "real"}, "timestamp_format": "%d.%m.%Y %H:%M"}"#;
        let mut t = open(config).unwrap();
        let out = t
            .apply(rows(&[
                ["31.01.2026 07:05", "1.5", "  ", "", "1"],
                ["31.01.2026", "x", "a", "", "2"],
            ]))
            .unwrap();
        let view = RowsView::new(&out.rows);
        assert_eq!(view.len(), 1);
        assert_eq!(view.text(0, 0), Some("2026-01-31T07:05:00"));
        assert_eq!(view.real(0, 1), Some(1.5));
        assert_eq!(view.cell(0, 2), Cell::Null);
        assert_eq!(
            out.rejects[0].reason,
            r#"Datum: "31.01.2026" is not a timestamp (expected %d.%m.%Y %H:%M)"#
        );
    }

    #[test]
    fn canonical_input_is_not_parsed_with_the_source_notation() {
        let schema = Schema {
            columns: vec![
                Column::new("amount", Kind::Decimal, true),
                Column::new("n", Kind::Integer, true),
            ],
            primary_key: vec![],
        };
        let config = r#"{"types": {"amount": "real", "n": "decimal"}, "decimal_comma": true}"#;
        let mut t = MapTransformPlugin::open(config, schema.clone()).unwrap();
        let mut b = RowsBuilder::new(&schema);
        b.push_row([Cell::Text("1234.50"), Cell::Integer(-7)])
            .unwrap();
        let out = t.apply(b.finish()).unwrap();
        let view = RowsView::new(&out.rows);
        assert_eq!(
            (view.real(0, 0), view.text(0, 1)),
            (Some(1234.5), Some("-7"))
        );
    }

    #[test]
    fn config_errors_name_the_key_and_the_columns() {
        assert!(invalid_config(r#"{"types": {"x": "decimal"}}"#).starts_with(
            "map-transform: unknown column `x` in `types`; available columns: Datum, Betrag, Text, Bezahlt, id"
        ));
        assert_eq!(
            invalid_config(r#"{"rename": {"Betrag": "amount"}, "types": {"Betrag": "decimal"}}"#),
            "map-transform: unknown column `Betrag` in `types` (it is renamed to `amount`); available columns: Datum, amount, Text, Bezahlt, id"
        );
        assert!(
            invalid_config(r#"{"select": ["id"], "required": ["Text"]}"#)
                .contains("`Text` in `required` (it is not selected)")
        );
        assert!(
            invalid_config(r#"{"rename": {"Nope": "x"}}"#)
                .contains("unknown column `Nope` in `rename`")
        );
        assert!(
            invalid_config(r#"{"rename": {"Text": "id"}}"#)
                .contains("leaves two columns named `id`")
        );
        assert!(
            invalid_config(r#"{"select": ["id"], "drop": ["id"]}"#)
                .contains("either `select` or `drop`")
        );
        assert!(invalid_config(r#"{"select": ["id", "id"]}"#).contains("listed twice"));
        assert!(
            invalid_config(r#"{"typos": {}}"#)
                .starts_with("map-transform: invalid config: unknown field `typos`")
        );
        assert!(
            invalid_config(r#"{"types": {"id": "money"}}"#).contains("unknown variant `money`")
        );
        assert!(
            invalid_config(r#"{"trim": "yes"}"#)
                .contains("`true`, `false` or a list of column names")
        );
        assert!(
            invalid_config(r#"{"date_format": "%d.%m.%y"}"#)
                .starts_with("map-transform: `date_format`: unsupported %y")
        );
        assert!(
            invalid_config(r#"{"decimal_comma": true, "thousands_separator": ","}"#)
                .contains("thousands_separator")
        );
        assert!(invalid_config(r#"{"primary_key": ["nope"]}"#).contains("in `primary_key`"));
        assert!(
            invalid_config(r#"{"boolean": {"true": ["x"], "false": ["X"]}}"#)
                .contains("both true and false")
        );
    }

    #[test]
    fn defaults_are_checked_against_their_column() {
        assert_eq!(
            invalid_config(r#"{"types": {"id": "integer"}, "defaults": {"id": "abc"}}"#),
            r#"map-transform: invalid default: id: "abc" is not an integer"#
        );
        assert!(
            invalid_config(r#"{"types": {"Datum": "date"}, "defaults": {"Datum": 5}}"#)
                .contains("cannot store 5 as date")
        );
        assert!(
            invalid_config(r#"{"defaults": {"id": " "}}"#).contains("default of `id` is empty")
        );
        assert!(
            invalid_config(r#"{"defaults": {"id": [1]}}"#)
                .contains("must be a string, a number or a boolean")
        );

        let mut t = open(r#"{"types": {"id": "integer", "Betrag": "decimal"}, "defaults": {"id": 0, "Betrag": "0.00"}}"#).unwrap();
        let out = t.apply(rows(&[["", "", "", "", ""]])).unwrap();
        let view = RowsView::new(&out.rows);
        assert_eq!(
            (view.integer(0, 4), view.text(0, 1)),
            (Some(0), Some("0.00"))
        );
    }

    #[test]
    fn describe_has_a_json_schema() {
        let info = MapTransformPlugin::describe();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("map-transform", "0.1.0")
        );
        let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
        assert_eq!(
            schema["properties"]["types"]["additionalProperties"]["enum"][3],
            "decimal"
        );
    }

    #[test]
    fn a_batch_of_the_wrong_shape_fails_the_batch() {
        let mut t = open("{}").unwrap();
        let err = t
            .apply(Rows {
                row_count: 0,
                columns: vec![],
            })
            .err()
            .unwrap();
        assert!(matches!(err, Error::Other(m) if m.contains("batch has 0 columns")));
    }
}
