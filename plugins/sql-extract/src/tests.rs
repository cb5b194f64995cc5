//! The reader against a scripted database: each query gets the next canned answer, and the
//! statements it ran are kept for the assertions. (What the SQL does is tested end to end on
//! real SQLite and PostgreSQL databases, in the host's e2e tests.)

use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;

struct Scripted {
    dialect: Dialect,
    answers: RefCell<VecDeque<QueryResult>>,
    ran: RefCell<Vec<(String, Vec<Value>)>>,
}

impl Scripted {
    fn new(dialect: Dialect, answers: Vec<QueryResult>) -> Self {
        Self {
            dialect,
            answers: RefCell::new(answers.into()),
            ran: RefCell::default(),
        }
    }
}

impl Db for &Scripted {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
        self.ran
            .borrow_mut()
            .push((sql.to_owned(), params.to_vec()));
        Ok(self
            .answers
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| panic!("no answer scripted for {sql}")))
    }
}

fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> QueryResult {
    QueryResult {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}

fn t(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// `pragma_table_info` of `appointments (id INTEGER PRIMARY KEY, patient TEXT NOT NULL,
/// starts_at DATETIME, updated_at TIMESTAMP)`.
fn sqlite_description() -> QueryResult {
    result(
        &["name", "type", "notnull", "pk"],
        vec![
            vec![t("id"), t("INTEGER"), Value::Integer(0), Value::Integer(1)],
            vec![
                t("patient"),
                t("TEXT"),
                Value::Integer(1),
                Value::Integer(0),
            ],
            vec![
                t("starts_at"),
                t("DATETIME"),
                Value::Integer(0),
                Value::Integer(0),
            ],
            vec![
                t("updated_at"),
                t("TIMESTAMP"),
                Value::Integer(0),
                Value::Integer(0),
            ],
        ],
    )
}

fn count(n: i64) -> QueryResult {
    result(&["count(*)"], vec![vec![Value::Integer(n)]])
}

fn config(extra: &str) -> Config {
    Config::parse(&format!(
        r#"{{"database":"practice","table":"appointments","watermark":"updated_at"{extra}}}"#
    ))
    .unwrap()
}

#[test]
fn discovers_kinds_the_primary_key_and_the_order() {
    let db = Scripted::new(Dialect::Sqlite, vec![sqlite_description()]);
    let d = discover(&&db, &config("")).unwrap();
    let schema: Vec<(&str, Kind, bool)> = d
        .schema
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kind, c.nullable))
        .collect();
    assert_eq!(
        schema,
        vec![
            ("id", Kind::Integer, false),
            ("patient", Kind::Text, false),
            ("starts_at", Kind::Timestamp, true),
            // Rows with a NULL watermark are not read: never null in the stream.
            ("updated_at", Kind::Timestamp, false),
        ]
    );
    assert_eq!(d.schema.primary_key, vec!["id"]);
    let order: Vec<&str> = d.order.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, vec!["updated_at", "id"]);
    assert_eq!(db.ran.borrow()[0].1, vec![t("appointments")]);
}

