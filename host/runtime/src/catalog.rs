//! Plugin discovery: which `.wasm` files in the plugins folder are usable plugins, of which
//! kind, and why the others are not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::InstancePre;
use weir_bindings::types::PluginInfo;

use crate::Runtime;
use crate::cache::{CacheOutcome, content_hash};
use crate::contract::Contract;
use crate::exports::Exports;

/// The four kinds of plugin, one per world of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    Extractor,
    Transformer,
    Loader,
    HistoryStore,
}

impl PluginKind {
    /// All kinds, in pipeline order.
    pub const ALL: [PluginKind; 4] = [
        Self::Extractor,
        Self::Transformer,
        Self::Loader,
        Self::HistoryStore,
    ];

    /// The interface a component of this kind exports, without version.
    pub fn interface(self) -> &'static str {
        match self {
            Self::Extractor => "weir:plugin/extractor",
            Self::Transformer => "weir:plugin/transformer",
            Self::Loader => "weir:plugin/loader",
            Self::HistoryStore => "weir:plugin/history-store",
        }
    }

    /// The world a plugin of this kind targets.
    pub fn world(self) -> &'static str {
        match self {
            Self::Extractor => "extractor-plugin",
            Self::Transformer => "transformer-plugin",
            Self::Loader => "loader-plugin",
            Self::HistoryStore => "history-store-plugin",
        }
    }

    /// Human name (`history store`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Extractor => "extractor",
            Self::Transformer => "transformer",
            Self::Loader => "loader",
            Self::HistoryStore => "history store",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A pre-instantiated component, ready for cheap per-worker instances, and where its plugin
/// functions are.
#[derive(Clone)]
pub(crate) struct PluginPre {
    pub kind: PluginKind,
    pub pre: InstancePre<crate::PluginState>,
    pub exports: Arc<Exports>,
}

/// A loaded, validated plugin.
#[derive(Clone)]
pub struct Plugin {
    /// What `describe()` returned.
    pub info: PluginInfo,
    pub kind: PluginKind,
    /// The contract version it was built against.
    pub contract: Contract,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// SHA-256 of the file.
    pub hash: String,
    /// The component's imports (`wasi:filesystem/types@0.2.x`, `weir:plugin/sql@0.1.0`, …).
    pub imports: Vec<String>,
    /// Whether the compiled code came from the cache.
    pub cache: CacheOutcome,
    /// How long loading took (read, compile or cache hit, pre-instantiate, describe).
    pub load_time: Duration,
    /// When it was loaded (at startup, or when its file changed while serving).
    pub loaded_at: SystemTime,
    pub(crate) pre: PluginPre,
}

impl Plugin {
    /// `"csv-extract" 0.1.0`, the way messages name a plugin.
    pub fn label(&self) -> String {
        format!("\"{}\" {}", self.info.name, self.info.version)
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("kind", &self.kind)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// A file in the plugins folder that could not be loaded.
#[derive(Debug, Clone)]
pub struct RejectedPlugin {
    pub file: PathBuf,
    pub reason: String,
}

/// Every plugin found in a folder.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pub plugins: BTreeMap<String, Arc<Plugin>>,
    pub rejected: Vec<RejectedPlugin>,
}

impl Catalog {
    /// The plugin called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }
}

/// Why a file is not a usable plugin, decided from its first bytes before compiling.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    match bytes {
        [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, ..] => Ok(()),
        [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ..] => Err(
            "is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)".into(),
        ),
        [0x00, 0x61, 0x73, 0x6d, ..] => Err("is WebAssembly of an unknown version".into()),
        _ => Err(format!(
            "is not WebAssembly (it starts with {:02x?}, not the `\\0asm` magic bytes)",
            &bytes[..bytes.len().min(4)]
        )),
    }
}

/// Which plugin kind a component's exports make it, and of which contract version.
fn kind_of(exports: &[String]) -> Result<(PluginKind, Contract), String> {
    let mut found = Vec::new();
    for export in exports {
        let (name, version) = export.split_once('@').unwrap_or((export.as_str(), ""));
        if let Some(kind) = PluginKind::ALL.iter().find(|k| k.interface() == name) {
            let Some(contract) = Contract::parse(version) else {
                return Err(format!(
                    "exports {export}, but this weir supports weir:plugin@{}; rebuild the plugin against one of the versions in wit/ of this weir",
                    Contract::list()
                ));
            };
            found.push((*kind, contract));
        }
    }
    match found.as_slice() {
        [found] => Ok(*found),
        [] => Err(format!(
            "exports no weir plugin interface (expected one of {} at version {}); its exports are: {}",
            PluginKind::ALL
                .iter()
                .map(|k| k.interface())
                .collect::<Vec<_>>()
                .join(", "),
            Contract::list(),
            if exports.is_empty() {
                "none".to_owned()
            } else {
                exports.join(", ")
            }
        )),
        _ => {
            Err("exports more than one weir plugin interface; a plugin has exactly one kind".into())
        }
    }
}

