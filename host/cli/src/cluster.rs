//! `engine.cluster` from the CLI's side: the options `weir serve` joins with,
//! `weir cluster status` (hosts, heartbeats, leases), read straight from the cluster database,
//! and the run leases `weir run` and `weir checkpoints reset` take on a cluster's
//! configuration, so they never act on a pipeline while a host of the cluster runs it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use weir_cluster::{Cluster, ClusterOptions, Lease, RunClaim};
use weir_engine::Config;
use weir_engine::config::ClusterConfig;

/// The options a host joins with.
pub fn options(cluster: &ClusterConfig) -> ClusterOptions {
    ClusterOptions {
        url: cluster.url.clone(),
        password: cluster.password.clone(),
        host_id: cluster.host_id.clone(),
        lease: cluster.lease,
    }
}

/// Connect to the cluster of the configuration, without joining it.
async fn inspect(config_path: &Path) -> anyhow::Result<Cluster> {
    let config = Config::load(config_path)?;
    let Some(cluster) = &config.engine.cluster else {
        anyhow::bail!(
            "{}: no engine.cluster: this weir runs alone (add engine.cluster = {{ url = \
             \"postgres://…\", host_id = \"…\" }} to run several hosts together)",
            config.file.display()
        );
    };
    Cluster::inspect(&options(cluster))
        .await
        .with_context(|| format!("{}: engine.cluster", config.file.display()))
}

/// The run leases a one-shot command holds, renewed every third of the lease until
/// [`RunLeases::release`].
pub struct RunLeases {
    cluster: Arc<Cluster>,
    leases: Vec<Lease>,
    renewal: tokio::task::JoinHandle<()>,
}

/// On a cluster's configuration, take the run lease of each `(pipeline, run id)`, as a host
/// does before a run: refused while a host of the cluster runs one of them. `None` alone.
pub async fn claim_runs(
    config: &Config,
    runs: &[(String, String)],
) -> anyhow::Result<Option<RunLeases>> {
    let Some(settings) = &config.engine.cluster else {
        return Ok(None);
    };
    // Owned as `<host id>/cli-<pid>`: a lease this command leaves behind is not adopted.
    let cluster = Arc::new(
        Cluster::inspect(&options(settings).for_command())
            .await
            .with_context(|| format!("{}: engine.cluster", config.file.display()))?,
    );
    let mut leases = Vec::new();
    let refused = async |leases: &[Lease], message: String| {
        for lease in leases {
            let _ = cluster.release_run(lease).await;
        }
        anyhow::anyhow!(message)
    };
    for (pipeline, run_id) in runs {
        let claim = match cluster.claim_run(pipeline, run_id).await {
            Ok(claim) => claim,
            Err(e) => return Err(refused(&leases, e.to_string()).await),
        };
        match claim {
            RunClaim::Started(lease) => leases.push(lease),
            RunClaim::Busy { owner, run_id } => {
                let holder = owner
                    .map(|o| weir_cluster::describe_owner(&o))
                    .unwrap_or_else(|| "another host (starting or ending a run)".into());
                return Err(refused(
                    &leases,
                    format!(
                        "pipeline {pipeline} is running on {holder} of the cluster (run {}): \
                         wait for it to end, or cancel it (see weir cluster status)",
                        run_id.unwrap_or_default()
                    ),
                )
                .await);
            }
            RunClaim::Adopted {
                lease,
                previous_owner,
            } => {
                // That run goes on on a host of the cluster, which adopts it at its next look.
                let _ = cluster.hand_over_run(&lease).await;
                return Err(refused(
                    &leases,
                    format!(
                        "pipeline {pipeline}: run {} of host \"{}\" stopped renewing its lease; a \
                         host of the cluster adopts it within seconds: wait for it to end (see \
                         weir cluster status)",
                        lease.run_id,
                        previous_owner.unwrap_or_default()
                    ),
                )
                .await);
            }
        }
    }
    let (renewing, held) = (cluster.clone(), leases.clone());
    let period = cluster.lease_duration() / 3;
    let renewal = tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            match renewing.renew_leases(&held).await {
                Ok(lost) if lost.is_empty() => {}
                Ok(lost) => {
                    for (pipeline, _) in lost {
                        eprintln!(
                            "warning: pipeline {pipeline}: the run lease lapsed (this process \
                             was paused or lost the cluster database); a host may run it too — \
                             the checkpoint compare-and-set keeps rows from loading twice"
                        );
                    }
                }
                Err(e) => eprintln!("warning: cannot renew the run leases: {e}"),
            }
        }
    });
    Ok(Some(RunLeases {
        cluster,
        leases,
        renewal,
    }))
}

