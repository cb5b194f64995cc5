//! Host bindings for `wit/`: one module per contract version, one module per world.
//!
//! All `bindgen!` output lives in this crate so that edits to the engine do not regenerate or
//! recompile it. Within a version the worlds share `types`, `log` and `sql` through `with:`,
//! so a batch or an error is the same Rust type whichever plugin it came from. `types` is the
//! same in every version, so 0.2.0 reuses 0.1.0's Rust types: the host handles batches of
//! either version with one set of types.
//!
//! The runtime calls plugin exports through its own typed functions (`weir-runtime`'s
//! `exports.rs`); from the worlds it takes the import traits, `add_to_linker`, and the export
//! types.

/// The `sql.connection` resource as the host sees it: an index into the store's granted
/// databases (the real connection is owned by the host). The same for every version.
pub struct SqlConnection {
    /// Name of the granted database (a key of the pipeline's `grants.databases`).
    pub database: String,
}

/// `weir:plugin@0.1.0`.
pub mod v0_1_0 {
    /// Bindings of `transformer-plugin`; also the home of the shared interfaces.
    pub mod transformer {
        wasmtime::component::bindgen!({
            world: "transformer-plugin",
            path: "../../wit/0.1.0",
            // Trappable: a host function stops a guest that went past a limit (an `sql`
            // statement past its time, too many connections) with a trap it cannot catch and
            // carry on from.
            imports: { default: async | trappable },
            exports: { default: async },
            with: { "weir:plugin/sql.connection": crate::SqlConnection },
        });
    }

    /// Bindings of `extractor-plugin`.
    pub mod extractor {
        wasmtime::component::bindgen!({
            world: "extractor-plugin",
            path: "../../wit/0.1.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "weir:plugin/types": super::transformer::weir::plugin::types,
                "weir:plugin/log": super::transformer::weir::plugin::log,
                "weir:plugin/sql": super::transformer::weir::plugin::sql,
            },
        });
    }

    /// Bindings of `loader-plugin`.
    pub mod loader {
        wasmtime::component::bindgen!({
            world: "loader-plugin",
            path: "../../wit/0.1.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "weir:plugin/types": super::transformer::weir::plugin::types,
                "weir:plugin/log": super::transformer::weir::plugin::log,
                "weir:plugin/sql": super::transformer::weir::plugin::sql,
            },
        });
    }

    /// Bindings of `history-store-plugin`.
    pub mod history {
        wasmtime::component::bindgen!({
            world: "history-store-plugin",
            path: "../../wit/0.1.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "weir:plugin/types": super::transformer::weir::plugin::types,
                "weir:plugin/log": super::transformer::weir::plugin::log,
                "weir:plugin/sql": super::transformer::weir::plugin::sql,
            },
        });
    }

    pub use transformer::weir::plugin::{log, sql, types};
}

/// `weir:plugin@0.2.0`. Only the worlds whose exports differ from 0.1.0 are generated (the
/// extractor and history-store interfaces are the same); `transformer-plugin` also carries
/// 0.2.0's `log` and `sql` imports, which every 0.2.0 world shares.
pub mod v0_2_0 {
    /// Bindings of `transformer-plugin`, and of 0.2.0's `log` and `sql`.
    pub mod transformer {
        wasmtime::component::bindgen!({
            world: "transformer-plugin",
            path: "../../wit/0.2.0",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "weir:plugin/types": crate::v0_1_0::types,
                "weir:plugin/sql.connection": crate::SqlConnection,
            },
        });
    }

    /// Bindings of `loader-plugin`.
    pub mod loader {
        wasmtime::component::bindgen!({
            world: "loader-plugin",
            path: "../../wit/0.2.0",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "weir:plugin/types": crate::v0_1_0::types,
                "weir:plugin/log": super::transformer::weir::plugin::log,
                "weir:plugin/sql": super::transformer::weir::plugin::sql,
            },
        });
    }

    pub use transformer::weir::plugin::{log, sql};
}

pub use v0_1_0::{extractor, history, loader, log, sql, transformer, types};
