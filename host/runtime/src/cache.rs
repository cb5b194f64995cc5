//! On-disk cache of compiled components, keyed by content hash and engine, so a restart does
//! not recompile (Cranelift takes ~0.1 s for a Rust plugin and ~10 s for a Python one; loading a
//! cached artifact takes about a millisecond).

use std::hash::{Hash, Hasher};
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
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {e:#}")
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        // Deserialising what we just produced keeps one code path for hits and misses.
        store_atomically(&path, &compiled)
            .with_context(|| format!("failed to write compile cache {}", path.display()))?;
        Ok((deserialize(engine, &path)?, CacheOutcome::Compiled))
    }
}

#[allow(
    unsafe_code,
    reason = "loading precompiled code; see the safety comment"
)]
fn deserialize(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: the cache directory holds only artifacts this host wrote with
    // `Engine::precompile_component`, under a name that includes the engine's compatibility
    // fingerprint; wasmtime additionally checks the artifact header against the engine.
    Ok(unsafe { Component::deserialize_file(engine, path) }?)
}

fn store_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
