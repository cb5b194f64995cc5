//! The cluster's tables, all named `weir_…` so they can share a database (and its default
//! schema) with anything else. `weir_cluster_schema` says which layout the database has; hosts
//! starting together create or migrate it one at a time, under a transaction-scoped lock.

use tokio_postgres::Client;

use crate::ClusterError;
use crate::db::Db;

/// 1: hosts, leases, fires, the event log, runs and their partitions.
/// 2: a queued partition's size, and the rows its holders committed.
pub(crate) const VERSION: i32 = 2;

/// The transaction-scoped advisory lock key that serializes migrations ("weirschm").
const MIGRATION_LOCK: i64 = 0x7765_6972_7363_686d;

const LAYOUT_1: &str = "
CREATE TABLE weir_hosts (
    host_id text PRIMARY KEY,
    -- A random id per process start: a second process with the same host id is told apart.
    incarnation text NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    -- Takes no new work (weir cluster drain).
    draining boolean NOT NULL DEFAULT false,
    -- Set by a clean shutdown.
    stopped_at timestamptz,
    -- The plugins in service on the host, name -> version (JSON).
    plugins text NOT NULL DEFAULT '{}'
);
-- One row per pipeline (partition '*': the run lease, one run per pipeline cluster-wide) and
-- per partition a run has queued. Rows are kept across runs so an epoch never goes back.
CREATE TABLE weir_leases (
    pipeline text NOT NULL,
    partition text NOT NULL,
    run_id text,
    -- run lease: idle | held; partition: queued | held | done
    state text NOT NULL,
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    claimed_at timestamptz,
    -- How a done partition ended (completed, failed, cancelled).
    outcome text,
    -- Run lease only: a host asked the run to stop.
    cancel_requested boolean NOT NULL DEFAULT false,
    PRIMARY KEY (pipeline, partition)
);
CREATE INDEX weir_leases_by_run ON weir_leases (pipeline, run_id, state);
-- A cron fire, claimed by the first host that sees it.
CREATE TABLE weir_fires (
    pipeline text NOT NULL,
    scheduled_ms bigint NOT NULL,
    host_id text NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline, scheduled_ms)
);
-- The event log. Ids come from the one-row counter below, whose row lock is held until the
-- writing transaction commits: events become visible in id order, so a reader that has seen
-- id N has seen every id before it (a SEQUENCE would let a later id commit first).
CREATE TABLE weir_event_ids (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_id bigint NOT NULL
);
INSERT INTO weir_event_ids (last_id) VALUES (0);
CREATE TABLE weir_events (
    id bigint PRIMARY KEY,
    time_ms bigint NOT NULL,
    pipeline text,
    run text,
    partition text,
    kind text NOT NULL,
    data text NOT NULL,
    host text NOT NULL,
    -- The writing process (host id and incarnation) and its own number for the event: a
    -- batch retried after a lost reply is recognised and not stored twice.
    origin text NOT NULL,
    origin_seq bigint NOT NULL
);
CREATE INDEX weir_events_by_pipeline ON weir_events (pipeline, id);
CREATE INDEX weir_events_by_run ON weir_events (run, id);
CREATE UNIQUE INDEX weir_events_by_origin ON weir_events (origin, origin_seq);
CREATE TABLE weir_runs (
    id text PRIMARY KEY,
    pipeline text NOT NULL,
    trigger text,
    status text NOT NULL,
    started_ms bigint NOT NULL,
    ended_ms bigint,
    partitions bigint,
    rows_read bigint NOT NULL DEFAULT 0,
    rows_loaded bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    rows_filtered bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    error text,
    plugins text,
    details text,
    -- The host that started the run.
    host text
);
CREATE INDEX weir_runs_by_pipeline ON weir_runs (pipeline, started_ms);
CREATE INDEX weir_runs_by_start ON weir_runs (started_ms);
CREATE TABLE weir_run_partitions (
    run_id text NOT NULL,
    partition text NOT NULL,
    status text NOT NULL,
    rows_read bigint NOT NULL DEFAULT 0,
    rows_loaded bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    bytes bigint NOT NULL DEFAULT 0,
    checkpoint text,
    error text,
    -- The host that ran it last, and the plugin versions it had (rolling upgrades).
    host text,
    plugins text,
    PRIMARY KEY (run_id, partition)
);
";

/// From layout 1 to 2.
const LAYOUT_2: &str = "
ALTER TABLE weir_leases
    ADD COLUMN size bigint,
    ADD COLUMN rows_read bigint NOT NULL DEFAULT 0,
    ADD COLUMN rows_loaded bigint NOT NULL DEFAULT 0,
    ADD COLUMN rows_rejected bigint NOT NULL DEFAULT 0;
";

/// Create the tables, or check they are of a layout this weir knows.
pub(crate) async fn migrate(db: &Db, client: &mut Client) -> Result<(), ClusterError> {
    let fail = |e: tokio_postgres::Error| db.query_error("creating the cluster tables", &e);
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS weir_cluster_schema (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            version integer NOT NULL
        )",
    )
    .await
    .map_err(fail)?;
    let found: Option<i32> = tx
        .query_opt("SELECT version FROM weir_cluster_schema", &[])
        .await
        .map_err(fail)?
        .map(|row| row.get(0));
    match found {
        Some(found) if found > VERSION => {
            return Err(ClusterError::NewerSchema {
                url: db.shown.clone(),
                found,
                known: VERSION,
            });
        }
        Some(VERSION) => {}
        Some(found) => {
            if found < 2 {
                tx.batch_execute(LAYOUT_2).await.map_err(fail)?;
            }
            tx.execute("UPDATE weir_cluster_schema SET version = $1", &[&VERSION])
                .await
                .map_err(fail)?;
        }
        None => {
            tx.batch_execute(LAYOUT_1).await.map_err(fail)?;
            tx.batch_execute(LAYOUT_2).await.map_err(fail)?;
            tx.execute(
                "INSERT INTO weir_cluster_schema (version) VALUES ($1)",
                &[&VERSION],
            )
            .await
            .map_err(fail)?;
        }
    }
    tx.commit().await.map_err(fail)
}
