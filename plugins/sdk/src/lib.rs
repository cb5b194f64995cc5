//! The Rust SDK for weir plugins: WebAssembly components of the `weir:plugin` contract.
//!
//! Implement the trait of your plugin kind ([`Extractor`], [`Transformer`], [`Loader`] or
//! [`SinkLoader`], [`HistoryStore`]), export it with the matching macro, build with
//! `cargo build --release --target wasm32-wasip2` as a `cdylib`. Batches are columnar; read
//! them with [`RowsView`] (a sink: [`BatchView`]), write them with [`RowsBuilder`], or let [`map_rows`] do both
//! ([`filter_map_rows`] when the transform also leaves rows out on purpose, with [`Counts`] to
//! report what it did). A complete transform:
//!
//! ```no_run
//! use weir_sdk::{Error, PluginInfo, Rows, Schema, Transformed, map_rows};
//!
//! /// Uppercases the `name` column.
//! struct Upper;
//! struct UpperTransform { schema: Schema, name: usize }
//!
//! impl weir_sdk::Transformer for Upper {
//!     type Transform = UpperTransform;
//!     fn describe() -> PluginInfo {
//!         PluginInfo { name: "upper".into(), version: "0.1.0".into(),
//!             description: "uppercases `name`".into(), config_schema: "{}".into() }
//!     }
//!     fn open(_config: &str, input: Schema) -> Result<UpperTransform, Error> {
//!         let name = input.column_index("name").ok_or_else(|| {
//!             Error::InvalidConfig(format!("upper: no column `name` in {}", input.column_list()))
//!         })?;
//!         Ok(UpperTransform { schema: input, name })
//!     }
//! }
//!
//! impl weir_sdk::Transform for UpperTransform {
//!     fn output_schema(&self) -> Schema { self.schema.clone() }
//!     fn apply(&mut self, input: Rows) -> Result<Transformed, Error> {
//!         Ok(map_rows(&input, &self.schema, |row, out| {
//!             for (col, cell) in row.cells().enumerate().filter(|(c, _)| *c != self.name) {
//!                 out.set(col, cell)?;
//!             }
//!             out.set(self.name, row.text(self.name).map(str::to_uppercase).as_ref())?;
//!             Ok(())
//!         }))
//!     }
//! }
//!
//! weir_sdk::export_transformer!(Upper);
//! # fn main() {}
//! ```
//!
//! Errors are values of [`Error`]; its case decides whether the host retries. Reject single
//! bad rows instead (the `Err` of a [`map_rows`] closure). A panic traps the instance.
//!
//! Plugins unit-test natively (`cargo test --target x86_64-unknown-linux-gnu`): the export
//! macros emit nothing there and [`log`] writes to stderr; only [`sql`] needs a real host.

#![warn(missing_docs)]

pub mod bindings;
mod bitmap;
mod builder;
mod cell;
mod config;
#[doc(hidden)]
pub mod export;
pub mod http;
pub mod log;
mod map;
mod number;
mod plugin;
pub mod sql;
pub mod time;
mod types;
mod view;

pub use bindings::extractor::weir::plugin::types::{
    Batch, Column, ColumnData, ColumnVector, Error, Kind, Partition, PluginInfo, Progress, Rows,
    Schema, SourceReject, Value, VarWidth,
};
pub use bindings::history::exports::weir::plugin::history_store::CheckpointEntry;
pub use bindings::loader::exports::weir::plugin::loader::{
    Migration, PlanColumn, RowReject as SinkReject, WriteMode, WritePlan,
};
pub use bindings::transformer::exports::weir::plugin::transformer::{
    Count, OutputColumn, Projection, RowReject, Transformed,
};
pub use builder::{CellError, RowOut, RowsBuilder};
pub use cell::Cell;
pub use config::parse_config;
pub use map::{Counts, Verdict, filter_map_rows, map_rows};
pub use number::exact_decimal;
pub use plugin::{
    Extractor, History, HistoryStore, LoadTarget, Loader, Reader, Sink, SinkLoader, SinkRejects,
    Transform, Transformer,
};
pub use view::{BatchView, RowView, RowsView};
