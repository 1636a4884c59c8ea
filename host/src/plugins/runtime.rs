//! `PluginRuntime`: the installed plugins, every tenant's activations, and
//! the settings the operator chose. The hook facades (`hooks/`) are methods
//! on it; the domain never sees wasmtime.
//!
//! Changes (install, upgrade, removal, activation) swap in new
//! `Activation`s while calls in flight finish on the old ones, so nothing
//! needs a restart. An activation whose plugin and settings did not change
//! is kept, with its warm instances.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::activation::Activation;
use super::engine::PluginEngine;
use super::error::PluginCallError;
use super::kv::KeyValueBackend;
use super::limits::{LimitOverrides, Limits};
use super::loaded::LoadedPlugin;
use super::manifest::{Category, FailureMode, PluginManifest, host_matches};
use super::state::ActivationContext;

/// What the operator decides about plugins (environment variables).
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Maxima bounding every limit (`PLUGIN_MAX_*`).
    pub maxima: Limits,
    /// Hosts plugins may reach at all (`PLUGIN_HTTP_ALLOWED_HOSTS`; `*`
    /// grants whatever a manifest requests).
    pub http_allowed_hosts: Vec<String>,
    /// Whether granted host names may resolve to loopback and private
    /// addresses (`PLUGIN_HTTP_ALLOW_PRIVATE_NETWORKS`).
    pub http_allow_private_networks: bool,
    /// Root of per-(tenant, plugin) directories, or `None` to refuse the
    /// `files` capability.
    pub files_root: Option<PathBuf>,
    /// Warm instances kept per activation.
    pub warm_instances: usize,
    /// Consecutive failures that open a circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls.
    pub breaker_cooldown: std::time::Duration,
    /// Compiled-artifact cache directory (native libraries go to its
    /// `native/` subdirectory).
    pub cache_dir: PathBuf,
    /// Whether native (unsandboxed) plugins may be loaded
    /// (`PLUGIN_ALLOW_NATIVE`).
    pub allow_native: bool,
    /// Where native plugin calls run (`PLUGIN_NATIVE_CALLS`).
    pub native_calls: super::native::NativeCallMode,
    /// SHA-256s (hex, lower case) of the only native libraries accepted
    /// (`PLUGIN_NATIVE_SHA256`); empty accepts any once native plugins
    /// are allowed.
    pub native_allowed_sha256: Vec<String>,
}

/// A desired activation, configuration decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationSpec {
    /// The plugin.
    pub plugin_id: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Configuration including secrets.
    pub config: serde_json::Value,
    /// Limit overrides.
    pub limits: LimitOverrides,
    /// Failure mode, if chosen.
    pub failure_mode: Option<FailureMode>,
    /// Order within a category.
    pub position: i64,
}

/// A tenant's enabled activations, per category in order.
#[derive(Debug, Default)]
pub struct TenantPlugins {
    specs: Vec<ActivationSpec>,
    /// The tenant's active storage-backend plugin, if any.
    storage: Option<String>,
    by_category: BTreeMap<Category, Vec<Arc<Activation>>>,
}

