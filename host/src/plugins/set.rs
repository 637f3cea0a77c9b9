//! The active plugin set and its atomic replacement.
//!
//! Reloading builds the whole new set aside (files read, digests checked, components compiled,
//! imports resolved, each plugin described) while the old set keeps serving. Only a set that loads
//! completely is swapped in, in one atomic step; a set that fails is rejected and the old one stays.
//! A call holds an `Arc` to the plugin it started on, so calls in flight finish on the old set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::Channel;
use super::cache::CompileCache;
use super::compiler::Compiler;
use super::engine::PluginEngine;
use super::plugin::Plugin;
use super::sandbox::{CallState, HostServices};
use super::spec::PluginSpec;

/// The plugins an environment names, and where their files are found.
#[derive(Clone, Debug)]
pub struct PluginSetSpec {
    /// The directory relative plugin files are found in (the configuration file's).
    pub base_dir: PathBuf,
    /// The plugins by name (a channel: `dpo`, `dpv`, ...).
    pub plugins: BTreeMap<String, PluginSpec>,
}

/// A loaded set.
pub struct PluginSet {
    generation: u64,
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl PluginSet {
    /// Which load this is: 1 for the first, counting up with every accepted reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The plugin of that name.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }
}

/// Owns the engine, the linker and the active set.
pub struct PluginHost {
    engine: PluginEngine,
    linker: Linker<CallState>,
    cache: CompileCache,
    services: Arc<HostServices>,
    current: ArcSwap<PluginSet>,
    generations: AtomicU64,
    reloading: tokio::sync::Mutex<()>,
}

impl PluginHost {
    /// A host with an empty set, caching compiled plugins in `cache_dir`.
    pub fn new(
        engine: PluginEngine,
        cache_dir: &Path,
        services: Arc<HostServices>,
    ) -> anyhow::Result<Self> {
        let mut linker = Linker::new(engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        Channel::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)
            .context("linking the host imports")?;
        Ok(Self {
            engine,
            linker,
            cache: CompileCache::new(cache_dir),
            services,
            current: ArcSwap::from_pointee(PluginSet {
                generation: 0,
                plugins: BTreeMap::new(),
            }),
            generations: AtomicU64::new(0),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The same host, compiling plugins that have no cached artifact with `compiler`.
    pub fn with_compiler(mut self, compiler: Compiler) -> Self {
        self.cache = self.cache.with_compiler(compiler);
        self
    }

    /// The engine.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// The shared services plugins use.
    pub fn services(&self) -> &Arc<HostServices> {
        &self.services
    }

    /// The active set.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    /// The active plugin of that name.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.current.load().get(name).cloned()
    }

    /// Loads `spec` aside and makes it the active set; on any error the active set is unchanged.
    pub async fn load(&self, spec: &PluginSetSpec) -> anyhow::Result<Arc<PluginSet>> {
        let _one_at_a_time = self.reloading.lock().await;
        let mut plugins = BTreeMap::new();
        for (name, plugin_spec) in &spec.plugins {
            let plugin = Plugin::load(
                name,
                plugin_spec,
                &spec.base_dir,
                &self.engine,
                &self.linker,
                &self.cache,
                self.services.clone(),
            )
            .await?;
            plugins.insert(name.clone(), Arc::new(plugin));
        }
        release_freed_memory();
        let set = Arc::new(PluginSet {
            generation: self.generations.fetch_add(1, Ordering::SeqCst) + 1,
            plugins,
        });
        self.current.store(set.clone());
        tracing::info!(
            generation = set.generation,
            plugins = %set.plugins.keys().cloned().collect::<Vec<_>>().join(", "),
            "plugin set active"
        );
        Ok(set)
    }
}

/// Hands the heap pages freed since the last call back to the system.
///
/// Compiling a plugin in this process allocates tens of megabytes that are freed as soon as it is
/// done, and glibc keeps freed pages for reuse instead of returning them: without this, a start
/// that compiles six plugins (the first after an install or upgrade) idles about 28 MiB above
/// every later start. The service compiles in a child process, but falls back to compiling here.
/// Loading a set is rare, so the trim's few milliseconds do not matter. The service binary
/// allocates with mimalloc, which returns freed pages by itself; this trim then releases only
/// what the C libraries (OpenSSL, SQLite) freed, and matters to hosts embedded with the C
/// allocator, as in the tests.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free pages of the allocator's own heaps to the system;
    // it touches no memory the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}
