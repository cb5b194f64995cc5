//! One read, two destinations: the portal pipeline (see `portal.rs`) into SQLite and a real
//! osmem-server. The subset is exact in both, scanned value by value; updates and deletes
//! reach both on the next run; each destination's rejects are its own; an unreachable or busy
//! index is retried until the run completes with nothing lost; `weir validate` states each
//! destination's guarantee.

use std::process::Stdio;
use std::time::{Duration, Instant};

use osmem_fixture::{Osmem, Proxy};
use serde_json::Value;

use crate::portal::*;
use crate::support::*;

fn fixture(search_url: &str, batch_size: usize, extra_load: &str, source: &Source) -> Fixture {
    let fx = Fixture::new();
    fx.config(&pipeline(search_url, batch_size, extra_load));
    fx.write("inbox/patients.csv", source.csv(0));
    fx
}

#[test]
fn the_subset_is_exact_in_both_destinations_and_counted_in_the_run_record() {
    let server = Osmem::start().unwrap();
    let source = Source::generate(400, 0, 0, 97);
    let fx = fixture(&server.url(), 64, "", &source);

    let validate = weir_command(&fx, &["validate"]).output().unwrap();
    let validate = Run(validate);
    validate.success();
    let out = validate.stdout();
    assert!(
        out.contains("pipeline portal: ok, exactly-once: rows, rejects and checkpoints commit together in database portal (1 partitions); opensearch-load is idempotent by external version"),
        "{out}"
    );
    assert!(
        out.contains("  destination sqlite-load → portal.patients: exactly-once (writes in the checkpoint's transaction in database portal)"),
        "{out}"
    );
    assert!(
        out.contains(
            "  destination opensearch-load: exactly-once (a sink idempotent by external version"
        ),
        "{out}"
    );
    let (status, _) = server.client().request("HEAD", "/patients", None).unwrap();
    assert_eq!(status, 404, "validate creates no index");

    let (run, events) = weir(&fx, &["run", "portal"]);
    run.success();
    let expected = source.expected(source.lines.len());
    assert!(
        expected.filtered > 50 && expected.rejects > 2,
        "the data has both"
    );
    assert_destinations_exact(&fx, &server, &expected);
    assert_nothing_leaves(&fx, &server, &source);

    // Counts: per destination, filtered rows, masked fields, in the events and the summary.
    let kept = expected.rows.len() as u64;
    assert_eq!(destination_total(&events, SQL, "loaded"), kept);
    assert_eq!(destination_total(&events, INDEX, "loaded"), kept);
    assert_eq!(destination_total(&events, INDEX, "rejected"), 0);
    let filtered: u64 = events.iter().filter_map(|e| e["filtered"].as_u64()).sum();
    assert_eq!(filtered, expected.filtered as u64);
    let counter = |name: &str| -> u64 {
        events
            .iter()
            .filter_map(|e| e["counters"][name].as_u64())
            .sum()
    };
    assert_eq!(counter("select-transform.masked.email"), kept);
    assert_eq!(counter("select-transform.masked.phone"), kept);
    assert_eq!(
        counter("select-transform.filtered.consent") + counter("select-transform.filtered.status"),
        expected.filtered as u64
    );
    let summary = run.stdout();
    // Read counts every record; loaded is the first destination's.
    assert_eq!(
        run.totals(),
        (source.lines.len() as u64, kept, expected.rejects as u64),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "destination opensearch-load: {kept} loaded, 0 rejected"
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "filtered out by transforms: {}",
            expected.filtered
        )),
        "{summary}"
    );
    // The rejects are the malformed lines, recorded once, by the extractor.
    let db = fx.db("portal.db");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM _weir_rejects WHERE stage = 'csv-extract'"
        ),
        expected.rejects as i64
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM _weir_rejects"),
        expected.rejects as i64
    );
    // The salt is a secret: in no output, event or log line.
    let all = format!(
        "{summary}{}{}",
        run.stderr(),
        serde_json::to_string(&events).unwrap()
    );
    assert!(!all.contains(SALT), "the salt leaked");
    // The FTS5 index answers by name; the search index answers the same question.
    let fts = count(
        &db,
        "SELECT count(*) FROM patients_fts WHERE patients_fts MATCH 'Hopper*'",
    );
    let hits = server
        .client()
        .search(
            "patients",
            serde_json::json!({"size": 1000, "query": {"prefix": {"last_name": "hopper"}}}),
        )
        .unwrap();
    assert!(fts > 0);
    assert_eq!(
        hits.len() as i64,
        fts,
        "both destinations find the same patients"
    );
}

