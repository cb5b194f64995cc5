//! The host registry: one row per host id, a heartbeat every third of the lease, and the
//! `draining` flag an operator sets to make a host stop taking work.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::leases::{Lease, LeaseKey};
use crate::{Cluster, ClusterError};

/// A host as the registry shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostInfo {
    pub host_id: String,
    pub version: String,
    /// Unix ms.
    pub started_ms: i64,
    /// Unix ms, by the database's clock.
    pub heartbeat_ms: i64,
    /// Seconds since the last heartbeat, by the database's clock.
    pub heartbeat_age_seconds: f64,
    /// It heartbeat within the lease and has not stopped.
    pub alive: bool,
    pub draining: bool,
    pub stopped: bool,
    /// The plugins in service there, name → version.
    pub plugins: BTreeMap<String, String>,
    /// Leases it holds now (runs and partitions, unexpired).
    pub leases: i64,
}

/// What a heartbeat learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// An operator asked this host to drain.
    pub draining: bool,
    /// Leases that were not renewed: another host holds them now (or they were released);
    /// their work must stop.
    pub lost: Vec<LeaseKey>,
    /// Runs this host takes part in that a host was asked to cancel, by pipeline.
    pub cancelled: Vec<String>,
}

impl Cluster {
    /// Insert this host, or take over the row of an earlier process with the same id once
    /// its heartbeat is older than the lease (a crash left it) or it stopped cleanly.
    pub(crate) async fn register(
        &self,
        version: &str,
        plugins: &BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        let plugins = serde_json::to_string(plugins).unwrap_or_else(|_| "{}".into());
        let give_up = tokio::time::Instant::now() + self.lease * 2;
        loop {
            let conn = self.db.conn().await?;
            let (taken, age) = conn
                .run("registering this host", async |c| {
                    let taken = c
                        .execute(
                            "INSERT INTO weir_hosts (host_id, incarnation, version, started_at,
                                 heartbeat_at, plugins)
                             VALUES ($1, $2, $3, now(), now(), $4)
                             ON CONFLICT (host_id) DO UPDATE SET
                                 incarnation = EXCLUDED.incarnation, version = EXCLUDED.version,
                                 started_at = now(), heartbeat_at = now(), draining = false,
                                 stopped_at = NULL, plugins = EXCLUDED.plugins
                             WHERE weir_hosts.stopped_at IS NOT NULL
                                OR weir_hosts.heartbeat_at < now() - make_interval(secs => $5)",
                            &[
                                &self.host_id,
                                &self.incarnation,
                                &version,
                                &plugins,
                                &self.lease_secs(),
                            ],
                        )
                        .await?;
                    let age: f64 = c
                        .query_one(
                            "SELECT extract(epoch FROM now() - heartbeat_at)::float8
                             FROM weir_hosts WHERE host_id = $1",
                            &[&self.host_id],
                        )
                        .await?
                        .get(0);
                    Ok((taken, age))
                })
                .await?;
            if taken == 1 {
                return Ok(());
            }
            let error = ClusterError::HostIdInUse {
                url: self.db.shown.clone(),
                host_id: self.host_id.clone(),
                seconds_ago: age,
            };
            let lapses_in = Duration::from_secs_f64((self.lease_secs() - age).max(0.05));
            if tokio::time::Instant::now() + lapses_in > give_up {
                return Err(error);
            }
            tracing::warn!(
                host_id = self.host_id,
                "an earlier registration of this host id is still live; waiting {:.1} s for it \
                 to lapse",
                lapses_in.as_secs_f64()
            );
            tokio::time::sleep(lapses_in).await;
        }
    }

    /// Heartbeat and renew `held` in one go. An error means nothing is known: the caller
    /// keeps its leases only until they would have expired since the last good heartbeat.
    /// [`ClusterError::HostIdInUse`] means another process registered this host id since:
    /// this one must stop working.
    pub async fn heartbeat(&self, held: &[Lease]) -> Result<Heartbeat, ClusterError> {
        let conn = self.db.conn().await?;
        let beat = conn
            .run("heartbeat", async |c| {
                let draining = c
                    .query_opt(
                        "UPDATE weir_hosts SET heartbeat_at = now()
                         WHERE host_id = $1 AND incarnation = $2 RETURNING draining",
                        &[&self.host_id, &self.incarnation],
                    )
                    .await?
                    .map(|row| row.get::<_, bool>(0));
                let Some(draining) = draining else {
                    return Ok(None);
                };
                let lost = self.renew(c, held).await?;
                let pipelines: Vec<&str> = held.iter().map(|l| l.pipeline.as_str()).collect();
                let cancelled = c
                    .query(
                        "SELECT pipeline FROM weir_leases
                         WHERE partition = '*' AND cancel_requested AND pipeline = ANY($1)",
                        &[&pipelines],
                    )
                    .await?
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                Ok(Some(Heartbeat {
                    draining,
                    lost,
                    cancelled,
                }))
            })
            .await?;
        beat.ok_or_else(|| ClusterError::HostIdInUse {
            url: self.db.shown.clone(),
            host_id: self.host_id.clone(),
            seconds_ago: 0.0,
        })
    }

    /// Every registered host, by id.
    pub async fn hosts(&self) -> Result<Vec<HostInfo>, ClusterError> {
        let conn = self.db.conn().await?;
        let rows = conn
            .run("listing hosts", async |c| {
                c.query(
                    "SELECT h.host_id, h.version,
                         (extract(epoch FROM h.started_at) * 1000)::bigint,
                         (extract(epoch FROM h.heartbeat_at) * 1000)::bigint,
                         extract(epoch FROM now() - h.heartbeat_at)::float8,
                         h.heartbeat_at >= now() - make_interval(secs => $1)
                             AND h.stopped_at IS NULL,
                         h.draining, h.stopped_at IS NOT NULL, h.plugins,
                         (SELECT count(*) FROM weir_leases l WHERE l.owner = h.host_id
                             AND l.state = 'held' AND l.expires_at >= now())
                     FROM weir_hosts h ORDER BY h.host_id",
                    &[&self.lease_secs()],
                )
                .await
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| HostInfo {
                host_id: r.get(0),
                version: r.get(1),
                started_ms: r.get(2),
                heartbeat_ms: r.get(3),
                heartbeat_age_seconds: r.get(4),
                alive: r.get(5),
                draining: r.get(6),
                stopped: r.get(7),
                plugins: serde_json::from_str(r.get(8)).unwrap_or_default(),
                leases: r.get(9),
            })
            .collect())
    }

    /// Ask a host to stop taking work (or to take it again); `false` if no such host.
    pub async fn set_draining(&self, host_id: &str, draining: bool) -> Result<bool, ClusterError> {
        let conn = self.db.conn().await?;
        let changed = conn
            .run("setting a host's draining flag", async |c| {
                c.execute(
                    "UPDATE weir_hosts SET draining = $2 WHERE host_id = $1",
                    &[&host_id, &draining],
                )
                .await
            })
            .await?;
        Ok(changed == 1)
    }

    /// Say this host stopped cleanly (its row stays, for `weir cluster status`).
    pub async fn leave(&self) -> Result<(), ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("leaving the cluster", async |c| {
            c.execute(
                "UPDATE weir_hosts SET stopped_at = now()
                 WHERE host_id = $1 AND incarnation = $2",
                &[&self.host_id, &self.incarnation],
            )
            .await
        })
        .await?;
        Ok(())
    }
}
