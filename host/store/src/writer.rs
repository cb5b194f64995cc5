//! The writer thread: stores events in batches of up to `MAX_BATCH` per transaction, applies
//! their run changes in the same transaction, prunes past the retention, and publishes the
//! newest id on disk.

use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use tokio::sync::watch;

use crate::{Record, Retention, RunChange, RunDetails, RunStatus};

/// Events per transaction at most: large enough to keep up with thousands of events a second
/// on a slow disk, small enough that readers see new events promptly.
const MAX_BATCH: usize = 512;

pub(crate) fn spawn(
    conn: Connection,
    retention: Retention,
    persisted: watch::Sender<u64>,
) -> std::io::Result<mpsc::Sender<Record>> {
    let (tx, rx) = mpsc::channel::<Record>();
    std::thread::Builder::new()
        .name("weir-state-writer".into())
        .spawn(move || run(conn, retention, &rx, &persisted))?;
    Ok(tx)
}

fn run(
    mut conn: Connection,
    retention: Retention,
    rx: &mpsc::Receiver<Record>,
    persisted: &watch::Sender<u64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let newest = batch.iter().map(|r| r.event.id).max().unwrap_or(0);
        if let Err(e) = write(&mut conn, &batch, retention) {
            tracing::error!(
                events = batch.len(),
                newest,
                "failed to write events to the state database: {e}"
            );
        }
        batch.clear();
        // Advanced even after an error, so nobody waits forever for events that will not come.
        persisted.send_if_modified(|done| {
            let advanced = newest > *done;
            *done = (*done).max(newest);
            advanced
        });
    }
}

fn write(conn: &mut Connection, batch: &[Record], retention: Retention) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut new_runs = false;
    for record in batch {
        let e = &record.event;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO events (id, time_ms, pipeline, run, partition, kind, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            e.id,
            e.time_ms,
            e.pipeline,
            e.run,
            e.partition,
            e.kind,
            e.data
        ])?;
        new_runs |= matches!(record.change, RunChange::Started { .. });
        apply(&tx, record)?;
    }
    if let Some(newest) = batch.iter().map(|r| r.event.id).max() {
        let keep_from = newest.saturating_sub(retention.events);
        tx.prepare_cached("DELETE FROM events WHERE id <= ?1")?
            .execute([keep_from])?;
    }
    if new_runs {
        prune_runs(&tx, retention.runs)?;
    }
    tx.commit()
}

