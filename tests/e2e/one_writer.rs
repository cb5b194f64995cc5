//! One writer per partition, and no rollback turned into lost rows (issue 11): two runs of one
//! pipeline never both load a row; a row error that ended the transaction fails the batch.

use std::process::{Command, Stdio};

use crate::serve_support::{Server, ends_run};
use crate::support::*;

/// `rows` numbered rows, `id,memo`.
fn numbered_csv(rows: u64) -> String {
    numbered_csv_from(1, rows)
}

/// `rows` rows numbered from `first`.
fn numbered_csv_from(first: u64, rows: u64) -> String {
    let mut csv = String::with_capacity(rows as usize * 20);
    csv.push_str("id,memo\n");
    for i in first..first + rows {
        csv.push_str(&format!("{i},memo {i}\n"));
    }
    csv
}

fn pipeline(extra: &str) -> String {
    csv_pipeline(
        "p",
        r#"path = "inbox/*.csv", types = { id = "integer" }"#,
        r#"table = "t""#,
    )
    .replace("name = \"p\"", &format!("name = \"p\"\n{extra}"))
}

/// Every id exactly once, `rows` of them.
#[track_caller]
fn assert_each_row_once(fx: &Fixture, rows: i64) {
    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(*) FROM t"), rows, "rows in t");
    assert_eq!(
        count(&db, "SELECT count(DISTINCT id) FROM t"),
        rows,
        "distinct ids"
    );
}

fn spawn_run(fx: &Fixture, config: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["-c", fx.path(config).to_str().unwrap(), "run", "p"])
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_runs_of_one_pipeline_started_together_load_each_row_once() {
    let fx = Fixture::new();
    fx.config(&pipeline(""));
    let rows = 1_000_000;
    fx.write("inbox/a.csv", numbered_csv(rows));
    let first = spawn_run(&fx, "weir.toml");
    let second = spawn_run(&fx, "weir.toml");
    let outcomes = [first, second].map(|c| Run(c.wait_with_output().unwrap()));
    let refused: Vec<&Run> = outcomes.iter().filter(|r| !r.0.status.success()).collect();
    assert_eq!(refused.len(), 1, "exactly one run is refused");
    let err = refused[0].stderr();
    assert!(
        err.contains("pipeline \"p\" is already running: run lock held by pid ")
            && err.contains(" on host ")
            && err.contains(" since 20")
            && err.contains("weir run --wait p"),
        "{err}"
    );
    assert_each_row_once(&fx, rows as i64);

    // --wait: a second run queues behind the first instead of refusing.
    fx.write("inbox/b.csv", numbered_csv_from(rows + 1, rows));
    let events = fx.path("first.jsonl");
    let first = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "-c",
            fx.path("weir.toml").to_str().unwrap(),
            "run",
            "p",
            "--events",
        ])
        .arg(&events)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first run holds the lock once it has said it started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&events)
        .unwrap_or_default()
        .contains("\"type\":\"run_started\"")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never started"
        );
        std::thread::yield_now();
    }
    let waiting = fx.weir(&["run", "--wait", "p"]);
    assert!(Run(first.wait_with_output().unwrap()).0.status.success());
    waiting.success();
    assert!(
        waiting
            .stderr()
            .contains("waiting: pipeline \"p\" is already running"),
        "{}",
        waiting.stderr()
    );
    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(*) FROM t"), 2 * rows as i64);
    assert_eq!(
        count(&db, "SELECT count(DISTINCT id) FROM t"),
        2 * rows as i64
    );
}

#[test]
fn runs_that_bypass_the_lock_are_stopped_by_the_checkpoint_compare_and_set() {
    // Two configs on the same files with different lock folders: the run lock cannot see the
    // other run, so only the commit protocol stands between them and loading rows twice.
    let fx = Fixture::new();
    fx.config(&pipeline(""));
    let text = std::fs::read_to_string(fx.path("weir.toml")).unwrap();
    std::fs::write(
        fx.path("other.toml"),
        text.replacen("[engine]\n", "[engine]\nlock_dir = \"other-locks\"\n", 1),
    )
    .unwrap();
    let rows = 400_000;
    fx.write("inbox/a.csv", numbered_csv(rows));
    let a = spawn_run(&fx, "weir.toml");
    let b = spawn_run(&fx, "other.toml");
    let outcomes = [a, b].map(|c| Run(c.wait_with_output().unwrap()));
    let failed: Vec<&Run> = outcomes.iter().filter(|r| !r.0.status.success()).collect();
    for run in &failed {
        assert!(
            run.stderr()
                .contains("another run advanced this partition: its checkpoint is no longer the one this batch started from"),
            "{}",
            run.stderr()
        );
    }
    if failed.is_empty() {
        // Only when one run finished before the other committed anything: then the other
        // resumed after it and loaded nothing.
        assert!(
            outcomes.iter().any(|r| r.totals().1 == 0),
            "both runs completed and both loaded rows"
        );
    }
    assert_each_row_once(&fx, rows as i64);
    // A run after both resumes from the survivor's checkpoint: nothing left to load.
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (0, 0, 0));
}

#[test]
fn a_manual_run_while_serve_runs_the_pipeline_is_refused_naming_the_server() {
    let fx = Fixture::new();
    fx.config(&pipeline("batch_size = 1000"));
    let rows = 1_000_000;
    fx.write("inbox/a.csv", numbered_csv(rows));
    let server = Server::start(&fx);
    let mut stream = server.events("", None);
    let run_id = server.trigger("p");
    // Wait until the served run holds the lock and has committed a batch.
    stream.until(|e| e.kind == "batch_committed");
    let manual = fx.weir(&["run", "p"]);
    manual.failure();
    assert!(
        manual
            .stderr()
            .contains(&format!("run lock held by pid {} on host", server.pid())),
        "{}",
        manual.stderr()
    );
    stream.until(|e| ends_run(e, Some(&run_id)));
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");
    assert_each_row_once(&fx, rows as i64);
}

#[test]
fn a_row_error_that_rolled_the_transaction_back_fails_the_batch_and_loses_nothing() {
    let fx = Fixture::new();
    fx.config(&pipeline(
        "batch_size = 100\nrestart = { max_restarts = 0 }",
    ));
    fx.write("inbox/a.csv", numbered_csv(1000));
    {
        // The target exists with a trigger that rolls back the whole transaction at id 550.
        let db = fx.db("ledger.db");
        db.execute_batch(
            "CREATE TABLE t (id INTEGER, memo TEXT);
             CREATE TRIGGER no_550 BEFORE INSERT ON t WHEN NEW.id = 550
             BEGIN SELECT RAISE(ROLLBACK, 'id 550 is refused'); END;",
        )
        .unwrap();
    }
    let run = fx.weir(&["run", "p"]);
    run.failure();
    assert!(
        run.stderr().contains("ended the transaction")
            && run.stderr().contains("id 550 is refused"),
        "{}",
        run.stderr()
    );
    let db = fx.db("ledger.db");
    // The batches before the failing one are committed whole; nothing after it.
    assert_eq!(count(&db, "SELECT count(*) FROM t"), 500);
    assert_eq!(count(&db, "SELECT max(id) FROM t"), 500);
    assert_eq!(
        count(&db, "SELECT count(*) FROM _weir_rejects"),
        0,
        "the refused row is not a reject: its batch failed"
    );
    db.execute_batch("DROP TRIGGER no_550").unwrap();
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (500, 500, 0));
    assert_each_row_once(&fx, 1000);
}