#[test]
fn config_mistakes_name_the_columns_there_are() {
    let err = |extra: &str, description: QueryResult| {
        let db = Scripted::new(Dialect::Sqlite, vec![description]);
        discover(&&db, &config(extra))
            .unwrap_err()
            .message()
            .to_owned()
    };
    assert_eq!(
        err(r#","columns":["id","nope"]"#, sqlite_description()),
        "sql-extract: column `nope` is not a column of the source; its columns: id, patient, starts_at, updated_at"
    );
    assert!(err(r#","types":{"ghost":"text"}"#, sqlite_description()).contains("`ghost`"));
    assert_eq!(
        err("", result(&[], vec![])),
        "sql-extract: table `appointments` does not exist in database `practice` (SQLite)"
    );
    let no_pk = result(
        &["name", "type", "notnull", "pk"],
        vec![vec![
            t("a"),
            t("TEXT"),
            Value::Integer(0),
            Value::Integer(0),
        ]],
    );
    let db = Scripted::new(Dialect::Sqlite, vec![no_pk]);
    let message = discover(
        &&db,
        &Config::parse(r#"{"database":"practice","table":"appointments"}"#).unwrap(),
    )
    .unwrap_err()
    .message()
    .to_owned();
    assert!(
        message.contains("no primary key") && message.contains("set `key`"),
        "{message}"
    );
}

#[test]
fn reads_pages_resumes_after_the_last_key_and_rejects_values_that_do_not_fit() {
    let page = result(
        &[
            "id",
            "patient",
            "starts_at",
            "updated_at",
            "updated_at",
            "id",
        ],
        vec![
            vec![
                Value::Integer(1),
                t("ada"),
                t("2026-01-05 10:00:00"),
                t("2026-01-01 08:00:00"),
                t("2026-01-01 08:00:00"),
                Value::Integer(1),
            ],
            vec![
                Value::Integer(2),
                t("bob"),
                t("next tuesday"),
                t("2026-01-01 08:00:00"),
                t("2026-01-01 08:00:00"),
                Value::Integer(2),
            ],
        ],
    );
    let db = Scripted::new(
        Dialect::Sqlite,
        vec![sqlite_description(), count(3), count(2), page],
    );
    let (mut reader, notices) = SqlReader::open(&db, &config(""), "appointments", None).unwrap();
    assert_eq!(
        notices,
        vec![Notice(
            "sql-extract: partition `appointments`: 3 rows have a NULL in updated_at or id and are not read"
                .into()
        )]
    );
    let batch = reader.next_batch(2).unwrap().unwrap();
    assert_eq!(batch.rows.row_count, 1);
    assert_eq!(batch.positions, vec![1]);
    assert_eq!(batch.rejects.len(), 1);
    assert_eq!(batch.rejects[0].position, 2);
    assert!(
        batch.rejects[0]
            .reason
            .starts_with(r#"column "starts_at": "next tuesday" is not a timestamp"#),
        "{}",
        batch.rejects[0].reason
    );
    assert!(batch.rejects[0].raw.contains(r#""patient":"bob""#));
    let checkpoint: Checkpoint = serde_json::from_str(&batch.checkpoint).unwrap();
    assert_eq!(
        checkpoint,
        Checkpoint {
            after: vec![
                KeyValue::Text("2026-01-01 08:00:00".into()),
                KeyValue::Integer(2)
            ],
            read: 2
        }
    );
    assert_eq!((batch.progress.done, batch.progress.total), (2, Some(2)));

    // Resuming binds the checkpoint's values after the partition's.
    let db = Scripted::new(
        Dialect::Sqlite,
        vec![
            sqlite_description(),
            count(0),
            count(0),
            result(&["id"], vec![]),
        ],
    );
    let (mut reader, notices) =
        SqlReader::open(&db, &config(""), "appointments", Some(&batch.checkpoint)).unwrap();
    assert!(notices.is_empty());
    assert!(reader.next_batch(100).unwrap().is_none());
    let ran = db.ran.borrow();
    let (sql, params) = ran.last().unwrap();
    assert!(sql.contains(r#"("updated_at", "id") > (?1, ?2)"#), "{sql}");
    assert_eq!(params, &vec![t("2026-01-01 08:00:00"), Value::Integer(2)]);
}

#[test]
fn a_checkpoint_of_another_shape_is_refused_with_what_to_do() {
    let db = Scripted::new(Dialect::Sqlite, vec![sqlite_description()]);
    let err = SqlReader::open(
        &db,
        &config(""),
        "appointments",
        Some(r#"{"after":[1],"read":1}"#),
    )
    .err()
    .unwrap();
    assert!(
        matches!(&err, Error::BadData(m) if m.contains("weir reset")),
        "{err:?}"
    );
}

#[test]
fn partitions_per_value_round_trip_through_their_ids() {
    let values = result(&["v"], vec![vec![t("7")], vec![Value::Null], vec![t("12")]]);
    let db = Scripted::new(Dialect::Postgresql, vec![values]);
    let c = config(r#","partition_by":"clinic""#);
    let ids = partition_ids(&&db, &c).unwrap();
    assert_eq!(
        ids,
        vec![
            "appointments[clinic is null]",
            "appointments[clinic=12]",
            "appointments[clinic=7]"
        ]
    );
    assert_eq!(
        partition_filter(&c, &ids[2]).unwrap(),
        PartitionFilter::Value {
            column: "clinic".into(),
            value: Some("7".into())
        }
    );
    assert_eq!(
        partition_filter(&c, &ids[0]).unwrap(),
        PartitionFilter::Value {
            column: "clinic".into(),
            value: None
        }
    );
    assert!(partition_filter(&c, "appointments").is_err());
    assert!(partition_filter(&config(""), "appointments").is_ok());
}
