//! Compiled plugins cached on disk.
//!
//! Compiling a component takes tens of milliseconds in a release host (and far more in a debug
//! one); loading a precompiled artifact takes about a tenth of a millisecond. Artifacts are keyed
//! by the plugin's sha256 and the engine's compatibility hash, so a new wasmtime or a changed
//! engine setting never loads a stale artifact. Loading an artifact is `unsafe` in wasmtime
//! because the bytes are trusted machine code: only files this cache wrote are ever loaded, from a
//! directory the host owns, and one that fails to load is recompiled and replaced.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wasmtime::component::Component;

use super::engine::PluginEngine;

/// A directory of compiled artifacts.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
}

/// Where a component came from on this load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// Compiled now (and stored).
    Compiled,
    /// Loaded from a stored artifact.
    Cached,
}

impl CompileCache {
    /// A cache in `dir`, created when needed.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component for `wasm` (whose digest is `sha256`), from the cache when possible.
    pub fn component(
        &self,
        engine: &PluginEngine,
        sha256: &str,
        wasm: &[u8],
    ) -> anyhow::Result<(Component, Provenance)> {
        let path = self
            .dir
            .join(format!("{sha256}-{}.cwasm", engine.compatibility_key()));
        if path.exists() {
            // SAFETY: the file was written by `store` below from `Engine::precompile_component`
            // of this very digest and engine configuration, into a directory the host owns.
            match unsafe { Component::deserialize_file(engine.engine(), &path) } {
                Ok(component) => return Ok((component, Provenance::Cached)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "recompiling an unusable cached artifact")
                }
            }
        }
        let compiled = engine.engine().precompile_component(wasm)?;
        // Loaded from the stored file, the code is mapped and paged in as it runs, as after
        // every later start; loaded from `compiled`, all of it would stay resident in the heap.
        let component = match self.store(&path, &compiled) {
            // SAFETY: the file was written just now from this engine's `precompile_component`.
            Ok(()) => unsafe { Component::deserialize_file(engine.engine(), &path)? },
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "could not cache a compiled plugin");
                // SAFETY: the bytes were produced just now by this engine's `precompile_component`.
                unsafe { Component::deserialize(engine.engine(), &compiled)? }
            }
        };
        Ok((component, Provenance::Compiled))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        fs::write(&partial, compiled).with_context(|| format!("writing {}", partial.display()))?;
        fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }
}
