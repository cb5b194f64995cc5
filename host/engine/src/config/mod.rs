//! `weir.toml`: parsing, `${VAR}` interpolation and validation. Every problem is reported in
//! one pass (as cargo and Vector do), each with the file and line: a bad schedule does not hide
//! a misspelled key further down.
//!
//! - `raw`: the file's shape and reading it section by section;
//! - this module: checking each value and building the typed configuration;
//! - `http`: the `grants.http` connections;
//! - `cluster`: `engine.cluster`, the PostgreSQL database several hosts share;
//! - `values`: interpolation, TOML to JSON, line numbers.

mod cluster;
mod http;
mod postgres;
mod raw;
mod values;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use weir_runtime::{DatabaseOptions, DirGrant, Grants, Limits};

use crate::columns::SizeBounds;
pub use cluster::ClusterConfig;
use raw::{Problem, RawDatabase, RawPipeline, RawStep};
use values::{LineIndex, interpolate, interpolate_json, toml_to_json};

/// A configuration problem, with where it is.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Every problem of a configuration file, in file order, one per line when shown.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The first problem (there is always one).
    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }
}

/// A configuration as far as it could be read, with its problems: what `weir validate` needs
/// to go on checking plugins and grants of the pipelines that did parse.
pub struct PartialConfig {
    pub config: Config,
    /// Every problem, in file order.
    pub problems: Vec<ConfigError>,
    /// Pipeline name → the problems inside its `[[pipeline]]` table (also in `problems`).
    pub pipeline_problems: BTreeMap<String, Vec<ConfigError>>,
}

/// How a pipeline's workers are restarted. Defaults are documented in the README.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window` before the worker fails for good.
    pub max_restarts: u32,
    /// The sliding window the budget counts restarts in.
    pub window: Duration,
    /// Delay before the first restart; doubles with every further restart…
    pub backoff_min: Duration,
    /// …up to this.
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            window: Duration::from_secs(600),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub plugins_dir: PathBuf,
    pub state_db: PathBuf,
    pub cache_dir: PathBuf,
    /// Run locks: one file per pipeline, so two processes never run one pipeline at once.
    pub lock_dir: PathBuf,
    pub listen: String,
    /// Host names (besides loopback and `listen`'s host) the API answers to, lowercase, without
    /// a port: a request for any other `Host` is refused, so a web page cannot reach the API
    /// through DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Clients reach the API over HTTPS through a TLS-terminating proxy: the session cookie is
    /// marked `Secure`.
    pub behind_tls: bool,
    /// The API's bearer token (`${VAR}` interpolated); `None`: `WEIR_TOKEN` or a generated one.
    pub token: Option<String>,
    /// Newest events kept in the state database.
    pub event_retention: u64,
    /// Newest run records kept in the state database.
    pub run_retention: u64,
    /// Several hosts sharing one PostgreSQL database (`None`: this host runs alone, with its
    /// state in `state_db`).
    pub cluster: Option<ClusterConfig>,
}

/// What the scheduler does when a pipeline is due while its previous run is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// Do not start another run; emit `RunSkipped`.
    #[default]
    Skip,
}

/// What `weir serve` does at startup when a scheduled fire was missed while it was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUp {
    /// Start one catch-up run, however many fires were missed.
    #[default]
    Once,
    /// Wait for the next fire.
    Skip,
}

/// One plugin step of a pipeline.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// Plugin name (`describe().name`).
    pub plugin: String,
    /// The plugin's configuration as JSON (what the plugin receives).
    pub config: String,
    /// Line of the step in the file, for messages.
    pub line: usize,
}

/// One pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub name: String,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub concurrency: usize,
    /// On a cluster: partitions of one run held at once across all hosts, at most
    /// (`concurrency` is per host).
    pub cluster_concurrency: Option<usize>,
    pub batch_size: u32,
    pub max_rejects: Option<u64>,
    pub grants: Grants,
    /// Read-only flags and size caps of granted databases, by name.
    pub database_options: BTreeMap<String, DatabaseOptions>,
    pub extract: StepConfig,
    pub transforms: Vec<StepConfig>,
    pub loads: Vec<StepConfig>,
    pub history: StepConfig,
    pub limits: Limits,
    pub bounds: SizeBounds,
    pub restart: RestartPolicy,
    /// Line where the pipeline starts.
    pub line: usize,
}

