//! Misbehaving plugins (tests/plugins): deadlines, memory caps, sandbox escapes, traps,
//! flaky sources, bad config, oversized rows — and supervision around them.

use crate::support::*;

const NO_RESTART: &str = "restart = { max_restarts = 0 }";

fn ms(event: &serde_json::Value) -> u64 {
    event["time"].as_u64().unwrap()
}

/// Milliseconds the stopped call ran, as the host measured it ("stopped after 1.012 s").
/// The host's own figure excludes process start and instantiation, which a loaded CI machine
/// can stretch; the event times must agree within reason.
fn time_to_failure(events: &[serde_json::Value]) -> u64 {
    let started = events_of(events, "worker_started")[0];
    let failed = events_of(events, "worker_failed")[0];
    let error = failed["error"].as_str().unwrap();
    let secs: f64 = error
        .split("stopped after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {error}"));
    assert!(
        ms(failed) - ms(started) < 10_000,
        "the worker failed long after it started"
    );
    (secs * 1000.0) as u64
}

#[test]
fn an_infinite_loop_is_stopped_at_the_cpu_deadline() {
    let fx = Fixture::new();
    let extra = format!("limits = {{ cpu_seconds = 1 }}\n{NO_RESTART}");
    fx.config_with_test_plugins(
        &["spin-forever"],
        &test_pipeline("spin", "spin-forever", "", &extra),
    );
    let (run, events) = fx.weir_with_events(&["run", "spin"]);
    run.failure();
    assert!(
        run.stderr()
            .contains("plugin \"spin-forever\" 0.1.0: next-batch: exceeded its CPU time limit"),
        "{}",
        run.stderr()
    );
    let stopped_after = time_to_failure(&events);
    println!("spin-forever: the call was stopped after {stopped_after} ms (CPU deadline 1000 ms)");
    assert!(
        (1000..1250).contains(&stopped_after),
        "stopped after {stopped_after} ms"
    );
}

