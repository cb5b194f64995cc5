use super::*;

fn event(id: u64, run: Option<&str>, partition: Option<&str>, kind: &str) -> StoredEvent {
    StoredEvent {
        id,
        time_ms: 1_000 * id as i64,
        pipeline: Some("bank".into()),
        run: run.map(Into::into),
        partition: partition.map(Into::into),
        kind: kind.into(),
        data: format!("{{\"id\":{id},\"type\":\"{kind}\"}}"),
    }
}

fn record(store: &Store, id: u64, run: &str, partition: Option<&str>, change: RunChange) {
    let kind = match &change {
        RunChange::None => "worker_progress",
        RunChange::Started { .. } => "run_started",
        RunChange::WorkerStarted { .. } => "worker_started",
        RunChange::Batch { .. } => "batch_committed",
        RunChange::Http { .. } => "http_usage",
        RunChange::WorkerEnded { .. } => "worker_completed",
        RunChange::Ended { .. } => "run_completed",
    };
    store.record(Record {
        event: event(id, Some(run), partition, kind),
        change,
    });
}

fn batch(read: u64, loaded: u64, rejected: u64, checkpoint: &str) -> RunChange {
    RunChange::Batch {
        rows_read: read,
        rows_loaded: loaded,
        rows_rejected: rejected,
        // 100 bytes a row read, so totals are easy to check.
        bytes: read * 100,
        checkpoint: checkpoint.into(),
        rows_filtered: 0,
        counters: Default::default(),
        destinations: [(
            "load".to_owned(),
            DestinationCount {
                loaded,
                rejected: 0,
            },
        )]
        .into(),
    }
}

fn open(dir: &tempfile::TempDir, retention: Retention) -> Store {
    Store::open(&dir.path().join("state.db"), retention).unwrap()
}

#[tokio::test]
async fn run_records_are_derived_from_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Retention::default());
    record(
        &store,
        1,
        "r1",
        None,
        RunChange::Started {
            trigger: "manual".into(),
            partitions: 2,
            plugins: [("csv-extract".to_owned(), "0.1.0".to_owned())].into(),
        },
    );
    record(
        &store,
        2,
        "r1",
        Some("a.csv"),
        RunChange::WorkerStarted { checkpoint: None },
    );
    record(&store, 3, "r1", Some("a.csv"), batch(10, 9, 1, "c1"));
    record(&store, 4, "r1", Some("b.csv"), batch(5, 5, 0, "c2"));
    record(&store, 5, "r1", Some("a.csv"), batch(3, 3, 0, "c3"));
    record(
        &store,
        6,
        "r1",
        Some("b.csv"),
        RunChange::WorkerEnded {
            status: PartitionStatus::Failed,
            error: Some("boom".into()),
            totals: None,
        },
    );
    store.flush().await;

    let (run, partitions) = store.run("r1").unwrap().unwrap();
    assert_eq!(run.status, "running");
    assert_eq!(run.trigger.as_deref(), Some("manual"));
    assert_eq!(
        run.plugins,
        Some([("csv-extract".to_owned(), "0.1.0".to_owned())].into())
    );
    assert_eq!(run.started_ms, 1_000);
    assert_eq!(
        (
            run.rows_read,
            run.rows_loaded,
            run.rows_rejected,
            run.batches
        ),
        (18, 17, 1, 3)
    );
    assert_eq!(run.bytes, 1_800);
    assert_eq!(partitions.len(), 2);
    assert_eq!(partitions[0].partition, "a.csv");
    assert_eq!(
        (partitions[0].rows_read, partitions[0].batches),
        (13, 2),
        "{partitions:?}"
    );
    assert_eq!(partitions[0].checkpoint.as_deref(), Some("c3"));
    assert_eq!(partitions[0].bytes, 1_300);
    assert_eq!(partitions[1].status, "failed");
    assert_eq!(partitions[1].error.as_deref(), Some("boom"));
    assert_eq!(
        partitions[1].rows_loaded, 5,
        "a failure keeps what was committed"
    );

    record(
        &store,
        7,
        "r1",
        None,
        RunChange::Ended {
            status: RunStatus::Failed,
            error: Some("1 of 2 partitions failed".into()),
            totals: Totals {
                rows_read: 18,
                rows_loaded: 17,
                rows_rejected: 1,
            },
        },
    );
    store.flush().await;
    let run = store.last_run("bank").unwrap().unwrap();
    assert_eq!(run.status, "failed");
    assert_eq!(run.ended_ms, Some(7_000));
    assert_eq!(run.error.as_deref(), Some("1 of 2 partitions failed"));
}

#[tokio::test]
async fn a_run_that_fails_before_starting_still_gets_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Retention::default());
    record(
        &store,
        1,
        "r0",
        None,
        RunChange::Ended {
            status: RunStatus::Failed,
            error: Some("cannot list partitions".into()),
            totals: Totals::default(),
        },
    );
    store.flush().await;
    let (run, partitions) = store.run("r0").unwrap().unwrap();
    assert_eq!(
        (run.status.as_str(), run.trigger, run.ended_ms),
        ("failed", None, Some(1_000))
    );
    assert!(partitions.is_empty());
}