impl PipelineConfig {
    /// The names of the plugins its steps use, in pipeline order.
    pub fn plugin_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.extract)
            .chain(&self.transforms)
            .chain(&self.loads)
            .chain(std::iter::once(&self.history))
            .map(|step| step.plugin.as_str())
    }

    /// Whether a step uses the plugin called `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.plugin_names().any(|p| p == name)
    }
}

/// A parsed and validated `weir.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub engine: EngineConfig,
    pub pipelines: Vec<PipelineConfig>,
}

impl Config {
    /// The pipeline called `name`.
    pub fn pipeline(&self, name: &str) -> Option<&PipelineConfig> {
        self.pipelines.iter().find(|p| p.name == name)
    }

    /// The names of the pipelines whose steps use the plugin called `plugin`.
    pub fn pipelines_using(&self, plugin: &str) -> Vec<String> {
        self.pipelines
            .iter()
            .filter(|p| p.uses(plugin))
            .map(|p| p.name.clone())
            .collect()
    }

    /// Read and validate a config file, interpolating `${VAR}` from the process environment.
    pub fn load(file: &Path) -> Result<Self, ConfigErrors> {
        Self::load_partial(file)?.into_result()
    }

    /// Read a config file as far as it can be read: every problem, and the pipelines that
    /// parsed. Fails only when the file cannot be read or is not TOML.
    pub fn load_partial(file: &Path) -> Result<PartialConfig, ConfigErrors> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.to_owned(),
                line: None,
                message: format!("cannot read config file: {e}"),
            }])
        })?;
        Self::parse_partial(file, &text, &|name| std::env::var(name).ok())
    }

    /// Parse config text; `env` resolves `${VAR}`. Relative paths are relative to the file's
    /// folder.
    pub fn parse(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        Self::parse_partial(file, text, env)?.into_result()
    }

    /// [`Config::parse`], keeping what parsed next to the problems.
    pub fn parse_partial(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PartialConfig, ConfigErrors> {
        let lines = LineIndex::new(text);
        let error = |span: Option<Range<usize>>, message: String| ConfigError {
            file: file.to_owned(),
            line: span.map(|s| lines.line_of(s.start)),
            message,
        };
        let doc = raw::read(text).map_err(|p| ConfigErrors(vec![error(p.span, p.message)]))?;
        let base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let mut reader = Reader {
            base,
            env,
            problems: doc.problems,
        };
        let engine = reader.engine(&doc.engine);
        let default_batch = doc.engine.batch_size.unwrap_or(1024);
        let mut pipelines: Vec<PipelineConfig> = Vec::new();
        // A `[[pipeline]]` table's span may cover its header only, so a pipeline owns the text
        // from its start to the next pipeline's (problems there are listed under it).
        let mut starts: Vec<(usize, String)> = doc
            .pipelines
            .iter()
            .map(|(span, raw)| (span.start, raw.name.clone()))
            .collect();
        starts.sort();
        let spans: Vec<(String, Range<usize>)> = starts
            .iter()
            .enumerate()
            .map(|(i, (start, name))| {
                let end = starts.get(i + 1).map_or(text.len(), |(next, _)| *next);
                (name.clone(), *start..end)
            })
            .collect();
        for (span, raw) in doc.pipelines {
            if pipelines.iter().any(|q| q.name == raw.name) {
                reader.problem(&span, format!("pipeline \"{}\" is defined twice", raw.name));
                continue;
            }
            if let Some(p) = reader.pipeline(span, raw, default_batch, &lines) {
                pipelines.push(p);
            }
        }
        let mut pipeline_problems: BTreeMap<String, Vec<ConfigError>> = BTreeMap::new();
        let mut problems: Vec<ConfigError> = Vec::new();
        for p in reader.problems {
            let owner = p.span.as_ref().and_then(|at| {
                spans
                    .iter()
                    .find(|(_, span)| span.contains(&at.start))
                    .map(|(name, _)| name.clone())
            });
            let problem = error(p.span, p.message);
            if let Some(name) = owner {
                pipeline_problems
                    .entry(name)
                    .or_default()
                    .push(problem.clone());
            }
            problems.push(problem);
        }
        problems.sort_by_key(|p| p.line);
        for list in pipeline_problems.values_mut() {
            list.sort_by_key(|p| p.line);
        }
        Ok(PartialConfig {
            config: Config {
                file: file.to_owned(),
                engine,
                pipelines,
            },
            problems,
            pipeline_problems,
        })
    }
}

