//! The one wasmtime `Engine` of the process and how it is tuned.
//!
//! One engine serves every plugin and every reload, so compiled code, the instance pool and the
//! epoch ticker are shared. The pooling allocator makes instantiation a matter of microseconds, but
//! it reserves a large range of virtual memory up front, which some containers forbid; a start-up
//! probe decides, and an operator can force either choice with `IP_WASM_POOLING=on|off`.

use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::spec::MAX_MEMORY_MIB;

/// How often the epoch advances; a running guest yields to the scheduler at each tick, so this is
/// also the granularity of call timeouts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of a pooled linear memory is reset in place when its instance ends, rather than
/// handed back to the kernel, where the kernel can tell which pages a call touched
/// (`PAGEMAP_SCAN`, Linux 6.7 and later): up to that many bytes of the pages the call touched,
/// wherever in the memory they are, are zeroed or copied back from the module's image.
///
/// A call gets a fresh instance, and what it touched must be reset before the slot serves the
/// next. Handed back (`madvise`), every page the next call touches faults in again, and each
/// hand-back flushes the TLB of every core the process runs on: that cost the pipeline
/// benchmark's sender about a tenth of its CPU. Reset in place, the pages stay. A slot keeps
/// what its calls touched, up to this bound (a call of the loopback plugin touches less than
/// 256 KiB); what lies beyond it, or beyond the scan's 32 runs of pages, is handed back.
const KEEP_TOUCHED_BYTES: usize = 512 << 10;

/// Where the kernel cannot tell touched pages, only a prefix of each memory can be zeroed in
/// place, and a Rust guest's stack fills the first MiB (its top, where calls run, at 1 MiB):
/// a larger prefix would be zeroed whole after every call for little gain, and each memory slot
/// ever used would hold all of it.
const KEEP_PREFIX_BYTES: usize = 64 << 10;

/// Bytes of a pooled table zeroed in place rather than handed back, for the same reason; a
/// plugin's tables are a few KiB.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// Instances the pool holds at once, across all plugins.
const POOLED_INSTANCES: u32 = 256;

/// Which instance allocator the engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// Slots reserved up front; fast instantiation.
    Pooling,
    /// Memory mapped per instance.
    OnDemand,
}

impl Allocator {
    /// The allocator's name in `IP_WASM_POOLING` and in the compile child's `--pooling`.
    pub fn pooling_flag(self) -> &'static str {
        match self {
            Self::Pooling => "on",
            Self::OnDemand => "off",
        }
    }
}

impl FromStr for Allocator {
    type Err = String;

    fn from_str(flag: &str) -> Result<Self, Self::Err> {
        match flag {
            "on" => Ok(Self::Pooling),
            "off" => Ok(Self::OnDemand),
            other => Err(format!("expected on or off, not {other:?}")),
        }
    }
}

/// The engine and what was chosen for it.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    allocator: Allocator,
}

impl PluginEngine {
    /// Builds the engine, probing for the pooling allocator, and starts the epoch ticker.
    pub fn new() -> anyhow::Result<Self> {
        let forced = std::env::var("IP_WASM_POOLING")
            .ok()
            .and_then(|choice| choice.parse().ok());
        let plugin_engine = match forced {
            Some(Allocator::OnDemand) => Self::build(Allocator::OnDemand)?,
            Some(Allocator::Pooling) => Self::build(Allocator::Pooling)
                .context("IP_WASM_POOLING=on, but the pooling allocator cannot start")?,
            None => Self::build(Allocator::Pooling).or_else(|error| {
                tracing::warn!(%error, "the pooling allocator is not available here; instances are allocated on demand");
                Self::build(Allocator::OnDemand)
            })?,
        };
        start_epoch_ticker(&plugin_engine.engine);
        tracing::info!(allocator = ?plugin_engine.allocator, "plugin engine ready");
        Ok(plugin_engine)
    }

    /// The engine with exactly this allocator and no epoch ticker: enough to compile, which is
    /// all the compile child does ([`super::compiler`]). The allocator takes part in the
    /// configuration an artifact is keyed by, so the child is given the one the service chose.
    pub fn build(allocator: Allocator) -> anyhow::Result<Self> {
        let config = match allocator {
            Allocator::Pooling => pooling_config(),
            Allocator::OnDemand => base_config(),
        };
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        Ok(Self { engine, allocator })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The allocator in use.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// A stable text naming the engine's compilation settings, for keying compiled artifacts.
    pub fn compatibility_key(&self) -> String {
        let mut hasher = std::hash::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config
}

fn pooling_config() -> Config {
    let touched_pages_known = PoolingAllocationConfig::is_pagemap_scan_available();
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * 4)
        .total_memories(POOLED_INSTANCES * 2)
        .total_tables(POOLED_INSTANCES * 4)
        .max_memories_per_component(4)
        .max_memory_size(usize::try_from(MAX_MEMORY_MIB << 20).unwrap_or(usize::MAX))
        .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
    if touched_pages_known {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_TOUCHED_BYTES);
    } else {
        pool.linear_memory_keep_resident(KEEP_PREFIX_BYTES);
    }
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the engine's epoch every tick for as long as the engine lives.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
