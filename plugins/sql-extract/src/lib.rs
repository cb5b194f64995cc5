//! `sql-extract`: a table or a query of a granted SQLite or PostgreSQL database, read
//! incrementally. Rows are read in (watermark, key) order by keyset pagination, one statement
//! per batch; the checkpoint is the last (watermark, key) read, so the next run picks up
//! exactly after it: rows updated since (their watermark grew) and new rows, and two rows
//! with the same watermark are told apart by the key.
//!
//! - `config`: the configuration and its checks;
//! - `kinds`: column kinds from declared types, values into cells;
//! - `query`: the SQL, as pure functions;
//! - this module: discovering the source, partitions, the reader and its checkpoint.

pub mod config;
pub mod kinds;
pub mod query;

use serde::{Deserialize, Serialize};
use weir_sdk::sql::{Connection, Dialect, QueryResult};
use weir_sdk::{
    Batch, Column, Error, Extractor, Kind, Partition, PluginInfo, Progress, Reader, RowsBuilder,
    Schema, SourceReject, Value,
};

use config::{Config, Source};
use query::{OrderColumn, PartitionFilter, ReadPlan};

pub const NAME: &str = "sql-extract";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "sql-extract",
  "type": "object",
  "additionalProperties": false,
  "required": ["database"],
  "properties": {
    "database": { "type": "string", "minLength": 1, "description": "granted database (a key of grants.databases); grant it read_only" },
    "table": { "type": "string", "minLength": 1, "description": "table to read (or give query)" },
    "query": { "type": "string", "minLength": 1, "description": "a SELECT to read as a subquery (or give table); needs types for every column" },
    "name": { "type": "string", "minLength": 1, "description": "partition id of a query (default query)" },
    "columns": { "type": "array", "items": { "type": "string" }, "minItems": 1, "description": "columns to read, in order (default all)" },
    "watermark": { "type": "string", "description": "a column that grows when a row changes (updated_at, version); without it rows are read by key and only higher keys are picked up later" },
    "key": { "type": "array", "items": { "type": "string" }, "minItems": 1, "description": "tie-breaker columns identifying a row (default the primary key)" },
    "partition_by": { "type": "string", "description": "one partition per distinct value of this column" },
    "types": { "type": "object", "additionalProperties": { "enum": ["text", "integer", "real", "boolean", "decimal", "date", "timestamp", "blob", "json"] }, "description": "column kinds overriding the declared types; required for each column of a query" }
  }
}"#;

/// The database, as the reader needs it: so the core runs natively in tests against a fake.
pub trait Db {
    fn dialect(&self) -> Dialect;
    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error>;
}

impl Db for Connection {
    fn dialect(&self) -> Dialect {
        Connection::dialect(self)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        Connection::query(self, sql, params)
    }
}

/// A column of the source as the database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceColumn {
    pub name: String,
    pub kind: Kind,
    pub nullable: bool,
    /// Position in the primary key, from 1; 0 when not in it.
    pub pk: i64,
}

/// The source, its columns with their kinds, and what orders it.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub dialect: Dialect,
    pub from: String,
    pub columns: Vec<SourceColumn>,
    pub output: Vec<String>,
    pub order: Vec<OrderColumn>,
    pub schema: Schema,
}

fn invalid(message: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("{NAME}: {message}"))
}

/// An integer the database returned (drivers differ on how they type small counts).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        Value::Boolean(b) => Some(i64::from(*b)),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Text(s) => Some(s),
        _ => None,
    }
}

