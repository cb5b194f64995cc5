//! The weir plugin runtime: one wasmtime engine, plugin discovery with an on-disk compile cache,
//! deny-by-default sandboxes with limits, and the host side of the plugin imports.
//!
//! The engine crate asks this crate for typed instances ([`ExtractorInstance`], …) and never
//! touches wasmtime stores itself.

mod cache;
mod catalog;
mod error;
mod grants;
mod host;
mod instances;
mod limits;
mod sandbox;
mod state;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

pub use cache::{CacheOutcome, content_hash};
pub use catalog::{CONTRACT_VERSION, Catalog, Plugin, PluginKind, RejectedPlugin};
pub use error::{FaultKind, PluginError};
pub use grants::{
    DatabaseOptions, Databases, DirGrant, Grants, SharedConnection, lock, open_database,
    open_database_with,
};
pub use host::{SqlValue, from_sql};
pub use instances::{
    CheckpointEntry, ExtractorInstance, HistoryInstance, LoadTarget, LoaderInstance, RowReject,
    TransformedRows, TransformerInstance,
};
pub use limits::{EPOCH_TICK, Limits};
pub use state::{CallSite, LogSink, PluginState};
pub use watch::{FileEvent, PluginChange, SETTLE, watch_dir};
pub use weir_bindings::loader::exports::weir::plugin::loader::WritePlan;
pub use weir_bindings::types;

use catalog::PluginPre;
use sandbox::Sandbox;

/// The process-wide plugin runtime.
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    cache: cache::CompileCache,
    stop_ticker: Arc<AtomicBool>,
}

impl Runtime {
    /// One engine for the process: component model, async calls, epoch interruption.
    /// `cache_dir` holds compiled plugins (`None` = compile every time).
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        // WASI for what guest toolchains import (filesystem, clocks, random, stdio; sockets are
        // linked but every use is denied by the store's WASI context).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // The four worlds share their imports, so one world's add_to_linker serves all.
        weir_bindings::transformer::TransformerPlugin::add_to_linker::<_, HasSelf<PluginState>>(
            &mut linker,
            |state| state,
        )?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), stop_ticker.clone());
        Ok(Self {
            cache: cache::CompileCache::new(&engine, cache_dir),
            engine,
            linker: Arc::new(linker),
            stop_ticker,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn sandbox(
        &self,
        plugin_label: &str,
        site: CallSite,
        limits: &Limits,
        grants: &Grants,
        databases: Databases,
    ) -> Result<Sandbox, PluginError> {
        let state = PluginState::new(site, limits, grants, databases)
            .map_err(|e| PluginError::contract(plugin_label, "instantiate", format!("{e:#}")))?;
        Ok(Sandbox::new(
            &self.engine,
            state,
            limits.clone(),
            plugin_label.into(),
        ))
    }

    async fn describe(
        &self,
        pre: &PluginPre,
        file_name: &str,
    ) -> Result<types::PluginInfo, PluginError> {
        let site = CallSite {
            plugin: file_name.to_owned(),
            ..CallSite::default()
        };
        let limits = Limits::default();
        let grants = Grants::default();
        let databases = Databases::default();
        match pre {
            PluginPre::Extractor(p) => {
                let mut sb = self.sandbox(file_name, site, &limits, &grants, databases)?;
                let b = p
                    .instantiate_async(&mut sb.store)
                    .await
                    .map_err(|e| PluginError::from_host(file_name, "instantiate", e))?;
                ExtractorInstance::new(sb, b).describe().await
            }
            PluginPre::Transformer(p) => {
                let mut sb = self.sandbox(file_name, site, &limits, &grants, databases)?;
                let b = p
                    .instantiate_async(&mut sb.store)
                    .await
                    .map_err(|e| PluginError::from_host(file_name, "instantiate", e))?;
                TransformerInstance::new(sb, b).describe().await
            }
            PluginPre::Loader(p) => {
                let mut sb = self.sandbox(file_name, site, &limits, &grants, databases)?;
                let b = p
                    .instantiate_async(&mut sb.store)
                    .await
                    .map_err(|e| PluginError::from_host(file_name, "instantiate", e))?;
                LoaderInstance::new(sb, b).describe().await
            }
            PluginPre::HistoryStore(p) => {
                let mut sb = self.sandbox(file_name, site, &limits, &grants, databases)?;
                let b = p
                    .instantiate_async(&mut sb.store)
                    .await
                    .map_err(|e| PluginError::from_host(file_name, "instantiate", e))?;
                HistoryInstance::new(sb, b).describe().await
            }
        }
    }
}

/// How a new instance is set up: who it runs for, its limits and its grants.
pub struct InstanceOptions<'a> {
    pub site: CallSite,
    pub limits: &'a Limits,
    pub grants: &'a Grants,
    pub databases: Databases,
}

macro_rules! instantiate_fn {
    ($(#[$doc:meta])* $fn_name:ident, $variant:ident, $instance:ident) => {
        $(#[$doc])*
        pub async fn $fn_name(&self, plugin: &Plugin, opts: InstanceOptions<'_>) -> Result<$instance, PluginError> {
            let label = plugin.label();
            let PluginPre::$variant(pre) = &plugin.pre else {
                return Err(PluginError {
                    plugin: label,
                    call: "instantiate",
                    kind: FaultKind::InvalidConfig,
                    message: format!("is a {}, not a {}", plugin.kind, stringify!($variant).to_lowercase()),
                });
            };
            let mut sandbox = self.sandbox(&label, opts.site, opts.limits, opts.grants, opts.databases)?;
            let bindings = pre
                .instantiate_async(&mut sandbox.store)
                .await
                .map_err(|e| PluginError::from_host(&label, "instantiate", e))?;
            Ok($instance::new(sandbox, bindings))
        }
    };
}

impl Runtime {
    instantiate_fn!(
        /// A fresh extractor instance.
        extractor, Extractor, ExtractorInstance
    );
    instantiate_fn!(
        /// A fresh transformer instance.
        transformer, Transformer, TransformerInstance
    );
    instantiate_fn!(
        /// A fresh loader instance.
        loader, Loader, LoaderInstance
    );
    instantiate_fn!(
        /// A fresh history-store instance.
        history_store, HistoryStore, HistoryInstance
    );
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Advance the engine's epoch every [`EPOCH_TICK`]; guests check it to yield and to enforce
/// their CPU deadline.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("weir-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("failed to spawn the epoch ticker thread");
}
