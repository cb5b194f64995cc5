//! What a plugin implements: one trait per plugin kind, plus one for its stateful handle.
//!
//! The host calls every method on one thread, one call at a time per instance, and may drop a
//! handle (reader, transform, history) at any point; `Drop` runs then. A method returning an
//! [`Error`] is the only way to fail: a panic traps and the host throws the instance away.

use crate::{
    Batch, CheckpointEntry, Error, Partition, PluginInfo, Rows, Schema, Transformed, WritePlan,
};

/// An extract plugin: reads a source and hands out batches. Export with
/// [`export_extractor!`](crate::export_extractor).
pub trait Extractor: 'static {
    /// The stream of one partition.
    type Reader: Reader;

    /// Name, version and config schema; called once when the plugin is loaded.
    fn describe() -> PluginInfo;

    /// The partitions of a run (e.g. one per file matching a glob), in a stable order.
    fn partitions(config: &str) -> Result<Vec<Partition>, Error>;

    /// Open `partition`, positioned after `checkpoint` (`None` = from the start).
    fn open(
        config: &str,
        partition: Partition,
        checkpoint: Option<String>,
    ) -> Result<Self::Reader, Error>;
}

/// A pull-based stream of batches of one partition.
pub trait Reader: 'static {
    /// The schema of every batch; must not change over the reader's lifetime.
    fn schema(&self) -> Schema;

    /// Up to `max_rows` rows, or `None` at the end of the partition. Called only when
    /// downstream has room, so it may block on reading the source.
    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, Error>;
}

/// A transform plugin. Export with [`export_transformer!`](crate::export_transformer).
pub trait Transformer: 'static {
    /// The transform of one stream.
    type Transform: Transform;

    /// Name, version and config schema; called once when the plugin is loaded.
    fn describe() -> PluginInfo;

    /// Prepare a transform for a stream whose rows have schema `input`. This is the place to
    /// check the config against the schema and resolve column names to indexes.
    fn open(config: &str, input: Schema) -> Result<Self::Transform, Error>;
}

/// The transform of one stream.
pub trait Transform: 'static {
    /// The schema of the rows `apply` returns; must not change over the transform's lifetime.
    fn output_schema(&self) -> Schema;

    /// Transform one batch; usually a call to [`map_rows`](crate::map_rows).
    fn apply(&mut self, input: Rows) -> Result<Transformed, Error>;
}

/// A load plugin for a database the host writes itself (SQLite): it returns a write plan and
/// rows never cross into it. Export with [`export_loader!`](crate::export_loader).
pub trait Loader: 'static {
    /// Name, version and config schema; called once when the plugin is loaded.
    fn describe() -> PluginInfo;

    /// Plan loading a stream of batches with `schema`. May inspect the destination through
    /// [`sql`](crate::sql).
    fn open(config: &str, schema: Schema) -> Result<WritePlan, Error>;
}

/// A history-store plugin. Export with [`export_history_store!`](crate::export_history_store).
pub trait HistoryStore: 'static {
    /// An open store.
    type History: History;

    /// Name, version and config schema; called once when the plugin is loaded.
    fn describe() -> PluginInfo;

    /// Open the store.
    fn open(config: &str) -> Result<Self::History, Error>;
}

/// An open history store: one checkpoint per (pipeline, partition).
pub trait History: 'static {
    /// The granted database `save` writes to, if any; the host then calls `save` inside the
    /// batch's commit transaction on that database.
    fn commit_database(&self) -> Option<String>;

    /// The last saved checkpoint of a partition; `None` if it never committed.
    fn load(&mut self, pipeline: &str, partition: &str) -> Result<Option<String>, Error>;

    /// Save the checkpoint after a batch.
    fn save(&mut self, pipeline: &str, partition: &str, checkpoint: &str) -> Result<(), Error>;

    /// Every stored checkpoint, of one pipeline or all.
    fn entries(&mut self, pipeline: Option<&str>) -> Result<Vec<CheckpointEntry>, Error>;

    /// Forget the checkpoints of a pipeline (one partition or all); returns how many.
    fn reset(&mut self, pipeline: &str, partition: Option<&str>) -> Result<u32, Error>;
}
