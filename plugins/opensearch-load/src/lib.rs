//! `opensearch-load`: a sink that writes rows as documents of an OpenSearch or Elasticsearch
//! index through the documented `_bulk` API only, over a connection the pipeline grants.
//!
//! - `_id` is the row's key; every action carries `version_type=external` with the row's
//!   version (a configured column, else its source position), so a batch sent again after a
//!   crash can never overwrite newer data: its actions come back `409`, which is success here.
//! - A tombstone (`deleted_by`) is a bulk `delete` with the same external version.
//! - The index is created when missing, with a mapping derived from the schema (`dynamic:
//!   strict`) or the operator's `mappings`; columns the stream gained are added to it.
//! - A refused action (`mapper_parsing_exception` …) is a reject of that row with the server's
//!   reason; 429/5xx (for the request or an action) and connection failures fail the batch as
//!   `unavailable`, which the host retries (honouring `Retry-After`).
//! - `write` returns only once every bulk request of the batch was acknowledged, so the host
//!   commits the batch's checkpoint only after the index has it.

mod bulk;
mod config;
mod document;
mod mapping;

use config::{Config, RawConfig};
use document::{Action, Encoder};
use weir_sdk::http::{self, Method, Response};
use weir_sdk::{BatchView, Error, LoadTarget, PluginInfo, Schema, Sink, SinkLoader, SinkRejects};

const NAME: &str = "opensearch-load";

/// How the sink reaches the cluster: through the host's granted HTTP, or a fake in tests.
pub trait Transport: 'static {
    /// Send `method path` (relative to the cluster's base URL) with `body` (`content_type`
    /// when not empty) and return the response, whatever its status.
    fn request(
        &mut self,
        method: Method,
        path: &str,
        body: &[u8],
        content_type: &str,
    ) -> Result<Response, Error>;
}

/// The cluster behind a `grants.http` connection, addressed by its name.
pub struct Granted {
    base: String,
}

impl Transport for Granted {
    fn request(
        &mut self,
        method: Method,
        path: &str,
        body: &[u8],
        content_type: &str,
    ) -> Result<Response, Error> {
        let url = format!("{}/{path}", self.base);
        let mut headers = vec![("accept", "application/json")];
        if !body.is_empty() {
            headers.push(("content-type", content_type));
        }
        Ok(http::request(
            method,
            &url,
            &headers,
            body,
            &http::Options::default(),
        )?)
    }
}

/// The plugin.
pub struct OpenSearchLoad;

/// The sink of one stream.
pub struct OpenSearchSink<T: Transport = Granted> {
    config: Config,
    schema: Schema,
    encoder: Encoder,
    transport: T,
    /// The index was checked (and created or extended) by this sink.
    ready: bool,
    /// The request body being built, reused across requests.
    body: Vec<u8>,
    stats: Stats,
}

/// What this sink did, for the summary it logs at the end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Stats {
    indexed: u64,
    deleted: u64,
    /// Actions the index already had at this version or newer (replays, older data).
    conflicts: u64,
    rejected: u64,
    requests: u64,
}

impl SinkLoader for OpenSearchLoad {
    type Sink = OpenSearchSink;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "rows as documents of an OpenSearch or Elasticsearch index (_bulk, external versions, tombstones as deletes)".into(),
            config_schema: config::CONFIG_SCHEMA.into(),
        }
    }

    fn open(config: &str, schema: Schema) -> Result<LoadTarget<OpenSearchSink>, Error> {
        let raw: RawConfig = weir_sdk::parse_config(NAME, config)?;
        let base = format!("http://{}", raw.connection());
        // Nothing is sent here: `weir validate` opens loaders too.
        OpenSearchSink::new(raw, schema, Granted { base }).map(LoadTarget::Sink)
    }
}