impl TenantPlugins {
    /// The activations of `category`, in order.
    pub fn of(&self, category: Category) -> &[Arc<Activation>] {
        self.by_category
            .get(&category)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every enabled activation (each once).
    pub fn all(&self) -> Vec<Arc<Activation>> {
        let mut seen = std::collections::HashSet::new();
        self.by_category
            .values()
            .flatten()
            .filter(|a| seen.insert(Arc::as_ptr(a)))
            .cloned()
            .collect()
    }
}

/// A failure worth an audit record, for the domain's audit writer.
#[derive(Debug, Clone)]
pub struct PluginFailure {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The plugin.
    pub plugin_id: String,
    /// The category called.
    pub category: Category,
    /// The error.
    pub error: PluginCallError,
    /// Whether the request failed (closed) or went on (open).
    pub mode: FailureMode,
    /// Similar failures not audited separately since the last record.
    pub suppressed: u64,
}

/// (tenant, plugin, error code) of audited failures.
type ThrottleKey = (Uuid, String, &'static str);

/// The runtime.
pub struct PluginRuntime {
    engine: PluginEngine,
    settings: RuntimeSettings,
    kv: Arc<dyn KeyValueBackend>,
    outbound: Arc<super::capabilities::OutboundHttp>,
    plugins: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    /// Open native libraries, shared by every activation of a library.
    native_libraries: super::native::NativeLibraryCache,
    /// Native calls running, per (tenant, plugin) across activation
    /// rebuilds.
    native_running: std::sync::Mutex<HashMap<(Uuid, String), Arc<std::sync::atomic::AtomicUsize>>>,
    /// Native calls running on the blocking pool, all tenants.
    native_running_all: Arc<std::sync::atomic::AtomicUsize>,
    tenants: RwLock<HashMap<Uuid, Arc<TenantPlugins>>>,
    failures: tokio::sync::mpsc::Sender<PluginFailure>,
    me: std::sync::Weak<PluginRuntime>,
    /// Whether any tenant has a metrics-collector active (lets the request
    /// path skip metrics entirely in the common case).
    any_metrics_collector: std::sync::atomic::AtomicBool,
    failure_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<PluginFailure>>>,
    audit_throttle: std::sync::Mutex<HashMap<ThrottleKey, (Option<Instant>, u64)>>,
    /// Per tenant: calls in flight across all its activations.
    tenant_slots: std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Semaphore>>>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("engine", &self.engine)
            .finish()
    }
}

/// Why a native plugin is refused when the operator has not opted in.
pub const NATIVE_REFUSED: &str = "native plugins run unsandboxed inside the server process, with its \
rights and memory; this server refuses them unless the operator sets PLUGIN_ALLOW_NATIVE=true";

/// At most one audit record per (tenant, plugin, error code) in this period.
const AUDIT_PERIOD: Duration = Duration::from_secs(10);

impl PluginRuntime {
    /// Creates the engine and an empty runtime.
    pub fn new(
        settings: RuntimeSettings,
        kv: Arc<dyn KeyValueBackend>,
    ) -> anyhow::Result<Arc<Self>> {
        let engine = PluginEngine::new(&settings.cache_dir, &settings.maxima)?;
        let outbound = Arc::new(super::capabilities::OutboundHttp::new(
            super::capabilities::OutboundPolicy {
                allowed_hosts: settings.http_allowed_hosts.clone(),
                allow_private_networks: settings.http_allow_private_networks,
            },
        )?);
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        Ok(Arc::new_cyclic(|me| Self {
            engine,
            settings,
            kv,
            outbound,
            plugins: RwLock::default(),
            native_libraries: Default::default(),
            native_running: Default::default(),
            native_running_all: Default::default(),
            tenants: RwLock::default(),
            failures: tx,
            me: me.clone(),
            any_metrics_collector: Default::default(),
            failure_rx: std::sync::Mutex::new(Some(rx)),
            audit_throttle: Default::default(),
            tenant_slots: Default::default(),
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// The operator's settings.
    pub fn settings(&self) -> &RuntimeSettings {
        &self.settings
    }

    /// Takes the receiving end of the failure feed (once, for the audit writer).
    pub fn take_failure_feed(&self) -> Option<tokio::sync::mpsc::Receiver<PluginFailure>> {
        self.failure_rx.lock().expect("lock").take()
    }

    /// Compiles and links a plugin without installing it (CPU-heavy on a
    /// cache miss: runs on the blocking pool).
    pub async fn prepare(
        self: &Arc<Self>,
        manifest: PluginManifest,
        sha256: String,
        bytes: Arc<Vec<u8>>,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            if manifest.kind == super::manifest::PluginKind::Native {
                if !me.settings.allow_native {
                    anyhow::bail!("{NATIVE_REFUSED}");
                }
                let allowed = &me.settings.native_allowed_sha256;
                if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&sha256)) {
                    anyhow::bail!(
                        "native library {sha256} is not in the operator's PLUGIN_NATIVE_SHA256 list"
                    );
                }
                return LoadedPlugin::load_native(
                    &me.native_libraries,
                    &me.settings.cache_dir,
                    manifest,
                    sha256,
                    &bytes,
                )
                .map(Arc::new);
            }
            LoadedPlugin::load(&me.engine, manifest, sha256, &bytes).map(Arc::new)
        })
        .await?
    }

    /// How many native libraries are open (loaded with `dlopen`) now.
    pub fn open_native_libraries(&self) -> usize {
        self.native_libraries.open_count()
    }

    /// Installs (or replaces) a prepared plugin and rebuilds the activations
    /// of every tenant that uses it.
    pub fn install(&self, plugin: Arc<LoadedPlugin>) {
        let id = plugin.manifest.id.clone();
        self.plugins
            .write()
            .expect("lock")
            .insert(id.clone(), plugin);
        self.rebuild_users_of(&id);
    }

    /// Removes a plugin and its activations.
    pub fn remove(&self, id: &str) {
        self.plugins.write().expect("lock").remove(id);
        self.rebuild_users_of(id);
    }

    /// An installed plugin.
    pub fn plugin(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.read().expect("lock").get(id).cloned()
    }

    /// Ids of installed plugins.
    pub fn plugin_ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self.plugins.read().expect("lock").keys().cloned().collect();
        ids.sort();
        ids
    }

