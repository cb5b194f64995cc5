//! Plugins while serving: the plugins folder is watched; a changed file is validated and
//! compiled, and the catalog with every pipeline resolved against it is swapped whole, so new
//! runs use the new version while runs in progress finish on theirs.

use std::path::Path;
use std::sync::Arc;

use weir_runtime::{Catalog, FileEvent, PluginChange};

use super::{Plugins, Service, loaded_event};
use crate::events::EventKind;

impl Service {
    /// Watch the plugins folder: a new or changed `.wasm` file,
    /// once written whole, is validated and compiled and becomes the version new runs use; one
    /// that fails never replaces a working version; a deleted one is taken out of service.
    /// Each change is an event. Ends at shutdown.
    pub fn watch_plugins(self: &Arc<Self>) -> anyhow::Result<()> {
        let dir = self.config.engine.plugins_dir.clone();
        let mut files = weir_runtime::watch_dir(&dir, weir_runtime::SETTLE).map_err(|e| {
            anyhow::anyhow!("cannot watch the plugins folder {}: {e}", dir.display())
        })?;
        let service = self.clone();
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = files.recv() => event,
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                };
                match event {
                    Some(FileEvent::Changed(path)) => service.plugin_file_changed(&path).await,
                    Some(FileEvent::Removed(path)) => service.plugin_file_removed(&path),
                    None => return,
                }
            }
        });
        Ok(())
    }

    /// Load `file` and fold it into the plugins in service.
    pub async fn plugin_file_changed(&self, file: &Path) {
        let outcome = self.runtime.load_file(file).await;
        // Only the watcher task changes the snapshot, so nothing changes it between this read
        // and the swap below.
        let mut catalog = self.plugins().catalog.clone();
        let change = catalog.apply_load(file, outcome);
        self.swap_catalog(catalog, change);
    }

    /// Take the plugin loaded from `file` out of service (runs using it finish with it).
    pub fn plugin_file_removed(&self, file: &Path) {
        let mut catalog = self.plugins().catalog.clone();
        match catalog.apply_removal(file) {
            Some(change) => self.swap_catalog(catalog, change),
            // A file that never loaded: only its rejection is forgotten.
            None => {
                self.swap_catalog_quietly(catalog);
            }
        }
    }

    fn swap_catalog_quietly(&self, catalog: Catalog) -> (Arc<Plugins>, Arc<Plugins>) {
        let new = Arc::new(Plugins::resolve(&self.config, catalog));
        let mut current = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *current, new.clone());
        (old, new)
    }

    /// Put `catalog` in service, then say what changed: the plugin event first, then each
    /// pipeline that became unable (or able again) to run.
    fn swap_catalog(&self, catalog: Catalog, change: PluginChange) {
        let path = |p: &Path| p.display().to_string();
        let kind = match change {
            PluginChange::Loaded(plugin) => loaded_event(&plugin),
            PluginChange::Replaced { old, new } => EventKind::PluginReplaced {
                plugin: new.info.name.clone(),
                kind: new.kind.to_string(),
                file: path(&new.file),
                old_version: old.info.version.clone(),
                new_version: new.info.version.clone(),
                old_hash: old.hash.clone(),
                new_hash: new.hash.clone(),
            },
            PluginChange::Rejected { file, reason, kept } => EventKind::PluginRejected {
                file: path(&file),
                reason,
                kept_version: kept.map(|p| p.info.version.clone()),
            },
            PluginChange::Removed(plugin) => EventKind::PluginRemoved {
                used_by: self.pipelines_using(&plugin.info.name),
                plugin: plugin.info.name.clone(),
                version: plugin.info.version.clone(),
                kind: plugin.kind.to_string(),
                file: path(&plugin.file),
            },
            // The same content again: nothing to swap, nothing to say.
            PluginChange::Unchanged(_) => return,
        };
        let (old, new) = self.swap_catalog_quietly(catalog);
        self.events.publish(None, None, None, kind);
        for (name, now) in &new.resolved {
            let before = old.resolved(name);
            match (before.map(Result::is_ok), now) {
                (Some(true), Err(error)) => self.events.publish(
                    Some(name),
                    None,
                    None,
                    EventKind::PipelineInvalid {
                        error: error.clone(),
                    },
                ),
                (Some(false), Ok(_)) => {
                    self.events
                        .publish(Some(name), None, None, EventKind::PipelineValid {})
                }
                _ => {}
            }
        }
    }

    /// The pipelines whose configuration names the plugin.
    pub fn pipelines_using(&self, plugin: &str) -> Vec<String> {
        self.config.pipelines_using(plugin)
    }
}
