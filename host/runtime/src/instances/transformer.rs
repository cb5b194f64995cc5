//! Transformer instances: open, output schema, apply.

use wasmtime::Store;
use wasmtime::component::{Instance, ResourceAny};
use weir_bindings::types::{Rows, Schema};

pub use weir_bindings::transformer::exports::weir::plugin::transformer::{
    RowReject, Transformed as TransformedRows,
};
use weir_bindings::v0_2_0::transformer::exports::weir::plugin::transformer as v0_2_0;
pub use weir_bindings::v0_2_0::transformer::exports::weir::plugin::transformer::{
    OutputColumn, Projection,
};

/// What one `apply` returned, whatever the transform's contract version.
#[derive(Debug, Clone)]
pub struct TransformOutput {
    /// The surviving rows (all output columns, or the projection's computed ones).
    pub rows: Rows,
    /// Rows refused, with the reason.
    pub rejects: Vec<RowReject>,
    /// Rows left out on purpose (0.2.0 filters): not rejects.
    pub dropped: Vec<u32>,
    /// Named counts for the run record (0.2.0).
    pub counts: Vec<(String, u64)>,
}

use super::{Fallible, Live};
use crate::caps::truncate_in_place;
use crate::contract::Contract;
use crate::error::PluginError;
use crate::exports::{Export, Exports};
use crate::sandbox::{DataCap, guarded, guarded_infallible};
use crate::state::PluginState;

pub(super) fn check_shapes(
    exports: &Exports,
    store: &mut Store<PluginState>,
    instance: &Instance,
) -> wasmtime::Result<()> {
    exports.check::<(&str, &Schema), Fallible<ResourceAny>>(store, instance, Export::Open)?;
    exports.check::<(ResourceAny,), Schema>(store, instance, Export::TransformOutputSchema)?;
    if exports.contract >= Contract::V0_2_0 {
        exports.check::<(ResourceAny,), Option<Projection>>(
            store,
            instance,
            Export::TransformProjection,
        )?;
    }
    if exports.contract >= Contract::V0_2_0 {
        exports.check::<(ResourceAny, &Rows), Fallible<v0_2_0::Transformed>>(
            store,
            instance,
            Export::TransformApply,
        )
    } else {
        exports.check::<(ResourceAny, &Rows), Fallible<TransformedRows>>(
            store,
            instance,
            Export::TransformApply,
        )
    }
}

/// A live transformer instance.
pub struct TransformerInstance {
    pub(crate) live: Live,
    transform: Option<ResourceAny>,
}

impl TransformerInstance {
    pub(crate) fn new(live: Live) -> Self {
        Self {
            live,
            transform: None,
        }
    }

    /// `describe()`.
    pub async fn describe(&mut self) -> Result<crate::types::PluginInfo, PluginError> {
        self.live.describe().await
    }

    /// `open(config, input)` then `output-schema()`.
    pub async fn open(&mut self, config: &str, input: &Schema) -> Result<Schema, PluginError> {
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        let transform = guarded!(*sandbox, "open", cap, |store| exports
            .call::<(&str, &Schema), Fallible<ResourceAny>>(
                store,
                instance,
                Export::Open,
                (config, input)
            ))?;
        self.transform = Some(transform);
        guarded_infallible!(*sandbox, "output-schema", cap, |store| exports
            .call::<(ResourceAny,), Schema>(
                store,
                instance,
                Export::TransformOutputSchema,
                (transform,)
            ))
    }

    /// `transform.projection()` (contract 0.2.0; `None` for 0.1.0 transforms): which input
    /// columns `apply` reads and where each output column comes from. Call after `open`.
    pub async fn projection(&mut self) -> Result<Option<Projection>, PluginError> {
        if self.live.exports.contract < Contract::V0_2_0 {
            return Ok(None);
        }
        let transform = self
            .live
            .handle(self.transform, "projection", "called before open")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = sandbox.result_cap();
        guarded_infallible!(*sandbox, "projection", cap, |store| exports
            .call::<(ResourceAny,), Option<Projection>>(
                store,
                instance,
                Export::TransformProjection,
                (transform,)
            ))
    }

    /// `transform.apply(rows)` with a cap of twice the instance's memory; prefer
    /// [`Self::apply_within`] with the pipeline's `max_batch_bytes`.
    pub async fn apply(&mut self, rows: &Rows) -> Result<TransformOutput, PluginError> {
        let cap = self.live.sandbox.limits.memory_bytes.saturating_mul(2);
        self.apply_within(rows, cap).await
    }

    /// `transform.apply(rows)`, copying at most `max_bytes` out of the guest (the output rows
    /// and the rejects, counted like [`super::ExtractorInstance::next_batch_within`]); reject
    /// reasons and count names are cut at `limits.max_message_bytes`.
    pub async fn apply_within(
        &mut self,
        rows: &Rows,
        max_bytes: usize,
    ) -> Result<TransformOutput, PluginError> {
        let transform = self
            .live
            .handle(self.transform, "apply", "called before open")?;
        let Live {
            sandbox,
            instance,
            exports,
        } = &mut self.live;
        let cap = DataCap {
            bytes: max_bytes,
            limit: "limits.max_batch_bytes",
        };
        let mut out = match exports.contract {
            Contract::V0_1_0 => {
                let out = guarded!(*sandbox, "apply", cap, |store| exports
                    .call::<(ResourceAny, &Rows), Fallible<TransformedRows>>(
                        store,
                        instance,
                        Export::TransformApply,
                        (transform, rows)
                    ))?;
                TransformOutput {
                    rows: out.rows,
                    rejects: out.rejects,
                    dropped: Vec::new(),
                    counts: Vec::new(),
                }
            }
            Contract::V0_2_0 => {
                let out = guarded!(*sandbox, "apply", cap, |store| exports
                    .call::<(ResourceAny, &Rows), Fallible<v0_2_0::Transformed>>(
                        store,
                        instance,
                        Export::TransformApply,
                        (transform, rows)
                    ))?;
                TransformOutput {
                    rows: out.rows,
                    rejects: out
                        .rejects
                        .into_iter()
                        .map(|r| RowReject {
                            index: r.index,
                            reason: r.reason,
                        })
                        .collect(),
                    dropped: out.dropped,
                    counts: out.counts.into_iter().map(|c| (c.name, c.value)).collect(),
                }
            }
        };
        for reject in &mut out.rejects {
            truncate_in_place(&mut reject.reason, sandbox.limits.max_message_bytes);
        }
        for (name, _) in &mut out.counts {
            truncate_in_place(name, 128);
        }
        Ok(out)
    }

    /// Drop the transform resource.
    pub async fn close(&mut self) {
        let transform = self.transform.take();
        self.live.drop_resource(transform).await;
    }
}