/// Describe the source and decide the output columns and the order.
pub fn discover(db: &dyn Db, config: &Config) -> Result<Discovered, Error> {
    let dialect = db.dialect();
    let database = &config.database;
    let (from, mut columns) = match config.source() {
        Source::Table(table) => {
            let result = db
                .query(
                    query::describe_table(dialect),
                    &[Value::Text(table.clone())],
                )
                .map_err(|e| e.context(format_args!("{NAME}: describing table `{table}`")))?;
            if result.rows.is_empty() {
                return Err(invalid(format!(
                    "table `{table}` does not exist in database `{database}` ({})",
                    kinds::dialect_name(dialect)
                )));
            }
            let mut columns = Vec::new();
            for row in &result.rows {
                let (Some(name), Some(declared)) = (
                    row.first().and_then(text),
                    row.get(1).map(|v| text(v).unwrap_or("")),
                ) else {
                    return Err(Error::Other(format!(
                        "{NAME}: unexpected description of table `{table}`: {row:?}"
                    )));
                };
                let not_null = row.get(2).and_then(integer).unwrap_or(0) != 0;
                columns.push(SourceColumn {
                    name: name.to_owned(),
                    kind: match dialect {
                        Dialect::Sqlite => kinds::sqlite_kind(declared),
                        Dialect::Postgresql => kinds::postgres_kind(declared),
                    },
                    nullable: !not_null,
                    pk: row.get(3).and_then(integer).unwrap_or(0),
                });
            }
            (query::from_table(&table), columns)
        }
        Source::Query(sql) => {
            let result = db
                .query(&query::describe_query(&sql), &[])
                .map_err(|e| e.context(format_args!("{NAME}: the query")))?;
            let missing: Vec<&str> = result
                .columns
                .iter()
                .filter(|c| !config.types.contains_key(c.as_str()))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(invalid(format!(
                    "give the kind of every column of the query in `types`; missing: {}",
                    missing.join(", ")
                )));
            }
            let columns = result
                .columns
                .iter()
                .map(|name| SourceColumn {
                    name: name.clone(),
                    kind: config.types[name].0,
                    nullable: true,
                    pk: 0,
                })
                .collect();
            (query::from_query(&sql), columns)
        }
    };
    let names = |columns: &[SourceColumn]| {
        columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, kind) in &config.types {
        let Some(column) = columns.iter_mut().find(|c| &c.name == name) else {
            return Err(invalid(format!(
                "`types` names column `{name}`, which the source does not have; its columns: {}",
                names(&columns)
            )));
        };
        column.kind = kind.0;
    }
    let find = |name: &str, what: &str| {
        columns.iter().find(|c| c.name == name).ok_or_else(|| {
            invalid(format!(
                "{what} `{name}` is not a column of the source; its columns: {}",
                names(&columns)
            ))
        })
    };

    let output: Vec<String> = match &config.columns {
        Some(list) => {
            for name in list {
                find(name, "column")?;
            }
            list.clone()
        }
        None => columns.iter().map(|c| c.name.clone()).collect(),
    };
    let key: Vec<String> = match &config.key {
        Some(key) => key.clone(),
        None => {
            let mut pk: Vec<&SourceColumn> = columns.iter().filter(|c| c.pk > 0).collect();
            pk.sort_by_key(|c| c.pk);
            if pk.is_empty() {
                return Err(invalid(format!(
                    "the source has no primary key to order rows by: set `key` to the columns that identify a row (its columns: {})",
                    names(&columns)
                )));
            }
            pk.iter().map(|c| c.name.clone()).collect()
        }
    };
    let mut order = Vec::new();
    if let Some(watermark) = &config.watermark {
        order.push((watermark.clone(), "watermark"));
    }
    order.extend(key.iter().map(|k| (k.clone(), "key column")));
    let mut order_columns: Vec<OrderColumn> = Vec::new();
    for (name, what) in order {
        let column = find(&name, what)?;
        if matches!(column.kind, Kind::Blob | Kind::Json) {
            return Err(invalid(format!(
                "{what} `{name}` is {}, which cannot order rows",
                column.kind
            )));
        }
        if order_columns.iter().any(|c| c.name == name) {
            continue;
        }
        order_columns.push(OrderColumn {
            name,
            kind: column.kind,
        });
    }
    if let Some(p) = &config.partition_by {
        find(p, "partition_by column")?;
    }

    // Rows with a NULL key or watermark are never read, so those columns are never null in
    // the stream.
    let schema_columns = output
        .iter()
        .map(|name| {
            let c = columns.iter().find(|c| &c.name == name).expect("checked");
            let ordered = order_columns.iter().any(|o| &o.name == name);
            Column::new(name.clone(), c.kind, c.nullable && !ordered)
        })
        .collect();
    let primary_key = if key.iter().all(|k| output.contains(k)) {
        key
    } else {
        Vec::new()
    };
    Ok(Discovered {
        dialect,
        from,
        columns,
        output,
        order: order_columns,
        schema: Schema {
            columns: schema_columns,
            primary_key,
        },
    })
}

