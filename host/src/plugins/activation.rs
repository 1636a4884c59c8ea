//! One tenant's activation of one plugin: its configuration and grants, its
//! resolved limits, its small pool of warm instances, its circuit breaker
//! and its counters.
//!
//! Isolation decisions:
//! - An instance belongs to exactly one activation, so two tenants sharing a
//!   plugin never share linear memory or any state held in it.
//! - An instance is returned to the pool only after a call that ended
//!   normally (a result or a `plugin-error`); after a trap, an exhausted
//!   limit, an interrupted call or a malformed output it is dropped, since
//!   its memory may be in any state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::v0_1_0 as v;
use super::breaker::CircuitBreaker;
use super::engine::PluginEngine;
use super::error::PluginCallError;
use super::limits::Limits;
use super::loaded::{LoadedPlugin, PluginCode};
use super::manifest::{Category, FailureMode};
use super::native::instance::{NativeFailure, RunningCalls};
use super::native::{NativeInstance, NativeLibrary};
use super::state::{ActivationContext, PluginState};

/// Most calls of one activation in flight at once; more wait for a slot
/// (within their deadline).
pub const MAX_CONCURRENT_CALLS: usize = 32;

/// Calls in flight per tenant, across all its activations. With the
/// per-activation bound this keeps one tenant from taking the whole
/// instance pool (4,000 component instances) and starving the others.
pub const MAX_TENANT_CALLS: usize = 64;

/// How long a call runs before the epoch ticks make it yield its worker
/// thread (it is interrupted at its deadline in any case).
const YIELD_AFTER: Duration = Duration::from_millis(1);

/// Fuel granted to instantiation (start functions, pre-initialised runtimes).
const INSTANTIATION_FUEL: u64 = 1_000_000_000;
/// Wall-clock time granted to instantiation.
const INSTANTIATION_DEADLINE: Duration = Duration::from_secs(5);

/// Typed export handles of a live instance, per category.
#[derive(Default)]
pub struct InstanceExports {
    /// jwt-customizer.
    pub jwt_customizer: Option<v::jwt_customizer::JwtCustomizerPlugin>,
    /// policy-engine.
    pub policy_engine: Option<v::policy_engine::PolicyEnginePlugin>,
    /// input-validator.
    pub input_validator: Option<v::input_validator::InputValidatorPlugin>,
    /// lifecycle-hook.
    pub lifecycle_hook: Option<v::lifecycle_hook::LifecycleHookPlugin>,
    /// rate-limiter.
    pub rate_limiter: Option<v::rate_limiter::RateLimiterPlugin>,
    /// audit-sink.
    pub audit_sink: Option<v::audit_sink::AuditSinkPlugin>,
    /// metrics-collector.
    pub metrics_collector: Option<v::metrics_collector::MetricsCollectorPlugin>,
    /// notification-channel.
    pub notification_channel: Option<v::notification_channel::NotificationChannelPlugin>,
    /// encryption-provider.
    pub encryption_provider: Option<v::encryption_provider::EncryptionProviderPlugin>,
    /// auth-provider.
    pub auth_provider: Option<v::auth_provider::AuthProviderPlugin>,
    /// identity-provider.
    pub identity_provider: Option<v::identity_provider::IdentityProviderPlugin>,
    /// storage-backend.
    pub storage_backend: Option<v::storage_backend::StorageBackendPlugin>,
}

/// A live instance of either kind, as the hook closures receive it.
pub enum PluginInstance {
    /// A WebAssembly instance (boxed: the pool moves instances in and out).
    Wasm(Box<WarmInstance>),
    /// A native instance.
    Native(NativeInstance),
}

/// A live WebAssembly instance with its store.
pub struct WarmInstance {
    /// The store (one per instance).
    pub store: Store<PluginState>,
    /// The instance (for dynamic calls by the local runner).
    pub instance: wasmtime::component::Instance,
    /// Export handles.
    pub exports: InstanceExports,
}

/// Per-activation counters (for the admin API and the metrics feed).
#[derive(Debug, Default)]
pub struct CallStats {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls that failed (any typed error).
    pub failures: AtomicU64,
    /// Instances created.
    pub instantiations: AtomicU64,
    /// Total nanoseconds spent in calls.
    pub total_ns: AtomicU64,
    /// Failures by code.
    pub by_code: Mutex<BTreeMap<&'static str, u64>>,
}

