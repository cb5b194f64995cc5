//! A cron fire happens once cluster-wide: every host's scheduler sees it, the first to insert
//! its (pipeline, scheduled time) row runs it, the others skip it.

use crate::{Cluster, ClusterError};

/// Fires older than this are forgotten (they can no longer be seen by any scheduler: a
/// catch-up fires only the newest missed time).
const KEEP_FIRES_DAYS: i64 = 7;

impl Cluster {
    /// Claim the fire of `pipeline` scheduled at `scheduled_ms` (Unix ms). `true`: this host
    /// runs it; `false`: another host already did.
    pub async fn claim_fire(
        &self,
        pipeline: &str,
        scheduled_ms: i64,
    ) -> Result<bool, ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("claiming a scheduled fire", async |c| {
            let inserted = c
                .execute(
                    "INSERT INTO weir_fires (pipeline, scheduled_ms, host_id) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&pipeline, &scheduled_ms, &self.host_id],
                )
                .await?;
            if inserted == 1 {
                c.execute(
                    "DELETE FROM weir_fires WHERE pipeline = $1 AND scheduled_ms < $2",
                    &[&pipeline, &(scheduled_ms - KEEP_FIRES_DAYS * 86_400_000)],
                )
                .await?;
            }
            Ok(inserted == 1)
        })
        .await
    }

    /// The host that claimed a fire, if any did.
    pub async fn fire_owner(
        &self,
        pipeline: &str,
        scheduled_ms: i64,
    ) -> Result<Option<String>, ClusterError> {
        let conn = self.db.conn().await?;
        conn.run("reading a scheduled fire", async |c| {
            Ok(c.query_opt(
                "SELECT host_id FROM weir_fires WHERE pipeline = $1 AND scheduled_ms = $2",
                &[&pipeline, &scheduled_ms],
            )
            .await?
            .map(|r| r.get(0)))
        })
        .await
    }
}
