//! The weir plugin runtime: one wasmtime engine, plugin discovery with an on-disk compile cache,
//! deny-by-default sandboxes with limits, and the host side of the plugin imports.
//!
//! The engine crate asks this crate for typed instances ([`ExtractorInstance`], …) and never
//! touches wasmtime stores itself.

mod cache;
mod caps;
mod catalog;
mod contract;
mod database;
mod error;
mod exports;
mod grants;
mod instances;
mod limiter;
mod limits;
mod pg_call;
mod sandbox;
mod sql_call;
pub mod sql_guard;
mod state;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

pub use cache::{CacheOutcome, content_hash};
pub use caps::truncate_text;
pub use catalog::{Catalog, Plugin, PluginKind, RejectedPlugin};
pub use contract::Contract;
pub use database::{DatabaseMode, open_snapshot};
pub use error::{FaultKind, PluginError};
pub use grants::{
    DatabaseOptions, Databases, DirGrant, DuplicateDatabase, Grants, SharedConnection,
    duplicate_databases, lock, open_database, open_database_with,
};
pub use instances::{
    CheckpointEntry, ExtractorInstance, HistoryInstance, LoadTarget, LoaderInstance, Migration,
    OutputColumn, PlanColumn, Projection, RowReject, SinkReject, SqlPlan, TransformOutput,
    TransformedRows, TransformerInstance, WriteMode, WritePlan,
};
pub use limits::{EPOCH_TICK, Limits, MAX_SQL_CONNECTIONS};
pub use sql_call::{SqlValue, from_sql};
pub use state::{CallSite, LogSink, PluginState};
pub use watch::{FileEvent, PluginChange, SETTLE, watch_dir};
pub use weir_bindings::types;
pub use weir_http::{
    ClientAuth, DEFAULT_MAX_BODY_BYTES, HttpAuth, HttpCountersSnapshot, HttpGrant, HttpGrantSpec,
    HttpMeter, HttpTimeouts, InstanceHttpStats, OAuth2, Secret,
};
pub use weir_postgres::{Password, PgGrant, PgSession, PgSpec, SslMode};

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
        // weir's own imports, at every contract version this host runs.
        contract::add_to_linker(&mut linker)?;
        // wasi:http for extractors and loaders, through weir's own hook (weir-http): every
        // request is checked against the pipeline's grants.http. Transformers and history
        // stores that import it are refused at load (catalog).
        weir_http::wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;

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

    /// Instantiate `pre` in a fresh sandbox.
    async fn live(
        &self,
        pre: &PluginPre,
        label: &str,
        opts: InstanceOptions<'_>,
    ) -> Result<instances::Live, PluginError> {
        let mut sandbox =
            self.sandbox(label, opts.site, opts.limits, opts.grants, opts.databases)?;
        let instance = pre
            .pre
            .instantiate_async(&mut sandbox.store)
            .await
            .map_err(|e| PluginError::from_host(label, "instantiate", e))?;
        Ok(instances::Live {
            sandbox,
            instance,
            exports: pre.exports.clone(),
        })
    }

    /// Check a freshly loaded plugin's export shapes and ask it `describe()`, in a sandbox with
    /// default limits and no grants.
    async fn describe(
        &self,
        pre: &PluginPre,
        file_name: &str,
    ) -> Result<types::PluginInfo, String> {
        let limits = Limits::default();
        let opts = InstanceOptions {
            site: CallSite {
                plugin: file_name.to_owned(),
                ..CallSite::default()
            },
            limits: &limits,
            grants: &Grants::default(),
            databases: Databases::default(),
        };
        let mut live = self
            .live(pre, file_name, opts)
            .await
            .map_err(|e| format!("describe() failed: {e}"))?;
        live.check_shapes(pre.kind)?;
        live.describe()
            .await
            .map_err(|e| format!("describe() failed: {e}"))
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
    ($(#[$doc:meta])* $fn_name:ident, $kind:ident, $instance:ident) => {
        $(#[$doc])*
        pub async fn $fn_name(&self, plugin: &Plugin, opts: InstanceOptions<'_>) -> Result<$instance, PluginError> {
            let label = plugin.label();
            if plugin.pre.kind != PluginKind::$kind {
                return Err(PluginError {
                    plugin: label,
                    call: "instantiate",
                    kind: FaultKind::InvalidConfig,
                    message: format!("is a {}, not a {}", plugin.kind, PluginKind::$kind),
                    retry_after: None,
                });
            }
            Ok($instance::new(self.live(&plugin.pre, &label, opts).await?))
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