#[test]
fn a_timed_out_instance_is_discarded_and_the_restart_runs_on_a_fresh_one() {
    let fx = Fixture::new();
    let extra = "limits = { timeout_seconds = 1 }\n\
                 restart = { max_restarts = 1, backoff_min_ms = 50, backoff_max_ms = 50 }";
    fx.config_with_test_plugins(
        &["spin-forever"],
        &test_pipeline("sleepy", "spin-forever", r#"mode = "sleep""#, extra),
    );
    let (run, events) = fx.weir_with_events(&["run", "sleepy"]);
    run.failure();
    // Each attempt starts a new instance and ends in the same timeout: a re-used instance
    // would fail differently (wasmtime refuses to re-enter a cancelled one), or not at all.
    assert_eq!(events_of(&events, "worker_started").len(), 2, "{events:#?}");
    let retrying = events_of(&events, "worker_retrying");
    assert_eq!(retrying.len(), 1, "{events:#?}");
    assert!(
        retrying[0]["error"]
            .as_str()
            .unwrap()
            .contains("next-batch: timed out: stopped after"),
        "{retrying:#?}"
    );
    let failed = events_of(&events, "worker_failed");
    assert_eq!(failed[0]["attempts"], 2, "{failed:#?}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("next-batch: timed out: stopped after"),
        "{failed:#?}"
    );
}

#[test]
fn a_call_blocked_in_the_host_is_stopped_at_the_wall_clock_timeout() {
    let fx = Fixture::new();
    let extra = format!("limits = {{ timeout_seconds = 1 }}\n{NO_RESTART}");
    fx.config_with_test_plugins(
        &["spin-forever"],
        &test_pipeline("sleepy", "spin-forever", r#"mode = "sleep""#, &extra),
    );
    let (run, events) = fx.weir_with_events(&["run", "sleepy"]);
    run.failure();
    assert!(
        run.stderr()
            .contains("next-batch: timed out: stopped after"),
        "{}",
        run.stderr()
    );
    let stopped_after = time_to_failure(&events);
    println!("blocked call stopped after {stopped_after} ms (timeout 1000 ms)");
    assert!(
        (1000..1250).contains(&stopped_after),
        "stopped after {stopped_after} ms"
    );
}

#[test]
fn a_memory_bomb_traps_at_the_cap_and_host_memory_stays_bounded() {
    let fx = Fixture::new();
    let extra = format!("limits = {{ memory_mb = 64 }}\n{NO_RESTART}");
    fx.config_with_test_plugins(
        &["alloc-bomb"],
        &test_pipeline("bomb", "alloc-bomb", "chunk_mib = 8", &extra),
    );
    let (run, events) = fx.weir_with_events(&["run", "bomb"]);
    run.failure();
    assert!(
        run.stderr()
            .contains("next-batch: exceeded its memory limit"),
        "{}",
        run.stderr()
    );
    let stopped =
        ms(events_of(&events, "worker_failed")[0]) - ms(events_of(&events, "worker_started")[0]);
    println!(
        "alloc-bomb: stopped {stopped} ms after the worker started (8 MiB chunks toward a 64 MiB cap)"
    );
    assert!(stopped < 10_000, "the cap stopped it late: {stopped} ms");
    let peak: u64 = run
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|l| l.trim_end_matches(" MiB").parse().ok())
        .expect("the summary reports peak memory");
    println!("alloc-bomb: host peak RSS {peak} MiB with a 64 MiB cap");
    assert!(peak < 64 + 96, "host peak RSS {peak} MiB");
}

#[test]
fn every_sandbox_escape_is_denied() {
    let fx = Fixture::new();
    fx.write("secret.txt", "top secret");
    std::os::unix::fs::symlink(fx.path("secret.txt"), fx.path("inbox/link")).unwrap();
    fx.config_with_test_plugins(
        &["escape-sandbox"],
        &test_pipeline(
            "escape",
            "escape-sandbox",
            r#"granted_dir = "inbox", database = "forbidden""#,
            "",
        ),
    );
    let (run, events) = fx.weir_with_events(&["run", "escape"]);
    run.failure();
    // access-denied is not retried, even with the default restart budget.
    let failed = events_of(&events, "worker_failed");
    assert_eq!(failed.len(), 5, "{failed:#?}");
    assert!(
        failed
            .iter()
            .all(|e| e["attempts"] == 1 && e["retryable"] == false),
        "{failed:#?}"
    );
    assert!(events_of(&events, "worker_retrying").is_empty());
    let err = run.stderr();
    for attempt in ["etc-passwd", "dotdot", "symlink", "write", "database"] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("partition {attempt}:")))
            .unwrap_or_else(|| panic!("no error for {attempt}:\n{err}"));
        assert!(
            line.contains("access denied") && line.contains(&format!("{attempt}: denied")),
            "{line}"
        );
    }
    assert!(!err.contains("ESCAPED"), "{err}");
    assert!(
        err.contains("database \"forbidden\" is not granted"),
        "{err}"
    );
    assert!(!fx.path("inbox/new.txt").exists());
}

#[test]
fn a_trap_mid_batch_commits_nothing_of_that_batch_and_a_rerun_resumes_exactly_after() {
    let fx = Fixture::new();
    let extra = format!("batch_size = 10\n{NO_RESTART}");
    let config = r#"rows = 50, batch = 10, panic_at_batch = 2, marker_db = "markers""#;
    fx.config_with_test_plugins(
        &["trap-mid-batch"],
        &test_pipeline("trap", "trap-mid-batch", config, &extra),
    );
    let run = fx.weir(&["run", "trap"]);
    run.failure();
    assert!(
        run.stderr().contains("next-batch: trapped"),
        "{}",
        run.stderr()
    );
    let db = fx.db("ledger.db");
    assert_eq!(
        count(&db, "SELECT count(*) FROM trap"),
        20,
        "batches 0 and 1 committed, batch 2 not"
    );
    assert_eq!(count(&db, "SELECT max(id) FROM trap"), 19);
    // The plugin traps only once; the next run resumes after the last committed batch.
    fx.weir(&["run", "trap"]).success();
    assert_eq!(count(&db, "SELECT count(*) FROM trap"), 50);
    assert_eq!(count(&db, "SELECT count(DISTINCT id) FROM trap"), 50);
}

