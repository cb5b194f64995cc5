//! Extractor instances: partitions, open, schema, batches.

use wasmtime::Store;
use wasmtime::component::{Instance, ResourceAny};
use weir_bindings::types::{Batch, Partition, Schema};

use super::{Fallible, Live, check_checkpoint};
use crate::caps::truncate_in_place;
use crate::error::{FaultKind, PluginError};
use crate::exports::{Export, Exports};
use crate::sandbox::{DataCap, Sandbox, guarded, guarded_infallible};
use crate::state::PluginState;

type OpenParams<'a> = (&'a str, &'a Partition, Option<&'a str>);

pub(super) fn check_shapes(
    exports: &Exports,
    store: &mut Store<PluginState>,
    instance: &Instance,
) -> wasmtime::Result<()> {
    exports.check::<(&str,), Fallible<Vec<Partition>>>(store, instance, Export::Partitions)?;
    exports.check::<OpenParams<'_>, Fallible<ResourceAny>>(store, instance, Export::Open)?;
    exports.check::<(ResourceAny,), Schema>(store, instance, Export::ReaderSchema)?;
    exports.check::<(ResourceAny, u32), Fallible<Option<Batch>>>(
        store,
        instance,
        Export::ReaderNextBatch,
    )
}

/// A live extractor instance.
pub struct ExtractorInstance {
    pub(crate) live: Live,
    reader: Option<ResourceAny>,
}

impl ExtractorInstance {
    pub(crate) fn new(live: Live) -> Self {
        Self { live, reader: None }
    }

    /// What this instance does over its granted HTTP connections, per grant (its own share
    /// of each grant's counters), readable after the instance is dropped.
    pub fn http_meter(&self) -> crate::HttpMeter {
        self.live.sandbox.store.data().http_meter()
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<crate::types::PluginInfo, PluginError> {
        self.live.describe().await
    }

    /// `partitions(config)`. A partition id keys checkpoints and run records, so an id longer
    /// than `limits.max_message_bytes` is refused rather than cut.
    pub async fn partitions(&mut self, config: &str) -> Result<Vec<Partition>, PluginError> {
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        let partitions: Vec<Partition> =
            guarded!(*sandbox, "partitions", cap, |store| exports
                .call::<(&str,), Fallible<Vec<Partition>>>(
                    store,
                    instance,
                    Export::Partitions,
                    (config,)
                ))?;
        let max = sandbox.limits.max_message_bytes;
        if let Some(long) = partitions.iter().find(|p| p.id.len() > max) {
            return Err(bad_data(
                sandbox,
                "partitions",
                format!(
                    "partition id of {} bytes is longer than limits.max_message_bytes ({max})",
                    long.id.len()
                ),
            ));
        }
        Ok(partitions)
    }

    /// `open(config, partition, checkpoint)` then `schema()`; the reader is kept for
    /// [`Self::next_batch`].
    pub async fn open(
        &mut self,
        config: &str,
        partition: &Partition,
        checkpoint: Option<&str>,
    ) -> Result<Schema, PluginError> {
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        let reader = guarded!(*sandbox, "open", cap, |store| exports
            .call::<OpenParams<'_>, Fallible<ResourceAny>>(
                store,
                instance,
                Export::Open,
                (config, partition, checkpoint)
            ))?;
        self.reader = Some(reader);
        guarded_infallible!(*sandbox, "schema", cap, |store| exports
            .call::<(ResourceAny,), Schema>(
                store,
                instance,
                Export::ReaderSchema,
                (reader,)
            ))
    }

    /// `reader.next-batch(max-rows)`, with a batch cap of twice the instance's memory: a batch
    /// that fits in the guest cannot be refused by it, only one whose lists alias each other.
    /// Prefer [`Self::next_batch_within`] with the pipeline's `max_batch_bytes`.
    pub async fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        let cap = self.live.sandbox.limits.memory_bytes.saturating_mul(2);
        self.next_batch_within(max_rows, cap).await
    }

    /// `reader.next-batch(max-rows)`, copying at most `max_bytes` out of the guest: column
    /// buffers, null bitmaps, positions, rejects and strings, counted as the host holds them
    /// (lists of records at their host size), before they are copied. Past it the call fails
    /// with [`FaultKind::DataLimit`] naming `limits.max_batch_bytes`. Rejects' reasons and raw
    /// text are cut at `limits.max_message_bytes` / `max_raw_bytes`; a checkpoint over
    /// `limits.max_checkpoint_bytes` is `bad-data`.
    pub async fn next_batch_within(
        &mut self,
        max_rows: u32,
        max_bytes: usize,
    ) -> Result<Option<Batch>, PluginError> {
        let reader = self
            .live
            .handle(self.reader, "next-batch", "called before open")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = DataCap {
            bytes: max_bytes,
            limit: "limits.max_batch_bytes",
        };
        let batch = guarded!(*sandbox, "next-batch", cap, |store| exports.call::<(
            ResourceAny,
            u32
        ), Fallible<
            Option<Batch>,
        >>(
            store,
            instance,
            Export::ReaderNextBatch,
            (reader, max_rows)
        ))?;
        let Some(mut batch) = batch else {
            return Ok(None);
        };
        check_checkpoint(sandbox, "next-batch", &batch.checkpoint)?;
        for reject in &mut batch.rejects {
            truncate_in_place(&mut reject.reason, sandbox.limits.max_message_bytes);
            truncate_in_place(&mut reject.raw, sandbox.limits.max_raw_bytes);
        }
        Ok(Some(batch))
    }

    /// Drop the reader (runs the guest's destructor).
    pub async fn close(&mut self) {
        let reader = self.reader.take();
        self.live.drop_resource(reader).await;
    }
}

pub(super) fn bad_data(sandbox: &Sandbox, call: &'static str, message: String) -> PluginError {
    PluginError {
        plugin: sandbox.label.to_string(),
        call,
        kind: FaultKind::BadData,
        message,
        retry_after: None,
    }
}
