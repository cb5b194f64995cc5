//! Loader instances: open (a write plan or a sink), write, finish.

use wasmtime::Store;
use wasmtime::component::{Instance, ResourceAny};
use weir_bindings::loader::exports::weir::plugin::loader::{Target, WritePlan};
use weir_bindings::types::{Batch, Schema};

use super::{Fallible, Live};
use crate::error::PluginError;
use crate::exports::{Export, Exports};
use crate::sandbox::guarded;
use crate::state::PluginState;

pub(super) fn check_shapes(
    exports: &Exports,
    store: &mut Store<PluginState>,
    instance: &Instance,
) -> wasmtime::Result<()> {
    exports.check::<(&str, &Schema), Fallible<Target>>(store, instance, Export::Open)?;
    exports.check::<(ResourceAny, &Batch), Fallible<()>>(store, instance, Export::SinkWrite)?;
    exports.check::<(ResourceAny,), Fallible<()>>(store, instance, Export::SinkFinish)
}

/// What a loader asked for.
pub enum LoadTarget {
    /// The host executes this plan in the commit transaction, under the plugin SQL rules
    /// ([`crate::sql_guard::as_plugin`]): it is SQL the plugin wrote.
    Plan(WritePlan),
    /// The host calls the sink (kept in the instance).
    Sink,
}

/// A live loader instance.
pub struct LoaderInstance {
    pub(crate) live: Live,
    sink: Option<ResourceAny>,
}

impl LoaderInstance {
    pub(crate) fn new(live: Live) -> Self {
        Self { live, sink: None }
    }

    /// What this instance did over its granted HTTP connections, per grant (its own share;
    /// [`crate::HttpGrant::counters`] adds up every instance of the pipeline).
    pub fn http_stats(&self) -> crate::InstanceHttpStats {
        self.live.sandbox.store.data().http_stats()
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<crate::types::PluginInfo, PluginError> {
        self.live.describe().await
    }

    /// `open(config, schema)`.
    pub async fn open(&mut self, config: &str, schema: &Schema) -> Result<LoadTarget, PluginError> {
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        match guarded!(*sandbox, "open", cap, |store| exports
            .call::<(&str, &Schema), Fallible<Target>>(
                store,
                instance,
                Export::Open,
                (config, schema)
            ))? {
            Target::Plan(plan) => Ok(LoadTarget::Plan(plan)),
            Target::Sink(sink) => {
                self.sink = Some(sink);
                Ok(LoadTarget::Sink)
            }
        }
    }

    /// `sink.write(batch)`.
    pub async fn write(&mut self, batch: &Batch) -> Result<(), PluginError> {
        let sink = self
            .live
            .handle(self.sink, "write", "the loader returned no sink")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        guarded!(*sandbox, "write", cap, |store| exports
            .call::<(ResourceAny, &Batch), Fallible<()>>(
                store,
                instance,
                Export::SinkWrite,
                (sink, batch)
            ))
    }

    /// `sink.finish()` and drop the sink.
    pub async fn finish(&mut self) -> Result<(), PluginError> {
        if let Some(sink) = self.sink {
            let Live {
                sandbox,
                instance,
                exports,
            } = &mut self.live;
            let cap = sandbox.result_cap();
            guarded!(*sandbox, "finish", cap, |store| exports
                .call::<(ResourceAny,), Fallible<()>>(
                    store,
                    instance,
                    Export::SinkFinish,
                    (sink,)
                ))?;
        }
        let sink = self.sink.take();
        self.live.drop_resource(sink).await;
        Ok(())
    }
}
