//! The event writer of one host: stores its events in batches of up to `MAX_BATCH` per
//! transaction, with ids from the cluster's counter, and applies their run changes in the same
//! transaction (as the SQLite writer does, but every statement written so that hosts' events
//! about one run may arrive in any order).
//!
//! The database may be down (restarted, failed over): a batch is retried until it is stored,
//! and a batch whose commit succeeded but whose reply was lost is recognised by its origin
//! numbers and not stored twice.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_postgres::Transaction;
use weir_store::{Record, Retention, RunChange, RunDetails, RunStatus};

use crate::db::Db;

/// Events per transaction at most.
const MAX_BATCH: usize = 512;

/// How long one batch may take to store.
pub(super) const DEADLINE: Duration = Duration::from_secs(20);

/// How long the writer waits for more events after the first of a transaction. Every event
/// transaction of every host takes the one counter row in turn and waits for a WAL flush, so
/// one per event (one per batch committed) was most of what a cluster cost the database; a
/// few tens of milliseconds gather a busy host's events into one transaction, and delay an
/// idle host's events on the other hosts' streams by as much.
const LINGER: Duration = Duration::from_millis(50);

/// The longest wait between attempts while the database is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Who writes.
pub(super) struct Origin {
    /// The host id, stored with each event and each partition it ran.
    pub host: String,
    /// Host id and incarnation: unique per process.
    pub origin: String,
}

pub(super) fn spawn(
    db: Db,
    origin: Origin,
    retention: Retention,
    persisted: watch::Sender<u64>,
    feed: watch::Sender<u64>,
) -> mpsc::UnboundedSender<Record> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(db, origin, retention, rx, persisted, feed));
    tx
}

