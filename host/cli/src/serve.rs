//! `weir serve`: the scheduler and the HTTP API, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use weir_api::{AllowedHosts, ApiOptions, AppState, Auth, Metrics, TokenSource};
use weir_engine::service::Service;
use weir_engine::{Config, ResolvedPipeline};
use weir_runtime::{Catalog, Runtime};
use weir_schedule::Schedule;
use weir_store::{Retention, StateStore, Store};

use crate::cluster;

/// How long open connections (event streams of clients that stopped reading) may delay the
/// exit once the runs have stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

async fn load(config_path: &Path) -> anyhow::Result<(Config, Arc<Runtime>, Catalog)> {
    let config = Config::load(config_path)?;
    let runtime = Arc::new(Runtime::new(Some(config.engine.cache_dir.clone()))?);
    let catalog = runtime
        .load_dir(&config.engine.plugins_dir)
        .await
        .with_context(|| {
            format!(
                "{}: engine.plugins_dir (build the bundled plugins with `just plugins`)",
                config.file.display()
            )
        })?;
    Ok((config, runtime, catalog))
}

/// Print each pipeline's schedule, in words, and its next fire times; exit 1 if a pipeline
/// cannot run.
pub async fn check(config_path: &Path) -> anyhow::Result<ExitCode> {
    let (config, _runtime, catalog) = load(config_path).await?;
    let now: DateTime<Utc> = SystemTime::now().into();
    let mut ok = true;
    for pipeline in &config.pipelines {
        match &pipeline.schedule {
            None => println!(
                "pipeline {}: no schedule (runs when triggered: POST /api/pipelines/{}/runs)",
                pipeline.name, pipeline.name
            ),
            Some(expr) => {
                let schedule = Schedule::parse(expr, pipeline.timezone.as_deref())?;
                println!(
                    "pipeline {}: \"{expr}\" = {}",
                    pipeline.name,
                    schedule.describe()
                );
                let tz: chrono_tz::Tz = schedule.timezone().parse().unwrap_or(chrono_tz::UTC);
                for (i, t) in schedule.upcoming(now, 3).into_iter().enumerate() {
                    println!(
                        "  {} {}  ({})",
                        if i == 0 { "next:" } else { "     " },
                        t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M:%S %Z"),
                        t.format("%Y-%m-%dT%H:%M:%SZ")
                    );
                }
            }
        }
        if let Err(problems) = ResolvedPipeline::resolve(&config, &pipeline.name, &catalog) {
            ok = false;
            println!("  INVALID (it will not run):");
            for line in problems.lines() {
                println!("    {line}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn serve(config_path: &Path, listen: Option<&str>) -> anyhow::Result<ExitCode> {
    let (config, runtime, catalog) = load(config_path).await?;
    // Before the state database is opened: a refused start leaves none behind.
    let (token, source) = weir_api::resolve_token(
        config.engine.token.as_deref(),
        std::env::var("WEIR_TOKEN").ok().as_deref(),
    )
    .map_err(|e| match e.from {
        TokenSource::Config => anyhow::anyhow!("{}: {e}", config.file.display()),
        _ => anyhow::Error::new(e),
    })?;
    let retention = Retention {
        events: config.engine.event_retention,
        runs: config.engine.run_retention,
    };
    // In a cluster the event log and run records are the cluster's, in PostgreSQL; alone, they
    // are this host's SQLite file.
    let (store, cluster): (Arc<dyn StateStore>, _) = match &config.engine.cluster {
        None => (
            Arc::new(Store::open(&config.engine.state_db, retention)?),
            None,
        ),
        Some(options) => {
            let plugins = catalog
                .plugins
                .values()
                .map(|p| (p.info.name.clone(), p.info.version.clone()))
                .collect();
            let cluster = weir_cluster::Cluster::join(
                &cluster::options(options),
                env!("CARGO_PKG_VERSION"),
                &plugins,
            )
            .await
            .with_context(|| format!("{}: engine.cluster", config.file.display()))?;
            let store = cluster
                .open_store(retention)
                .await
                .with_context(|| format!("{}: engine.cluster", config.file.display()))?;
            (Arc::new(store), Some(Arc::new(cluster)))
        }
    };
    let listen = listen.unwrap_or(&config.engine.listen).to_owned();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| {
            format!(
                "{}: engine.listen: cannot listen on {listen}",
                config.file.display()
            )
        })?;
    let addr = listener.local_addr()?;
    let open_reads = addr.ip().is_loopback();
    if !open_reads && !config.engine.behind_tls {
        tracing::warn!(%addr, "listening beyond loopback: every route needs the token, and traffic is plain HTTP (put TLS in front and set engine.behind_tls)");
    }
    let options = ApiOptions {
        allowed_hosts: AllowedHosts::new(&listen, &config.engine.allowed_hosts),
        behind_tls: config.engine.behind_tls,
        ..ApiOptions::default()
    };

    let metrics = Metrics::for_config(&config);
    let service = Service::with_cluster(
        config,
        runtime,
        catalog,
        store,
        vec![metrics.tap()],
        cluster,
    );
    let state = AppState::new(
        service.clone(),
        Auth::new(token.clone(), open_reads),
        metrics,
        options,
    );

    // Tests and scripts read this line to find the port (with `listen = "127.0.0.1:0"`).
    println!("weir serve: listening on http://{addr}");
    match source {
        TokenSource::Generated => println!(
            "API token (generated, shown only now; set engine.token or WEIR_TOKEN to choose one): {token}"
        ),
        TokenSource::Config => println!("API token: from engine.token"),
        TokenSource::Environment => println!("API token: from WEIR_TOKEN"),
    }
    let now: DateTime<Utc> = SystemTime::now().into();
    let plugins = service.plugins();
    for entry in service.pipelines() {
        let name = &entry.config.name;
        match (
            plugins.resolved(name).expect("every pipeline is resolved"),
            &entry.schedule,
        ) {
            (Err(_), _) => println!(
                "pipeline {name}: INVALID, will not run until its plugins are in the plugins folder (see the log)"
            ),
            (Ok(_), None) => println!("pipeline {name}: no schedule, runs when triggered"),
            (Ok(_), Some(s)) => println!(
                "pipeline {name}: {}; next run {}",
                s.describe(),
                s.next_after(now)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_else(|| "never".into())
            ),
        }
    }

    if let Some(cluster) = service.cluster() {
        println!(
            "cluster: host \"{}\" joined {} (leases of {} s)",
            cluster.host_id(),
            cluster.location(),
            cluster.lease_duration().as_secs_f64()
        );
    }
    service.start_heartbeat();
    service.start_scheduler();
    // Without the watcher the service still works; only drop-in plugins need a restart.
    match service.watch_plugins() {
        Ok(()) => println!(
            "watching {} for plugin changes",
            service.config().engine.plugins_dir.display()
        ),
        Err(e) => tracing::warn!("{e:#}; plugin changes need a restart to take effect"),
    }
    let stopping = {
        let service = service.clone();
        async move {
            wait_for_signal().await;
            eprintln!(
                "weir serve: stopping; runs stop at their next batch boundary (signal again to abort)"
            );
            tokio::spawn(async {
                wait_for_signal().await;
                std::process::exit(130);
            });
            service.shutdown().await;
        }
    };
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        // The peer address goes with every request: wrong tokens are counted per address.
        axum::serve(
            listener,
            weir_api::app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            stopping.await;
            let _ = stopped_tx.send(());
        })
        .into_future(),
    );
    // Once the runs have stopped, event streams end by themselves; a client that stopped
    // reading must not keep the process alive.
    let served = async {
        match server.await {
            Ok(result) => result.context("the HTTP server failed"),
            Err(e) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
        }
    };
    tokio::pin!(served);
    tokio::select! {
        result = &mut served => result?,
        _ = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => tracing::warn!("connections still open after {} s; exiting anyway", DRAIN_TIMEOUT.as_secs()),
    }
    service.shutdown().await;
    println!("weir serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
