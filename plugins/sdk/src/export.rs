//! Adapters from the SDK traits to the generated bindings, and the export macros.
//!
//! The generated `Guest*` traits take `&self` on resources and owned `String`s; the SDK traits
//! take `&mut self` and `&str`. Each adapter is generic over the plugin type; the export macros
//! name a concrete instance with a type alias, because the generated `export!` wants an ident.
//!
//! The macros emit the exports only when compiling for wasm: natively (unit tests) export
//! names such as `weir:plugin/loader@0.2.0#open` would not link. The trait bound is checked on
//! every target, so a native `cargo test` still catches a plugin that does not implement it.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bindings::extractor::exports::weir::plugin::extractor as ex;
use crate::bindings::history::exports::weir::plugin::history_store as hs;
use crate::bindings::loader::exports::weir::plugin::loader as ld;
use crate::bindings::transformer::exports::weir::plugin::transformer as tr;
use crate::plugin::{
    Extractor, History, HistoryStore, LoadTarget, Loader, Reader, Sink, SinkLoader, Transform,
    Transformer,
};
use crate::{
    Batch, BatchView, CheckpointEntry, Error, Partition, PluginInfo, Projection, Rows, Schema,
    SinkRejects, Transformed,
};

/// Exports `E: Extractor` as the `extractor` interface.
pub struct ExtractorExport<E>(PhantomData<E>);

/// A reader resource. `RefCell` because resource methods get `&self`; the component model
/// never re-enters an instance, so the borrow cannot clash.
pub struct ReaderExport<R>(RefCell<R>);

impl<E: Extractor> ex::Guest for ExtractorExport<E> {
    type Reader = ReaderExport<E::Reader>;

    fn describe() -> PluginInfo {
        E::describe()
    }

    fn partitions(config: String) -> Result<Vec<Partition>, Error> {
        E::partitions(&config)
    }

    fn open(
        config: String,
        partition: Partition,
        checkpoint: Option<String>,
    ) -> Result<ex::Reader, Error> {
        let reader = E::open(&config, partition, checkpoint)?;
        Ok(ex::Reader::new(ReaderExport(RefCell::new(reader))))
    }
}

impl<R: Reader> ex::GuestReader for ReaderExport<R> {
    fn schema(&self) -> Schema {
        self.0.borrow().schema()
    }

    fn next_batch(&self, max_rows: u32) -> Result<Option<Batch>, Error> {
        self.0.borrow_mut().next_batch(max_rows)
    }
}

/// Exports `T: Transformer` as the `transformer` interface.
pub struct TransformerExport<T>(PhantomData<T>);

/// A transform resource; see [`ReaderExport`] for the `RefCell`.
pub struct TransformExport<T>(RefCell<T>);

impl<T: Transformer> tr::Guest for TransformerExport<T> {
    type Transform = TransformExport<T::Transform>;

    fn describe() -> PluginInfo {
        T::describe()
    }

    fn open(config: String, input: Schema) -> Result<tr::Transform, Error> {
        let transform = T::open(&config, input)?;
        Ok(tr::Transform::new(TransformExport(RefCell::new(transform))))
    }
}

impl<T: Transform> tr::GuestTransform for TransformExport<T> {
    fn output_schema(&self) -> Schema {
        self.0.borrow().output_schema()
    }

    fn projection(&self) -> Option<Projection> {
        self.0.borrow().projection()
    }

    fn apply(&self, input: Rows) -> Result<Transformed, Error> {
        self.0.borrow_mut().apply(input)
    }
}

/// Exports `L: Loader` as the `loader` interface; `open` always returns a write plan.
pub struct LoaderExport<L>(PhantomData<L>);

/// The sink of a write-plan loader, which never opens one: uninhabited, so no value exists.
pub enum NoSink {}

impl<L: Loader> ld::Guest for LoaderExport<L> {
    type Sink = NoSink;

    fn describe() -> PluginInfo {
        L::describe()
    }

    fn open(config: String, schema: Schema) -> Result<ld::Target, Error> {
        L::open(&config, schema).map(ld::Target::Plan)
    }
}

impl ld::GuestSink for NoSink {
    fn write(&self, _batch: Batch) -> Result<Vec<ld::RowReject>, Error> {
        match *self {}
    }

    fn finish(&self) -> Result<(), Error> {
        match *self {}
    }
}

/// Exports `L: SinkLoader` as the `loader` interface; `open` returns what `L::open` chose.
pub struct SinkLoaderExport<L>(PhantomData<L>);

/// A sink resource; see [`ReaderExport`] for the `RefCell`.
pub struct SinkExport<S>(RefCell<S>);

