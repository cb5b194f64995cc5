//! A batch the index acknowledged but the checkpoint never recorded is sent again: after a
//! kill -9 between the bulk write and the commit, and for every batch of a re-run from an
//! older checkpoint. External versions (the source line) make those replays change nothing:
//! the index never goes back to older data, and ends exactly as the source says.
//!
//! The kill lands between the two deterministically: the test holds the destination
//! database's write lock, so the worker's commit waits (SQLite's busy timeout) after the
//! sink's bulk request was answered, which the proxy in front of the server reports.

use std::process::{Child, Stdio};

use osmem_fixture::{Osmem, Proxy};

use crate::portal::*;
use crate::support::*;

/// `weir run portal` in the background, its output discarded (it is killed).
fn spawn_run(fx: &Fixture) -> Child {
    weir_command(fx, &["run", "portal"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Hold portal.db's write lock: readers go on, the worker's commit waits.
fn hold_write_lock(fx: &Fixture) -> rusqlite::Connection {
    let db = fx.db("portal.db");
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    db
}

/// Wait until the proxy saw `n` bulk requests answered in full in total, then SIGKILL `child`.
fn kill_after_bulk_answers(proxy: &Proxy, n: usize, mut child: Child) {
    proxy.wait_for_completed("the bulk request answered", |lines| {
        lines
            .iter()
            .filter(|l| l.starts_with("POST /_bulk"))
            .count()
            >= n
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "weir exited before it could be killed between the bulk write and the commit"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn bulk_requests(proxy: &Proxy) -> usize {
    proxy
        .completed()
        .iter()
        .filter(|l| l.starts_with("POST /_bulk"))
        .count()
}

/// The finish log's "N already there at this version or newer" and "N documents indexed".
fn sink_summary(events: &[serde_json::Value]) -> (u64, u64) {
    let message = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.contains("already there at this version or newer"))
        .unwrap_or_else(|| panic!("no summary from opensearch-load: {events:?}"));
    let number_before = |suffix: &str| -> u64 {
        let end = message.find(suffix).unwrap();
        let start = message[..end].trim_end().rfind(' ').unwrap() + 1;
        message[start..end].trim().parse().unwrap()
    };
    (
        number_before("documents indexed"),
        number_before("already there"),
    )
}

#[test]
fn a_batch_replayed_after_kill_9_between_the_bulk_write_and_the_commit_changes_nothing() {
    let server = Osmem::start().unwrap();
    let proxy = Proxy::start(server.addr()).unwrap();
    let source = Source::generate(200, 20, 10, 0);
    let first = 100;
    let fx = Fixture::new();
    fx.config(&pipeline(&proxy.url(), 40, ""));
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

    // The rest arrives; the next run's first batch reaches the index, then weir dies.
    fx.append("inbox/patients.csv", source.csv(first));
    let lock = hold_write_lock(&fx);
    let bulks = bulk_requests(&proxy);
    kill_after_bulk_answers(&proxy, bulks + 1, spawn_run(&fx));
    drop(lock);
    // The kill landed in between: the index has documents of the batch, SQLite does not.
    let last_committed_line = first as u64 + 1;
    let ahead: Vec<i64> = index_docs(&server)
        .into_iter()
        .filter(|(_, (version, _))| *version as u64 > last_committed_line)
        .map(|(id, _)| id)
        .collect();
    assert!(
        !ahead.is_empty(),
        "the killed run's bulk request reached the index"
    );
    assert_eq!(
        sql_rows(&fx).len(),
        before.rows.len(),
        "nothing of it committed to SQLite"
    );

    // The next run sends that batch again: version conflicts, nothing rewritten, nothing lost.
    let (run, events) = weir(&fx, &["run", "portal"]);
    run.success();
    let after = source.expected(source.lines.len());
    assert_destinations_exact(&fx, &server, &after);
    let (_, already) = sink_summary(&events);
    assert!(
        already >= ahead.len() as u64,
        "the replayed documents came back as version conflicts: {already} < {}",
        ahead.len()
    );
    let changes = (source.lines.len() - first - (after.filtered - before.filtered)) as u64;
    assert_eq!(
        destination_total(&events, SQL, "loaded"),
        changes,
        "every change once in SQLite"
    );
}

#[test]
fn a_re_run_from_an_older_checkpoint_never_puts_older_documents_back() {
    let server = Osmem::start().unwrap();
    let proxy = Proxy::start(server.addr()).unwrap();
    let source = Source::generate(150, 20, 10, 0);
    let batch = 40;
    let fx = Fixture::new();
    fx.config(&pipeline(&proxy.url(), batch, ""));
    fx.write("inbox/patients.csv", source.csv(0));
    weir(&fx, &["run", "portal"]).0.success();
    let expected = source.expected(source.lines.len());
    assert_destinations_exact(&fx, &server, &expected);
    let settled = index_docs(&server);
    // The first batch holds older versions of documents updated later and of deleted ones.
    let first_batch = source.expected(batch);
    assert!(
        first_batch
            .rows
            .iter()
            .any(|(id, (_, line))| settled.get(id).is_some_and(|(v, _)| *v as u64 > *line)),
        "the first batch has documents the source updated later"
    );
    assert!(
        first_batch.rows.keys().any(|id| !settled.contains_key(id)),
        "the first batch has documents the source deleted later"
    );

    // An operator starts over from the beginning; the first batch is sent, then weir dies.
    weir_command(&fx, &["checkpoints", "reset", "portal"])
        .output()
        .map(Run)
        .unwrap()
        .success();
    let lock = hold_write_lock(&fx);
    let bulks = bulk_requests(&proxy);
    kill_after_bulk_answers(&proxy, bulks + 1, spawn_run(&fx));
    drop(lock);
    assert_eq!(
        index_docs(&server),
        settled,
        "the replayed batch changed nothing in the index"
    );

    // The whole file again, to the end: nothing indexed anew, the index as it was.
    let (run, events) = weir(&fx, &["run", "portal"]);
    run.success();
    assert_eq!(index_docs(&server), settled);
    assert_destinations_exact(&fx, &server, &expected);
    let (indexed, already) = sink_summary(&events);
    assert_eq!(
        indexed, 0,
        "every document was already there at its version"
    );
    assert!(already >= expected.rows.len() as u64);
}
