//! The loader contract's `sink` case, built with the SDK's `SinkLoader` (the `counting-sink`
//! test plugin): `weir validate` says at-least-once and names the sink; every row goes through
//! `write` and `finish` comes once, at the end; a crash between a sink's `write` and the
//! batch's commit — a panic in the same run, or a SIGKILL of the process — makes the host send
//! that batch again, and only that batch, and every row ends up in the sink once by key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const ROWS: i64 = 50;
const BATCH: i64 = 10;

/// `ROWS` accounts, ids 1..=ROWS, in batches of `BATCH`, loaded into `counting-sink` on
/// `sink.db`; checkpoints in `ledger.db`. `sink_config` goes into the sink's config table,
/// `extra` into the pipeline table.
fn fixture(sink_config: &str, extra: &str) -> Fixture {
    let fx = Fixture::new();
    let mut csv = String::from("id,name\n");
    for id in 1..=ROWS {
        csv += &format!("{id},name {id}\n");
    }
    fx.write("inbox/accounts.csv", csv);
    fx.config_with_test_plugins(
        &["counting-sink"],
        &format!(
            r#"
[[pipeline]]
name = "accounts"
batch_size = {BATCH}
{extra}
grants = {{ read_dirs = ["inbox"], databases = {{ ledger = "ledger.db", sink = "sink.db" }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv", types = {{ id = "integer" }} }} }}
load = [{{ plugin = "counting-sink", config = {{ database = "sink", key = "id"{sink_config} }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#
        ),
    );
    fx
}

/// One row of `sink_calls`: the call, its row count and the batch's first and last key.
#[derive(Debug, PartialEq)]
struct Call(String, i64, Option<i64>, Option<i64>);

fn call(name: &str, rows: i64, keys: Option<(i64, i64)>) -> Call {
    Call(name.into(), rows, keys.map(|k| k.0), keys.map(|k| k.1))
}

/// A `write` of the batch holding ids `first..=first + BATCH - 1`.
fn write(first: i64) -> Call {
    call("write", BATCH, Some((first, first + BATCH - 1)))
}

fn calls(fx: &Fixture) -> Vec<Call> {
    let db = fx.db("sink.db");
    let mut stmt = db
        .prepare("SELECT call, rows, first_key, last_key FROM sink_calls ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok(Call(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The keys written more than once, with how often.
fn resent(fx: &Fixture) -> Vec<(i64, i64)> {
    let db = fx.db("sink.db");
    let mut stmt = db
        .prepare("SELECT key, writes FROM sink_rows WHERE writes > 1 ORDER BY key")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every id of the source is in the sink exactly once (the key is the table's primary key,
/// so "once" is about the set of keys: none missing, none extra).
#[track_caller]
fn assert_every_row_once(fx: &Fixture) {
    let db = fx.db("sink.db");
    assert_eq!(count(&db, "SELECT count(*) FROM sink_rows"), ROWS);
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM sink_rows WHERE key BETWEEN 1 AND {ROWS}")
        ),
        ROWS
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sink_rows WHERE row = json_object('id', key, 'name', 'name ' || key)"
        ),
        ROWS,
        "each row's cells reached the sink"
    );
}

fn print_calls(title: &str, fx: &Fixture) {
    println!("{title}: sink_calls (call, rows, first key, last key)");
    for c in calls(fx) {
        println!("  {c:?}");
    }
    println!(
        "  keys written more than once (key, writes): {:?}",
        resent(fx)
    );
}

#[test]
fn validate_says_at_least_once_and_names_the_sink() {
    let fx = fixture("", "");
    let run = fx.weir(&["validate"]);
    run.success();
    assert!(
        run.stdout().contains(
            "pipeline accounts: ok, at-least-once: counting-sink is a sink outside the checkpoint's transaction"
        ),
        "{}",
        run.stdout()
    );
    // `open` writes nothing, and validation calls neither `write` nor `finish`.
    if fx.path("sink.db").exists() {
        assert_eq!(
            count(
                &fx.db("sink.db"),
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('sink_rows', 'sink_calls')"
            ),
            0
        );
    }
}

#[test]
fn every_row_goes_through_write_and_finish_comes_once_at_the_end() {
    let fx = fixture("", "");
    assert_eq!(
        fx.weir(&["run", "accounts"]).success().totals(),
        (50, 50, 0)
    );
    let mut expected: Vec<Call> = (0..ROWS / BATCH).map(|b| write(b * BATCH + 1)).collect();
    expected.push(call("finish", ROWS, None));
    assert_eq!(calls(&fx), expected);
    assert_every_row_once(&fx);
    assert_eq!(resent(&fx), vec![], "nothing was sent twice");

    // Nothing new: nothing is written again.
    fx.weir(&["run", "accounts"]).success();
    assert!(
        calls(&fx)[expected.len()..]
            .iter()
            .all(|c| c.0 == "finish" && c.1 == 0),
        "{:?}",
        calls(&fx)
    );
    assert_eq!(resent(&fx), vec![]);
}

#[test]
fn a_panic_after_the_sinks_write_resends_that_batch_on_the_next_attempt() {
    let fx = fixture(
        ", crash_after_batches = 2",
        "restart = { max_restarts = 3, backoff_min_ms = 50, backoff_max_ms = 200 }",
    );
    let (run, events) = fx.weir_with_events(&["run", "accounts"]);
    run.success();
    print_calls("panic after the third write", &fx);
    assert_eq!(events_of(&events, "worker_retrying").len(), 1);
    assert!(
        events_of(&events, "plugin_log")
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m
                .contains("counting-sink: crash after writing batch 3 (keys 21..30) on purpose"))),
        "{events:#?}"
    );
    // Batches 1 and 2 committed; batch 3 was written, then the instance trapped before its
    // commit: the retry resumes from batch 2's checkpoint and sends batch 3 again.
    assert_eq!(
        calls(&fx),
        vec![
            write(1),
            write(11),
            write(21),
            call("crash", BATCH, Some((21, 30))),
            write(21),
            write(31),
            write(41),
            // The second instance's stream: 30 rows, one finish.
            call("finish", 30, None),
        ]
    );
    assert_eq!(resent(&fx), (21..=30).map(|k| (k, 2)).collect::<Vec<_>>());
    assert_every_row_once(&fx);
}

#[test]
fn a_sigkill_between_the_sinks_write_and_the_commit_resends_that_batch_on_the_next_run() {
    let fx = fixture(", stall_after_batches = 2, stall_ms = 20000", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "-c",
            fx.path("weir.toml").to_str().unwrap(),
            "run",
            "accounts",
        ])
        .current_dir(fx.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The sink records `stall` after writing batch 3 and then sleeps inside `write`: the
    // batch's checkpoint cannot be committed before the kill.
    let started = Instant::now();
    let stalled = || {
        let db = rusqlite::Connection::open(fx.path("sink.db")).ok()?;
        db.query_row(
            "SELECT count(*) FROM sink_calls WHERE call = 'stall'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .ok()
    };
    while stalled() != Some(1) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "weir exited before the sink stalled"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the sink never stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    print_calls("killed after the third write", &fx);
    assert_eq!(
        calls(&fx),
        vec![
            write(1),
            write(11),
            write(21),
            call("stall", BATCH, Some((21, 30)))
        ]
    );

    // The next run resumes after batch 2, the last committed: 30 rows read again.
    assert_eq!(
        fx.weir(&["run", "accounts"]).success().totals(),
        (30, 30, 0)
    );
    print_calls("after the next run", &fx);
    let calls = calls(&fx);
    assert_eq!(
        calls[4..],
        [write(21), write(31), write(41), call("finish", 30, None)]
    );
    assert_eq!(
        calls.iter().filter(|c| c.0 == "finish").count(),
        1,
        "the killed run never finished its stream"
    );
    assert_eq!(resent(&fx), (21..=30).map(|k| (k, 2)).collect::<Vec<_>>());
    assert_every_row_once(&fx);
}
