//! One partition (file) as a stream of batches: header → schema, resume from a checkpoint,
//! records → rows and rejects, checkpoint and progress after every batch.

use crate::checkpoint::{Fnv, Tracker};
use crate::columns::BatchBuilder;
use crate::config::{ColumnType, Config};
use crate::encoding::{TextEncoding, raw_text};
use crate::error::{Error, Result, io_error};
use crate::parser::{Outcome, Parser, RAW_LIMIT};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use weir_sdk::{Batch, Column, Kind, Progress, Rows, Schema, SourceReject};

/// A batch stops early once it has consumed this many bytes, so that a batch of very long
/// records stays well inside the plugin's memory limit (and `u32` text offsets).
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// Reads one CSV file.
pub struct CsvReader {
    /// The partition id: the path as configured and opened.
    path: String,
    parser: Parser<File>,
    encoding: TextEncoding,
    max_record_bytes: usize,
    schema: Schema,
    builder: BatchBuilder,
    tracker: Tracker,
    /// File size at open, for progress.
    size: u64,
    /// End of file was reached: the reader returns `None` from now on.
    finished: bool,
}

/// What the start of the file says about the columns.
struct Header {
    names: Vec<String>,
    /// Hash of the raw header record (of nothing without a header).
    hash: u64,
}

impl CsvReader {
    /// Open `path` and position it after `checkpoint`.
    pub fn open(config: &Config, path: &str, checkpoint: Option<&str>) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_error(path, "cannot open", &e))?;
        let size = file
            .metadata()
            .map_err(|e| io_error(path, "cannot read metadata", &e))?
            .len();
        let mut parser = Parser::new(file, config.dialect.clone(), 0, 1);
        let read_err = |e: std::io::Error| io_error(path, "read failed", &e);
        if config.encoding == TextEncoding::Utf8 {
            parser.skip_bom().map_err(read_err)?;
        }
        let header = read_header(config, path, &mut parser)?;
        // Rows start after the header; without one, at the start (the peeked record is data).
        let body_start = if config.has_header {
            (parser.offset(), parser.line())
        } else {
            (0, 1)
        };

        let (names, types) = columns(config, path, header.names)?;
        let schema = Schema {
            columns: names
                .iter()
                .zip(&types)
                .map(|(name, ty)| Column {
                    name: name.clone(),
                    kind: match ty {
                        ColumnType::Text => Kind::Text,
                        ColumnType::Integer => Kind::Integer,
                        ColumnType::Real => Kind::Real,
                    },
                    nullable: true,
                })
                .collect(),
            primary_key: Vec::new(),
        };

        // Where to start reading rows: after the header, or after the checkpoint.
        let mut tracker = Tracker::new(path, header.hash, config.verify);
        let (offset, line) = match checkpoint {
            None => body_start,
            Some(stored) => {
                let (cp, note) = tracker.resume(parser.source_mut(), stored, size, body_start.0)?;
                if let Some(note) = note {
                    weir_sdk::log::info(&note);
                }
                (cp.offset, cp.line)
            }
        };
        if parser.offset() != offset {
            // The header peek (no-header mode) or a checkpoint moved us: start a fresh parser.
            let mut file = parser.into_source();
            file.seek(SeekFrom::Start(offset)).map_err(read_err)?;
            parser = Parser::new(file, config.dialect.clone(), offset, line);
            if offset == 0 && config.encoding == TextEncoding::Utf8 {
                parser.skip_bom().map_err(read_err)?;
            }
        }

        Ok(Self {
            path: path.to_owned(),
            parser,
            encoding: config.encoding,
            max_record_bytes: config.dialect.max_record_bytes,
            builder: BatchBuilder::new(&names, &types, config.encoding),
            schema,
            tracker,
            size,
            finished: false,
        })
    }

    /// The schema of every batch.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Up to `max_rows` rows plus the rejects among them, or `None` at end of file.
    pub fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>> {
        if self.finished {
            return Ok(None);
        }
        let limit = max_rows.max(1) as usize;
        let start = self.parser.offset();
        let mut positions = Vec::with_capacity(limit.min(64 * 1024));
        let mut rejects = Vec::new();
        while self.builder.rows() + rejects.len() < limit
            && self.parser.offset() - start < BATCH_BYTES
        {
            let outcome = self
                .parser
                .next_record()
                .map_err(|e| io_error(&self.path, "read failed", &e))?;
            let reason = match outcome {
                None => {
                    self.finished = true;
                    break;
                }
                Some(Outcome::Record) => match self.builder.push_record(&self.parser) {
                    Ok(()) => {
                        positions.push(self.parser.record_line());
                        continue;
                    }
                    Err(reason) => reason,
                },
                Some(Outcome::Unterminated { quote_line }) => {
                    format!("unterminated quoted field starting at line {quote_line}")
                }
                Some(Outcome::Oversized { bytes }) => format!(
                    "record of {bytes} bytes exceeds max_record_bytes ({})",
                    self.max_record_bytes
                ),
            };
            rejects.push(SourceReject {
                position: self.parser.record_line(),
                reason,
                raw: raw_text(self.encoding, self.parser.raw(), RAW_LIMIT),
            });
        }
        let row_count = self.builder.rows() as u32;
        if row_count == 0 && rejects.is_empty() {
            // Only blank lines (or nothing) were left.
            return Ok(None);
        }
        let columns = self.builder.take();
        let done = self.parser.offset();
        let line = self.parser.line();
        let checkpoint = self
            .tracker
            .checkpoint(self.parser.source_mut(), done, line)?
            .encode();
        Ok(Some(Batch {
            rows: Rows { row_count, columns },
            positions,
            rejects,
            checkpoint,
            progress: Progress {
                done,
                total: Some(self.size.max(done)),
            },
        }))
    }
}

