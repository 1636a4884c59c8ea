//! `Ctx`: the explicit state every domain operation receives.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::password::PasswordHasherPool;
use crate::crypto::sealing::MasterKey;
use crate::oauth::cache::OAuthCache;
use crate::oauth::keys::KeyRing;
use crate::oauth::replay::ReplayCache;
use crate::plugins::limits::{Limits, OPERATOR_MAXIMA};
use crate::plugins::{PluginRuntime, RuntimeSettings};
use crate::store::Store;

/// Shared services; cheap to clone.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Configuration.
    pub config: Arc<Config>,
    /// Persistence.
    pub store: Store,
    /// Password hashing with bounded concurrency.
    pub passwords: PasswordHasherPool,
    /// Per-tenant signing keys, cached.
    pub keys: KeyRing,
    /// The instance master key (sealing login-flow state, deriving MAC keys).
    pub master: MasterKey,
    /// Tenants and clients the OAuth endpoints read on every request.
    pub cache: OAuthCache,
    /// One-time identifiers already used (DPoP proofs, client assertions).
    pub replay: ReplayCache,
    /// The plugin runtime: installed plugins and tenants' activations.
    pub plugins: Arc<PluginRuntime>,
    /// Request metrics of tenants with a metrics-collector plugin.
    pub request_metrics: Arc<crate::extensions::metrics_feed::RequestMetrics>,
}

impl Ctx {
    /// Builds the context (and the plugin engine).
    pub fn new(config: Config, store: Store, master_key: MasterKey) -> anyhow::Result<Self> {
        let p = &config.plugins;
        let settings = RuntimeSettings {
            maxima: Limits {
                fuel: p.max_fuel,
                memory_mib: p.max_memory_mib,
                deadline_ms: p.max_deadline_ms,
                ..OPERATOR_MAXIMA
            },
            http_allowed_hosts: p.http_allowed_hosts.clone(),
            http_allow_private_networks: p.http_allow_private_networks,
            files_root: p.files_dir.clone(),
            warm_instances: p.warm_instances,
            breaker_threshold: p.breaker_threshold,
            breaker_cooldown: std::time::Duration::from_millis(p.breaker_cooldown_ms),
            cache_dir: p.cache_dir.clone(),
            allow_native: p.allow_native,
            native_calls: p.native_calls,
            native_allowed_sha256: p.native_allowed_sha256.clone(),
        };
        let plugins = PluginRuntime::new(
            settings,
            Arc::new(crate::plugins::kv::DatabaseKv(store.clone())),
        )?;
        let passwords = PasswordHasherPool::new(config.password_hash_concurrency);
        let keys = KeyRing::new(store.clone(), master_key.clone(), plugins.clone());
        Ok(Self {
            config: Arc::new(config),
            store,
            passwords,
            keys,
            master: master_key,
            cache: OAuthCache::default(),
            replay: ReplayCache::default(),
            plugins,
            request_metrics: Default::default(),
        })
    }
}
