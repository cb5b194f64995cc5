//! The configuration, and what it becomes against the input schema: the output columns, the
//! filters in order, the masks, and the projection that lets only the columns read cross into
//! the plugin.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Deserialize;
use weir_sdk::{Column, Kind, OutputColumn, Projection, Schema};

use crate::expr;
use crate::filter::{self, ColumnRef, Filter};
use crate::mask::Mask;

/// The shortest salt accepted: a pseudonym is only as hard to reverse as the salt is to guess.
const MIN_SALT_CHARS: usize = 16;

/// The plugin's configuration (a pipeline's `transform.config`). No `Debug`: it holds the salt.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SelectConfig {
    /// The columns that leave, in this order. Nothing else does.
    columns: Vec<String>,
    /// Rules every row must pass, in order.
    #[serde(default)]
    filters: Vec<FilterConfig>,
    /// Column → how to mask it.
    #[serde(default)]
    mask: BTreeMap<String, serde_json::Value>,
    /// The pseudonyms' salt (`salt = "${PORTAL_SALT}"`).
    salt: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterConfig {
    /// Names the rule in counts (`filtered.<name>`) and messages.
    name: String,
    /// The expression a row must satisfy to stay.
    keep: String,
}

/// JSON Schema of [`SelectConfig`], for `describe`.
pub(crate) const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "select-transform",
  "description": "Only the listed columns leave; rows must pass every filter; masked columns leave masked.",
  "type": "object",
  "additionalProperties": false,
  "required": ["columns"],
  "properties": {
    "columns": { "type": "array", "items": { "type": "string" }, "minItems": 1, "uniqueItems": true, "description": "the allow-list, in output order; columns not listed (and new source columns) never leave" },
    "filters": { "type": "array", "description": "rules a row must pass, in order; a row failing one is dropped and counted as filtered.<name>", "items": {
      "type": "object", "additionalProperties": false, "required": ["name", "keep"],
      "properties": {
        "name": { "type": "string", "pattern": "^[A-Za-z0-9_-]+$" },
        "keep": { "type": "string", "description": "e.g. consent = true and status in ('active', 'pending') and visit >= '2026-01-01'" }
      } } },
    "mask": { "type": "object", "description": "column -> \"redact\", \"pseudonym\" or { keep_last = N }", "additionalProperties": {
      "oneOf": [ { "enum": ["redact", "pseudonym"] },
                 { "type": "object", "additionalProperties": false, "required": ["keep_last"], "properties": { "keep_last": { "type": "integer", "minimum": 1 } } } ] } },
    "salt": { "type": "string", "minLength": 16, "description": "secret salt of the pseudonyms, e.g. \"${PORTAL_SALT}\"; never logged" }
  }
}"##;

/// One named filter, checked.
#[derive(Debug)]
pub(crate) struct Rule {
    pub name: String,
    pub filter: Filter,
}

/// A masked output column.
#[derive(Debug)]
pub(crate) struct Masked {
    /// Its index in the rows `apply` receives.
    pub read: usize,
    pub name: String,
    pub mask: Mask,
}

/// The configuration resolved against the input schema.
#[derive(Debug)]
pub(crate) struct Selection {
    /// What the step outputs.
    pub schema: Schema,
    /// What crosses into `apply` and where each output column comes from.
    pub projection: Projection,
    /// The schema of the columns `apply` computes: one per masked column, in output order.
    pub computed: Schema,
    pub rules: Vec<Rule>,
    /// In the order of `computed`.
    pub masks: Vec<Masked>,
    /// Why the output has no primary key although the input has one, if so.
    pub key_dropped: Option<String>,
}

