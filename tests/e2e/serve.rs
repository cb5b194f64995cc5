//! `weir serve` on the bank-recon example: the real binary, the real plugins, a real socket.

use crate::bank_recon::bank_recon_fixture;
use crate::serve_support::*;
use crate::support::*;

#[test]
fn a_triggered_run_streams_started_batches_completed_and_is_queryable() {
    let fx = bank_recon_fixture();
    let server = Server::start(&fx);
    let mut sse = server.events("pipeline=bank-recon", None);
    let run_id = server.trigger("bank-recon");
    let events = sse.until(|e| ends_run(e, Some(&run_id)));

    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run_started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"run_completed"), "{kinds:?}");
    assert!(events.iter().all(|e| e.run() == Some(run_id.as_str())));
    let batches: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "batch_committed")
        .collect();
    assert!(
        batches.len() >= 3,
        "one per statement file at least: {kinds:?}"
    );
    let loaded: u64 = batches
        .iter()
        .map(|e| e.data["rows_out"].as_u64().unwrap())
        .sum();
    assert_eq!(loaded, 74);
    let ids: Vec<u64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let done = &events.last().unwrap().data;
    assert_eq!(
        (
            &done["rows_read"],
            &done["rows_loaded"],
            &done["rows_rejected"]
        ),
        (&78.into(), &74.into(), &4.into())
    );

    let run = server.get_json(&format!("/api/runs/{run_id}"));
    assert_eq!(run["status"], "completed");
    let bytes: u64 = batches
        .iter()
        .map(|e| e.data["bytes"].as_u64().unwrap())
        .sum();
    assert!(bytes > 2_000, "78 records of 8 fields: {bytes}");
    assert_eq!(run["bytes"], bytes, "the record sums the batches' bytes");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["rows_loaded"], 74);
    let partitions = run["partition_totals"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    assert_eq!(partitions[0]["partition"], "inbox/2026-01.csv");
    assert_eq!(
        (&partitions[0]["rows_read"], &partitions[0]["rows_loaded"]),
        (&31.into(), &29.into())
    );
    let rejects = server.get_json(&format!("/api/runs/{run_id}/rejects?limit=3"));
    assert_eq!(rejects["total"], 4);
    assert_eq!(rejects["rejects"].as_array().unwrap().len(), 3);
    assert_eq!(rejects["rejects"][0]["line"], 9);

    let pipelines = server.get_json("/api/pipelines");
    let bank = &pipelines["pipelines"][0];
    assert_eq!(bank["status"], "idle");
    assert_eq!(bank["last_run"]["id"], run_id.as_str());
    assert_eq!(bank["schedule"]["upcoming"].as_array().unwrap().len(), 3);
    let plugins = server.get_json("/api/plugins");
    assert_eq!(
        plugins["plugins"].as_array().unwrap().len(),
        bundled_plugin_count()
    );

    let metrics = server.request("GET", "/metrics", false);
    assert_eq!(metrics.status, 200);
    for line in [
        "weir_rows_read_total{pipeline=\"bank-recon\"} 78",
        "weir_rows_loaded_total{pipeline=\"bank-recon\"} 74",
        "weir_rows_rejected_total{pipeline=\"bank-recon\"} 4",
        "weir_runs_total{pipeline=\"bank-recon\",status=\"completed\"} 1",
        "weir_run_duration_seconds_count{pipeline=\"bank-recon\"} 1",
    ] {
        assert!(
            metrics.body.contains(line),
            "missing {line}:\n{}",
            metrics.body
        );
    }

    let checkpoints = server.get_json("/api/pipelines/bank-recon/checkpoints");
    assert_eq!(checkpoints["checkpoints"].as_array().unwrap().len(), 3);
    let reset = server.request(
        "DELETE",
        "/api/pipelines/bank-recon/checkpoints?partition=inbox/2026-02.csv",
        true,
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.json()["removed"], 1);

    let (status, output) = server.stop();
    assert!(status.success(), "{output}");
    assert!(output.contains("weir serve: stopped"), "{output}");
}

