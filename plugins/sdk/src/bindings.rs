//! Generated bindings of `weir:plugin@0.2.0` (`wit/0.2.0/`), one module per world.
//!
//! Every world includes the same imports (`types`, `log`, `sql`). They are generated once, in
//! `extractor`, and the other worlds reuse them through `with`, so a `Schema` is the same Rust
//! type whichever world a plugin exports. `generate!` emits only the imports' type section here;
//! the export macros emit the full world in the plugin crate, so linking this crate never makes a
//! plugin claim exports it does not implement.

#![allow(missing_docs)]

pub mod extractor {
    wit_bindgen::generate!({
        world: "extractor-plugin",
        path: "../../wit/0.2.0",
        pub_export_macro: true,
        additional_derives: [PartialEq],
        generate_all,
    });
}

pub mod transformer {
    wit_bindgen::generate!({
        world: "transformer-plugin",
        path: "../../wit/0.2.0",
        pub_export_macro: true,
        additional_derives: [PartialEq],
        with: {
            "weir:plugin/types@0.2.0": crate::bindings::extractor::weir::plugin::types,
            "weir:plugin/log@0.2.0": crate::bindings::extractor::weir::plugin::log,
            "weir:plugin/sql@0.2.0": crate::bindings::extractor::weir::plugin::sql,
        },
    });
}

pub mod loader {
    wit_bindgen::generate!({
        world: "loader-plugin",
        path: "../../wit/0.2.0",
        pub_export_macro: true,
        // Not `additional_derives`: `target` holds a `sink` resource, which has no `PartialEq`.
        additional_type_attributes: {
            "weir:plugin/loader@0.2.0/write-plan": [#[derive(PartialEq)]],
            "weir:plugin/loader@0.2.0/plan-column": [#[derive(PartialEq)]],
            "weir:plugin/loader@0.2.0/migration": [#[derive(PartialEq)]],
            "weir:plugin/loader@0.2.0/row-reject": [#[derive(PartialEq)]],
        },
        with: {
            "weir:plugin/types@0.2.0": crate::bindings::extractor::weir::plugin::types,
            "weir:plugin/log@0.2.0": crate::bindings::extractor::weir::plugin::log,
            "weir:plugin/sql@0.2.0": crate::bindings::extractor::weir::plugin::sql,
        },
    });
}

pub mod history {
    wit_bindgen::generate!({
        world: "history-store-plugin",
        path: "../../wit/0.2.0",
        pub_export_macro: true,
        additional_derives: [PartialEq],
        with: {
            "weir:plugin/types@0.2.0": crate::bindings::extractor::weir::plugin::types,
            "weir:plugin/log@0.2.0": crate::bindings::extractor::weir::plugin::log,
            "weir:plugin/sql@0.2.0": crate::bindings::extractor::weir::plugin::sql,
        },
    });
}