impl PartialConfig {
    /// The configuration if it has no problem, else every problem.
    pub fn into_result(self) -> Result<Config, ConfigErrors> {
        if self.problems.is_empty() {
            Ok(self.config)
        } else {
            Err(ConfigErrors(self.problems))
        }
    }
}

/// Turns the raw sections into typed configuration, collecting problems as it goes.
struct Reader<'a> {
    base: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn problem(&mut self, span: &Range<usize>, message: String) {
        self.problems.push(Problem {
            span: Some(span.clone()),
            message,
        });
    }

    /// Relative paths are relative to the config file's folder.
    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// `${VAR}` replaced, or the problem recorded (and the text kept as written).
    fn interpolate(&mut self, value: &str, span: &Range<usize>) -> Option<String> {
        match interpolate(value, self.env) {
            Ok(v) => Some(v),
            Err(m) => {
                self.problem(span, m);
                None
            }
        }
    }

    fn engine(&mut self, raw: &raw::RawEngine) -> EngineConfig {
        let token = raw
            .token
            .as_ref()
            .and_then(|t| self.interpolate(t.get_ref(), &t.span()));
        let mut allowed_hosts = Vec::new();
        for host in &raw.allowed_hosts {
            let span = host.span();
            let Some(value) = self.interpolate(host.get_ref(), &span) else {
                continue;
            };
            match host_name(&value) {
                Some(name) => allowed_hosts.push(name),
                None => self.problem(
                    &span,
                    format!(
                        "engine.allowed_hosts: \"{value}\" is not a host name: write the name or \
                         address alone (\"weir.example.com\", \"10.0.0.5\", \"[fd00::5]\"), \
                         without scheme, port or path; any port is allowed"
                    ),
                ),
            }
        }
        EngineConfig {
            plugins_dir: self.resolve(raw.plugins_dir.as_deref().unwrap_or("plugins")),
            state_db: self.resolve(raw.state_db.as_deref().unwrap_or("weir-state.db")),
            cache_dir: self.resolve(raw.cache_dir.as_deref().unwrap_or(".weir-cache")),
            lock_dir: self.resolve(raw.lock_dir.as_deref().unwrap_or(".weir-locks")),
            listen: raw
                .listen
                .clone()
                .unwrap_or_else(|| "127.0.0.1:7878".to_owned()),
            allowed_hosts,
            behind_tls: raw.behind_tls.unwrap_or(false),
            token,
            event_retention: raw.event_retention.unwrap_or(100_000).max(1),
            run_retention: raw.run_retention.unwrap_or(10_000).max(1),
            cluster: raw
                .cluster
                .as_ref()
                .and_then(|c| self.cluster(c.get_ref(), &c.span())),
        }
    }

    /// One pipeline, or `None` when a problem leaves nothing sensible to build. Every problem
    /// of the pipeline is recorded either way.
    fn pipeline(
        &mut self,
        span: Range<usize>,
        p: RawPipeline,
        default_batch: u32,
        lines: &LineIndex,
    ) -> Option<PipelineConfig> {
        if p.name.is_empty()
            || !p
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.problem(
                &span,
                format!(
                    "pipeline name \"{}\" must be letters, digits, '-' or '_'",
                    p.name
                ),
            );
        }
        let name = p.name.clone();
        let grants = self.grants(&p);
        let database_options = self.database_options(&p, &span);
        let mut step = |s: &toml::Spanned<RawStep>| self.step(s, lines);
        let extract = step(&p.extract);
        let transforms: Vec<_> = p.transform.iter().map(&mut step).collect();
        let loads: Vec<_> = p.load.iter().map(&mut step).collect();
        let history = step(&p.history);
        let limits = self.limits(&p, &span);
        let bounds = {
            let d = SizeBounds::default();
            SizeBounds {
                max_value_bytes: p.limits.max_value_bytes.unwrap_or(d.max_value_bytes),
                max_row_bytes: p.limits.max_row_bytes.unwrap_or(d.max_row_bytes),
                max_batch_bytes: p.limits.max_batch_bytes.unwrap_or(d.max_batch_bytes),
            }
        };
        let restart = self.restart(&p, &span);
        if p.load.is_empty() {
            self.problem(&span, format!("pipeline \"{name}\" has no load step"));
        }
        let timezone = p.timezone.as_ref().map(|t| t.get_ref().clone());
        if let Some(expr) = &p.schedule
            && let Err(e) = weir_schedule::Schedule::parse(expr.get_ref(), timezone.as_deref())
        {
            self.problem(&expr.span(), format!("pipeline \"{name}\": {e}"));
        }
        let overlap = match &p.overlap {
            None => Overlap::Skip,
            Some(o) if o.get_ref() == "skip" => Overlap::Skip,
            Some(other) => {
                self.problem(
                    &other.span(),
                    format!(
                        "overlap = \"{}\" is not supported (expected \"skip\")",
                        other.get_ref()
                    ),
                );
                Overlap::Skip
            }
        };
        let catch_up = match p
            .catch_up
            .as_ref()
            .map(|c| (c.get_ref().as_str(), c.span()))
        {
            None | Some(("once", _)) => CatchUp::Once,
            Some(("skip", _)) => CatchUp::Skip,
            Some((other, at)) => {
                self.problem(
                    &at,
                    format!(
                        "catch_up = \"{other}\" is not supported (expected \"once\" or \"skip\")"
                    ),
                );
                CatchUp::Once
            }
        };
        let concurrency = p.concurrency.as_ref().map_or(1, |c| *c.get_ref());
        if let Some(c) = &p.concurrency
            && *c.get_ref() == 0
        {
            self.problem(&c.span(), "concurrency must be at least 1".into());
        }
        if let Some(c) = &p.cluster_concurrency
            && *c.get_ref() == 0
        {
            self.problem(
                &c.span(),
                "cluster_concurrency must be at least 1 (leave it out for no cluster-wide limit)"
                    .into(),
            );
        }
        let batch_size = p
            .batch_size
            .as_ref()
            .map_or(default_batch, |b| *b.get_ref());
        if let Some(b) = &p.batch_size
            && *b.get_ref() == 0
        {
            self.problem(&b.span(), "batch_size must be at least 1".into());
        }
        // A pipeline with problems is still returned when its steps parsed, so `validate` can
        // check its plugins too; `Config::load` refuses the whole file anyway.
        Some(PipelineConfig {
            line: lines.line_of(span.start),
            name,
            schedule: p.schedule.map(toml::Spanned::into_inner),
            timezone,
            overlap,
            catch_up,
            concurrency: concurrency.max(1),
            cluster_concurrency: p
                .cluster_concurrency
                .as_ref()
                .map(|c| (*c.get_ref()).max(1)),
            batch_size: batch_size.max(1),
            max_rejects: p.max_rejects,
            grants,
            database_options,
            extract: extract?,
            transforms: transforms.into_iter().collect::<Option<_>>()?,
            loads: loads.into_iter().collect::<Option<_>>()?,
            history: history?,
            limits,
            bounds,
            restart,
        })
    }

    fn grants(&mut self, p: &RawPipeline) -> Grants {
        let mut grants = Grants::default();
        for dir in &p.grants.read_dirs {
            if let Some(guest) = self.interpolate(dir.get_ref(), &dir.span()) {
                grants.read_dirs.push(DirGrant {
                    host_path: self.resolve(&guest),
                    guest_path: guest,
                });
            }
        }
        for (name, db) in &p.grants.databases {
            let path = match db.get_ref() {
                RawDatabase::Path(path) => path,
                RawDatabase::Options(o) if o.url.is_some() || o.path.is_none() => {
                    if let Some(grant) = self.postgres_grant(name, o, &db.span()) {
                        grants.postgres.insert(name.clone(), grant);
                    }
                    continue;
                }
                RawDatabase::Options(o) => o.path.as_ref().expect("checked above"),
            };
            if let Some(value) = self.interpolate(path, &db.span()) {
                grants.databases.insert(name.clone(), self.resolve(&value));
            }
        }
        grants.http = self.http_grants(p);
        grants
    }

    fn database_options(
        &mut self,
        p: &RawPipeline,
        span: &Range<usize>,
    ) -> BTreeMap<String, DatabaseOptions> {
        let mut options = BTreeMap::new();
        for (name, db) in &p.grants.databases {
            if let RawDatabase::Options(o) = db.get_ref()
                && o.path.is_some()
                && o.url.is_none()
            {
                for (key, given) in [
                    ("password", o.password.is_some()),
                    ("statement_timeout", o.statement_timeout.is_some()),
                    ("sslmode", o.sslmode.is_some()),
                    ("sslrootcert", o.sslrootcert.is_some()),
                    ("schema", o.schema.is_some()),
                ] {
                    if given {
                        self.problem(
                            &db.span(),
                            format!("database \"{name}\": `{key}` applies to PostgreSQL grants (url = \"postgres://…\"), not to a SQLite path"),
                        );
                    }
                }
                let max_size_bytes = o.max_size_mb.and_then(|mb| {
                    let bytes = mb.checked_mul(1 << 20);
                    if bytes.is_none() {
                        self.problem(
                            span,
                            format!("database \"{name}\": max_size_mb = {mb} is too large"),
                        );
                    }
                    bytes
                });
                options.insert(
                    name.clone(),
                    DatabaseOptions {
                        read_only: o.read_only,
                        max_size_bytes,
                    },
                );
            }
        }
        options
    }

    fn step(&mut self, s: &toml::Spanned<RawStep>, lines: &LineIndex) -> Option<StepConfig> {
        let raw = s.get_ref();
        let config = match &raw.config {
            None => serde_json::Value::Object(Default::default()),
            Some(table) => {
                let json = toml_to_json(&toml::Value::Table(table.get_ref().clone()));
                match interpolate_json(json, self.env) {
                    Ok(v) => v,
                    Err(m) => {
                        self.problem(&table.span(), m);
                        return None;
                    }
                }
            }
        };
        Some(StepConfig {
            plugin: raw.plugin.get_ref().clone(),
            config: config.to_string(),
            line: lines.line_of(raw.plugin.span().start),
        })
    }

    /// A positive number of seconds that fits a `Duration`.
    fn seconds(
        &mut self,
        value: Option<f64>,
        default: Duration,
        key: &str,
        span: &Range<usize>,
    ) -> Duration {
        match value {
            None => default,
            Some(s) if s > 0.0 => match Duration::try_from_secs_f64(s) {
                Ok(d) => d,
                Err(_) => {
                    self.problem(span, format!("{key} = {s} is too large"));
                    default
                }
            },
            Some(s) => {
                self.problem(
                    span,
                    format!("{key} must be a positive number of seconds, not {s}"),
                );
                default
            }
        }
    }

    fn limits(&mut self, p: &RawPipeline, span: &Range<usize>) -> Limits {
        let d = Limits::default();
        let memory_bytes = match p.limits.memory_mb {
            None => d.memory_bytes,
            Some(mb) => mb.checked_mul(1 << 20).unwrap_or_else(|| {
                self.problem(span, format!("limits.memory_mb = {mb} is too large"));
                d.memory_bytes
            }),
        };
        Limits {
            memory_bytes,
            cpu_per_call: self.seconds(
                p.limits.cpu_seconds,
                d.cpu_per_call,
                "limits.cpu_seconds",
                span,
            ),
            wall_per_call: self.seconds(
                p.limits.timeout_seconds,
                d.wall_per_call,
                "limits.timeout_seconds",
                span,
            ),
            max_query_rows: p.limits.max_query_rows.unwrap_or(d.max_query_rows),
            max_query_bytes: p.limits.max_query_bytes.unwrap_or(d.max_query_bytes),
            max_checkpoint_bytes: p
                .limits
                .max_checkpoint_bytes
                .unwrap_or(d.max_checkpoint_bytes),
            max_message_bytes: p.limits.max_message_bytes.unwrap_or(d.max_message_bytes),
            max_raw_bytes: p.limits.max_raw_bytes.unwrap_or(d.max_raw_bytes),
            max_result_bytes: p.limits.max_result_bytes.unwrap_or(d.max_result_bytes),
        }
    }

    fn restart(&mut self, p: &RawPipeline, span: &Range<usize>) -> RestartPolicy {
        let d = RestartPolicy::default();
        let policy = RestartPolicy {
            max_restarts: p.restart.max_restarts.unwrap_or(d.max_restarts),
            window: self.seconds(
                p.restart.window_seconds,
                d.window,
                "restart.window_seconds",
                span,
            ),
            backoff_min: p
                .restart
                .backoff_min_ms
                .map(Duration::from_millis)
                .unwrap_or(d.backoff_min),
            backoff_max: p
                .restart
                .backoff_max_ms
                .map(Duration::from_millis)
                .unwrap_or(d.backoff_max),
        };
        if policy.backoff_min > policy.backoff_max {
            self.problem(
                span,
                "restart.backoff_min_ms is larger than restart.backoff_max_ms".into(),
            );
        }
        policy
    }
}

