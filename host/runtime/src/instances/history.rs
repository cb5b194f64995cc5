//! History-store instances: open, load, save, entries, reset.

use wasmtime::Store;
use wasmtime::component::{Instance, ResourceAny};

pub use weir_bindings::history::exports::weir::plugin::history_store::CheckpointEntry;

use super::{Fallible, Live, check_checkpoint};
use crate::caps::truncate_in_place;
use crate::error::PluginError;
use crate::exports::{Export, Exports};
use crate::sandbox::{guarded, guarded_infallible};
use crate::state::PluginState;

type SaveParams<'a> = (ResourceAny, &'a str, &'a str, &'a str);

pub(super) fn check_shapes(
    exports: &Exports,
    store: &mut Store<PluginState>,
    instance: &Instance,
) -> wasmtime::Result<()> {
    exports.check::<(&str,), Fallible<ResourceAny>>(store, instance, Export::Open)?;
    exports.check::<(ResourceAny,), Option<String>>(
        store,
        instance,
        Export::HistoryCommitDatabase,
    )?;
    exports.check::<(ResourceAny, &str, &str), Fallible<Option<String>>>(
        store,
        instance,
        Export::HistoryLoad,
    )?;
    exports.check::<SaveParams<'_>, Fallible<()>>(store, instance, Export::HistorySave)?;
    exports.check::<(ResourceAny, Option<&str>), Fallible<Vec<CheckpointEntry>>>(
        store,
        instance,
        Export::HistoryEntries,
    )?;
    exports.check::<(ResourceAny, &str, Option<&str>), Fallible<u32>>(
        store,
        instance,
        Export::HistoryReset,
    )
}

/// A live history-store instance.
pub struct HistoryInstance {
    pub(crate) live: Live,
    history: Option<ResourceAny>,
}

impl HistoryInstance {
    pub(crate) fn new(live: Live) -> Self {
        Self {
            live,
            history: None,
        }
    }

    fn opened(&self, call: &'static str) -> Result<ResourceAny, PluginError> {
        self.live.handle(self.history, call, "called before open")
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<crate::types::PluginInfo, PluginError> {
        self.live.describe().await
    }

    /// `open(config)`; returns the database `save` writes to.
    pub async fn open(&mut self, config: &str) -> Result<Option<String>, PluginError> {
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        let history = guarded!(*sandbox, "open", cap, |store| exports
            .call::<(&str,), Fallible<ResourceAny>>(
                store,
                instance,
                Export::Open,
                (config,)
            ))?;
        self.history = Some(history);
        guarded_infallible!(*sandbox, "commit-database", cap, |store| exports.call::<(
            ResourceAny,
        ), Option<
            String,
        >>(
            store,
            instance,
            Export::HistoryCommitDatabase,
            (history,)
        ))
    }

    /// `history.load(pipeline, partition)`; a checkpoint over `limits.max_checkpoint_bytes` is
    /// `bad-data`.
    pub async fn load(
        &mut self,
        pipeline: &str,
        partition: &str,
    ) -> Result<Option<String>, PluginError> {
        let h = self.opened("load")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        let checkpoint = guarded!(*sandbox, "load", cap, |store| exports.call::<(
            ResourceAny,
            &str,
            &str
        ), Fallible<
            Option<String>,
        >>(
            store,
            instance,
            Export::HistoryLoad,
            (h, pipeline, partition)
        ))?;
        if let Some(c) = &checkpoint {
            check_checkpoint(sandbox, "load", c)?;
        }
        Ok(checkpoint)
    }

    /// `history.save(pipeline, partition, checkpoint)`.
    pub async fn save(
        &mut self,
        pipeline: &str,
        partition: &str,
        checkpoint: &str,
    ) -> Result<(), PluginError> {
        let h = self.opened("save")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        check_checkpoint(sandbox, "save", checkpoint)?;
        let cap = sandbox.result_cap();
        guarded!(*sandbox, "save", cap, |store| exports
            .call::<SaveParams<'_>, Fallible<()>>(
                store,
                instance,
                Export::HistorySave,
                (h, pipeline, partition, checkpoint)
            ))
    }

    /// `history.entries(pipeline)`. Listing is for people: a checkpoint over
    /// `limits.max_checkpoint_bytes` is shown cut, with the marker, rather than failing the list.
    pub async fn entries(
        &mut self,
        pipeline: Option<&str>,
    ) -> Result<Vec<CheckpointEntry>, PluginError> {
        let h = self.opened("entries")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        let mut entries = guarded!(*sandbox, "entries", cap, |store| exports.call::<(
            ResourceAny,
            Option<&str>
        ), Fallible<
            Vec<CheckpointEntry>,
        >>(
            store,
            instance,
            Export::HistoryEntries,
            (h, pipeline)
        ))?;
        let max = sandbox.limits.max_checkpoint_bytes;
        for entry in &mut entries {
            truncate_in_place(&mut entry.checkpoint, max);
        }
        Ok(entries)
    }

    /// `history.reset(pipeline, partition)`.
    pub async fn reset(
        &mut self,
        pipeline: &str,
        partition: Option<&str>,
    ) -> Result<u32, PluginError> {
        let h = self.opened("reset")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        guarded!(*sandbox, "reset", cap, |store| exports.call::<(
            ResourceAny,
            &str,
            Option<&str>
        ), Fallible<u32>>(
            store,
            instance,
            Export::HistoryReset,
            (h, pipeline, partition)
        ))
    }
}