/// Only extractors and loaders may use the network (docs/design.md, "Sandbox and grants"): a
/// transformer or history store importing `wasi:http` is refused, whatever the pipeline grants.
fn check_network(kind: PluginKind, imports: &[String]) -> Result<(), String> {
    if matches!(kind, PluginKind::Extractor | PluginKind::Loader) {
        return Ok(());
    }
    let outgoing = imports
        .iter()
        .find(|i| i.starts_with("wasi:http/outgoing-handler"));
    match outgoing.or_else(|| imports.iter().find(|i| i.starts_with("wasi:http/"))) {
        Some(import) => Err(format!(
            "is a {kind} and imports {import}; only extractors and loaders may use the network (grants.http)"
        )),
        None => Ok(()),
    }
}

impl Runtime {
    /// Load every `*.wasm` in `dir`. Files that fail are listed in `rejected` with the reason;
    /// the rest still load. Fails only if the folder itself cannot be read.
    pub async fn load_dir(&self, dir: &Path) -> anyhow::Result<Catalog> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot read plugins folder {}: {e}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect();
        files.sort();
        let mut catalog = Catalog::default();
        for file in files {
            match self.load_file(&file).await {
                Ok(plugin) => {
                    if let Some(existing) = catalog.plugins.get(&plugin.info.name) {
                        catalog.rejected.push(RejectedPlugin {
                            reason: format!(
                                "plugin name \"{}\" is already provided by {}",
                                plugin.info.name,
                                existing.file.display()
                            ),
                            file,
                        });
                        continue;
                    }
                    tracing::debug!(
                        plugin = %plugin.info.name,
                        version = %plugin.info.version,
                        kind = %plugin.kind,
                        file = %file.display(),
                        cached = plugin.cache == CacheOutcome::Hit,
                        ms = plugin.load_time.as_secs_f64() * 1e3,
                        "plugin loaded"
                    );
                    catalog
                        .plugins
                        .insert(plugin.info.name.clone(), Arc::new(plugin));
                }
                Err(reason) => {
                    tracing::warn!(file = %file.display(), "plugin rejected: {reason}");
                    catalog.rejected.push(RejectedPlugin { file, reason });
                }
            }
        }
        Ok(catalog)
    }

    /// Load and validate one file: a component, exporting exactly one plugin interface of this
    /// contract version, importing nothing the host lacks, answering `describe()`.
    pub async fn load_file(&self, file: &Path) -> Result<Plugin, String> {
        let started = Instant::now();
        let bytes = std::fs::read(file).map_err(|e| format!("cannot read file: {e}"))?;
        check_header(&bytes)?;
        let hash = content_hash(&bytes);
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let hash_for_compile = hash.clone();
        // Compiling is CPU-bound for up to seconds; keep it off the async workers.
        let (component, cache_outcome) =
            tokio::task::spawn_blocking(move || cache.load(&engine, &bytes, &hash_for_compile))
                .await
                .map_err(|e| format!("compiler task failed: {e}"))?
                .map_err(|e| format!("is not a valid component: {e:#}"))?;

        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        let (kind, contract) = kind_of(&exports)?;
        check_network(kind, &imports)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("needs something the host does not provide: {e:#}"))?;
        let exports = Exports::find(&component, kind, contract)?;
        let pre = PluginPre {
            kind,
            pre: instance_pre,
            exports: Arc::new(exports),
        };
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let info = self.describe(&pre, &file_name).await?;
        if info.name.is_empty() {
            return Err("describe() returned an empty plugin name".into());
        }
        Ok(Plugin {
            info,
            kind,
            contract,
            file: file.to_owned(),
            hash,
            imports,
            cache: cache_outcome,
            load_time: started.elapsed(),
            loaded_at: SystemTime::now(),
            pre,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_extractors_and_loaders_may_import_wasi_http() {
        let imports = vec![
            "wasi:io/streams@0.2.4".to_owned(),
            "wasi:http/outgoing-handler@0.2.4".to_owned(),
        ];
        assert!(check_network(PluginKind::Extractor, &imports).is_ok());
        assert!(check_network(PluginKind::Loader, &imports).is_ok());
        assert_eq!(
            check_network(PluginKind::Transformer, &imports).unwrap_err(),
            "is a transformer and imports wasi:http/outgoing-handler@0.2.4; only extractors and loaders may use the network (grants.http)"
        );
        assert!(check_network(PluginKind::HistoryStore, &imports).is_err());
        assert!(check_network(PluginKind::Transformer, &imports[..1]).is_ok());
    }
}
