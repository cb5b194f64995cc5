//! What a plugin implements: one trait per plugin kind, plus one for its stateful handle.
//!
//! The host calls every method on one thread, one call at a time per instance, and may drop a
//! handle (reader, transform, sink, history) at any point; `Drop` runs then. A method returning an
//! [`Error`] is the only way to fail: a panic traps and the host throws the instance away.

use crate::{
    Batch, BatchView, CheckpointEntry, Error, Partition, PluginInfo, Projection, Rows, Schema,
    SinkReject, Transformed, WritePlan,
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

    /// Transform one batch; usually a call to [`map_rows`](crate::map_rows). With a
    /// [`Transform::projection`], `input` holds only the columns it reads and the result only
    /// the columns it computes.
    fn apply(&mut self, input: Rows) -> Result<Transformed, Error>;

    /// Which input columns `apply` reads and where each output column comes from, so that only
    /// those cross the component boundary: a transform that changes a few columns of a wide
    /// table says the rest pass through (`OutputColumn::Input`), and the host copies them. Asked
    /// once, after `open`. The default, `None`: every column crosses both ways.
    fn projection(&self) -> Option<Projection> {
        None
    }
}

/// A load plugin for a database the host writes itself (SQLite, PostgreSQL): it returns a
/// declarative [`WritePlan`] — table, columns with kinds, append or upsert by key, the
/// migrations to apply — and the host renders it for the database and writes the rows itself,
/// so rows never cross into the plugin. Export with [`export_loader!`](crate::export_loader).
/// For any other destination, see [`SinkLoader`].
pub trait Loader: 'static {
    /// Name, version and config schema; called once when the plugin is loaded.
    fn describe() -> PluginInfo;

    /// Plan loading a stream of batches with `schema`. May inspect the destination through
    /// [`sql`](crate::sql) (read only: the existing columns, keys) to decide the plan's
    /// migrations; the host applies them inside the first batch's transaction, so `open`
    /// itself changes nothing (and `weir validate` can run it on a read-only database).
    fn open(config: &str, schema: Schema) -> Result<WritePlan, Error>;
}

/// What a [`SinkLoader`] opens: a write plan the host executes, or a sink the host calls.
#[derive(Debug)]
pub enum LoadTarget<S> {
    /// The host writes the rows itself, in the batch's commit transaction (exactly-once when
    /// the database is the history store's).
    Plan(WritePlan),
    /// The host hands every batch to this sink (at-least-once).
    Sink(S),
}

/// A load plugin for a destination the host does not speak (an HTTP API, a file, a search
/// index): `open` returns a [`Sink`] that receives every batch. Usually it always returns
/// [`LoadTarget::Sink`]; a plugin that can also write SQLite may return a
/// [`LoadTarget::Plan`] when its config says so. Export with
/// [`export_sink_loader!`](crate::export_sink_loader).
///
/// A pipeline with a sink is **at-least-once** (`weir validate` says so and names the sink):
/// see [`Sink`] for what that asks of `write`.
///
/// A complete sink (the one in `docs/plugins.md`): the latest version of every row as a JSON
/// document, upserted by key into a granted database.
///
/// ```no_run
/// use weir_sdk::sql::Connection;
/// use weir_sdk::{
///     BatchView, Cell, Error, LoadTarget, PluginInfo, Schema, Sink, SinkLoader, SinkRejects, Value,
/// };
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config { database: String, key: String }
///
/// pub struct Documents;
/// pub struct DocumentSink { config: Config, schema: Schema, key: usize, db: Option<Connection> }
///
/// impl SinkLoader for Documents {
///     type Sink = DocumentSink;
///     fn describe() -> PluginInfo {
///         PluginInfo { name: "documents".into(), version: "0.1.0".into(),
///             description: "rows as JSON documents, upserted by key".into(),
///             config_schema: "{}".into() }
///     }
///     fn open(config: &str, schema: Schema) -> Result<LoadTarget<DocumentSink>, Error> {
///         let config: Config = weir_sdk::parse_config("documents", config)?;
///         let key = schema.column_index(&config.key).ok_or_else(|| Error::InvalidConfig(
///             format!("documents: no column `{}` in {}", config.key, schema.column_list())))?;
///         // Nothing written here: `weir validate` opens loaders too.
///         Ok(LoadTarget::Sink(DocumentSink { config, schema, key, db: None }))
///     }
/// }
///
/// impl Sink for DocumentSink {
///     fn write(&mut self, batch: &BatchView<'_>, _rejects: &mut SinkRejects) -> Result<(), Error> {
///         if self.db.is_none() {
///             let db = Connection::open(&self.config.database)?;
///             db.execute("CREATE TABLE IF NOT EXISTS documents \
///                 (key PRIMARY KEY NOT NULL, doc TEXT NOT NULL)", &[])?;
///             self.db = Some(db);
///         }
///         let db = self.db.as_ref().expect("opened above");
///         for row in batch.rows() {
///             let doc: serde_json::Map<String, serde_json::Value> = self.schema.columns.iter()
///                 .zip(row.cells())
///                 .map(|(column, cell)| (column.name.clone(), json(cell)))
///                 .collect();
///             let doc = serde_json::Value::Object(doc).to_string();
///             // An upsert: a batch sent again after a crash overwrites what it wrote before.
///             db.execute(
///                 "INSERT INTO documents (key, doc) VALUES (?1, ?2) \
///                  ON CONFLICT (key) DO UPDATE SET doc = excluded.doc",
///                 &[row.get(self.key).into(), Value::Text(doc)],
///             )?;
///         }
///         Ok(())
///     }
/// }
///
/// fn json(cell: Cell<'_>) -> serde_json::Value {
///     match cell {
///         Cell::Null => serde_json::Value::Null,
///         Cell::Boolean(v) => v.into(),
///         Cell::Integer(v) => v.into(),
///         Cell::Real(v) => v.into(),
///         Cell::Text(v) => v.into(),
///         Cell::Blob(v) => v.into(),
///     }
/// }
///
/// weir_sdk::export_sink_loader!(Documents);
/// # fn main() {}
/// ```
pub trait SinkLoader: 'static {
    /// The sink `open` returns.
    type Sink: Sink;

    /// Name, version and config schema; called once when the plugin is loaded.
    fn describe() -> PluginInfo;

    /// Prepare loading a stream of batches with `schema`: check the config against the schema
    /// and resolve column names to indexes here. Keep it free of writes (create tables on the
    /// first `write`): `weir validate` calls `open` too, and nothing may change then.
    fn open(config: &str, schema: Schema) -> Result<LoadTarget<Self::Sink>, Error>;
}

