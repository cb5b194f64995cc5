//! A transformer of a newer contract, `weir:plugin@0.9.0`: weir must reject it with the version
//! it supports (and, while serving, keep the version it has), not fail on a missing function.

wit_bindgen::generate!({
    inline: r#"
        package weir:plugin@0.9.0;
        interface transformer {
            record plugin-info { name: string, version: string }
            describe: func() -> plugin-info;
        }
        world transformer-plugin { export transformer; }
    "#,
});

struct Future;

impl exports::weir::plugin::transformer::Guest for Future {
    fn describe() -> exports::weir::plugin::transformer::PluginInfo {
        exports::weir::plugin::transformer::PluginInfo {
            name: "future-contract".into(),
            version: "0.1.0".into(),
        }
    }
}

export!(Future);
