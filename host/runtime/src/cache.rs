//! On-disk cache of compiled components, keyed by content hash and engine, so a restart does
//! not recompile (Cranelift takes ~0.1 s for a Rust plugin and ~10 s for a Python one; loading a
//! cached artifact takes milliseconds).
//!
//! Loading a compiled artifact is `unsafe`: wasmtime runs its machine code as it is. So the
//! cache trusts only what it wrote itself: the directory is owner-only (0700), each artifact is
//! owner-only (0600) with a sidecar `.sha256` of its bytes written next to it, and an artifact
//! is deserialized from the very bytes whose hash matched. Anything else (a changed byte, a
//! missing or different sidecar, a file others may write) is a miss: a warning, a recompile and
//! a fresh entry, never a deserialize.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Hex SHA-256 of a plugin file's bytes: its identity in the cache, the API and the logs.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A stable fingerprint of everything that makes compiled code valid for this engine
/// (wasmtime version, target, settings).
fn engine_fingerprint(engine: &Engine) -> String {
    // DefaultHasher::new() has fixed keys, so the value is stable across runs of one build.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache.
    Hit,
    /// Compiled now (and stored when there is a cache directory).
    Compiled,
}

/// The compile cache of one engine.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    fingerprint: String,
}

impl CompileCache {
    /// A cache in `dir` (created on demand); `None` disables caching.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            fingerprint: engine_fingerprint(engine),
        }
    }

    fn path_for(&self, hash: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}-{}.cwasm", &hash[..32], self.fingerprint)))
    }

    /// Load the compiled form of `bytes` (whose hash is `hash`), compiling it on a miss.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        hash: &str,
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let Some(path) = self.path_for(hash) else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        if path.exists() {
            match read_verified(&path).and_then(|artifact| deserialize(engine, &artifact)) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring cache entry, recompiling: {e:#}")
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = store(&path, &compiled) {
            // A cache that cannot be written costs a recompile next time, nothing more.
            tracing::warn!(path = %path.display(), "failed to write compile cache: {e:#}");
        }
        Ok((deserialize(engine, &compiled)?, CacheOutcome::Compiled))
    }
}

fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

/// The artifact's bytes, if it is owner-only and matches the hash recorded beside it.
fn read_verified(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path)?;
    anyhow::ensure!(meta.file_type().is_file(), "not a regular file");
    let mode = meta.permissions().mode() & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "mode {mode:o} lets others read or write it (the cache writes 600)"
    );
    let recorded = std::fs::read_to_string(sidecar(path)).context("no recorded hash")?;
    let artifact = std::fs::read(path)?;
    anyhow::ensure!(
        content_hash(&artifact) == recorded.trim(),
        "its bytes do not match the hash recorded when it was written"
    );
    Ok(artifact)
}

#[allow(
    unsafe_code,
    reason = "loading precompiled code; see the safety comment"
)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: `artifact` is either what `Engine::precompile_component` just returned, or the
    // bytes of an owner-only cache file whose SHA-256 matched the one this host recorded when
    // it wrote them (see `read_verified`); the file name includes the engine's compatibility
    // fingerprint, and wasmtime additionally checks the artifact header against the engine.
    Ok(unsafe { Component::deserialize(engine, artifact) }?)
}

/// Write the artifact and its hash, owner-only, each through a temporary file and a rename so
/// a reader never sees half of either.
fn store(path: &Path, artifact: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // An existing directory keeps its mode; tighten it (others may not even list it).
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))
                .with_context(|| format!("failed to make {} owner-only", dir.display()))?;
        }
    }
    write_private(path, artifact)?;
    write_private(&sidecar(path), content_hash(artifact).as_bytes())?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: compiles in milliseconds.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn cached(dir: &Path) -> (CompileCache, Engine) {
        let engine = Engine::default();
        (CompileCache::new(&engine, Some(dir.join("cache"))), engine)
    }

    #[test]
    fn entries_are_owner_only_and_hit_when_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, engine) = cached(tmp.path());
        let hash = content_hash(EMPTY_COMPONENT);
        let (_, first) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(first, CacheOutcome::Compiled);
        let path = cache.path_for(&hash).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&sidecar(&path)), 0o600);
        let (_, second) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(second, CacheOutcome::Hit);
    }

    #[test]
    fn a_changed_missing_or_shared_entry_is_a_miss_and_is_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, engine) = cached(tmp.path());
        let hash = content_hash(EMPTY_COMPONENT);
        cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        let path = cache.path_for(&hash).unwrap();

        // One flipped byte: never deserialized, recompiled and stored again.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_verified(&path).is_err());
        let (_, outcome) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(outcome, CacheOutcome::Compiled);
        assert!(read_verified(&path).is_ok(), "the entry was rewritten");

        // No recorded hash.
        std::fs::remove_file(sidecar(&path)).unwrap();
        let (_, outcome) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(outcome, CacheOutcome::Compiled);

        // Writable by others.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = read_verified(&path).unwrap_err().to_string();
        assert!(err.contains("mode 666"), "{err}");
        let (_, outcome) = cache.load(&engine, EMPTY_COMPONENT, &hash).unwrap();
        assert_eq!(outcome, CacheOutcome::Compiled);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
