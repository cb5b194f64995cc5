//! `escape-sandbox`: an extractor that tries one way out of its sandbox per partition and
//! reports what happened, so a test can check every attempt is denied with a clear error.
//!
//! `partitions` returns, in this order:
//!
//! | partition    | attempt                                                                 |
//! |--------------|-------------------------------------------------------------------------|
//! | `etc-passwd` | read `/etc/passwd`                                                      |
//! | `dotdot`     | read `<granted_dir>/../../etc/passwd`, then `<granted_dir>/../secret.txt` |
//! | `symlink`    | read `<granted_dir>/link` (the test makes it a symlink pointing outside) |
//! | `write`      | create `<granted_dir>/new.txt` and write to it (the grant is read-only) |
//! | `database`   | `sql::Connection::open(<database>)`, a name that is not granted         |
//!
//! `open` makes the attempt and never returns a reader:
//!
//! - denied: `access-denied("<partition>: denied: <why>")`, where `<why>` is the OS error of
//!   each file attempted (`<path>: <error>`, joined by `; `) or the host's error for `database`;
//! - not denied: `other("<partition>: ESCAPED: <what>")` with `<what>` = `read N bytes from
//!   <path>`, `created <path> and wrote N bytes` (or `created <path>, write failed: …`), or
//!   `opened database "<name>"`.
//!
//! Any I/O error counts as denied (a sandbox may deny by making a path invisible), so the test
//! must create the targets on the host: `../secret.txt` next to the granted dir, the symlink's
//! target. `database` counts only `access-denied` from the host as denied; any other error is
//! returned as it came, prefixed `database: `.
//!
//! Config keys: `granted_dir` (the granted read dir as the guest sees it, i.e. as written in
//! `grants.read_dirs`), `database` (a database name that is NOT granted). Both required.

use std::io::Write as _;

use serde::Deserialize;
use weir_sdk::sql::Connection;
use weir_sdk::{Batch, Error, Partition, PluginInfo, Schema};

const NAME: &str = "escape-sandbox";

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "escape-sandbox",
  "type": "object",
  "additionalProperties": false,
  "required": ["granted_dir", "database"],
  "properties": {
    "granted_dir": { "type": "string", "minLength": 1, "description": "the granted read dir, as written in grants.read_dirs" },
    "database": { "type": "string", "minLength": 1, "description": "a database name that is NOT granted" }
  }
}"#;

/// The partitions, one per attempt, in order.
const ATTEMPTS: [&str; 5] = ["etc-passwd", "dotdot", "symlink", "write", "database"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    granted_dir: String,
    database: String,
}

/// What an attempt came to.
enum Outcome {
    Denied(String),
    Escaped(String),
}

/// Read each path; the first that reads is an escape.
fn read_each(paths: &[String]) -> Outcome {
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read(path) {
            Ok(bytes) => {
                return Outcome::Escaped(format!("read {} bytes from {path}", bytes.len()));
            }
            Err(e) => errors.push(format!("{path}: {e}")),
        }
    }
    Outcome::Denied(errors.join("; "))
}

fn create_and_write(path: &str) -> Outcome {
    const CONTENT: &[u8] = b"escape-sandbox was here\n";
    match std::fs::File::create(path) {
        Err(e) => Outcome::Denied(format!("{path}: {e}")),
        Ok(mut file) => Outcome::Escaped(match file.write_all(CONTENT) {
            Ok(()) => format!("created {path} and wrote {} bytes", CONTENT.len()),
            Err(e) => format!("created {path}, write failed: {e}"),
        }),
    }
}

fn open_database(name: &str) -> Result<Outcome, Error> {
    match Connection::open(name) {
        Ok(_) => Ok(Outcome::Escaped(format!("opened database {name:?}"))),
        Err(Error::AccessDenied(why)) => Ok(Outcome::Denied(why)),
        Err(other) => Err(other.context("database")),
    }
}

/// The plugin.
pub struct EscapeSandbox;

/// No reader is ever opened: every attempt ends in an error.
pub enum NoReader {}

impl weir_sdk::Extractor for EscapeSandbox {
    type Reader = NoReader;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "test plugin: each partition is one attempt to escape the sandbox".into(),
            config_schema: CONFIG_SCHEMA.into(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        weir_sdk::parse_config::<Config>(NAME, config)?;
        Ok(ATTEMPTS
            .iter()
            .map(|id| Partition {
                id: (*id).into(),
                size: None,
            })
            .collect())
    }

    fn open(config: &str, partition: Partition, _cp: Option<String>) -> Result<NoReader, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        let dir = config.granted_dir.trim_end_matches('/');
        let attempt = partition.id.as_str();
        let outcome = match attempt {
            "etc-passwd" => read_each(&["/etc/passwd".into()]),
            "dotdot" => read_each(&[
                format!("{dir}/../../etc/passwd"),
                format!("{dir}/../secret.txt"),
            ]),
            "symlink" => read_each(&[format!("{dir}/link")]),
            "write" => create_and_write(&format!("{dir}/new.txt")),
            "database" => open_database(&config.database)?,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "{NAME}: unknown partition {other:?}; expected one of {}",
                    ATTEMPTS.join(", ")
                )));
            }
        };
        match outcome {
            Outcome::Denied(why) => Err(Error::AccessDenied(format!("{attempt}: denied: {why}"))),
            Outcome::Escaped(what) => Err(Error::Other(format!("{attempt}: ESCAPED: {what}"))),
        }
    }
}

impl weir_sdk::Reader for NoReader {
    fn schema(&self) -> Schema {
        match *self {}
    }

    fn next_batch(&mut self, _max_rows: u32) -> Result<Option<Batch>, Error> {
        match *self {}
    }
}

weir_sdk::export_extractor!(EscapeSandbox);
