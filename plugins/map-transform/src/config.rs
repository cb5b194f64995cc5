//! The configuration, and its resolution against the input schema into per-column steps.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use weir_sdk::{Cell, Column, Kind, RowsBuilder, Schema};

use crate::cast::{BooleanWords, Cast, Casts, Converted, NumberFormat};
use crate::date::DateFormat;

/// The plugin's configuration (a pipeline's `transform.config`). Every column name except the
/// keys of `rename` is an output name: after renaming.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MapTransformConfig {
    /// Old name → new name.
    #[serde(default)]
    rename: BTreeMap<String, String>,
    /// Keep only these columns, in this order.
    select: Option<Vec<String>>,
    /// Drop these columns.
    drop: Option<Vec<String>>,
    /// Trim surrounding whitespace of text: every column, or the listed ones.
    #[serde(default)]
    trim: Trim,
    /// Column → type to cast to.
    #[serde(default)]
    types: BTreeMap<String, Cast>,
    /// Numbers are written `1.234,56`.
    #[serde(default)]
    decimal_comma: bool,
    /// One more thousands separator, e.g. `'` or ` `.
    thousands_separator: Option<String>,
    date_format: Option<String>,
    timestamp_format: Option<String>,
    boolean: Option<BooleanConfig>,
    /// Column → value used when the cell is null or empty.
    #[serde(default)]
    defaults: BTreeMap<String, serde_json::Value>,
    /// Columns whose rows are rejected when the value is null or empty (after defaults); the
    /// primary key's columns always are.
    #[serde(default)]
    required: Vec<String>,
    /// The output's primary key; default: the input's, if all its columns are kept.
    primary_key: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "`true`, `false` or a list of column names")]
enum Trim {
    All(bool),
    Columns(Vec<String>),
}

impl Default for Trim {
    fn default() -> Self {
        Trim::All(false)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BooleanConfig {
    #[serde(rename = "true")]
    true_words: Vec<String>,
    #[serde(rename = "false")]
    false_words: Vec<String>,
}

/// JSON Schema of [`MapTransformConfig`], for `describe`.
pub(crate) const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "map-transform",
  "description": "Column names are output names (after rename), except the keys of rename.",
  "type": "object",
  "additionalProperties": false,
  "not": { "required": ["select", "drop"] },
  "$defs": { "columns": { "type": "array", "items": { "type": "string" }, "uniqueItems": true } },
  "properties": {
    "rename": { "type": "object", "additionalProperties": { "type": "string", "minLength": 1 }, "description": "old name -> new name" },
    "select": { "$ref": "#/$defs/columns", "description": "keep only these columns, in this order" },
    "drop": { "$ref": "#/$defs/columns", "description": "drop these columns" },
    "trim": { "oneOf": [{ "type": "boolean" }, { "$ref": "#/$defs/columns" }], "default": false, "description": "trim whitespace of text: all columns or the listed ones" },
    "types": { "type": "object", "additionalProperties": { "enum": ["text", "integer", "real", "decimal", "date", "timestamp", "boolean"] }, "description": "column -> type; empty text becomes null" },
    "decimal_comma": { "type": "boolean", "default": false, "description": "numbers are written 1.234,56" },
    "thousands_separator": { "type": "string", "minLength": 1, "maxLength": 1, "description": "one more thousands separator, e.g. ' or a space" },
    "date_format": { "type": "string", "default": "%Y-%m-%d", "description": "strftime subset: %Y %m %d %H %M %S %%" },
    "timestamp_format": { "type": "string", "default": "%Y-%m-%dT%H:%M:%S", "description": "strftime subset: %Y %m %d %H %M %S %%" },
    "boolean": {
      "type": "object", "additionalProperties": false, "required": ["true", "false"],
      "properties": { "true": { "$ref": "#/$defs/columns" }, "false": { "$ref": "#/$defs/columns" } },
      "description": "words for true and false, ignoring case (default: true/yes/1/ja, false/no/0/nein)"
    },
    "defaults": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] }, "description": "column -> value for null or empty cells" },
    "required": { "$ref": "#/$defs/columns", "description": "reject rows where these are null or empty (primary key columns always are)" },
    "primary_key": { "$ref": "#/$defs/columns", "description": "the output's primary key (default: the input's)" }
  }
}"##;

