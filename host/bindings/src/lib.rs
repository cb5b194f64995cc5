//! Host bindings for `wit/` (package `weir:plugin@0.1.0`), one module per world.
//!
//! All `bindgen!` output lives in this crate so that edits to the engine do not regenerate or
//! recompile it. The four worlds share `types`, `log` and `sql` through `with:`, so a batch or an
//! error is the same Rust type whichever plugin it came from.

/// The `sql.connection` resource as the host sees it: an index into the store's granted
/// databases (the real rusqlite connection is owned by the host).
pub struct SqlConnection {
    /// Name of the granted database (a key of the pipeline's `grants.databases`).
    pub database: String,
}

/// Bindings of `transformer-plugin`; also the home of the shared interfaces.
pub mod transformer {
    wasmtime::component::bindgen!({
        world: "transformer-plugin",
        path: "../../wit",
        // Trappable: a host function stops a guest that went past a limit (an `sql` statement
        // past its time, too many connections) with a trap it cannot catch and carry on from.
        imports: { default: async | trappable },
        exports: { default: async },
        with: { "weir:plugin/sql.connection": crate::SqlConnection },
    });
}

/// Bindings of `extractor-plugin`.
pub mod extractor {
    wasmtime::component::bindgen!({
        world: "extractor-plugin",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "weir:plugin/types": crate::transformer::weir::plugin::types,
            "weir:plugin/log": crate::transformer::weir::plugin::log,
            "weir:plugin/sql": crate::transformer::weir::plugin::sql,
        },
    });
}

/// Bindings of `loader-plugin`.
pub mod loader {
    wasmtime::component::bindgen!({
        world: "loader-plugin",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "weir:plugin/types": crate::transformer::weir::plugin::types,
            "weir:plugin/log": crate::transformer::weir::plugin::log,
            "weir:plugin/sql": crate::transformer::weir::plugin::sql,
        },
    });
}

/// Bindings of `history-store-plugin`.
pub mod history {
    wasmtime::component::bindgen!({
        world: "history-store-plugin",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "weir:plugin/types": crate::transformer::weir::plugin::types,
            "weir:plugin/log": crate::transformer::weir::plugin::log,
            "weir:plugin/sql": crate::transformer::weir::plugin::sql,
        },
    });
}

pub use transformer::weir::plugin::{log, sql, types};
