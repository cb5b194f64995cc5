//! Drop-in plugins: watch the plugins folder, wait until a changed `.wasm` file is written
//! whole, and fold the result into the catalog so that new runs use the new version while
//! running ones keep the instance they started with (they hold an `Arc<Plugin>`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::catalog::{Catalog, Plugin, RejectedPlugin};

/// What a file change did to the catalog.
#[derive(Debug, Clone)]
pub enum PluginChange {
    /// A plugin name that was not there before.
    Loaded(Arc<Plugin>),
    /// A new version of a plugin, from the same file.
    Replaced { old: Arc<Plugin>, new: Arc<Plugin> },
    /// The file was written again with the same content (a `touch`, a re-copy): nothing to do.
    Unchanged(Arc<Plugin>),
    /// The file is not usable; `kept` is the version that stays in service, if any.
    Rejected {
        file: PathBuf,
        reason: String,
        kept: Option<Arc<Plugin>>,
    },
    /// The file is gone; runs already using the plugin finish with it.
    Removed(Arc<Plugin>),
}

impl Catalog {
    /// The plugin loaded from `file`, if any.
    pub fn by_file(&self, file: &Path) -> Option<&Arc<Plugin>> {
        self.plugins.values().find(|p| p.file == file)
    }

    /// Fold the outcome of (re)loading `file` into the catalog. A file that fails never
    /// replaces a working version.
    pub fn apply_load(&mut self, file: &Path, outcome: Result<Plugin, String>) -> PluginChange {
        self.rejected.retain(|r| r.file != file);
        let previous = self.by_file(file).cloned();
        let reject = |catalog: &mut Catalog, reason: String| {
            catalog.rejected.push(RejectedPlugin {
                file: file.to_owned(),
                reason: reason.clone(),
            });
            PluginChange::Rejected {
                file: file.to_owned(),
                reason,
                kept: previous.clone(),
            }
        };
        let plugin = match outcome {
            Ok(plugin) => Arc::new(plugin),
            Err(reason) => return reject(self, reason),
        };
        if let Some(old) = &previous
            && old.hash == plugin.hash
        {
            return PluginChange::Unchanged(old.clone());
        }
        if let Some(other) = self.plugins.get(&plugin.info.name)
            && other.file != file
        {
            let reason = format!(
                "plugin name \"{}\" is already provided by {}; replace that file instead",
                plugin.info.name,
                other.file.display()
            );
            return reject(self, reason);
        }
        if let Some(old) = &previous
            && old.info.name != plugin.info.name
        {
            // The file now holds a differently named plugin: the old name is gone.
            self.plugins.remove(&old.info.name);
        }
        self.plugins
            .insert(plugin.info.name.clone(), plugin.clone());
        match previous {
            Some(old) => PluginChange::Replaced { old, new: plugin },
            None => PluginChange::Loaded(plugin),
        }
    }

    /// Forget the plugin loaded from `file` (deleted or renamed away).
    pub fn apply_removal(&mut self, file: &Path) -> Option<PluginChange> {
        self.rejected.retain(|r| r.file != file);
        let plugin = self.by_file(file).cloned()?;
        self.plugins.remove(&plugin.info.name);
        Some(PluginChange::Removed(plugin))
    }
}

/// How long a file must stay unchanged before it is loaded: a copy written in chunks is loaded
/// once, whole, not at every chunk.
pub const SETTLE: Duration = Duration::from_millis(500);

/// A file in the plugins folder that changed and has settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEvent {
    /// Created or modified; its content has not changed for [`SETTLE`].
    Changed(PathBuf),
    /// Gone.
    Removed(PathBuf),
}

/// Whether a notification can mean the file's content or existence changed. Opening and
/// reading a file are notified too (inotify's `IN_OPEN`, `IN_CLOSE_NOWRITE`), and loading a
/// plugin reads it: counting those would reload every plugin forever.
fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::EventKind::{Access, Any, Create, Modify, Other, Remove};
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    match kind {
        Access(AccessKind::Close(AccessMode::Write)) => true,
        Access(_) => false,
        Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        Create(_) | Modify(_) | Remove(_) | Any | Other => true,
    }
}

