//! `weir.toml`: parsing, `${VAR}` interpolation and validation. Every error names the file and,
//! where there is one, the line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use weir_runtime::{DatabaseOptions, DirGrant, Grants, Limits};

use crate::columns::SizeBounds;
use crate::supervisor::RestartPolicy;

/// A configuration problem, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: RawEngine,
    #[serde(default, rename = "pipeline")]
    pipelines: Vec<Spanned<RawPipeline>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    plugins_dir: Option<String>,
    state_db: Option<String>,
    cache_dir: Option<String>,
    listen: Option<String>,
    batch_size: Option<u32>,
    token: Option<Spanned<String>>,
    event_retention: Option<u64>,
    run_retention: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    schedule: Option<String>,
    timezone: Option<String>,
    overlap: Option<String>,
    catch_up: Option<String>,
    concurrency: Option<usize>,
    batch_size: Option<u32>,
    max_rejects: Option<u64>,
    #[serde(default)]
    grants: RawGrants,
    extract: Spanned<RawStep>,
    #[serde(default)]
    transform: Vec<Spanned<RawStep>>,
    load: Vec<Spanned<RawStep>>,
    history: Spanned<RawStep>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    restart: RawRestart,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    max_restarts: Option<u32>,
    window_seconds: Option<f64>,
    backoff_min_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    #[serde(default)]
    read_dirs: Vec<Spanned<String>>,
    #[serde(default)]
    databases: BTreeMap<String, Spanned<RawDatabase>>,
}

/// A granted database: a path, or a table with options.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDatabase {
    Path(String),
    Options(RawDatabaseOptions),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabaseOptions {
    path: String,
    #[serde(default)]
    read_only: bool,
    max_size_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    plugin: Spanned<String>,
    #[serde(default)]
    config: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<usize>,
    max_value_bytes: Option<usize>,
    max_row_bytes: Option<usize>,
    max_batch_bytes: Option<usize>,
    cpu_seconds: Option<f64>,
    timeout_seconds: Option<f64>,
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub plugins_dir: PathBuf,
    pub state_db: PathBuf,
    pub cache_dir: PathBuf,
    pub listen: String,
    /// The API's bearer token (`${VAR}` interpolated); `None`: `WEIR_TOKEN` or a generated one.
    pub token: Option<String>,
    /// Newest events kept in the state database.
    pub event_retention: u64,
    /// Newest run records kept in the state database.
    pub run_retention: u64,
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
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: None,
            message: format!("cannot read config file: {e}"),
        })?;
        Self::parse(file, &text, &|name| std::env::var(name).ok())
    }

    /// Parse config text; `env` resolves `${VAR}`. Relative paths are relative to the file's
    /// folder.
    pub fn parse(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let lines = LineIndex::new(text);
        let err = |span: Option<std::ops::Range<usize>>, message: String| ConfigError {
            file: file.to_owned(),
            line: span.map(|s| lines.line_of(s.start)),
            message,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| err(e.span(), e.message().to_owned()))?;
        let base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let interpolate = |value: &str, span: std::ops::Range<usize>| {
            interpolate(value, env).map_err(|m| err(Some(span), m))
        };
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let engine = EngineConfig {
            plugins_dir: resolve(raw.engine.plugins_dir.as_deref().unwrap_or("plugins")),
            state_db: resolve(raw.engine.state_db.as_deref().unwrap_or("weir-state.db")),
            cache_dir: resolve(raw.engine.cache_dir.as_deref().unwrap_or(".weir-cache")),
            listen: raw
                .engine
                .listen
                .unwrap_or_else(|| "127.0.0.1:7878".to_owned()),
            token: match &raw.engine.token {
                Some(t) => Some(interpolate(t.get_ref(), t.span())?),
                None => None,
            },
            event_retention: raw.engine.event_retention.unwrap_or(100_000).max(1),
            run_retention: raw.engine.run_retention.unwrap_or(10_000).max(1),
        };
        let default_batch = raw.engine.batch_size.unwrap_or(1024);

        let mut pipelines: Vec<PipelineConfig> = Vec::new();
        for spanned in raw.pipelines {
            let span = spanned.span();
            let p = spanned.into_inner();
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(
                    Some(span),
                    format!(
                        "pipeline name \"{}\" must be letters, digits, '-' or '_'",
                        p.name
                    ),
                ));
            }
            if pipelines.iter().any(|q| q.name == p.name) {
                return Err(err(
                    Some(span),
                    format!("pipeline \"{}\" is defined twice", p.name),
                ));
            }
            let mut grants = Grants::default();
            for dir in &p.grants.read_dirs {
                let guest = interpolate(dir.get_ref(), dir.span())?;
                grants.read_dirs.push(DirGrant {
                    host_path: resolve(&guest),
                    guest_path: guest,
                });
            }
            let mut database_options = BTreeMap::new();
            for (name, db) in &p.grants.databases {
                let path = match db.get_ref() {
                    RawDatabase::Path(path) => path,
                    RawDatabase::Options(o) => {
                        database_options.insert(
                            name.clone(),
                            DatabaseOptions {
                                read_only: o.read_only,
                                max_size_bytes: o.max_size_mb.map(|mb| mb << 20),
                            },
                        );
                        &o.path
                    }
                };
                let value = interpolate(path, db.span())?;
                grants.databases.insert(name.clone(), resolve(&value));
            }
            let step = |s: &Spanned<RawStep>| -> Result<StepConfig, ConfigError> {
                let raw = s.get_ref();
                let config = match &raw.config {
                    None => serde_json::Value::Object(Default::default()),
                    Some(table) => {
                        let json = toml_to_json(&toml::Value::Table(table.get_ref().clone()));
                        interpolate_json(json, env).map_err(|m| err(Some(table.span()), m))?
                    }
                };
                Ok(StepConfig {
                    plugin: raw.plugin.get_ref().clone(),
                    config: config.to_string(),
                    line: lines.line_of(raw.plugin.span().start),
                })
            };
            let secs =
                |v: Option<f64>, default: Duration, key: &str| -> Result<Duration, ConfigError> {
                    match v {
                        None => Ok(default),
                        Some(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
                        Some(s) => Err(err(
                            Some(span.clone()),
                            format!("{key} must be a positive number of seconds, not {s}"),
                        )),
                    }
                };
            let limits = {
                let d = Limits::default();
                Limits {
                    memory_bytes: p
                        .limits
                        .memory_mb
                        .map(|m| m << 20)
                        .unwrap_or(d.memory_bytes),
                    cpu_per_call: secs(p.limits.cpu_seconds, d.cpu_per_call, "limits.cpu_seconds")?,
                    wall_per_call: secs(
                        p.limits.timeout_seconds,
                        d.wall_per_call,
                        "timeout_seconds",
                    )?,
                    ..d
                }
            };
            let bounds = {
                let d = SizeBounds::default();
                SizeBounds {
                    max_value_bytes: p.limits.max_value_bytes.unwrap_or(d.max_value_bytes),
                    max_row_bytes: p.limits.max_row_bytes.unwrap_or(d.max_row_bytes),
                    max_batch_bytes: p.limits.max_batch_bytes.unwrap_or(d.max_batch_bytes),
                }
            };
            let restart = {
                let d = RestartPolicy::default();
                let policy = RestartPolicy {
                    max_restarts: p.restart.max_restarts.unwrap_or(d.max_restarts),
                    window: secs(p.restart.window_seconds, d.window, "restart.window_seconds")?,
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
                    return Err(err(
                        Some(span.clone()),
                        "restart.backoff_min_ms is larger than restart.backoff_max_ms".into(),
                    ));
                }
                policy
            };
            if p.load.is_empty() {
                return Err(err(
                    Some(span),
                    format!("pipeline \"{}\" has no load step", p.name),
                ));
            }
            if let Some(expr) = &p.schedule
                && let Err(e) = weir_schedule::Schedule::parse(expr, p.timezone.as_deref())
            {
                return Err(err(Some(span), format!("pipeline \"{}\": {e}", p.name)));
            }
            let overlap = match p.overlap.as_deref() {
                None | Some("skip") => Overlap::Skip,
                Some(other) => {
                    return Err(err(
                        Some(span),
                        format!("overlap = \"{other}\" is not supported (expected \"skip\")"),
                    ));
                }
            };
            let catch_up = match p.catch_up.as_deref() {
                None | Some("once") => CatchUp::Once,
                Some("skip") => CatchUp::Skip,
                Some(other) => {
                    return Err(err(
                        Some(span),
                        format!(
                            "catch_up = \"{other}\" is not supported (expected \"once\" or \"skip\")"
                        ),
                    ));
                }
            };
            let concurrency = p.concurrency.unwrap_or(1);
            if concurrency == 0 {
                return Err(err(Some(span), "concurrency must be at least 1".into()));
            }
            let batch_size = p.batch_size.unwrap_or(default_batch);
            if batch_size == 0 {
                return Err(err(Some(span), "batch_size must be at least 1".into()));
            }
            pipelines.push(PipelineConfig {
                line: lines.line_of(span.start),
                name: p.name,
                schedule: p.schedule,
                timezone: p.timezone,
                overlap,
                catch_up,
                concurrency,
                batch_size,
                max_rejects: p.max_rejects,
                grants,
                database_options,
                extract: step(&p.extract)?,
                transforms: p.transform.iter().map(step).collect::<Result<_, _>>()?,
                loads: p.load.iter().map(step).collect::<Result<_, _>>()?,
                history: step(&p.history)?,
                limits,
                bounds,
                restart,
            });
        }
        Ok(Config {
            file: file.to_owned(),
            engine,
            pipelines,
        })
    }
}

