//! The shape of `weir.toml` as written, and reading it so that every problem is found in one
//! pass: the document is parsed once with spans; each section is deserialized on its own, and
//! keys that no field takes are collected (with their lines) instead of stopping at the first.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in the file, at a byte range when there is one.
#[derive(Debug)]
pub(super) struct Problem {
    pub span: Option<Range<usize>>,
    pub message: String,
}

/// The document's sections, each as far as it could be read, and the problems found.
pub(super) struct Document {
    pub engine: RawEngine,
    /// Each `[[pipeline]]` that could be read, with its span.
    pub pipelines: Vec<(Range<usize>, RawPipeline)>,
    pub problems: Vec<Problem>,
}

/// Read `text`. Only a document that is not TOML at all fails outright.
pub(super) fn read(text: &str) -> Result<Document, Problem> {
    let root = DeTable::parse(text).map_err(|e| Problem {
        span: e.span(),
        message: e.message().to_owned(),
    })?;
    let mut doc = Document {
        engine: RawEngine::default(),
        pipelines: Vec::new(),
        problems: Vec::new(),
    };
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "engine" => {
                if let Some(engine) = section(value, &mut doc.problems) {
                    doc.engine = engine;
                }
            }
            "pipeline" => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Array(items) => {
                        for item in items {
                            let span = item.span();
                            if let Some(p) = section(item, &mut doc.problems) {
                                doc.pipelines.push((span, p));
                            }
                        }
                    }
                    _ => doc.problems.push(Problem {
                        span: Some(span),
                        message:
                            "`pipeline` must be an array of tables: write each as [[pipeline]]"
                                .into(),
                    }),
                }
            }
            other => doc.problems.push(Problem {
                span: Some(key.span()),
                message: format!(
                    "unknown top-level key `{other}` (expected [engine] or [[pipeline]])"
                ),
            }),
        }
    }
    Ok(doc)
}

/// Deserialize one section, reporting every key no field takes, and the first type error.
fn section<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let tree = value.clone();
    let mut unknown: Vec<Vec<Segment>> = Vec::new();
    let de = toml::de::ValueDeserializer::from(value);
    let result: Result<T, toml::de::Error> =
        serde_ignored::deserialize(de, |path| unknown.push(segments(&path)));
    for path in unknown {
        let name = path
            .iter()
            .rev()
            .find_map(|s| match s {
                Segment::Key(k) => Some(k.as_str()),
                Segment::Index(_) => None,
            })
            .unwrap_or("?");
        problems.push(Problem {
            span: locate(&tree, &path),
            message: format!("unknown field `{name}`"),
        });
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(Problem {
                span: e.span().or_else(|| Some(tree.span())),
                message: e.message().to_owned(),
            });
            None
        }
    }
}

/// A step of a path into the document.
enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    };
    match path {
        Path::Seq { index, .. } => out.push(Segment::Index(*index)),
        Path::Map { key, .. } => out.push(Segment::Key(key.clone())),
        _ => {}
    }
    out
}

