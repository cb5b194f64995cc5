use super::*;

fn shared() -> SharedConnection {
    let tmp = tempfile::tempdir().unwrap();
    // The directory may go: SQLite keeps the open file.
    let conn = crate::grants::open_database(&tmp.path().join("t.db")).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE);")
        .unwrap();
    Arc::new(Mutex::new(conn))
}

fn budget(allowed: Duration) -> SqlBudget {
    SqlBudget {
        deadline: Instant::now() + allowed,
        allowed,
        max_rows: 1_000,
        max_bytes: 1 << 20,
    }
}

async fn query(
    conn: &SharedConnection,
    sql: &str,
    budget: SqlBudget,
) -> wasmtime::Result<Result<SqlOutput, Error>> {
    run(
        conn.clone(),
        "ledger".into(),
        SqlWork::Query,
        sql.into(),
        Vec::new(),
        budget,
    )
    .await
}

const RUNAWAY_COUNT: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
const RUNAWAY_ROWS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";

#[tokio::test]
async fn a_runaway_query_is_stopped_at_the_calls_limit() {
    let conn = shared();
    let started = Instant::now();
    let err = query(&conn, RUNAWAY_COUNT, budget(Duration::from_millis(300)))
        .await
        .err()
        .expect("a trap");
    let took = started.elapsed();
    let limit = err.downcast_ref::<HostLimit>().expect("a host limit");
    assert_eq!(limit.kind, FaultKind::CpuLimit);
    assert!(
        limit.message.contains("was stopped after 0.3"),
        "{}",
        limit.message
    );
    assert!(took < Duration::from_millis(600), "stopped after {took:?}");
    // The connection is free again and still works for the host.
    lock(&conn)
        .execute_batch("BEGIN IMMEDIATE; COMMIT;")
        .unwrap();
}

#[tokio::test]
async fn a_result_past_its_caps_is_bad_data_not_collected() {
    let conn = shared();
    let Ok(Err(Error::BadData(m))) =
        query(&conn, RUNAWAY_ROWS, budget(Duration::from_secs(5))).await
    else {
        panic!("expected bad-data")
    };
    assert!(
        m.contains("more than limits.max_query_rows (1000) rows"),
        "{m}"
    );
    let big = "SELECT printf('%.*c', 100000, 'x') FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) SELECT x FROM c)";
    let Ok(Err(Error::BadData(m))) = query(&conn, big, budget(Duration::from_secs(5))).await else {
        panic!("expected bad-data")
    };
    assert!(
        m.contains("larger than limits.max_query_bytes (1048576 bytes)"),
        "{m}"
    );
}

#[tokio::test]
async fn an_abandoned_call_stops_its_statement_and_frees_the_connection() {
    let conn = shared();
    let call = query(&conn, RUNAWAY_COUNT, budget(Duration::from_secs(60)));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err()
    );
    // The guest call's timeout dropped the future: the statement stops within moments and the
    // host gets the connection back (it would wait 60 s otherwise).
    let started = Instant::now();
    let waiter = conn.clone();
    tokio::task::spawn_blocking(move || lock(&waiter).execute_batch("SELECT 1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn ending_the_hosts_transaction_is_a_trap() {
    let conn = shared();
    lock(&conn)
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO t (name) VALUES ('a');")
        .unwrap();
    let err = run(
        conn.clone(),
        "ledger".into(),
        SqlWork::Execute,
        "INSERT OR ROLLBACK INTO t (name) VALUES ('a')".into(),
        Vec::new(),
        budget(Duration::from_secs(5)),
    )
    .await
    .err()
    .expect("a trap");
    assert!(
        err.to_string()
            .contains("ended the worker's open transaction on database \"ledger\""),
        "{err}"
    );
}

#[tokio::test]
async fn refusals_are_access_denied_naming_the_statement() {
    let conn = shared();
    for (sql, expected) in [
        (
            "ATTACH DATABASE '/tmp/x/attached.db' AS x",
            "ATTACH is not allowed",
        ),
        ("VACUUM INTO '/tmp/x/copy.db'", "VACUUM is not allowed"),
        (
            "PRAGMA journal_mode=OFF",
            "PRAGMA journal_mode is not allowed",
        ),
    ] {
        let Ok(Err(Error::AccessDenied(m))) =
            query(&conn, sql, budget(Duration::from_secs(5))).await
        else {
            panic!("`{sql}` was not refused")
        };
        assert!(
            m.contains(expected) && m.contains(&format!("(in `{sql}`)")),
            "{m}"
        );
    }
    let Ok(Err(Error::InvalidConfig(m))) =
        query(&conn, "SELEC 1", budget(Duration::from_secs(5))).await
    else {
        panic!("a syntax error is the plugin's")
    };
    assert!(m.contains("syntax error"), "{m}");
}