/// A configured default, as a cell of the source would carry it.
#[derive(Debug)]
enum DefaultValue {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    Text(String),
}

impl DefaultValue {
    fn cell(&self) -> Cell<'_> {
        match self {
            DefaultValue::Integer(v) => Cell::Integer(*v),
            DefaultValue::Real(v) => Cell::Real(*v),
            DefaultValue::Boolean(v) => Cell::Boolean(*v),
            DefaultValue::Text(s) => Cell::Text(s),
        }
    }
}

/// How one output column is made from one input column.
#[derive(Debug)]
pub(crate) struct OutputColumn {
    name: String,
    /// Index of the input column.
    pub(crate) input: usize,
    trim: bool,
    /// A `types` entry: surrounding whitespace goes, empty text is null.
    typed: bool,
    /// The text parse the `types` entry needs, if the input is not of that kind already.
    parse: Option<Cast>,
    /// The input is canonical text (decimal, date, timestamp), not the source's notation.
    canonical_input: bool,
    default: Option<DefaultValue>,
    required: bool,
}

impl OutputColumn {
    /// Whether every cell comes out exactly as it went in (no trim, cast, default or required
    /// check): such a column can be moved as a whole instead of copied cell by cell.
    pub(crate) fn is_verbatim(&self) -> bool {
        !self.trim && !self.typed && self.default.is_none() && !self.required
    }
}

/// The resolved configuration: what `apply` does per column.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) columns: Vec<OutputColumn>,
    pub(crate) schema: Schema,
    /// Number of input columns, to check each batch against.
    pub(crate) input_columns: usize,
    source: Casts,
    canonical: Casts,
}

impl Mapping {
    /// The value of output column `col` for input `cell`. Text casts write into `buf`. A
    /// non-text cell passes as it is: the rows builder converts it to the column's kind or
    /// rejects the row, naming the column.
    pub(crate) fn value<'a>(
        &'a self,
        col: &'a OutputColumn,
        cell: Cell<'a>,
        buf: &'a mut String,
    ) -> Result<Cell<'a>, String> {
        let mut cell = cell;
        if let Cell::Text(s) = cell
            && (col.trim || col.typed)
        {
            cell = Cell::Text(trim(s));
        }
        if matches!(cell, Cell::Null | Cell::Text("")) {
            match &col.default {
                Some(default) => cell = default.cell(),
                None if col.required => return Err(format!("{}: required, but empty", col.name)),
                None if col.typed => return Ok(Cell::Null),
                None => return Ok(cell),
            }
        }
        let (Some(cast), Cell::Text(text)) = (col.parse, cell) else {
            return Ok(cell);
        };
        let casts = if col.canonical_input {
            &self.canonical
        } else {
            &self.source
        };
        match casts.convert(cast, text, buf) {
            Ok(Converted::Integer(v)) => Ok(Cell::Integer(v)),
            Ok(Converted::Real(v)) => Ok(Cell::Real(v)),
            Ok(Converted::Boolean(v)) => Ok(Cell::Boolean(v)),
            Ok(Converted::Text) => Ok(Cell::Text(buf)),
            Err(reason) => Err(format!("{}: {reason}", col.name)),
        }
    }
}

/// `s.trim()`, skipping the Unicode tables when the first and last bytes are visible ASCII
/// (then there is nothing to trim: a whitespace character at either end would be one of them).
fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| (b'!'..=b'~').contains(b));
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

