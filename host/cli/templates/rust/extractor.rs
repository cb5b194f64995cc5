//! `{{name}}`: a weir extractor. Counts from 1 to `count` in one partition, so you can see
//! batches, checkpoints and resuming at work before pointing it at a real source.
//!
//! Config: `count` (default 100).

use serde::Deserialize;
use weir_sdk::{
    Batch, Column, Error, Extractor, Kind, Partition, PluginInfo, Progress, Reader, RowsBuilder,
    Schema,
};

const NAME: &str = "{{name}}";

/// The pipeline's `config` table for this plugin, as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// How many rows the partition has.
    count: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self { count: 100 }
    }
}

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "count": { "type": "integer", "minimum": 0, "default": 100, "description": "rows in the partition" }
  }
}"#;

/// The plugin.
pub struct Plugin;

/// The stream of one partition: the next number to hand out.
pub struct Numbers {
    next: i64,
    count: i64,
}

fn schema() -> Schema {
    Schema {
        columns: vec![
            Column::new("n", Kind::Integer, false),
            Column::new("label", Kind::Text, false),
        ],
        primary_key: vec!["n".into()],
    }
}

impl Extractor for Plugin {
    type Reader = Numbers;

    fn describe() -> PluginInfo {
        PluginInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "{{description}}".to_owned(),
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }

    fn partitions(config: &str) -> Result<Vec<Partition>, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        // One partition here; a file source has one per file. Checkpoints are kept per id.
        Ok(vec![Partition {
            id: "numbers".into(),
            size: u64::try_from(config.count).ok(),
        }])
    }

    fn open(
        config: &str,
        _partition: Partition,
        checkpoint: Option<String>,
    ) -> Result<Numbers, Error> {
        let config: Config = weir_sdk::parse_config(NAME, config)?;
        // The checkpoint is whatever this reader put in its last committed batch.
        let done = match checkpoint {
            None => 0,
            Some(c) => c
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=config.count).contains(n))
                .ok_or_else(|| {
                    Error::BadData(format!(
                        "{NAME}: checkpoint {c:?} does not fit count {}",
                        config.count
                    ))
                })?,
        };
        Ok(Numbers {
            next: done + 1,
            count: config.count,
        })
    }
}

impl Reader for Numbers {
    fn schema(&self) -> Schema {
        schema()
    }

    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error> {
        if self.next > self.count {
            return Ok(None);
        }
        let last = self.count.min(self.next + i64::from(max_rows.max(1)) - 1);
        let mut rows = RowsBuilder::new(&schema());
        let mut positions = Vec::new();
        for n in self.next..=last {
            let label = format!("row {n}");
            rows.push_row([n.into(), label.as_str().into()])
                .map_err(|e| Error::Other(format!("{NAME}: {e}")))?;
            positions.push(n as u64);
        }
        self.next = last + 1;
        Ok(Some(Batch {
            rows: rows.finish(),
            positions,
            rejects: vec![],
            // Saved with this batch's rows, in the same transaction; `open` resumes after it.
            checkpoint: last.to_string(),
            progress: Progress {
                done: last as u64,
                total: Some(self.count as u64),
            },
        }))
    }
}

weir_sdk::export_extractor!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sdk::RowsView;

    fn read_all(checkpoint: Option<&str>) -> Vec<(Vec<i64>, String)> {
        let mut reader = Plugin::open(
            r#"{"count": 5}"#,
            Plugin::partitions("{}").unwrap()[0].clone(),
            checkpoint.map(Into::into),
        )
        .unwrap();
        let mut batches = Vec::new();
        while let Some(batch) = reader.next_batch(2).unwrap() {
            let view = RowsView::new(&batch.rows);
            let numbers = view.rows().map(|r| r.integer(0).unwrap()).collect();
            batches.push((numbers, batch.checkpoint));
        }
        batches
    }

    #[test]
    fn batches_carry_their_checkpoint_and_open_resumes_after_it() {
        assert_eq!(
            read_all(None),
            [
                (vec![1, 2], "2".into()),
                (vec![3, 4], "4".into()),
                (vec![5], "5".into())
            ]
        );
        assert_eq!(read_all(Some("4")), [(vec![5], "5".into())]);
        assert!(read_all(Some("5")).is_empty());
    }

    #[test]
    fn a_checkpoint_that_does_not_fit_is_bad_data() {
        let err = Plugin::open(
            r#"{"count": 5}"#,
            Partition {
                id: "numbers".into(),
                size: None,
            },
            Some("9".into()),
        )
        .err()
        .unwrap();
        assert!(matches!(err, Error::BadData(_)), "{err:?}");
    }
}
