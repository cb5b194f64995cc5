//! Typed handles to live plugin instances, one per plugin kind. Every call goes through the
//! sandbox guard (limits, deadline, data cap, fault classification) and the export table of the
//! plugin's contract version.

mod extractor;
mod history;
mod loader;
mod transformer;

use std::sync::Arc;

use wasmtime::component::{Instance, ResourceAny};
use weir_bindings::types::{Error as GuestError, PluginInfo};

pub use extractor::ExtractorInstance;
pub use history::{CheckpointEntry, HistoryInstance};
pub use loader::{
    LoadTarget, LoaderInstance, Migration, PlanColumn, SinkReject, SqlPlan, WriteMode, WritePlan,
};
pub use transformer::{
    OutputColumn, Projection, RowReject, TransformOutput, TransformedRows, TransformerInstance,
};

use crate::catalog::PluginKind;
use crate::error::PluginError;
use crate::exports::{Export, Exports};
use crate::sandbox::{Sandbox, guarded_infallible};

/// What every instance is made of: its store, the component instance and where its exports are.
pub(crate) struct Live {
    pub sandbox: Sandbox,
    pub instance: Instance,
    pub exports: Arc<Exports>,
}

impl Live {
    /// `describe()`, with its strings capped: names and versions identify a plugin everywhere,
    /// so an absurd one is refused; the description is cut.
    pub(crate) async fn describe(&mut self) -> Result<PluginInfo, PluginError> {
        /// Longest plugin name or version accepted.
        const MAX_NAME: usize = 256;
        let Self {
            sandbox,
            instance,
            exports,
        } = self;
        let cap = sandbox.result_cap();
        let mut info: PluginInfo = guarded_infallible!(*sandbox, "describe", cap, |store| exports
            .call::<(), PluginInfo>(store, instance, Export::Describe, ()))?;
        for (what, value) in [("name", &info.name), ("version", &info.version)] {
            if value.len() > MAX_NAME {
                return Err(PluginError::contract(
                    &sandbox.label,
                    "describe",
                    format!(
                        "returned a {what} of {} bytes; at most {MAX_NAME}",
                        value.len()
                    ),
                ));
            }
        }
        crate::caps::truncate_in_place(&mut info.description, sandbox.limits.max_message_bytes);
        Ok(info)
    }

    /// Check that every export has the shape this host calls it with (at load, so a wrong
    /// plugin is refused by name instead of failing its first run).
    pub(crate) fn check_shapes(&mut self, kind: PluginKind) -> Result<(), String> {
        let Self {
            sandbox,
            instance,
            exports,
        } = self;
        let store = &mut sandbox.store;
        let result = exports.check::<(), PluginInfo>(store, instance, Export::Describe);
        let result = result.and_then(|()| match kind {
            PluginKind::Extractor => extractor::check_shapes(exports, store, instance),
            PluginKind::Transformer => transformer::check_shapes(exports, store, instance),
            PluginKind::Loader => loader::check_shapes(exports, store, instance),
            PluginKind::HistoryStore => history::check_shapes(exports, store, instance),
        });
        result.map_err(|e| format!("exports {} with the wrong shape: {e:#}", exports.interface))
    }

    /// Drop a guest resource, ignoring failures: the instance may already be poisoned, and the
    /// store is about to go away anyway.
    pub(crate) async fn drop_resource(&mut self, resource: Option<ResourceAny>) {
        if let Some(resource) = resource
            && !self.sandbox.is_poisoned()
        {
            let _ = resource.resource_drop_async(&mut self.sandbox.store).await;
        }
    }

    /// The open handle, or a contract error naming `call`.
    pub(crate) fn handle(
        &self,
        handle: Option<ResourceAny>,
        call: &'static str,
        why: &str,
    ) -> Result<ResourceAny, PluginError> {
        handle.ok_or_else(|| PluginError::contract(&self.sandbox.label, call, why))
    }
}

/// A checkpoint over its cap: stored, streamed and shown whole, so it is refused, not cut.
pub(crate) fn check_checkpoint(
    sandbox: &Sandbox,
    call: &'static str,
    checkpoint: &str,
) -> Result<(), PluginError> {
    let max = sandbox.limits.max_checkpoint_bytes;
    if checkpoint.len() <= max {
        return Ok(());
    }
    Err(PluginError {
        plugin: sandbox.label.to_string(),
        call,
        kind: crate::FaultKind::BadData,
        message: format!(
            "checkpoint of {} bytes is larger than limits.max_checkpoint_bytes ({max})",
            checkpoint.len()
        ),
        retry_after: None,
    })
}

/// The result type of calls whose WIT result is `result<T, error>`.
pub(crate) type Fallible<T> = Result<T, GuestError>;