fn apply(tx: &Transaction<'_>, record: &Record) -> rusqlite::Result<()> {
    let e = &record.event;
    let (Some(pipeline), Some(run)) = (e.pipeline.as_deref(), e.run.as_deref()) else {
        return Ok(());
    };
    let partition = e.partition.as_deref();
    match &record.change {
        RunChange::None => {}
        RunChange::Started {
            trigger,
            partitions,
            plugins,
        } => {
            let plugins = serde_json::to_string(plugins).unwrap_or_default();
            tx.prepare_cached(
                "INSERT INTO runs (id, pipeline, trigger, status, started_ms, partitions, plugins)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET trigger = ?3, partitions = ?5, plugins = ?6",
            )?
            .execute(params![
                run, pipeline, trigger, e.time_ms, partitions, plugins
            ])?;
        }
        RunChange::WorkerStarted { checkpoint } => {
            if let Some(partition) = partition {
                tx.prepare_cached(
                    "INSERT INTO run_partitions (run_id, partition, status, checkpoint)
                     VALUES (?1, ?2, 'running', ?3)
                     ON CONFLICT (run_id, partition) DO UPDATE SET status = 'running'",
                )?
                .execute(params![run, partition, checkpoint])?;
            }
        }
        RunChange::Batch {
            rows_read,
            rows_loaded,
            rows_rejected,
            rows_filtered,
            bytes,
            checkpoint,
            counters,
            destinations,
        } => {
            tx.prepare_cached(
                "UPDATE runs SET rows_read = rows_read + ?2, rows_loaded = rows_loaded + ?3,
                 rows_rejected = rows_rejected + ?4, batches = batches + 1,
                 bytes = bytes + ?5, rows_filtered = rows_filtered + ?6 WHERE id = ?1",
            )?
            .execute(params![
                run,
                rows_read,
                rows_loaded,
                rows_rejected,
                bytes,
                rows_filtered
            ])?;
            if !counters.is_empty() || !destinations.is_empty() {
                merge_details(tx, run, |details| {
                    for (name, n) in counters {
                        *details.counters.entry(name.clone()).or_default() += n;
                    }
                    for (name, count) in destinations {
                        *details.destinations.entry(name.clone()).or_default() += *count;
                    }
                })?;
            }
            if let Some(partition) = partition {
                tx.prepare_cached(
                    "INSERT INTO run_partitions (run_id, partition, status, rows_read,
                         rows_loaded, rows_rejected, batches, bytes, checkpoint)
                     VALUES (?1, ?2, 'running', ?3, ?4, ?5, 1, ?6, ?7)
                     ON CONFLICT (run_id, partition) DO UPDATE SET
                         rows_read = rows_read + ?3, rows_loaded = rows_loaded + ?4,
                         rows_rejected = rows_rejected + ?5, batches = batches + 1,
                         bytes = bytes + ?6, checkpoint = ?7",
                )?
                .execute(params![
                    run,
                    partition,
                    rows_read,
                    rows_loaded,
                    rows_rejected,
                    bytes,
                    checkpoint
                ])?;
            }
        }
        RunChange::Http { connection, usage } => {
            merge_details(tx, run, |details| {
                *details.http.entry(connection.clone()).or_default() += *usage;
            })?;
        }
        RunChange::WorkerEnded {
            status,
            error,
            totals,
        } => {
            let Some(partition) = partition else {
                return Ok(());
            };
            let status = status.as_str();
            match totals {
                // The worker's own totals are authoritative (they include every attempt).
                Some(t) => tx
                    .prepare_cached(
                        "INSERT INTO run_partitions (run_id, partition, status, rows_read,
                             rows_loaded, rows_rejected, error)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (run_id, partition) DO UPDATE SET status = ?3,
                             rows_read = ?4, rows_loaded = ?5, rows_rejected = ?6, error = ?7",
                    )?
                    .execute(params![
                        run,
                        partition,
                        status,
                        t.rows_read,
                        t.rows_loaded,
                        t.rows_rejected,
                        error
                    ])?,
                None => tx
                    .prepare_cached(
                        "INSERT INTO run_partitions (run_id, partition, status, error)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (run_id, partition) DO UPDATE SET status = ?3, error = ?4",
                    )?
                    .execute(params![run, partition, status, error])?,
            };
        }
        RunChange::Ended {
            status,
            error,
            totals,
        } => {
            // A run that failed before it started (e.g. listing partitions failed) has no
            // record yet: it gets one that starts and ends at this event.
            tx.prepare_cached(
                "INSERT INTO runs (id, pipeline, status, started_ms, ended_ms, rows_read,
                     rows_loaded, rows_rejected, error)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET status = ?3, ended_ms = ?4, rows_read = ?5,
                     rows_loaded = ?6, rows_rejected = ?7, error = ?8",
            )?
            .execute(params![
                run,
                pipeline,
                status.as_str(),
                e.time_ms,
                totals.rows_read,
                totals.rows_loaded,
                totals.rows_rejected,
                error
            ])?;
        }
    }
    Ok(())
}

/// Read a run's details, change them, write them back (inside the event's transaction).
fn merge_details(
    tx: &Transaction<'_>,
    run: &str,
    change: impl FnOnce(&mut RunDetails),
) -> rusqlite::Result<()> {
    let current: Option<Option<String>> = tx
        .prepare_cached("SELECT details FROM runs WHERE id = ?1")?
        .query_row([run], |r| r.get(0))
        .optional()?;
    let Some(current) = current else {
        return Ok(());
    };
    let mut details: RunDetails = current
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    change(&mut details);
    if details.is_empty() {
        return Ok(());
    }
    let text = serde_json::to_string(&details).unwrap_or_default();
    tx.prepare_cached("UPDATE runs SET details = ?2 WHERE id = ?1")?
        .execute(params![run, text])?;
    Ok(())
}

/// Keep the newest `keep` runs (by start) and their partitions.
fn prune_runs(tx: &Transaction<'_>, keep: u64) -> rusqlite::Result<()> {
    let cutoff: Option<i64> = tx
        .query_row(
            "SELECT started_ms FROM runs ORDER BY started_ms DESC LIMIT 1 OFFSET ?1",
            [keep],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if let Some(cutoff) = cutoff {
        tx.execute(
            "DELETE FROM run_partitions WHERE run_id IN
             (SELECT id FROM runs WHERE started_ms <= ?1 AND status != ?2)",
            params![cutoff, RunStatus::Running.as_str()],
        )?;
        tx.execute(
            "DELETE FROM runs WHERE started_ms <= ?1 AND status != ?2",
            params![cutoff, RunStatus::Running.as_str()],
        )?;
    }
    Ok(())
}