async fn run(
    db: Db,
    origin: Origin,
    retention: Retention,
    mut rx: mpsc::UnboundedReceiver<Record>,
    persisted: watch::Sender<u64>,
    feed: watch::Sender<u64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            let room = MAX_BATCH - batch.len();
            match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                Ok(n) if n > 0 => {}
                // The linger is over, or the sender is gone (shutdown): store what is here.
                _ => break,
            }
        }
        let newest_local = batch.iter().map(|r| r.event.id).max().unwrap_or(0);
        let mut backoff = Duration::from_millis(50);
        let mut failures = 0u32;
        loop {
            match store(&db, &origin, &batch, retention, failures > 0).await {
                Ok(newest) => {
                    if failures > 0 {
                        tracing::info!(
                            events = batch.len(),
                            "events stored in the cluster database again"
                        );
                    }
                    if let Some(newest) = newest {
                        feed.send_if_modified(|known| {
                            let advanced = newest > *known;
                            *known = (*known).max(newest);
                            advanced
                        });
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    // Said once per outage, not once per attempt.
                    if failures == 1 {
                        tracing::error!(
                            events = batch.len(),
                            "cannot store events in the cluster database; retrying until it \
                             answers: {e}"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        batch.clear();
        persisted.send_if_modified(|done| {
            let advanced = newest_local > *done;
            *done = (*done).max(newest_local);
            advanced
        });
    }
}

/// Store one batch; the newest id it was given. `retrying`: an earlier attempt may have
/// committed without the reply arriving, so events already stored are left out.
async fn store(
    db: &Db,
    origin: &Origin,
    batch: &[Record],
    retention: Retention,
    retrying: bool,
) -> anyhow::Result<Option<u64>> {
    let conn = db.conn().await?;
    let newest = conn
        .run("storing events", async |c| {
            let tx = c.transaction().await?;
            let mut records: Vec<&Record> = batch.iter().collect();
            if retrying {
                let stored: i64 = tx
                    .query_one(
                        "SELECT coalesce(max(origin_seq), 0) FROM weir_events WHERE origin = $1",
                        &[&origin.origin],
                    )
                    .await?
                    .get(0);
                records.retain(|r| r.event.id as i64 > stored);
            }
            if records.is_empty() {
                return Ok(None);
            }
            // The counter row stays locked until COMMIT: transactions of all hosts store
            // events one after the other, in id order.
            let last: i64 = tx
                .query_one(
                    "UPDATE weir_event_ids SET last_id = last_id + $1 RETURNING last_id",
                    &[&(records.len() as i64)],
                )
                .await?
                .get(0);
            let first = last - records.len() as i64 + 1;
            let mut ids = Vec::with_capacity(records.len());
            let (mut times, mut pipelines, mut runs, mut partitions) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut kinds, mut datas, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
            for (i, record) in records.iter().enumerate() {
                let e = &record.event;
                let id = first + i as i64;
                ids.push(id);
                times.push(e.time_ms);
                pipelines.push(e.pipeline.as_deref());
                runs.push(e.run.as_deref());
                partitions.push(e.partition.as_deref());
                kinds.push(e.kind.as_str());
                datas.push(restamp(&e.data, id, &origin.host));
                seqs.push(e.id as i64);
            }
            tx.execute(
                "INSERT INTO weir_events (id, time_ms, pipeline, run, partition, kind, data, host,
                     origin, origin_seq)
                 SELECT id, time_ms, pipeline, run, partition, kind, data, $8, $9, origin_seq
                 FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $10::int8[])
                     AS e(id, time_ms, pipeline, run, partition, kind, data, origin_seq)",
                &[
                    &ids,
                    &times,
                    &pipelines,
                    &runs,
                    &partitions,
                    &kinds,
                    &datas,
                    &origin.host,
                    &origin.origin,
                    &seqs,
                ],
            )
            .await?;
            let mut new_runs = false;
            // Consecutive batches are summed per partition and applied once: the run's row is
            // the one every host of the run updates, and one batch event per batch made it
            // most of what a cluster costs the database. Any other change applies the sums
            // before it, so the order of changes holds.
            let mut sums = BatchSums::default();
            for record in &records {
                new_runs |= matches!(record.change, RunChange::Started { .. });
                if sums.add(record) {
                    continue;
                }
                sums.apply(&tx, &origin.host).await?;
                apply(&tx, record, &origin.host).await?;
            }
            sums.apply(&tx, &origin.host).await?;
            tx.execute(
                "DELETE FROM weir_events WHERE id <= $1",
                &[&(last - retention.events as i64)],
            )
            .await?;
            if new_runs {
                prune_runs(&tx, retention.runs).await?;
            }
            // Delivered to listeners when (and only if) the transaction commits.
            tx.execute("SELECT pg_notify('weir_events', $1)", &[&last.to_string()])
                .await?;
            tx.commit().await?;
            Ok(Some(last as u64))
        })
        .await?;
    Ok(newest)
}

/// The event's JSON with the log's id in place of the bus's, and the host that wrote it.
fn restamp(data: &str, id: i64, host: &str) -> String {
    let host = serde_json::to_string(host).unwrap_or_else(|_| "\"\"".into());
    // `SyncEvent` serializes its id first: the common case is a splice, not a parse.
    if let Some(rest) = data.strip_prefix("{\"id\":") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(',') {
            return format!("{{\"id\":{id},\"host\":{host}{}", &rest[digits..]);
        }
    }
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("id".into(), id.into());
            map.insert(
                "host".into(),
                serde_json::from_str(&host).unwrap_or_default(),
            );
            serde_json::Value::Object(map).to_string()
        }
        _ => data.to_owned(),
    }
}