/// The partition ids: the base name, or one per value of `partition_by`
/// (`appointments[clinic=7]`, `appointments[clinic is null]`).
pub fn partition_ids(db: &dyn Db, config: &Config) -> Result<Vec<String>, Error> {
    let base = config.base_name();
    let Some(column) = &config.partition_by else {
        return Ok(vec![base]);
    };
    let from = match config.source() {
        Source::Table(t) => query::from_table(&t),
        Source::Query(q) => query::from_query(&q),
    };
    let result = db
        .query(&query::partition_values(&from, column), &[])
        .map_err(|e| e.context(format_args!("{NAME}: listing the values of `{column}`")))?;
    let mut values: Vec<Option<String>> = result
        .rows
        .iter()
        .map(|row| row.first().and_then(text).map(str::to_owned))
        .collect();
    // NULL first, then by text: the same order on every database.
    values.sort();
    Ok(values
        .into_iter()
        .map(|v| match v {
            Some(v) => format!("{base}[{column}={v}]"),
            None => format!("{base}[{column} is null]"),
        })
        .collect())
}

/// The rows a partition id stands for.
pub fn partition_filter(config: &Config, id: &str) -> Result<PartitionFilter, Error> {
    let base = config.base_name();
    let Some(column) = &config.partition_by else {
        return if id == base {
            Ok(PartitionFilter::All)
        } else {
            Err(invalid(format!(
                "unknown partition `{id}` (expected `{base}`)"
            )))
        };
    };
    let unknown = || {
        invalid(format!(
            "unknown partition `{id}` (expected `{base}[{column}=…]`)"
        ))
    };
    let inner = id
        .strip_prefix(base.as_str())
        .and_then(|r| r.strip_prefix('['))
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(unknown)?;
    if inner == format!("{column} is null") {
        return Ok(PartitionFilter::Value {
            column: column.clone(),
            value: None,
        });
    }
    let value = inner
        .strip_prefix(column.as_str())
        .and_then(|r| r.strip_prefix('='))
        .ok_or_else(unknown)?;
    Ok(PartitionFilter::Value {
        column: column.clone(),
        value: Some(value.to_owned()),
    })
}

/// Where a partition resumes: after the last (watermark, key) read, with the count of rows
/// read so far (row positions continue from it, so they grow across runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub after: Vec<KeyValue>,
    pub read: u64,
}

/// One ordering value as the checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    Text(String),
}

impl KeyValue {
    fn from_value(value: &Value) -> Option<Self> {
        Some(match value {
            Value::Integer(i) => KeyValue::Integer(*i),
            Value::Real(r) => KeyValue::Real(*r),
            Value::Boolean(b) => KeyValue::Boolean(*b),
            Value::Text(s) => KeyValue::Text(s.clone()),
            Value::Null | Value::Blob(_) => return None,
        })
    }

    fn to_value(&self) -> Value {
        match self {
            KeyValue::Integer(i) => Value::Integer(*i),
            KeyValue::Real(r) => Value::Real(*r),
            KeyValue::Boolean(b) => Value::Boolean(*b),
            KeyValue::Text(s) => Value::Text(s.clone()),
        }
    }
}