#[test]
fn mutating_routes_return_401_without_the_token() {
    let fx = bank_recon_fixture();
    let server = Server::start(&fx);
    for (method, path) in [
        ("POST", "/api/pipelines/bank-recon/runs"),
        ("POST", "/api/runs/20260101T000000Z-0000/cancel"),
        ("DELETE", "/api/pipelines/bank-recon/checkpoints"),
    ] {
        let response = server.request(method, path, false);
        assert_eq!(response.status, 401, "{method} {path}: {}", response.body);
        assert!(response.json()["error"].as_str().unwrap().contains("token"));
    }
    // Nothing ran.
    let runs = server.get_json("/api/runs");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0);
    assert!(
        !fx.path("ledger.db").exists()
            || count(
                &fx.db("ledger.db"),
                "SELECT count(*) FROM sqlite_master WHERE name = 'transactions'"
            ) == 0
    );
}

#[test]
fn reconnecting_with_last_event_id_gets_exactly_the_missed_events() {
    let fx = bank_recon_fixture();
    let server = Server::start(&fx);
    let mut first = server.events("", None);
    let run1 = server.trigger("bank-recon");
    let seen = first.until(|e| ends_run(e, Some(&run1)));
    let last_seen = seen.last().unwrap().id.unwrap();
    drop(first);

    // While nobody listens on that connection: a second run (reading one file again).
    let mut watcher = server.events("", None);
    let reset = server.request(
        "DELETE",
        "/api/pipelines/bank-recon/checkpoints?partition=inbox/2026-03.csv",
        true,
    );
    assert_eq!(reset.status, 200);
    let run2 = server.trigger("bank-recon");
    watcher.until(|e| ends_run(e, Some(&run2)));

    let mut resumed = server.events("", Some(last_seen));
    let missed = resumed.until(|e| ends_run(e, Some(&run2)));
    let ids: Vec<u64> = missed.iter().map(|e| e.id.unwrap()).collect();
    // The persisted log, from the start, is the reference.
    let mut all = server.events("last_event_id=0", None);
    let log = all.until(|e| ends_run(e, Some(&run2)));
    let expected: Vec<u64> = log
        .iter()
        .map(|e| e.id.unwrap())
        .filter(|&id| id > last_seen)
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(ids.first(), Some(&(last_seen + 1)), "no gap");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous, no duplicate: {ids:?}"
    );
    assert!(
        missed
            .iter()
            .any(|e| e.kind == "run_started" && e.run() == Some(&run2))
    );
    assert!(missed.iter().all(|e| e.run() != Some(run1.as_str())));
    let batches: Vec<_> = missed
        .iter()
        .filter(|e| e.kind == "batch_committed")
        .collect();
    assert_eq!(batches.len(), 1, "only the reset file was read again");
    assert_eq!(batches[0].data["partition"], "inbox/2026-03.csv");
    // The first events of the log are the engine's and the plugins'.
    assert_eq!(log[0].kind, "engine_started");
    assert_eq!(
        log.iter().filter(|e| e.kind == "plugin_loaded").count(),
        bundled_plugin_count()
    );
}