/// The span of the key at `path`, or of the nearest enclosing value that has one.
fn locate(tree: &Spanned<DeValue<'_>>, path: &[Segment]) -> Option<Range<usize>> {
    let mut here = tree;
    let mut best = tree.span();
    for segment in path {
        match (segment, here.get_ref()) {
            // A `Spanned<T>` field deserializes through a private key of its own.
            (Segment::Key(k), _) if k.starts_with("$__serde_spanned") => continue,
            (Segment::Key(k), DeValue::Table(table)) => {
                let (key, value) = table.iter().find(|(key, _)| key.get_ref() == k)?;
                best = key.span();
                here = value;
            }
            (Segment::Index(i), DeValue::Array(items)) => {
                here = items.get(*i)?;
                best = here.span();
            }
            _ => break,
        }
    }
    Some(best)
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawEngine {
    pub(super) plugins_dir: Option<String>,
    pub(super) state_db: Option<String>,
    pub(super) cache_dir: Option<String>,
    pub(super) lock_dir: Option<String>,
    pub(super) listen: Option<String>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<Spanned<String>>,
    pub(super) behind_tls: Option<bool>,
    pub(super) batch_size: Option<u32>,
    pub(super) token: Option<Spanned<String>>,
    pub(super) event_retention: Option<u64>,
    pub(super) run_retention: Option<u64>,
    pub(super) cluster: Option<Spanned<RawCluster>>,
}

/// `engine.cluster`; checked in `config/cluster.rs`.
#[derive(Debug, Deserialize)]
pub(super) struct RawCluster {
    pub(super) url: Spanned<String>,
    pub(super) password: Option<Spanned<String>>,
    pub(super) host_id: Option<Spanned<String>>,
    pub(super) lease_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawPipeline {
    pub(super) name: String,
    pub(super) schedule: Option<Spanned<String>>,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) overlap: Option<Spanned<String>>,
    pub(super) catch_up: Option<Spanned<String>>,
    pub(super) concurrency: Option<Spanned<usize>>,
    pub(super) cluster_concurrency: Option<Spanned<usize>>,
    pub(super) batch_size: Option<Spanned<u32>>,
    pub(super) max_rejects: Option<u64>,
    #[serde(default)]
    pub(super) grants: RawGrants,
    pub(super) extract: Spanned<RawStep>,
    #[serde(default)]
    pub(super) transform: Vec<Spanned<RawStep>>,
    pub(super) load: Vec<Spanned<RawStep>>,
    pub(super) history: Spanned<RawStep>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) restart: RawRestart,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawRestart {
    pub(super) max_restarts: Option<u32>,
    pub(super) window_seconds: Option<f64>,
    pub(super) backoff_min_ms: Option<u64>,
    pub(super) backoff_max_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawGrants {
    #[serde(default)]
    pub(super) read_dirs: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) databases: BTreeMap<String, Spanned<RawDatabase>>,
    #[serde(default)]
    pub(super) http: BTreeMap<String, Spanned<RawHttpGrant>>,
}

/// A granted HTTP connection (`grants.http.<name>`); checked in `config/http.rs`.
#[derive(Debug, Deserialize)]
pub(super) struct RawHttpGrant {
    pub(super) url: Spanned<String>,
    pub(super) auth: Option<Spanned<RawHttpAuth>>,
    #[serde(default)]
    pub(super) allow_private: bool,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) connect_timeout_seconds: Option<f64>,
    pub(super) first_byte_timeout_seconds: Option<f64>,
    pub(super) between_bytes_timeout_seconds: Option<f64>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) requests_per_second: Option<f64>,
}

/// `auth = { bearer = "…" }`, `{ basic = { … } }` or `{ oauth2 = { … } }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawHttpAuth {
    Bearer(String),
    Basic(RawBasicAuth),
    OAuth2(RawOAuth2),
}

#[derive(Debug, Deserialize)]
pub(super) struct RawBasicAuth {
    pub(super) user: String,
    pub(super) password: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawOAuth2 {
    pub(super) token_url: String,
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) scope: Option<String>,
    /// `"basic"` (default) or `"post"`: how the client authenticates to the token endpoint.
    pub(super) client_auth: Option<String>,
}

/// A granted database: a path, or a table with options (`path` for SQLite, `url` for
/// PostgreSQL; which options apply to which is checked in `config/postgres.rs`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDatabase {
    Path(String),
    Options(RawDatabaseOptions),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabaseOptions {
    pub(super) path: Option<String>,
    pub(super) url: Option<String>,
    pub(super) password: Option<String>,
    #[serde(default)]
    pub(super) read_only: bool,
    pub(super) max_size_mb: Option<u64>,
    pub(super) statement_timeout: Option<String>,
    pub(super) sslmode: Option<String>,
    pub(super) sslrootcert: Option<String>,
    pub(super) schema: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawStep {
    pub(super) plugin: Spanned<String>,
    #[serde(default)]
    pub(super) config: Option<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawLimits {
    pub(super) memory_mb: Option<usize>,
    pub(super) max_value_bytes: Option<usize>,
    pub(super) max_row_bytes: Option<usize>,
    pub(super) max_batch_bytes: Option<usize>,
    pub(super) cpu_seconds: Option<f64>,
    pub(super) timeout_seconds: Option<f64>,
    pub(super) max_query_rows: Option<usize>,
    pub(super) max_query_bytes: Option<usize>,
    pub(super) max_checkpoint_bytes: Option<usize>,
    pub(super) max_message_bytes: Option<usize>,
    pub(super) max_raw_bytes: Option<usize>,
    pub(super) max_result_bytes: Option<usize>,
}