#[test]
fn a_source_update_and_a_source_delete_reach_both_destinations_on_the_next_run() {
    let server = Osmem::start().unwrap();
    let source = Source::generate(120, 6, 5, 0);
    let first = 120;
    let fx = Fixture::new();
    fx.config(&pipeline(&server.url(), 50, ""));
    fx.write(
        "inbox/patients.csv",
        source
            .csv(0)
            .lines()
            .take(first + 1)
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );
    weir(&fx, &["run", "portal"]).0.success();
    let before = source.expected(first);
    assert_destinations_exact(&fx, &server, &before);

    // The practice system appends the changes: new values for some patients, tombstones for others.
    fx.append("inbox/patients.csv", source.csv(first));
    let (run, events) = weir(&fx, &["run", "portal"]);
    run.success();
    let after = source.expected(source.lines.len());
    assert!(after.deletes > 0);
    let deleted: Vec<i64> = before
        .rows
        .keys()
        .filter(|id| !after.rows.contains_key(id))
        .copied()
        .collect();
    let updated: Vec<i64> = after
        .rows
        .iter()
        .filter(|(id, (row, _))| before.rows.get(id).is_some_and(|(old, _)| old != row))
        .map(|(id, _)| *id)
        .collect();
    assert!(
        !deleted.is_empty() && !updated.is_empty(),
        "deleted {deleted:?}, updated {updated:?}"
    );
    assert_destinations_exact(&fx, &server, &after);
    // The index applied the deletes as deletes (not as documents marked deleted).
    let docs = index_docs(&server);
    for id in &deleted {
        assert!(
            !docs.contains_key(id),
            "document {id} was deleted at the source"
        );
    }
    for id in &updated {
        assert!(
            docs[id].1["last_name"]
                .as_str()
                .unwrap()
                .starts_with("Updated"),
            "{id}"
        );
    }
    let changes = (source.lines.len() - first) as u64;
    assert_eq!(
        destination_total(&events, INDEX, "loaded"),
        changes,
        "every change, once"
    );
    assert_eq!(destination_total(&events, SQL, "loaded"), changes);
}