impl MapTransformConfig {
    /// Resolve every name against `input` and check every setting, so `apply` cannot meet a
    /// configuration error.
    pub(crate) fn resolve(self, input: &Schema) -> Result<Mapping, String> {
        let renamed = self.renamed(input)?;
        let selected = self.selected(input, &renamed)?;
        let names: Vec<&str> = selected.iter().map(|&i| renamed[i].as_str()).collect();
        let lookup = Lookup {
            input,
            renamed: &renamed,
            output: &names,
        };

        let mut trim = vec![false; names.len()];
        match &self.trim {
            Trim::All(all) => trim.fill(*all),
            Trim::Columns(columns) => {
                for name in columns {
                    trim[lookup.find("trim", name)?] = true;
                }
            }
        }
        let mut casts: Vec<Option<Cast>> = vec![None; names.len()];
        for (name, cast) in &self.types {
            casts[lookup.find("types", name)?] = Some(*cast);
        }
        // A key column with no value identifies nothing, and a loader's upsert would fail the
        // whole batch on it: key columns are required too.
        let primary_key = self.primary_key(&lookup)?;
        let mut required = vec![false; names.len()];
        for name in &self.required {
            required[lookup.find("required", name)?] = true;
        }
        for name in &primary_key {
            required[lookup.find("primary_key", name)?] = true;
        }
        let mut defaults: Vec<Option<DefaultValue>> = names.iter().map(|_| None).collect();
        for (name, value) in &self.defaults {
            defaults[lookup.find("defaults", name)?] = Some(default_value(name, value)?);
        }

        let mut columns = Vec::with_capacity(selected.len());
        for (o, &input_index) in selected.iter().enumerate() {
            let input_kind = input.columns[input_index].kind;
            columns.push(OutputColumn {
                name: names[o].to_owned(),
                input: input_index,
                trim: trim[o],
                typed: casts[o].is_some(),
                parse: casts[o].filter(|c| *c != Cast::Text && c.kind() != input_kind),
                canonical_input: matches!(input_kind, Kind::Decimal | Kind::Date | Kind::Timestamp),
                default: defaults[o].take(),
                required: required[o],
            });
        }
        let schema = Schema {
            columns: columns
                .iter()
                .zip(&casts)
                .map(|(c, cast)| {
                    let source = &input.columns[c.input];
                    let nullable = if c.required || c.default.is_some() {
                        false
                    } else {
                        cast.is_some() || source.nullable
                    };
                    Column::new(&c.name, cast.map_or(source.kind, Cast::kind), nullable)
                })
                .collect(),
            primary_key,
        };
        let mapping = Mapping {
            columns,
            schema,
            input_columns: input.columns.len(),
            source: self.casts()?,
            canonical: canonical_casts(),
        };
        check_defaults(&mapping)?;
        Ok(mapping)
    }

    /// The input names after `rename`, by input index.
    fn renamed(&self, input: &Schema) -> Result<Vec<String>, String> {
        for old in self.rename.keys() {
            if input.column_index(old).is_none() {
                return Err(format!(
                    "unknown column `{old}` in `rename`; available columns: {}",
                    input.column_list()
                ));
            }
        }
        let renamed: Vec<String> = input
            .columns
            .iter()
            .map(|c| self.rename.get(&c.name).unwrap_or(&c.name).clone())
            .collect();
        let mut seen = HashSet::new();
        if let Some(twice) = renamed.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(format!("`rename` leaves two columns named `{twice}`"));
        }
        Ok(renamed)
    }

    /// The input indexes of the output columns, in output order.
    fn selected(&self, input: &Schema, renamed: &[String]) -> Result<Vec<usize>, String> {
        let lookup = Lookup {
            input,
            renamed,
            output: &renamed.iter().map(String::as_str).collect::<Vec<_>>(),
        };
        match (&self.select, &self.drop) {
            (Some(_), Some(_)) => Err("use either `select` or `drop`, not both".to_owned()),
            (Some(select), None) => {
                let mut indexes = Vec::with_capacity(select.len());
                for name in select {
                    let index = lookup.find("select", name)?;
                    if indexes.contains(&index) {
                        return Err(format!("column `{name}` is listed twice in `select`"));
                    }
                    indexes.push(index);
                }
                Ok(indexes)
            }
            (None, drop) => {
                let dropped = drop
                    .iter()
                    .flatten()
                    .map(|n| lookup.find("drop", n))
                    .collect::<Result<HashSet<_>, _>>()?;
                Ok((0..renamed.len())
                    .filter(|i| !dropped.contains(i))
                    .collect())
            }
        }
    }

    fn primary_key(&self, lookup: &Lookup<'_>) -> Result<Vec<String>, String> {
        match &self.primary_key {
            Some(key) => {
                for name in key {
                    lookup.find("primary_key", name)?;
                }
                Ok(key.clone())
            }
            // The input's key, renamed; none if a key column was dropped (it no longer
            // identifies a row).
            None => {
                let key = lookup.input.primary_key.iter().map(|k| {
                    let renamed = &lookup.renamed[lookup.input.column_index(k)?];
                    lookup
                        .output
                        .contains(&renamed.as_str())
                        .then(|| renamed.clone())
                });
                Ok(key.collect::<Option<Vec<_>>>().unwrap_or_default())
            }
        }
    }

    fn casts(&self) -> Result<Casts, String> {
        let date = match self.date_format.as_deref() {
            Some(f) => vec![DateFormat::new(f, false).map_err(|e| format!("`date_format`: {e}"))?],
            None => vec![builtin("%Y-%m-%d", false)],
        };
        // Without a format, accept both ISO spellings: `T` or a space between date and time.
        let timestamp = match self.timestamp_format.as_deref() {
            Some(f) => {
                vec![DateFormat::new(f, true).map_err(|e| format!("`timestamp_format`: {e}"))?]
            }
            None => vec![
                builtin("%Y-%m-%dT%H:%M:%S", true),
                builtin("%Y-%m-%d %H:%M:%S", true),
            ],
        };
        let boolean = match &self.boolean {
            Some(b) => BooleanWords::new(b.true_words.clone(), b.false_words.clone())?,
            None => BooleanWords::default(),
        };
        Ok(Casts {
            number: NumberFormat::new(self.decimal_comma, self.thousands_separator.as_deref())?,
            date,
            timestamp,
            boolean,
        })
    }
}

