//! Contract 0.2.0 write plans rendered for PostgreSQL, and a batch written through them.
//!
//! - types: integer → `bigint`, real → `double precision`, decimal → `numeric`, date → `date`,
//!   timestamp → `timestamptz`, boolean → `boolean`, json → `jsonb`, blob → `bytea`, text →
//!   `text`; into an existing table the host writes the column's actual type (an `integer`
//!   column takes integers in range, a `text` column any text, …);
//! - migrations (`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`, the full-text
//!   column and index) run in the first batch's transaction, serialized per table by an
//!   advisory lock so concurrent workers do not race on the catalog;
//! - append: one binary `COPY` straight into the table;
//! - upsert: binary `COPY` into a temporary staging table, then ONE `INSERT … SELECT DISTINCT ON
//!   (key) … ON CONFLICT (key) DO UPDATE`, the last row of a key in the batch winning; with
//!   `deleted-by`, the last row of a key decides between delete and upsert, in the same
//!   statement;
//! - rejects: every value is checked against its column's type while it is encoded (a value
//!   the column cannot take is a reject naming the column); what the server still refuses
//!   (a constraint, a check, a foreign key) is found by halving the rows under savepoints
//!   until the refused rows stand alone, so only they are rejected.

use std::collections::HashSet;

use weir_postgres::copy::{CellRef, CopyBuffer, Target};
use weir_postgres::tokio_postgres::types::Type;
use weir_postgres::tokio_postgres::{Client, Error as PgError};
use weir_runtime::types::{Kind, Schema};
use weir_runtime::{Migration, WriteMode, WritePlan};
use weir_store::rejects::RejectRecord;

use super::BatchRows;

/// Longest identifier PostgreSQL keeps (longer ones are silently cut, so two names could meet).
const MAX_IDENTIFIER: usize = 63;

/// The advisory lock class for migrations of one table ("weir" + 1).
const MIGRATION_LOCK_CLASS: i32 = 0x7765_6973;

/// A plan as PostgreSQL statements, plus what the first batch learns about the table.
#[derive(Debug, Clone)]
pub(super) struct PgWriter {
    /// `"table"`.
    table: String,
    /// Plan column names (unquoted), their batch columns and kinds.
    columns: Vec<(String, u32, Kind)>,
    upsert_key: Vec<String>,
    /// Batch column of the tombstone marker (upsert only).
    deleted_by: Option<u32>,
    /// Schema changes still to apply in the next batch's transaction.
    pending_migrations: Vec<String>,
    /// The table's actual column types, read once the table exists.
    targets: Option<Vec<Target>>,
    /// Staging table name (upsert), derived from table and columns.
    staging: String,
}

/// `"name"`, with `"` doubled.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Integer => "bigint",
        Kind::Real => "double precision",
        Kind::Decimal => "numeric",
        Kind::Date => "date",
        Kind::Timestamp => "timestamptz",
        Kind::Boolean => "boolean",
        Kind::Json => "jsonb",
        Kind::Blob => "bytea",
        Kind::Text => "text",
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.contains('\0') {
        "contains a NUL character"
    } else if name.len() > MAX_IDENTIFIER {
        "is longer than 63 bytes, which PostgreSQL would cut short"
    } else if what == "table"
        && weir_runtime::sql_guard::HOST_TABLES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name))
    {
        "is a table only the host writes"
    } else if name.starts_with(weir_postgres::guard::STAGING_PREFIX) {
        "starts with the host's staging prefix"
    } else {
        return Ok(());
    };
    Err(format!("{what} name {name:?} {problem}"))
}