    fn rebuild_users_of(&self, plugin_id: &str) {
        let users: Vec<(Uuid, Vec<ActivationSpec>)> = self
            .tenants
            .read()
            .expect("lock")
            .iter()
            .filter(|(_, t)| t.specs.iter().any(|s| s.plugin_id == plugin_id))
            .map(|(id, t)| (*id, t.specs.clone()))
            .collect();
        for (tenant, specs) in users {
            self.set_tenant(tenant, specs);
        }
    }

    /// Replaces a tenant's activations. Activations whose spec and plugin
    /// are unchanged keep their warm instances and breaker state.
    pub fn set_tenant(&self, tenant_id: Uuid, mut specs: Vec<ActivationSpec>) {
        specs.sort_by(|a, b| {
            a.position
                .cmp(&b.position)
                .then(a.plugin_id.cmp(&b.plugin_id))
        });
        let previous = self.tenant(tenant_id);
        let plugins = self.plugins.read().expect("lock").clone();
        // At most one storage backend per tenant: the first in order.
        let storage = specs
            .iter()
            .filter(|s| s.enabled)
            .find(|s| {
                plugins
                    .get(&s.plugin_id)
                    .is_some_and(|p| p.manifest.categories.contains(&Category::StorageBackend))
            })
            .map(|s| s.plugin_id.clone());
        let routing_changed = previous.as_ref().is_some_and(|p| p.storage != storage);
        let mut by_category: BTreeMap<Category, Vec<Arc<Activation>>> = BTreeMap::new();
        for spec in specs.iter().filter(|s| s.enabled) {
            let Some(plugin) = plugins.get(&spec.plugin_id) else {
                continue;
            };
            let kv: Arc<dyn KeyValueBackend> = match &storage {
                Some(s) if *s != spec.plugin_id => {
                    Arc::new(super::hooks::storage_backend::PluginStorageKv {
                        runtime: self.me.clone(),
                        tenant: tenant_id,
                    })
                }
                _ => self.kv.clone(),
            };
            let reused = previous
                .as_ref()
                .filter(|_| !routing_changed)
                .and_then(|p| {
                    let old_spec = p.specs.iter().find(|s| s.plugin_id == spec.plugin_id)?;
                    let old = p
                        .all()
                        .into_iter()
                        .find(|a| a.context.plugin_id == spec.plugin_id)?;
                    (old_spec == spec && Arc::ptr_eq(&old.plugin, plugin)).then_some(old)
                });
            let activation = match reused {
                Some(a) => a,
                None => {
                    let a = self.build_activation(tenant_id, plugin.clone(), spec, kv);
                    // The storage backend is called from inside the tenant's
                    // other calls: it does not take a tenant slot, or a
                    // tenant at its quota would wait on itself.
                    Arc::new(if storage.as_deref() == Some(spec.plugin_id.as_str()) {
                        a
                    } else {
                        a.with_tenant_slots(self.tenant_slots_of(tenant_id))
                    })
                }
            };
            for c in &plugin.manifest.categories {
                by_category.entry(*c).or_default().push(activation.clone());
            }
        }
        let mut tenants = self.tenants.write().expect("lock");
        if specs.is_empty() {
            tenants.remove(&tenant_id);
        } else {
            tenants.insert(
                tenant_id,
                Arc::new(TenantPlugins {
                    specs,
                    storage,
                    by_category,
                }),
            );
        }
        let any = tenants
            .values()
            .any(|t| !t.of(Category::MetricsCollector).is_empty());
        self.any_metrics_collector
            .store(any, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether any tenant has a metrics-collector plugin active.
    pub fn any_metrics_collector(&self) -> bool {
        self.any_metrics_collector
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn build_activation(
        &self,
        tenant_id: Uuid,
        plugin: Arc<LoadedPlugin>,
        spec: &ActivationSpec,
        kv: Arc<dyn KeyValueBackend>,
    ) -> Activation {
        let m = &plugin.manifest;
        let overrides = m.limits.then(&spec.limits);
        let limits = m
            .categories
            .iter()
            .map(|c| {
                (
                    *c,
                    Limits::default_for(*c).with(&overrides, &self.settings.maxima),
                )
            })
            .collect();
        let http_hosts = m
            .capabilities
            .outbound_http
            .iter()
            .filter(|h| self.operator_allows_host(h))
            .cloned()
            .collect();
        let files_dir = match (&self.settings.files_root, m.capabilities.files) {
            (Some(root), true) => Some(root.join(tenant_id.to_string()).join(&m.id)),
            _ => None,
        };
        let context = Arc::new(ActivationContext {
            tenant_id,
            plugin_id: m.id.clone(),
            config_json: spec.config.to_string(),
            config: spec.config.clone(),
            key_value: m.capabilities.key_value,
            http_hosts,
            files_dir,
            kv,
            outbound: self.outbound.clone(),
        });
        let native = match &plugin.code {
            super::loaded::PluginCode::Native { path, .. } => Some(
                self.native_libraries
                    .open(path, &plugin.sha256)
                    .map_err(|e| format!("{e:#}")),
            ),
            super::loaded::PluginCode::Wasm(_) => None,
        };
        let activation = Activation::new(
            plugin,
            context,
            spec.position,
            spec.failure_mode,
            limits,
            self.settings.warm_instances,
            super::breaker::CircuitBreaker::new(
                self.settings.breaker_threshold,
                self.settings.breaker_cooldown,
            ),
        );
        match native {
            Some(library) => {
                let own = self
                    .native_running
                    .lock()
                    .expect("native running lock")
                    .entry((tenant_id, activation.context.plugin_id.clone()))
                    .or_default()
                    .clone();
                let running = super::native::instance::RunningCalls {
                    own,
                    all: self.native_running_all.clone(),
                };
                activation.with_native_library(library, self.settings.native_calls, running)
            }
            None => activation,
        }
    }

    /// The semaphore bounding a tenant's calls in flight, shared by all its
    /// activations (kept across reconfigurations).
    fn tenant_slots_of(&self, tenant_id: Uuid) -> Arc<tokio::sync::Semaphore> {
        self.tenant_slots
            .lock()
            .expect("tenant slots lock")
            .entry(tenant_id)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    super::activation::MAX_TENANT_CALLS,
                ))
            })
            .clone()
    }

    /// Whether the operator's allow-list admits a manifest's host pattern.
    pub fn operator_allows_host(&self, pattern: &str) -> bool {
        self.settings.http_allowed_hosts.iter().any(|allowed| {
            allowed == "*" || allowed.eq_ignore_ascii_case(pattern) || {
                // An operator entry without a port admits the host on any port.
                let (host, port) = match pattern.rsplit_once(':') {
                    Some((h, p)) => (h, p.parse().unwrap_or(0)),
                    None => (pattern, 0),
                };
                !allowed.contains(':') && host_matches(allowed, host, port)
            }
        })
    }

    /// A tenant's activations.
    pub fn tenant(&self, tenant_id: Uuid) -> Option<Arc<TenantPlugins>> {
        self.tenants.read().expect("lock").get(&tenant_id).cloned()
    }

    /// The tenant's activations of a category (empty when none).
    pub fn active(&self, tenant_id: Uuid, category: Category) -> Vec<Arc<Activation>> {
        self.tenant(tenant_id)
            .map(|t| t.of(category).to_vec())
            .unwrap_or_default()
    }

    /// Whether the tenant has an active plugin of `category` (cheap: the
    /// core skips preparing plugin input when not).
    pub fn has(&self, tenant_id: Uuid, category: Category) -> bool {
        self.tenants
            .read()
            .expect("lock")
            .get(&tenant_id)
            .is_some_and(|t| !t.of(category).is_empty())
    }

    /// Every tenant with activations.
    pub fn tenants_with_plugins(&self) -> Vec<Uuid> {
        self.tenants.read().expect("lock").keys().copied().collect()
    }

    /// Logs a failed call and queues it for the audit log (throttled).
    pub fn report_failure(
        &self,
        act: &Activation,
        category: Category,
        error: &PluginCallError,
        mode: FailureMode,
    ) {
        tracing::warn!(tenant = %act.context.tenant_id, plugin = %act.context.plugin_id, %category,
            code = error.code(), mode = ?mode, "plugin call failed: {error}");
        let key = (
            act.context.tenant_id,
            act.context.plugin_id.clone(),
            error.code(),
        );
        let suppressed = {
            let mut t = self.audit_throttle.lock().expect("lock");
            let now = Instant::now();
            // Bounded: forget entries idle for a minute.
            if t.len() > 10_000 {
                t.retain(|_, (last, _)| {
                    last.is_some_and(|l| now.duration_since(l) < Duration::from_secs(60))
                });
            }
            let entry = t.entry(key).or_insert((None, 0));
            if entry
                .0
                .is_some_and(|last| now.duration_since(last) < AUDIT_PERIOD)
            {
                entry.1 += 1;
                return;
            }
            let s = entry.1;
            *entry = (Some(now), 0);
            s
        };
        let _ = self.failures.try_send(PluginFailure {
            tenant_id: act.context.tenant_id,
            plugin_id: act.context.plugin_id.clone(),
            category,
            error: error.clone(),
            mode,
            suppressed,
        });
    }
}