impl<T: Transport> OpenSearchSink<T> {
    fn new(raw: RawConfig, schema: Schema, transport: T) -> Result<Self, Error> {
        let config = raw
            .resolve(&schema)
            .map_err(|e| Error::InvalidConfig(format!("{NAME}: {e}")))?;
        Ok(Self {
            encoder: Encoder::new(&schema, &config),
            config,
            schema,
            transport,
            ready: false,
            body: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// The index path segment, percent-encoded beyond what index names may hold plainly.
    fn index_path(&self) -> String {
        let mut out = String::new();
        for b in self.config.index.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    fn call(&mut self, method: Method, path: &str, body: &[u8]) -> Result<Response, Error> {
        self.transport
            .request(method, path, body, "application/json")
            .map_err(|e| e.context(NAME))
    }

    /// Make sure the index exists with a field for every column: created when missing (with
    /// the operator's mappings, or derived ones), extended when the stream has new columns.
    fn prepare_index(&mut self) -> Result<(), Error> {
        if !self.config.create_index {
            return Ok(());
        }
        let index = self.index_path();
        let head = self.call(Method::Head, &index, &[])?;
        let exists = match head.status {
            200 => true,
            404 => {
                let mut body = serde_json::Map::new();
                let mappings = match &self.config.mappings {
                    Some(m) => m.clone(),
                    None => mapping::derived(&self.schema),
                };
                body.insert("mappings".into(), mappings.into());
                if let Some(settings) = &self.config.settings {
                    body.insert("settings".into(), settings.clone().into());
                }
                let body = serde_json::to_vec(&body).expect("a JSON map serialises");
                let created = self.call(Method::Put, &index, &body)?;
                let raced = created.status == 400
                    && String::from_utf8_lossy(&created.body)
                        .contains("resource_already_exists_exception");
                if !raced {
                    status(&created, &format!("creating index {}", self.config.index))?;
                    weir_sdk::log::info(&format!("{NAME}: created index {}", self.config.index));
                }
                raced
            }
            _ => {
                status(&head, &format!("checking index {}", self.config.index))?;
                true
            }
        };
        if exists && self.config.mappings.is_none() {
            self.add_missing_fields(&index)?;
        }
        Ok(())
    }

    /// Fields for columns the index does not map yet (the stream gained a column).
    fn add_missing_fields(&mut self, index: &str) -> Result<(), Error> {
        let path = format!("{index}/_mapping");
        let answer = self.call(Method::Get, &path, &[])?;
        status(
            &answer,
            &format!("reading the mapping of index {}", self.config.index),
        )?;
        let answer: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| {
            Error::BadData(format!(
                "{NAME}: the mapping of index {} is not JSON: {e}",
                self.config.index
            ))
        })?;
        let missing: Vec<String> = mapping::missing(&self.schema, &answer)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let properties = mapping::properties(&self.schema, missing.iter().map(String::as_str));
        let body = serde_json::json!({ "properties": properties });
        let body = serde_json::to_vec(&body).expect("JSON serialises");
        let put = self.call(Method::Put, &path, &body)?;
        status(
            &put,
            &format!(
                "adding fields {} to index {}",
                missing.join(", "),
                self.config.index
            ),
        )?;
        weir_sdk::log::info(&format!(
            "{NAME}: added fields {} to index {}",
            missing.join(", "),
            self.config.index
        ));
        Ok(())
    }

    /// Send one bulk request of `actions` (rows `rows` of the batch) and sort its outcomes.
    fn send_bulk(
        &mut self,
        rows: &[u32],
        actions: &[Action],
        rejects: &mut SinkRejects,
    ) -> Result<(), Error> {
        let path = format!("_bulk{}", self.config.refresh.query());
        let body = std::mem::take(&mut self.body);
        let answer = self
            .transport
            .request(Method::Post, &path, &body, "application/x-ndjson")
            .map_err(|e| e.context(NAME));
        self.body = body;
        self.body.clear();
        let answer = answer?;
        self.stats.requests += 1;
        if answer.status == 413 {
            return Err(Error::BadData(format!(
                "{NAME}: the cluster refused a bulk request of {} actions as too large (413); lower bulk_max_bytes or bulk_max_docs",
                actions.len()
            )));
        }
        status(&answer, "bulk request")?;
        let outcomes = bulk::outcomes(&answer.body, actions)
            .map_err(|e| Error::Other(format!("{NAME}: {e}")))?;
        let mut retry: Option<(usize, String)> = None;
        for ((&row, &action), outcome) in rows.iter().zip(actions).zip(outcomes) {
            match outcome {
                bulk::Outcome::Done => match action {
                    Action::Index => self.stats.indexed += 1,
                    Action::Delete => self.stats.deleted += 1,
                },
                bulk::Outcome::Conflict => self.stats.conflicts += 1,
                bulk::Outcome::Refused(reason) => {
                    self.stats.rejected += 1;
                    rejects.reject(row as usize, reason);
                }
                bulk::Outcome::Retry(reason) => {
                    let (count, _) = retry.get_or_insert((0, reason));
                    *count += 1;
                }
            }
        }
        if let Some((count, reason)) = retry {
            // What was written is idempotent by version: the whole batch goes again.
            return Err(Error::Unavailable(format!(
                "{NAME}: the cluster refused {count} of {} actions for now ({reason}); the batch will be sent again",
                actions.len()
            )));
        }
        Ok(())
    }
}

/// `Ok` for a 2xx response, else the error its status calls for (429/503 unavailable with the
/// server's Retry-After, 401/403 access-denied, other 4xx bad-data), naming the plugin.
fn status(response: &Response, what: &str) -> Result<(), Error> {
    response.check_status(what).map_err(|e| e.context(NAME))
}

impl<T: Transport> Sink for OpenSearchSink<T> {
    fn write(&mut self, batch: &BatchView<'_>, rejects: &mut SinkRejects) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        if !self.ready {
            self.prepare_index()?;
            self.ready = true;
        }
        let positions = batch.positions();
        let mut rows: Vec<u32> = Vec::new();
        let mut actions: Vec<Action> = Vec::new();
        let mut pending_row: Option<(u32, Action, Vec<u8>)> = None;
        for row in batch.rows() {
            let index = u32::try_from(row.index()).expect("a batch has fewer than 2^32 rows");
            let start = self.body.len();
            let position = positions.get(row.index()).copied().unwrap_or_default();
            let action = match self
                .encoder
                .encode(&row, position, &self.config, &mut self.body)
            {
                Ok(action) => action,
                Err(reason) => {
                    self.stats.rejected += 1;
                    rejects.reject(row.index(), reason);
                    continue;
                }
            };
            // A row that would take the request past its byte budget opens the next one (a
            // single larger row goes alone).
            if self.body.len() > self.config.bulk_max_bytes && !rows.is_empty() {
                let tail = self.body.split_off(start);
                pending_row = Some((index, action, tail));
            } else {
                rows.push(index);
                actions.push(action);
            }
            if pending_row.is_some() || rows.len() >= self.config.bulk_max_docs {
                self.send_bulk(&rows, &actions, rejects)?;
                rows.clear();
                actions.clear();
                if let Some((index, action, tail)) = pending_row.take() {
                    self.body.extend_from_slice(&tail);
                    rows.push(index);
                    actions.push(action);
                }
            }
        }
        if !rows.is_empty() {
            self.send_bulk(&rows, &actions, rejects)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        let s = self.stats;
        weir_sdk::log::info(&format!(
            "{NAME}: index {}: {} documents indexed, {} deleted, {} already there at this version or newer, {} refused, in {} bulk requests",
            self.config.index, s.indexed, s.deleted, s.conflicts, s.rejected, s.requests
        ));
        Ok(())
    }
}

weir_sdk::export_sink_loader!(OpenSearchLoad);

#[cfg(test)]
mod tests;
