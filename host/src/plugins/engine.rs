//! The one wasmtime `Engine` of the process, the `Linker` every plugin is
//! instantiated with, the epoch ticker, and the on-disk cache of compiled
//! components.
//!
//! Security and resource decisions:
//! - Fuel metering and epoch interruption are both on: fuel bounds compute
//!   deterministically, the epoch deadline bounds wall-clock time including
//!   time spent in host capabilities. Calls run on fibers (`async`), and the
//!   epoch callback yields to Tokio between ticks, so a looping plugin never
//!   holds a worker thread for more than one tick.
//! - The pooling allocator pre-reserves slots for instances, memories,
//!   tables and fiber stacks, which makes instantiation a few microseconds
//!   and bounds the total. Where the address space cannot hold the pool
//!   (e.g. a `ulimit -v`), the engine falls back to on-demand allocation.
//! - The linker offers WASI 0.2 only as a locked-down shim (no preopens but
//!   the plugin's own `/data` when granted, no environment, no sockets, no
//!   name lookup): Rust, JavaScript and Python toolchains import it even
//!   when a plugin never touches a file.
//! - Compiled artifacts are cached under `<data dir>/plugin-cache`, keyed
//!   by the component's SHA-256 and the engine's compatibility hash, so a
//!   restart or a second tenant does not recompile. Loading a cached file
//!   is `unsafe` in wasmtime because a tampered file could run arbitrary
//!   native code: the directory is as sensitive as the database and the
//!   master key beside it, and is only ever written by this process.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::v0_1_0;
use super::limits::Limits;
use super::state::PluginState;

/// How often the epoch advances: the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Largest wasm stack of a call.
const MAX_WASM_STACK: usize = 1 << 20;

/// The engine, its linker and the compiled-artifact cache.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<PluginState>,
    cache_dir: PathBuf,
    engine_hash: String,
    pooling: bool,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("cache_dir", &self.cache_dir)
            .field("pooling", &self.pooling)
            .finish()
    }
}

fn base_config() -> Config {
    let mut c = Config::new();
    // Component-model async intrinsics are validated, not used by the host:
    // JavaScript components built with the QuickJS backend (the reference
    // js-claims plugin) contain them (`task.cancel`), and the host calls
    // every export synchronously within its own async call.
    c.wasm_component_model(true)
        .wasm_component_model_async(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(MAX_WASM_STACK + (1 << 20))
        .memory_init_cow(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    c
}

fn pooling_config(max: &Limits) -> PoolingAllocationConfig {
    let mut p = PoolingAllocationConfig::default();
    // Sized for a few thousand warm instances (hundreds of tenants with a
    // few plugins each); JavaScript and Python guests use several core
    // instances and large tables per component.
    p.total_component_instances(4_000)
        .total_core_instances(20_000)
        .total_memories(4_000)
        .total_tables(8_000)
        .total_stacks(1_000)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(64)
        .max_memories_per_module(2)
        .max_tables_per_module(8)
        .table_elements(100_000)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .max_memory_size(max.memory_bytes());
    p
}

impl PluginEngine {
    /// Creates the engine (pooling when the address space allows), links
    /// the capabilities, and starts the epoch ticker.
    pub fn new(cache_dir: &Path, maxima: &Limits) -> anyhow::Result<Self> {
        let mut pooled = base_config();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(maxima)));
        let (engine, pooling) = match Engine::new(&pooled) {
            Ok(e) => (e, true),
            Err(e) => {
                tracing::warn!(error = %e, "plugin pooling allocator unavailable; allocating instances on demand");
                (
                    Engine::new(&base_config())
                        .map_err(|e| anyhow::anyhow!("creating the wasm engine: {e:#}"))?,
                    false,
                )
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking WASI: {e:#}"))?;
        v0_1_0::caps::HostCapabilities::add_to_linker::<PluginState, HasSelf<PluginState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| anyhow::anyhow!("linking host capabilities: {e:#}"))?;
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_hash = format!("{:016x}", h.finish());
        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("plugin-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .context("starting the epoch ticker")?;
        }
        Ok(Self {
            engine,
            linker,
            cache_dir: cache_dir.to_path_buf(),
            engine_hash,
            pooling,
            ticker_stop,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with WASI and the capabilities.
    pub fn linker(&self) -> &Linker<PluginState> {
        &self.linker
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compiles `bytes` (whose SHA-256 is `sha256`), or loads the cached
    /// compilation. Returns the component and whether it came from cache.
    pub fn load_component(&self, sha256: &str, bytes: &[u8]) -> anyhow::Result<(Component, bool)> {
        let path = self
            .cache_dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash));
        if path.exists() {
            // SAFETY: see the module documentation: the cache directory is
            // written only by this process, from components whose SHA-256
            // was verified, and is as protected as the master key.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled plugin");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .context("the artifact is not a valid WebAssembly component")?;
        match component.serialize() {
            Ok(compiled) => {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::write(&tmp, compiled)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .is_err()
                {
                    let _ = std::fs::remove_file(&tmp);
                    tracing::warn!(path = %path.display(), "could not cache a compiled plugin");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialise a compiled plugin"),
        }
        Ok((component, false))
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
