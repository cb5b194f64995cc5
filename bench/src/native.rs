//! The native baseline: what a careful Rust program does without plugins. The `csv` crate reads
//! the file into one reused record; one prepared INSERT per row into the same STRICT table
//! weir creates; a transaction every `batch` rows that also upserts the byte offset reached (the
//! same commit protocol as weir's: rows and checkpoint together), in WAL with
//! `synchronous=NORMAL` like weir's connections (or the default rollback journal).

use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;

/// The table `sqlite-load` creates for the bench's schema (append mode: no key, every column
/// nullable, STRICT). The driver checks it matches weir's byte for byte.
pub const TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS \"transactions\" (\"id\" INTEGER, \
\"account\" TEXT, \"booking_date\" TEXT, \"value_date\" TEXT, \"amount\" REAL, \"currency\" TEXT, \
\"counterparty\" TEXT, \"memo\" TEXT, \"category\" TEXT, \"balance\" REAL) STRICT";

const INSERT: &str = "INSERT INTO \"transactions\" (\"id\", \"account\", \"booking_date\", \
\"value_date\", \"amount\", \"currency\", \"counterparty\", \"memo\", \"category\", \"balance\") \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Journal settings of the target database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Journal {
    /// WAL + synchronous=NORMAL (weir's setting).
    Wal,
    /// SQLite's defaults: rollback journal, synchronous=FULL.
    Default,
}

/// What a load did.
pub struct Loaded {
    pub rows: u64,
    pub rejected: u64,
    /// Time in the checkpoint upsert and COMMIT, summed over the transactions.
    pub commit: std::time::Duration,
}

/// Load `csv` into `db`.
pub fn load(csv_path: &Path, db: &Path, batch: usize, journal: Journal) -> anyhow::Result<Loaded> {
    let conn = Connection::open(db).with_context(|| format!("cannot open {}", db.display()))?;
    if journal == Journal::Wal {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    conn.execute_batch(TABLE_DDL)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _bench_checkpoint (partition TEXT PRIMARY KEY, byte_offset INTEGER NOT NULL)",
    )?;
    let partition = csv_path.to_string_lossy().into_owned();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(csv_path)
        .with_context(|| format!("cannot open {}", csv_path.display()))?;
    let mut record = csv::StringRecord::new();
    let mut insert = conn.prepare(INSERT)?;
    let mut checkpoint = conn.prepare(
        "INSERT INTO _bench_checkpoint (partition, byte_offset) VALUES (?1, ?2) \
         ON CONFLICT (partition) DO UPDATE SET byte_offset = excluded.byte_offset",
    )?;
    let (mut loaded, mut rejected) = (0u64, 0u64);
    let mut in_tx = 0usize;
    let mut commit = std::time::Duration::ZERO;
    loop {
        let more = reader.read_record(&mut record)?;
        if more {
            if in_tx == 0 {
                conn.execute_batch("BEGIN IMMEDIATE")?;
            }
            in_tx += 1;
            match bind_row(&mut insert, &record) {
                Ok(()) => {
                    insert.raw_execute()?;
                    loaded += 1;
                }
                Err(_) => rejected += 1,
            }
        }
        if in_tx > 0 && (in_tx == batch || !more) {
            let clock = std::time::Instant::now();
            checkpoint.execute(rusqlite::params![
                partition,
                reader.position().byte() as i64
            ])?;
            conn.execute_batch("COMMIT")?;
            commit += clock.elapsed();
            in_tx = 0;
        }
        if !more {
            break;
        }
    }
    Ok(Loaded {
        rows: loaded,
        rejected,
        commit,
    })
}

/// Bind one record; `Err` when a number does not parse or the field count is wrong.
fn bind_row(stmt: &mut rusqlite::Statement<'_>, record: &csv::StringRecord) -> Result<(), ()> {
    if record.len() != 10 {
        return Err(());
    }
    let int = |s: &str| s.parse::<i64>().map_err(drop);
    let real = |s: &str| s.parse::<f64>().map_err(drop);
    let (id, amount, balance) = (int(&record[0])?, real(&record[4])?, real(&record[9])?);
    let bind = |stmt: &mut rusqlite::Statement<'_>, i: usize, v: &dyn rusqlite::ToSql| {
        stmt.raw_bind_parameter(i, v).map_err(drop)
    };
    bind(stmt, 1, &id)?;
    for (param, field) in [(2, 1), (3, 2), (4, 3), (6, 5), (7, 6), (8, 7), (9, 8)] {
        bind(stmt, param, &&record[field])?;
    }
    bind(stmt, 5, &amount)?;
    bind(stmt, 10, &balance)?;
    Ok(())
}
