//! Typed handles to live plugin instances, one per plugin kind. Every call goes through the
//! sandbox guard (limits, deadline, fault classification).

use wasmtime::component::ResourceAny;
use weir_bindings::loader::exports::weir::plugin::loader::{Target, WritePlan};
use weir_bindings::types::{Batch, Partition, PluginInfo, Rows, Schema};
use weir_bindings::{extractor, history, loader, transformer};

pub use weir_bindings::history::exports::weir::plugin::history_store::CheckpointEntry;
pub use weir_bindings::transformer::exports::weir::plugin::transformer::{
    RowReject, Transformed as TransformedRows,
};

use crate::error::PluginError;
use crate::sandbox::{Sandbox, guarded, guarded_infallible};

/// Drop a guest resource, ignoring failures: the instance may already be poisoned, and the
/// store is about to go away anyway.
async fn drop_resource(sandbox: &mut Sandbox, resource: Option<ResourceAny>) {
    if let Some(resource) = resource
        && !sandbox.is_poisoned()
    {
        let _ = resource.resource_drop_async(&mut sandbox.store).await;
    }
}

/// A live extractor instance.
pub struct ExtractorInstance {
    pub(crate) sandbox: Sandbox,
    pub(crate) bindings: extractor::ExtractorPlugin,
    reader: Option<ResourceAny>,
}

impl ExtractorInstance {
    pub(crate) fn new(sandbox: Sandbox, bindings: extractor::ExtractorPlugin) -> Self {
        Self {
            sandbox,
            bindings,
            reader: None,
        }
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        let api = self.bindings.weir_plugin_extractor();
        guarded_infallible!(self.sandbox, "describe", |store| api.call_describe(store))
    }

    /// `partitions(config)`.
    pub async fn partitions(&mut self, config: &str) -> Result<Vec<Partition>, PluginError> {
        let api = self.bindings.weir_plugin_extractor();
        guarded!(self.sandbox, "partitions", |store| api
            .call_partitions(store, config))
    }

    /// `open(config, partition, checkpoint)` then `schema()`; the reader is kept for
    /// [`Self::next_batch`].
    pub async fn open(
        &mut self,
        config: &str,
        partition: &Partition,
        checkpoint: Option<&str>,
    ) -> Result<Schema, PluginError> {
        let api = self.bindings.weir_plugin_extractor();
        let reader = guarded!(self.sandbox, "open", |store| api
            .call_open(store, config, partition, checkpoint))?;
        self.reader = Some(reader);
        guarded_infallible!(self.sandbox, "schema", |store| api
            .reader()
            .call_schema(store, reader))
    }

    /// `reader.next-batch(max-rows)`.
    pub async fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        let api = self.bindings.weir_plugin_extractor();
        let reader = self.reader.ok_or_else(|| {
            PluginError::contract(&self.sandbox.label, "next-batch", "called before open")
        })?;
        guarded!(self.sandbox, "next-batch", |store| api
            .reader()
            .call_next_batch(store, reader, max_rows))
    }

    /// Drop the reader (runs the guest's destructor).
    pub async fn close(&mut self) {
        drop_resource(&mut self.sandbox, self.reader.take()).await;
    }
}

/// A live transformer instance.
pub struct TransformerInstance {
    pub(crate) sandbox: Sandbox,
    pub(crate) bindings: transformer::TransformerPlugin,
    transform: Option<ResourceAny>,
}

impl TransformerInstance {
    pub(crate) fn new(sandbox: Sandbox, bindings: transformer::TransformerPlugin) -> Self {
        Self {
            sandbox,
            bindings,
            transform: None,
        }
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        let api = self.bindings.weir_plugin_transformer();
        guarded_infallible!(self.sandbox, "describe", |store| api.call_describe(store))
    }

    /// `open(config, input)` then `output-schema()`.
    pub async fn open(&mut self, config: &str, input: &Schema) -> Result<Schema, PluginError> {
        let api = self.bindings.weir_plugin_transformer();
        let transform = guarded!(self.sandbox, "open", |store| api
            .call_open(store, config, input))?;
        self.transform = Some(transform);
        guarded_infallible!(self.sandbox, "output-schema", |store| api
            .transform()
            .call_output_schema(store, transform))
    }

    /// `transform.apply(rows)`.
    pub async fn apply(&mut self, rows: &Rows) -> Result<TransformedRows, PluginError> {
        let api = self.bindings.weir_plugin_transformer();
        let transform = self.transform.ok_or_else(|| {
            PluginError::contract(&self.sandbox.label, "apply", "called before open")
        })?;
        guarded!(self.sandbox, "apply", |store| api
            .transform()
            .call_apply(store, transform, rows))
    }

    /// Drop the transform resource.
    pub async fn close(&mut self) {
        drop_resource(&mut self.sandbox, self.transform.take()).await;
    }
}

