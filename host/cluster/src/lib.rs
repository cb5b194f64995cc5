//! Several `weir serve` hosts coordinated through the PostgreSQL server they already run
//! (docs/design.md, "Clustering"; docs/cluster.md for operators). No consensus of our own: the
//! database's row locks and its clock (`now()`, never a host's) decide who holds what.
//!
//! - `db`: the connection (kept, re-made after a failure), redacted URLs, statement deadlines;
//! - `schema`: the tables (all `weir_`-prefixed), created and migrated under one lock;
//! - `hosts`: the host registry and heartbeats;
//! - `leases`: run leases (`partition = '*'`: one run per pipeline cluster-wide) and partition
//!   leases with epochs, claimed with `FOR UPDATE SKIP LOCKED`, renewed, finished, handed back;
//! - `fires`: a cron fire claimed once cluster-wide;
//! - `store`: the event log (ids from one counter) and run records, a [`weir_store::StateStore`].

mod db;
mod fires;
mod hosts;
mod leases;
mod schema;
mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use db::Db;

pub use db::redact_url;
pub use hosts::HostInfo;
pub use leases::{
    ClaimLimits, Lease, LeaseInfo, PartitionClaim, RUN_PARTITION, RunClaim, RunProgress,
};
pub use store::PgStore;

/// How a host joins the cluster.
#[derive(Clone)]
pub struct ClusterOptions {
    /// `postgres://user@host:port/db` (a password in it works, but `password` keeps it out of
    /// the URL).
    pub url: String,
    pub password: Option<String>,
    /// This host's name in the cluster: unique per running process.
    pub host_id: String,
    /// How long a lease lasts without renewal; heartbeats renew every third of it.
    pub lease: Duration,
}

/// What marks the owner of a lease a one-shot command holds (`weir run` and
/// `weir checkpoints reset` on a host's machine): `<host id>/cli-<pid>`. Such a lease that
/// lapsed is never adopted as a run: its command died with nothing queued.
pub const COMMAND_MARK: &str = "/cli-";

impl ClusterOptions {
    /// The options a one-shot command of this host takes leases with (see [`COMMAND_MARK`]).
    pub fn for_command(&self) -> Self {
        Self {
            host_id: format!("{}{COMMAND_MARK}{}", self.host_id, std::process::id()),
            ..self.clone()
        }
    }
}

/// A lease's owner in words: `host "a"`, or `` `weir run` on host "a" (process 42) ``.
pub fn describe_owner(owner: &str) -> String {
    match owner.split_once(COMMAND_MARK) {
        Some((host, pid)) => format!("a command (weir run) on host \"{host}\" (process {pid})"),
        None => format!("host \"{owner}\""),
    }
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host_id", &self.host_id)
            .field("lease", &self.lease)
            .finish()
    }
}

/// Why a cluster operation failed. Messages name the database by its redacted URL only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to the cluster database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cluster database {url}: {context}: {reason}")]
    Query {
        url: String,
        context: String,
        reason: String,
    },
    #[error(
        "cluster database {url}: host id \"{host_id}\" is in use by another running weir \
         (its last heartbeat was {seconds_ago:.1} s ago); give each host its own \
         engine.cluster.host_id"
    )]
    HostIdInUse {
        url: String,
        host_id: String,
        seconds_ago: f64,
    },
    #[error(
        "cluster database {url}: its tables were made by a newer weir (layout {found}, this \
         one knows {known}); upgrade this host"
    )]
    NewerSchema { url: String, found: i32, known: i32 },
}

/// This host's membership of the cluster: its registration, heartbeat, leases and fires.
/// Operations run one at a time on one connection, each within a third of the lease.
pub struct Cluster {
    db: Arc<Db>,
    host_id: String,
    incarnation: String,
    lease: Duration,
}

impl Cluster {
    /// Connect, create or check the tables, and register this host (waiting up to two leases
    /// for an earlier registration of the same host id to lapse: a host restarted after a
    /// crash finds its old self there). `plugins`: name → version of the plugins in service.
    pub async fn join(
        options: &ClusterOptions,
        version: &str,
        plugins: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, ClusterError> {
        let db = Arc::new(Db::new(options)?);
        {
            let mut conn = db.conn().await?;
            schema::migrate(&db, conn.client()).await?;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let cluster = Self {
            db,
            host_id: options.host_id.clone(),
            incarnation: format!("{}-{}", std::process::id(), now.as_nanos()),
            lease: options.lease,
        };
        cluster.register(version, plugins).await?;
        Ok(cluster)
    }

    /// Connect to look, without joining (`weir cluster status`): the tables are created if
    /// missing, no host is registered, nothing is claimed.
    pub async fn inspect(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let db = Arc::new(Db::new(options)?);
        {
            let mut conn = db.conn().await?;
            schema::migrate(&db, conn.client()).await?;
        }
        Ok(Self {
            db,
            host_id: options.host_id.clone(),
            incarnation: String::new(),
            lease: options.lease,
        })
    }

    /// This host's id.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// How long a lease lasts without renewal.
    pub fn lease_duration(&self) -> Duration {
        self.lease
    }

    /// The database, without its password.
    pub fn location(&self) -> &str {
        &self.db.shown
    }

    /// The lease as the statements take it (`make_interval(secs => …)`).
    fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }

    /// The event log and run records of the cluster, written as this host.
    pub async fn open_store(
        &self,
        retention: weir_store::Retention,
    ) -> Result<PgStore, ClusterError> {
        PgStore::open(self.db.clone(), &self.host_id, &self.incarnation, retention).await
    }
}