/// A partition being read.
pub struct SqlReader<D: Db> {
    db: D,
    plan: ReadPlan,
    schema: Schema,
    kinds: Vec<Kind>,
    after: Option<Vec<KeyValue>>,
    read: u64,
    total: Option<u64>,
    finished: bool,
}

/// Something the glue should log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice(pub String);

impl<D: Db> SqlReader<D> {
    /// Open `partition` after `checkpoint`; also says how many rows can never be read.
    pub fn open(
        db: D,
        config: &Config,
        partition: &str,
        checkpoint: Option<&str>,
    ) -> Result<(Self, Vec<Notice>), Error> {
        let discovered = discover(&db, config)?;
        let filter = partition_filter(config, partition)?;
        let after = match checkpoint {
            None => None,
            Some(text) => {
                let cp: Checkpoint = serde_json::from_str(text).map_err(|e| {
                    Error::BadData(format!(
                        "{NAME}: checkpoint of partition `{partition}` is not one this plugin wrote ({e}); reset it with `weir reset`"
                    ))
                })?;
                if cp.after.len() != discovered.order.len() {
                    return Err(Error::BadData(format!(
                        "{NAME}: checkpoint of partition `{partition}` holds {} ordering values but the config orders by {} columns (the watermark or key changed?); reset it with `weir reset`",
                        cp.after.len(),
                        discovered.order.len()
                    )));
                }
                Some(cp)
            }
        };
        let kinds = discovered.schema.columns.iter().map(|c| c.kind).collect();
        let plan = ReadPlan {
            dialect: discovered.dialect,
            from: discovered.from,
            output: discovered.output,
            order: discovered.order,
            partition: filter,
        };
        let mut reader = Self {
            db,
            plan,
            schema: discovered.schema,
            kinds,
            read: after.as_ref().map_or(0, |c| c.read),
            after: after.map(|c| c.after),
            total: None,
            finished: false,
        };
        let mut notices = Vec::new();
        let (sql, params) = reader.plan.count_unreadable();
        let unreadable = reader.count(&sql, params, &[])?;
        if unreadable > 0 {
            let names: Vec<&str> = reader.plan.order.iter().map(|c| c.name.as_str()).collect();
            notices.push(Notice(format!(
                "{NAME}: partition `{partition}`: {unreadable} rows have a NULL in {} and are not read",
                names.join(" or ")
            )));
        }
        let (sql, params) = reader.plan.count_remaining(reader.after.is_some());
        let after_values: Vec<Value> = reader
            .after
            .iter()
            .flatten()
            .map(KeyValue::to_value)
            .collect();
        let remaining = reader.count(&sql, params, &after_values)?;
        reader.total = Some(reader.read + remaining);
        Ok((reader, notices))
    }

    fn count(&self, sql: &str, params: Vec<String>, more: &[Value]) -> Result<u64, Error> {
        let params: Vec<Value> = params
            .into_iter()
            .map(Value::Text)
            .chain(more.iter().cloned())
            .collect();
        let result = self.db.query(sql, &params)?;
        Ok(result
            .rows
            .first()
            .and_then(|r| r.first())
            .and_then(integer)
            .unwrap_or(0)
            .max(0) as u64)
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The next page of rows, or `None` when the partition is read to its end.
    pub fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        if self.finished {
            return Ok(None);
        }
        let limit = max_rows.max(1);
        let (sql, params) = self.plan.batch(self.after.is_some(), limit);
        let params: Vec<Value> = params
            .into_iter()
            .map(Value::Text)
            .chain(self.after.iter().flatten().map(KeyValue::to_value))
            .collect();
        let result = self.db.query(&sql, &params)?;
        if result.rows.len() < limit as usize {
            self.finished = true;
        }
        if result.rows.is_empty() {
            return Ok(None);
        }
        let width = self.plan.output.len();
        let mut builder = RowsBuilder::with_capacity(&self.schema, result.rows.len());
        let mut positions = Vec::with_capacity(result.rows.len());
        let mut rejects = Vec::new();
        for (i, row) in result.rows.iter().enumerate() {
            let position = self.read + i as u64 + 1;
            match self.build_row(&mut builder, &row[..width.min(row.len())]) {
                Ok(()) => positions.push(position),
                Err(reason) => rejects.push(SourceReject {
                    position,
                    reason,
                    raw: raw_row(&self.plan.output, row),
                }),
            }
        }
        let last = result.rows.last().expect("not empty");
        let after: Option<Vec<KeyValue>> = last[width..].iter().map(KeyValue::from_value).collect();
        let after = after.ok_or_else(|| {
            Error::Other(format!(
                "{NAME}: the database returned a NULL or binary ordering value: {:?}",
                &last[width..]
            ))
        })?;
        self.read += result.rows.len() as u64;
        let checkpoint = Checkpoint {
            after: after.clone(),
            read: self.read,
        };
        self.after = Some(after);
        if self.total.is_some_and(|t| t < self.read) {
            // Rows arrived while reading: the total was a snapshot at open.
            self.total = Some(self.read);
        }
        Ok(Some(Batch {
            rows: builder.finish(),
            positions,
            rejects,
            checkpoint: serde_json::to_string(&checkpoint).expect("a checkpoint serializes"),
            progress: Progress {
                done: self.read,
                total: self.total,
            },
        }))
    }

