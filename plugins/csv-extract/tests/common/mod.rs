//! Helpers shared by the integration tests: run the extractor natively over a file and turn
//! its columnar batches back into rows.

#![allow(dead_code)] // each test binary uses its own subset

use csv_extract::CsvExtract;
use std::path::{Path, PathBuf};
use weir_sdk::{Batch, ColumnData, Extractor, Partition, SourceReject, VarWidth};

/// The shared test corpora, beside the repository (`shared/corpora`).
pub fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("csvx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Set `path`'s modification time `secs_ago` seconds into the past (negative: the future),
/// to stand for a file at rest or one being written without sleeping.
pub fn set_age(path: &Path, secs_ago: i64) {
    let now = std::time::SystemTime::now();
    let delta = std::time::Duration::from_secs(secs_ago.unsigned_abs());
    let when = if secs_ago >= 0 {
        now - delta
    } else {
        now + delta
    };
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// Write a file that has been at rest for an hour, so no record of it is held back as still
/// being written.
pub fn write_settled(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap();
    set_age(path, 3600);
}

/// Append to a file and leave it at rest for an hour (see [`write_settled`]).
pub fn append_settled(path: &Path, bytes: impl AsRef<[u8]>) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes.as_ref()).unwrap();
    drop(f);
    set_age(path, 3600);
}

/// Everything a reader produced.
#[derive(Debug, Default)]
pub struct Output {
    pub columns: Vec<String>,
    /// (line, values) per row.
    pub rows: Vec<(u64, Vec<String>)>,
    pub rejects: Vec<SourceReject>,
    /// Checkpoint after each batch.
    pub checkpoints: Vec<String>,
    pub batches: Vec<Batch>,
}

impl Output {
    pub fn last_checkpoint(&self) -> Option<String> {
        self.checkpoints.last().cloned()
    }

    pub fn values(&self) -> Vec<Vec<String>> {
        self.rows.iter().map(|(_, v)| v.clone()).collect()
    }

    pub fn lines(&self) -> Vec<u64> {
        self.rows.iter().map(|(l, _)| *l).collect()
    }
}

/// Config JSON for `path` with extra keys (a JSON object body without braces, or "").
pub fn config(path: &Path, extra: &str) -> String {
    let path = serde_json::to_string(path.to_str().unwrap()).unwrap();
    if extra.is_empty() {
        format!(r#"{{"path": {path}}}"#)
    } else {
        format!(r#"{{"path": {path}, {extra}}}"#)
    }
}

/// Open `file` with `config` after `checkpoint` and read it to the end in batches of
/// `max_rows`.
pub fn read(
    config: &str,
    file: &Path,
    checkpoint: Option<String>,
    max_rows: u32,
) -> Result<Output, weir_sdk::Error> {
    let partition = Partition {
        id: file.to_str().unwrap().to_owned(),
        size: None,
    };
    let mut reader = CsvExtract::open(config, partition, checkpoint)?;
    let schema = reader.schema();
    let mut out = Output {
        columns: schema.columns.iter().map(|c| c.name.clone()).collect(),
        ..Output::default()
    };
    while let Some(batch) = reader.next_batch(max_rows)? {
        assert!(batch.rows.row_count <= max_rows.max(1));
        assert_eq!(batch.positions.len(), batch.rows.row_count as usize);
        let cols: Vec<Vec<String>> = batch.rows.columns.iter().map(column_strings).collect();
        for (r, &line) in batch.positions.iter().enumerate() {
            out.rows
                .push((line, cols.iter().map(|c| c[r].clone()).collect()));
        }
        out.rejects.extend(batch.rejects.iter().cloned());
        out.checkpoints.push(batch.checkpoint.clone());
        out.batches.push(batch);
    }
    assert!(reader.next_batch(max_rows)?.is_none(), "stays at the end");
    Ok(out)
}

/// A column's values as strings (text as is, numbers formatted, nulls as "<null>").
pub fn column_strings(col: &weir_sdk::ColumnVector) -> Vec<String> {
    let null = |i: usize| {
        col.nulls
            .as_ref()
            .is_some_and(|b| b[i / 8] & (1 << (i % 8)) != 0)
    };
    let vals: Vec<String> = match &col.data {
        ColumnData::Text(VarWidth { data, ends }) => {
            let mut start = 0;
            ends.iter()
                .map(|&e| {
                    let s = std::str::from_utf8(&data[start..e as usize])
                        .expect("text is UTF-8")
                        .to_owned();
                    start = e as usize;
                    s
                })
                .collect()
        }
        ColumnData::Integer(v) => v.iter().map(|x| x.to_string()).collect(),
        ColumnData::Real(v) => v.iter().map(|x| x.to_string()).collect(),
        other => panic!("unexpected column data {other:?}"),
    };
    vals.into_iter()
        .enumerate()
        .map(|(i, v)| if null(i) { "<null>".into() } else { v })
        .collect()
}
