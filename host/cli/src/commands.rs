//! The subcommands.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use weir_engine::lock::{LockError, RunLocks};
use weir_engine::{Config, DatabaseAccess, EventBus, ResolvedPipeline, Run, RunSummary};
use weir_runtime::{CacheOutcome, Catalog, Runtime};

use crate::output::{Progress, Recorder, print_used_by, thousands};

/// Config + runtime + plugins: what every command starts from.
struct Setup {
    config: Config,
    runtime: Arc<Runtime>,
    catalog: Catalog,
}

async fn setup(config_path: &Path) -> anyhow::Result<Setup> {
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
    Ok(Setup {
        config,
        runtime,
        catalog,
    })
}

pub async fn run(
    config_path: &Path,
    pipelines: &[String],
    events_file: Option<&Path>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let Setup {
        config,
        runtime,
        catalog,
    } = setup(config_path).await?;
    let mut resolved = Vec::new();
    for name in pipelines {
        resolved.push(Arc::new(
            ResolvedPipeline::resolve(&config, name, &catalog).map_err(anyhow::Error::msg)?,
        ));
    }
    // One run of a pipeline at a time, across processes (`weir serve` included).
    let locks = RunLocks::new(&config.engine.lock_dir);
    let mut held = Vec::new();
    for name in pipelines {
        let lock = if wait {
            locks
                .lock_waiting(name, |holder| eprintln!("waiting: {holder}"))
                .await
        } else {
            locks.try_lock(name)
        };
        match lock {
            Ok(lock) => held.push(lock),
            Err(e @ LockError::Held { .. }) => {
                bail!("{e}; wait for it with `weir run --wait {name}`")
            }
            Err(e) => return Err(e.into()),
        }
    }

    // The tap sees every event, in order (a subscriber may lag and lose some): the events
    // file and the run details are complete; the progress bars only need the latest.
    let events_out = match events_file {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create events file {}", path.display()))?,
        ),
        None => None,
    };
    let recorder = Arc::new(Recorder::new(events_out));
    let events = EventBus::with_tap(1, Some(recorder.tap()));
    let mut receiver = events.subscribe();
    let observer = tokio::spawn(async move {
        let mut progress = Progress::new();
        loop {
            match receiver.recv().await {
                Ok(event) => progress.on_event(&event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        progress.clear();
    });

    let runs: Vec<Run> = resolved
        .iter()
        .zip(held)
        .map(|(p, lock)| Run::new(runtime.clone(), p.clone(), events.clone(), lock))
        .collect();
    // On a cluster's configuration: the pipelines' run leases, as a host takes them (this
    // process runs every partition itself).
    let ids: Vec<(String, String)> = runs
        .iter()
        .map(|r| (r.ctx.pipeline.clone(), r.ctx.run_id.clone()))
        .collect();
    let leases = crate::cluster::claim_runs(&config, &ids).await?;
    // Weak: the event stream ends (and the observer with it) once the runs are dropped.
    let contexts: Vec<_> = runs.iter().map(|r| Arc::downgrade(&r.ctx)).collect();
    // First Ctrl-C: stop at the next batch boundary (committed batches stay, nothing is half
    // written). A second one ends the process; SQLite rolls back the open transaction.
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping at the next batch boundary (Ctrl-C again to abort)");
            for ctx in contexts.iter().filter_map(std::sync::Weak::upgrade) {
                ctx.cancel();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let summaries = futures_join_all(runs).await;
    if let Some(leases) = leases {
        leases.release().await;
    }
    drop(events);
    let _ = observer.await;

    let mut all_ok = true;
    for (summary, pipeline) in summaries.iter().zip(&resolved) {
        all_ok &= summary.succeeded();
        print_summary(summary, pipeline);
        recorder.print_details(&summary.pipeline);
    }
    if let Some(peak) = peak_rss_mib() {
        println!("peak memory: {peak} MiB");
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Run every pipeline at the same time; summaries in the order given.
async fn futures_join_all(runs: Vec<Run>) -> Vec<RunSummary> {
    let handles: Vec<_> = runs
        .into_iter()
        .map(|run| tokio::spawn(run.execute("manual")))
        .collect();
    let mut summaries = Vec::with_capacity(handles.len());
    for handle in handles {
        summaries.push(handle.await.expect("run task panicked"));
    }
    summaries
}

/// Peak resident memory of this process (Linux), for the run summary.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024)
}

fn print_summary(summary: &RunSummary, resolved: &ResolvedPipeline) {
    let status = if summary.succeeded() {
        "completed"
    } else {
        "FAILED"
    };
    println!(
        "pipeline {}: run {} {status} in {:.2} s",
        summary.pipeline,
        summary.run_id,
        summary.elapsed.as_secs_f64()
    );
    let width = summary
        .partitions
        .iter()
        .map(|p| p.partition.len())
        .max()
        .unwrap_or(9)
        .max(9);
    println!(
        "  {:<width$}  {:>10}  {:>10}  {:>10}",
        "partition", "read", "loaded", "rejected"
    );
    for p in &summary.partitions {
        println!(
            "  {:<width$}  {:>10}  {:>10}  {:>10}{}",
            p.partition,
            thousands(p.totals.rows_read),
            thousands(p.totals.rows_loaded),
            thousands(p.totals.rows_rejected),
            p.error
                .as_ref()
                .map(|e| format!("\n    error: {e}"))
                .unwrap_or_default()
        );
    }
    let t = summary.totals;
    println!(
        "  {:<width$}  {:>10}  {:>10}  {:>10}",
        "total",
        thousands(t.rows_read),
        thousands(t.rows_loaded),
        thousands(t.rows_rejected)
    );
    for (name, path) in &resolved.config.grants.databases {
        println!("database {name}: {}", path.display());
    }
    if t.rows_rejected > 0 {
        println!(
            "rejects: SELECT file, line, stage, reason, raw FROM _weir_rejects WHERE run_id = '{}'",
            summary.run_id
        );
    }
    if let Some(error) = &summary.error {
        eprintln!("error: pipeline {}: {error}", summary.pipeline);
    }
    for p in summary.partitions.iter().filter(|p| p.error.is_some()) {
        eprintln!(
            "error: pipeline {}: partition {}: {}",
            summary.pipeline,
            p.partition,
            p.error.as_deref().unwrap_or_default()
        );
    }
}

/// How a pipeline runs on a cluster, for `weir validate`.
fn cluster_mode(grants: &weir_runtime::Grants) -> String {
    if weir_engine::shared::shares_with(grants) {
        return "partitions shared across the hosts (every database it writes is PostgreSQL)"
            .to_owned();
    }
    let files: Vec<String> = grants
        .databases
        .iter()
        .map(|(name, path)| format!("{name} = {}", path.display()))
        .collect();
    format!(
        "run whole by the host holding its run lease: it writes SQLite files ({}), which are \
         each host's own",
        files.join(", ")
    )
}

pub async fn validate(config_path: &Path) -> anyhow::Result<ExitCode> {
    // Every problem in one pass: the file's own, then each pipeline's plugins and grants.
    let partial = Config::load_partial(config_path)?;
    let config = &partial.config;
    let runtime = Runtime::new(Some(config.engine.cache_dir.clone()))?;
    let catalog = runtime
        .load_dir(&config.engine.plugins_dir)
        .await
        .with_context(|| {
            format!(
                "{}: engine.plugins_dir (build the bundled plugins with `just plugins`)",
                config.file.display()
            )
        })?;
    let report = weir_engine::validate::validate(&partial, &runtime, &catalog).await;
    if report.config_problems.is_empty() {
        println!(
            "config {}: {} pipelines",
            config.file.display(),
            config.pipelines.len()
        );
    } else {
        println!(
            "config {}: {} problem{}",
            config.file.display(),
            report.config_problems.len(),
            if report.config_problems.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        for problem in &report.config_problems {
            println!("  {problem}");
        }
    }
    println!(
        "plugins {}: {} loaded, {} rejected",
        config.engine.plugins_dir.display(),
        catalog.plugins.len(),
        catalog.rejected.len()
    );
    for r in &catalog.rejected {
        println!("  rejected {}: {}", r.file.display(), r.reason);
    }
    for (name, verdict) in &report.pipelines {
        let warnings = report
            .warnings
            .iter()
            .filter(|(pipeline, _)| pipeline == name)
            .flat_map(|(_, lines)| lines);
        match verdict {
            Ok(guarantee) => {
                println!("pipeline {name}: ok, {guarantee}");
                for line in guarantee.destination_lines() {
                    println!("  destination {line}");
                }
                if config.engine.cluster.is_some()
                    && let Some(pipeline) = config.pipelines.iter().find(|p| &p.name == name)
                {
                    println!("  cluster: {}", cluster_mode(&pipeline.grants));
                }
                for warning in warnings {
                    println!("  warning: {warning}");
                }
            }
            Err(problems) => {
                println!("pipeline {name}: INVALID");
                for problem in problems {
                    for line in problem.lines() {
                        println!("  {line}");
                    }
                }
            }
        }
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn plugins_list(config_path: &Path) -> anyhow::Result<ExitCode> {
    let Setup {
        config, catalog, ..
    } = setup(config_path).await?;
    println!("plugins in {}:", config.engine.plugins_dir.display());
    for p in catalog.plugins.values() {
        println!(
            "  {:<16} {:<8} {:<13} {}  sha256:{}  {:.1} ms{}",
            p.info.name,
            p.info.version,
            p.kind.to_string(),
            p.file
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default(),
            &p.hash[..12],
            p.load_time.as_secs_f64() * 1e3,
            if p.cache == CacheOutcome::Hit {
                " (cached)"
            } else {
                " (compiled)"
            }
        );
        print_used_by(&config.pipelines_using(&p.info.name));
    }
    for r in &catalog.rejected {
        println!("  rejected {}: {}", r.file.display(), r.reason);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn plugins_inspect(config_path: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    // The cache is optional here: inspecting works without a config file.
    let cache = Config::load(config_path).ok().map(|c| c.engine.cache_dir);
    let runtime = Runtime::new(cache)?;
    match runtime.load_file(file).await {
        Ok(p) => {
            println!("file:     {}", file.display());
            println!("plugin:   {} {}", p.info.name, p.info.version);
            println!("about:    {}", p.info.description);
            println!("kind:     {}", p.kind);
            println!("contract: weir:plugin@{}", p.contract);
            println!("world:    weir:plugin/{}@{}", p.kind.world(), p.contract);
            println!("sha256:   {}", p.hash);
            println!("imports:");
            for import in &p.imports {
                println!("  {import}");
            }
            println!("config schema: {}", p.info.config_schema);
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("error: {}: {reason}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn checkpoints_list(config_path: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let Setup {
        config,
        runtime,
        catalog,
    } = setup(config_path).await?;
    if let Some(name) = only
        && config.pipeline(name).is_none()
    {
        bail!("{}: no pipeline named \"{name}\"", config.file.display());
    }
    for pipeline in config
        .pipelines
        .iter()
        .filter(|p| only.is_none_or(|n| n == p.name))
    {
        let resolved = ResolvedPipeline::resolve(&config, &pipeline.name, &catalog)
            .map_err(anyhow::Error::msg)?;
        let mut history = resolved.open_history(&runtime, DatabaseAccess::Run).await?;
        let entries = history.entries(Some(&pipeline.name)).await?;
        println!("pipeline {}: {} checkpoints", pipeline.name, entries.len());
        for e in entries {
            println!("  {}  {}  {}", e.partition, e.updated_at, e.checkpoint);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn checkpoints_reset(
    config_path: &Path,
    pipeline: &str,
    partition: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let Setup {
        config,
        runtime,
        catalog,
    } = setup(config_path).await?;
    let resolved =
        ResolvedPipeline::resolve(&config, pipeline, &catalog).map_err(anyhow::Error::msg)?;
    // Not while the pipeline runs anywhere: the run would save its next checkpoint over the
    // reset (its compare-and-set would fail it, but refusing here says why up front).
    let _lock = RunLocks::new(&config.engine.lock_dir).try_lock(pipeline)?;
    // On a cluster's configuration: nor while a host of the cluster runs it.
    let reset_id = format!("reset-{}", weir_engine::run::new_run_id());
    let lease = crate::cluster::claim_runs(&config, &[(pipeline.to_owned(), reset_id)]).await?;
    let mut history = resolved.open_history(&runtime, DatabaseAccess::Run).await?;
    let removed = history.reset(pipeline, partition).await;
    if let Some(lease) = lease {
        lease.release().await;
    }
    let removed = removed?;
    println!(
        "pipeline {pipeline}: removed {removed} checkpoint{}{}; the next run reads {} from the start",
        if removed == 1 { "" } else { "s" },
        partition.map(|p| format!(" of {p}")).unwrap_or_default(),
        if partition.is_some() {
            "that partition"
        } else {
            "every partition"
        }
    );
    Ok(ExitCode::SUCCESS)
}