#[tokio::test]
async fn events_replay_in_order_with_filters_and_ids_continue_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir, Retention::default());
        assert_eq!(store.last_event_id(), 0);
        for id in 1..=6 {
            let run = if id % 2 == 0 { "even" } else { "odd" };
            store.record(Record {
                event: event(id, Some(run), None, "worker_progress"),
                change: RunChange::None,
            });
        }
        store.flush().await;
        assert_eq!(store.persisted(), 6);
        let all = store.events_after(2, &EventFilter::default(), 100).unwrap();
        assert_eq!(
            all.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![3, 4, 5, 6]
        );
        assert_eq!(all[0].data, r#"{"id":3,"type":"worker_progress"}"#);
        let filter = EventFilter {
            pipeline: Some("bank".into()),
            run: Some("even".into()),
        };
        let even = store.events_after(0, &filter, 2).unwrap();
        assert_eq!(even.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 4]);
        let other = EventFilter {
            pipeline: Some("other".into()),
            run: None,
        };
        assert!(store.events_after(0, &other, 10).unwrap().is_empty());
        assert!(filter.matches(Some("bank"), Some("even")));
        assert!(!filter.matches(Some("bank"), Some("odd")));
        assert!(!filter.matches(None, Some("even")));
    }
    let store = open(&dir, Retention::default());
    assert_eq!(store.last_event_id(), 6);
}

#[tokio::test]
async fn retention_keeps_the_newest_events_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        Retention {
            events: 10,
            runs: 3,
        },
    );
    for id in 1..=25 {
        record(
            &store,
            id,
            &format!("run{id:02}"),
            None,
            RunChange::Started {
                trigger: "schedule".into(),
                partitions: 1,
                plugins: Default::default(),
            },
        );
        // Runs that ended can be pruned; a running one never is.
        if id != 1 {
            store.record(Record {
                event: StoredEvent {
                    id: 100 + id,
                    ..event(
                        100 + id,
                        Some(&format!("run{id:02}")),
                        None,
                        "run_completed",
                    )
                },
                change: RunChange::Ended {
                    status: RunStatus::Completed,
                    error: None,
                    totals: Totals::default(),
                },
            });
        }
    }
    store.flush().await;
    assert_eq!(store.oldest_event_id().unwrap(), Some(116));
    let runs = store.runs(None, 100, 0).unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["run25", "run24", "run23", "run01"]);
}

#[tokio::test]
async fn runs_left_running_are_marked_interrupted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir, Retention::default());
        record(
            &store,
            1,
            "r1",
            None,
            RunChange::Started {
                trigger: "schedule".into(),
                partitions: 1,
                plugins: Default::default(),
            },
        );
        store.flush().await;
    }
    let store = open(&dir, Retention::default());
    let run = store.run("r1").unwrap().unwrap().0;
    assert_eq!(run.status, "interrupted");
    assert!(run.error.unwrap().contains("stopped"));
}

#[test]
fn rejects_are_paged_across_databases_that_have_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, rows: &[(&str, i64)]| {
        let path = dir.path().join(name);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE _weir_rejects (id INTEGER PRIMARY KEY, pipeline TEXT, partition TEXT,
             run_id TEXT, file TEXT, line INTEGER, stage TEXT, reason TEXT, raw TEXT,
             created_at TEXT DEFAULT 'now')",
        )
        .unwrap();
        for (run, line) in rows {
            conn.execute(
                "INSERT INTO _weir_rejects (pipeline, partition, run_id, file, line, stage,
                 reason, raw) VALUES ('bank', 'a.csv', ?1, 'a.csv', ?2, 'csv-extract', 'bad', 'x')",
                params![run, line],
            )
            .unwrap();
        }
        path
    };
    let one = make("one.db", &[("r1", 9), ("r1", 3), ("r2", 1)]);
    let two = make("two.db", &[("r1", 7)]);
    let plain = dir.path().join("plain.db");
    Connection::open(&plain).unwrap();
    let dbs = vec![
        ("one".to_owned(), one),
        ("missing".to_owned(), dir.path().join("missing.db")),
        ("plain".to_owned(), plain),
        ("two".to_owned(), two),
    ];
    let first = rejects_page(&dbs, "bank", "r1", 0, 2, &read_only).unwrap();
    assert_eq!(first.total, 3);
    assert_eq!(
        first
            .rejects
            .iter()
            .map(|r| (r.database.as_str(), r.line))
            .collect::<Vec<_>>(),
        vec![("one", Some(3)), ("one", Some(9))]
    );
    let second = rejects_page(&dbs, "bank", "r1", 2, 2, &read_only).unwrap();
    assert_eq!(second.total, 3);
    assert_eq!(second.rejects.len(), 1);
    assert_eq!(
        (second.rejects[0].database.as_str(), second.rejects[0].line),
        ("two", Some(7))
    );
    assert!(
        !dir.path().join("missing.db").exists(),
        "read-only: no file created"
    );
}

#[tokio::test]
async fn a_state_database_of_layout_1_gains_the_later_columns_and_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        // Layout 1 as the first release wrote it: the current tables without the new columns.
        let conn = schema::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE runs DROP COLUMN plugins;
             ALTER TABLE runs DROP COLUMN bytes;
             ALTER TABLE runs DROP COLUMN rows_filtered;
             ALTER TABLE runs DROP COLUMN details;
             ALTER TABLE run_partitions DROP COLUMN bytes;
             INSERT INTO runs (id, pipeline, trigger, status, started_ms, ended_ms)
                 VALUES ('old', 'bank', 'manual', 'completed', 1000, 2000);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path, Retention::default()).unwrap();
    let (old, _) = store.run("old").unwrap().unwrap();
    assert_eq!(
        (old.status.as_str(), old.plugins, old.bytes),
        ("completed", None, 0)
    );
    assert_eq!((old.rows_filtered, old.details), (0, Default::default()));
    record(
        &store,
        1,
        "new",
        None,
        RunChange::Started {
            trigger: "manual".into(),
            partitions: 1,
            plugins: [("stamp".to_owned(), "2.0.0".to_owned())].into(),
        },
    );
    store.flush().await;
    let (new, _) = store.run("new").unwrap().unwrap();
    assert_eq!(
        new.plugins,
        Some([("stamp".to_owned(), "2.0.0".to_owned())].into())
    );
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

fn read_only(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    Ok(rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?)
}
