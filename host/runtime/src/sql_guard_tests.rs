use super::*;

fn hardened() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    harden(
        &conn,
        Policy {
            host_tables: HOST_TABLES.iter().map(|t| t.to_string()).collect(),
        },
        MAX_SQL_VALUE_BYTES,
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE _weir_rejects (id INTEGER PRIMARY KEY, reason TEXT);
         CREATE TABLE _weir_fences (pipeline TEXT, partition TEXT, epoch INTEGER);
         CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT) STRICT;
         CREATE UNIQUE INDEX t_name ON t (name);",
    )
    .unwrap();
    conn
}

/// Run `sql` as a plugin would (prepare, then step until done).
fn as_plugin_run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    as_plugin(conn, |db| {
        let mut stmt = db.prepare(sql)?;
        let mut rows = stmt.raw_query();
        while rows.next().map_err(explain)?.is_some() {}
        Ok(())
    })
}

fn refusal(conn: &Connection, sql: &str) -> String {
    match as_plugin_run(conn, sql) {
        Ok(()) => panic!("`{sql}` was allowed"),
        Err(e) => {
            assert!(is_denied(&e), "`{sql}` failed, but not by the rules: {e}");
            e.to_string()
        }
    }
}

#[test]
fn every_escape_is_refused_naming_the_statement() {
    let conn = hardened();
    let cases = [
        (
            "ATTACH DATABASE '/tmp/x/attached.db' AS x",
            "ATTACH is not allowed",
        ),
        ("DETACH x", "DETACH is not allowed"),
        ("VACUUM", "VACUUM is not allowed"),
        (
            "  /* hi */ -- there\n vacuum INTO '/tmp/x/copy.db'",
            "VACUUM is not allowed",
        ),
        ("BEGIN", "BEGIN is not allowed"),
        ("BEGIN IMMEDIATE", "BEGIN is not allowed"),
        ("COMMIT", "COMMIT is not allowed"),
        ("END", "COMMIT is not allowed"),
        ("ROLLBACK", "ROLLBACK is not allowed"),
        ("SAVEPOINT s", "SAVEPOINT is not allowed"),
        ("RELEASE s", "RELEASE is not allowed"),
        (
            "PRAGMA journal_mode=OFF",
            "PRAGMA journal_mode is not allowed",
        ),
        (
            "PRAGMA max_page_count=1000000000",
            "PRAGMA max_page_count is not allowed",
        ),
        (
            "PRAGMA writable_schema=ON",
            "PRAGMA writable_schema is not allowed",
        ),
        ("PRAGMA query_only=OFF", "PRAGMA query_only is not allowed"),
        (
            "SELECT * FROM pragma_database_list",
            "PRAGMA database_list is not allowed",
        ),
        (
            "SELECT load_extension('/tmp/evil.so')",
            "function load_extension() is not allowed",
        ),
        (
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END",
            "CREATE TRIGGER is not allowed",
        ),
        (
            "CREATE TEMP TRIGGER tr AFTER INSERT ON main.t BEGIN SELECT 1; END",
            "CREATE TRIGGER is not allowed",
        ),
        (
            "CREATE TEMP TABLE _weir_rejects (a)",
            "CREATE TEMP is not allowed",
        ),
        (
            "CREATE TEMP VIEW v AS SELECT 1",
            "CREATE TEMP is not allowed",
        ),
        (
            "INSERT INTO _weir_rejects (reason) VALUES ('x')",
            "INSERT on _weir_rejects",
        ),
        ("DELETE FROM _weir_rejects", "DELETE on _weir_rejects"),
        (
            "UPDATE _WEIR_REJECTS SET reason = 'y'",
            "UPDATE on _weir_rejects",
        ),
        (
            "DROP TABLE _weir_rejects",
            "DROP TABLE _weir_rejects is not allowed",
        ),
        (
            "ALTER TABLE _weir_rejects ADD COLUMN z",
            "ALTER TABLE _weir_rejects is not allowed",
        ),
        (
            "CREATE INDEX i ON _weir_rejects (reason)",
            "an index on _weir_rejects",
        ),
        // A clustered run's fencing tokens: a plugin that could lower one would unfence a
        // paused host.
        (
            "UPDATE _weir_fences SET epoch = 0",
            "UPDATE on _weir_fences",
        ),
        ("DELETE FROM _weir_fences", "DELETE on _weir_fences"),
        (
            "INSERT INTO _weir_fences VALUES ('p', 'a.csv', 99)",
            "INSERT on _weir_fences",
        ),
        (
            "DROP TABLE _weir_fences",
            "DROP TABLE _weir_fences is not allowed",
        ),
        (
            "CREATE VIRTUAL TABLE v USING fts5(x)",
            "CREATE VIRTUAL TABLE is not allowed",
        ),
    ];
    for (sql, expected) in cases {
        let message = refusal(&conn, sql);
        assert!(message.contains(expected), "`{sql}`: {message}");
    }
    // Nothing got through.
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 0);
    assert!(conn.is_autocommit());
}