fn builtin(pattern: &str, timestamp: bool) -> DateFormat {
    DateFormat::new(pattern, timestamp).expect("built-in patterns are valid")
}

/// How canonical text (a decimal, date or timestamp column of the input) parses.
fn canonical_casts() -> Casts {
    Casts {
        number: NumberFormat::new(false, None).expect("no separator is valid"),
        date: vec![builtin("%Y-%m-%d", false)],
        timestamp: vec![builtin("%Y-%m-%dT%H:%M:%S", true)],
        boolean: BooleanWords::default(),
    }
}

fn default_value(column: &str, value: &serde_json::Value) -> Result<DefaultValue, String> {
    use serde_json::Value as Json;
    let invalid = |what: &str| format!("default of `{column}` {what}");
    match value {
        Json::String(s) if s.trim().is_empty() => Err(invalid("is empty")),
        Json::String(s) => Ok(DefaultValue::Text(s.clone())),
        Json::Bool(b) => Ok(DefaultValue::Boolean(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Ok(DefaultValue::Integer(i)),
            None => n
                .as_f64()
                .map(DefaultValue::Real)
                .ok_or_else(|| invalid("is out of range")),
        },
        _ => Err(invalid("must be a string, a number or a boolean")),
    }
}

/// Every default must convert to its column, or every empty cell would be a reject.
fn check_defaults(mapping: &Mapping) -> Result<(), String> {
    for (index, column) in mapping.columns.iter().enumerate() {
        if column.default.is_none() {
            continue;
        }
        let mut buf = String::new();
        let schema = Schema {
            columns: vec![mapping.schema.columns[index].clone()],
            primary_key: vec![],
        };
        mapping
            .value(column, Cell::Null, &mut buf)
            .and_then(|cell| {
                RowsBuilder::new(&schema)
                    .push_row([cell])
                    .map_err(String::from)
            })
            .map_err(|e| format!("invalid default: {e}"))?;
    }
    Ok(())
}

/// Finds the output column a config entry names, with a helpful error when it does not.
struct Lookup<'a> {
    input: &'a Schema,
    renamed: &'a [String],
    output: &'a [&'a str],
}

impl Lookup<'_> {
    fn find(&self, key: &str, name: &str) -> Result<usize, String> {
        if let Some(index) = self.output.iter().position(|n| *n == name) {
            return Ok(index);
        }
        let hint = if self.renamed.iter().any(|n| n == name) {
            " (it is not selected)".to_owned()
        } else if let Some(i) = self.input.column_index(name) {
            format!(" (it is renamed to `{}`)", self.renamed[i])
        } else {
            String::new()
        };
        Err(format!(
            "unknown column `{name}` in `{key}`{hint}; available columns: {}",
            self.output.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trim_matches_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{a0}a",
            "a\u{3000}",
            "\u{b}a",
            "a\u{b}",
            "ab",
            "\ta\n",
            "Zürich",
            "ü",
            "x ü x",
            "!~",
        ] {
            assert_eq!(super::trim(s), s.trim(), "{s:?}");
        }
    }
}
