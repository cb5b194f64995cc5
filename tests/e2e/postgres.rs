//! PostgreSQL as a pipeline's target and history store, against a real server (`pg_support`):
//! the same rows and rejects as SQLite, upserts, exactly-once across SIGKILLs, values the
//! table cannot take as rejects, and the password kept out of everything weir prints.

use crate::bank_recon::bank_recon_fixture;
use crate::pg_support::{PgDb, PgServer};
use crate::support::*;

/// examples/bank-recon-postgres as a user runs it (its own weir.toml and inbox), with the
/// environment it reads pointing at `db`.
fn bank_recon_postgres(db: &PgDb) -> (Fixture, Vec<(&'static str, String)>) {
    let fx = Fixture::new();
    let example = repo_root().join("examples/bank-recon-postgres");
    for entry in std::fs::read_dir(example.join("inbox")).unwrap() {
        let entry = entry.unwrap();
        let copy = fx.path("inbox").join(entry.file_name());
        std::fs::copy(entry.path(), &copy).unwrap();
        age(&copy, 3600);
    }
    let config = std::fs::read_to_string(example.join("weir.toml")).unwrap();
    let body = &config[config.find("[[pipeline]]").unwrap()..];
    std::fs::write(
        fx.path("weir.toml"),
        Fixture::engine_section(&plugins_dist()) + body,
    )
    .unwrap();
    let env = vec![
        ("LEDGER_URL", db.url()),
        ("PGPASSWORD", db.password().to_owned()),
    ];
    (fx, env)
}

/// SQLite's rows of a query, each as psql prints them (`|`-separated, NULL empty).
fn sqlite_rows(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = db.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let cells: Vec<String> = (0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => String::new(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Real(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
            })
            .collect();
        Ok(cells.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn bank_recon_postgres_example_equals_the_sqlite_one_value_by_value() {
    let pg = PgServer::start();
    let db = pg.database("bank_recon");

    let sqlite = bank_recon_fixture();
    sqlite.weir(&["run", "bank-recon"]).success();
    let (fx, env) = bank_recon_postgres(&db);
    let validate = fx.weir_env(&["validate"], &env);
    validate.success();
    assert!(
        validate
            .stdout()
            .contains("exactly-once: rows, rejects and checkpoints commit together in database"),
        "{}",
        validate.stdout()
    );
    // Validation opened every step in a transaction it rolled back: nothing was created.
    assert_eq!(
        db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        0
    );
    let run = fx.weir_env(&["run", "bank-recon"], &env);
    run.success();
    assert_eq!(run.totals(), (78, 74, 4), "{}", run.stdout());

    let columns = "txn_id, booking_date, value_date, amount, currency, counterparty, memo, balance";
    let want = sqlite_rows(
        &sqlite.db("ledger.db"),
        &format!("SELECT {columns} FROM transactions ORDER BY txn_id"),
    );
    let got = db.query(&format!(
        "SELECT {columns} FROM transactions ORDER BY txn_id"
    ));
    assert_eq!(got.len(), 74);
    assert_eq!(got, want);
    // The types the plan declared, as PostgreSQL's own.
    assert_eq!(
        db.query(
            "SELECT column_name || ' ' || data_type FROM information_schema.columns \
             WHERE table_name = 'transactions' AND column_name IN ('txn_id', 'booking_date', 'amount', 'memo') ORDER BY column_name"
        ),
        [
            "amount numeric",
            "booking_date date",
            "memo text",
            "txn_id bigint"
        ]
    );
    let rejects = "SELECT file, line, stage, reason FROM _weir_rejects ORDER BY file, line";
    assert_eq!(
        db.query(rejects),
        sqlite_rows(&sqlite.db("ledger.db"), rejects)
    );
    // The checkpoint is in the target, saved with the rows.
    assert_eq!(
        db.count("SELECT count(*) FROM _weir_checkpoints WHERE pipeline = 'bank-recon'"),
        sqlite_rows(
            &sqlite.db("ledger.db"),
            "SELECT count(*) FROM _weir_checkpoints WHERE pipeline = 'bank-recon'"
        )[0]
        .parse::<i64>()
        .unwrap()
    );

    // The checkpoints are listed from the PostgreSQL history (read-only).
    let listed = fx.weir_env(&["checkpoints", "list", "bank-recon"], &env);
    listed.success();
    assert!(
        listed.stdout().contains("inbox/2026-03.csv"),
        "{}",
        listed.stdout()
    );

    // A second run finds nothing new: the checkpoints hold.
    let again = fx.weir_env(&["run", "bank-recon"], &env);
    again.success();
    assert_eq!(again.totals().1, 0, "{}", again.stdout());
    assert_eq!(db.count("SELECT count(*) FROM transactions"), 74);
}

/// A CSV → PostgreSQL pipeline (sqlite-load and sqlite-history speak both dialects).
pub fn pg_csv_pipeline(db: &PgDb, name: &str, extract: &str, load: &str) -> String {
    csv_pipeline(name, extract, load).replace(
        r#"databases = { ledger = "ledger.db" }"#,
        &format!("databases = {{ ledger = {} }}", db.grant_toml()),
    )
}

#[test]
fn upsert_last_row_of_a_key_wins_and_values_the_table_cannot_take_are_rejects() {
    let pg = PgServer::start();
    let db = pg.database("upsert");
    // An existing table, narrower than the plan's types: `amount` is a 32-bit integer with a
    // check, which only the server enforces.
    db.execute(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, name text, amount integer CHECK (amount >= 0))",
    );
    let fx = Fixture::new();
    fx.config(&pg_csv_pipeline(
        &db,
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer", amount = "integer" }"#,
        r#"table = "accounts", mode = "upsert", key = ["id"]"#,
    ));
    fx.write(
        "inbox/a.csv",
        "id,name,amount\n1,first,5\n2,too big,99999999999\n3,negative,-1\n1,first again,7\n4,four,40\n",
    );
    age(&fx.path("inbox/a.csv"), 3600);
    let run = fx.weir_env(&["run", "p"], &[db.password_env()]);
    run.success();
    assert_eq!(run.totals(), (5, 3, 2), "{}", run.stdout());
    assert_eq!(
        db.query("SELECT id, name, amount FROM accounts ORDER BY id"),
        ["1|first again|7", "4|four|40"]
    );
    let rejects = db.query("SELECT line, stage, reason FROM _weir_rejects ORDER BY line");
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    // Found before the COPY: the value does not fit the column's type.
    assert!(
        rejects[0]
            .starts_with("3|sqlite-load|column amount: 99999999999 is out of range for integer"),
        "{rejects:?}"
    );
    // Refused by the server; the rows around it still went in.
    assert!(
        rejects[1].starts_with("4|sqlite-load|") && rejects[1].contains("accounts_amount_check"),
        "{rejects:?}"
    );

    // A later file updates and inserts by key.
    fx.write(
        "inbox/b.csv",
        "id,name,amount\n4,four updated,41\n5,five,50\n",
    );
    age(&fx.path("inbox/b.csv"), 3600);
    let run = fx.weir_env(&["run", "p"], &[db.password_env()]);
    run.success();
    assert_eq!(
        db.query("SELECT id, name, amount FROM accounts ORDER BY id"),
        ["1|first again|7", "4|four updated|41", "5|five|50"]
    );
}

#[test]
fn a_new_column_in_the_source_is_added_to_the_table() {
    let pg = PgServer::start();
    let db = pg.database("migrate");
    let fx = Fixture::new();
    fx.config(&pg_csv_pipeline(
        &db,
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer" }"#,
        r#"table = "t""#,
    ));
    fx.write("inbox/a.csv", "id,name\n1,one\n");
    age(&fx.path("inbox/a.csv"), 3600);
    fx.weir_env(&["run", "p"], &[db.password_env()]).success();
    fx.write("inbox/b.csv", "id,name,city\n2,two,Bern\n");
    age(&fx.path("inbox/b.csv"), 3600);
    fx.weir_env(&["run", "p"], &[db.password_env()]).success();
    assert_eq!(
        db.query("SELECT id, name, city FROM t ORDER BY id"),
        ["1|one|", "2|two|Bern"]
    );
}

/// Every `sql-escape` PostgreSQL attempt and the words its refusal must hold.
const PG_REFUSALS: &[(&str, &str)] = &[
    ("begin", "`BEGIN"),
    ("commit", "`COMMIT"),
    ("end", "`END"),
    ("rollback", "`ROLLBACK"),
    ("savepoint", "`SAVEPOINT"),
    ("release", "`RELEASE"),
    ("prepare-transaction", "not a single statement"),
    ("set-role", "`SET"),
    ("set-session-authorization", "`SET"),
    ("set-search-path", "`SET"),
    ("reset", "`RESET"),
    ("set-config", "set_config"),
    ("copy-to-program", "`COPY"),
    ("copy-from-file", "`COPY"),
    ("read-file", "pg_read_file"),
    ("do", "`DO"),
    ("call", "`CALL"),
    ("listen", "`LISTEN"),
    ("notify", "`NOTIFY"),
    ("grant", "`GRANT"),
    ("create-function", "`CREATE FUNCTION"),
    ("create-extension", "`CREATE EXTENSION"),
    ("create-role", "`CREATE ROLE"),
    ("alter-system", "ALTER SYSTEM"),
    ("vacuum", "`VACUUM"),
    ("advisory-lock", "pg_advisory_lock"),
    ("other-schema", "schema \"pg_temp\""),
    ("other-schema-read", "schema \"elsewhere\""),
    ("two-statements", "one statement per call"),
    ("rejects-delete", "only the host writes"),
    ("rejects-drop", "only the host writes"),
    ("rejects-index-drop", "only the host writes"),
];

#[test]
fn plugin_sql_that_leaves_a_postgresql_grant_or_ends_the_transaction_is_refused() {
    let pg = PgServer::start();
    let db = pg.database("escape");
    let fx = Fixture::new();
    fx.write("inbox/a.csv", "id,name\n1,Ann\n");
    age(&fx.path("inbox/a.csv"), 3600);
    let pipeline = |name: &str, mode: &str, extra: &str| {
        pg_csv_pipeline(&db, name, r#"path = "inbox/*.csv""#, r#"table = "people""#)
            .replace(
                r#"load = [{ plugin = "sqlite-load", config = { database = "ledger", table = "people" } }]"#,
                &format!(
                    r#"load = [{{ plugin = "sql-escape-load", config = {{ database = "ledger", outside = "/nonexistent", mode = "{mode}" }} }}]
restart = {{ max_restarts = 0 }}
{extra}"#
                ),
            )
    };
    let config = pg_csv_pipeline(
        &db,
        "base",
        r#"path = "inbox/*.csv""#,
        r#"table = "people""#,
    ) + &pipeline("escape", "postgres", "")
        + &pipeline(
            "runaway",
            "runaway",
            "limits = { cpu_seconds = 2, timeout_seconds = 30 }",
        );
    fx.config_with_test_plugins(&["sql-escape-load"], &config);
    assert!(config.contains("sql-escape-load"), "{config}");
    // The host tables exist, so refusals are the rules', not "no such table".
    fx.weir_env(&["run", "base"], &[db.password_env()])
        .success();
    let before = db.query("SELECT id, name FROM people ORDER BY id");

    let events = fx.path("events.jsonl");
    let run = fx.weir_env(
        &["run", "escape", "--events", events.to_str().unwrap()],
        &[db.password_env()],
    );
    run.failure();
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logs: Vec<&str> = events_of(&events, "plugin_log")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    // Each kind on its own: every mismatch is listed.
    let mismatches: Vec<String> = PG_REFUSALS
        .iter()
        .filter_map(|(attempt, refusal)| {
            let prefix = format!("sql-escape-load: {attempt}: ");
            let Some(line) = logs.iter().find(|l| l.starts_with(&prefix)) else {
                return Some(format!("{attempt}: not reported"));
            };
            let refused = line.starts_with(&format!(
                "{prefix}refused: database \"ledger\": statement refused: "
            )) && line.contains(refusal);
            (!refused).then(|| format!("{attempt}: expected `{refusal}`: {line}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(!logs.iter().any(|l| l.contains("ESCAPED")), "{logs:#?}");
    let failed = events_of(&events, "worker_failed");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("all {} attempts were refused", PG_REFUSALS.len())),
        "{failed:#?}"
    );
    // Nothing happened on the server.
    assert_eq!(db.query("SELECT id, name FROM people ORDER BY id"), before);
    assert_eq!(
        db.count("SELECT count(*) FROM pg_roles WHERE rolname = 'intruder'"),
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_proc WHERE proname = 'f'"),
        0
    );
    assert!(!std::path::Path::new("/tmp/sql-escape").exists());
    assert_eq!(db.count("SELECT count(*) FROM _weir_rejects"), 0);

    // A query past the call's limit is stopped, and cancelled on the server too.
    let run = fx.weir_env(&["run", "runaway"], &[db.password_env()]);
    run.failure();
    assert!(
        run.stderr().contains("cancelled on the server"),
        "{}",
        run.stderr()
    );
    db.wait_for_count(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'WITH RECURSIVE c(x)%' AND state = 'active'",
        0,
        std::time::Duration::from_secs(10),
    );
}

/// SIGKILL `weir run` at random moments while it loads into PostgreSQL, then finish the job:
/// every good row once, every malformed one rejected once, checkpoints consistent. The same
/// file and kill schedule as the SQLite crash test (`crash.rs`).
fn sigkill_and_resume(mode: &str, rows: usize, kills: usize) {
    use crate::crash::{Lcg, generate};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let pg = PgServer::start();
    let load = if mode == "upsert" {
        r#"table = "t", mode = "upsert", key = ["id"]"#
    } else {
        r#"table = "t""#
    };
    let (csv, rejects) = generate(rows);
    let setup = |db: &PgDb| {
        let fx = Fixture::new();
        let config = pg_csv_pipeline(
            db,
            "p",
            r#"path = "inbox/*.csv", types = { id = "integer" }"#,
            load,
        )
        .replace("name = \"p\"", "name = \"p\"\nbatch_size = 500");
        fx.config(&config);
        fx.write("inbox/big.csv", &csv);
        fx
    };
    // Kill delays are drawn from the time an uninterrupted load takes here.
    let full_load_ms = {
        let db = pg.database(&format!("calibrate_{mode}"));
        let fx = setup(&db);
        let started = Instant::now();
        fx.weir_env(&["run", "p"], &[db.password_env()]).success();
        started.elapsed().as_millis() as u64
    };
    let mut attempt = 0;
    let (db, fx, killed) = loop {
        attempt += 1;
        let db = pg.database(&format!("crash_{mode}_{attempt}"));
        let fx = setup(&db);
        let mut rng = Lcg(0x5eed ^ rows as u64 ^ mode.len() as u64 ^ attempt);
        let spread = (2 * full_load_ms / kills.max(1) as u64 + 30) >> (attempt - 1);
        let mut killed = 0;
        let mut finished = false;
        while killed < kills && !finished {
            let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
                .args(["-c", fx.path("weir.toml").to_str().unwrap(), "run", "p"])
                .current_dir(fx.dir.path())
                .env(db.password_env().0, db.password_env().1)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let started = Instant::now();
            let delay = Duration::from_millis(20 + rng.next_ms(spread.max(1)));
            while child.try_wait().unwrap().is_none() {
                if started.elapsed() >= delay {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    killed += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            finished = child.try_wait().unwrap().is_some_and(|s| s.success());
        }
        // A load that finished before its first kill proves nothing: again, with earlier kills.
        if killed > 0 || attempt == 6 {
            break (db, fx, killed);
        }
    };
    fx.weir_env(&["run", "p"], &[db.password_env()]).success();

    let loaded = db.count("SELECT count(*) FROM t");
    let distinct = db.count("SELECT count(DISTINCT id) FROM t");
    let present_good = db.count("SELECT count(DISTINCT id) FROM t WHERE id % 5000 != 0");
    let rejected = db.count("SELECT count(*) FROM _weir_rejects");
    let expected = rows as i64 - rejects;
    println!(
        "postgres crash test ({mode}): kills={killed} source_rows={rows} rejects={rejected} loaded={loaded} duplicates={} lost={}",
        loaded - distinct,
        expected - present_good
    );
    assert!(killed > 0, "at least one run was killed");
    assert_eq!(
        rejected, rejects,
        "every malformed row rejected exactly once"
    );
    assert_eq!(loaded, expected, "row count == source - rejects");
    assert_eq!(loaded, distinct, "no duplicates");
    assert_eq!(present_good, expected, "nothing lost");
    // The checkpoint says the whole file was read, and a further run loads nothing.
    assert_eq!(db.count("SELECT count(*) FROM _weir_checkpoints"), 1);
    let again = fx.weir_env(&["run", "p"], &[db.password_env()]);
    again.success();
    assert_eq!(again.totals().1, 0, "{}", again.stdout());
}

#[test]
fn sigkill_at_random_moments_postgresql_append_loses_and_duplicates_nothing() {
    let (rows, kills) = crate::crash::settings();
    sigkill_and_resume("append", rows, kills);
}

#[test]
fn sigkill_at_random_moments_postgresql_upsert_loses_and_duplicates_nothing() {
    let (rows, kills) = crate::crash::settings();
    sigkill_and_resume("upsert", rows, kills);
}

#[test]
fn sql_extract_reads_a_postgresql_table_incrementally_on_a_read_only_grant() {
    let pg = PgServer::start();
    let source = pg.database("practice");
    source.execute(
        "CREATE TABLE appointments (
            id bigint PRIMARY KEY,
            patient text NOT NULL,
            clinic integer,
            fee numeric(8,2),
            updated_at timestamptz
        );
        INSERT INTO appointments
        SELECT id, 'patient ' || id, id % 3, 40 + id % 20 + 0.5,
               timestamptz '2026-01-01 08:00:00+00' + (id / 7) * interval '1 second'
        FROM generate_series(1, 2500) AS id;",
    );
    let fx = Fixture::new();
    fx.config(&format!(
        r#"
[[pipeline]]
name = "appointments"
batch_size = 100
grants = {{ databases = {{ practice = {}, ledger = "ledger.db" }} }}
extract = {{ plugin = "sql-extract", config = {{ database = "practice", table = "appointments", watermark = "updated_at", partition_by = "clinic" }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "appointments", mode = "upsert", key = ["id"] }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#,
        source.grant_toml_with("read_only = true")
    ));
    let env = [source.password_env()];
    let run = fx.weir_env(&["run", "appointments"], &env);
    assert_eq!(
        run.success().totals(),
        (2_500, 2_500, 0),
        "{}",
        run.stdout()
    );
    let target = |fx: &Fixture| {
        sqlite_rows(
            &fx.db("ledger.db"),
            "SELECT id, patient, clinic, fee FROM appointments ORDER BY id",
        )
    };
    let source_rows =
        || source.query("SELECT id, patient, clinic, fee FROM appointments ORDER BY id");
    assert_eq!(target(&fx), source_rows());

    source.execute(
        "INSERT INTO appointments VALUES
            (3001, 'new one', 1, 12.00, '2026-01-02 00:00:00+00'),
            (3002, 'new two', 1, 13.00, '2026-01-02 00:00:00+00');
         UPDATE appointments SET patient = 'renamed ' || id, updated_at = '2026-01-02 00:00:00+00'
            WHERE id IN (5, 500, 1000, 1500, 2000);",
    );
    let run = fx.weir_env(&["run", "appointments"], &env);
    assert_eq!(
        run.success().totals(),
        (7, 7, 0),
        "2 new + 5 updated, nothing twice"
    );
    assert_eq!(target(&fx), source_rows());
    // A row written later with the same watermark as the last one read (and a higher key) is
    // still picked up; the rows read before are not read again.
    source.execute(
        "INSERT INTO appointments VALUES (3003, 'late tie', 1, 14.00, '2026-01-02 00:00:00+00')",
    );
    let run = fx.weir_env(&["run", "appointments"], &env);
    assert_eq!(run.success().totals(), (1, 1, 0), "{}", run.stdout());
    assert_eq!(target(&fx), source_rows());
    assert_eq!(
        fx.weir_env(&["run", "appointments"], &env)
            .success()
            .totals(),
        (0, 0, 0)
    );
}

#[test]
fn sql_extract_reads_a_sqlite_table_incrementally_into_postgresql() {
    let pg = PgServer::start();
    let ledger = pg.database("ledger");
    let fx = Fixture::new();
    // Groups of seven rows share an `updated_at`, so pages (of 100) end inside a group.
    crate::sql_extract::practice_db(&fx, 2_500);
    fx.config(&format!(
        r#"
[[pipeline]]
name = "appointments"
batch_size = 100
grants = {{ databases = {{ practice = {{ path = "practice.db", read_only = true }}, ledger = {} }} }}
extract = {{ plugin = "sql-extract", config = {{ database = "practice", table = "appointments", watermark = "updated_at", partition_by = "clinic" }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "appointments", mode = "upsert", key = ["id"] }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#,
        ledger.grant_toml()
    ));
    let env = [ledger.password_env()];
    let source = |fx: &Fixture| {
        sqlite_rows(
            &fx.db("practice.db"),
            "SELECT id, patient, clinic, fee, updated_at FROM appointments ORDER BY id",
        )
    };
    let target = || {
        ledger.query(
            "SELECT id, patient, clinic, fee::float8,
                    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
             FROM appointments ORDER BY id",
        )
    };
    let run = fx.weir_env(&["run", "appointments"], &env);
    assert_eq!(
        run.success().totals(),
        (2_500, 2_500, 0),
        "{}",
        run.stdout()
    );
    assert_eq!(target(), source(&fx));

    // Two new rows with the same, later watermark, and five updated rows.
    fx.db("practice.db")
        .execute_batch(
            "INSERT INTO appointments VALUES
                (3001, 'new one', 1, '2026-03-01 10:00:00', '12.00', '2026-01-02 00:00:00'),
                (3002, 'new two', 1, '2026-03-01 11:00:00', '13.00', '2026-01-02 00:00:00');
             UPDATE appointments SET patient = 'renamed ' || id, updated_at = '2026-01-02 00:00:00'
                WHERE id IN (5, 500, 1000, 1500, 2000);",
        )
        .unwrap();
    let run = fx.weir_env(&["run", "appointments"], &env);
    assert_eq!(
        run.success().totals(),
        (7, 7, 0),
        "2 new + 5 updated, nothing twice: {}",
        run.stdout()
    );
    assert_eq!(target(), source(&fx));

    // Written later with the watermark last read and a higher key: still picked up, once.
    fx.db("practice.db")
        .execute_batch(
            "INSERT INTO appointments VALUES
                (3003, 'late tie', 1, '2026-03-01 12:00:00', '14.00', '2026-01-02 00:00:00');",
        )
        .unwrap();
    let run = fx.weir_env(&["run", "appointments"], &env);
    assert_eq!(run.success().totals(), (1, 1, 0), "{}", run.stdout());
    assert_eq!(target(), source(&fx));
    assert_eq!(
        ledger.count("SELECT count(*) FROM appointments"),
        2_503,
        "no row twice"
    );
    assert_eq!(
        fx.weir_env(&["run", "appointments"], &env)
            .success()
            .totals(),
        (0, 0, 0)
    );
}

/// Everything a run leaves behind that a user or an operator reads.
fn everything_printed(fx: &Fixture, runs: &[&Run]) -> String {
    let mut all = String::new();
    for run in runs {
        all += &run.stdout();
        all += &run.stderr();
    }
    for file in ["events.jsonl", "weir-state.db", "ledger.db"] {
        if let Ok(bytes) = std::fs::read(fx.path(file)) {
            all += &String::from_utf8_lossy(&bytes);
        }
    }
    all
}

#[test]
fn the_password_never_appears_in_output_events_or_errors() {
    let pg = PgServer::start();
    let db = pg.database("secrets");
    let fx = Fixture::new();
    fx.config(
        &pg_csv_pipeline(&db, "p", r#"path = "inbox/*.csv""#, r#"table = "t""#).replace(
            "name = \"p\"",
            "name = \"p\"\nrestart = { max_restarts = 0 }",
        ),
    );
    fx.write("inbox/a.csv", "id,name\n1,Ann\n");
    age(&fx.path("inbox/a.csv"), 3600);
    let events = fx.path("events.jsonl");
    let events_arg = events.to_str().unwrap();

    // A good run, its validation and its checkpoints listing.
    let env = [db.password_env()];
    let run = fx.weir_env(&["run", "p", "--events", events_arg], &env);
    run.success();
    let validate = fx.weir_env(&["validate"], &env);
    validate.success();
    // A short password could turn up in any text by chance: the search would prove nothing.
    assert!(
        db.password().len() >= 8,
        "the test server's password must have 8 characters or more"
    );
    let printed = everything_printed(&fx, &[&run, &validate]);
    assert!(!printed.contains(db.password()));

    // A wrong password: the failure names the grant and the server, never either password.
    let wrong = "wrong-password-4b1d9e";
    let failed = fx.weir_env(
        &["run", "p", "--events", events_arg],
        &[(db.password_env().0, wrong.to_owned())],
    );
    failed.failure();
    let message = failed.stdout() + &failed.stderr();
    assert!(
        message.contains("database \"ledger\"")
            && message.contains("password authentication failed"),
        "{message}"
    );
    let printed = everything_printed(&fx, &[&failed]);
    assert!(!printed.contains(wrong), "{printed}");
    assert!(!printed.contains(db.password()));

    // A password written into the url is refused, and not repeated in the refusal.
    let config = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    std::fs::write(
        fx.path("weir.toml"),
        config.replace(
            &db.url(),
            &db.url().replacen('@', ":inline-secret-93ab@", 1),
        ),
    )
    .unwrap();
    assert!(
        std::fs::read_to_string(fx.path("weir.toml"))
            .unwrap()
            .contains("inline-secret-93ab")
    );
    let refused = fx.weir_env(&["validate"], &env);
    refused.failure();
    let message = refused.stdout() + &refused.stderr();
    assert!(
        message.contains("weir.toml:"),
        "names the file and line: {message}"
    );
    assert!(!message.contains("inline-secret-93ab"), "{message}");
}

#[test]
fn postgresql_restarted_mid_run_the_worker_retries_and_completes_without_loss() {
    let pg = PgServer::start_own();
    let db = pg.database("restart");
    let fx = Fixture::new();
    let (csv, rejects) = crate::crash::generate(60_000);
    fx.config(
        &pg_csv_pipeline(&db, "p", r#"path = "inbox/*.csv", types = { id = "integer" }"#, r#"table = "t""#)
            .replace(
                "name = \"p\"",
                "name = \"p\"\nbatch_size = 500\nrestart = { max_restarts = 20, backoff_min_ms = 100, backoff_max_ms = 500 }",
            ),
    );
    fx.write("inbox/big.csv", &csv);
    let events = fx.path("events.jsonl");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "-c",
            fx.path("weir.toml").to_str().unwrap(),
            "run",
            "p",
            "--events",
        ])
        .arg(&events)
        .current_dir(fx.dir.path())
        .env(db.password_env().0, db.password_env().1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once batches are committing, crash the server and bring it back.
    let minute = std::time::Duration::from_secs(60);
    db.wait_for_count(
        "SELECT count(*) FROM pg_class WHERE relname = 't'",
        1,
        minute,
    );
    db.wait_for_count_at_least("SELECT count(*) FROM t", 1, minute);
    pg.stop();
    pg.restart();
    let output = child.wait_with_output().unwrap();
    let run = Run(output);
    run.success();
    let expected = 60_000 - rejects;
    assert_eq!(
        db.count("SELECT count(*) FROM t"),
        expected,
        "{}",
        run.stdout()
    );
    assert_eq!(db.count("SELECT count(DISTINCT id) FROM t"), expected);
    assert_eq!(db.count("SELECT count(*) FROM _weir_rejects"), rejects);
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"worker_retrying\"") && l.contains("database \\\"ledger\\\"")),
        "the server's crash failed an attempt, which was retried: {}",
        text.lines()
            .filter(|l| !l.contains("batch_committed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn tombstones_delete_by_key_and_the_last_row_of_a_key_decides() {
    let pg = PgServer::start();
    let db = pg.database("tombstones");
    let fx = Fixture::new();
    fx.config(&pg_csv_pipeline(
        &db,
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer", deleted = "integer" }"#,
        r#"table = "people", mode = "upsert", key = ["id"], deleted_by = "deleted""#,
    ));
    fx.write("inbox/a.csv", "id,name,deleted\n1,Ann,0\n2,Bo,0\n3,Cy,0\n");
    age(&fx.path("inbox/a.csv"), 3600);
    fx.weir_env(&["run", "p"], &[db.password_env()]).success();
    // 1 deleted; 2 deleted then written again (the last row wins); 3 written then deleted;
    // 4 never existed and is deleted (nothing to do).
    fx.write(
        "inbox/b.csv",
        "id,name,deleted\n1,,1\n2,,1\n2,Bo again,0\n3,Cy renamed,0\n3,,1\n4,,1\n",
    );
    age(&fx.path("inbox/b.csv"), 3600);
    fx.weir_env(&["run", "p"], &[db.password_env()]).success();
    assert_eq!(
        db.query("SELECT id, name, deleted FROM people ORDER BY id"),
        ["2|Bo again|0"]
    );
}

#[test]
fn tls_as_libpq_users_expect_verify_full_require_and_refusals() {
    let (pg, ca) = PgServer::start_tls();
    let db = pg.database("tls");
    let fx = Fixture::new();
    fx.write("inbox/a.csv", "id,name\n1,Ann\n");
    age(&fx.path("inbox/a.csv"), 3600);
    let run_with = |name: &str, grant: String| {
        let config = csv_pipeline(
            name,
            r#"path = "inbox/*.csv""#,
            &format!(r#"table = "{name}""#),
        )
        .replace(
            r#"databases = { ledger = "ledger.db" }"#,
            &format!("databases = {{ ledger = {grant} }}"),
        )
        .replace(
            &format!("name = \"{name}\""),
            &format!("name = \"{name}\"\nrestart = {{ max_restarts = 0 }}"),
        );
        fx.config(&config);
        fx.weir_env(&["run", name], &[db.password_env()])
    };
    // The server takes TLS only, so a run that loads went over TLS.
    run_with("verified", db.grant_toml_tls("verify-full", Some(&ca))).success();
    assert_eq!(db.count("SELECT count(*) FROM verified"), 1);
    // `require` encrypts without checking the certificate, as libpq does without a root.
    run_with("required", db.grant_toml_tls("require", None)).success();
    assert_eq!(db.count("SELECT count(*) FROM required"), 1);
    // `prefer` takes TLS when offered.
    run_with("preferred", db.grant_toml_tls("prefer", None)).success();

    // Plain TCP is what this server refuses.
    let plain = run_with("plain", db.grant_toml());
    plain.failure();
    assert!(
        plain.stderr().contains("database \"ledger\"") && plain.stderr().contains("no encryption"),
        "{}",
        plain.stderr()
    );
    // verify-full against the public roots: this CA is not one of them.
    let untrusted = run_with("untrusted", db.grant_toml_tls("verify-full", None));
    untrusted.failure();
    assert!(
        untrusted.stderr().contains("database \"ledger\"")
            && untrusted.stderr().to_lowercase().contains("certificate"),
        "{}",
        untrusted.stderr()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_class WHERE relname IN ('plain', 'untrusted')"),
        0
    );
}

#[test]
fn full_text_columns_get_a_generated_tsvector_with_a_gin_index() {
    let pg = PgServer::start();
    let db = pg.database("fts");
    let fx = Fixture::new();
    fx.config(&pg_csv_pipeline(
        &db,
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer" }"#,
        r#"table = "notes", mode = "upsert", key = ["id"], fts = ["body"]"#,
    ));
    fx.write(
        "inbox/a.csv",
        "id,body\n1,red apples and pears\n2,green apples\n3,blue sky\n",
    );
    age(&fx.path("inbox/a.csv"), 3600);
    fx.weir_env(&["run", "p"], &[db.password_env()]).success();
    let search = |words: &str| {
        db.query(&format!(
            "SELECT id FROM notes WHERE notes_fts @@ plainto_tsquery('simple', '{words}') ORDER BY id"
        ))
    };
    assert_eq!(search("apples"), ["1", "2"]);
    assert_eq!(search("red apples"), ["1"]);
    // The index follows updates, in the rows' own statements.
    fx.write("inbox/b.csv", "id,body\n2,ripe plums\n");
    age(&fx.path("inbox/b.csv"), 3600);
    fx.weir_env(&["run", "p"], &[db.password_env()]).success();
    assert_eq!(search("apples"), ["1"]);
    assert_eq!(search("plums"), ["2"]);
    assert_eq!(
        db.count("SELECT count(*) FROM pg_indexes WHERE tablename = 'notes' AND indexdef LIKE '%USING gin%'"),
        1
    );
}

#[test]
fn the_api_pages_rejects_kept_in_postgresql() {
    use crate::serve_support::{Server, ends_run};
    let pg = PgServer::start();
    let db = pg.database("api_rejects");
    let (fx, env) = bank_recon_postgres(&db);
    let server = Server::start_with_env(&fx, &env);
    let mut sse = server.events("pipeline=bank-recon", None);
    let run_id = server.trigger("bank-recon");
    let events = sse.until(|e| ends_run(e, Some(&run_id)));
    assert_eq!(
        events.last().unwrap().kind,
        "run_completed",
        "{}",
        server.output()
    );

    let first = server.get_json(&format!("/api/runs/{run_id}/rejects?limit=3"));
    assert_eq!(first["total"], 4, "{first}");
    let rows = first["rejects"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["database"], "ledger");
    assert_eq!(rows[0]["line"], 9);
    assert!(
        rows[0]["created_at"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    let rest = server.get_json(&format!("/api/runs/{run_id}/rejects?limit=3&offset=3"));
    assert_eq!(rest["total"], 4);
    assert_eq!(rest["rejects"].as_array().unwrap().len(), 1);
    // The same rows as in the table, in the same order.
    let mut lines: Vec<String> = rows
        .iter()
        .chain(rest["rejects"].as_array().unwrap())
        .map(|r| format!("{}|{}", r["file"].as_str().unwrap(), r["line"]))
        .collect();
    let want = db.query("SELECT file, line FROM _weir_rejects ORDER BY file, line, id");
    assert_eq!(lines, want);
    lines.dedup();
    assert_eq!(lines.len(), 4);
    server.stop();
}

#[test]
fn a_contract_0_1_0_loader_on_a_postgresql_grant_is_refused_with_what_to_use() {
    let pg = PgServer::start();
    let db = pg.database("old_loader");
    let fx = Fixture::new();
    let plugins = fx.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in ["csv-extract", "sqlite-history"] {
        std::fs::copy(
            plugins_dist().join(format!("{name}.wasm")),
            plugins.join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    std::fs::copy(
        repo_root().join("tests/fixtures/contract-0.1.0/sqlite-load.wasm"),
        plugins.join("sqlite-load.wasm"),
    )
    .unwrap();
    let config = pg_csv_pipeline(&db, "p", r#"path = "inbox/*.csv""#, r#"table = "t""#).replace(
        "name = \"p\"",
        "name = \"p\"\nrestart = { max_restarts = 0 }",
    );
    std::fs::write(
        fx.path("weir.toml"),
        Fixture::engine_section(&plugins) + &config,
    )
    .unwrap();
    fx.write("inbox/a.csv", "id,name\n1,Ann\n");
    age(&fx.path("inbox/a.csv"), 3600);
    let run = fx.weir_env(&["run", "p"], &[db.password_env()]);
    run.failure();
    let message = run.stdout() + &run.stderr();
    assert!(
        message.contains(r#"plugin "sqlite-load" 0.1.0: open: "#)
            && message.contains(
                r#"database "ledger" is PostgreSQL, and this plugin was built against contract 0.1.0"#
            )
            && message.contains("use a build against contract 0.2.0"),
        "{message}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
        0
    );
}