#[test]
fn what_the_bundled_plugins_need_still_works() {
    let conn = hardened();
    for sql in [
        // sqlite-history
        r#"CREATE TABLE IF NOT EXISTS "_weir_checkpoints" ("pipeline" TEXT NOT NULL, "partition" TEXT NOT NULL, "checkpoint" TEXT NOT NULL, "updated_at" TEXT NOT NULL, PRIMARY KEY ("pipeline", "partition")) STRICT"#,
        r#"INSERT INTO "_weir_checkpoints" VALUES ('p', 'a', '1', 'now') ON CONFLICT ("pipeline", "partition") DO UPDATE SET "checkpoint" = excluded."checkpoint""#,
        r#"SELECT "checkpoint" FROM "_weir_checkpoints" WHERE "pipeline" = 'p'"#,
        // sqlite-load
        "SELECT name, pk FROM pragma_table_info('t')",
        "SELECT il.name, ifnull(ii.name, '<expression>') FROM pragma_index_list('t') AS il JOIN pragma_index_info(il.name) AS ii",
        "PRAGMA table_info(t)",
        "PRAGMA main.index_list(t)",
        // On a STRICT table SQLite checks the new column with `pragma_quick_check` itself.
        "ALTER TABLE t ADD COLUMN extra REAL",
        "INSERT INTO t (name) VALUES ('a') ON CONFLICT (name) DO UPDATE SET extra = 1",
        // lookups and reads of host tables
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5) SELECT x FROM c",
        "SELECT count(*) FROM _weir_rejects",
        "CREATE TABLE own (a); CREATE INDEX own_a ON own (a)",
    ] {
        let result = if sql.contains(';') {
            as_plugin(&conn, |db| db.execute_batch(sql))
        } else {
            as_plugin_run(&conn, sql)
        };
        result.unwrap_or_else(|e| panic!("`{sql}` was refused: {e}"));
    }
}

#[test]
fn the_host_keeps_its_own_statements_on_the_same_connection() {
    let conn = hardened();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn.execute("INSERT INTO _weir_rejects (reason) VALUES ('bad row')", [])
        .unwrap();
    // A plugin call in the middle of the host's transaction joins it and cannot end it.
    let message = refusal(&conn, "COMMIT");
    assert!(
        message.contains("the host owns the transactions"),
        "{message}"
    );
    as_plugin_run(&conn, "INSERT INTO t (name) VALUES ('in the batch')").unwrap();
    conn.execute_batch("COMMIT").unwrap();
    conn.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
        .unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM _weir_rejects) + (SELECT count(*) FROM t)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 2);
}

#[test]
fn a_trigger_may_not_write_host_tables_even_in_the_hosts_statements() {
    let conn = hardened();
    // Made by someone else (an operator, an older weir): the host still refuses it.
    conn.execute_batch(
        "CREATE TRIGGER sneaky AFTER INSERT ON t BEGIN DELETE FROM _weir_rejects; END;",
    )
    .unwrap();
    let err = conn
        .execute("INSERT INTO t (name) VALUES ('x')", [])
        .map_err(explain)
        .unwrap_err();
    assert!(is_denied(&err), "{err}");
    assert!(
        err.to_string()
            .contains("trigger sneaky writes to _weir_rejects, which only the host may write"),
        "{err}"
    );
    // The same trigger through a plugin's statement.
    let message = refusal(&conn, "INSERT INTO t (name) VALUES ('y')");
    assert!(
        message.contains("trigger sneaky writes to _weir_rejects"),
        "{message}"
    );
}

#[test]
fn a_statement_prepared_in_plugin_mode_is_authorized_again_after_a_schema_change() {
    let conn = hardened();
    // The host caches a statement; a plugin preparing the same text gets its own, authorized
    // as the plugin's, not the host's cached one.
    let host_sql = "INSERT INTO _weir_rejects (reason) VALUES ('host')";
    conn.prepare_cached(host_sql).unwrap().execute([]).unwrap();
    let message = refusal(&conn, host_sql);
    assert!(message.contains("INSERT on _weir_rejects"), "{message}");
}

#[test]
fn batches_are_checked_statement_by_statement() {
    let conn = hardened();
    let err = as_plugin(&conn, |db| {
        db.execute_batch("CREATE TABLE a (x); VACUUM INTO '/tmp/weir-never.db'")
    })
    .unwrap_err();
    assert!(err.to_string().contains("VACUUM is not allowed"), "{err}");
    assert!(!std::path::Path::new("/tmp/weir-never.db").exists());
}

#[test]
fn connection_limits_hold_for_everyone() {
    let conn = hardened();
    // No database can be attached, even by the host.
    let err = conn.execute_batch("ATTACH ':memory:' AS x").unwrap_err();
    assert!(
        err.to_string().contains("too many attached databases"),
        "{err}"
    );
    // Nor can VACUUM INTO write a copy, even as the host's statement (it attaches its target).
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy.db");
    let err = conn
        .execute_batch(&format!("VACUUM INTO '{}'", copy.display()))
        .unwrap_err();
    assert!(!copy.exists(), "{err}");
    // Values are bounded: SQLite's default would let one query allocate 1 GB.
    let err = as_plugin_run(&conn, "SELECT zeroblob(100000000)").unwrap_err();
    assert!(err.to_string().contains("too big"), "{err}");
    // Defensive mode: no writing the schema directly.
    let err = conn
        .execute_batch("PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'x'")
        .unwrap_err();
    assert!(
        err.to_string().contains("may not be modified") || err.to_string().contains("read"),
        "{err}"
    );
}

#[test]
fn the_first_keyword_skips_comments_and_space() {
    assert_eq!(first_keyword("  vacuum"), "vacuum");
    assert_eq!(first_keyword("-- a\n/* b */ VACUUM INTO 'x'"), "VACUUM");
    assert_eq!(first_keyword("/* unterminated"), "");
    assert_eq!(first_keyword("SELECT 1"), "SELECT");
    assert_eq!(
        first_keyword("WITH x AS (SELECT 1) SELECT * FROM x"),
        "WITH"
    );
}