fn fnv(text: &str) -> u32 {
    let mut hash: u32 = 0x811C_9DC5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Check `plan` against the batch `schema` and render it for PostgreSQL.
pub(super) fn render(plan: &WritePlan, schema: &Schema) -> Result<PgWriter, String> {
    check_name("table", &plan.table)?;
    if plan.columns.is_empty() {
        return Err("write plan writes no columns".into());
    }
    let mut seen = HashSet::new();
    for column in &plan.columns {
        check_name("column", &column.name)?;
        if !seen.insert(column.name.as_str()) {
            return Err(format!("column `{}` appears twice", column.name));
        }
        let Some(source) = schema.columns.get(column.source as usize) else {
            return Err(format!(
                "column `{}` takes batch column {}, but the batch has {} columns",
                column.name,
                column.source,
                schema.columns.len()
            ));
        };
        if source.kind != column.kind {
            return Err(format!(
                "column `{}` is declared {:?} but its batch column `{}` is {:?}",
                column.name, column.kind, source.name, source.kind
            ));
        }
    }
    let key: Vec<String> = plan.key.clone();
    match plan.mode {
        WriteMode::Append if !key.is_empty() => {
            return Err("a key applies only to mode upsert".into());
        }
        WriteMode::Upsert if key.is_empty() => return Err("mode upsert needs a key".into()),
        _ => {}
    }
    if let Some(missing) = key.iter().find(|k| !seen.contains(k.as_str())) {
        return Err(format!(
            "key column `{missing}` is not one of the plan's columns"
        ));
    }
    if let Some(marker) = plan.deleted_by {
        if plan.mode != WriteMode::Upsert {
            return Err("deleted-by applies to mode upsert only (a delete needs a key)".into());
        }
        if schema.columns.get(marker as usize).is_none() {
            return Err(format!(
                "deleted-by names batch column {marker}, but the batch has {} columns",
                schema.columns.len()
            ));
        }
    }
    let table = quote(&plan.table);
    let definition = |name: &str, kind: Kind, not_null: bool| {
        format!(
            "{} {}{}",
            quote(name),
            sql_type(kind),
            if not_null { " NOT NULL" } else { "" }
        )
    };
    let mut migrations = Vec::new();
    for migration in &plan.migrations {
        match migration {
            Migration::CreateTable => {
                let mut definitions: Vec<String> = plan
                    .columns
                    .iter()
                    .map(|c| definition(&c.name, c.kind, !c.nullable || key.contains(&c.name)))
                    .collect();
                if !key.is_empty() {
                    let key: Vec<String> = key.iter().map(|k| quote(k)).collect();
                    definitions.push(format!("PRIMARY KEY ({})", key.join(", ")));
                }
                migrations.push(format!(
                    "CREATE TABLE IF NOT EXISTS {table} ({})",
                    definitions.join(", ")
                ));
            }
            Migration::AddColumn(column) => {
                check_name("column", &column.name)?;
                if !column.nullable {
                    return Err(format!(
                        "added column `{}` must be nullable: the rows already in the table have no value for it",
                        column.name
                    ));
                }
                migrations.push(format!(
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {}",
                    definition(&column.name, column.kind, false)
                ));
            }
        }
    }
    if !plan.full_text.is_empty() {
        migrations.extend(full_text(plan)?);
    }
    let columns: Vec<(String, u32, Kind)> = plan
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.source, c.kind))
        .collect();
    let signature: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
    let staging = format!(
        "{}_{:08x}",
        weir_postgres::guard::STAGING_PREFIX,
        fnv(&format!("{}\0{}", plan.table, signature.join("\0")))
    );
    Ok(PgWriter {
        table,
        columns,
        upsert_key: key,
        deleted_by: plan.deleted_by,
        pending_migrations: migrations,
        targets: None,
        staging,
    })
}

/// A generated `tsvector` column `<table>_fts` over the full-text columns (configuration
/// `simple`: no stemming, any language) with a GIN index, so the index is written by the same
/// statements, in the same transaction, as the rows. Query it with
/// `WHERE "<table>_fts" @@ plainto_tsquery('simple', 'words')`.
fn full_text(plan: &WritePlan) -> Result<Vec<String>, String> {
    for name in &plan.full_text {
        let Some(column) = plan.columns.iter().find(|c| &c.name == name) else {
            return Err(format!(
                "full-text column `{name}` is not one of the plan's columns"
            ));
        };
        if column.kind != Kind::Text {
            return Err(format!(
                "full-text column `{name}` is {:?}; only text columns can be indexed",
                column.kind
            ));
        }
    }
    let fts_column = format!("{}_fts", plan.table);
    let index = format!("{}_fts_idx", plan.table);
    check_name("column", &fts_column)?;
    check_name("index", &index)?;
    let document: Vec<String> = plan
        .full_text
        .iter()
        .map(|c| format!("coalesce({}, '')", quote(c)))
        .collect();
    let table = quote(&plan.table);
    Ok(vec![
        format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, {})) STORED",
            quote(&fts_column),
            document.join(" || ' ' || ")
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} USING gin ({})",
            quote(&index),
            quote(&fts_column)
        ),
    ])
}

