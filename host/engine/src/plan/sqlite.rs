//! Contract 0.2.0 write plans rendered for SQLite: the table's DDL, its migrations, the
//! per-row insert or upsert, and the full-text index, from a plan that names only tables,
//! columns, kinds and keys. Names are checked and quoted here, so the SQL is the host's own.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension as _};
use weir_runtime::types::{Kind, Schema};
use weir_runtime::{Migration, PlanColumn, WriteMode, WritePlan};

/// A plan as SQLite statements.
#[derive(Debug, Clone)]
pub(super) struct Rendered {
    /// The target table, unquoted.
    pub table: String,
    /// Schema changes for the first batch's transaction, in order.
    pub migrations: Vec<Step>,
    /// The per-row insert or upsert, with `?1`, `?2`, … parameters.
    pub statement: String,
    /// For each parameter, the batch column bound to it.
    pub params: Vec<u32>,
    /// Tombstones, when the plan has `deleted-by`.
    pub delete: Option<Delete>,
}

/// How a tombstone row is applied: the row with its key is deleted instead of written.
#[derive(Debug, Clone)]
pub(super) struct Delete {
    /// The batch column whose value (not null, not false) marks the row deleted.
    pub marker: u32,
    /// `DELETE FROM … WHERE key = ?1 AND …`.
    pub statement: String,
    /// For each parameter, the batch column bound to it (the key's).
    pub params: Vec<u32>,
}

/// One schema change.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// `CREATE TABLE IF NOT EXISTS …`.
    CreateTable(String),
    /// `ALTER TABLE … ADD COLUMN …`, skipped when the column is there already (SQLite has no
    /// `ADD COLUMN IF NOT EXISTS`; another worker of the same run may have added it).
    AddColumn { column: String, statement: String },
    /// The FTS5 table and the triggers that keep it in step with the table, all idempotent;
    /// `rebuild` fills the index from rows the table held before it existed.
    FullText {
        fts_table: String,
        statements: Vec<String>,
        rebuild: String,
    },
}

/// `"name"`, with `"` doubled.
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The STRICT column type holding a kind; decimals, dates, timestamps and JSON are canonical
/// text, booleans 0/1.
fn sql_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Integer | Kind::Boolean => "INTEGER",
        Kind::Real => "REAL",
        Kind::Blob => "BLOB",
        Kind::Text | Kind::Decimal | Kind::Date | Kind::Timestamp | Kind::Json => "TEXT",
    }
}

/// Names SQLite refuses or reserves, and tables the host owns.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.contains('\0') {
        "contains a NUL character"
    } else if name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_") {
        "starts with `sqlite_`, which SQLite reserves"
    } else if what == "table"
        && weir_runtime::sql_guard::HOST_TABLES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name))
    {
        "is a table only the host writes"
    } else {
        return Ok(());
    };
    Err(format!("{what} name {name:?} {problem}"))
}

/// A column's definition in `CREATE TABLE` or `ADD COLUMN`. Key columns are `NOT NULL`. A
/// one-column integer key is declared `INT`, not `INTEGER`: `INTEGER PRIMARY KEY` makes the
/// column the rowid, which gives a NULL a fresh value instead of refusing it (a row with a
/// null key would be inserted again on every delivery); `INT` stores the same integers.
fn column_definition(column: &PlanColumn, key: &[&str]) -> String {
    let in_key = key.contains(&column.name.as_str());
    let not_null = if !column.nullable || in_key {
        " NOT NULL"
    } else {
        ""
    };
    let sql_type = match sql_type(column.kind) {
        "INTEGER" if in_key && key.len() == 1 => "INT",
        other => other,
    };
    format!("{} {sql_type}{not_null}", quote(&column.name))
}

