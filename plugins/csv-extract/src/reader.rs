//! One partition (file) as a stream of batches: header → schema, resume from a checkpoint,
//! records → rows and rejects, checkpoint and progress after every batch, and the last record
//! held back while the file is still being written.

use crate::checkpoint::Tracker;
use crate::columns::BatchBuilder;
use crate::config::{ColumnType, Config};
use crate::encoding::{TextEncoding, raw_text, shown};
use crate::error::{Result, io_error};
use crate::header::{columns, read_header};
use crate::parser::{Outcome, Parser, RAW_LIMIT};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::time::{Duration, SystemTime};
use weir_sdk::{Batch, Column, Kind, Progress, Rows, Schema, SourceReject};

/// A batch stops early once it has consumed this many bytes, so that a batch of very long
/// records stays well inside the plugin's memory limit (and `u32` text offsets).
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// How loud a [`Notice`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Worth knowing (a record held back).
    Info,
    /// Worth acting on (columns renamed).
    Warn,
}

/// A line for the host log, which the engine also turns into a `plugin_log` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// How loud.
    pub level: Level,
    /// The message, naming the file.
    pub message: String,
}

/// Reads one CSV file.
pub struct CsvReader {
    /// The partition id: the path as configured and opened.
    path: String,
    parser: Parser<File>,
    encoding: TextEncoding,
    max_record_bytes: usize,
    schema: Schema,
    builder: BatchBuilder,
    /// How reasons name each column.
    labels: Vec<String>,
    tracker: Tracker,
    /// How long the file must be unchanged before an unfinished last record is read.
    settle: Duration,
    /// Offset and line of a last record held back because the file is still being written:
    /// the checkpoint stays before it.
    held: Option<(u64, u64)>,
    /// File size at open, for progress.
    size: u64,
    /// End of file was reached: the reader returns `None` from now on.
    finished: bool,
    notices: Vec<Notice>,
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
        let header = read_header(config, path, &mut parser, |p| {
            Ok(young(p, path, config.settle)?.is_some())
        })?;
        // Rows start after the header; without one, at the start (the peeked record is data).
        let body_start = if config.has_header {
            (parser.offset(), parser.line())
        } else {
            (0, 1)
        };

        let cols = columns(config, path, header.names)?;
        let schema = Schema {
            columns: cols
                .names
                .iter()
                .zip(&cols.types)
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
        let mut notices: Vec<Notice> = cols
            .warnings
            .into_iter()
            .map(|message| Notice {
                level: Level::Warn,
                message,
            })
            .collect();

        // Where to start reading rows: after the header, or after the checkpoint.
        let mut tracker = Tracker::new(path, header.hash, config.verify);
        let (offset, line) = match checkpoint {
            None => body_start,
            Some(stored) => {
                let (cp, note) = tracker.resume(parser.source_mut(), stored, size, body_start.0)?;
                notices.extend(note.map(|message| Notice {
                    level: Level::Info,
                    message,
                }));
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
            builder: BatchBuilder::new(&cols.names, &cols.types, config.encoding),
            labels: cols.labels,
            schema,
            tracker,
            settle: config.settle,
            held: None,
            size,
            finished: false,
            notices,
        })
    }

    /// The schema of every batch.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Log lines gathered since the last call (renamed columns, a held-back record).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
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
            let Some(outcome) = outcome else {
                self.finished = true;
                break;
            };
            if self.parser.unfinished() && self.hold_back(outcome)? {
                self.finished = true;
                break;
            }
            let reason = match outcome {
                Outcome::Record => match self.builder.push_record(&self.parser) {
                    Ok(()) => {
                        positions.push(self.parser.record_line());
                        continue;
                    }
                    Err(reason) => reason,
                },
                Outcome::StrayQuote { field, kind } => format!(
                    "{}: {}: {}",
                    self.labels
                        .get(field)
                        .cloned()
                        .unwrap_or_else(|| format!("column {}", field + 1)),
                    kind.describe(),
                    shown(self.encoding, self.parser.stray_field())
                ),
                Outcome::Unterminated { quote_line } => {
                    format!("unterminated quoted field starting at line {quote_line}")
                }
                Outcome::Oversized { bytes } => format!(
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
            // Only blank lines (or nothing, or a held-back record) were left.
            return Ok(None);
        }
        let columns = self.builder.take();
        let (offset, line) = self
            .held
            .unwrap_or((self.parser.offset(), self.parser.line()));
        let checkpoint = self
            .tracker
            .checkpoint(self.parser.source_mut(), offset, line)?
            .encode();
        Ok(Some(Batch {
            rows: Rows { row_count, columns },
            positions,
            rejects,
            checkpoint,
            progress: Progress {
                done: offset,
                total: Some(self.size.max(offset)),
            },
        }))
    }

    /// The last record ran into the end of the file: hold it back (neither a row nor a
    /// reject, and the checkpoint stays before it) if the file is still being written.
    fn hold_back(&mut self, outcome: Outcome) -> Result<bool> {
        let Some(age) = young(&mut self.parser, &self.path, self.settle)? else {
            return Ok(false);
        };
        self.held = Some((self.parser.record_offset(), self.parser.record_line()));
        let what = match outcome {
            Outcome::Unterminated { quote_line } => {
                format!("has a quoted field still open since line {quote_line}")
            }
            _ => "has no complete line break yet".into(),
        };
        self.notices.push(Notice {
            level: Level::Info,
            message: format!(
                "{}: line {}: the last record {what} and the file was modified {:.1} s ago: \
                 held back until the file has been unchanged for {} s (settle_seconds)",
                self.path,
                self.parser.record_line(),
                age.as_secs_f64(),
                self.settle.as_secs()
            ),
        });
        Ok(true)
    }
}

/// `Some(age)` if the file was modified less than `settle` ago (a writer may still be
/// appending), from its modification time and the wall clock. A modification time in the
/// future (clock skew, a network share) counts as just now.
fn young(parser: &mut Parser<File>, path: &str, settle: Duration) -> Result<Option<Duration>> {
    if settle.is_zero() {
        return Ok(None);
    }
    let modified = parser
        .source_mut()
        .metadata()
        .and_then(|m| m.modified())
        .map_err(|e| io_error(path, "cannot read its modification time", &e))?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    Ok((age < settle).then_some(age))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// Error::Unavailable from a young file whose header has no line break yet; once the file
    /// is older than settle_seconds the header is read.
    #[test]
    fn a_header_still_being_written_is_retried_later() {
        let dir = std::env::temp_dir().join(format!("csvx-young-header-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.csv");
        std::fs::write(&path, "id,na").unwrap();
        let p = path.to_str().unwrap();
        let config = Config::parse(&format!(r#"{{"path": {p:?}}}"#)).unwrap();
        match CsvReader::open(&config, p, None) {
            Err(Error::Unavailable(m)) => assert!(m.contains("header has no line break"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let reader = CsvReader::open(&config, p, None).unwrap();
        assert_eq!(reader.schema().columns.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