#[test]
fn the_supervisor_restarts_a_trapped_worker_from_its_checkpoint() {
    let fx = Fixture::new();
    let extra = "batch_size = 10\nrestart = { max_restarts = 3, backoff_min_ms = 50, backoff_max_ms = 200 }";
    let config = r#"rows = 50, batch = 10, panic_at_batch = 2, marker_db = "markers""#;
    fx.config_with_test_plugins(
        &["trap-mid-batch"],
        &test_pipeline("trap", "trap-mid-batch", config, extra),
    );
    let (run, events) = fx.weir_with_events(&["run", "trap"]);
    run.success();
    assert_eq!(events_of(&events, "worker_retrying").len(), 1);
    // The panic message the plugin printed on its stderr is an event of the run, labelled
    // with the plugin and the partition, not only a line in the host log.
    let logs = events_of(&events, "plugin_log");
    let panic = logs
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("trap-mid-batch: panic in batch 2"))
        })
        .unwrap_or_else(|| panic!("{logs:#?}"));
    assert_eq!(
        (&panic["plugin"], &panic["level"], &panic["partition"]),
        (&"trap-mid-batch".into(), &"warn".into(), &"p".into())
    );
    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(*) FROM trap"), 50);
    assert_eq!(count(&db, "SELECT count(DISTINCT id) FROM trap"), 50);
}

#[test]
fn a_flaky_source_recovers_within_the_budget() {
    let fx = Fixture::new();
    let extra = "restart = { max_restarts = 3, backoff_min_ms = 50, backoff_max_ms = 200 }";
    let config = r#"rows = 200, fail_first = 2, counter_db = "markers""#;
    fx.config_with_test_plugins(&["flaky"], &test_pipeline("flaky", "flaky", config, extra));
    let (run, events) = fx.weir_with_events(&["run", "flaky"]);
    assert_eq!(run.success().totals(), (200, 200, 0));
    assert_eq!(events_of(&events, "worker_retrying").len(), 2);
    let db = fx.db("ledger.db");
    assert_eq!(count(&db, "SELECT count(DISTINCT id) FROM flaky"), 200);
    assert_eq!(
        count(&db, "SELECT count(*) FROM flaky WHERE label = 'row ' || id"),
        200
    );
}

#[test]
fn a_spent_budget_fails_the_run_with_the_reason_while_another_pipeline_completes() {
    let fx = Fixture::new();
    let flaky = test_pipeline(
        "flaky",
        "flaky",
        r#"rows = 10, fail_first = 100, counter_db = "markers""#,
        "restart = { max_restarts = 2, backoff_min_ms = 20, backoff_max_ms = 50 }",
    );
    let good = test_pipeline(
        "good",
        "trap-mid-batch",
        r#"rows = 30, batch = 10, panic_at_batch = 99, marker_db = "markers""#,
        "",
    );
    fx.config_with_test_plugins(&["flaky", "trap-mid-batch"], &(flaky + &good));
    let (run, events) = fx.weir_with_events(&["run", "flaky", "good"]);
    run.failure();
    let err = run.stderr();
    assert!(
        err.contains("partition p: gave up after 3 attempts")
            && err.contains("unavailable: attempt 3 of 100 fails on purpose"),
        "{err}"
    );
    let failed = events_of(&events, "worker_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["pipeline"], "flaky");
    assert_eq!(failed[0]["attempts"], 3);
    assert!(
        run.stdout().contains("pipeline good: run") && run.stdout().contains("completed"),
        "{}",
        run.stdout()
    );
    assert_eq!(count(&fx.db("ledger.db"), "SELECT count(*) FROM good"), 30);
}

#[test]
fn invalid_config_fails_at_once_without_retries() {
    let fx = Fixture::new();
    let pipeline = csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#).replace(
        "load = [",
        "transform = [{ plugin = \"bad-config\" }]\nload = [",
    );
    fx.config_with_test_plugins(&["bad-config"], &pipeline);
    fx.write("inbox/a.csv", "id\n1\n");
    let (run, events) = fx.weir_with_events(&["run", "p"]);
    run.failure();
    assert!(
        run.stderr()
            .contains("open: invalid config: key \"x\" is always wrong"),
        "{}",
        run.stderr()
    );
    assert!(events_of(&events, "worker_retrying").is_empty());
    assert_eq!(events_of(&events, "worker_failed")[0]["attempts"], 1);
}

