//! `http-extract`: weir's bundled JSON REST extractor, a WebAssembly component.
//!
//! It reads resources of one HTTP connection the pipeline grants (`grants.http`), addressing
//! it by name (`http://hr/employees`): the host maps the name to the real URL, checks every
//! request against the grant and adds the credentials, which this plugin never sees.
//!
//! - **Partitions**: one per resource, or with `parent` one per record of another resource
//!   (`employees@org_unit=42`); [`reader::PartitionId`].
//! - **Records** are an array at a JSON pointer of each response; [`mapping`] turns them into
//!   typed columns (declared, or inferred from the first page with the reasons logged) and
//!   rejects the ones that do not fit, naming the column.
//! - **Pages** follow each other by page number, offset, a body cursor, a body next-URL, the
//!   `Link` header or the watermark itself (keyset), and end at an empty page or a missing
//!   next; a request or page that repeats stops the partition instead of looping ([`page`]).
//! - **Incremental passes** and what they guarantee: [`reader`] and the README.
//! - **Errors**: 429/503, other 5xx and transport failures are `unavailable` (the host waits
//!   for `Retry-After` and restarts from the last committed batch); 401/403 `access-denied`;
//!   a body that is not JSON or has no records `bad-data` naming the URL and status.
//!
//! Everything but this file is plain Rust over the [`page::Source`] trait, tested natively
//! with an in-memory API.

pub mod checkpoint;
pub mod config;
pub mod mapping;
pub mod page;
pub mod reader;
pub mod time;
pub mod url;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod live;
#[cfg(test)]
mod tests;

use config::{Config, NAME};
use page::Source;
use reader::{HttpReader, Notice, PartitionId};
use time::Instant;
use weir_sdk::http::{self, Response};
use weir_sdk::{Batch, Error, Partition, PluginInfo, Schema};

/// The plugin.
pub struct HttpExtract;

/// Requests through the host's `wasi:http/outgoing-handler`.
pub struct HostSource {
    headers: Vec<(String, String)>,
    options: http::Options,
    /// The request sent ahead by [`Source::prefetch`], used by the `get` of the same URL.
    ahead: Option<http::Pending>,
}

impl HostSource {
    /// A source sending the config's extra headers and body cap.
    pub fn new(config: &Config) -> Self {
        let mut headers: Vec<(String, String)> = config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            headers.push(("accept".into(), "application/json".into()));
        }
        HostSource {
            headers,
            options: http::Options {
                max_body_bytes: config.max_body_bytes,
                ..http::Options::default()
            },
            ahead: None,
        }
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

impl Source for HostSource {
    fn get(&mut self, url: &str) -> Result<Response, Error> {
        // A request sent ahead for another URL is abandoned (dropping it cancels it).
        if let Some(pending) = self.ahead.take().filter(|p| p.url() == url) {
            return pending.wait().map_err(refusal_is_denied);
        }
        http::get_with(url, &self.headers(), &self.options).map_err(refusal_is_denied)
    }

    fn prefetch(&mut self, url: &str) {
        // A request that cannot even be started is left to the `get`, which reports it.
        self.ahead = http::start(http::Method::Get, url, &self.headers(), &[], &self.options).ok();
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The host refuses a request outside the grant as `internal-error("weir: http grant \"hr\"
/// refuses …")` or `internal-error("weir: no http grant matches …")`, which `weir_sdk::http`
/// reads as a transport failure (`unavailable`, retried). A refusal will not change on retry:
/// it is `access-denied`, so the partition fails at once naming the grant.
fn refusal_is_denied(e: http::HttpError) -> Error {
    match &e {
        http::HttpError::Transport { reason, .. } if is_host_refusal(reason) => {
            Error::AccessDenied(e.to_string())
        }
        _ => e.into(),
    }
}

/// Whether a failure's reason is the host's refusal of the request (weir-http's wording).
pub fn is_host_refusal(reason: &str) -> bool {
    reason.starts_with("weir: no http grant matches ")
        || (reason.starts_with("weir: http grant \"") && reason.contains("\" refuses "))
}

/// The partitions of a configuration: each extracted resource, or one per distinct value of
/// its parent's key, in the parent's order.
pub fn partitions(
    config: &Config,
    src: &mut dyn Source,
    notices: &mut Vec<Notice>,
) -> Result<Vec<String>, Error> {
    let mut ids = Vec::new();
    for r in config.resources.iter().filter(|r| r.extract) {
        let Some(parent) = &r.parent else {
            ids.push(r.name.clone());
            continue;
        };
        let records = reader::read_all(src, config, &parent.resource, notices).map_err(|e| {
            e.context(format!(
                "{NAME}: listing {} for {}",
                parent.resource, r.name
            ))
        })?;
        let mut values: Vec<String> = Vec::new();
        let mut missing = 0;
        for record in &records {
            match page::key_text(record.pointer(&parent.key)) {
                Some(v) if !values.contains(&v) => values.push(v),
                Some(_) => {}
                None => missing += 1,
            }
        }
        if missing > 0 {
            notices.push(Notice::Warn(format!(
                "{NAME}: {missing} of {} {} records have no value at {}; no partition for them",
                records.len(),
                parent.resource,
                parent.key
            )));
        }
        ids.extend(
            values
                .iter()
                .map(|v| PartitionId::child(&r.name, &parent.param, v)),
        );
    }
    Ok(ids)
}

fn log(notices: Vec<Notice>) {
    for notice in notices {
        match notice {
            Notice::Info(m) => weir_sdk::log::info(&m),
            Notice::Warn(m) => weir_sdk::log::warn(&m),
        }
    }
}

impl weir_sdk::Extractor for HttpExtract {
    type Reader = HttpReader<HostSource>;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads JSON REST resources of a granted HTTP connection: paged, \
                          incremental by a watermark with lookback, typed columns, tombstones"
                .into(),
            config_schema: config::CONFIG_SCHEMA.into(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        let config = Config::parse(config)?;
        let mut notices = Vec::new();
        let ids = partitions(&config, &mut HostSource::new(&config), &mut notices);
        log(notices);
        Ok(ids?
            .into_iter()
            .map(|id| Partition { id, size: None })
            .collect())
    }

    fn open(
        config: &str,
        partition: Partition,
        checkpoint: Option<String>,
    ) -> Result<Self::Reader, Error> {
        let config = Config::parse(config)?;
        let source = HostSource::new(&config);
        let mut reader = HttpReader::open(&config, &partition.id, checkpoint.as_deref(), source)?;
        log(reader.take_notices());
        Ok(reader)
    }
}

impl weir_sdk::Reader for HttpReader<HostSource> {
    fn schema(&self) -> Schema {
        HttpReader::schema(self).clone()
    }

    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        let batch = HttpReader::next_batch(self, max_rows);
        log(self.take_notices());
        batch
    }
}

weir_sdk::export_extractor!(HttpExtract);
