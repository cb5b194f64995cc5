//! A pipeline matched to loaded plugins, and what each of its steps is given.
//!
//! The rule of the sandbox (docs/design.md, "Sandbox and grants") lives here and nowhere
//! else: only the extractor gets the granted directories (read-only); only the extractor and
//! the loaders get the granted HTTP connections (a transform or history store never reaches the
//! network; the runtime also refuses such plugins at load); every step gets the granted
//! databases by name, the extractor on connections of its own (its reads must not see the
//! batch transaction in progress), the other steps on the connections the worker commits
//! through (so a history store's `save` commits with the batch). Runs, operator commands and
//! `validate` all ask [`ResolvedPipeline::options`].

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_runtime::{
    CallSite, Catalog, DatabaseMode, Databases, Grants, HistoryInstance, InstanceOptions, LogSink,
    Plugin, PluginKind, Runtime,
};

use crate::config::{Config, PipelineConfig, StepConfig};

/// A step of a pipeline, by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Extract,
    Transform,
    Load,
    History,
}

/// How a pipeline's databases are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseAccess {
    /// For a run: read-write (unless the grant says `read_only`), WAL.
    Run,
    /// For `weir validate`: nothing on disk is written or created.
    Validate,
    /// For reading checkpoints from the API: read-only, nothing created.
    ReadOnly,
}

/// A pipeline whose steps were matched to loaded plugins of the right kind.
pub struct ResolvedPipeline {
    pub config: PipelineConfig,
    pub extract: Arc<Plugin>,
    pub transforms: Vec<Arc<Plugin>>,
    pub loads: Vec<Arc<Plugin>>,
    pub history: Arc<Plugin>,
    /// What the extractor may use: directories, databases and HTTP connections.
    extract_grants: Grants,
    /// What the loaders may use: databases and HTTP connections.
    load_grants: Grants,
    /// What transforms and the history store may use: databases.
    data_grants: Grants,
}

/// What a step is given of the pipeline's grants: directories to the extractor only, HTTP
/// connections to the extractor and the loaders only, databases to every step.
fn grants_for(step: Step, granted: &Grants) -> Grants {
    let (read_dirs, http) = match step {
        Step::Extract => (granted.read_dirs.clone(), granted.http.clone()),
        Step::Load => (Vec::new(), granted.http.clone()),
        Step::Transform | Step::History => (Vec::new(), BTreeMap::new()),
    };
    Grants {
        read_dirs,
        databases: granted.databases.clone(),
        postgres: granted.postgres.clone(),
        http,
    }
}

/// A step that does not name a usable plugin.
fn resolve_step(
    config: &Config,
    pipeline: &PipelineConfig,
    catalog: &Catalog,
    step: &StepConfig,
    kind: PluginKind,
) -> Result<Arc<Plugin>, String> {
    let at = format!("{}:{}", config.file.display(), step.line);
    match catalog.get(&step.plugin) {
        Some(plugin) if plugin.kind == kind => Ok(plugin.clone()),
        Some(plugin) => Err(format!(
            "{at}: pipeline \"{}\": plugin \"{}\" is a {}, but this step needs a {kind}",
            pipeline.name, step.plugin, plugin.kind
        )),
        None => {
            let rejected = catalog
                .rejected
                .iter()
                .filter(|r| {
                    r.file
                        .file_stem()
                        .is_some_and(|s| s.to_string_lossy().replace('_', "-") == step.plugin)
                })
                .map(|r| format!(" ({} was rejected: {})", r.file.display(), r.reason))
                .collect::<String>();
            let available: Vec<&str> = catalog
                .plugins
                .values()
                .filter(|p| p.kind == kind)
                .map(|p| p.info.name.as_str())
                .collect();
            Err(format!(
                "{at}: pipeline \"{}\": unknown {kind} plugin \"{}\"{rejected}; loaded {kind}s: {}",
                pipeline.name,
                step.plugin,
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                }
            ))
        }
    }
}