#[test]
fn events_and_runs_survive_a_restart_and_ids_continue() {
    let fx = bank_recon_fixture();
    let server = Server::start(&fx);
    let mut sse = server.events("", None);
    let run = server.trigger("bank-recon");
    let before = sse.until(|e| ends_run(e, Some(&run)));
    let last_id = before.last().unwrap().id.unwrap();
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");

    let server = Server::start(&fx);
    let runs = server.get_json("/api/runs?pipeline=bank-recon");
    assert_eq!(runs["runs"][0]["id"], run.as_str());
    assert_eq!(runs["runs"][0]["status"], "completed");
    let mut replay = server.events(&format!("run={run}&last_event_id=0"), None);
    let replayed = replay.until(|e| ends_run(e, Some(&run)));
    assert_eq!(
        replayed.iter().map(|e| e.id).collect::<Vec<_>>(),
        before.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    let mut fresh = server.events("", Some(last_id));
    let started = fresh.until(|e| e.kind == "engine_started");
    assert!(started.last().unwrap().id.unwrap() > last_id);
}

#[test]
fn stopping_mid_run_cancels_at_a_batch_boundary_and_loses_nothing() {
    let fx = Fixture::new();
    let mut csv = String::from("id;name\n");
    for i in 0..100_000 {
        csv.push_str(&format!("{i};name {i}\n"));
    }
    fx.write("inbox/big.csv", csv);
    fx.config(
        &csv_pipeline(
            "big",
            r#"path = "inbox/*.csv", delimiter = ";""#,
            r#"table = "rows", mode = "append""#,
        )
        .replace("name = \"big\"\n", "name = \"big\"\nbatch_size = 100\n"),
    );
    let server = Server::start(&fx);
    let mut sse = server.events("pipeline=big", None);
    let run = server.trigger("big");
    // Stop once a few batches are in.
    let mut batches = 0;
    while batches < 3 {
        let e = sse.next_event().expect("events");
        batches += usize::from(e.kind == "batch_committed");
    }
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");
    let rest: Vec<SseEvent> = std::iter::from_fn(|| sse.next_event()).collect();
    let last = rest
        .last()
        .expect("the stream delivers the run's end before closing");
    assert!(ends_run(last, Some(&run)), "{rest:#?}");

    let state = fx.db("weir-state.db");
    let (status, loaded): (String, i64) = state
        .query_row(
            "SELECT status, rows_loaded FROM runs WHERE id = ?1",
            [&run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let rows = count(&fx.db("ledger.db"), "SELECT count(*) FROM rows");
    // Whole batches only: what the run record says was committed is exactly what is there.
    assert_eq!(rows, loaded, "{output}");
    assert_eq!(rows % 100, 0, "whole batches of 100");
    // 1,000 batches take far longer than a signal: the run was stopped, not finished.
    assert_eq!(status, "cancelled", "{rows} rows");
    assert!(rows < 100_000);
    assert_eq!(last.kind, "run_cancelled");
    // The worker was stopped, not broken: cancelled with what it committed, never "failed".
    assert!(rest.iter().all(|e| e.kind != "worker_failed"), "{rest:#?}");
    let stopped = rest
        .iter()
        .find(|e| e.kind == "worker_cancelled")
        .unwrap_or_else(|| panic!("{rest:#?}"));
    assert_eq!(stopped.data["partition"], "inbox/big.csv");
    let (partition_status, partition_loaded): (String, i64) = state
        .query_row(
            "SELECT status, rows_loaded FROM run_partitions WHERE run_id = ?1",
            [&run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(partition_status, "cancelled");
    assert_eq!(partition_loaded, rows);
    assert_eq!(stopped.data["rows_loaded"], rows);
}

#[test]
fn serve_check_prints_schedules_in_words_with_the_next_three_fires() {
    let fx = bank_recon_fixture();
    let run = fx.weir(&["serve", "--check"]);
    run.success();
    let out = run.stdout();
    assert!(
        out.contains(
            "pipeline bank-recon: \"0 6 1 * *\" = at 06:00 on day 1 of every month (Europe/Zurich)"
        ),
        "{out}"
    );
    let fires: Vec<&str> = out.lines().filter(|l| l.contains(" 06:00:00 CE")).collect();
    assert_eq!(fires.len(), 3, "{out}");
    assert!(fires[0].trim_start().starts_with("next:"), "{out}");
    assert!(fires.iter().all(|l| l.contains("-01 06:00:00")), "{out}");
}

/// One `plugin_loaded` per `.wasm` in the bundled plugins folder the service was started on.
fn bundled_plugin_count() -> usize {
    std::fs::read_dir(crate::support::plugins_dist())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "wasm")
        })
        .count()
}