impl SelectConfig {
    /// Check the configuration against `input`; errors name the key and say what is allowed.
    pub(crate) fn resolve(self, input: &Schema) -> Result<Selection, String> {
        if self.columns.is_empty() {
            return Err("columns: list at least one column; only listed columns leave".into());
        }
        let find = |key: &str, name: &str| {
            input.column_index(name).ok_or_else(|| {
                format!(
                    "{key}: no column `{name}` in the input; available: {}",
                    input.column_list()
                )
            })
        };
        let mut listed = HashSet::new();
        let mut sources = Vec::with_capacity(self.columns.len());
        for (i, name) in self.columns.iter().enumerate() {
            if !listed.insert(name.as_str()) {
                return Err(format!("columns[{i}]: `{name}` is listed twice"));
            }
            sources.push(find(&format!("columns[{i}]"), name)?);
        }

        let mut masks = BTreeMap::new();
        for (column, spec) in &self.mask {
            let key = format!("mask.{column}");
            if !listed.contains(column.as_str()) {
                return Err(format!(
                    "{key}: `{column}` is not in `columns`, so it never leaves; list it there to send it masked, or remove this mask"
                ));
            }
            let kind = input.columns[find(&key, column)?].kind;
            masks.insert(
                column.as_str(),
                parse_mask(&key, spec, kind, self.salt.as_deref())?,
            );
        }
        if let Some(salt) = &self.salt
            && salt.chars().count() < MIN_SALT_CHARS
        {
            // Never the salt itself, nor its length: it is a secret.
            return Err(format!(
                "salt: too short; use at least {MIN_SALT_CHARS} random characters (e.g. the output of `openssl rand -hex 16` in an environment variable: salt = \"${{PORTAL_SALT}}\")"
            ));
        }

        let mut seen_rules = HashSet::new();
        let mut parsed = Vec::with_capacity(self.filters.len());
        let mut read_set: BTreeSet<usize> = sources.iter().copied().collect();
        for (i, rule) in self.filters.iter().enumerate() {
            let key = format!("filters[{i}]");
            check_rule_name(&key, &rule.name)?;
            if !seen_rules.insert(rule.name.as_str()) {
                return Err(format!("{key}.name: `{}` names two filters", rule.name));
            }
            let expr = expr::parse(&rule.keep)
                .map_err(|e| format!("{key} ({}): keep = \"{}\": {e}", rule.name, rule.keep))?;
            parsed.push(expr);
        }
        // Filters may read columns that do not leave (a `consent` flag): they cross into the
        // plugin, never out of it.
        for (i, (rule, expr)) in self.filters.iter().zip(&parsed).enumerate() {
            for name in columns_of(expr) {
                read_set.insert(find(&format!("filters[{i}] ({})", rule.name), &name)?);
            }
        }
        let reads: Vec<usize> = read_set.into_iter().collect();
        let read_index = |input_index: usize| {
            reads
                .iter()
                .position(|&r| r == input_index)
                .expect("every column used is read")
        };

        let mut rules = Vec::with_capacity(parsed.len());
        for (i, (rule, expr)) in self.filters.iter().zip(&parsed).enumerate() {
            let filter = filter::compile(expr, &mut |name: &str| {
                let index = input
                    .column_index(name)
                    .ok_or_else(|| format!("no column `{name}`"))?;
                Ok(ColumnRef {
                    index: read_index(index),
                    name: name.to_owned(),
                    kind: input.columns[index].kind,
                })
            })
            .map_err(|e| {
                format!(
                    "filters[{i}] ({}): keep = \"{}\": {e}",
                    rule.name, rule.keep
                )
            })?;
            rules.push(Rule {
                name: rule.name.clone(),
                filter,
            });
        }

        let mut columns = Vec::with_capacity(sources.len());
        let mut outputs = Vec::with_capacity(sources.len());
        let mut computed = Vec::new();
        let mut masked = Vec::new();
        for (name, &source) in self.columns.iter().zip(&sources) {
            let from = &input.columns[source];
            match masks.remove(name.as_str()) {
                None => {
                    columns.push(from.clone());
                    outputs.push(OutputColumn::Input(source as u32));
                }
                Some(mask) => {
                    let column = Column::new(name.clone(), Kind::Text, from.nullable);
                    outputs.push(OutputColumn::Computed(computed.len() as u32));
                    computed.push(column.clone());
                    columns.push(column);
                    masked.push(Masked {
                        read: read_index(source),
                        name: name.clone(),
                        mask,
                    });
                }
            }
        }

        let (primary_key, key_dropped) = output_key(input, &listed, &self.mask);
        Ok(Selection {
            schema: Schema {
                columns,
                primary_key,
            },
            projection: Projection {
                reads: reads.iter().map(|&r| r as u32).collect(),
                outputs,
            },
            computed: Schema {
                columns: computed,
                primary_key: Vec::new(),
            },
            rules,
            masks: masked,
            key_dropped,
        })
    }
}