    fn build_row(&self, builder: &mut RowsBuilder, values: &[Value]) -> Result<(), String> {
        let mut out = builder.row();
        for (index, (value, kind)) in values.iter().zip(&self.kinds).enumerate() {
            let cell = kinds::cell(value, *kind)
                .map_err(|e| format!("column \"{}\": {e}", self.schema.columns[index].name))?;
            out.set(index, cell.as_cell()).map_err(String::from)?;
        }
        out.commit().map_err(String::from)
    }
}

/// A row as JSON, for a reject's `raw`.
fn raw_row(names: &[String], values: &[Value]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let json = match value {
                Value::Null => serde_json::Value::Null,
                Value::Boolean(b) => (*b).into(),
                Value::Integer(i) => (*i).into(),
                Value::Real(r) => serde_json::Number::from_f64(*r)
                    .map_or_else(|| r.to_string().into(), serde_json::Value::Number),
                Value::Text(s) => s.clone().into(),
                Value::Blob(b) => format!("<{} bytes>", b.len()).into(),
            };
            (name.clone(), json)
        })
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// The plugin.
pub struct SqlExtract;

fn connect(config: &Config) -> Result<Connection, Error> {
    Connection::open(&config.database).map_err(|e| {
        e.context(format_args!(
            "{NAME}: cannot open database `{}`",
            config.database
        ))
    })
}

fn log(notices: Vec<Notice>) {
    for Notice(message) in notices {
        weir_sdk::log::warn(&message);
    }
}

impl Extractor for SqlExtract {
    type Reader = SqlReader<Connection>;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description:
                "a table or query of a granted SQLite or PostgreSQL database, incrementally by watermark and key"
                    .to_owned(),
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        let config = Config::parse(config)?;
        let db = connect(&config)?;
        // Discovering checks the columns now, so a config mistake fails before any worker.
        discover(&db, &config)?;
        Ok(partition_ids(&db, &config)?
            .into_iter()
            .map(|id| Partition { id, size: None })
            .collect())
    }

    fn open(
        config: &str,
        partition: Partition,
        checkpoint: Option<String>,
    ) -> Result<Self::Reader, Error> {
        let config = Config::parse(config)?;
        let db = connect(&config)?;
        let (reader, notices) = SqlReader::open(db, &config, &partition.id, checkpoint.as_deref())?;
        log(notices);
        Ok(reader)
    }
}

impl Reader for SqlReader<Connection> {
    fn schema(&self) -> Schema {
        SqlReader::schema(self).clone()
    }

    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        SqlReader::next_batch(self, max_rows)
    }
}

weir_sdk::export_extractor!(SqlExtract);

#[cfg(test)]
mod tests;