/// Why writing through the plan failed (the batch fails; rows the server refused are rejects,
/// not failures).
#[derive(Debug)]
pub struct WriteFailure {
    pub context: &'static str,
    pub reason: String,
    pub retryable: bool,
}

impl WriteFailure {
    fn new(context: &'static str, error: &PgError) -> Self {
        Self {
            context,
            reason: weir_postgres::explain(error),
            retryable: weir_postgres::is_retryable(error),
        }
    }
}

impl PgWriter {
    /// Apply pending migrations and learn the table's column types, inside the open
    /// transaction (the first batch's).
    async fn prepare(&mut self, client: &Client) -> Result<(), WriteFailure> {
        let fail = |context| move |error: PgError| WriteFailure::new(context, &error);
        if !self.pending_migrations.is_empty() {
            let key = fnv(&self.table) as i32;
            client
                .execute(
                    "SELECT pg_advisory_xact_lock($1, $2)",
                    &[&MIGRATION_LOCK_CLASS, &key],
                )
                .await
                .map_err(fail("migration lock"))?;
            for statement in &self.pending_migrations {
                client
                    .batch_execute(statement)
                    .await
                    .map_err(fail("migration"))?;
            }
            self.pending_migrations.clear();
        }
        if self.targets.is_none() {
            self.targets = Some(self.column_targets(client).await?);
        }
        Ok(())
    }