/// The input's key when it leaves whole and recognisable (a pseudonym keeps keys distinct; a
/// redacted or shortened one does not), else none and why.
fn output_key(
    input: &Schema,
    listed: &HashSet<&str>,
    masks: &BTreeMap<String, serde_json::Value>,
) -> (Vec<String>, Option<String>) {
    for column in &input.primary_key {
        let why = if !listed.contains(column.as_str()) {
            format!("key column `{column}` is not in `columns`")
        } else if masks
            .get(column)
            .is_some_and(|m| m.as_str() != Some("pseudonym"))
        {
            format!("key column `{column}` is masked and no longer identifies its row")
        } else {
            continue;
        };
        return (Vec::new(), Some(why));
    }
    (input.primary_key.clone(), None)
}

fn check_rule_name(key: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{key}.name: {name:?} must be letters, digits, '_' or '-' (it names the count filtered.<name>)"
        ));
    }
    Ok(())
}

fn parse_mask(
    key: &str,
    spec: &serde_json::Value,
    kind: Kind,
    salt: Option<&str>,
) -> Result<Mask, String> {
    use serde_json::Value;
    let allowed = r#"allowed: "redact", "pseudonym" or { keep_last = N }"#;
    Ok(match spec {
        Value::String(s) if s == "redact" => Mask::Redact,
        Value::String(s) if s == "pseudonym" => match salt {
            Some(salt) => Mask::pseudonym(salt),
            None => {
                return Err(format!(
                    "{key}: a pseudonym needs `salt` (a secret of at least {MIN_SALT_CHARS} characters, e.g. salt = \"${{PORTAL_SALT}}\")"
                ));
            }
        },
        Value::Object(fields) if fields.len() == 1 && fields.contains_key("keep_last") => {
            let n = fields["keep_last"]
                .as_u64()
                .filter(|&n| n >= 1)
                .ok_or_else(|| {
                    format!("{key}.keep_last: must be a whole number of characters, at least 1")
                })?;
            if kind == Kind::Blob {
                return Err(format!(
                    "{key}: keep_last does not apply to a blob column; redact it or use a pseudonym"
                ));
            }
            Mask::KeepLast(usize::try_from(n).unwrap_or(usize::MAX))
        }
        other => return Err(format!("{key}: {other} is not a mask; {allowed}")),
    })
}