/// `value` as a bare host name or IP address, lowercase (IPv6 in brackets), or `None` when it
/// has a scheme, port, path or characters no host name has.
fn host_name(value: &str) -> Option<String> {
    let value = value.trim().to_ascii_lowercase();
    if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|_| value.clone());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (value.len() <= 253 && value.split('.').all(label_ok)).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(Path::new("/etc/weir/weir.toml"), text, &|name| {
            (name == "LEDGER").then(|| "books.db".to_owned())
        })
    }

    const MINIMAL: &str = r#"
[[pipeline]]
name = "bank"
grants = { read_dirs = ["inbox"], databases = { ledger = "${LEDGER}" } }
extract = { plugin = "csv-extract", config = { path = "inbox/*.csv" } }
load = [{ plugin = "sqlite-load", config = { database = "ledger", table = "t" } }]
history = { plugin = "sqlite-history", config = { database = "ledger" } }
"#;

    #[test]
    fn parses_and_resolves_paths_relative_to_the_file() {
        let config = parse(MINIMAL).unwrap();
        let p = &config.pipelines[0];
        assert_eq!(p.name, "bank");
        assert_eq!(p.grants.read_dirs[0].guest_path, "inbox");
        assert_eq!(
            p.grants.read_dirs[0].host_path,
            Path::new("/etc/weir/inbox")
        );
        assert_eq!(
            p.grants.databases["ledger"],
            Path::new("/etc/weir/books.db")
        );
        assert_eq!(config.engine.plugins_dir, Path::new("/etc/weir/plugins"));
        assert_eq!(p.extract.config, r#"{"path":"inbox/*.csv"}"#);
        assert_eq!(p.extract.line, 5);
        assert_eq!(p.line, 2);
    }

    #[test]
    fn cluster_concurrency_is_optional_and_at_least_one() {
        assert_eq!(
            parse(MINIMAL).unwrap().pipelines[0].cluster_concurrency,
            None
        );
        let six = MINIMAL.replace(
            "name = \"bank\"",
            "name = \"bank\"\nconcurrency = 2\ncluster_concurrency = 6",
        );
        let p = &parse(&six).unwrap().pipelines[0];
        assert_eq!((p.concurrency, p.cluster_concurrency), (2, Some(6)));
        let zero = MINIMAL.replace(
            "name = \"bank\"",
            "name = \"bank\"\ncluster_concurrency = 0",
        );
        let e = parse(&zero).unwrap_err();
        assert!(
            e.to_string()
                .contains("cluster_concurrency must be at least 1"),
            "{e}"
        );
        assert_eq!(e.first().line, Some(4));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = MINIMAL.replace("name = \"bank\"", "name = \"bank\"\nshedule = \"@daily\"");
        let e = parse(&text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("/etc/weir/weir.toml:"), "{shown}");
        assert!(shown.contains("unknown field `shedule`"), "{shown}");
        assert_eq!(e.first().line, Some(4), "{shown}");
    }

    #[test]
    fn invalid_toml_names_the_line() {
        let e = parse("[engine]\nplugins_dir = \n").unwrap_err();
        assert_eq!(e.first().line, Some(2), "{e}");
    }

    #[test]
    fn missing_variable_is_an_error_naming_it() {
        let text = MINIMAL.replace("${LEDGER}", "${NOPE}");
        let e = parse(&text).unwrap_err();
        assert!(e.to_string().contains("NOPE is not set"), "{e}");
        assert_eq!(e.first().line, Some(4));
    }

    #[test]
    fn service_keys_parse_and_bad_schedules_name_the_line() {
        let text = MINIMAL.replace(
            "name = \"bank\"",
            "name = \"bank\"\nschedule = \"*/5 * * * *\"\ncatch_up = \"skip\"\noverlap = \"skip\"",
        );
        let text = format!("[engine]\ntoken = \"${{LEDGER}}\"\nevent_retention = 50\n{text}");
        let config = parse(&text).unwrap();
        assert_eq!(config.engine.token.as_deref(), Some("books.db"));
        assert_eq!(config.engine.event_retention, 50);
        assert_eq!(config.pipelines[0].catch_up, CatchUp::Skip);
        assert_eq!(config.pipelines[0].overlap, Overlap::Skip);

        let bad = MINIMAL.replace(
            "name = \"bank\"",
            "name = \"bank\"\nschedule = \"0 25 * * *\"",
        );
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("hour 25 is out of range"), "{e}");
        assert!(e.starts_with("/etc/weir/weir.toml:4:"), "{e}");
        let queue = MINIMAL.replace("name = \"bank\"", "name = \"bank\"\noverlap = \"queue\"");
        assert!(
            parse(&queue)
                .unwrap_err()
                .to_string()
                .contains("overlap = \"queue\"")
        );
    }

    #[test]
    fn pipeline_without_load_is_rejected() {
        let text = MINIMAL.replace(
            "load = [{ plugin = \"sqlite-load\", config = { database = \"ledger\", table = \"t\" } }]",
            "load = []",
        );
        assert!(
            parse(&text)
                .unwrap_err()
                .to_string()
                .contains("no load step")
        );
    }

    #[test]
    fn every_problem_is_reported_in_one_pass_in_file_order() {
        let text = format!(
            "{MINIMAL}{}",
            MINIMAL
                .replace(
                    "name = \"bank\"",
                    "name = \"second\"\nschedule = \"0 25 * * *\""
                )
                .replace("read_dirs", "read_dir")
        )
        .replace("load = [{ plugin", "colour = \"red\"\nload = [{ plugin");
        let e = parse(&text).unwrap_err();
        let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].contains("unknown field `colour`"), "{lines:#?}");
        assert!(lines[1].contains("hour 25 is out of range"), "{lines:#?}");
        assert!(lines[2].contains("unknown field `read_dir`"), "{lines:#?}");
        assert!(lines[3].contains("unknown field `colour`"), "{lines:#?}");
        let numbers: Vec<usize> = e.0.iter().map(|p| p.line.unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{numbers:?}");
        // What parsed is kept for `validate`: both pipelines and their steps.
        let partial =
            Config::parse_partial(Path::new("/w.toml"), &text, &|_| Some("x.db".to_owned()))
                .unwrap();
        assert_eq!(partial.config.pipelines.len(), 2);
    }

    #[test]
    fn numbers_too_large_are_errors_not_panics() {
        let text = MINIMAL.replace(
            "name = \"bank\"",
            "name = \"bank\"\nlimits = { memory_mb = 18446744073709551615, cpu_seconds = 1e30, timeout_seconds = 1e300 }\nrestart = { window_seconds = 1e40 }",
        );
        let e = parse(&text).unwrap_err().to_string();
        for needle in [
            "limits.memory_mb = 18446744073709551615 is too large",
            "limits.cpu_seconds = 1000000000000000000000000000000 is too large",
            "restart.window_seconds",
        ] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
        let db = MINIMAL.replace(
            "ledger = \"${LEDGER}\"",
            "ledger = { path = \"a.db\", max_size_mb = 18446744073709551615 }",
        );
        assert!(
            parse(&db)
                .unwrap_err()
                .to_string()
                .contains("max_size_mb = 18446744073709551615 is too large")
        );
    }

    #[test]
    fn api_host_keys_parse_and_bad_host_names_name_the_line() {
        let config = parse(MINIMAL).unwrap();
        assert!(config.engine.allowed_hosts.is_empty());
        assert!(!config.engine.behind_tls);

        let text = format!(
            "[engine]\nallowed_hosts = [\"Weir.Example.com\", \"10.0.0.5\", \"[FD00::5]\", \"${{LEDGER}}\"]\nbehind_tls = true\n{MINIMAL}"
        );
        let config = parse(&text).unwrap();
        assert_eq!(
            config.engine.allowed_hosts,
            ["weir.example.com", "10.0.0.5", "[fd00::5]", "books.db"]
        );
        assert!(config.engine.behind_tls);

        for bad in [
            "weir.example.com:8443",
            "https://weir.example.com",
            "weir.example.com/api",
            "",
            "a..b",
            "[::1",
            "[not-v6]",
            "user@weir.example.com",
        ] {
            let text = format!("[engine]\nallowed_hosts = [\"{bad}\"]\n{MINIMAL}");
            let e = parse(&text).unwrap_err();
            assert_eq!(e.first().line, Some(2), "{bad}: {e}");
            assert!(
                e.to_string().contains(&format!(
                    "engine.allowed_hosts: \"{bad}\" is not a host name"
                )),
                "{bad}: {e}"
            );
        }
        let e = parse(&format!("[engine]\nbehind_tls = \"yes\"\n{MINIMAL}")).unwrap_err();
        assert_eq!(e.first().line, Some(2), "{e}");
    }
}