/// An activation: settings plus runtime state.
pub struct Activation {
    /// The plugin.
    pub plugin: Arc<LoadedPlugin>,
    /// What capabilities see.
    pub context: Arc<ActivationContext>,
    /// Order among the tenant's activations of the same category.
    pub position: i64,
    /// Failure mode chosen by the administrator, if any.
    pub failure_mode: Option<FailureMode>,
    /// Limits per category.
    pub limits: BTreeMap<Category, Limits>,
    /// Memory limit of an instance (the largest of its categories').
    pub memory_bytes: usize,
    /// Warm instances kept for reuse.
    pool: Mutex<Vec<PluginInstance>>,
    /// Native plugins: the library, opened when the activation was built
    /// (or why it could not be).
    native_library: Option<Result<Arc<NativeLibrary>, String>>,
    /// Native plugins: calls running now, overrunning ones included.
    native_running: Option<RunningCalls>,
    /// Native plugins: where calls run.
    native_mode: super::native::NativeCallMode,
    /// How many warm instances to keep.
    warm_max: usize,
    /// Bounds concurrent calls.
    slots: Semaphore,
    /// Bounds the tenant's concurrent calls (shared by its activations).
    tenant_slots: Option<Arc<Semaphore>>,
    /// The circuit breaker.
    pub breaker: CircuitBreaker,
    /// Counters.
    pub stats: CallStats,
    /// identity-provider plugins: the login button, asked once.
    pub provider_display: super::hooks::identity_provider::DisplayCache,
}

impl std::fmt::Debug for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activation")
            .field("tenant", &self.context.tenant_id)
            .field("plugin", &self.context.plugin_id)
            .finish()
    }
}

/// What one call measured (for the local runner and benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallMeasurement {
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory of the instance, bytes.
    pub peak_memory: usize,
    /// Wall-clock time of the call.
    pub elapsed: Duration,
    /// Whether a new instance was created for the call.
    pub instantiated: bool,
}

impl Activation {
    /// A new activation with an empty pool.
    pub fn new(
        plugin: Arc<LoadedPlugin>,
        context: Arc<ActivationContext>,
        position: i64,
        failure_mode: Option<FailureMode>,
        limits: BTreeMap<Category, Limits>,
        warm_max: usize,
        breaker: CircuitBreaker,
    ) -> Self {
        let memory_bytes = limits
            .values()
            .map(|l| l.memory_bytes())
            .max()
            .unwrap_or(64 << 20);
        Self {
            plugin,
            context,
            position,
            failure_mode,
            limits,
            memory_bytes,
            pool: Mutex::new(Vec::new()),
            native_library: None,
            native_running: None,
            native_mode: Default::default(),
            warm_max,
            slots: Semaphore::new(MAX_CONCURRENT_CALLS),
            tenant_slots: None,
            breaker,
            stats: CallStats::default(),
            provider_display: Default::default(),
        }
    }

    /// Gives a native activation its library (or the reason it has none,
    /// which every call then reports as an instantiation failure).
    pub fn with_native_library(
        mut self,
        library: Result<Arc<NativeLibrary>, String>,
        mode: super::native::NativeCallMode,
        running: RunningCalls,
    ) -> Self {
        self.native_library = Some(library);
        self.native_mode = mode;
        self.native_running = Some(running);
        self
    }

    /// Makes calls also take a slot of the tenant's shared quota.
    pub fn with_tenant_slots(mut self, slots: Arc<Semaphore>) -> Self {
        self.tenant_slots = Some(slots);
        self
    }

    /// The failure mode that applies to `category`.
    pub fn failure_mode(&self, category: Category) -> FailureMode {
        match self.failure_mode {
            Some(FailureMode::Open) if category.may_fail_open() => FailureMode::Open,
            Some(FailureMode::Closed) => FailureMode::Closed,
            _ => category.default_failure_mode(),
        }
    }

    /// The limits of `category`.
    pub fn limits_for(&self, category: Category) -> Limits {
        self.limits
            .get(&category)
            .copied()
            .unwrap_or_else(|| Limits::default_for(category))
    }

    /// Warm instances in the pool now.
    pub fn warm_instances(&self) -> usize {
        self.pool.lock().expect("pool lock").len()
    }

