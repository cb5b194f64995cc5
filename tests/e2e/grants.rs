//! Grants that hold (issue 11): a plugin's `sql` cannot leave its database grant, break the
//! host's transaction or hold the host hostage, and what a plugin returns cannot blow up host
//! memory. Real binary, real plugins (`sql-escape-*`, `lift-bomb`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::serve_support::Server;
use crate::support::*;

const NO_RESTART: &str = "restart = { max_restarts = 0 }";

/// Every attempt of `sql-escape` and what the refusal must say.
const REFUSALS: &[(&str, &str)] = &[
    ("attach", "ATTACH is not allowed"),
    ("vacuum", "VACUUM is not allowed"),
    ("vacuum-into", "VACUUM is not allowed"),
    ("detach", "DETACH is not allowed"),
    ("begin", "BEGIN is not allowed"),
    ("commit", "COMMIT is not allowed"),
    ("end", "COMMIT is not allowed"),
    ("rollback", "ROLLBACK is not allowed"),
    ("savepoint", "SAVEPOINT is not allowed"),
    ("release", "RELEASE is not allowed"),
    ("rollback-to", "ROLLBACK TO is not allowed"),
    ("journal-off", "PRAGMA journal_mode is not allowed"),
    ("max-page-count", "PRAGMA max_page_count is not allowed"),
    ("writable-schema", "PRAGMA writable_schema is not allowed"),
    ("synchronous-off", "PRAGMA synchronous is not allowed"),
    ("database-list", "PRAGMA database_list is not allowed"),
    ("load-extension", "function load_extension() is not allowed"),
    ("trigger", "CREATE TRIGGER is not allowed"),
    ("temp-trigger", "CREATE TRIGGER is not allowed"),
    ("temp-shadow", "CREATE TEMP is not allowed"),
    ("rejects-insert", "INSERT on _weir_rejects is not allowed"),
    ("rejects-delete", "DELETE on _weir_rejects is not allowed"),
    ("rejects-update", "UPDATE on _weir_rejects is not allowed"),
    ("rejects-drop", "DROP TABLE _weir_rejects is not allowed"),
    ("rejects-alter", "ALTER TABLE _weir_rejects is not allowed"),
    ("rejects-index", "an index on _weir_rejects is not allowed"),
    ("virtual-table", "CREATE VIRTUAL TABLE is not allowed"),
];

const SQL_ESCAPE: [&str; 3] = [
    "sql-escape-transform",
    "sql-escape-load",
    "sql-escape-history",
];

/// Every file under `dir` (relative paths), except the events file the tests write.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    // The events file and the run locks are weir's own, outside every grant by design.
    out.retain(|p| p != "events.jsonl" && !p.starts_with(".weir-locks/"));
    out.sort();
    out
}

/// The schema and every row of every table, as text.
fn dump(db: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut out = BTreeMap::new();
    let schema: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out.insert(
        "(schema)".to_owned(),
        schema.iter().map(|s| format!("{s:?}")).collect(),
    );
    for (kind, name, _) in &schema {
        if kind != "table" {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"))
            .unwrap();
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..width)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.insert(name.clone(), rows);
    }
    out
}

fn file_hash(path: &Path) -> Vec<u8> {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    h.write(&std::fs::read(path).unwrap());
    h.finish().to_le_bytes().to_vec()
}

/// The `peak memory: N MiB` line of a `weir run` summary.
#[track_caller]
fn peak_mib(run: &Run) -> u64 {
    run.stdout()
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|l| l.trim_end_matches(" MiB").parse().ok())
        .unwrap_or_else(|| panic!("no peak memory line:\n{}", run.stdout()))
}

/// A pipeline on `ledger.db` from the inbox; `steps` are its transform/load/history lines.
fn pipeline(name: &str, extra: &str, steps: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
{extra}
grants = {{ read_dirs = ["inbox"], databases = {{ ledger = "ledger.db" }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv" }} }}
{steps}
"#
    )
}

const LOAD: &str = r#"load = [{ plugin = "sqlite-load", config = { database = "ledger", table = "people", mode = "append" } }]"#;
const HISTORY: &str =
    r#"history = { plugin = "sqlite-history", config = { database = "ledger" } }"#;

/// A `lift-bomb` pipeline with `config`, loading into its own table.
fn lift_bomb(name: &str, config: &str, extra: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
{extra}
grants = {{ databases = {{ ledger = "ledger.db" }} }}
extract = {{ plugin = "lift-bomb", config = {{ {config} }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "{name}", mode = "append" }} }}]
{HISTORY}
"#
    )
}

/// The escape pipeline with `plugin` in its place (transform, load or history).
fn escape_pipeline(plugin: &str, outside: &Path, mode: &str, extra: &str) -> String {
    let config = format!(
        r#"{{ plugin = "{plugin}", config = {{ database = "ledger", outside = "{}", mode = "{mode}" }} }}"#,
        outside.display()
    );
    let steps = match plugin {
        "sql-escape-transform" => format!("transform = [{config}]\n{LOAD}\n{HISTORY}"),
        "sql-escape-load" => format!("load = [{config}]\n{HISTORY}"),
        _ => format!("{LOAD}\nhistory = {config}"),
    };
    pipeline(plugin, extra, &steps)
}