/// Watch `dir` for `.wasm` files; settled changes arrive on the returned channel. The watcher
/// lives as long as the receiver.
///
/// Paths are reported as `dir` joined with the file name, the same form [`Runtime::load_dir`]
/// (crate::Runtime::load_dir) gives its plugins, so a path from here finds its plugin in the
/// catalog even when `dir` is relative or not canonical (the OS reports absolute paths).
pub fn watch_dir(dir: &Path, settle: Duration) -> anyhow::Result<mpsc::Receiver<FileEvent>> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<PathBuf>();
    let base = dir.to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !changes_content(&event.kind) {
            return;
        }
        for path in event.paths {
            if path.extension().is_some_and(|x| x == "wasm")
                && let Some(name) = path.file_name()
            {
                let _ = raw_tx.send(base.join(name));
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;

    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let _watcher = watcher; // dropped (and the OS watch removed) when this task ends
        // path → (last time it changed, the size and mtime seen then)
        let mut pending: HashMap<PathBuf, (Instant, Option<(u64, std::time::SystemTime)>)> =
            HashMap::new();
        let mut tick = tokio::time::interval(settle / 4);
        loop {
            tokio::select! {
                path = raw_rx.recv() => match path {
                    Some(path) => {
                        let stamp = stamp(&path);
                        pending.insert(path, (Instant::now(), stamp));
                    }
                    None => return,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    let mut ready = Vec::new();
                    for (path, (since, seen)) in pending.iter_mut() {
                        let current = stamp(path);
                        if current != *seen {
                            // Still being written: restart the quiet period.
                            *since = now;
                            *seen = current;
                        } else if now.duration_since(*since) >= settle {
                            ready.push(path.clone());
                        }
                    }
                    for path in ready {
                        let (_, seen) = pending.remove(&path).expect("present");
                        let event = if seen.is_some() { FileEvent::Changed(path) } else { FileEvent::Removed(path) };
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(rx)
}

/// Size and modification time, or `None` if the file is gone.
fn stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn a_file_written_in_chunks_is_reported_once_after_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let settle = Duration::from_millis(300);
        let mut events = watch_dir(dir.path(), settle).unwrap();
        let path = dir.path().join("p.wasm");
        let mut file = std::fs::File::create(&path).unwrap();
        let written = Instant::now();
        for chunk in 0..4 {
            file.write_all(&[chunk; 4096]).unwrap();
            file.flush().unwrap();
            // Pauses shorter than the settle time: still one copy in progress.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(file);
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap();
        assert_eq!(first, Some(FileEvent::Changed(path.clone())));
        assert!(
            written.elapsed() >= Duration::from_millis(400) + settle,
            "reported before it settled"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4 * 4096);
        // Nothing else happened, so nothing else is reported.
        assert!(
            tokio::time::timeout(settle * 3, events.recv())
                .await
                .is_err()
        );

        std::fs::remove_file(&path).unwrap();
        let removed = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap();
        assert_eq!(removed, Some(FileEvent::Removed(path)));
    }

    #[tokio::test]
    async fn reading_a_file_is_not_a_change_and_paths_keep_the_form_of_the_watched_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        // Not canonical, as a config relative to the current folder gives it (`./plugins`).
        let watched = dir.path().join(".").join("plugins");
        let settle = Duration::from_millis(200);
        let mut events = watch_dir(&watched, settle).unwrap();
        std::fs::write(watched.join("p.wasm"), b"one").unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap();
        let expected = watched.join("p.wasm");
        assert_eq!(first, Some(FileEvent::Changed(expected.clone())));

        // What loading a plugin does: open, read, close. No event may follow from it.
        for _ in 0..3 {
            assert_eq!(std::fs::read(&expected).unwrap(), b"one");
        }
        assert!(
            tokio::time::timeout(settle * 4, events.recv())
                .await
                .is_err(),
            "reading the file was reported as a change"
        );
        std::fs::write(&expected, b"two").unwrap();
        let second = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap();
        assert_eq!(second, Some(FileEvent::Changed(expected)));
    }
}