async fn apply(
    tx: &Transaction<'_>,
    record: &Record,
    host: &str,
) -> Result<(), tokio_postgres::Error> {
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
            tx.execute(
                "INSERT INTO weir_runs (id, pipeline, trigger, status, started_ms, partitions,
                     plugins, host)
                 VALUES ($1, $2, $3, 'running', $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET trigger = $3, partitions = $5, plugins = $6,
                     host = $7, started_ms = least(weir_runs.started_ms, $4)",
                &[
                    &run,
                    &pipeline,
                    trigger,
                    &e.time_ms,
                    &(*partitions as i64),
                    &plugins,
                    &host,
                ],
            )
            .await?;
        }
        RunChange::WorkerStarted { checkpoint } => {
            if let Some(partition) = partition {
                tx.execute(
                    "INSERT INTO weir_run_partitions (run_id, partition, status, checkpoint, host)
                     VALUES ($1, $2, 'running', $3, $4)
                     ON CONFLICT (run_id, partition) DO UPDATE SET status = 'running', host = $4",
                    &[&run, &partition, checkpoint, &host],
                )
                .await?;
            }
        }
        // Summed by `BatchSums` before they get here.
        RunChange::Batch { .. } => {
            if let Some(sum) = BatchSum::of(record) {
                apply_batches(tx, pipeline, run, partition, &sum, host).await?;
            }
        }
        RunChange::Http { connection, usage } => {
            merge_details(tx, run, |details| {
                *details.http.entry(connection.clone()).or_default() += *usage;
            })
            .await?;
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
                // The worker's own totals are authoritative for its attempts on this host;
                // on a takeover they are the new host's, and the batches' sums stay in the
                // run's totals.
                Some(t) => {
                    tx.execute(
                        "INSERT INTO weir_run_partitions (run_id, partition, status, rows_read,
                             rows_loaded, rows_rejected, error, host)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (run_id, partition) DO UPDATE SET status = $3,
                             rows_read = greatest(weir_run_partitions.rows_read, $4),
                             rows_loaded = greatest(weir_run_partitions.rows_loaded, $5),
                             rows_rejected = greatest(weir_run_partitions.rows_rejected, $6),
                             error = $7, host = $8",
                        &[
                            &run,
                            &partition,
                            &status,
                            &(t.rows_read as i64),
                            &(t.rows_loaded as i64),
                            &(t.rows_rejected as i64),
                            error,
                            &host,
                        ],
                    )
                    .await?
                }
                None => {
                    tx.execute(
                        "INSERT INTO weir_run_partitions (run_id, partition, status, error, host)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (run_id, partition) DO UPDATE SET status = $3, error = $4,
                             host = $5",
                        &[&run, &partition, &status, error, &host],
                    )
                    .await?
                }
            };
        }
        RunChange::Ended {
            status,
            error,
            totals,
        } => {
            tx.execute(
                "INSERT INTO weir_runs (id, pipeline, status, started_ms, ended_ms, rows_read,
                     rows_loaded, rows_rejected, error, host)
                 VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET status = $3, ended_ms = $4,
                     -- The batches stored so far, or the end's sums if higher (the end may
                     -- come before other hosts' last batches; a host killed mid-run reported
                     -- no end for its partitions).
                     rows_read = greatest(weir_runs.rows_read, $5),
                     rows_loaded = greatest(weir_runs.rows_loaded, $6),
                     rows_rejected = greatest(weir_runs.rows_rejected, $7), error = $8",
                &[
                    &run,
                    &pipeline,
                    &status.as_str(),
                    &e.time_ms,
                    &(totals.rows_read as i64),
                    &(totals.rows_loaded as i64),
                    &(totals.rows_rejected as i64),
                    error,
                    &host,
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// The batches of one partition of a run, summed.
struct BatchSum {
    time_ms: i64,
    batches: i64,
    rows_read: i64,
    rows_loaded: i64,
    rows_rejected: i64,
    rows_filtered: i64,
    bytes: i64,
    /// The last batch's.
    checkpoint: String,
    counters: std::collections::BTreeMap<String, u64>,
    destinations: std::collections::BTreeMap<String, weir_store::DestinationCount>,
}

impl BatchSum {
    fn of(record: &Record) -> Option<Self> {
        let mut sum = Self {
            time_ms: record.event.time_ms,
            batches: 0,
            rows_read: 0,
            rows_loaded: 0,
            rows_rejected: 0,
            rows_filtered: 0,
            bytes: 0,
            checkpoint: String::new(),
            counters: Default::default(),
            destinations: Default::default(),
        };
        sum.add(&record.change).then_some(sum)
    }

    fn add(&mut self, change: &RunChange) -> bool {
        let RunChange::Batch {
            rows_read,
            rows_loaded,
            rows_rejected,
            rows_filtered,
            bytes,
            checkpoint,
            counters,
            destinations,
        } = change
        else {
            return false;
        };
        self.batches += 1;
        self.rows_read += *rows_read as i64;
        self.rows_loaded += *rows_loaded as i64;
        self.rows_rejected += *rows_rejected as i64;
        self.rows_filtered += *rows_filtered as i64;
        self.bytes += *bytes as i64;
        self.checkpoint.clone_from(checkpoint);
        for (name, n) in counters {
            *self.counters.entry(name.clone()).or_default() += n;
        }
        for (name, count) in destinations {
            *self.destinations.entry(name.clone()).or_default() += *count;
        }
        true
    }
}

/// Which batches sum together: (pipeline, run, partition).
type SumKey = (String, String, Option<String>);

/// Consecutive batch changes of one writer transaction, summed per (pipeline, run, partition).
#[derive(Default)]
struct BatchSums {
    sums: Vec<(SumKey, BatchSum)>,
}

impl BatchSums {
    /// Take `record` if it is a batch of a run; `false` for any other change.
    fn add(&mut self, record: &Record) -> bool {
        let e = &record.event;
        let (Some(pipeline), Some(run)) = (&e.pipeline, &e.run) else {
            return false;
        };
        let key = (pipeline.clone(), run.clone(), e.partition.clone());
        if let Some((_, sum)) = self.sums.iter_mut().find(|(k, _)| *k == key) {
            return sum.add(&record.change);
        }
        let Some(sum) = BatchSum::of(record) else {
            return false;
        };
        self.sums.push((key, sum));
        true
    }

    /// Apply the sums held, and forget them.
    async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        host: &str,
    ) -> Result<(), tokio_postgres::Error> {
        for ((pipeline, run, partition), sum) in self.sums.drain(..) {
            apply_batches(tx, &pipeline, &run, partition.as_deref(), &sum, host).await?;
        }
        Ok(())
    }
}

