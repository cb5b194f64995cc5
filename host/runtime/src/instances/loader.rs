//! Loader instances: open (a write plan or a sink), write, finish — for every contract
//! version, returned as the newest version's types.

use wasmtime::Store;
use wasmtime::component::{Instance, ResourceAny};
use weir_bindings::types::{Batch, Schema};
use weir_bindings::v0_1_0::loader::exports::weir::plugin::loader as v0_1_0;
use weir_bindings::v0_2_0::loader::exports::weir::plugin::loader as v0_2_0;

pub use v0_1_0::WritePlan as SqlPlan;
pub use v0_2_0::{Migration, PlanColumn, WriteMode, WritePlan};

use super::{Fallible, Live};
use crate::caps::truncate_in_place;
use crate::contract::Contract;
use crate::error::PluginError;
use crate::exports::{Export, Exports};
use crate::sandbox::guarded;
use crate::state::PluginState;

/// A row a sink refused. The same shape as a transform's refusal.
pub use crate::instances::transformer::RowReject as SinkReject;

pub(super) fn check_shapes(
    exports: &Exports,
    store: &mut Store<PluginState>,
    instance: &Instance,
) -> wasmtime::Result<()> {
    match exports.contract {
        Contract::V0_1_0 => {
            exports.check::<(&str, &Schema), Fallible<v0_1_0::Target>>(
                store,
                instance,
                Export::Open,
            )?;
            exports.check::<(ResourceAny, &Batch), Fallible<()>>(
                store,
                instance,
                Export::SinkWrite,
            )?;
        }
        Contract::V0_2_0 => {
            exports.check::<(&str, &Schema), Fallible<v0_2_0::Target>>(
                store,
                instance,
                Export::Open,
            )?;
            exports.check::<(ResourceAny, &Batch), Fallible<Vec<SinkReject>>>(
                store,
                instance,
                Export::SinkWrite,
            )?;
        }
    }
    exports.check::<(ResourceAny,), Fallible<()>>(store, instance, Export::SinkFinish)
}

/// What a loader asked for.
pub enum LoadTarget {
    /// Contract 0.1.0: SQL the loader wrote. The host executes it in the commit transaction
    /// under the plugin SQL rules ([`crate::sql_guard::as_plugin`]).
    SqlPlan(SqlPlan),
    /// Contract 0.2.0: a declarative plan the host renders for the target database.
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

    /// What this instance does over its granted HTTP connections, per grant (its own share
    /// of each grant's counters), readable after the instance is dropped.
    pub fn http_meter(&self) -> crate::HttpMeter {
        self.live.sandbox.store.data().http_meter()
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
        let (target, sink) = match exports.contract {
            Contract::V0_1_0 => {
                match guarded!(*sandbox, "open", cap, |store| exports
                    .call::<(&str, &Schema), Fallible<v0_1_0::Target>>(
                        store,
                        instance,
                        Export::Open,
                        (config, schema)
                    ))? {
                    v0_1_0::Target::Plan(plan) => (LoadTarget::SqlPlan(plan), None),
                    v0_1_0::Target::Sink(sink) => (LoadTarget::Sink, Some(sink)),
                }
            }
            Contract::V0_2_0 => {
                match guarded!(*sandbox, "open", cap, |store| exports
                    .call::<(&str, &Schema), Fallible<v0_2_0::Target>>(
                        store,
                        instance,
                        Export::Open,
                        (config, schema)
                    ))? {
                    v0_2_0::Target::Plan(plan) => (LoadTarget::Plan(plan), None),
                    v0_2_0::Target::Sink(sink) => (LoadTarget::Sink, Some(sink)),
                }
            }
        };
        self.sink = sink;
        Ok(target)
    }

    /// `sink.write(batch)`: the rows the destination refused (never any for a 0.1.0 sink),
    /// each index checked to be in the batch and given once, reasons cut at
    /// `limits.max_message_bytes`.
    pub async fn write(&mut self, batch: &Batch) -> Result<Vec<SinkReject>, PluginError> {
        let sink = self
            .live
            .handle(self.sink, "write", "the loader returned no sink")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        let mut rejects = match exports.contract {
            Contract::V0_1_0 => {
                guarded!(*sandbox, "write", cap, |store| exports
                    .call::<(ResourceAny, &Batch), Fallible<()>>(
                        store,
                        instance,
                        Export::SinkWrite,
                        (sink, batch)
                    ))?;
                Vec::new()
            }
            Contract::V0_2_0 => {
                guarded!(*sandbox, "write", cap, |store| exports
                    .call::<(ResourceAny, &Batch), Fallible<Vec<SinkReject>>>(
                        store,
                        instance,
                        Export::SinkWrite,
                        (sink, batch)
                    ))?
            }
        };
        let rows = batch.rows.row_count as usize;
        let mut seen = vec![false; rows];
        for reject in &mut rejects {
            let index = reject.index as usize;
            if index >= rows || std::mem::replace(&mut seen[index], true) {
                return Err(PluginError::contract(
                    &sandbox.label,
                    "write",
                    format!("reject index {index} is out of range or repeated"),
                ));
            }
            truncate_in_place(&mut reject.reason, sandbox.limits.max_message_bytes);
        }
        Ok(rejects)
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
