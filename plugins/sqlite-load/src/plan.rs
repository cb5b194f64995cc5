//! The write plan as a pure function of the config, the stream's schema and what the table
//! looks like now, so it is tested without a database. The plan is declarative (contract
//! 0.2.0): the table, its columns with kinds, append or upsert by key, the migrations that
//! bring the table to the stream's shape, the full-text columns. The host renders it for the
//! database and applies the migrations in the first batch's transaction.

use std::collections::HashSet;

use weir_sdk::sql::quote_identifier;
use weir_sdk::{Error, Kind, Migration, PlanColumn, Schema, WriteMode, WritePlan};

use crate::{Mode, NAME, SqliteLoadConfig};

/// The target table as `open` found it.
#[derive(Debug, Default)]
pub(crate) struct ExistingTable {
    /// Column names, in table order.
    pub(crate) columns: Vec<String>,
    /// The column sets of the primary key and of every full (non-partial) unique index: the
    /// conflict targets an upsert may name.
    pub(crate) unique_keys: Vec<Vec<String>>,
    /// The columns that accept NULL, and why.
    pub(crate) nullable: Vec<(String, Nullable)>,
}

/// Why a column of an existing table accepts NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nullable {
    /// Declared without `NOT NULL`.
    Plain,
    /// A `PRIMARY KEY` column of a table that is neither STRICT nor WITHOUT ROWID: SQLite
    /// keeps its historical rule that such keys may be NULL.
    PrimaryKey,
    /// The table's `INTEGER PRIMARY KEY`, i.e. its rowid: SQLite gives a NULL a new rowid,
    /// `NOT NULL` or not.
    Rowid,
}

/// One column of an existing table, as `pragma_table_info` describes it.
#[derive(Debug)]
pub(crate) struct ColumnInfo {
    pub(crate) name: String,
    /// Position in the primary key, from 1; 0 when not in it.
    pub(crate) pk: i64,
    /// Whether NULL is refused: declared `NOT NULL`, or a primary key column of a STRICT or
    /// WITHOUT ROWID table (SQLite reports those as `notnull` too).
    pub(crate) not_null: bool,
    /// The declared type, as written.
    pub(crate) declared_type: String,
}

/// The columns that accept NULL as a key, and why. `pk_has_index` says whether the primary
/// key has an index of its own (`pragma_index_list` origin `pk`): a one-column `INTEGER` key
/// without one is the rowid.
pub(crate) fn nullable_columns(
    columns: &[ColumnInfo],
    pk_has_index: bool,
) -> Vec<(String, Nullable)> {
    let key: Vec<&ColumnInfo> = columns.iter().filter(|c| c.pk > 0).collect();
    let rowid = match key[..] {
        [only] => only.declared_type.eq_ignore_ascii_case("INTEGER") && !pk_has_index,
        _ => false,
    };
    columns
        .iter()
        .filter_map(|c| {
            let why = if rowid && c.pk > 0 {
                Nullable::Rowid
            } else if c.not_null {
                return None;
            } else if c.pk > 0 {
                Nullable::PrimaryKey
            } else {
                Nullable::Plain
            };
            Some((c.name.clone(), why))
        })
        .collect()
}