/// Add batches of one partition to the run's and the partition's records.
async fn apply_batches(
    tx: &Transaction<'_>,
    pipeline: &str,
    run: &str,
    partition: Option<&str>,
    sum: &BatchSum,
    host: &str,
) -> Result<(), tokio_postgres::Error> {
    // Another host's batch may arrive before the run's start is stored: the record is made
    // here then, and the start fills in the rest. One may also arrive after the run's end
    // (its host's writer was slower than the run lease holder's): the end's totals, summed
    // over every partition, count it already.
    tx.execute(
        "INSERT INTO weir_runs (id, pipeline, status, started_ms, rows_read, rows_loaded,
             rows_rejected, batches, bytes, rows_filtered)
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $9, $7, $8)
         ON CONFLICT (id) DO UPDATE SET
             rows_read = weir_runs.rows_read
                 + CASE WHEN weir_runs.ended_ms IS NULL THEN $4 ELSE 0 END,
             rows_loaded = weir_runs.rows_loaded
                 + CASE WHEN weir_runs.ended_ms IS NULL THEN $5 ELSE 0 END,
             rows_rejected = weir_runs.rows_rejected
                 + CASE WHEN weir_runs.ended_ms IS NULL THEN $6 ELSE 0 END,
             batches = weir_runs.batches + $9, bytes = weir_runs.bytes + $7,
             rows_filtered = weir_runs.rows_filtered + $8",
        &[
            &run,
            &pipeline,
            &sum.time_ms,
            &sum.rows_read,
            &sum.rows_loaded,
            &sum.rows_rejected,
            &sum.bytes,
            &sum.rows_filtered,
            &sum.batches,
        ],
    )
    .await?;
    if !sum.counters.is_empty() || !sum.destinations.is_empty() {
        merge_details(tx, run, |details| {
            for (name, n) in &sum.counters {
                *details.counters.entry(name.clone()).or_default() += n;
            }
            for (name, count) in &sum.destinations {
                *details.destinations.entry(name.clone()).or_default() += *count;
            }
        })
        .await?;
    }
    if let Some(partition) = partition {
        tx.execute(
            "INSERT INTO weir_run_partitions (run_id, partition, status, rows_read,
                 rows_loaded, rows_rejected, batches, bytes, checkpoint, host)
             VALUES ($1, $2, 'running', $3, $4, $5, $9, $6, $7, $8)
             ON CONFLICT (run_id, partition) DO UPDATE SET
                 rows_read = weir_run_partitions.rows_read + $3,
                 rows_loaded = weir_run_partitions.rows_loaded + $4,
                 rows_rejected = weir_run_partitions.rows_rejected + $5,
                 batches = weir_run_partitions.batches + $9,
                 bytes = weir_run_partitions.bytes + $6, checkpoint = $7, host = $8",
            &[
                &run,
                &partition,
                &sum.rows_read,
                &sum.rows_loaded,
                &sum.rows_rejected,
                &sum.bytes,
                &sum.checkpoint,
                &host,
                &sum.batches,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Read a run's details, change them, write them back. The row is locked first: writers of
/// other hosts add to the same run.
async fn merge_details(
    tx: &Transaction<'_>,
    run: &str,
    change: impl FnOnce(&mut RunDetails),
) -> Result<(), tokio_postgres::Error> {
    let Some(row) = tx
        .query_opt(
            "SELECT details FROM weir_runs WHERE id = $1 FOR UPDATE",
            &[&run],
        )
        .await?
    else {
        return Ok(());
    };
    let mut details: RunDetails = row
        .get::<_, Option<String>>(0)
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    change(&mut details);
    if details.counters.is_empty() && details.destinations.is_empty() && details.http.is_empty() {
        return Ok(());
    }
    let text = serde_json::to_string(&details).unwrap_or_default();
    tx.execute(
        "UPDATE weir_runs SET details = $2 WHERE id = $1",
        &[&run, &text],
    )
    .await?;
    Ok(())
}

/// Keep the newest `keep` runs (by start) and their partitions; runs in progress stay.
async fn prune_runs(tx: &Transaction<'_>, keep: u64) -> Result<(), tokio_postgres::Error> {
    let cutoff: Option<i64> = tx
        .query_opt(
            "SELECT started_ms FROM weir_runs ORDER BY started_ms DESC LIMIT 1 OFFSET $1",
            &[&(keep as i64)],
        )
        .await?
        .map(|r| r.get(0));
    if let Some(cutoff) = cutoff {
        let running = RunStatus::Running.as_str();
        tx.execute(
            "DELETE FROM weir_run_partitions WHERE run_id IN
             (SELECT id FROM weir_runs WHERE started_ms <= $1 AND status <> $2)",
            &[&cutoff, &running],
        )
        .await?;
        tx.execute(
            "DELETE FROM weir_runs WHERE started_ms <= $1 AND status <> $2",
            &[&cutoff, &running],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::restamp;

    #[test]
    fn the_log_id_and_host_replace_the_bus_id() {
        assert_eq!(
            restamp(r#"{"id":7,"time":1,"type":"run_started"}"#, 1234, "host-a"),
            r#"{"id":1234,"host":"host-a","time":1,"type":"run_started"}"#
        );
        // Another shape is parsed, not spliced.
        let other: serde_json::Value =
            serde_json::from_str(&restamp(r#"{"type":"x","id":3}"#, 9, "b\"c")).unwrap();
        assert_eq!(other["id"], 9);
        assert_eq!(other["host"], "b\"c");
        assert_eq!(other["type"], "x");
    }
}