/// Every column an expression names.
fn columns_of(expr: &expr::Expr) -> Vec<String> {
    use expr::{Expr, Operand};
    let mut out = Vec::new();
    let mut operand = |o: &Operand, out: &mut Vec<String>| {
        if let Operand::Column(c) = o {
            out.push(c.clone());
        }
    };
    fn walk(e: &Expr, out: &mut Vec<String>, operand: &mut impl FnMut(&Operand, &mut Vec<String>)) {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(a, out, operand);
                walk(b, out, operand);
            }
            Expr::Not(a) => walk(a, out, operand),
            Expr::Compare(a, _, b) => {
                operand(a, out);
                operand(b, out);
            }
            Expr::IsNull { column, .. } | Expr::In { column, .. } | Expr::Column(column) => {
                out.push(column.clone());
            }
            Expr::Between {
                operand: x,
                low,
                high,
                ..
            } => {
                operand(x, out);
                operand(low, out);
                operand(high, out);
            }
        }
    }
    walk(expr, &mut out, &mut operand);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Schema {
        Schema {
            columns: vec![
                Column::new("id", Kind::Integer, false),
                Column::new("name", Kind::Text, true),
                Column::new("national_id", Kind::Text, true),
                Column::new("consent", Kind::Boolean, true),
                Column::new("phone", Kind::Text, true),
                Column::new("photo", Kind::Blob, true),
            ],
            primary_key: vec!["id".into()],
        }
    }

    fn resolve(json: &str) -> Result<Selection, String> {
        let config: SelectConfig = serde_json::from_str(json).map_err(|e| e.to_string())?;
        config.resolve(&input())
    }

    const SALT: &str = "0123456789abcdef-secret";

    #[test]
    fn the_allow_list_decides_the_output_and_only_masked_columns_are_computed() {
        let s = resolve(&format!(
            r#"{{"columns": ["phone", "id", "name"],
                "filters": [{{"name": "consent", "keep": "consent"}}],
                "mask": {{"phone": {{"keep_last": 2}}, "name": "pseudonym"}},
                "salt": "{SALT}"}}"#
        ))
        .unwrap();
        let names: Vec<_> = s
            .schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("phone", Kind::Text),
                ("id", Kind::Integer),
                ("name", Kind::Text)
            ]
        );
        assert_eq!(
            s.schema.primary_key,
            ["id"],
            "a pseudonym keeps keys distinct"
        );
        // Reads: id, name, consent, phone (input order); national_id and photo never cross.
        assert_eq!(s.projection.reads, [0, 1, 3, 4]);
        assert_eq!(
            s.projection.outputs,
            [
                OutputColumn::Computed(0),
                OutputColumn::Input(0),
                OutputColumn::Computed(1)
            ]
        );
        let computed: Vec<_> = s.computed.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(computed, ["phone", "name"]);
        let reads: Vec<_> = s.masks.iter().map(|m| m.read).collect();
        assert_eq!(reads, [3, 1], "indexes into the columns read");
        assert_eq!(s.rules[0].name, "consent");
    }

    #[test]
    fn a_key_that_leaves_masked_or_not_at_all_is_no_key() {
        let s = resolve(r#"{"columns": ["name"]}"#).unwrap();
        assert!(s.schema.primary_key.is_empty());
        assert_eq!(
            s.key_dropped.as_deref(),
            Some("key column `id` is not in `columns`")
        );
        let s = resolve(r#"{"columns": ["id"], "mask": {"id": "redact"}}"#).unwrap();
        assert!(s.key_dropped.unwrap().contains("is masked"));
    }

    #[test]
    fn mistakes_name_the_key_and_what_is_allowed() {
        for (json, message) in [
            (r#"{"columns": []}"#, "columns: list at least one column"),
            (
                r#"{"columns": ["id", "nope"]}"#,
                "columns[1]: no column `nope` in the input; available: id, name",
            ),
            (
                r#"{"columns": ["id", "id"]}"#,
                "columns[1]: `id` is listed twice",
            ),
            (
                r#"{"columns": ["id"], "mask": {"phone": "redact"}}"#,
                "mask.phone: `phone` is not in `columns`",
            ),
            (
                r#"{"columns": ["phone"], "mask": {"phone": "hide"}}"#,
                r#"mask.phone: "hide" is not a mask; allowed: "redact", "pseudonym" or { keep_last = N }"#,
            ),
            (
                r#"{"columns": ["phone"], "mask": {"phone": {"keep_last": 0}}}"#,
                "mask.phone.keep_last: must be a whole number",
            ),
            (
                r#"{"columns": ["photo"], "mask": {"photo": {"keep_last": 3}}}"#,
                "keep_last does not apply to a blob",
            ),
            (
                r#"{"columns": ["phone"], "mask": {"phone": "pseudonym"}}"#,
                "mask.phone: a pseudonym needs `salt`",
            ),
            (
                r#"{"columns": ["id"], "filters": [{"name": "a b", "keep": "consent"}]}"#,
                "filters[0].name: \"a b\" must be letters",
            ),
            (
                r#"{"columns": ["id"], "filters": [{"name": "a", "keep": "consent"}, {"name": "a", "keep": "consent"}]}"#,
                "filters[1].name: `a` names two filters",
            ),
            (
                r#"{"columns": ["id"], "filters": [{"name": "c", "keep": "consent = 'yes'"}]}"#,
                "filters[0] (c): keep = \"consent = 'yes'\": column `consent` needs true or false",
            ),
            (
                r#"{"columns": ["id"], "filters": [{"name": "c", "keep": "consnet"}]}"#,
                "filters[0] (c): no column `consnet` in the input",
            ),
            (
                r#"{"columns": ["id"], "filters": [{"name": "c", "keep": "id ="}]}"#,
                "filters[0] (c): keep = \"id =\": after `=`",
            ),
        ] {
            let err = resolve(json).map(|_| ()).unwrap_err();
            assert!(err.contains(message), "{json}\n{err}");
        }
    }

    #[test]
    fn the_salt_is_never_in_a_message() {
        let secret = "short-secret";
        let err = resolve(&format!(
            r#"{{"columns": ["phone"], "mask": {{"phone": "pseudonym"}}, "salt": "{secret}"}}"#
        ))
        .map(|_| ())
        .unwrap_err();
        assert!(err.starts_with("salt: too short"), "{err}");
        assert!(!err.contains(secret), "{err}");
        let ok = resolve(&format!(
            r#"{{"columns": ["phone"], "mask": {{"phone": "pseudonym"}}, "salt": "{SALT}"}}"#
        ))
        .unwrap();
        assert!(!format!("{ok:?}").contains(SALT), "Debug shows no salt");
    }
}