/// Plan loading rows of `schema` into the configured table; `existing` is `None` when the
/// table does not exist yet.
///
/// A new table gets every column nullable except the key: the table outlives this stream, and
/// a later file may well have an empty cell where this one had none. Upsert keys are `NOT
/// NULL` (SQLite would otherwise allow many rows with a null key) and the `PRIMARY KEY`, which
/// is what `ON CONFLICT` needs; the host declares a one-column integer key `INT`, not the
/// rowid. An existing table gets the columns it lacks, nullable.
pub(crate) fn plan(
    config: &SqliteLoadConfig,
    schema: &Schema,
    existing: Option<&ExistingTable>,
) -> Result<WritePlan, Error> {
    check_identifier("table", &config.table)?;
    check_columns(schema)?;
    let key = key_columns(config, schema)?;
    check_full_text(config, schema)?;
    let deleted_by = deleted_by(config, schema)?;
    let columns: Vec<PlanColumn> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| PlanColumn {
            name: c.name.clone(),
            kind: c.kind,
            nullable: !key.contains(&c.name.as_str()),
            source: u32::try_from(i).expect("a schema has fewer than 2^32 columns"),
        })
        .collect();
    let migrations = match existing {
        None => vec![Migration::CreateTable],
        Some(existing) => {
            if config.mode == Mode::Upsert {
                check_conflict_target(config, existing, &key)?;
                check_keys_not_null(config, existing, &key)?;
            }
            let present: HashSet<String> = existing
                .columns
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect();
            columns
                .iter()
                .filter(|c| !present.contains(&c.name.to_ascii_lowercase()))
                .map(|c| {
                    Migration::AddColumn(PlanColumn {
                        nullable: true,
                        ..c.clone()
                    })
                })
                .collect()
        }
    };
    Ok(WritePlan {
        database: config.database.clone(),
        table: config.table.clone(),
        columns,
        mode: match config.mode {
            Mode::Append => WriteMode::Append,
            Mode::Upsert => WriteMode::Upsert,
        },
        key: key.iter().map(|k| (*k).to_owned()).collect(),
        migrations,
        full_text: config.fts.clone(),
        deleted_by,
    })
}

/// `deleted_by` names a column of the stream, and applies to upserts only (an append has no
/// key to delete by).
fn deleted_by(config: &SqliteLoadConfig, schema: &Schema) -> Result<Option<u32>, Error> {
    let Some(name) = &config.deleted_by else {
        return Ok(None);
    };
    if config.mode != Mode::Upsert {
        return Err(Error::InvalidConfig(format!(
            "{NAME}: deleted_by applies to mode = \"upsert\" only: a delete needs the key of the row to delete"
        )));
    }
    let index = schema.column_index(name).ok_or_else(|| {
        Error::InvalidConfig(format!(
            "{NAME}: deleted_by column `{name}` is not in the stream's schema; available columns: {}",
            schema.column_list()
        ))
    })?;
    Ok(Some(
        u32::try_from(index).expect("a schema has fewer than 2^32 columns"),
    ))
}

