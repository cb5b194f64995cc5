//! The plugin functions the host calls, found by interface name and contract version.
//!
//! Calls go through typed functions looked up here rather than through the `bindgen!` world
//! structs: the lookup takes the contract version as data (`weir:plugin/extractor@0.1.0`), so a
//! component of another version whose batch and row shapes are the same is called through the
//! same code; and every call sets its own cap on what the host copies out of the guest (see
//! [`crate::sandbox::Sandbox::enter`]).

use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower,
};

use crate::catalog::PluginKind;
use crate::contract::Contract;
use crate::state::PluginState;

/// One function of a plugin interface, by its name in the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Export {
    Describe,
    Partitions,
    Open,
    ReaderSchema,
    ReaderNextBatch,
    TransformOutputSchema,
    /// 0.2.0 and later.
    TransformProjection,
    TransformApply,
    SinkWrite,
    SinkFinish,
    HistoryCommitDatabase,
    HistoryLoad,
    HistorySave,
    HistoryEntries,
    HistoryReset,
}

impl Export {
    /// The function's export name inside its interface instance.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Describe => "describe",
            Self::Partitions => "partitions",
            Self::Open => "open",
            Self::ReaderSchema => "[method]reader.schema",
            Self::ReaderNextBatch => "[method]reader.next-batch",
            Self::TransformOutputSchema => "[method]transform.output-schema",
            Self::TransformProjection => "[method]transform.projection",
            Self::TransformApply => "[method]transform.apply",
            Self::SinkWrite => "[method]sink.write",
            Self::SinkFinish => "[method]sink.finish",
            Self::HistoryCommitDatabase => "[method]history.commit-database",
            Self::HistoryLoad => "[method]history.load",
            Self::HistorySave => "[method]history.save",
            Self::HistoryEntries => "[method]history.entries",
            Self::HistoryReset => "[method]history.reset",
        }
    }

    /// The functions a plugin of `kind` built against `contract` exports.
    fn of_kind(kind: PluginKind, contract: Contract) -> &'static [Export] {
        match kind {
            PluginKind::Transformer if contract >= Contract::V0_2_0 => &[
                Self::Describe,
                Self::Open,
                Self::TransformOutputSchema,
                Self::TransformProjection,
                Self::TransformApply,
            ],
            PluginKind::Extractor => &[
                Self::Describe,
                Self::Partitions,
                Self::Open,
                Self::ReaderSchema,
                Self::ReaderNextBatch,
            ],
            PluginKind::Transformer => &[
                Self::Describe,
                Self::Open,
                Self::TransformOutputSchema,
                Self::TransformApply,
            ],
            PluginKind::Loader => &[
                Self::Describe,
                Self::Open,
                Self::SinkWrite,
                Self::SinkFinish,
            ],
            PluginKind::HistoryStore => &[
                Self::Describe,
                Self::Open,
                Self::HistoryCommitDatabase,
                Self::HistoryLoad,
                Self::HistorySave,
                Self::HistoryEntries,
                Self::HistoryReset,
            ],
        }
    }
}

/// Where one component's functions of its plugin interface are.
#[derive(Debug, Clone)]
pub(crate) struct Exports {
    /// The interface instance, e.g. `weir:plugin/extractor@0.1.0`.
    pub interface: String,
    /// Its contract version: which shapes its functions have.
    pub contract: Contract,
    index: Vec<(Export, ComponentExportIndex)>,
}

impl Exports {
    /// Find every function of `kind`'s interface of version `contract` in `component`.
    pub(crate) fn find(
        component: &Component,
        kind: PluginKind,
        contract: Contract,
    ) -> Result<Self, String> {
        let interface = format!("{}@{contract}", kind.interface());
        let instance = component
            .get_export_index(None, interface.as_str())
            .ok_or_else(|| format!("does not export {interface}"))?;
        let mut index = Vec::new();
        for &export in Export::of_kind(kind, contract) {
            let at = component
                .get_export_index(Some(&instance), export.name())
                .ok_or_else(|| format!("exports {interface} without `{}`", export.name()))?;
            index.push((export, at));
        }
        Ok(Self {
            interface,
            contract,
            index,
        })
    }

    fn index(&self, export: Export) -> wasmtime::Result<&ComponentExportIndex> {
        self.index
            .iter()
            .find(|(e, _)| *e == export)
            .map(|(_, i)| i)
            .ok_or_else(|| wasmtime::format_err!("{} has no `{}`", self.interface, export.name()))
    }

    /// Call `export` of `instance` with `params`, returning its one result.
    ///
    /// The type check runs on every call (microseconds, against a batch's milliseconds): it is
    /// what makes the call safe without `unsafe`, and it names the mismatch when a component
    /// of another contract version differs.
    pub(crate) async fn call<P, R>(
        &self,
        store: &mut Store<PluginState>,
        instance: &Instance,
        export: Export,
        params: P,
    ) -> wasmtime::Result<R>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        (R,): ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let func = instance
            .get_func(&mut *store, self.index(export)?)
            .ok_or_else(|| {
                wasmtime::format_err!("{}: `{}` is not a function", self.interface, export.name())
            })?;
        let typed = func
            .typed::<P, (R,)>(&*store)
            .map_err(|e| e.context(format!("{}: `{}`", self.interface, export.name())))?;
        let (result,) = typed.call_async(&mut *store, params).await?;
        Ok(result)
    }

    /// Check that `export` has the shape the host calls it with, without calling it.
    pub(crate) fn check<P, R>(
        &self,
        store: &mut Store<PluginState>,
        instance: &Instance,
        export: Export,
    ) -> wasmtime::Result<()>
    where
        P: ComponentNamedList + Lower,
        (R,): ComponentNamedList + Lift,
    {
        let func = instance
            .get_func(&mut *store, self.index(export)?)
            .ok_or_else(|| wasmtime::format_err!("`{}` is not a function", export.name()))?;
        func.typed::<P, (R,)>(&*store)
            .map_err(|e| e.context(format!("`{}`", export.name())))?;
        Ok(())
    }
}
