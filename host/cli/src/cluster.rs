//! `engine.cluster` from the CLI's side: the options `weir serve` joins with, and
//! `weir cluster status` (hosts, heartbeats, leases), read straight from the cluster database.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use weir_cluster::{Cluster, ClusterOptions};
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
        println!(
            "{:<20} {:<16} {:<7} {:<24} {:>6} {:>12}  RUN",
            "PIPELINE", "PARTITION", "STATE", "OWNER", "EPOCH", "EXPIRES IN"
        );
        for lease in &leases {
            let partition = if lease.partition == "*" {
                "* (run)"
            } else {
                &lease.partition
            };
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
                "{:<20} {:<16} {:<7} {:<24} {:>6} {:>12}  {}",
                lease.pipeline,
                partition,
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
