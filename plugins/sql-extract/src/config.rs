//! The configuration of `sql-extract` and its checks.

use std::collections::BTreeMap;

use serde::Deserialize;
use weir_sdk::{Error, Kind};

use crate::NAME;

/// A pipeline's `extract.config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the granted database (a key of the pipeline's `grants.databases`).
    pub database: String,
    /// The table to read (in the grant's schema on PostgreSQL).
    #[serde(default)]
    pub table: Option<String>,
    /// Or a query to read, as `SELECT … FROM (<query>) AS q WHERE …`.
    #[serde(default)]
    pub query: Option<String>,
    /// The partition id of a query (default `query`).
    #[serde(default)]
    pub name: Option<String>,
    /// The columns to read, in order (default: every column of the table or query).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// A column that grows whenever a row changes (`updated_at`, a version number): rows are
    /// read in (watermark, key) order, and each run picks up after the last one read. Without
    /// it, rows are read in key order and a run picks up only keys above the last one (for
    /// append-only tables).
    #[serde(default)]
    pub watermark: Option<String>,
    /// The tie-breaker: the columns that identify a row (default: the table's primary key).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// One partition per distinct value of this column (default: one partition).
    #[serde(default)]
    pub partition_by: Option<String>,
    /// Kinds of columns, overriding what the table declares; required for every column of a
    /// query.
    #[serde(default)]
    pub types: BTreeMap<String, KindName>,
}

/// A kind as the config names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindName(pub Kind);

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map(KindName).map_err(serde::de::Error::custom)
    }
}

/// What is read: a table, or a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Table(String),
    Query(String),
}

impl Config {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let config: Self = weir_sdk::parse_config(NAME, text)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::InvalidConfig(format!("{NAME}: {m}")));
        if self.database.is_empty() {
            return invalid("`database` must not be empty".into());
        }
        match (&self.table, &self.query) {
            (Some(_), Some(_)) => {
                return invalid("give either `table` or `query`, not both".into());
            }
            (None, None) => {
                return invalid(
                    "give `table` (a table to read) or `query` (a SELECT to read)".into(),
                );
            }
            (Some(t), None) if t.is_empty() => return invalid("`table` must not be empty".into()),
            (None, Some(q)) if q.trim().is_empty() => {
                return invalid("`query` must not be empty".into());
            }
            _ => {}
        }
        if self.table.is_some() && self.name.is_some() {
            return invalid(
                "`name` applies to a `query` only (a table's partitions are named after it)".into(),
            );
        }
        if let Some(q) = &self.query
            && q.trim_end().ends_with(';')
        {
            return invalid("`query` must be one SELECT without a trailing `;`".into());
        }
        if let Some(key) = &self.key
            && key.is_empty()
        {
            return invalid("`key` must name at least one column".into());
        }
        if let Some(columns) = &self.columns {
            if columns.is_empty() {
                return invalid("`columns` must name at least one column".into());
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(twice) = columns.iter().find(|c| !seen.insert(c.as_str())) {
                return invalid(format!("`columns` names `{twice}` twice"));
            }
        }
        Ok(())
    }

    /// The table or query.
    pub fn source(&self) -> Source {
        match (&self.table, &self.query) {
            (Some(t), _) => Source::Table(t.clone()),
            (None, Some(q)) => Source::Query(q.clone()),
            (None, None) => unreachable!("checked in parse"),
        }
    }

    /// The base of every partition id: the table, or the query's name.
    pub fn base_name(&self) -> String {
        match self.source() {
            Source::Table(t) => t,
            Source::Query(_) => self.name.clone().unwrap_or_else(|| "query".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match Config::parse(text) {
            Err(Error::InvalidConfig(m)) => m,
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    #[test]
    fn a_table_or_a_query_but_not_both() {
        let c = Config::parse(r#"{"database":"d","table":"t","watermark":"w"}"#).unwrap();
        assert_eq!(c.source(), Source::Table("t".into()));
        assert_eq!(c.base_name(), "t");
        let c =
            Config::parse(r#"{"database":"d","query":"SELECT 1 AS x","types":{"x":"integer"}}"#)
                .unwrap();
        assert_eq!(c.base_name(), "query");
        assert!(error(r#"{"database":"d","table":"t","query":"SELECT 1"}"#).contains("not both"));
        assert!(error(r#"{"database":"d"}"#).contains("give `table`"));
        assert!(error(r#"{"database":"d","query":"SELECT 1;"}"#).contains("trailing"));
    }

    #[test]
    fn unknown_keys_and_kinds_are_named() {
        assert!(error(r#"{"database":"d","table":"t","watermrk":"w"}"#).contains("watermrk"));
        assert!(
            error(r#"{"database":"d","table":"t","types":{"a":"money"}}"#).contains("money"),
            "{}",
            error(r#"{"database":"d","table":"t","types":{"a":"money"}}"#)
        );
        assert!(error(r#"{"database":"d","table":"t","columns":["a","a"]}"#).contains("twice"));
        assert!(error(r#"{"database":"d","table":"t","key":[]}"#).contains("at least one"));
    }
}