/// A fixture whose ledger already holds what a run writes (rows, rejects table, checkpoints),
/// so the escapes have host tables to aim at. `pipelines` gets the fixture for its paths.
fn ledger_fixture(pipelines: impl FnOnce(&Fixture) -> String) -> Fixture {
    let fx = Fixture::new();
    fx.write("inbox/people.csv", "id,name\n1,Ann\n2,Bo\n3\n");
    std::fs::create_dir(fx.path("outside")).unwrap();
    let base = pipeline("base", "", &format!("{LOAD}\n{HISTORY}"));
    let mut plugins = vec!["lift-bomb"];
    plugins.extend(SQL_ESCAPE);
    fx.config_with_test_plugins(&plugins, &(base + &pipelines(&fx)));
    fx.weir(&["run", "base"]).success();
    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(*) FROM people"), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM _weir_rejects"), 1);
    fx
}

#[test]
fn every_sql_escape_is_refused_from_each_kind_of_plugin_that_gets_databases() {
    let fx = ledger_fixture(|fx| {
        SQL_ESCAPE
            .iter()
            .map(|p| escape_pipeline(p, &fx.path("outside"), "escape", NO_RESTART))
            .collect()
    });

    let files_before = listing(fx.dir.path());
    let ledger = fx.path("ledger.db");
    let (hash_before, dump_before) = (file_hash(&ledger), dump(&ledger));
    for plugin in SQL_ESCAPE {
        let (run, events) = fx.weir_with_events(&["run", plugin]);
        run.failure();
        let logs: Vec<&str> = events_of(&events, "plugin_log")
            .iter()
            .filter_map(|e| e["message"].as_str())
            .collect();
        for (attempt, refusal) in REFUSALS {
            let prefix = format!("{plugin}: {attempt}: ");
            let line = logs
                .iter()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{plugin} did not report {attempt}: {logs:#?}"));
            assert!(
                line.starts_with(&format!("{prefix}refused: {refusal}")) && line.contains("(in `"),
                "{line}"
            );
        }
        assert!(!logs.iter().any(|l| l.contains("ESCAPED")), "{logs:#?}");
        // The run's outcome says why: access denied, not retried.
        let failed = events_of(&events, "worker_failed");
        assert_eq!(failed.len(), 1, "{events:#?}");
        let error = failed[0]["error"].as_str().unwrap();
        assert!(
            error.contains("access denied")
                && error.contains(&format!("all {} attempts were refused", REFUSALS.len())),
            "{error}"
        );
        assert_eq!(failed[0]["retryable"], false);
        assert!(run.stderr().contains("access denied"), "{}", run.stderr());
        println!("{plugin}: {} attempts refused: {error}", REFUSALS.len());
    }
    // No file appeared anywhere (no attached.db, no copy.db), the ledger is as it was.
    assert_eq!(listing(fx.dir.path()), files_before);
    assert_eq!(dump(&ledger), dump_before);
    assert_eq!(
        file_hash(&ledger),
        hash_before,
        "the ledger file changed by a byte"
    );
}

#[test]
fn a_runaway_query_is_stopped_at_the_calls_limit_with_host_memory_flat() {
    let outside = Path::new("/nonexistent");
    let extra = format!("limits = {{ cpu_seconds = 2, timeout_seconds = 30 }}\n{NO_RESTART}");
    let fx = ledger_fixture(|_| {
        escape_pipeline("sql-escape-transform", outside, "runaway", &extra)
            + &escape_pipeline("sql-escape-load", outside, "runaway-rows", &extra)
    });

    let started = Instant::now();
    let run = fx.weir(&["run", "sql-escape-transform"]);
    let took = started.elapsed();
    run.failure();
    let err = run.stderr();
    assert!(
        err.contains("open: exceeded its CPU time limit")
            && err.contains("sql: `WITH RECURSIVE c(x) AS")
            && err.contains("was stopped after 2.0"),
        "{err}"
    );
    let peak = peak_mib(&run);
    println!("runaway count(*): stopped, the run took {took:?}, host peak RSS {peak} MiB");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(peak < 128, "host peak RSS {peak} MiB");

    // The same series as rows: refused at the row cap instead of collected until OOM.
    let run = fx.weir(&["run", "sql-escape-load"]);
    run.failure();
    let err = run.stderr();
    assert!(
        err.contains("bad data") && err.contains("more than limits.max_query_rows (100000) rows"),
        "{err}"
    );
    let peak = peak_mib(&run);
    println!("runaway rows: refused at 100000 rows, host peak RSS {peak} MiB");
    assert!(peak < 160, "host peak RSS {peak} MiB");
}

#[test]
fn shutdown_during_a_runaway_query_completes() {
    let outside = Path::new("/nonexistent");
    // A long CPU limit: before the fix the statement spun forever and SIGTERM never finished.
    let extra = format!("limits = {{ cpu_seconds = 6, timeout_seconds = 60 }}\n{NO_RESTART}");
    let fx =
        ledger_fixture(|_| escape_pipeline("sql-escape-transform", outside, "runaway", &extra));
    let server = Server::start(&fx);
    let mut events = server.events("pipeline=sql-escape-transform", None);
    server.trigger("sql-escape-transform");
    events.until(|e| {
        e.kind == "plugin_log"
            && e.data["message"]
                .as_str()
                .is_some_and(|m| m.contains("runaway query starts"))
    });
    std::thread::sleep(Duration::from_millis(500));
    let rss_start = server.rss_kib();
    std::thread::sleep(Duration::from_millis(1500));
    let rss_later = server.rss_kib();
    let growth_mib = rss_later.saturating_sub(rss_start) / 1024;
    println!("runaway query under serve: RSS {rss_start} KiB -> {rss_later} KiB over 1.5 s");
    assert!(growth_mib < 8, "RSS grew {growth_mib} MiB in 1.5 s");

    let stopping = Instant::now();
    let (status, output) = server.stop();
    let took = stopping.elapsed();
    println!("SIGTERM during the runaway query: stopped in {took:?} ({status})");
    assert!(status.success(), "{output}");
    // The statement stops at the call's CPU limit (6 s after it began, 2 s ago) at the latest.
    assert!(took < Duration::from_secs(8), "took {took:?}:\n{output}");
    assert!(
        output.contains("was stopped after") || output.contains("cancel"),
        "{output}"
    );
}

#[test]
fn aliased_buffers_are_refused_at_the_cap_not_copied_once_per_reference() {
    // 32 MiB in the guest, handed over as 64 columns that all point at it: 2 GiB if copied.
    let extra = format!("limits = {{ memory_mb = 64 }}\n{NO_RESTART}");
    let fx = ledger_fixture(|_| {
        lift_bomb(
            "aliased",
            r#"mode = "aliased", mib = 32, columns = 64"#,
            &extra,
        )
    });
    let (run, events) = fx.weir_with_events(&["run", "aliased"]);
    run.failure();
    let failed = events_of(&events, "worker_failed");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("next-batch: exceeded a data limit: handed the host more than"),
        "{error}"
    );
    assert_eq!(failed[0]["retryable"], false);
    let peak = peak_mib(&run);
    // The guest's 64 MiB, the host's cap (twice the guest's memory until the engine passes
    // `max_batch_bytes`), and the process itself.
    println!("aliased buffers (2 GiB if copied per reference): host peak RSS {peak} MiB");
    assert!(peak < 64 + 128 + 100, "host peak RSS {peak} MiB");
}