impl ResolvedPipeline {
    /// Match every step to a loaded plugin of the right kind, and check the grants exist.
    /// Every problem found is reported, one per line.
    pub fn resolve(config: &Config, name: &str, catalog: &Catalog) -> Result<Self, String> {
        let pipeline = config.pipeline(name).ok_or_else(|| {
            let names: Vec<&str> = config.pipelines.iter().map(|p| p.name.as_str()).collect();
            format!(
                "{}: no pipeline named \"{name}\" (pipelines: {})",
                config.file.display(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )
        })?;
        let mut problems = Vec::new();
        let mut one =
            |step: &StepConfig, kind| match resolve_step(config, pipeline, catalog, step, kind) {
                Ok(p) => Some(p),
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
        let extract = one(&pipeline.extract, PluginKind::Extractor);
        let transforms: Vec<_> = pipeline
            .transforms
            .iter()
            .map(|s| one(s, PluginKind::Transformer))
            .collect();
        let loads: Vec<_> = pipeline
            .loads
            .iter()
            .map(|s| one(s, PluginKind::Loader))
            .collect();
        let history = one(&pipeline.history, PluginKind::HistoryStore);
        let at = format!("{}:{}", config.file.display(), pipeline.line);
        for dir in &pipeline.grants.read_dirs {
            if !dir.host_path.is_dir() {
                problems.push(format!(
                    "{at}: pipeline \"{}\": granted directory {} does not exist",
                    pipeline.name,
                    dir.host_path.display()
                ));
            }
        }
        for (db, path) in &pipeline.grants.databases {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                && !parent.is_dir()
            {
                problems.push(format!(
                    "{at}: pipeline \"{}\": database \"{db}\" is in {}, which does not exist",
                    pipeline.name,
                    parent.display()
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        let extract_grants = grants_for(Step::Extract, &pipeline.grants);
        let load_grants = grants_for(Step::Load, &pipeline.grants);
        let data_grants = grants_for(Step::Transform, &pipeline.grants);
        Ok(Self {
            config: pipeline.clone(),
            extract: extract.expect("no problems"),
            transforms: transforms
                .into_iter()
                .map(|p| p.expect("no problems"))
                .collect(),
            loads: loads.into_iter().map(|p| p.expect("no problems")).collect(),
            history: history.expect("no problems"),
            extract_grants,
            load_grants,
            data_grants,
        })
    }

    /// Every plugin it uses, name → version (what a run record notes).
    pub fn plugin_versions(&self) -> BTreeMap<String, String> {
        std::iter::once(&self.extract)
            .chain(&self.transforms)
            .chain(&self.loads)
            .chain(std::iter::once(&self.history))
            .map(|p| (p.info.name.clone(), p.info.version.clone()))
            .collect()
    }

    /// The pipeline's granted databases, opened on first use as `access` says. One value per
    /// worker: the worker's commit loop and its plugins share these connections.
    pub fn databases(&self, access: DatabaseAccess) -> Databases {
        let mode = match access {
            DatabaseAccess::Run => DatabaseMode::ReadWrite,
            DatabaseAccess::Validate => DatabaseMode::Validation,
            DatabaseAccess::ReadOnly => DatabaseMode::ReadOnly,
        };
        Databases::new(self.config.grants.databases.clone())
            .with_postgres(self.config.grants.postgres.clone())
            .with_options(self.config.database_options.clone())
            .with_mode(mode)
            // A row may be as large as `max_row_bytes`; SQLite must be able to hold it.
            .with_max_value_bytes(self.config.bounds.max_row_bytes)
    }

    /// What the plugin of `step` is given: its grants, the pipeline's limits, and where it
    /// logs. `databases` are the worker's shared connections (opened with `databases(access)`);
    /// the extractor gets connections of its own, opened the same way.
    pub fn options<'a>(
        &'a self,
        step: Step,
        plugin: &Plugin,
        partition: Option<&str>,
        (access, databases): (DatabaseAccess, &Databases),
        logs: Option<LogSink>,
    ) -> InstanceOptions<'a> {
        let (grants, databases) = match step {
            Step::Extract => (&self.extract_grants, self.databases(access)),
            Step::Load => (&self.load_grants, databases.clone()),
            Step::Transform | Step::History => (&self.data_grants, databases.clone()),
        };
        InstanceOptions {
            site: CallSite {
                plugin: plugin.label(),
                pipeline: Some(self.config.name.clone()),
                partition: partition.map(str::to_owned),
                logs,
            },
            limits: &self.config.limits,
            grants,
            databases,
        }
    }

    /// An opened history-store instance, for operator commands (checkpoints list/reset) and
    /// for `validate`.
    pub async fn open_history(
        &self,
        runtime: &Runtime,
        access: DatabaseAccess,
    ) -> Result<HistoryInstance, weir_runtime::PluginError> {
        let databases = self.databases(access);
        let options = self.options(
            Step::History,
            &self.history,
            None,
            (access, &databases),
            None,
        );
        let mut history = runtime.history_store(&self.history, options).await?;
        history.open(&self.config.history.config).await?;
        Ok(history)
    }
}

/// Two loads writing to the same place (or two sinks of one plugin) would share one
/// per-destination count: number the repeats, in pipeline order, so each keeps its own
/// (`counting-sink`, `counting-sink #2`). Runs and `validate` name destinations alike.
pub fn number_repeated_destinations<'a>(names: impl Iterator<Item = &'a mut String>) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for name in names {
        let count = seen.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            name.push_str(&format!(" #{count}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_runtime::{DirGrant, HttpGrant, HttpGrantSpec};

    #[test]
    fn only_extract_and_load_get_http_and_only_extract_gets_directories() {
        let granted = Grants {
            read_dirs: vec![DirGrant {
                host_path: "/srv/inbox".into(),
                guest_path: "inbox".into(),
            }],
            databases: BTreeMap::from([("ledger".to_owned(), "/srv/ledger.db".into())]),
            postgres: BTreeMap::new(),
            http: BTreeMap::from([(
                "hr".to_owned(),
                HttpGrant::new("hr", HttpGrantSpec::new("https://hr.example.com/api/")).unwrap(),
            )]),
        };
        let given = |step| {
            let g = grants_for(step, &granted);
            (g.read_dirs.len(), g.databases.len(), g.http.len())
        };
        assert_eq!(given(Step::Extract), (1, 1, 1));
        assert_eq!(given(Step::Load), (0, 1, 1));
        assert_eq!(given(Step::Transform), (0, 1, 0));
        assert_eq!(given(Step::History), (0, 1, 0));
    }

    #[test]
    fn repeated_destinations_are_numbered_in_order_and_first_uses_keep_their_name() {
        let mut names: Vec<String> = ["sink", "sqlite-load → a.t", "sink", "sink"]
            .map(str::to_owned)
            .to_vec();
        number_repeated_destinations(names.iter_mut());
        assert_eq!(names, ["sink", "sqlite-load → a.t", "sink #2", "sink #3"]);
    }
}