    /// The encoder of each plan column: its actual type in the table.
    async fn column_targets(&self, client: &Client) -> Result<Vec<Target>, WriteFailure> {
        let rows = client
            .query(
                "SELECT a.attname::text, a.atttypid FROM pg_attribute a
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&self.table],
            )
            .await
            .map_err(|e| WriteFailure::new("reading the table's columns", &e))?;
        let types: std::collections::HashMap<String, u32> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, u32>(1)))
            .collect();
        let mut targets = Vec::with_capacity(self.columns.len());
        for (name, _, kind) in &self.columns {
            let Some(&oid) = types.get(name) else {
                return Err(missing_column(&self.table, name));
            };
            let ty = Type::from_oid(oid);
            let target = ty.as_ref().and_then(Target::of);
            match target {
                Some(t) if fits(*kind, t) => targets.push(t),
                _ => {
                    return Err(unsupported(
                        &self.table,
                        name,
                        *kind,
                        ty.map_or_else(|| format!("oid {oid}"), |t| t.to_string()),
                    ));
                }
            }
        }
        Ok(targets)
    }

    /// Write the batch's rows; rows refused become rejects. Returns rows written.
    pub(super) async fn write(
        &mut self,
        client: &Client,
        batch: &BatchRows<'_>,
        rejects: &mut Vec<RejectRecord>,
    ) -> Result<u64, WriteFailure> {
        self.prepare(client).await?;
        let targets = self.targets.clone().expect("prepared");
        let mut good = Vec::with_capacity(batch.rows.row_count);
        // Encode once up front: a value the column cannot take is the row's reject.
        let mut check = CopyBuffer::new();
        for row in 0..batch.rows.row_count {
            let cells = self.cells(batch, row, &targets);
            match check.row(cells) {
                Ok(()) => good.push(row),
                Err(bad) => {
                    let column = &self.columns[bad.column].0;
                    batch.reject(rejects, row, format!("column {column}: {}", bad.reason));
                }
            }
            if check.len() > 1 << 20 {
                check.take();
            }
        }
        drop(check);
        if self.is_upsert() {
            client
                .batch_execute(&self.create_staging(&targets))
                .await
                .map_err(|e| WriteFailure::new("creating the staging table", &e))?;
        }
        let mut written = 0;
        // Halve what the server refuses until the refused rows stand alone.
        let mut pending: Vec<&[usize]> = vec![&good];
        while let Some(rows) = pending.pop() {
            if rows.is_empty() {
                continue;
            }
            match self.write_rows(client, batch, rows, &targets).await {
                Ok(n) => written += n,
                Err(error) if is_row_error(&error) => {
                    if let [row] = rows {
                        batch.reject(rejects, *row, weir_postgres::explain(&error));
                    } else {
                        let (a, b) = rows.split_at(rows.len() / 2);
                        // Second half pushed first: rows are retried in batch order, which
                        // keeps an upsert's "last one wins" across the halves.
                        pending.push(b);
                        pending.push(a);
                    }
                }
                Err(error) => return Err(WriteFailure::new("writing rows", &error)),
            }
        }
        Ok(written)
    }

    fn is_upsert(&self) -> bool {
        !self.upsert_key.is_empty()
    }

    fn cells<'r>(
        &'r self,
        batch: &'r BatchRows<'_>,
        row: usize,
        targets: &'r [Target],
    ) -> impl ExactSizeIterator<Item = (CellRef<'r>, Target)> + 'r {
        self.columns
            .iter()
            .zip(targets)
            .map(move |((_, source, _), &t)| (cell(batch.rows.value(row, *source as usize)), t))
    }

    /// Rows `rows` of the batch in one savepoint: COPY (and the merge, for upserts). On a
    /// refusal the savepoint is rolled back, so the transaction goes on.
    async fn write_rows(
        &self,
        client: &Client,
        batch: &BatchRows<'_>,
        rows: &[usize],
        targets: &[Target],
    ) -> Result<u64, PgError> {
        client.batch_execute("SAVEPOINT weir_write").await?;
        let outcome = self.copy_and_merge(client, batch, rows, targets).await;
        match outcome {
            Ok(n) => {
                client.batch_execute("RELEASE SAVEPOINT weir_write").await?;
                Ok(n)
            }
            Err(e) => {
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT weir_write; RELEASE SAVEPOINT weir_write")
                    .await?;
                Err(e)
            }
        }
    }

    async fn copy_and_merge(
        &self,
        client: &Client,
        batch: &BatchRows<'_>,
        rows: &[usize],
        targets: &[Target],
    ) -> Result<u64, PgError> {
        let names: Vec<String> = self.columns.iter().map(|c| quote(&c.0)).collect();
        let mut copy = CopyBuffer::new();
        if !self.is_upsert() {
            for &row in rows {
                copy.row(self.cells(batch, row, targets))
                    .expect("checked when the batch was encoded");
            }
            copy.finish();
            let statement = format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                self.table,
                names.join(", ")
            );
            return weir_postgres::copy::copy_in(client, &statement, copy.take()).await;
        }
        for (ord, &row) in rows.iter().enumerate() {
            let marker = self
                .deleted_by
                .map(|m| i64::from(is_tombstone(batch.rows.value(row, m as usize))));
            let prefix = [
                (CellRef::Integer(ord as i64), Target::Int8),
                (CellRef::Integer(marker.unwrap_or(0)), Target::Bool),
            ];
            let cells: Vec<(CellRef<'_>, Target)> = prefix
                .into_iter()
                .chain(self.cells(batch, row, targets))
                .collect();
            copy.row(cells.into_iter())
                .expect("checked when the batch was encoded");
        }
        copy.finish();
        let staging = quote(&self.staging);
        client.batch_execute(&format!("TRUNCATE {staging}")).await?;
        let statement = format!(
            "COPY {staging} (\"_weir_ord\", \"_weir_del\", {}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        );
        weir_postgres::copy::copy_in(client, &statement, copy.take()).await?;
        client.execute(&self.merge_statement(), &[]).await?;
        Ok(rows.len() as u64)
    }

    fn create_staging(&self, targets: &[Target]) -> String {
        let definitions: Vec<String> = self
            .columns
            .iter()
            .zip(targets)
            .map(|((name, _, _), t)| format!("{} {}", quote(name), t.pg_type()))
            .collect();
        format!(
            "CREATE TEMPORARY TABLE IF NOT EXISTS {} (\"_weir_ord\" bigint NOT NULL, \"_weir_del\" boolean NOT NULL, {}) ON COMMIT DELETE ROWS",
            quote(&self.staging),
            definitions.join(", ")
        )
    }

    /// The one statement that applies the staged rows: the last row of each key decides.
    fn merge_statement(&self) -> String {
        let staging = quote(&self.staging);
        let names: Vec<String> = self.columns.iter().map(|c| quote(&c.0)).collect();
        let key: Vec<String> = self.upsert_key.iter().map(|k| quote(k)).collect();
        let updates: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.upsert_key.contains(&c.0))
            .map(|c| {
                let c = quote(&c.0);
                format!("{c} = EXCLUDED.{c}")
            })
            .collect();
        let on_conflict = if updates.is_empty() {
            format!("ON CONFLICT ({}) DO NOTHING", key.join(", "))
        } else {
            format!(
                "ON CONFLICT ({}) DO UPDATE SET {}",
                key.join(", "),
                updates.join(", ")
            )
        };
        let last = format!(
            "SELECT DISTINCT ON ({key}) * FROM {staging} ORDER BY {key}, \"_weir_ord\" DESC",
            key = key.join(", ")
        );
        let insert = format!(
            "INSERT INTO {table} ({names}) SELECT {names} FROM last WHERE NOT last.\"_weir_del\" {on_conflict}",
            table = self.table,
            names = names.join(", ")
        );
        if self.deleted_by.is_none() {
            return format!("WITH last AS ({last}) {insert}");
        }
        let matches: Vec<String> = key
            .iter()
            .map(|k| format!("{}.{k} = last.{k}", self.table))
            .collect();
        format!(
            "WITH last AS ({last}), gone AS (DELETE FROM {table} USING last WHERE last.\"_weir_del\" AND {matches}) {insert}",
            table = self.table,
            matches = matches.join(" AND ")
        )
    }
}