/// Byte offset → 1-based line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// Replace `${VAR}` with the variable's value; `$${` is a literal `${`.
fn interpolate(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(literal) = after.strip_prefix("${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in \"{value}\""))?;
            let name = &body[..end];
            let resolved = env(name).ok_or_else(|| {
                format!("environment variable {name} is not set (used as ${{{name}}})")
            })?;
            out.push_str(&resolved);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn interpolate_json(
    value: serde_json::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => Value::String(interpolate(&s, env)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| interpolate_json(v, env))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, interpolate_json(v, env)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
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
    fn unknown_key_names_file_line_and_key() {
        let text = MINIMAL.replace("name = \"bank\"", "name = \"bank\"\nshedule = \"@daily\"");
        let e = parse(&text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("/etc/weir/weir.toml:"), "{shown}");
        assert!(shown.contains("unknown field `shedule`"), "{shown}");
        assert_eq!(e.line, Some(4), "{shown}");
    }

    #[test]
    fn invalid_toml_names_the_line() {
        let e = parse("[engine]\nplugins_dir = \n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn missing_variable_is_an_error_naming_it() {
        let text = MINIMAL.replace("${LEDGER}", "${NOPE}");
        let e = parse(&text).unwrap_err();
        assert!(e.to_string().contains("NOPE is not set"), "{e}");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn interpolation_handles_literals_and_plain_dollars() {
        let env = |n: &str| (n == "A").then(|| "x".to_owned());
        assert_eq!(interpolate("a${A}b$c$${A}", &env).unwrap(), "axb$c${A}");
        assert!(interpolate("${A", &env).is_err());
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
        assert!(e.starts_with("/etc/weir/weir.toml:2:"), "{e}");
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
}
