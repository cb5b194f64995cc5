//! `weir validate`: every problem of a configuration in one pass — the file's own, each
//! pipeline's plugins and grants — and the delivery guarantee of each pipeline that can run.
//! Nothing is written: databases are opened the way `DatabaseAccess::Validate` says.

use std::path::Path;

use std::sync::{Arc, Mutex};

use weir_runtime::{Catalog, LogSink, Runtime};

use crate::config::{ConfigError, PartialConfig, PipelineConfig};
use crate::guarantee::{Guarantee, delivery_guarantee};
use crate::pipeline::{DatabaseAccess, ResolvedPipeline};

/// What `validate` found.
pub struct Report {
    /// Problems of the file outside any pipeline (the engine section, top-level keys).
    pub config_problems: Vec<ConfigError>,
    /// Each pipeline that parsed: its guarantee, or its problems (one per line).
    pub pipelines: Vec<(String, Result<Guarantee, Vec<String>>)>,
    /// Warnings the plugins logged while being checked (a file skipped, and why), by pipeline.
    pub warnings: Vec<(String, Vec<String>)>,
}

impl Report {
    /// Whether anything is wrong.
    pub fn failed(&self) -> bool {
        !self.config_problems.is_empty() || self.pipelines.iter().any(|(_, r)| r.is_err())
    }
}

/// Check everything that can be checked without running.
pub async fn validate(partial: &PartialConfig, runtime: &Runtime, catalog: &Catalog) -> Report {
    let config = &partial.config;
    let mut pipelines = Vec::new();
    let mut warnings = Vec::new();
    for pipeline in &config.pipelines {
        let logged: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = {
            let logged = logged.clone();
            LogSink(Arc::new(move |level, message| {
                if level <= tracing::Level::WARN {
                    let mut logged = logged.lock().unwrap_or_else(|p| p.into_inner());
                    // A bounded list: validate shows what to look at, not a log.
                    if logged.len() < 20 {
                        logged.push(message.to_owned());
                    }
                }
            }))
        };
        let mut problems: Vec<String> = partial
            .pipeline_problems
            .get(&pipeline.name)
            .map(|list| list.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        problems.extend(grant_problems(config.file.as_path(), pipeline));
        let verdict = match ResolvedPipeline::resolve(config, &pipeline.name, catalog) {
            Err(resolution) => {
                problems.extend(resolution.lines().map(str::to_owned));
                Err(problems)
            }
            Ok(resolved) if problems.is_empty() => {
                delivery_guarantee(runtime, &resolved, DatabaseAccess::Validate, Some(sink))
                    .await
                    .map_err(|e| vec![e.to_string()])
            }
            Ok(_) => Err(problems),
        };
        pipelines.push((pipeline.name.clone(), verdict));
        let logged = std::mem::take(&mut *logged.lock().unwrap_or_else(|p| p.into_inner()));
        if !logged.is_empty() {
            warnings.push((pipeline.name.clone(), logged));
        }
    }
    let in_pipelines: Vec<&ConfigError> = partial.pipeline_problems.values().flatten().collect();
    Report {
        config_problems: partial
            .problems
            .iter()
            .filter(|p| {
                !in_pipelines
                    .iter()
                    .any(|q| q.line == p.line && q.message == p.message)
            })
            .cloned()
            .collect(),
        pipelines,
        warnings,
    }
}

/// Grants that cannot work as written: two names for one database file (a plugin could then
/// hold two connections to it, and the commit protocol's one-transaction-per-database rule
/// would no longer hold).
fn grant_problems(file: &Path, pipeline: &PipelineConfig) -> Vec<String> {
    let at = format!("{}:{}", file.display(), pipeline.line);
    weir_runtime::duplicate_databases(
        pipeline
            .grants
            .databases
            .iter()
            .map(|(name, path)| (name.as_str(), path.as_path())),
    )
    .into_iter()
    .map(|dup| {
        format!(
            "{at}: pipeline \"{}\": databases {} are the same file {}; grant it once",
            pipeline.name,
            dup.names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(" and "),
            dup.path.display()
        )
    })
    .collect()
}