#[test]
fn a_huge_error_string_is_refused_or_cut_and_stored_capped() {
    let fx = ledger_fixture(|_| {
        lift_bomb(
            "huge-error",
            r#"mode = "error", call = "open", mib = 200"#,
            NO_RESTART,
        ) + &lift_bomb("long-error", r#"mode = "error", mib = 1"#, NO_RESTART)
            + &lift_bomb(
                "big-checkpoint",
                r#"mode = "checkpoint", mib = 1"#,
                NO_RESTART,
            )
    });

    // 200 MiB from `open`: more than a control call may hand over; nothing is copied.
    let (run, events) = fx.weir_with_events(&["run", "huge-error"]);
    run.failure();
    let error = events_of(&events, "worker_failed")[0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("open: exceeded a data limit: handed the host more than 16777216 bytes in one call (limits.max_result_bytes)"),
        "{error}"
    );
    let peak = peak_mib(&run);
    println!("200 MiB error string: host peak RSS {peak} MiB (the guest holds 200 MiB of it)");
    assert!(peak < 200 + 100, "host peak RSS {peak} MiB");
    let all_events = std::fs::read_to_string(fx.path("events.jsonl")).unwrap();
    assert!(
        all_events.len() < 64 << 10,
        "{} bytes of events",
        all_events.len()
    );

    // 1 MiB from `next-batch`: kept cut, with the marker, everywhere it goes.
    let (run, events) = fx.weir_with_events(&["run", "long-error"]);
    run.failure();
    let error = events_of(&events, "worker_failed")[0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.ends_with("… (1048576 bytes in all)"),
        "{}",
        &error[error.len() - 80..]
    );
    assert!(error.len() < (16 << 10) + 200, "{} bytes", error.len());
    assert!(
        run.stderr().len() < 64 << 10,
        "{} bytes",
        run.stderr().len()
    );

    // A checkpoint over its cap is bad data.
    let run = fx.weir(&["run", "big-checkpoint"]);
    run.failure();
    assert!(
        run.stderr().contains(
            "next-batch: bad data: checkpoint of 1048576 bytes is larger than limits.max_checkpoint_bytes (65536)"
        ),
        "{}",
        run.stderr()
    );
}