#[test]
fn an_oversized_row_is_a_reject_with_its_line_and_an_oversized_batch_fails_clearly() {
    let fx = Fixture::new();
    let huge = test_pipeline("huge", "huge-row", "bytes = 20971520, rows = 1", "");
    let many = test_pipeline(
        "many",
        "huge-row",
        "bytes = 1048576, rows = 3",
        &format!("limits = {{ max_batch_bytes = 2000000 }}\n{NO_RESTART}"),
    );
    fx.config_with_test_plugins(&["huge-row"], &(huge + &many));
    let run = fx.weir(&["run", "huge"]);
    assert_eq!(run.success().totals(), (1, 0, 1));
    let (line, reason): (i64, String) = fx
        .db("ledger.db")
        .query_row("SELECT line, reason FROM _weir_rejects", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(line, 1);
    assert!(
        reason.contains("value of column payload is 20971520 bytes, more than max_value_bytes"),
        "{reason}"
    );

    let run = fx.weir(&["run", "many"]);
    run.failure();
    assert!(
        run.stderr().contains(
            "handed the host more than 2000000 bytes in one call (limits.max_batch_bytes); the host stopped copying there; lower batch_size or raise limits.max_batch_bytes"
        ),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_locked_target_is_retried_until_the_lock_is_gone() {
    let fx = Fixture::new();
    fx.config(
        &csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#)
            .replace("name = \"p\"", "name = \"p\"\nrestart = { max_restarts = 5, backoff_min_ms = 100, backoff_max_ms = 200 }"),
    );
    fx.write("inbox/a.csv", "id\n1\n2\n");
    fx.weir(&["run", "p"]).success();
    fx.write("inbox/b.csv", "id\n3\n");
    // Another writer holds the database while weir runs.
    let blocker = fx.db("ledger.db");
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let events_path = fx.path("events.jsonl");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "-c",
            fx.path("weir.toml").to_str().unwrap(),
            "run",
            "p",
            "--events",
            events_path.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Release the lock once weir has reported the failure and scheduled a retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&events_path).unwrap_or_default();
        if text.contains("\"type\":\"worker_retrying\"") {
            assert!(text.contains("locked") || text.contains("busy"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no retry reported: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    blocker.execute_batch("ROLLBACK").unwrap();
    let output = child.wait_with_output().unwrap();
    let run = Run(output);
    assert_eq!(run.success().totals(), (1, 1, 0));
    assert_eq!(count(&fx.db("ledger.db"), "SELECT count(*) FROM t"), 3);
}

#[test]
fn a_database_in_a_missing_directory_is_a_clear_error() {
    let fx = Fixture::new();
    fx.config(
        &csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#)
            .replace("ledger.db", "nowhere/ledger.db"),
    );
    fx.write("inbox/a.csv", "id\n1\n");
    let run = fx.weir(&["run", "p"]);
    run.failure();
    assert!(
        run.stderr().contains("database \"ledger\" is in")
            && run.stderr().contains("nowhere, which does not exist"),
        "{}",
        run.stderr()
    );
}

#[test]
fn ctrl_c_stops_at_a_batch_boundary_and_the_next_run_resumes() {
    let fx = Fixture::new();
    fx.config(
        &csv_pipeline(
            "p",
            r#"path = "inbox/*.csv", types = { id = "integer" }"#,
            r#"table = "t""#,
        )
        .replace("name = \"p\"", "name = \"p\"\nbatch_size = 100"),
    );
    let rows = 200_000;
    let csv: String = std::iter::once("id,memo\n".to_owned())
        .chain((1..=rows).map(|i| format!("{i},\"memo {i}\"\n")))
        .collect();
    fx.write("inbox/a.csv", csv);
    let events_path = fx.path("events.jsonl");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "-c",
            fx.path("weir.toml").to_str().unwrap(),
            "run",
            "p",
            "--events",
            events_path.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first batch is committed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&events_path)
        .unwrap_or_default()
        .contains("\"type\":\"batch_committed\"")
    {
        assert!(std::time::Instant::now() < deadline, "no batch committed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = Run(child.wait_with_output().unwrap());
    run.failure();
    assert!(run.stderr().contains("run cancelled"), "{}", run.stderr());

    let events: Vec<serde_json::Value> = std::fs::read_to_string(&events_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events_of(&events, "run_cancelled").len(), 1);
    let committed: i64 = events_of(&events, "batch_committed")
        .iter()
        .map(|e| e["rows_out"].as_i64().unwrap())
        .sum();
    let db = fx.db("ledger.db");
    let loaded = count(&db, "SELECT count(*) FROM t");
    assert_eq!(
        loaded, committed,
        "exactly the committed batches are in the table"
    );
    assert!(loaded < rows, "the run stopped early ({loaded} rows)");
    assert_eq!(loaded % 100, 0, "whole batches only");

    fx.weir(&["run", "p"]).success();
    assert_eq!(count(&db, "SELECT count(*) FROM t"), rows);
    assert_eq!(count(&db, "SELECT count(DISTINCT id) FROM t"), rows);
}

#[test]
fn a_full_target_fails_clearly_and_resumes_once_there_is_room() {
    let fx = Fixture::new();
    let pipeline = |max_mb: u64| {
        csv_pipeline("p", r#"path = "inbox/*.csv", types = { id = "integer" }"#, r#"table = "t""#)
            .replace("name = \"p\"", "name = \"p\"\nbatch_size = 1000\nrestart = { max_restarts = 1, backoff_min_ms = 10, backoff_max_ms = 20 }")
            .replace(
                "databases = { ledger = \"ledger.db\" }",
                &format!("databases = {{ ledger = {{ path = \"ledger.db\", max_size_mb = {max_mb} }} }}"),
            )
    };
    fx.config(&pipeline(1));
    let rows = 30_000;
    let csv: String = std::iter::once("id,memo\n".to_owned())
        .chain((1..=rows).map(|i| format!("{i},a memo long enough to fill pages quickly {i}\n")))
        .collect();
    fx.write("inbox/a.csv", csv);
    let run = fx.weir(&["run", "p"]);
    run.failure();
    assert!(
        run.stderr().contains("database or disk is full"),
        "{}",
        run.stderr()
    );
    let db = fx.db("ledger.db");
    let partial = count(&db, "SELECT count(*) FROM t");
    assert_eq!(partial % 1000, 0, "whole batches only ({partial})");
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");

    fx.config(&pipeline(64));
    fx.weir(&["run", "p"]).success();
    assert_eq!(count(&db, "SELECT count(*) FROM t"), rows);
    assert_eq!(count(&db, "SELECT count(DISTINCT id) FROM t"), rows);
}

#[test]
fn a_read_only_target_fails_clearly_and_resumes_once_writable() {
    let fx = Fixture::new();
    let pipeline = |read_only: bool| {
        csv_pipeline("p", r#"path = "inbox/*.csv""#, r#"table = "t""#).replace(
            "databases = { ledger = \"ledger.db\" }",
            &format!(
                "databases = {{ ledger = {{ path = \"ledger.db\", read_only = {read_only} }} }}"
            ),
        )
    };
    fx.config(&pipeline(false));
    fx.write("inbox/a.csv", "id\n1\n2\n");
    fx.weir(&["run", "p"]).success();
    fx.append("inbox/a.csv", "3\n");
    fx.config(&pipeline(true));
    let run = fx.weir(&["run", "p"]);
    run.failure();
    assert!(
        run.stderr().contains("readonly database"),
        "{}",
        run.stderr()
    );
    assert_eq!(count(&fx.db("ledger.db"), "SELECT count(*) FROM t"), 2);
    fx.config(&pipeline(false));
    assert_eq!(fx.weir(&["run", "p"]).success().totals(), (1, 1, 0));
}
