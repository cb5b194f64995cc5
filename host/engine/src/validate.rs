//! `weir validate`: every problem of a configuration in one pass — the file's own, each
//! pipeline's plugins and grants — and the delivery guarantee of each pipeline that can run.
//! Nothing is written: databases are opened the way `DatabaseAccess::Validate` says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir_runtime::{Catalog, Runtime};

use crate::config::{ConfigError, PartialConfig, PipelineConfig};
use crate::guarantee::{Guarantee, delivery_guarantee};
use crate::pipeline::{DatabaseAccess, ResolvedPipeline};

/// What `validate` found.
pub struct Report {
    /// Problems of the file outside any pipeline (the engine section, top-level keys).
    pub config_problems: Vec<ConfigError>,
    /// Each pipeline that parsed: its guarantee, or its problems (one per line).
    pub pipelines: Vec<(String, Result<Guarantee, Vec<String>>)>,
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
    for pipeline in &config.pipelines {
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
                delivery_guarantee(runtime, &resolved, DatabaseAccess::Validate)
                    .await
                    .map_err(|e| vec![e.to_string()])
            }
            Ok(_) => Err(problems),
        };
        pipelines.push((pipeline.name.clone(), verdict));
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
    }
}

/// Grants that cannot work as written: two names for one database file (a plugin could then
/// hold two connections to it, and the commit protocol's one-transaction-per-database rule
/// would no longer hold).
fn grant_problems(file: &Path, pipeline: &PipelineConfig) -> Vec<String> {
    let at = format!("{}:{}", file.display(), pipeline.line);
    let mut by_file: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for (name, path) in &pipeline.grants.databases {
        by_file.entry(same_file_key(path)).or_default().push(name);
    }
    by_file
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(path, names)| {
            format!(
                "{at}: pipeline \"{}\": databases {} are the same file {}; grant it once",
                pipeline.name,
                names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(" and "),
                path.display()
            )
        })
        .collect()
}

/// A path's identity as a file: its folder resolved (symlinks, `..`), which works for files
/// that do not exist yet; the file itself resolved when it exists.
fn same_file_key(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_names_for_one_file_are_found_through_dots_and_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
        let a = dir.path().join("ledger.db");
        let b = dir.path().join("sub/../ledger.db");
        let c = dir.path().join("link/ledger.db");
        assert_eq!(same_file_key(&a), same_file_key(&b));
        assert_eq!(same_file_key(&a), same_file_key(&c));
        assert_ne!(
            same_file_key(&a),
            same_file_key(&dir.path().join("other.db"))
        );
    }
}