    /// Creates instances until `n` are warm (start-up pre-warming).
    pub async fn prewarm(&self, engine: &PluginEngine, n: usize) -> Result<(), PluginCallError> {
        let n = n.min(self.warm_max);
        while self.warm_instances() < n {
            let inst = self.instantiate(engine).await?;
            self.pool.lock().expect("pool lock").push(inst);
        }
        Ok(())
    }

    async fn instantiate(&self, engine: &PluginEngine) -> Result<PluginInstance, PluginCallError> {
        let fail = |e: String| PluginCallError::Instantiation(e);
        let state = PluginState::new(self.context.clone(), self.memory_bytes)
            .map_err(|e| fail(format!("{e:#}")))?;
        let wasm = match &self.plugin.code {
            PluginCode::Wasm(w) => w,
            PluginCode::Native { .. } => {
                let library = match &self.native_library {
                    Some(Ok(l)) => l.clone(),
                    Some(Err(why)) => return Err(fail(why.clone())),
                    None => return Err(fail("the native library was not opened".into())),
                };
                self.stats.instantiations.fetch_add(1, Ordering::Relaxed);
                return Ok(PluginInstance::Native(NativeInstance::new(
                    library,
                    state,
                    self.native_running.clone().unwrap_or_else(|| RunningCalls {
                        own: Default::default(),
                        all: Default::default(),
                    }),
                    self.native_mode,
                )));
            }
        };
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // At each epoch tick: past the deadline, interrupt; a call that has
        // run for `YIELD_AFTER` yields its worker thread to other tasks;
        // a call that just started goes on. Yielding a short call would let
        // the next request start a call of its own meanwhile and need a
        // second instance (an instantiation, when the warm pool is empty).
        store.epoch_deadline_callback(|ctx| {
            let now = Instant::now();
            let s = ctx.data();
            if now >= s.deadline {
                Ok(UpdateDeadline::Interrupt)
            } else if now.duration_since(s.started) >= YIELD_AFTER {
                Ok(UpdateDeadline::Yield(1))
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store.data_mut().deadline = Instant::now() + INSTANTIATION_DEADLINE;
        store.set_epoch_deadline(1);
        store
            .set_fuel(INSTANTIATION_FUEL)
            .map_err(|e| fail(format!("{e:#}")))?;
        let instance = wasm
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| fail(format!("{e:#}")))?;
        let mut exports = InstanceExports::default();
        let ix = &wasm.exports;
        macro_rules! load {
            ($field:ident) => {
                if let Some(i) = &ix.$field {
                    exports.$field = Some(
                        i.load(&mut store, &instance)
                            .map_err(|e| fail(format!("{e:#}")))?,
                    );
                }
            };
        }
        load!(jwt_customizer);
        load!(policy_engine);
        load!(input_validator);
        load!(lifecycle_hook);
        load!(rate_limiter);
        load!(audit_sink);
        load!(metrics_collector);
        load!(notification_channel);
        load!(encryption_provider);
        load!(auth_provider);
        load!(identity_provider);
        load!(storage_backend);
        self.stats.instantiations.fetch_add(1, Ordering::Relaxed);
        Ok(PluginInstance::Wasm(Box::new(WarmInstance {
            store,
            instance,
            exports,
        })))
    }

    /// Runs one call: admission by the breaker, a concurrency slot, a warm
    /// (or new) instance, limits reset, the call, classification of the
    /// outcome, and the instance returned to the pool or discarded.
    pub async fn invoke<R, F>(
        &self,
        engine: &PluginEngine,
        category: Category,
        request_id: &str,
        input_size: usize,
        call: F,
    ) -> (Result<R, PluginCallError>, CallMeasurement)
    where
        R: OutputSize,
        F: for<'a> FnOnce(
            &'a mut PluginInstance,
            v::caps::vaultaris::plugin::types::CallContext,
        ) -> std::pin::Pin<
            Box<
                dyn Future<
                        Output = wasmtime::Result<
                            Result<R, v::caps::vaultaris::plugin::types::PluginError>,
                        >,
                    > + Send
                    + 'a,
            >,
        >,
    {
        let mut m = CallMeasurement::default();
        let limits = self.limits_for(category);
        let started = Instant::now();
        let result = if input_size > limits.max_input_bytes() {
            Err(PluginCallError::InputTooLarge {
                size: input_size,
                limit: limits.max_input_bytes(),
            })
        } else {
            match self.breaker.admit() {
                super::breaker::Admission::Refuse => Err(PluginCallError::CircuitOpen),
                admission => {
                    let mut trial = super::breaker::TrialGuard::new(
                        &self.breaker,
                        admission == super::breaker::Admission::Trial,
                    );
                    let r = self
                        .invoke_inner(engine, limits, request_id, call, &mut m)
                        .await;
                    trial.disarm();
                    r
                }
            }
        };
        m.elapsed = started.elapsed();
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .total_ns
            .fetch_add(m.elapsed.as_nanos() as u64, Ordering::Relaxed);
        match &result {
            Ok(_) => self.breaker.success(),
            Err(e) => self.record_failure(category, e),
        }
        (result, m)
    }

    /// Counts a failure and feeds the breaker. `invoke` calls it for every
    /// failed call; hooks call it when a result that came back fine turns
    /// out unusable (e.g. claims that are not JSON).
    pub fn record_failure(&self, category: Category, e: &PluginCallError) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        *self
            .stats
            .by_code
            .lock()
            .expect("stats lock")
            .entry(e.code())
            .or_default() += 1;
        if !e.counts_as_failure() {
            self.breaker.release_trial();
        } else if self.breaker.failure() {
            tracing::warn!(tenant = %self.context.tenant_id, plugin = %self.context.plugin_id,
                %category, "plugin circuit breaker opened");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn invoke_inner<R, F>(
        &self,
        engine: &PluginEngine,
        limits: Limits,
        request_id: &str,
        call: F,
        m: &mut CallMeasurement,
    ) -> Result<R, PluginCallError>
    where
        R: OutputSize,
        F: for<'a> FnOnce(
            &'a mut PluginInstance,
            v::caps::vaultaris::plugin::types::CallContext,
        ) -> std::pin::Pin<
            Box<
                dyn Future<
                        Output = wasmtime::Result<
                            Result<R, v::caps::vaultaris::plugin::types::PluginError>,
                        >,
                    > + Send
                    + 'a,
            >,
        >,
    {
        // The activation's own slot first: a call waiting for its
        // activation never holds one of the tenant's slots meanwhile.
        let slots = async {
            let own = self.slots.acquire().await.expect("semaphore never closed");
            let tenant = match &self.tenant_slots {
                Some(t) => Some(t.acquire().await.expect("semaphore never closed")),
                None => None,
            };
            (own, tenant)
        };
        let _slots = tokio::time::timeout(limits.deadline(), slots)
            .await
            .map_err(|_| PluginCallError::Busy(limits.deadline_ms))?;
        // The call's deadline starts when it gets its slot: the same
        // instant for the epoch interruption, the outer timeout and what
        // the plugin is told (`deadline` in its call context).
        let deadline = Instant::now() + limits.deadline();
        let pooled = self.pool.lock().expect("pool lock").pop();
        let mut inst = match pooled {
            Some(i) => i,
            None => {
                m.instantiated = true;
                self.instantiate(engine).await?
            }
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let deadline_ms = now_ms + remaining.as_millis() as i64;
        match &mut inst {
            PluginInstance::Wasm(w) => {
                w.store
                    .data_mut()
                    .begin_call(deadline, deadline_ms, request_id);
                w.store.set_epoch_deadline(1);
                w.store
                    .set_fuel(limits.fuel)
                    .map_err(|e| PluginCallError::Trap(format!("{e:#}")))?;
            }
            PluginInstance::Native(n) => {
                n.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .begin_call(deadline, deadline_ms, request_id);
                // The encoding adds a few bytes per string and list to what
                // the output limit counts; the exact check follows decoding.
                n.deadline = deadline;
                n.max_output_bytes = limits
                    .max_output_bytes()
                    .saturating_mul(2)
                    .saturating_add(64 << 10);
            }
        }
        let cx = v::caps::vaultaris::plugin::types::CallContext {
            tenant: self.context.tenant_id.to_string(),
            plugin_id: self.context.plugin_id.clone(),
            request_id: request_id.to_string(),
            now: now_ms,
            deadline: deadline_ms,
        };
        // WebAssembly: the epoch callback interrupts the guest at the
        // deadline; the timeout covers time inside host capabilities, with a
        // little slack so the capability's own deadline answers first.
        // Native: the timeout is the only bound (the thread cannot be
        // interrupted; see plugins/native).
        let outcome =
            tokio::time::timeout(remaining + Duration::from_millis(100), call(&mut inst, cx)).await;
        if let PluginInstance::Wasm(w) = &inst {
            m.fuel_used = limits.fuel.saturating_sub(w.store.get_fuel().unwrap_or(0));
            m.peak_memory = w.store.data().limiter.peak;
        }
        // Only an instance whose call ended normally (a result or a
        // `plugin-error`) is reused; anything else is dropped here.
        let (result, reusable) = match outcome {
            Err(_) => (
                Err(PluginCallError::DeadlineExceeded(limits.deadline_ms)),
                false,
            ),
            Ok(Err(failure)) => (Err(classify_failure(failure, &inst, &limits)), false),
            Ok(Ok(Err(reported))) => (
                Err(PluginCallError::Reported(reported_error(reported))),
                true,
            ),
            Ok(Ok(Ok(value))) => {
                let size = value.output_size();
                if size > limits.max_output_bytes() {
                    (
                        Err(PluginCallError::OutputTooLarge {
                            size,
                            limit: limits.max_output_bytes(),
                        }),
                        false,
                    )
                } else {
                    (Ok(value), true)
                }
            }
        };
        if reusable {
            self.give_back(inst);
        }
        result
    }

    fn give_back(&self, inst: PluginInstance) {
        let mut pool = self.pool.lock().expect("pool lock");
        if pool.len() < self.warm_max {
            pool.push(inst);
        }
    }
}

/// Why a call failed, for either kind of instance.
fn classify_failure(e: wasmtime::Error, inst: &PluginInstance, limits: &Limits) -> PluginCallError {
    match inst {
        PluginInstance::Wasm(w) => classify_trap(e, &w.store, limits),
        PluginInstance::Native(_) => match e.downcast_ref::<NativeFailure>() {
            Some(NativeFailure::Trap(s)) => PluginCallError::Trap(truncated(s.clone())),
            Some(NativeFailure::OutputTooLarge { size, limit }) => {
                PluginCallError::OutputTooLarge {
                    size: *size,
                    limit: *limit,
                }
            }
            Some(NativeFailure::Malformed(s)) => {
                PluginCallError::MalformedOutput(truncated(s.clone()))
            }
            Some(NativeFailure::Runaway(_)) => PluginCallError::Busy(limits.deadline_ms),
            Some(NativeFailure::Late) => PluginCallError::DeadlineExceeded(limits.deadline_ms),
            None => PluginCallError::Trap(truncated(format!("{e:#}"))),
        },
    }
}

fn truncated(mut s: String) -> String {
    if s.len() > 1024 {
        let mut i = 1024;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
    s
}

fn classify_trap(
    e: wasmtime::Error,
    store: &Store<PluginState>,
    limits: &Limits,
) -> PluginCallError {
    if store.data().limiter.exceeded {
        return PluginCallError::MemoryLimit(limits.memory_mib);
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => PluginCallError::FuelExhausted(limits.fuel),
        Some(wasmtime::Trap::Interrupt) => PluginCallError::DeadlineExceeded(limits.deadline_ms),
        Some(wasmtime::Trap::StackOverflow) => PluginCallError::StackOverflow,
        Some(t) => PluginCallError::Trap(t.to_string()),
        None => {
            let mut s = format!("{e:#}");
            s.truncate(1024);
            PluginCallError::Trap(s)
        }
    }
}

fn reported_error(
    e: v::caps::vaultaris::plugin::types::PluginError,
) -> super::error::PluginReported {
    use v::caps::vaultaris::plugin::types::PluginError as P;
    let (kind, d) = match e {
        P::InvalidInput(d) => ("invalid-input", d),
        P::Misconfigured(d) => ("misconfigured", d),
        P::Unavailable(d) => ("unavailable", d),
        P::Unsupported(d) => ("unsupported", d),
        P::Internal(d) => ("internal", d),
    };
    let cut = |mut s: String, n: usize| {
        if s.len() > n {
            let mut i = n;
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            s.truncate(i);
        }
        s
    };
    super::error::PluginReported {
        kind,
        code: cut(d.code, 64),
        message: cut(d.message, 1024),
    }
}

/// Bytes of strings and lists in a value: what the output limit counts.
pub trait OutputSize {
    /// The size.
    fn output_size(&self) -> usize;
}
