//! Drop-in plugins while serving: a real `weir serve` watching its plugins folder while the
//! test copies, breaks, removes and slowly writes plugin files in it. The `stamp` test plugin
//! adds a column holding its own version (1.0.0 in `stamp.wasm`, 2.0.0 in `stamp_v2.wasm`), so
//! every loaded row says which version transformed it.

use std::io::Write;
use std::time::Duration;

use crate::serve_support::*;
use crate::support::*;

/// A server whose pipeline `stamped` is csv-extract → stamp → sqlite-load (append into table
/// `rows` of `ledger.db`), with `stamp.wasm` 1.0.0 in its plugins folder when `with_stamp`.
/// `pause_ms` is how long stamp sleeps per batch of 50 rows.
fn stamp_fixture(with_stamp: bool, pause_ms: u64) -> Fixture {
    let fx = Fixture::new();
    let pipeline = format!(
        r#"
[[pipeline]]
name = "stamped"
batch_size = 50
grants = {{ read_dirs = ["inbox"], databases = {{ ledger = "ledger.db" }} }}
extract = {{ plugin = "csv-extract", config = {{ path = "inbox/*.csv" }} }}
transform = [{{ plugin = "stamp", config = {{ pause_ms = {pause_ms} }} }}]
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "rows", mode = "append" }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#
    );
    fx.config_with_test_plugins(if with_stamp { &["stamp"] } else { &[] }, &pipeline);
    fx
}

/// `id,name` rows with ids `ids`.
fn csv(ids: std::ops::Range<u32>) -> String {
    let mut text = String::from("id,name\n");
    for id in ids {
        text.push_str(&format!("{id},row {id}\n"));
    }
    text
}

/// The plugin file the fixture's server watches.
fn stamp_file(fx: &Fixture) -> std::path::PathBuf {
    fx.path("plugins/stamp.wasm")
}