/// Read the header record (or, without one, peek at the first record to count its fields).
fn read_header(config: &Config, path: &str, parser: &mut Parser<File>) -> Result<Header> {
    if let (false, Some(names)) = (config.has_header, &config.columns) {
        return Ok(Header {
            names: names.clone(),
            hash: Fnv::hash(b""),
        });
    }
    let outcome = parser
        .next_record()
        .map_err(|e| io_error(path, "read failed", &e))?;
    let what = if config.has_header {
        "header"
    } else {
        "first record"
    };
    match outcome {
        Some(Outcome::Record) => {}
        None if config.columns.is_some() => {
            return Ok(Header {
                names: Vec::new(),
                hash: Fnv::hash(b""),
            });
        }
        None => {
            return Err(Error::BadData(format!(
                "{path}: the file is empty, so it has no {what} to name the columns; set \
                 \"columns\" in the config to read such files"
            )));
        }
        Some(Outcome::Unterminated { quote_line }) => {
            return Err(Error::BadData(format!(
                "{path}: line {}: the {what} has an unterminated quoted field starting at line \
                 {quote_line}",
                parser.record_line()
            )));
        }
        Some(Outcome::Oversized { bytes }) => {
            return Err(Error::BadData(format!(
                "{path}: line {}: the {what} is {bytes} bytes long, more than max_record_bytes",
                parser.record_line()
            )));
        }
    }
    let count = parser.field_count();
    if !config.has_header {
        // Only the width was wanted; `open` rewinds to read this record as data.
        return Ok(Header {
            names: (1..=count).map(|i| format!("column_{i}")).collect(),
            hash: Fnv::hash(b""),
        });
    }
    let names = (0..count)
        .map(|i| {
            let name = config.encoding.decode_lossy(parser.field(i));
            // Surrounding blanks in a header are never meant to be part of a column name.
            name.trim().to_owned()
        })
        .collect();
    Ok(Header {
        names,
        hash: Fnv::hash(parser.raw()),
    })
}

/// Final column names and kinds: `columns` replaces the header's names; empty names become
/// `column_N`, repeated names get `_2`, `_3`, …; `types` must name existing columns.
fn columns(
    config: &Config,
    path: &str,
    header: Vec<String>,
) -> Result<(Vec<String>, Vec<ColumnType>)> {
    let raw = match &config.columns {
        Some(names) if config.has_header && !header.is_empty() && names.len() != header.len() => {
            return Err(Error::InvalidConfig(format!(
                "\"columns\" has {} names but the header of {path} has {} fields",
                names.len(),
                header.len()
            )));
        }
        Some(names) => names.clone(),
        None => header,
    };
    let names = unique_names(raw);
    let types = names
        .iter()
        .map(|n| config.types.get(n).copied().unwrap_or(ColumnType::Text))
        .collect();
    if let Some(missing) = config.types.keys().find(|k| !names.contains(k)) {
        return Err(Error::InvalidConfig(format!(
            "\"types\" names column \"{missing}\", which {path} does not have (columns: {})",
            names.join(", ")
        )));
    }
    Ok((names, types))
}

/// Make column names non-empty and unique.
pub fn unique_names(raw: Vec<String>) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(raw.len());
    for (i, name) in raw.into_iter().enumerate() {
        let base = if name.is_empty() {
            format!("column_{}", i + 1)
        } else {
            name
        };
        let mut candidate = base.clone();
        let mut n = 2;
        while names.contains(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        names.push(candidate);
    }
    names
}
