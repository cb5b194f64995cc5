//! `csv-extract`: weir's bundled CSV extractor, a WebAssembly component.
//!
//! Configuration (JSON, see [`config::CONFIG_SCHEMA`]): `path` is a directory exactly as listed
//! in the pipeline's `grants.read_dirs` plus a file-name glob; each matching file is one
//! partition, id = its path, in sorted order. Each file becomes one text column per header
//! field (or `integer` / `real` for columns named in `types`), read into columnar batches.
//!
//! Choices worth knowing:
//!
//! - **Positions** are physical line numbers (1-based, header = line 1) where a record starts;
//!   line breaks inside quoted fields are counted, `\r\n`, `\n` and a lone `\r` are one each.
//! - **Empty lines** are skipped (they are still counted). An empty field is `""`, not null.
//! - **Quotes** follow RFC 4180 ([`parser`]): a quote inside an unquoted field or text after a
//!   closing quote makes the record a reject naming the column; `quotes = "lenient"` keeps such
//!   a field verbatim instead. No mode drops or reorders a character.
//! - **The last line without a line break** is a complete record once the file has settled:
//!   many files (and the csv-spectrum suite) end that way. While the file was modified less
//!   than `settle_seconds` ago, a writer may still be appending to it, so such a record (and an
//!   open quote at end of file) is held back: no row, no reject, the checkpoint stays before it.
//! - **Duplicate header names** (exactly or ignoring case) stop the file as `bad-data`, or with
//!   `duplicate_headers = "rename"` become `name_2`, … with a warning ([`header`]).
//! - **Rejects** (wrong field count, a stray quote, invalid UTF-8, a value that is not a number
//!   in a typed column, unterminated quote, records over `max_record_bytes`) keep their line, a
//!   reason and the first 4 KiB of the raw record; they never stop the file.
//! - **Checkpoints** ([`checkpoint`]) hold the offset after the last record, the line there and
//!   hashes of the bytes before it, so a resumed file picks up appended rows and a truncated or
//!   replaced file is reported as `bad-data` instead of being silently skipped or re-read.
//! - **Skipped files** (a symlink leading outside the granted directory, not a regular file,
//!   unreadable) are logged as warnings with the reason in words ([`glob`]).
//!
//! The modules are plain Rust, tested natively; only this file talks to the SDK.

pub mod checkpoint;
pub mod columns;
pub mod config;
pub mod encoding;
pub mod error;
pub mod glob;
pub mod header;
pub mod parser;
pub mod reader;

use config::Config;
use reader::{CsvReader, Level};
use weir_sdk::{Batch, Error, Partition, PluginInfo, Schema};

/// The plugin.
pub struct CsvExtract;

impl CsvExtract {
    /// The files a configuration selects, and why any were skipped.
    pub fn list(config: &str) -> Result<glob::Listing, Error> {
        glob::list(&Config::parse(config)?.path)
    }
}

impl weir_sdk::Extractor for CsvExtract {
    type Reader = CsvReader;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: "csv-extract".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads CSV files matching a glob (one partition per file) into \
                          columnar batches, resumable after appends"
                .into(),
            config_schema: config::CONFIG_SCHEMA.into(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        let listing = Self::list(config)?;
        // Warnings, so that the engine records each as a `plugin_log` event of the run.
        for skipped in &listing.skipped {
            weir_sdk::log::warn(skipped);
        }
        if let Some(summary) = listing.summary() {
            weir_sdk::log::warn(&summary);
        }
        Ok(listing
            .files
            .into_iter()
            .map(|f| Partition {
                id: f.path,
                size: Some(f.size),
            })
            .collect())
    }

    fn open(
        config: &str,
        partition: Partition,
        checkpoint: Option<String>,
    ) -> Result<CsvReader, Error> {
        let config = Config::parse(config)?;
        // Only files the configured pattern selects: a partition id is a path to open.
        let (dir, pattern) = glob::split(&config.path)?;
        let selected = partition
            .id
            .strip_prefix(dir)
            .is_some_and(|name| !name.contains('/') && pattern.matches(name));
        if !selected {
            return Err(Error::InvalidConfig(format!(
                "partition {:?} is not matched by \"path\" {:?}",
                partition.id, config.path
            )));
        }
        let mut reader = CsvReader::open(&config, &partition.id, checkpoint.as_deref())?;
        log_notices(&mut reader);
        Ok(reader)
    }
}

/// Send the reader's notices to the host log (`info` and `warn` become `plugin_log` events).
fn log_notices(reader: &mut CsvReader) {
    for notice in reader.take_notices() {
        match notice.level {
            Level::Info => weir_sdk::log::info(&notice.message),
            Level::Warn => weir_sdk::log::warn(&notice.message),
        }
    }
}

impl weir_sdk::Reader for CsvReader {
    fn schema(&self) -> Schema {
        CsvReader::schema(self).clone()
    }

    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        let batch = CsvReader::next_batch(self, max_rows);
        log_notices(self);
        batch
    }
}

weir_sdk::export_extractor!(CsvExtract);