/// Whether a kind's values can go into a column of `target` (the encoder checks each value).
fn fits(kind: Kind, target: Target) -> bool {
    use Target::*;
    match kind {
        Kind::Integer => matches!(
            target,
            Int2 | Int4 | Int8 | Float4 | Float8 | Numeric | Text
        ),
        Kind::Real => matches!(target, Float4 | Float8 | Numeric | Text),
        Kind::Boolean => matches!(target, Bool),
        Kind::Decimal => matches!(target, Numeric | Text),
        Kind::Date => matches!(target, Date | Text),
        Kind::Timestamp => matches!(target, Timestamp | Timestamptz | Text),
        Kind::Json => matches!(target, Json | Jsonb | Text),
        Kind::Blob => matches!(target, Bytea),
        Kind::Text => matches!(target, Text),
    }
}

fn missing_column(table: &str, column: &str) -> WriteFailure {
    WriteFailure {
        context: "checking the table",
        reason: format!("table {table} has no column \"{column}\""),
        retryable: false,
    }
}

fn unsupported(table: &str, column: &str, kind: Kind, actual: String) -> WriteFailure {
    WriteFailure {
        context: "checking the table",
        reason: format!(
            "column \"{column}\" of table {table} is {actual}, which cannot hold {kind:?} values"
        ),
        retryable: false,
    }
}

fn cell(value: rusqlite::types::ValueRef<'_>) -> CellRef<'_> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => CellRef::Null,
        ValueRef::Integer(i) => CellRef::Integer(i),
        ValueRef::Real(r) => CellRef::Real(r),
        ValueRef::Text(t) => CellRef::Text(t),
        ValueRef::Blob(b) => CellRef::Blob(b),
    }
}

fn is_tombstone(value: rusqlite::types::ValueRef<'_>) -> bool {
    super::is_tombstone(value)
}

/// A refusal that is the rows' fault (a data exception or a constraint), not the database's.
fn is_row_error(e: &PgError) -> bool {
    e.code()
        .is_some_and(|c| matches!(&c.code()[..2], "22" | "23"))
}
