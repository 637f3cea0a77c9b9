//! Compiled plugins cached on disk.
//!
//! Compiling a component takes tens of milliseconds in a release host (and far more in a debug
//! one); loading a precompiled artifact takes about a tenth of a millisecond. Artifacts are keyed
//! by the plugin's sha256 and the engine's compatibility hash, so a new wasmtime or a changed
//! engine setting never loads a stale artifact. Loading an artifact is `unsafe` in wasmtime
//! because the bytes are trusted machine code: only files this cache wrote (itself, or through a
//! child process of the host's own binary) are ever loaded, from a directory the host owns, and
//! one that fails to load is recompiled and replaced.
//!
//! The service compiles a missing artifact in a child process ([`Compiler::Subprocess`]): run in
//! the service, cranelift leaves its code pages resident and the compiling thread's heap behind
//! for the life of the process, so the first start after an install idled some 14 MiB above
//! every later start. The child takes all of that with it when it exits, and the service maps
//! the stored artifact exactly as a restart does. Should the child fail, the plugin is compiled
//! here after all: a load never fails for want of a child.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wasmtime::component::Component;

use super::compiler::{self, Compiler};
use super::engine::PluginEngine;

/// A directory of compiled artifacts.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
    compiler: Compiler,
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
    /// A cache in `dir`, created when needed, that compiles in this process.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            compiler: Compiler::InProcess,
        }
    }

    /// The same cache, compiling missing artifacts with `compiler`.
    pub fn with_compiler(self, compiler: Compiler) -> Self {
        Self { compiler, ..self }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the artifact of the component with digest `sha256` is stored for `engine`.
    pub fn artifact(&self, engine: &PluginEngine, sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", engine.compatibility_key()))
    }

    /// The component for `wasm` (whose digest is `sha256`), from the cache when possible.
    pub fn component(
        &self,
        engine: &PluginEngine,
        sha256: &str,
        wasm: &[u8],
    ) -> anyhow::Result<(Component, Provenance)> {
        let path = self.artifact(engine, sha256);
        if path.exists() {
            match load(engine, &path) {
                Ok(component) => return Ok((component, Provenance::Cached)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "recompiling an unusable cached artifact")
                }
            }
        }
        if let Compiler::Subprocess(executable) = &self.compiler {
            let compiled = compiler::in_child(executable, engine, wasm, &path).and_then(|()| {
                load(engine, &path).context("loading the artifact the compile child stored")
            });
            match compiled {
                Ok(component) => {
                    tracing::info!(path = %path.display(), "compiled a plugin in a child process");
                    return Ok((component, Provenance::Compiled));
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "could not compile a plugin in a child process; compiling it in this one")
                }
            }
        }
        let compiled = engine.engine().precompile_component(wasm)?;
        // Loaded from the stored file, the code is mapped and paged in as it runs, as after
        // every later start; loaded from `compiled`, all of it would stay resident in the heap.
        let component = match store(&path, &compiled) {
            Ok(()) => load(engine, &path)?,
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"), "could not cache a compiled plugin");
                // SAFETY: the bytes were produced just now by this engine's `precompile_component`.
                unsafe { Component::deserialize(engine.engine(), &compiled)? }
            }
        };
        Ok((component, Provenance::Compiled))
    }
}

/// Maps the artifact at `path`, a path of this cache's directory.
fn load(engine: &PluginEngine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: only this cache writes artifacts into its directory, which the host owns: itself
    // ([`store`]), or the compile child of the host's own binary (all `Compiler::Subprocess`
    // may name), which refuses unless its engine's compatibility key is this engine's. Either
    // way the file is `Engine::precompile_component` of the digest and engine configuration
    // its name carries.
    Ok(unsafe { Component::deserialize_file(engine.engine(), path)? })
}

/// Stores `compiled` at `path` in one step: written aside, then renamed over, so a reader (or a
/// start after a crash) never finds half an artifact.
pub(super) fn store(path: &Path, compiled: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let partial = partial(path, std::process::id());
    fs::write(&partial, compiled).with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Where process `pid` writes the artifact for `path` before renaming it into place.
pub(super) fn partial(path: &Path, pid: u32) -> PathBuf {
    path.with_extension(format!("partial-{pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble of a component binary and nothing else.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    const DIGEST: &str = "e3b0c442";

    fn engine() -> PluginEngine {
        PluginEngine::build(super::super::engine::Allocator::OnDemand).expect("an engine")
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("the cache directory")
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_child_that_cannot_start_falls_back_to_compiling_in_process() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let missing = dir.path().join("no-such-binary");
        let cache = CompileCache::new(dir.path().join("compiled"))
            .with_compiler(Compiler::Subprocess(missing));
        let (_, provenance) = cache
            .component(&engine, DIGEST, EMPTY_COMPONENT)
            .expect("compiled in process after all");
        assert_eq!(provenance, Provenance::Compiled);
        let artifact = cache.artifact(&engine, DIGEST);
        assert_eq!(
            files(cache.dir()),
            [artifact.file_name().unwrap().to_string_lossy()],
            "the artifact is stored, and nothing else"
        );
        let (_, provenance) = cache.component(&engine, DIGEST, EMPTY_COMPONENT).unwrap();
        assert_eq!(
            provenance,
            Provenance::Cached,
            "the next load maps the artifact"
        );
    }

    #[test]
    fn the_compile_child_stores_an_artifact_the_cache_loads() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::new(dir.path());
        let artifact = cache.artifact(&engine, DIGEST);
        compiler::compile_to_artifact(
            EMPTY_COMPONENT,
            engine.allocator(),
            &engine.compatibility_key(),
            &artifact,
        )
        .expect("compiled");
        assert!(artifact.is_file());
        let (_, provenance) = cache.component(&engine, DIGEST, EMPTY_COMPONENT).unwrap();
        assert_eq!(provenance, Provenance::Cached);
    }

    #[test]
    fn the_compile_child_refuses_an_engine_unlike_the_services() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let artifact = dir.path().join("artifact.cwasm");
        let error = compiler::compile_to_artifact(
            EMPTY_COMPONENT,
            engine.allocator(),
            "0123456789abcdef",
            &artifact,
        )
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("0123456789abcdef") && message.contains(&engine.compatibility_key()),
            "names both keys: {message}"
        );
        assert!(files(dir.path()).is_empty(), "nothing is stored");
    }
}