/// How many loaded rows in `ids` carry each stamp: `[(stamp, count)]`.
fn stamps(fx: &Fixture, ids: std::ops::Range<u32>) -> Vec<(String, i64)> {
    let db = fx.db("ledger.db");
    let mut query = db
        .prepare(
            "SELECT stamp, count(*) FROM rows WHERE CAST(id AS INTEGER) >= ?1 AND CAST(id AS INTEGER) < ?2 \
             GROUP BY stamp ORDER BY stamp",
        )
        .unwrap();
    query
        .query_map([ids.start, ids.end], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The entry of `GET /api/plugins` for the plugin called `name`, if it is listed.
fn listed<'a>(plugins: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

fn is_plugin_event(event: &SseEvent) -> bool {
    event.kind.starts_with("plugin_")
}

#[test]
fn a_plugin_replaced_during_a_run_serves_the_next_run_and_the_running_one_finishes_on_the_old() {
    // 1000 rows in 20 batches of 50, 200 ms each in stamp: the run takes about 4 s, and the
    // replacement (0.5 s until the copy has settled, then a compile) lands in the middle.
    let fx = stamp_fixture(true, 200);
    fx.write("inbox/a.csv", csv(0..1000));
    let server = Server::start(&fx);
    let mut sse = server.events("", None);
    let first = server.trigger("stamped");
    sse.until(|e| e.kind == "batch_committed" && e.run() == Some(first.as_str()));

    std::fs::copy(test_plugin("stamp_v2"), stamp_file(&fx)).unwrap();
    let events = sse.until(|e| e.kind == "plugin_replaced" || ends_run(e, Some(&first)));
    let replaced = events.last().unwrap();
    assert_eq!(
        replaced.kind,
        "plugin_replaced",
        "the first run ended before the new version was loaded (make it longer): {events:#?}\n{}",
        server.output()
    );
    assert_eq!(replaced.data["plugin"], "stamp");
    assert_eq!(replaced.data["kind"], "transformer");
    assert_eq!(replaced.data["old_version"], "1.0.0");
    assert_eq!(replaced.data["new_version"], "2.0.0");
    assert_ne!(replaced.data["old_hash"], replaced.data["new_hash"]);
    assert!(
        replaced.data["file"]
            .as_str()
            .unwrap()
            .ends_with("stamp.wasm")
    );

    // A second trigger while the first run goes on is skipped, not run with the new version.
    let busy = server.request("POST", "/api/pipelines/stamped/runs", true);
    assert_eq!(busy.status, 409, "{}", busy.body);

    let end = sse.until(|e| ends_run(e, Some(&first)));
    assert_eq!(end.last().unwrap().kind, "run_completed", "{end:#?}");
    // A 4-second run reports how far reading has got, about once a second.
    let progress: Vec<u64> = events
        .iter()
        .chain(&end)
        .filter(|e| e.kind == "worker_progress" && e.run() == Some(first.as_str()))
        .map(|e| e.data["done"].as_u64().unwrap())
        .collect();
    assert!(
        progress.len() >= 2 && progress.windows(2).all(|w| w[0] < w[1]),
        "{progress:?}"
    );
    assert_eq!(
        stamps(&fx, 0..1000),
        [("1.0.0".to_owned(), 1000)],
        "the run in progress must finish on the version it started with"
    );
    let record = server.get_json(&format!("/api/runs/{first}"));
    assert_eq!(record["plugins"]["stamp"], "1.0.0", "{record}");
    assert_eq!(record["plugins"]["csv-extract"], "0.1.0", "{record}");

    // The next run uses the new version.
    fx.write("inbox/b.csv", csv(5000..5100));
    let second = server.trigger("stamped");
    let events = sse.until(|e| ends_run(e, Some(&second)));
    assert_eq!(events.last().unwrap().kind, "run_completed", "{events:#?}");
    let started = events.iter().find(|e| e.kind == "run_started").unwrap();
    assert_eq!(started.data["plugins"]["stamp"], "2.0.0");
    assert_eq!(stamps(&fx, 5000..5100), [("2.0.0".to_owned(), 100)]);
    assert_eq!(
        stamps(&fx, 0..1000),
        [("1.0.0".to_owned(), 1000)],
        "nothing re-read"
    );
    let record = server.get_json(&format!("/api/runs/{second}"));
    assert_eq!(record["plugins"]["stamp"], "2.0.0", "{record}");

    let plugins = server.get_json("/api/plugins");
    let stamp = listed(&plugins, "stamp").expect("stamp listed");
    assert_eq!(stamp["version"], "2.0.0");
    assert_eq!(stamp["sha256"], replaced.data["new_hash"]);
    assert_eq!(stamp["used_by"], serde_json::json!(["stamped"]));
    assert!(stamp["loaded_at"].as_str().is_some(), "{stamp}");
    let csv_extract = listed(&plugins, "csv-extract").unwrap();
    assert_eq!(csv_extract["used_by"], serde_json::json!(["stamped"]));

    // The same from the command line, asking the running service.
    let listed = fx.weir(&[
        "plugins",
        "list",
        "--server",
        &format!("http://{}", server.addr),
    ]);
    let out = listed.success().stdout();
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("stamp "))
        .unwrap_or_else(|| panic!("{out}"));
    let short_hash = &stamp["sha256"].as_str().unwrap()[..12];
    assert!(
        line.contains("2.0.0")
            && line.contains("transformer")
            && line.contains(&format!("sha256:{short_hash}"))
            && line.contains(" loaded 20"),
        "{out}"
    );
    assert!(out.contains("used by: stamped"), "{out}");
}

#[test]
fn a_broken_plugin_file_is_rejected_and_the_version_before_it_keeps_serving() {
    let fx = stamp_fixture(true, 0);
    fx.write("inbox/a.csv", csv(0..10));
    let server = Server::start(&fx);
    let mut sse = server.events("", None);

    // A copy cut off halfway, as a failed upload leaves it.
    let v2 = std::fs::read(test_plugin("stamp_v2")).unwrap();
    std::fs::write(stamp_file(&fx), &v2[..v2.len() / 2]).unwrap();
    let rejected = sse.until(is_plugin_event).pop().unwrap();
    assert_eq!(rejected.kind, "plugin_rejected", "{rejected:#?}");
    assert!(
        rejected.data["file"]
            .as_str()
            .unwrap()
            .ends_with("plugins/stamp.wasm"),
        "{rejected:#?}"
    );
    assert!(
        rejected.data["reason"]
            .as_str()
            .unwrap()
            .contains("not a valid component"),
        "{rejected:#?}"
    );
    assert_eq!(rejected.data["kept_version"], "1.0.0");

    let plugins = server.get_json("/api/plugins");
    let stamp = listed(&plugins, "stamp").expect("the old version is still listed");
    assert_eq!(stamp["version"], "1.0.0");
    let listed = plugins["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("stamp.wasm"))
        .expect("stamp.wasm among the rejected files");
    assert_eq!(listed["kept_version"], "1.0.0");

    // Not WebAssembly at all.
    std::fs::write(stamp_file(&fx), b"<html>502 Bad Gateway</html>").unwrap();
    let rejected = sse.until(is_plugin_event).pop().unwrap();
    assert_eq!(rejected.kind, "plugin_rejected", "{rejected:#?}");
    assert!(
        rejected.data["reason"]
            .as_str()
            .unwrap()
            .contains("is not WebAssembly"),
        "{rejected:#?}"
    );

    // A plugin built against a contract version this weir does not support.
    std::fs::copy(test_plugin("future-contract"), stamp_file(&fx)).unwrap();
    let rejected = sse.until(is_plugin_event).pop().unwrap();
    assert_eq!(rejected.kind, "plugin_rejected", "{rejected:#?}");
    assert!(
        rejected.data["reason"].as_str().unwrap().contains(
            "exports weir:plugin/transformer@0.9.0, but this weir supports weir:plugin@0.1.0, 0.2.0"
        ),
        "{rejected:#?}"
    );
    assert_eq!(rejected.data["kept_version"], "1.0.0");

    // The pipeline still runs, on the version loaded before.
    let pipelines = server.get_json("/api/pipelines");
    assert_eq!(pipelines["pipelines"][0]["status"], "idle", "{pipelines}");
    let run = server.trigger("stamped");
    let events = sse.until(|e| ends_run(e, Some(&run)));
    assert_eq!(events.last().unwrap().kind, "run_completed", "{events:#?}");
    assert_eq!(stamps(&fx, 0..10), [("1.0.0".to_owned(), 10)]);

    // A good file replaces the old version and clears the rejection.
    std::fs::copy(test_plugin("stamp_v2"), stamp_file(&fx)).unwrap();
    let replaced = sse.until(is_plugin_event).pop().unwrap();
    assert_eq!(replaced.kind, "plugin_replaced", "{replaced:#?}");
    assert_eq!(
        (&replaced.data["old_version"], &replaced.data["new_version"]),
        (&"1.0.0".into(), &"2.0.0".into())
    );
    let plugins = server.get_json("/api/plugins");
    assert_eq!(plugins["rejected"], serde_json::json!([]));

    let (_, output) = server.stop();
    assert!(
        output.contains("plugin rejected:")
            && output.contains("stamp.wasm")
            && output.contains("1.0.0 loaded earlier keeps serving"),
        "the log says which file and why:\n{output}"
    );
}

#[test]
fn a_removed_plugin_makes_its_pipeline_invalid_and_the_next_trigger_fail_clearly() {
    let fx = stamp_fixture(true, 0);
    fx.write("inbox/a.csv", csv(0..10));
    let server = Server::start(&fx);
    let mut sse = server.events("", None);

    std::fs::remove_file(stamp_file(&fx)).unwrap();
    let events = sse.until(|e| e.kind == "pipeline_invalid");
    let removed = events
        .iter()
        .find(|e| e.kind == "plugin_removed")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(removed.data["plugin"], "stamp");
    assert_eq!(removed.data["version"], "1.0.0");
    assert_eq!(removed.data["used_by"], serde_json::json!(["stamped"]));
    let invalid = events.last().unwrap();
    assert_eq!(invalid.data["pipeline"], "stamped");
    let error = invalid.data["error"].as_str().unwrap();
    assert!(
        error.contains("unknown transformer plugin \"stamp\""),
        "{error}"
    );

    let pipelines = server.get_json("/api/pipelines");
    assert_eq!(
        pipelines["pipelines"][0]["status"], "invalid",
        "{pipelines}"
    );
    let refused = server.request("POST", "/api/pipelines/stamped/runs", true);
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("unknown transformer plugin \\\"stamp\\\""),
        "{}",
        refused.body
    );
    let skipped = sse.until(|e| e.kind == "run_skipped").pop().unwrap();
    assert!(
        skipped.data["reason"]
            .as_str()
            .unwrap()
            .starts_with("manual trigger: pipeline \"stamped\" cannot run"),
        "{skipped:#?}"
    );
    assert!(listed(&server.get_json("/api/plugins"), "stamp").is_none());

    // Dropping a plugin of that name back in makes the pipeline valid again.
    std::fs::copy(test_plugin("stamp_v2"), fx.path("plugins/stamp-2.wasm")).unwrap();
    let events = sse.until(|e| e.kind == "pipeline_valid");
    let loaded = events
        .iter()
        .find(|e| e.kind == "plugin_loaded")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(loaded.data["version"], "2.0.0");
    let run = server.trigger("stamped");
    let events = sse.until(|e| ends_run(e, Some(&run)));
    assert_eq!(events.last().unwrap().kind, "run_completed", "{events:#?}");
    assert_eq!(stamps(&fx, 0..10), [("2.0.0".to_owned(), 10)]);
}

#[test]
fn a_plugin_file_written_in_chunks_is_loaded_once_whole() {
    // No stamp at start: the pipeline waits for it.
    let fx = stamp_fixture(false, 0);
    fx.write("inbox/a.csv", csv(0..10));
    let server = Server::start(&fx);
    assert_eq!(
        server.get_json("/api/pipelines")["pipelines"][0]["status"],
        "invalid"
    );
    let mut sse = server.events("", None);

    // Eight chunks, 150 ms apart: a slow copy, each pause shorter than the watcher's 500 ms
    // settle time. Loading any prefix of the file would be rejected as an invalid component.
    let bytes = std::fs::read(test_plugin("stamp_v2")).unwrap();
    let mut file = std::fs::File::create(stamp_file(&fx)).unwrap();
    for chunk in bytes.chunks(bytes.len().div_ceil(8)) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    drop(file);

    let events = sse.until(|e| e.kind == "pipeline_valid");
    let plugin_events: Vec<&SseEvent> = events.iter().filter(|e| is_plugin_event(e)).collect();
    assert_eq!(plugin_events.len(), 1, "{plugin_events:#?}");
    assert_eq!(plugin_events[0].kind, "plugin_loaded");
    assert_eq!(plugin_events[0].data["plugin"], "stamp");
    assert_eq!(plugin_events[0].data["version"], "2.0.0");

    // Nothing more is loaded for it afterwards: a run goes through with only run events.
    let run = server.trigger("stamped");
    let events = sse.until(|e| ends_run(e, Some(&run)));
    assert!(events.iter().all(|e| !is_plugin_event(e)), "{events:#?}");
    assert_eq!(events.last().unwrap().kind, "run_completed", "{events:#?}");
    assert_eq!(stamps(&fx, 0..10), [("2.0.0".to_owned(), 10)]);
}

#[test]
fn a_plugin_removed_during_a_run_serves_that_run_to_the_end() {
    // 10 batches of 50, 200 ms each: the file is deleted after the first.
    let fx = stamp_fixture(true, 200);
    fx.write("inbox/a.csv", csv(0..500));
    let server = Server::start(&fx);
    let mut sse = server.events("", None);
    let run = server.trigger("stamped");
    sse.until(|e| e.kind == "batch_committed" && e.run() == Some(run.as_str()));

    std::fs::remove_file(stamp_file(&fx)).unwrap();
    let events = sse.until(|e| ends_run(e, Some(&run)));
    assert_eq!(events.last().unwrap().kind, "run_completed", "{events:#?}");
    let removed = events.iter().position(|e| e.kind == "plugin_removed");
    assert!(
        removed.is_some_and(|at| at < events.len() - 1),
        "the removal must land while the run is going: {events:#?}"
    );
    assert_eq!(stamps(&fx, 0..500), [("1.0.0".to_owned(), 500)]);
    // Only the next trigger fails.
    let refused = server.request("POST", "/api/pipelines/stamped/runs", true);
    assert_eq!(refused.status, 409, "{}", refused.body);
}
