//! Test fixtures: a temporary folder with a `weir.toml`, an inbox and the real bundled plugins,
//! and a way to run the real `weir` binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The bundled plugins, built by `just plugins`. Missing plugins fail the test loudly rather
/// than skipping it.
pub fn plugins_dist() -> PathBuf {
    let dist = repo_root().join("plugins/dist");
    for name in [
        "csv-extract",
        "map-transform",
        "sqlite-load",
        "sqlite-history",
    ] {
        assert!(
            dist.join(format!("{name}.wasm")).is_file(),
            "{}/{name}.wasm is missing: run `just plugins` (or `just test`, which builds them)",
            dist.display()
        );
    }
    dist
}

/// The contract-breaking test plugins, built by `just test-plugins`.
pub fn test_plugin(name: &str) -> PathBuf {
    let path = repo_root()
        .join("tests/plugins/dist")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} is missing: run `just test-plugins`",
        path.display()
    );
    path
}

/// Shared across tests so each plugin is compiled once per machine, not once per test.
pub fn shared_cache() -> PathBuf {
    repo_root().join("target/weir-test-cache")
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("inbox")).unwrap();
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The `[engine]` section every fixture uses.
    pub fn engine_section(plugins_dir: &Path) -> String {
        format!(
            "[engine]\nplugins_dir = \"{}\"\ncache_dir = \"{}\"\n\n",
            plugins_dir.display(),
            shared_cache().display()
        )
    }

    /// Write `weir.toml`: the engine section plus `pipelines`.
    pub fn config(&self, pipelines: &str) {
        let text = Self::engine_section(&plugins_dist()) + pipelines;
        std::fs::write(self.path("weir.toml"), text).unwrap();
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub fn append(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(bytes.as_ref()).unwrap();
    }

    /// Run `weir -c weir.toml ARGS` in the fixture folder.
    pub fn weir(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("-c")
            .arg(self.path("weir.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        Run(output)
    }

    /// `weir` with extra environment variables (a grant's password, for instance).
    pub fn weir_env(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("-c")
            .arg(self.path("weir.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        Run(output)
    }

    pub fn db(&self, rel: &str) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path(rel)).unwrap()
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(
            self.0.status.success(),
            "weir failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub fn failure(&self) -> &Self {
        assert!(
            !self.0.status.success(),
            "weir should have failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// The `total` line of a run summary: (read, loaded, rejected).
    #[track_caller]
    pub fn totals(&self) -> (u64, u64, u64) {
        let out = self.stdout();
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with("total "))
            .unwrap_or_else(|| panic!("no total line in:\n{out}\n{}", self.stderr()));
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|s| s.replace(',', "").parse().unwrap())
            .collect();
        (n[0], n[1], n[2])
    }
}

/// A CSV → SQLite pipeline with no transform, appending into `table` of `ledger.db`.
pub fn csv_pipeline(name: &str, extract: &str, load: &str) -> String {
    format!(
        r#"
[[pipeline]]
name = "{name}"
grants = {{ read_dirs = ["inbox"], databases = {{ ledger = "ledger.db" }} }}
extract = {{ plugin = "csv-extract", config = {{ {extract} }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", {load} }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#
    )
}

/// Set `path`'s modification time `secs` seconds into the past. csv-extract holds back a last
/// record without a line break while its file was modified within `settle_seconds` (a writer
/// may still be at it), so a fixture standing for a file at rest must not look freshly copied.
pub fn age(path: &Path, secs: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

pub fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

impl Fixture {
    /// A plugins folder with the bundled plugins plus the named test plugins, and a config
    /// using it.
    pub fn config_with_test_plugins(&self, test_plugins: &[&str], pipelines: &str) {
        let dir = self.path("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(plugins_dist()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        for name in test_plugins {
            std::fs::copy(test_plugin(name), dir.join(format!("{name}.wasm"))).unwrap();
        }
        std::fs::write(
            self.path("weir.toml"),
            Fixture::engine_section(&dir) + pipelines,
        )
        .unwrap();
    }

    /// Run with `--events events.jsonl` and return the run and its events.
    pub fn weir_with_events(&self, args: &[&str]) -> (Run, Vec<serde_json::Value>) {
        let events = self.path("events.jsonl");
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--events", events.to_str().unwrap()]);
        let run = self.weir(&all);
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        let parsed = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (run, parsed)
    }
}

/// Events of one type (and partition, if given).
pub fn events_of<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// A pipeline whose extractor is `extract_plugin` with `extract_config`, loading into the
/// ledger with upsert on `id`; `extra` goes inside the pipeline table (limits, restart, ...).
pub fn test_pipeline(
    name: &str,
    extract_plugin: &str,
    extract_config: &str,
    extra: &str,
) -> String {
    // The plugins that never produce rows have no `id` column to upsert on.
    let load_mode = match extract_plugin {
        "spin-forever" | "alloc-bomb" | "escape-sandbox" => r#"mode = "append""#,
        _ => r#"mode = "upsert", key = ["id"]"#,
    };
    format!(
        r#"
[[pipeline]]
name = "{name}"
{extra}
grants = {{ read_dirs = ["inbox"], databases = {{ ledger = "ledger.db", markers = "markers.db" }} }}
extract = {{ plugin = "{extract_plugin}", config = {{ {extract_config} }} }}
load = [{{ plugin = "sqlite-load", config = {{ database = "ledger", table = "{name}", {load_mode} }} }}]
history = {{ plugin = "sqlite-history", config = {{ database = "ledger" }} }}
"#
    )
}
