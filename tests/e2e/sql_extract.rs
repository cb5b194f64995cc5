//! sql-extract: a table or query of a granted database, read incrementally by watermark and
//! key.

use crate::support::*;

/// A practice-management table: groups of seven appointments share an `updated_at`, so the
/// pages (of 100 rows) end in the middle of a group and only the key tells the rows apart.
pub fn practice_db(fx: &Fixture, rows: i64) {
    let db = fx.db("practice.db");
    db.execute_batch(
        "CREATE TABLE appointments (
            id INTEGER PRIMARY KEY,
            patient TEXT NOT NULL,
            clinic INTEGER,
            starts_at DATETIME,
            fee DECIMAL(8,2),
            updated_at TIMESTAMP
        );",
    )
    .unwrap();
    let tx = db.unchecked_transaction().unwrap();
    for id in 1..=rows {
        tx.execute(
            "INSERT INTO appointments VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                id,
                format!("patient {id}"),
                id % 3,
                format!("2026-02-{:02} 09:{:02}:00", 1 + id % 28, id % 60),
                format!("{}.50", 40 + id % 20),
                format!(
                    "2026-01-01 08:{:02}:{:02}",
                    (id / 7) / 60 % 60,
                    (id / 7) % 60
                ),
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn sql_pipeline(extract: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "appointments"
batch_size = 100
grants = {{ databases = {{ practice = {{ path = "practice.db", read_only = true }}, ledger = "ledger.db" }} }}
extract = {{ plugin = "sql-extract", config = {{ database = "practice", {extract} }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "appointments", mode = "upsert", key = ["id"] }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#
    )
}

type Row = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
);

fn rows(db: &rusqlite::Connection, sql: &str) -> Vec<Row> {
    db.prepare(sql)
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The source as the target should hold it: timestamps in canonical form, rows with a NULL
/// watermark left out.
fn expected(fx: &Fixture) -> Vec<Row> {
    rows(
        &fx.db("practice.db"),
        "SELECT id, patient, clinic, replace(starts_at, ' ', 'T'), CAST(fee AS TEXT), replace(updated_at, ' ', 'T')
         FROM appointments WHERE updated_at IS NOT NULL ORDER BY id",
    )
}

fn loaded(fx: &Fixture) -> Vec<Row> {
    rows(
        &fx.db("ledger.db"),
        "SELECT id, patient, clinic, starts_at, fee, updated_at FROM appointments ORDER BY id",
    )
}

#[test]
fn reads_new_and_updated_rows_once_each_per_partition_including_equal_watermarks() {
    let fx = Fixture::new();
    practice_db(&fx, 2_500);
    fx.config(&sql_pipeline(
        r#"table = "appointments", watermark = "updated_at", partition_by = "clinic""#,
    ));
    let (run, events) = fx.weir_with_events(&["run", "appointments"]);
    assert_eq!(run.success().totals(), (2_500, 2_500, 0));
    for clinic in 0..3 {
        assert!(
            run.stdout()
                .contains(&format!("appointments[clinic={clinic}]")),
            "{}",
            run.stdout()
        );
    }
    // Several pages per partition, each its own batch.
    assert!(events_of(&events, "batch_committed").len() >= 24);
    assert_eq!(loaded(&fx), expected(&fx));

    // New rows (two with the same, later watermark), updates (their watermark grows), a row
    // whose watermark is NULL (never read, and said so), and rows untouched.
    fx.db("practice.db")
        .execute_batch(
            "INSERT INTO appointments VALUES
                (3001, 'new one', 1, '2026-03-01 10:00:00', '12.00', '2026-01-02 00:00:00'),
                (3002, 'new two', 1, '2026-03-01 11:00:00', '13.00', '2026-01-02 00:00:00'),
                (3003, 'no watermark', 2, NULL, NULL, NULL);
             UPDATE appointments SET patient = 'renamed ' || id, updated_at = '2026-01-02 00:00:00'
                WHERE id IN (5, 500, 1000, 1500, 2000);",
        )
        .unwrap();
    let (run, events) = fx.weir_with_events(&["run", "appointments"]);
    assert_eq!(
        run.success().totals(),
        (7, 7, 0),
        "2 new + 5 updated, nothing twice"
    );
    assert_eq!(loaded(&fx), expected(&fx));
    let warnings: Vec<&str> = events_of(&events, "plugin_log")
        .into_iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains(
            "partition `appointments[clinic=2]`: 1 rows have a NULL in updated_at or id and are not read"
        )),
        "{warnings:#?}"
    );

    // Nothing changed: nothing read.
    assert_eq!(
        fx.weir(&["run", "appointments"]).success().totals(),
        (0, 0, 0)
    );
}

#[test]
fn a_query_without_watermark_picks_up_higher_keys_and_bad_values_are_rejects() {
    let fx = Fixture::new();
    practice_db(&fx, 300);
    fx.db("practice.db")
        .execute(
            "UPDATE appointments SET starts_at = 'soon' WHERE id = 7",
            [],
        )
        .unwrap();
    fx.config(&sql_pipeline(
        r#"query = "SELECT id, patient, starts_at FROM appointments WHERE clinic <> 0", name = "booked", key = ["id"], types = { id = "integer", patient = "text", starts_at = "timestamp" }"#,
    )
    .replace(
        r#"table = "appointments", mode = "upsert""#,
        r#"table = "booked", mode = "upsert""#,
    ));
    let run = fx.weir(&["run", "appointments"]);
    let expected_read = (1..=300).filter(|id| id % 3 != 0).count() as u64;
    assert_eq!(
        run.success().totals(),
        (expected_read, expected_read - 1, 1)
    );
    let ledger = fx.db("ledger.db");
    let (position, reason): (i64, String) = ledger
        .query_row("SELECT line, reason FROM _weir_rejects", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        position, 5,
        "the 5th row the query returned (ids 1, 2, 4, 5, 7)"
    );
    assert!(
        reason.starts_with(r#"column "starts_at": "soon" is not a timestamp"#),
        "{reason}"
    );

    fx.db("practice.db")
        .execute_batch(
            "INSERT INTO appointments (id, patient, clinic, updated_at) VALUES (301, 'late', 1, NULL), (302, 'skipped', 0, NULL);
             UPDATE appointments SET patient = 'changed' WHERE id = 1;",
        )
        .unwrap();
    // Without a watermark, only keys above the last one read are picked up (an update of an
    // old row is not: that is what a watermark is for).
    assert_eq!(
        fx.weir(&["run", "appointments"]).success().totals(),
        (1, 1, 0)
    );
    assert_eq!(
        count(
            &ledger,
            "SELECT count(*) FROM booked WHERE patient = 'late'"
        ),
        1
    );
    assert_eq!(
        count(
            &ledger,
            "SELECT count(*) FROM booked WHERE patient = 'changed'"
        ),
        0
    );
}

#[test]
fn a_misnamed_column_fails_the_run_before_any_worker_and_names_the_columns() {
    let fx = Fixture::new();
    practice_db(&fx, 10);
    fx.config(&sql_pipeline(
        r#"table = "appointments", watermark = "modified_at""#,
    ));
    let message = r#"plugin "sql-extract" 0.1.0: partitions: invalid config: watermark `modified_at` is not a column of the source; its columns: id, patient, clinic, starts_at, fee, updated_at"#;
    for command in [&["validate"][..], &["run", "appointments"]] {
        let run = fx.weir(command);
        run.failure();
        assert!(
            run.stderr().contains(message) || run.stdout().contains(message),
            "weir {command:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout(),
            run.stderr()
        );
    }
    assert!(
        !fx.path("ledger.db").exists()
            || count(
                &fx.db("ledger.db"),
                "SELECT count(*) FROM sqlite_schema WHERE name = 'appointments'"
            ) == 0
    );
}