#[test]
fn a_mapping_conflict_on_one_document_is_a_reject_for_that_row_in_that_destination_only() {
    let server = Osmem::start().unwrap();
    let mut source = Source::generate(40, 0, 0, 0);
    // The operator's mapping says rooms are numbers; one record's room is not.
    let odd = source
        .lines
        .iter_mut()
        .find_map(|l| match l {
            Line::Record(p) if p.consent == Some(true) && p.status == "active" && p.id > 10 => {
                Some(p)
            }
            _ => None,
        })
        .unwrap();
    odd.room = "B-4".into();
    let odd_id = odd.id;
    let mappings = r#", mappings = { properties = { room = { type = "integer" } } }"#;
    let fx = fixture(&server.url(), 16, mappings, &source);
    let (run, events) = weir(&fx, &["run", "portal"]);
    run.success();

    let expected = source.expected(source.lines.len());
    let kept = expected.rows.len() as u64;
    // SQLite has every row, the odd one too.
    let sql = sql_rows(&fx);
    assert_eq!(sql.len() as u64, kept);
    assert_eq!(sql[&odd_id]["room"], "B-4");
    // The index has every other one.
    let docs = index_docs(&server);
    assert_eq!(docs.len() as u64, kept - 1);
    assert!(!docs.contains_key(&odd_id));
    assert_eq!(destination_total(&events, INDEX, "rejected"), 1);
    assert_eq!(destination_total(&events, INDEX, "loaded"), kept - 1);
    assert_eq!(destination_total(&events, SQL, "rejected"), 0);
    assert_eq!(destination_total(&events, SQL, "loaded"), kept);
    let db = fx.db("portal.db");
    let (stage, line, reason): (String, i64, String) = db
        .query_row("SELECT stage, line, reason FROM _weir_rejects", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(stage, "opensearch-load");
    assert_eq!(line, odd_id + 1, "the record's source line");
    assert!(
        reason.starts_with("400 mapper_parsing_exception"),
        "{reason}"
    );
    assert!(
        run.stdout().contains(&format!(
            "destination opensearch-load: {} loaded, 1 rejected",
            kept - 1
        )),
        "{}",
        run.stdout()
    );
}

/// Run `weir run portal` in the background while `during` misbehaves the proxy; returns the
/// run's output and events.
fn run_through(fx: &Fixture, during: impl FnOnce(&EventsFile)) -> (Run, Vec<Value>) {
    let events = fx.path("events.jsonl");
    let _ = std::fs::remove_file(&events);
    let child = weir_command(fx, &["run", "portal", "--events", events.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    during(&EventsFile(events.clone()));
    let output = child.wait_with_output().unwrap();
    (Run(output), read_events(&events))
}

/// The events file of a run in progress.
struct EventsFile(std::path::PathBuf);

impl EventsFile {
    /// Wait (at most 60 s) until an event of `kind` for which `matches` holds was written.
    fn wait_for(&self, kind: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let events = read_events(&self.0);
            if let Some(e) = events.iter().find(|e| e["type"] == kind && matches(e)) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no such {kind} event within 60 s: {events:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_index_unreachable_mid_run_is_retried_and_the_run_completes_with_nothing_lost() {
    let server = Osmem::start().unwrap();
    let proxy = Proxy::start(server.addr()).unwrap();
    let source = Source::generate(1500, 0, 0, 0);
    // Small requests, so the outage lands in the middle of the run.
    let fx = fixture(&proxy.url(), 100, ", bulk_max_docs = 20", &source);
    // The index checks and a few bulk requests go through, then the cluster is gone.
    proxy.refuse_after(6);
    let (run, events) = run_through(&fx, |events| {
        proxy.wait_until_refusing();
        // The request in flight when the proxy stopped listening was cut off; the worker
        // retries, and keeps being refused until the index is back.
        let refused = events.wait_for("worker_retrying", |e| {
            e["error"]
                .as_str()
                .is_some_and(|m| m.contains("connection refused"))
        });
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("opensearch-load"),
            "{refused}"
        );
        proxy.pass();
    });
    run.success();
    let retries: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "worker_retrying")
        .collect();
    assert!(retries.len() >= 2, "cut off, then refused: {retries:?}");
    for r in &retries {
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("write: unavailable"),
            "a retryable error: {error}"
        );
    }
    let expected = source.expected(source.lines.len());
    assert_destinations_exact(&fx, &server, &expected);
    // What was committed before the outage went once: the retry resumed after it.
    assert_eq!(
        destination_total(&events, SQL, "loaded"),
        expected.rows.len() as u64
    );
    assert!(proxy.forwarded() > 6);
}

#[test]
fn a_cluster_answering_429_holds_the_worker_back_for_its_retry_after_then_completes() {
    let server = Osmem::start().unwrap();
    let proxy = Proxy::start(server.addr()).unwrap();
    let source = Source::generate(600, 0, 0, 0);
    let fx = fixture(&proxy.url(), 100, ", bulk_max_docs = 50", &source);
    proxy.answer_429_after(5, 2, 1);
    let (run, events) = weir(&fx, &["run", "portal"]);
    run.success();
    assert_eq!(proxy.answered_429(), 2);
    let retries: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "worker_retrying")
        .collect();
    assert!(!retries.is_empty(), "{events:?}");
    for r in &retries {
        assert!(r["error"].as_str().unwrap().contains("429"), "{r}");
        assert!(
            r["delay_ms"].as_u64().unwrap() >= 1000,
            "Retry-After: 1 is honoured: {r}"
        );
    }
    assert_destinations_exact(&fx, &server, &source.expected(source.lines.len()));
}
