//! Leases, not locks: a row per pipeline and per partition in `weir_leases`, with an owner, an
//! epoch and an expiry set from the database's clock. The run lease (`partition = '*'`) makes
//! one run per pipeline cluster-wide; its holder queues the run's partitions, which hosts then
//! claim, up to their own free slots, a fair share and a cluster-wide limit.
//!
//! Every claim bumps the epoch, so whoever held the row before holds a stale epoch from then on:
//! its renewal changes 0 rows (it must stop) and its commits are fenced (the epoch goes into
//! the batch's transaction). Claims pick rows with `FOR UPDATE SKIP LOCKED`, so two hosts
//! claiming at once never wait for, nor take, the same row. Rows are kept across runs: an epoch
//! never goes back, which the fence relies on.

use serde::Serialize;
use tokio_postgres::Client;

use crate::{Cluster, ClusterError};

/// The run lease's partition name.
pub const RUN_PARTITION: &str = "*";

/// A lease this host holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Lease {
    pub pipeline: String,
    /// A partition, or `*` for the run lease.
    pub partition: String,
    /// The run it belongs to.
    pub run_id: String,
    /// Bumped by every claim: the fence token.
    pub epoch: i64,
}

/// Which lease: (pipeline, partition).
pub type LeaseKey = (String, String);

impl Lease {
    pub fn key(&self) -> LeaseKey {
        (self.pipeline.clone(), self.partition.clone())
    }
}

/// The outcome of asking for a pipeline's run lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunClaim {
    /// A new run, `lease.run_id` the id asked for: queue its partitions.
    Started(Lease),
    /// The run of a host whose lease expired, taken over (`lease.run_id` is that run's id):
    /// its queued and expired partitions go on, nothing is queued again.
    Adopted {
        lease: Lease,
        previous_owner: Option<String>,
    },
    /// Another host runs the pipeline (or is starting a run of it right now).
    Busy {
        owner: Option<String>,
        run_id: Option<String>,
    },
}

/// A partition lease just claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionClaim {
    pub lease: Lease,
    /// The partition's size in progress units, as its extractor listed it.
    pub size: Option<u64>,
    /// The host that held it before, if its lease had expired (a takeover).
    pub taken_over_from: Option<String>,
}

/// How many partitions a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Slots this host has free for the pipeline (its `concurrency` less what it runs).
    pub host_free: usize,
    /// Partitions of the pipeline held at once across the cluster, at most.
    pub cluster_limit: Option<usize>,
}

/// Where a run's partitions are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunProgress {
    pub total: i64,
    pub queued: i64,
    /// Held by a host whose lease has not expired.
    pub held: i64,
    /// Held by a host whose lease expired: waiting for a takeover.
    pub expired: i64,
    pub done: i64,
    /// Done, but not `completed`.
    pub unsuccessful: i64,
    /// What the partitions' holders committed, as each reported at its end (a host killed
    /// mid-partition reported nothing: its rows are in the target, not in these sums).
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
    /// An operator asked the run to stop.
    pub cancel_requested: bool,
    /// The pipeline's run lease still names this run (held, expired or not).
    pub current: bool,
    /// Who holds the run lease, with which epoch (while `current`).
    pub run_owner: Option<String>,
    pub run_epoch: Option<i64>,
}

impl RunProgress {
    /// Whether `lease` is still the run lease of this run (not adopted by another host).
    pub fn run_lease_is(&self, lease: &Lease, host_id: &str) -> bool {
        self.current
            && self.run_owner.as_deref() == Some(host_id)
            && self.run_epoch == Some(lease.epoch)
    }
}

impl RunProgress {
    /// Every partition is done.
    pub fn finished(&self) -> bool {
        self.done == self.total
    }
}

/// One lease row, for `weir cluster status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseInfo {
    pub pipeline: String,
    pub partition: String,
    pub run_id: Option<String>,
    pub state: String,
    pub owner: Option<String>,
    pub epoch: i64,
    /// Seconds until it expires (negative: expired), if held.
    pub expires_in_seconds: Option<f64>,
    pub outcome: Option<String>,
}