impl RunLeases {
    /// Give the leases back (they lapse by themselves if this fails).
    pub async fn release(self) {
        self.renewal.abort();
        for lease in &self.leases {
            if let Err(e) = self.cluster.release_run(lease).await {
                eprintln!(
                    "warning: pipeline {}: cannot release the run lease (it lapses by itself): {e}",
                    lease.pipeline
                );
            }
        }
    }
}

/// Set or clear a host's draining flag.
pub async fn drain(config_path: &Path, host: &str, draining: bool) -> anyhow::Result<ExitCode> {
    let cluster = inspect(config_path).await?;
    if !cluster.set_draining(host, draining).await? {
        anyhow::bail!(
            "no host \"{host}\" in the cluster at {} (see weir cluster status)",
            cluster.location()
        );
    }
    let within = cluster.lease_duration().as_secs_f64() / 3.0;
    if draining {
        println!(
            "host \"{host}\" drains from its next heartbeat (within {within:.1} s): no new runs \
             there, its runs in progress finish; `weir cluster drain {host} --undo` ends it"
        );
    } else {
        println!("host \"{host}\" takes runs again from its next heartbeat (within {within:.1} s)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Print the hosts of the cluster and the leases held or queued; exit 1 when a registered host
/// that has not stopped misses its heartbeats (it died, or cannot reach the database).
pub async fn status(config_path: &Path) -> anyhow::Result<ExitCode> {
    let cluster = inspect(config_path).await?;
    let hosts = cluster.hosts().await?;
    let leases = cluster.leases().await?;
    println!("cluster database: {}", cluster.location());
    println!(
        "{:<24} {:<9} {:>14} {:>7} {:<10} plugins",
        "HOST", "STATE", "HEARTBEAT AGO", "LEASES", "VERSION"
    );
    let mut lost = false;
    for host in &hosts {
        let state = if host.stopped {
            "stopped"
        } else if !host.alive {
            lost = true;
            "LOST"
        } else if host.draining {
            "draining"
        } else {
            "alive"
        };
        let plugins: Vec<String> = host
            .plugins
            .iter()
            .map(|(name, version)| format!("{name}@{version}"))
            .collect();
        println!(
            "{:<24} {:<9} {:>12.1} s {:>7} {:<10} {}",
            host.host_id,
            state,
            host.heartbeat_age_seconds,
            host.leases,
            host.version,
            plugins.join(", ")
        );
    }
    if hosts.is_empty() {
        println!("(no host has joined yet)");
    }
    println!();
    if leases.is_empty() {
        println!("no leases held: no run in progress");
    } else {
        let partition_of = |lease: &weir_cluster::LeaseInfo| {
            if lease.partition == weir_cluster::RUN_PARTITION {
                "* (run)".to_owned()
            } else {
                lease.partition.clone()
            }
        };
        // Partitions are often file paths: the columns take the longest.
        let pw = leases
            .iter()
            .map(|l| partition_of(l).chars().count())
            .max()
            .unwrap_or(0)
            .max(9);
        let lw = leases
            .iter()
            .map(|l| l.pipeline.chars().count())
            .max()
            .unwrap_or(0)
            .max(8);
        println!(
            "{:<lw$} {:<pw$} {:<7} {:<24} {:>6} {:>12}  RUN",
            "PIPELINE", "PARTITION", "STATE", "OWNER", "EPOCH", "EXPIRES IN"
        );
        for lease in &leases {
            let expires = lease
                .expires_in_seconds
                .map(|s| {
                    if s < 0.0 {
                        format!("EXPIRED {:.1} s", -s)
                    } else {
                        format!("{s:.1} s")
                    }
                })
                .unwrap_or_default();
            println!(
                "{:<lw$} {:<pw$} {:<7} {:<24} {:>6} {:>12}  {}",
                lease.pipeline,
                partition_of(lease),
                lease.state,
                lease.owner.as_deref().unwrap_or("-"),
                lease.epoch,
                expires,
                lease.run_id.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(if lost {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