/// Check `plan` against the batch `schema` and render it.
pub(super) fn render(plan: &WritePlan, schema: &Schema) -> Result<Rendered, String> {
    check_name("table", &plan.table)?;
    let table = quote(&plan.table);
    if plan.columns.is_empty() {
        return Err("write plan writes no columns".into());
    }
    let mut seen = HashSet::new();
    for column in &plan.columns {
        check_name("column", &column.name)?;
        // SQLite column names ignore ASCII case: `Amount` and `amount` would be one column.
        if !seen.insert(column.name.to_ascii_lowercase()) {
            return Err(format!(
                "column `{}` appears twice (SQLite column names ignore case)",
                column.name
            ));
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
    let has = |name: &str| plan.columns.iter().any(|c| c.name == name);
    let key: Vec<&str> = plan.key.iter().map(String::as_str).collect();
    match plan.mode {
        WriteMode::Append if !key.is_empty() => {
            return Err("a key applies only to mode upsert".into());
        }
        WriteMode::Upsert if key.is_empty() => {
            return Err("mode upsert needs a key".into());
        }
        _ => {}
    }
    if let Some(missing) = key.iter().find(|k| !has(k)) {
        return Err(format!(
            "key column `{missing}` is not one of the plan's columns"
        ));
    }

    let mut migrations = Vec::new();
    for migration in &plan.migrations {
        migrations.push(match migration {
            Migration::CreateTable => {
                let mut definitions: Vec<String> = plan
                    .columns
                    .iter()
                    .map(|c| column_definition(c, &key))
                    .collect();
                if !key.is_empty() {
                    let key: Vec<String> = key.iter().map(|k| quote(k)).collect();
                    definitions.push(format!("PRIMARY KEY ({})", key.join(", ")));
                }
                Step::CreateTable(format!(
                    "CREATE TABLE IF NOT EXISTS {table} ({}) STRICT",
                    definitions.join(", ")
                ))
            }
            Migration::AddColumn(column) => {
                check_name("column", &column.name)?;
                if !column.nullable {
                    return Err(format!(
                        "added column `{}` must be nullable: the rows already in the table have no value for it",
                        column.name
                    ));
                }
                Step::AddColumn {
                    column: column.name.clone(),
                    statement: format!(
                        "ALTER TABLE {table} ADD COLUMN {}",
                        column_definition(column, &[])
                    ),
                }
            }
        });
    }
    if !plan.full_text.is_empty() {
        migrations.push(full_text(plan)?);
    }

    let names: Vec<String> = plan.columns.iter().map(|c| quote(&c.name)).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let mut statement = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        placeholders.join(", ")
    );
    if plan.mode == WriteMode::Upsert {
        let target: Vec<String> = key.iter().map(|k| quote(k)).collect();
        let updates: Vec<String> = plan
            .columns
            .iter()
            .filter(|c| !key.contains(&c.name.as_str()))
            .map(|c| {
                let c = quote(&c.name);
                format!("{c} = excluded.{c}")
            })
            .collect();
        statement += &format!(" ON CONFLICT ({}) DO ", target.join(", "));
        statement += &if updates.is_empty() {
            "NOTHING".to_owned()
        } else {
            format!("UPDATE SET {}", updates.join(", "))
        };
    }
    Ok(Rendered {
        table: plan.table.clone(),
        migrations,
        statement,
        params: plan.columns.iter().map(|c| c.source).collect(),
        delete: delete(plan, schema, &key)?,
    })
}

/// The delete of a plan with `deleted-by`, checked: upsert only, a column of the batch.
fn delete(plan: &WritePlan, schema: &Schema, key: &[&str]) -> Result<Option<Delete>, String> {
    let Some(marker) = plan.deleted_by else {
        return Ok(None);
    };
    if plan.mode != WriteMode::Upsert {
        return Err("deleted-by applies to mode upsert only (a delete needs a key)".into());
    }
    if schema.columns.get(marker as usize).is_none() {
        return Err(format!(
            "deleted-by names batch column {marker}, but the batch has {} columns",
            schema.columns.len()
        ));
    }
    let table = quote(&plan.table);
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (i, name) in key.iter().enumerate() {
        let column = plan
            .columns
            .iter()
            .find(|c| c.name == *name)
            .expect("key columns were checked to be plan columns");
        conditions.push(format!("{} = ?{}", quote(name), i + 1));
        params.push(column.source);
    }
    Ok(Some(Delete {
        marker,
        statement: format!("DELETE FROM {table} WHERE {}", conditions.join(" AND ")),
        params,
    }))
}

/// An FTS5 index of `plan.full_text`, kept by triggers in the table's own transactions (so
/// the index commits with the rows), as an external-content table over the table's rowid.
fn full_text(plan: &WritePlan) -> Result<Step, String> {
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
    let fts_name = format!("{}_fts", plan.table);
    check_name("table", &fts_name)?;
    let (table, fts) = (quote(&plan.table), quote(&fts_name));
    let columns: Vec<String> = plan.full_text.iter().map(|c| quote(c)).collect();
    let list = columns.join(", ");
    let values = |row: &str| {
        columns
            .iter()
            .map(|c| format!("{row}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let trigger = |suffix: &str| quote(&format!("{}_fts_{suffix}", plan.table));
    let delete_old = format!(
        "INSERT INTO {fts} ({fts}, rowid, {list}) VALUES ('delete', old.rowid, {});",
        values("old")
    );
    let insert_new = format!(
        "INSERT INTO {fts} (rowid, {list}) VALUES (new.rowid, {});",
        values("new")
    );
    Ok(Step::FullText {
        fts_table: fts_name.clone(),
        statements: vec![
            format!(
                "CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({list}, content={}, content_rowid='rowid')",
                sql_string(&plan.table)
            ),
            format!(
                "CREATE TRIGGER IF NOT EXISTS {} AFTER INSERT ON {table} BEGIN {insert_new} END",
                trigger("insert")
            ),
            format!(
                "CREATE TRIGGER IF NOT EXISTS {} AFTER DELETE ON {table} BEGIN {delete_old} END",
                trigger("delete")
            ),
            format!(
                "CREATE TRIGGER IF NOT EXISTS {} AFTER UPDATE ON {table} BEGIN {delete_old} {insert_new} END",
                trigger("update")
            ),
        ],
        rebuild: format!("INSERT INTO {fts} ({fts}) VALUES ('rebuild')"),
    })
}

/// `'text'`, with `'` doubled.
fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Apply one migration of the plan on `table` inside the open transaction.
pub(super) fn apply_migration(conn: &Connection, table: &str, step: &Step) -> rusqlite::Result<()> {
    match step {
        Step::CreateTable(statement) => conn.execute_batch(statement),
        Step::AddColumn { column, statement } => {
            if has_column(conn, table, column)? {
                return Ok(());
            }
            conn.execute_batch(statement)
        }
        Step::FullText {
            fts_table,
            statements,
            rebuild,
        } => {
            let existed = conn
                .query_row(
                    "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [fts_table],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            for statement in statements {
                conn.execute_batch(statement)?;
            }
            if !existed {
                // Rows loaded before the index existed are indexed once, now.
                conn.execute_batch(rebuild)?;
            }
            Ok(())
        }
    }
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    for name in names {
        if name?.eq_ignore_ascii_case(column) {
            return Ok(true);
        }
    }
    Ok(false)
}