impl Cluster {
    /// Take the pipeline's run lease for a new run `run_id`, or adopt the run of a host whose
    /// run lease expired.
    pub async fn claim_run(&self, pipeline: &str, run_id: &str) -> Result<RunClaim, ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("claiming a run lease", async |c| {
            c.execute(
                "INSERT INTO weir_leases (pipeline, partition, state) VALUES ($1, '*', 'idle')
                 ON CONFLICT DO NOTHING",
                &[&pipeline],
            )
            .await?;
            let claimed = c
                .query_opt(
                    // A lapsed run goes on (adopted), unless a one-shot command held it: that
                    // command died, and nothing of it is queued.
                    "WITH picked AS (
                         SELECT pipeline, partition, owner AS previous_owner,
                                state = 'held' AND position($5 in coalesce(owner, '')) = 0
                                    AS adopting,
                                run_id AS previous_run
                         FROM weir_leases
                         WHERE pipeline = $1 AND partition = '*'
                           AND (state <> 'held' OR expires_at < now())
                         FOR UPDATE SKIP LOCKED)
                     UPDATE weir_leases l SET state = 'held', owner = $2, epoch = l.epoch + 1,
                         expires_at = now() + make_interval(secs => $4), claimed_at = now(),
                         cancel_requested = CASE WHEN picked.adopting
                             THEN l.cancel_requested ELSE false END,
                         run_id = CASE WHEN picked.adopting THEN picked.previous_run ELSE $3 END
                     FROM picked
                     WHERE l.pipeline = picked.pipeline AND l.partition = picked.partition
                     RETURNING l.run_id, l.epoch, picked.adopting, picked.previous_owner",
                    &[
                        &pipeline,
                        &self.host_id,
                        &run_id,
                        &self.lease_secs(),
                        &crate::COMMAND_MARK,
                    ],
                )
                .await?;
            if let Some(row) = claimed {
                let lease = Lease {
                    pipeline: pipeline.to_owned(),
                    partition: RUN_PARTITION.to_owned(),
                    run_id: row.get(0),
                    epoch: row.get(1),
                };
                return Ok(if row.get(2) {
                    RunClaim::Adopted {
                        lease,
                        previous_owner: row.get(3),
                    }
                } else {
                    RunClaim::Started(lease)
                });
            }
            let holder = c
                .query_opt(
                    "SELECT owner, run_id FROM weir_leases WHERE pipeline = $1 AND partition = '*'
                     AND state = 'held'",
                    &[&pipeline],
                )
                .await?;
            Ok(RunClaim::Busy {
                owner: holder.as_ref().and_then(|r| r.get(0)),
                run_id: holder.as_ref().and_then(|r| r.get(1)),
            })
        })
        .await
    }

    /// Queue the partitions of the run `run` holds the lease of. `false`: the run lease was
    /// lost (another host took it over), nothing was queued.
    pub async fn queue_partitions(
        &self,
        run: &Lease,
        partitions: &[(String, Option<u64>)],
    ) -> Result<bool, ClusterError> {
        let ids: Vec<&str> = partitions.iter().map(|(id, _)| id.as_str()).collect();
        let sizes: Vec<Option<i64>> = partitions
            .iter()
            .map(|(_, size)| size.map(|s| s.min(i64::MAX as u64) as i64))
            .collect();
        let conn = self.db.conn().await?;
        // One transaction: the run lease is locked and checked, then the partitions queued.
        conn.run("queueing partitions", async |c| {
            let tx = c.transaction().await?;
            let holds = tx
                .query_opt(
                    "SELECT 1 FROM weir_leases WHERE pipeline = $1 AND partition = '*'
                     AND owner = $2 AND epoch = $3 AND state = 'held' FOR UPDATE",
                    &[&run.pipeline, &self.host_id, &run.epoch],
                )
                .await?
                .is_some();
            if !holds {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO weir_leases (pipeline, partition, run_id, state, size)
                 SELECT $1, p.id, $2, 'queued', p.size
                 FROM unnest($3::text[], $4::int8[]) AS p(id, size)
                 ON CONFLICT (pipeline, partition) DO UPDATE SET run_id = EXCLUDED.run_id,
                     state = 'queued', owner = NULL, expires_at = NULL, claimed_at = NULL,
                     outcome = NULL, size = EXCLUDED.size, rows_read = 0, rows_loaded = 0,
                     rows_rejected = 0",
                &[&run.pipeline, &run.run_id, &ids, &sizes],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Claim up to `limits` of the run's partitions that are queued or whose holder's lease
    /// expired, in partition order. The pipeline's run lease row is locked for the claim, so
    /// the cluster-wide limit holds exactly; the rows themselves are picked `SKIP LOCKED`.
    /// Nothing is claimed for a run an operator asked to stop. `plugins` (name → version, as
    /// JSON): what this host runs the partitions with, recorded with each in the run's record.
    /// `exclude`: partitions not to claim (this host's own, whose workers still run).
    pub async fn claim_partitions(
        &self,
        pipeline: &str,
        run_id: &str,
        limits: ClaimLimits,
        plugins: &str,
        exclude: &[String],
    ) -> Result<Vec<PartitionClaim>, ClusterError> {
        if limits.host_free == 0 {
            return Ok(Vec::new());
        }
        let conn = self.db.conn().await?;
        conn.run("claiming partitions", async |c| {
            let tx = c.transaction().await?;
            let current = tx
                .query_opt(
                    "SELECT 1 FROM weir_leases WHERE pipeline = $1 AND partition = '*'
                     AND run_id = $2 AND state = 'held' AND NOT cancel_requested FOR UPDATE",
                    &[&pipeline, &run_id],
                )
                .await?
                .is_some();
            if !current {
                return Ok(Vec::new());
            }
            let counts = tx
                .query_one(
                    "SELECT count(*),
                         count(*) FILTER (WHERE state = 'held' AND expires_at >= now()),
                         count(*) FILTER (WHERE state = 'held' AND expires_at >= now()
                             AND owner = $3),
                         (SELECT count(*) FROM weir_hosts WHERE NOT draining
                             AND stopped_at IS NULL
                             AND heartbeat_at >= now() - make_interval(secs => $4))
                     FROM weir_leases
                     WHERE pipeline = $1 AND partition <> '*' AND run_id = $2",
                    &[&pipeline, &run_id, &self.host_id, &self.lease_secs()],
                )
                .await?;
            let (total, held, mine, hosts): (i64, i64, i64, i64) =
                (counts.get(0), counts.get(1), counts.get(2), counts.get(3));
            // Fair share: the run's partitions over the hosts taking work (at least this one),
            // so a host that polls first does not take everything.
            let fair_share = (total + hosts.max(1) - 1) / hosts.max(1);
            let mut n = (limits.host_free as i64).min(fair_share - mine);
            if let Some(limit) = limits.cluster_limit {
                n = n.min(limit as i64 - held);
            }
            if n <= 0 {
                return Ok(Vec::new());
            }
            let rows = tx
                .query(
                    "WITH picked AS (
                         SELECT pipeline, partition, owner AS previous_owner,
                                state AS previous_state
                         FROM weir_leases
                         WHERE pipeline = $1 AND partition <> '*' AND run_id = $2
                           AND (state = 'queued' OR (state = 'held' AND expires_at < now()))
                           AND NOT partition = ANY($6)
                         ORDER BY partition LIMIT $5
                         FOR UPDATE SKIP LOCKED)
                     UPDATE weir_leases l SET state = 'held', owner = $3, epoch = l.epoch + 1,
                         expires_at = now() + make_interval(secs => $4), claimed_at = now()
                     FROM picked
                     WHERE l.pipeline = picked.pipeline AND l.partition = picked.partition
                     RETURNING l.partition, l.epoch,
                         CASE WHEN picked.previous_state = 'held' THEN picked.previous_owner END,
                         l.size",
                    &[
                        &pipeline,
                        &run_id,
                        &self.host_id,
                        &self.lease_secs(),
                        &n,
                        &exclude,
                    ],
                )
                .await?;
            let claimed: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
            // The run's record says which host runs each partition with which plugins.
            tx.execute(
                "INSERT INTO weir_run_partitions (run_id, partition, status, host, plugins)
                 SELECT $1, p, 'running', $2, $3 FROM unnest($4::text[]) AS p
                 ON CONFLICT (run_id, partition) DO UPDATE SET status = 'running', host = $2,
                     plugins = $3",
                &[&run_id, &self.host_id, &plugins, &claimed],
            )
            .await?;
            tx.commit().await?;
            let mut claims: Vec<PartitionClaim> = rows
                .iter()
                .map(|r| PartitionClaim {
                    lease: Lease {
                        pipeline: pipeline.to_owned(),
                        partition: r.get(0),
                        run_id: run_id.to_owned(),
                        epoch: r.get(1),
                    },
                    taken_over_from: r.get(2),
                    size: r.get::<_, Option<i64>>(3).map(|s| s.max(0) as u64),
                })
                .collect();
            claims.sort_by(|a, b| a.lease.partition.cmp(&b.lease.partition));
            Ok(claims)
        })
        .await
    }

    /// Renew `held` on `c`; returns the ones that were not renewed (lost).
    pub(crate) async fn renew(
        &self,
        c: &mut Client,
        held: &[Lease],
    ) -> Result<Vec<LeaseKey>, tokio_postgres::Error> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let pipelines: Vec<&str> = held.iter().map(|l| l.pipeline.as_str()).collect();
        let partitions: Vec<&str> = held.iter().map(|l| l.partition.as_str()).collect();
        let epochs: Vec<i64> = held.iter().map(|l| l.epoch).collect();
        // An expired lease nobody claimed since is renewed too: its epoch is still the
        // newest, so no other host can have committed under it.
        let renewed: std::collections::HashSet<LeaseKey> = c
            .query(
                "UPDATE weir_leases l SET expires_at = now() + make_interval(secs => $2)
                 FROM unnest($3::text[], $4::text[], $5::int8[]) AS mine(pipeline, partition, epoch)
                 WHERE l.pipeline = mine.pipeline AND l.partition = mine.partition
                   AND l.epoch = mine.epoch AND l.owner = $1 AND l.state = 'held'
                 RETURNING l.pipeline, l.partition",
                &[
                    &self.host_id,
                    &self.lease_secs(),
                    &pipelines,
                    &partitions,
                    &epochs,
                ],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(held
            .iter()
            .map(Lease::key)
            .filter(|k| !renewed.contains(k))
            .collect())
    }

    /// Renew `held` now (heartbeats do this too); returns the leases lost.
    pub async fn renew_leases(&self, held: &[Lease]) -> Result<Vec<LeaseKey>, ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("renewing leases", async |c| self.renew(c, held).await)
            .await
    }

    /// A partition is done (`outcome`: completed, failed, cancelled). `false`: the lease was
    /// lost before, and the partition is another host's now.
    pub async fn finish_partition(
        &self,
        lease: &Lease,
        outcome: &str,
        totals: weir_store::Totals,
    ) -> Result<bool, ClusterError> {
        let conn = self.db.conn().await?;
        let changed = conn
            .run("finishing a partition", async |c| {
                c.execute(
                    "UPDATE weir_leases SET state = 'done', outcome = $5, expires_at = NULL,
                         rows_read = rows_read + $6, rows_loaded = rows_loaded + $7,
                         rows_rejected = rows_rejected + $8
                     WHERE pipeline = $1 AND partition = $2 AND owner = $3 AND epoch = $4
                       AND state = 'held'",
                    &[
                        &lease.pipeline,
                        &lease.partition,
                        &self.host_id,
                        &lease.epoch,
                        &outcome,
                        &(totals.rows_read as i64),
                        &(totals.rows_loaded as i64),
                        &(totals.rows_rejected as i64),
                    ],
                )
                .await
            })
            .await?;
        Ok(changed == 1)
    }

    /// Add what a holder committed before it gave the partition up unfinished (fenced,
    /// handed back), so the run's sums keep it. Whoever holds the row now does not matter.
    pub async fn add_partition_totals(
        &self,
        lease: &Lease,
        totals: weir_store::Totals,
    ) -> Result<(), ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("recording a partition's rows", async |c| {
            c.execute(
                "UPDATE weir_leases SET rows_read = rows_read + $4,
                     rows_loaded = rows_loaded + $5, rows_rejected = rows_rejected + $6
                 WHERE pipeline = $1 AND partition = $2 AND run_id = $3",
                &[
                    &lease.pipeline,
                    &lease.partition,
                    &lease.run_id,
                    &(totals.rows_read as i64),
                    &(totals.rows_loaded as i64),
                    &(totals.rows_rejected as i64),
                ],
            )
            .await
        })
        .await?;
        Ok(())
    }

    /// Give a partition back to the queue unfinished (draining, shutting down): another host
    /// claims it and resumes from its last committed checkpoint.
    pub async fn hand_back(&self, lease: &Lease) -> Result<bool, ClusterError> {
        self.end_lease(
            lease,
            "handing back a partition",
            "state = 'queued', owner = NULL, expires_at = NULL",
        )
        .await
    }

    /// Let the run lease lapse now, the run unfinished (this host is stopping): another host
    /// adopts the run at its next look and ends it.
    pub async fn hand_over_run(&self, lease: &Lease) -> Result<bool, ClusterError> {
        self.end_lease(
            lease,
            "handing a run over",
            "expires_at = now() - interval '1 second'",
        )
        .await
    }

    /// Ask the other hosts to stop the run this host holds the run lease of (it was cancelled
    /// here). `false`: the lease is another host's now, and so is the run.
    pub async fn cancel_own_run(&self, lease: &Lease) -> Result<bool, ClusterError> {
        self.end_lease(lease, "cancelling a run", "cancel_requested = true")
            .await
    }

    /// Release a run lease at the end of its run.
    pub async fn release_run(&self, lease: &Lease) -> Result<bool, ClusterError> {
        self.end_lease(
            lease,
            "releasing a run lease",
            "state = 'idle', owner = NULL, expires_at = NULL, cancel_requested = false",
        )
        .await
    }

    async fn end_lease(
        &self,
        lease: &Lease,
        context: &str,
        set: &str,
    ) -> Result<bool, ClusterError> {
        let conn = self.db.conn().await?;
        let sql = format!(
            "UPDATE weir_leases SET {set}
             WHERE pipeline = $1 AND partition = $2 AND owner = $3 AND epoch = $4
               AND state = 'held'"
        );
        let changed = conn
            .run(context, async |c| {
                c.execute(
                    &sql,
                    &[
                        &lease.pipeline,
                        &lease.partition,
                        &self.host_id,
                        &lease.epoch,
                    ],
                )
                .await
            })
            .await?;
        Ok(changed == 1)
    }

    /// Where the partitions of a run are.
    pub async fn run_progress(
        &self,
        pipeline: &str,
        run_id: &str,
    ) -> Result<RunProgress, ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("reading a run's progress", async |c| {
            let r = c
                .query_one(
                    "SELECT count(*),
                         count(*) FILTER (WHERE state = 'queued'),
                         count(*) FILTER (WHERE state = 'held' AND expires_at >= now()),
                         count(*) FILTER (WHERE state = 'held' AND expires_at < now()),
                         count(*) FILTER (WHERE state = 'done'),
                         count(*) FILTER (WHERE state = 'done' AND outcome <> 'completed'),
                         coalesce(sum(rows_read), 0)::int8, coalesce(sum(rows_loaded), 0)::int8,
                         coalesce(sum(rows_rejected), 0)::int8
                     FROM weir_leases WHERE pipeline = $1 AND partition <> '*' AND run_id = $2",
                    &[&pipeline, &run_id],
                )
                .await?;
            let run = c
                .query_opt(
                    "SELECT cancel_requested, owner, epoch FROM weir_leases
                     WHERE pipeline = $1 AND partition = '*' AND run_id = $2 AND state = 'held'",
                    &[&pipeline, &run_id],
                )
                .await?;
            Ok(RunProgress {
                total: r.get(0),
                queued: r.get(1),
                held: r.get(2),
                expired: r.get(3),
                done: r.get(4),
                unsuccessful: r.get(5),
                rows_read: r.get(6),
                rows_loaded: r.get(7),
                rows_rejected: r.get(8),
                cancel_requested: run.as_ref().is_some_and(|r| r.get(0)),
                current: run.is_some(),
                run_owner: run.as_ref().and_then(|r| r.get(1)),
                run_epoch: run.as_ref().map(|r| r.get(2)),
            })
        })
        .await
    }

    /// Ask the run `run_id` of `pipeline` to stop (every host running its partitions sees it
    /// at its next heartbeat). `false`: that run is not in progress.
    pub async fn request_cancel(&self, pipeline: &str, run_id: &str) -> Result<bool, ClusterError> {
        let conn = self.db.conn().await?;
        let changed = conn
            .run("cancelling a run", async |c| {
                c.execute(
                    "UPDATE weir_leases SET cancel_requested = true
                     WHERE pipeline = $1 AND partition = '*' AND state = 'held' AND run_id = $2",
                    &[&pipeline, &run_id],
                )
                .await
            })
            .await?;
        Ok(changed == 1)
    }

    /// Runs in progress with partitions to claim (queued, or held by a host whose lease
    /// expired), by pipeline: where a host with free slots can help.
    pub async fn claimable_runs(&self) -> Result<Vec<(String, String)>, ClusterError> {
        let conn = self.db.conn().await?;
        let rows = conn
            .run("looking for partitions to claim", async |c| {
                c.query(
                    "SELECT DISTINCT p.pipeline, p.run_id FROM weir_leases p
                     JOIN weir_leases r ON r.pipeline = p.pipeline AND r.partition = '*'
                         AND r.run_id = p.run_id AND r.state = 'held' AND NOT r.cancel_requested
                     WHERE p.partition <> '*'
                       AND (p.state = 'queued' OR (p.state = 'held' AND p.expires_at < now()))
                     ORDER BY 1, 2",
                    &[],
                )
                .await
            })
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Take over the run lease of `run_id` if its holder stopped renewing it (the run goes on
    /// here: its partitions stay as they are). `None`: it is live, or no longer that run.
    pub async fn adopt_run(
        &self,
        pipeline: &str,
        run_id: &str,
    ) -> Result<Option<(Lease, Option<String>)>, ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("adopting a run", async |c| {
            let row = c
                .query_opt(
                    "WITH picked AS (
                         SELECT pipeline, partition, owner AS previous_owner FROM weir_leases
                         WHERE pipeline = $1 AND partition = '*' AND run_id = $2
                           AND state = 'held' AND expires_at < now()
                           AND position($5 in coalesce(owner, '')) = 0
                         FOR UPDATE SKIP LOCKED)
                     UPDATE weir_leases l SET owner = $3, epoch = l.epoch + 1,
                         expires_at = now() + make_interval(secs => $4), claimed_at = now()
                     FROM picked
                     WHERE l.pipeline = picked.pipeline AND l.partition = picked.partition
                     RETURNING l.epoch, picked.previous_owner",
                    &[
                        &pipeline,
                        &run_id,
                        &self.host_id,
                        &self.lease_secs(),
                        &crate::COMMAND_MARK,
                    ],
                )
                .await?;
            Ok(row.map(|r| {
                (
                    Lease {
                        pipeline: pipeline.to_owned(),
                        partition: RUN_PARTITION.to_owned(),
                        run_id: run_id.to_owned(),
                        epoch: r.get(0),
                    },
                    r.get(1),
                )
            }))
        })
        .await
    }

    /// Run leases whose holder stopped renewing them: runs waiting to be adopted.
    pub async fn orphaned_runs(&self) -> Result<Vec<(String, String)>, ClusterError> {
        let conn = self.db.conn().await?;
        let rows = conn
            .run("looking for orphaned runs", async |c| {
                c.query(
                    "SELECT pipeline, run_id FROM weir_leases
                     WHERE partition = '*' AND state = 'held' AND expires_at < now()
                       AND position($1 in coalesce(owner, '')) = 0
                     ORDER BY pipeline",
                    &[&crate::COMMAND_MARK],
                )
                .await
            })
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every lease row that is not idle or done, by pipeline and partition.
    pub async fn leases(&self) -> Result<Vec<LeaseInfo>, ClusterError> {
        let conn = self.db.conn().await?;
        let rows = conn
            .run("listing leases", async |c| {
                c.query(
                    // Partitions of runs in progress only: a cancelled run leaves its queued
                    // and lapsed rows until the pipeline's next run.
                    "SELECT l.pipeline, l.partition, l.run_id, l.state, l.owner, l.epoch,
                         extract(epoch FROM l.expires_at - now())::float8, l.outcome
                     FROM weir_leases l
                     WHERE l.state IN ('held', 'queued')
                       AND (l.partition = '*' OR EXISTS (
                           SELECT 1 FROM weir_leases r WHERE r.pipeline = l.pipeline
                             AND r.partition = '*' AND r.state = 'held'
                             AND r.run_id = l.run_id))
                     ORDER BY l.pipeline, l.partition",
                    &[],
                )
                .await
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| LeaseInfo {
                pipeline: r.get(0),
                partition: r.get(1),
                run_id: r.get(2),
                state: r.get(3),
                owner: r.get(4),
                epoch: r.get(5),
                expires_in_seconds: r.get(6),
                outcome: r.get(7),
            })
            .collect())
    }
}