/// What a loader asked for.
pub enum LoadTarget {
    /// The host executes this plan in the commit transaction.
    Plan(WritePlan),
    /// The host calls the sink (kept in the instance).
    Sink,
}

/// A live loader instance.
pub struct LoaderInstance {
    pub(crate) sandbox: Sandbox,
    pub(crate) bindings: loader::LoaderPlugin,
    sink: Option<ResourceAny>,
}

impl LoaderInstance {
    pub(crate) fn new(sandbox: Sandbox, bindings: loader::LoaderPlugin) -> Self {
        Self {
            sandbox,
            bindings,
            sink: None,
        }
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        let api = self.bindings.weir_plugin_loader();
        guarded_infallible!(self.sandbox, "describe", |store| api.call_describe(store))
    }

    /// `open(config, schema)`.
    pub async fn open(&mut self, config: &str, schema: &Schema) -> Result<LoadTarget, PluginError> {
        let api = self.bindings.weir_plugin_loader();
        match guarded!(self.sandbox, "open", |store| api
            .call_open(store, config, schema))?
        {
            Target::Plan(plan) => Ok(LoadTarget::Plan(plan)),
            Target::Sink(sink) => {
                self.sink = Some(sink);
                Ok(LoadTarget::Sink)
            }
        }
    }

    /// `sink.write(batch)`.
    pub async fn write(&mut self, batch: &Batch) -> Result<(), PluginError> {
        let api = self.bindings.weir_plugin_loader();
        let sink = self.sink.ok_or_else(|| {
            PluginError::contract(&self.sandbox.label, "write", "the loader returned no sink")
        })?;
        guarded!(self.sandbox, "write", |store| api
            .sink()
            .call_write(store, sink, batch))
    }

    /// `sink.finish()` and drop the sink.
    pub async fn finish(&mut self) -> Result<(), PluginError> {
        let api = self.bindings.weir_plugin_loader();
        if let Some(sink) = self.sink {
            guarded!(self.sandbox, "finish", |store| api
                .sink()
                .call_finish(store, sink))?;
        }
        drop_resource(&mut self.sandbox, self.sink.take()).await;
        Ok(())
    }
}

/// A live history-store instance.
pub struct HistoryInstance {
    pub(crate) sandbox: Sandbox,
    pub(crate) bindings: history::HistoryStorePlugin,
    history: Option<ResourceAny>,
}

impl HistoryInstance {
    pub(crate) fn new(sandbox: Sandbox, bindings: history::HistoryStorePlugin) -> Self {
        Self {
            sandbox,
            bindings,
            history: None,
        }
    }

    fn handle(&self, call: &'static str) -> Result<ResourceAny, PluginError> {
        self.history
            .ok_or_else(|| PluginError::contract(&self.sandbox.label, call, "called before open"))
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        let api = self.bindings.weir_plugin_history_store();
        guarded_infallible!(self.sandbox, "describe", |store| api.call_describe(store))
    }

    /// `open(config)`; returns the database `save` writes to.
    pub async fn open(&mut self, config: &str) -> Result<Option<String>, PluginError> {
        let api = self.bindings.weir_plugin_history_store();
        let history = guarded!(self.sandbox, "open", |store| api.call_open(store, config))?;
        self.history = Some(history);
        guarded_infallible!(self.sandbox, "commit-database", |store| api
            .history()
            .call_commit_database(store, history))
    }

    /// `history.load(pipeline, partition)`.
    pub async fn load(
        &mut self,
        pipeline: &str,
        partition: &str,
    ) -> Result<Option<String>, PluginError> {
        let api = self.bindings.weir_plugin_history_store();
        let h = self.handle("load")?;
        guarded!(self.sandbox, "load", |store| api
            .history()
            .call_load(store, h, pipeline, partition))
    }

    /// `history.save(pipeline, partition, checkpoint)`.
    pub async fn save(
        &mut self,
        pipeline: &str,
        partition: &str,
        checkpoint: &str,
    ) -> Result<(), PluginError> {
        let api = self.bindings.weir_plugin_history_store();
        let h = self.handle("save")?;
        guarded!(self.sandbox, "save", |store| api
            .history()
            .call_save(store, h, pipeline, partition, checkpoint))
    }

    /// `history.entries(pipeline)`.
    pub async fn entries(
        &mut self,
        pipeline: Option<&str>,
    ) -> Result<Vec<CheckpointEntry>, PluginError> {
        let api = self.bindings.weir_plugin_history_store();
        let h = self.handle("entries")?;
        guarded!(self.sandbox, "entries", |store| api
            .history()
            .call_entries(store, h, pipeline))
    }

    /// `history.reset(pipeline, partition)`.
    pub async fn reset(
        &mut self,
        pipeline: &str,
        partition: Option<&str>,
    ) -> Result<u32, PluginError> {
        let api = self.bindings.weir_plugin_history_store();
        let h = self.handle("reset")?;
        guarded!(self.sandbox, "reset", |store| api
            .history()
            .call_reset(store, h, pipeline, partition))
    }
}