impl<L: SinkLoader> ld::Guest for SinkLoaderExport<L> {
    type Sink = SinkExport<L::Sink>;

    fn describe() -> PluginInfo {
        L::describe()
    }

    fn open(config: String, schema: Schema) -> Result<ld::Target, Error> {
        Ok(match L::open(&config, schema)? {
            LoadTarget::Plan(plan) => ld::Target::Plan(plan),
            LoadTarget::Sink(sink) => {
                ld::Target::Sink(ld::Sink::new(SinkExport(RefCell::new(sink))))
            }
        })
    }
}

impl<S: Sink> ld::GuestSink for SinkExport<S> {
    fn write(&self, batch: Batch) -> Result<Vec<ld::RowReject>, Error> {
        let mut rejects = SinkRejects::default();
        self.0
            .borrow_mut()
            .write(&BatchView::new(&batch), &mut rejects)?;
        Ok(rejects.0)
    }

    fn finish(&self) -> Result<(), Error> {
        self.0.borrow_mut().finish()
    }
}

/// Exports `H: HistoryStore` as the `history-store` interface.
pub struct HistoryStoreExport<H>(PhantomData<H>);

/// A history resource; see [`ReaderExport`] for the `RefCell`.
pub struct HistoryExport<H>(RefCell<H>);

impl<H: HistoryStore> hs::Guest for HistoryStoreExport<H> {
    type History = HistoryExport<H::History>;

    fn describe() -> PluginInfo {
        H::describe()
    }

    fn open(config: String) -> Result<hs::History, Error> {
        let history = H::open(&config)?;
        Ok(hs::History::new(HistoryExport(RefCell::new(history))))
    }
}

impl<H: History> hs::GuestHistory for HistoryExport<H> {
    fn commit_database(&self) -> Option<String> {
        self.0.borrow().commit_database()
    }

    fn load(&self, pipeline: String, partition: String) -> Result<Option<String>, Error> {
        self.0.borrow_mut().load(&pipeline, &partition)
    }

    fn save(&self, pipeline: String, partition: String, checkpoint: String) -> Result<(), Error> {
        self.0.borrow_mut().save(&pipeline, &partition, &checkpoint)
    }

    fn entries(&self, pipeline: Option<String>) -> Result<Vec<CheckpointEntry>, Error> {
        self.0.borrow_mut().entries(pipeline.as_deref())
    }

    fn reset(&self, pipeline: String, partition: Option<String>) -> Result<u32, Error> {
        self.0.borrow_mut().reset(&pipeline, partition.as_deref())
    }
}

/// Export `$plugin: Extractor` as this component's extractor. Use once, in a `cdylib`.
#[macro_export]
macro_rules! export_extractor {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements<T: $crate::Extractor>() {}
            implements::<$plugin>();
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type Export = $crate::export::ExtractorExport<$plugin>;
            $crate::bindings::extractor::export! { Export with_types_in $crate::bindings::extractor }
        };
    };
}

/// Export `$plugin: Transformer` as this component's transformer. Use once, in a `cdylib`.
#[macro_export]
macro_rules! export_transformer {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements<T: $crate::Transformer>() {}
            implements::<$plugin>();
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type Export = $crate::export::TransformerExport<$plugin>;
            $crate::bindings::transformer::export! { Export with_types_in $crate::bindings::transformer }
        };
    };
}

/// Export `$plugin: Loader` as this component's loader. Use once, in a `cdylib`.
#[macro_export]
macro_rules! export_loader {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements<T: $crate::Loader>() {}
            implements::<$plugin>();
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type Export = $crate::export::LoaderExport<$plugin>;
            $crate::bindings::loader::export! { Export with_types_in $crate::bindings::loader }
        };
    };
}

/// Export `$plugin: SinkLoader` as this component's loader. Use once, in a `cdylib`, instead of
/// [`export_loader!`].
#[macro_export]
macro_rules! export_sink_loader {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements<T: $crate::SinkLoader>() {}
            implements::<$plugin>();
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type Export = $crate::export::SinkLoaderExport<$plugin>;
            $crate::bindings::loader::export! { Export with_types_in $crate::bindings::loader }
        };
    };
}

/// Export `$plugin: HistoryStore` as this component's history store. Use once, in a `cdylib`.
#[macro_export]
macro_rules! export_history_store {
    ($plugin:ty) => {
        const _: fn() = || {
            fn implements<T: $crate::HistoryStore>() {}
            implements::<$plugin>();
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type Export = $crate::export::HistoryStoreExport<$plugin>;
            $crate::bindings::history::export! { Export with_types_in $crate::bindings::history }
        };
    };
}
