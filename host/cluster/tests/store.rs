//! The cluster's event log and run records against a real PostgreSQL server: two hosts write at
//! once into one numbering, each sees the other's events, run records add up whatever order
//! the hosts' events arrive in, and a database restart loses and doubles nothing.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{PgServer, eventually};
use weir_cluster::{Cluster, ClusterOptions, PgStore};
use weir_store::{
    EventFilter, PartitionStatus, Record, Retention, RunChange, RunStatus, StateStore, StoredEvent,
    Totals,
};

async fn host(server: &PgServer, id: &str) -> (Cluster, PgStore) {
    let options = ClusterOptions {
        url: server.url(),
        password: None,
        host_id: id.to_owned(),
        lease: Duration::from_secs(30),
    };
    let cluster = Cluster::join(&options, "0.1.0", &BTreeMap::new())
        .await
        .unwrap();
    let store = cluster.open_store(Retention::default()).await.unwrap();
    (cluster, store)
}

/// An event as the bus would hand it to the store (`id`: the bus's number for it).
fn record(
    id: u64,
    run: Option<&str>,
    partition: Option<&str>,
    kind: &str,
    change: RunChange,
) -> Record {
    Record {
        event: StoredEvent {
            id,
            time_ms: 1_700_000_000_000 + id as i64,
            pipeline: Some("sales".into()),
            run: run.map(str::to_owned),
            partition: partition.map(str::to_owned),
            kind: kind.into(),
            data: format!(r#"{{"id":{id},"time":0,"type":"{kind}"}}"#),
        },
        change,
    }
}

fn batch(rows: u64, checkpoint: &str) -> RunChange {
    RunChange::Batch {
        rows_read: rows,
        rows_loaded: rows - 1,
        rows_rejected: 1,
        rows_filtered: 0,
        bytes: rows * 10,
        checkpoint: checkpoint.into(),
        counters: BTreeMap::new(),
        destinations: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_write_one_numbering_and_each_streams_the_others_events() {
    let server = PgServer::start();
    let (_a, store_a) = host(&server, "a").await;
    let (_b, store_b) = host(&server, "b").await;
    let mut feed_a = store_a.shared_feed().expect("a shared log");
    assert_eq!(store_a.first_bus_id(), 1);

    // Both hosts write 300 events each, interleaved, each numbering its own from 1.
    let writers = [(&store_a, "a"), (&store_b, "b")].map(|(store, name)| async move {
        for i in 1..=300u64 {
            store.record(record(
                i,
                None,
                None,
                &format!("note_{name}"),
                RunChange::None,
            ));
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        store.flush().await;
    });
    futures_util::future::join_all(writers).await;

    // A learns of B's events through the feed, without reading anything itself.
    feed_a
        .wait_for(|&newest| newest == 600)
        .await
        .expect("the feed follows the log");
    // B's own view of the newest id follows the same way (its feed may lag A's by a note).
    store_b
        .shared_feed()
        .expect("b shared log")
        .wait_for(|&newest| newest == 600)
        .await
        .expect("b's feed follows the log");
    assert_eq!(store_b.newest_event_id(), 600);

    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store_b
            .events_after(after, EventFilter::default(), 256)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        all.extend(page);
    }
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=600).collect::<Vec<_>>(), "one gapless numbering");
    for event in &all {
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["id"], event.id, "the JSON carries the log's id");
        let host = if event.kind == "note_a" { "a" } else { "b" };
        assert_eq!(data["host"], host);
    }
    // Each host's own events keep their order within the shared numbering.
    for kind in ["note_a", "note_b"] {
        assert_eq!(all.iter().filter(|e| e.kind == kind).count(), 300);
    }
    // Replay after any id from either host gives the rest, as Last-Event-ID needs.
    let rest = store_a
        .events_after(599, EventFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), vec![600]);
    assert_eq!(store_a.oldest_event_id().await.unwrap(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_records_add_up_the_batches_of_every_host_in_any_order() {
    let server = PgServer::start();
    let (_a, store_a) = host(&server, "a").await;
    let (_b, store_b) = host(&server, "b").await;
    let run = Some("r1");

    // B's batch is stored before A's run start arrives: nothing is lost.
    store_b.record(record(
        1,
        run,
        Some("p2"),
        "worker_started",
        RunChange::WorkerStarted { checkpoint: None },
    ));
    store_b.record(record(
        2,
        run,
        Some("p2"),
        "batch_committed",
        batch(10, "p2@10"),
    ));
    store_b.flush().await;
    store_a.record(record(
        1,
        run,
        None,
        "run_started",
        RunChange::Started {
            trigger: "manual".into(),
            partitions: 2,
            plugins: BTreeMap::from([("csv-extract".into(), "0.2.0".into())]),
        },
    ));
    store_a.record(record(
        2,
        run,
        Some("p1"),
        "batch_committed",
        batch(5, "p1@5"),
    ));
    store_a.record(record(
        3,
        run,
        Some("p1"),
        "worker_completed",
        RunChange::WorkerEnded {
            status: PartitionStatus::Completed,
            error: None,
            totals: None,
        },
    ));
    store_a.flush().await;
    store_b.record(record(
        3,
        run,
        Some("p2"),
        "batch_committed",
        batch(4, "p2@14"),
    ));
    store_b.record(record(
        4,
        run,
        Some("p2"),
        "worker_completed",
        RunChange::WorkerEnded {
            status: PartitionStatus::Completed,
            error: None,
            totals: Some(Totals {
                rows_read: 4,
                rows_loaded: 3,
                rows_rejected: 1,
            }),
        },
    ));
    store_b.flush().await;

    let (run_record, partitions) = store_a.run("r1".into()).await.unwrap().expect("the run");
    assert_eq!(run_record.status, "running");
    assert_eq!(run_record.trigger.as_deref(), Some("manual"));
    assert_eq!(run_record.partitions, Some(2));
    assert_eq!(
        (
            run_record.rows_read,
            run_record.rows_loaded,
            run_record.rows_rejected
        ),
        (19, 16, 3)
    );
    assert_eq!((run_record.batches, run_record.bytes), (3, 190));
    assert_eq!(
        run_record.started_ms, 1_700_000_000_001,
        "the earliest event's time"
    );
    let by_partition: BTreeMap<&str, _> = partitions
        .iter()
        .map(|p| (p.partition.as_str(), p))
        .collect();
    let p2 = by_partition["p2"];
    assert_eq!(
        p2.host.as_deref(),
        Some("b"),
        "the host that ran it is recorded"
    );
    // B's worker totals cover only its last attempt; the batches' sum is kept.
    assert_eq!(
        (p2.rows_read, p2.batches, p2.status.as_str()),
        (14, 2, "completed")
    );
    assert_eq!(p2.checkpoint.as_deref(), Some("p2@14"));
    assert_eq!(by_partition["p1"].host.as_deref(), Some("a"));

    store_a.record(record(
        4,
        run,
        None,
        "run_completed",
        RunChange::Ended {
            status: RunStatus::Completed,
            error: None,
            totals: Totals {
                rows_read: 19,
                rows_loaded: 16,
                rows_rejected: 3,
            },
        },
    ));
    store_a.flush().await;
    let runs = store_b.runs(Some("sales".into()), 10, 0).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "completed");
    assert!(runs[0].ended_ms.is_some());
    assert_eq!(
        store_b
            .last_runs(vec!["sales".into(), "none".into()])
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_written_while_the_database_restarts_are_stored_once() {
    let server = PgServer::start();
    let (_a, store) = host(&server, "a").await;
    for i in 1..=10 {
        store.record(record(i, None, None, "before", RunChange::None));
    }
    store.flush().await;
    let mut feed = store.shared_feed().unwrap();
    feed.wait_for(|&n| n == 10).await.unwrap();

    server.stop();
    for i in 11..=30 {
        store.record(record(i, None, None, "during", RunChange::None));
    }
    // Nothing can be stored while the server is down: the writer holds the events.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), store.flush())
            .await
            .is_err()
    );
    server.start_again();
    store.flush().await;
    // The feed reconnects and catches up too.
    feed.wait_for(|&n| n == 30).await.unwrap();
    let ids = eventually(
        "the events after the restart",
        Duration::from_secs(10),
        async || {
            let events = store
                .events_after(0, EventFilter::default(), 100)
                .await
                .ok()?;
            (events.len() >= 30).then_some(())?;
            Some(events.iter().map(|e| e.id).collect::<Vec<_>>())
        },
    )
    .await;
    assert_eq!(
        ids,
        (1..=30).collect::<Vec<_>>(),
        "nothing lost, nothing doubled"
    );
    assert_eq!(
        server.psql("SELECT count(DISTINCT origin_seq) || '/' || count(*) FROM weir_events"),
        "30/30"
    );
}