/// `fts` names text columns of the stream.
fn check_full_text(config: &SqliteLoadConfig, schema: &Schema) -> Result<(), Error> {
    for name in &config.fts {
        match schema.column_index(name).map(|i| &schema.columns[i]) {
            None => {
                return Err(Error::InvalidConfig(format!(
                    "{NAME}: fts column `{name}` is not in the stream's schema; available columns: {}",
                    schema.column_list()
                )));
            }
            Some(column) if column.kind != Kind::Text => {
                return Err(Error::InvalidConfig(format!(
                    "{NAME}: fts column `{name}` is {:?}; only text columns can be searched",
                    column.kind
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The upsert key: the configured one, else the schema's primary key. Empty for append.
fn key_columns<'s>(
    config: &'s SqliteLoadConfig,
    schema: &'s Schema,
) -> Result<Vec<&'s str>, Error> {
    let invalid = |m: String| Error::InvalidConfig(format!("{NAME}: {m}"));
    if config.mode == Mode::Append {
        if config.key.is_some() {
            return Err(invalid(
                "`key` applies only to `mode = \"upsert\"`".to_owned(),
            ));
        }
        return Ok(Vec::new());
    }
    let key: Vec<&str> = match &config.key {
        Some(key) => key.iter().map(String::as_str).collect(),
        None => schema.primary_key.iter().map(String::as_str).collect(),
    };
    if key.is_empty() {
        return Err(invalid(
            "`mode = \"upsert\"` needs `key`: the stream's schema has no primary key".to_owned(),
        ));
    }
    for (i, k) in key.iter().enumerate() {
        if schema.column_index(k).is_none() {
            return Err(invalid(format!(
                "key column `{k}` is not in the stream's schema; available columns: {}",
                schema.column_list()
            )));
        }
        if key[..i].contains(k) {
            return Err(invalid(format!("key column `{k}` is listed twice")));
        }
    }
    Ok(key)
}

/// An existing table must already have a primary key or unique index on exactly the key
/// columns: `ON CONFLICT` refuses anything else, and adding a unique index to a table full
/// of rows is the operator's decision, not a loader's.
fn check_conflict_target(
    config: &SqliteLoadConfig,
    existing: &ExistingTable,
    key: &[&str],
) -> Result<(), Error> {
    let wanted: HashSet<String> = key.iter().map(|k| k.to_ascii_lowercase()).collect();
    let found = existing.unique_keys.iter().any(|unique| {
        unique.len() == wanted.len()
            && unique
                .iter()
                .all(|c| wanted.contains(&c.to_ascii_lowercase()))
    });
    if found {
        return Ok(());
    }
    let columns: Vec<String> = key.iter().map(|k| quote_identifier(k)).collect();
    Err(Error::InvalidConfig(format!(
        "{NAME}: upsert into existing table `{}` needs a primary key or unique index on ({}); \
         create one, e.g. CREATE UNIQUE INDEX ... ON {} ({})",
        config.table,
        key.join(", "),
        quote_identifier(&config.table),
        columns.join(", ")
    )))
}

/// Every upsert key column of an existing table must refuse NULL. SQLite never finds a
/// conflict on a NULL key (NULL equals nothing, and a NULL rowid becomes a new one), so a
/// row with a null key would be inserted again on every delivery — duplicates no error
/// reports. With `NOT NULL` such a row is a reject instead.
fn check_keys_not_null(
    config: &SqliteLoadConfig,
    existing: &ExistingTable,
    key: &[&str],
) -> Result<(), Error> {
    let Some((column, why)) = key.iter().find_map(|k| {
        existing
            .nullable
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(k))
    }) else {
        return Ok(());
    };
    let table = &config.table;
    let quoted = quote_identifier(column);
    let (what, fix) = match why {
        Nullable::Plain => (
            "is nullable (declared without NOT NULL): SQLite never finds a conflict on a NULL key",
            format!("{quoted} NOT NULL"),
        ),
        Nullable::PrimaryKey => (
            "is a PRIMARY KEY that SQLite lets hold NULL (its rule for tables that are neither \
             STRICT nor WITHOUT ROWID): SQLite never finds a conflict on a NULL key",
            format!("{quoted} NOT NULL"),
        ),
        Nullable::Rowid => (
            "is the table's INTEGER PRIMARY KEY, i.e. its rowid: SQLite gives a row with a NULL \
             key a new rowid, NOT NULL or not",
            format!("{quoted} INT NOT NULL PRIMARY KEY (INT, not INTEGER: not the rowid)"),
        ),
    };
    Err(Error::InvalidConfig(format!(
        "{NAME}: upsert key column `{column}` of existing table `{table}` {what}, so a row whose \
         `{column}` is null would be inserted again on every delivery instead of updated; \
         create the table anew with {fix} and copy the rows over (SQLite cannot alter a \
         column), or load into a new table, whose key {NAME} makes refuse NULL"
    )))
}

/// Names are quoted, so almost anything goes; these are the names SQLite refuses or reserves.
fn check_identifier(what: &str, name: &str) -> Result<(), Error> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.contains('\0') {
        "contains a NUL character"
    } else if name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_") {
        "starts with `sqlite_`, which SQLite reserves"
    } else {
        return Ok(());
    };
    Err(Error::InvalidConfig(format!(
        "{NAME}: {what} name {name:?} {problem}"
    )))
}

/// Column names become SQLite columns, which ignore ASCII case: `Amount` and `amount` would
/// be one column.
fn check_columns(schema: &Schema) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for column in &schema.columns {
        check_identifier("column", &column.name)?;
        if !seen.insert(column.name.to_ascii_lowercase()) {
            return Err(Error::InvalidConfig(format!(
                "{NAME}: column `{}` appears twice (SQLite column names ignore case)",
                column.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::Column;

    fn config(mode: Mode, key: Option<&[&str]>) -> SqliteLoadConfig {
        SqliteLoadConfig {
            database: "ledger".into(),
            table: "transactions".into(),
            mode,
            key: key.map(|k| k.iter().map(|s| s.to_string()).collect()),
            fts: Vec::new(),
            deleted_by: None,
        }
    }

    fn names(columns: &[PlanColumn]) -> Vec<(&str, bool)> {
        columns
            .iter()
            .map(|c| (c.name.as_str(), c.nullable))
            .collect()
    }

    fn schema(primary_key: &[&str]) -> Schema {
        Schema {
            columns: vec![
                Column::new("txn_id", Kind::Text, false),
                Column::new("amount", Kind::Decimal, true),
                Column::new("booked", Kind::Date, true),
                Column::new("count", Kind::Integer, true),
                Column::new("ok", Kind::Boolean, true),
                Column::new("rate", Kind::Real, true),
                Column::new("raw", Kind::Blob, true),
            ],
            primary_key: primary_key.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn invalid_config(result: Result<WritePlan, Error>) -> String {
        match result {
            Err(Error::InvalidConfig(m)) => m,
            other => panic!("expected invalid-config, got {other:?}"),
        }
    }

    #[test]
    fn append_into_a_new_table_creates_it_all_nullable() {
        let plan = plan(&config(Mode::Append, None), &schema(&["txn_id"]), None).unwrap();
        assert_eq!(plan.migrations, vec![Migration::CreateTable]);
        assert_eq!(plan.mode, WriteMode::Append);
        assert!(plan.key.is_empty());
        assert!(plan.columns.iter().all(|c| c.nullable));
        assert_eq!(
            plan.columns.iter().map(|c| c.source).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5, 6]
        );
        assert_eq!(plan.columns[1].kind, Kind::Decimal);
        assert_eq!(plan.table, "transactions");
        assert_eq!(plan.database, "ledger");
    }

    #[test]
    fn upsert_into_a_new_table_keys_it() {
        let plan = plan(&config(Mode::Upsert, None), &schema(&["txn_id"]), None).unwrap();
        assert_eq!(plan.mode, WriteMode::Upsert);
        assert_eq!(plan.key, vec!["txn_id".to_owned()]);
        assert_eq!(
            names(&plan.columns)[..2],
            [("txn_id", false), ("amount", true)]
        );
        assert_eq!(plan.migrations, vec![Migration::CreateTable]);
    }

    #[test]
    fn existing_table_gets_only_the_missing_columns_case_insensitively() {
        let existing = ExistingTable {
            columns: vec![
                "TXN_ID".into(),
                "amount".into(),
                "booked".into(),
                "count".into(),
                "ok".into(),
            ],
            unique_keys: vec![vec!["other".into()], vec!["Txn_Id".into()]],
            nullable: vec![("amount".into(), Nullable::Plain)],
        };
        let plan = plan(
            &config(Mode::Upsert, Some(&["txn_id"])),
            &schema(&[]),
            Some(&existing),
        )
        .unwrap();
        let added: Vec<(&str, Kind, bool, u32)> = plan
            .migrations
            .iter()
            .map(|m| match m {
                Migration::AddColumn(c) => (c.name.as_str(), c.kind, c.nullable, c.source),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            added,
            vec![("rate", Kind::Real, true, 5), ("raw", Kind::Blob, true, 6)]
        );
    }

    #[test]
    fn fts_columns_must_be_text_columns_of_the_stream() {
        let mut c = config(Mode::Append, None);
        c.fts = vec!["txn_id".into()];
        assert_eq!(
            plan(&c, &schema(&[]), None).unwrap().full_text,
            vec!["txn_id"]
        );
        c.fts = vec!["count".into()];
        assert!(invalid_config(plan(&c, &schema(&[]), None)).contains("only text columns"));
        c.fts = vec!["memo".into()];
        assert!(invalid_config(plan(&c, &schema(&[]), None)).contains("not in the stream"));
    }

    #[test]
    fn deleted_by_names_a_stream_column_of_an_upsert() {
        let mut c = config(Mode::Upsert, Some(&["txn_id"]));
        c.deleted_by = Some("ok".into());
        assert_eq!(plan(&c, &schema(&[]), None).unwrap().deleted_by, Some(4));
        c.deleted_by = Some("gone".into());
        assert!(invalid_config(plan(&c, &schema(&[]), None)).contains("not in the stream"));
        let mut c = config(Mode::Append, None);
        c.deleted_by = Some("ok".into());
        assert!(invalid_config(plan(&c, &schema(&[]), None)).contains("upsert"));
    }

    #[test]
    fn upsert_into_a_table_without_a_matching_unique_key_is_refused() {
        let existing = ExistingTable {
            columns: vec!["txn_id".into(), "amount".into()],
            unique_keys: vec![vec!["txn_id".into(), "amount".into()]],
            nullable: vec![],
        };
        let m = invalid_config(plan(
            &config(Mode::Upsert, Some(&["txn_id"])),
            &schema(&[]),
            Some(&existing),
        ));
        assert_eq!(
            m,
            r#"sqlite-load: upsert into existing table `transactions` needs a primary key or unique index on (txn_id); create one, e.g. CREATE UNIQUE INDEX ... ON "transactions" ("txn_id")"#
        );
        // Appending needs no key at all.
        assert!(plan(&config(Mode::Append, None), &schema(&[]), Some(&existing)).is_ok());
    }

    fn info(name: &str, pk: i64, not_null: bool, declared_type: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            pk,
            not_null,
            declared_type: declared_type.into(),
        }
    }

    #[test]
    fn nullable_columns_say_why_they_accept_null() {
        let plain = [info("id", 0, false, "TEXT"), info("n", 0, true, "TEXT")];
        assert_eq!(
            nullable_columns(&plain, false),
            vec![("id".to_owned(), Nullable::Plain)]
        );
        // A one-column INTEGER PRIMARY KEY without an index of its own is the rowid, NOT NULL
        // or not; in a composite key, or with an index (WITHOUT ROWID), it is not.
        for not_null in [false, true] {
            let rowid = [info("id", 1, not_null, "integer"), info("v", 0, true, "")];
            assert_eq!(
                nullable_columns(&rowid, false),
                vec![("id".to_owned(), Nullable::Rowid)]
            );
        }
        assert!(nullable_columns(&[info("id", 1, true, "INTEGER")], true).is_empty());
        assert!(nullable_columns(&[info("id", 1, true, "INT")], true).is_empty());
        let composite = [info("a", 1, false, "INTEGER"), info("b", 2, false, "TEXT")];
        assert_eq!(
            nullable_columns(&composite, true),
            vec![
                ("a".to_owned(), Nullable::PrimaryKey),
                ("b".to_owned(), Nullable::PrimaryKey)
            ]
        );
        // STRICT and WITHOUT ROWID keys come with `notnull` set: nothing to report.
        assert!(nullable_columns(&[info("id", 1, true, "TEXT")], true).is_empty());
    }

    #[test]
    fn upsert_on_a_nullable_key_of_an_existing_table_is_refused_with_the_reason() {
        let existing = |why| ExistingTable {
            columns: vec!["txn_id".into(), "amount".into()],
            unique_keys: vec![vec!["txn_id".into()]],
            nullable: vec![("Txn_Id".into(), why), ("amount".into(), Nullable::Plain)],
        };
        let refuse = |why| {
            invalid_config(plan(
                &config(Mode::Upsert, Some(&["txn_id"])),
                &schema(&[]),
                Some(&existing(why)),
            ))
        };
        assert_eq!(
            refuse(Nullable::Plain),
            "sqlite-load: upsert key column `Txn_Id` of existing table `transactions` is nullable \
             (declared without NOT NULL): SQLite never finds a conflict on a NULL key, so a row \
             whose `Txn_Id` is null would be inserted again on every delivery instead of updated; \
             create the table anew with \"Txn_Id\" NOT NULL and copy the rows over (SQLite cannot \
             alter a column), or load into a new table, whose key sqlite-load makes refuse NULL"
        );
        let m = refuse(Nullable::PrimaryKey);
        assert!(
            m.contains("`Txn_Id` of existing table `transactions` is a PRIMARY KEY that SQLite lets hold NULL (its rule for tables that are neither STRICT nor WITHOUT ROWID): SQLite never finds a conflict"),
            "{m}"
        );
        let m = refuse(Nullable::Rowid);
        assert!(
            m.contains("is the table's INTEGER PRIMARY KEY, i.e. its rowid: SQLite gives a row with a NULL key a new rowid, NOT NULL or not, so")
                && m.contains(r#"create the table anew with "Txn_Id" INT NOT NULL PRIMARY KEY (INT, not INTEGER: not the rowid) and copy"#),
            "{m}"
        );

        // A nullable column that is not in the key, and appending, are fine.
        let mut ok = existing(Nullable::Plain);
        ok.nullable.remove(0);
        let s = schema(&[]);
        assert!(plan(&config(Mode::Upsert, Some(&["txn_id"])), &s, Some(&ok)).is_ok());
        let nullable_key = existing(Nullable::Plain);
        assert!(plan(&config(Mode::Append, None), &s, Some(&nullable_key)).is_ok());
    }

    #[test]
    fn key_mistakes_are_invalid_config() {
        let m = invalid_config(plan(&config(Mode::Upsert, None), &schema(&[]), None));
        assert!(m.contains("needs `key`"), "{m}");
        let m = invalid_config(plan(
            &config(Mode::Upsert, Some(&["id"])),
            &schema(&[]),
            None,
        ));
        assert!(m.starts_with("sqlite-load: key column `id` is not in the stream's schema; available columns: txn_id, amount,"), "{m}");
        let m = invalid_config(plan(
            &config(Mode::Upsert, Some(&["txn_id", "txn_id"])),
            &schema(&[]),
            None,
        ));
        assert!(m.contains("listed twice"), "{m}");
        let m = invalid_config(plan(
            &config(Mode::Append, Some(&["txn_id"])),
            &schema(&[]),
            None,
        ));
        assert!(m.contains("`key` applies only to"), "{m}");
    }

    #[test]
    fn names_are_checked() {
        let mut c = config(Mode::Append, None);
        let s = Schema {
            columns: vec![Column::new("select", Kind::Text, true)],
            primary_key: vec![],
        };
        c.table = r#"my "odd" table"#.into();
        assert_eq!(plan(&c, &s, None).unwrap().table, r#"my "odd" table"#);

        c.table = "sqlite_master".into();
        let m = invalid_config(super::plan(&c, &s, None));
        assert_eq!(
            m,
            r#"sqlite-load: table name "sqlite_master" starts with `sqlite_`, which SQLite reserves"#
        );
        c.table = String::new();
        assert!(invalid_config(super::plan(&c, &s, None)).contains("is empty"));

        let twice = Schema {
            columns: vec![
                Column::new("Amount", Kind::Text, true),
                Column::new("amount", Kind::Text, true),
            ],
            primary_key: vec![],
        };
        let m = invalid_config(super::plan(&config(Mode::Append, None), &twice, None));
        assert!(m.contains("column `amount` appears twice"), "{m}");
    }
}