/// The destination of one stream (one partition of one worker attempt).
///
/// **At-least-once.** For each batch the host calls `write`, then commits the batch's
/// checkpoint (with its rejects) in the history store's database. A crash, a kill or a failed
/// commit between the two means the batch was written but its checkpoint was not saved: the
/// next attempt or run resumes from the previous checkpoint and calls `write` with the same
/// rows again (batch boundaries may differ then, e.g. after a `batch_size` change). So `write`
/// must be idempotent — upsert by the rows' key (the schema's `primary_key` or a configured
/// column), never a blind append — and the rows must be durable when it returns: once the
/// checkpoint is saved the host never sends them again. What a sink writes through
/// [`sql`](crate::sql) runs before the batch's transaction begins, so a failed batch does not
/// undo it either.
///
/// `write` gets one call per batch, in source order, possibly with zero rows (a batch whose
/// records were all rejected). Rows the destination refuses one by one (a document its mapping
/// refuses) go into `rejects` with the reason: the host records them in `_weir_rejects` with
/// their source positions and the rest of the batch commits. Returning an [`Error`] fails the
/// batch as a whole (nothing of it is committed; the case decides whether the worker retries),
/// and a panic traps the instance the same way.
pub trait Sink: 'static {
    /// Write one batch; read its rows with [`BatchView::rows`], refuse single rows with
    /// [`SinkRejects::reject`].
    fn write(&mut self, batch: &BatchView<'_>, rejects: &mut SinkRejects) -> Result<(), Error>;

    /// Called once after the last batch of the stream — after that batch's checkpoint was
    /// committed, so do not hold back rows for it (they would be lost to a crash in
    /// between): release connections, log a summary. Not called when the stream fails; the
    /// sink is dropped then. The default does nothing.
    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// The rows a [`Sink`] refused in one `write`.
#[derive(Debug, Default)]
pub struct SinkRejects(pub(crate) Vec<SinkReject>);

impl SinkRejects {
    /// Refuse row `index` of the batch, saying why (`mapper_parsing_exception: …`). Each row
    /// at most once.
    pub fn reject(&mut self, index: usize, reason: impl Into<String>) {
        let index = u32::try_from(index).expect("a batch has fewer than 2^32 rows");
        self.0.push(SinkReject {
            index,
            reason: reason.into(),
        });
    }

    /// How many rows were refused so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no row was refused.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The refusals so far, in the order they were made (e.g. to check a sink in its tests).
    pub fn as_slice(&self) -> &[SinkReject] {
        &self.0
    }
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
