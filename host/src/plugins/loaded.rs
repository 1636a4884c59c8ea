//! An installed plugin, compiled and pre-linked: ready to instantiate for
//! any tenant that activates it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use wasmtime::component::{Component, InstancePre};

use super::bindings::v0_1_0 as v;
use super::engine::PluginEngine;
use super::manifest::{Category, PluginManifest};
use super::native::library::{LibraryManifest, NativeLibraryCache, store_artifact};
use super::state::PluginState;

/// Export lookups of each category the plugin implements, resolved once at
/// load time (so instantiation does no name lookups), and the proof that the
/// component really exports what its manifest claims.
#[derive(Default)]
pub struct ExportIndices {
    /// jwt-customizer.
    pub jwt_customizer: Option<v::jwt_customizer::JwtCustomizerPluginIndices>,
    /// policy-engine.
    pub policy_engine: Option<v::policy_engine::PolicyEnginePluginIndices>,
    /// input-validator.
    pub input_validator: Option<v::input_validator::InputValidatorPluginIndices>,
    /// lifecycle-hook.
    pub lifecycle_hook: Option<v::lifecycle_hook::LifecycleHookPluginIndices>,
    /// rate-limiter.
    pub rate_limiter: Option<v::rate_limiter::RateLimiterPluginIndices>,
    /// audit-sink.
    pub audit_sink: Option<v::audit_sink::AuditSinkPluginIndices>,
    /// metrics-collector.
    pub metrics_collector: Option<v::metrics_collector::MetricsCollectorPluginIndices>,
    /// notification-channel.
    pub notification_channel: Option<v::notification_channel::NotificationChannelPluginIndices>,
    /// encryption-provider.
    pub encryption_provider: Option<v::encryption_provider::EncryptionProviderPluginIndices>,
    /// auth-provider.
    pub auth_provider: Option<v::auth_provider::AuthProviderPluginIndices>,
    /// identity-provider.
    pub identity_provider: Option<v::identity_provider::IdentityProviderPluginIndices>,
    /// storage-backend.
    pub storage_backend: Option<v::storage_backend::StorageBackendPluginIndices>,
}

/// A compiled, pre-linked component.
pub struct WasmCode {
    /// The pre-linked component.
    pub pre: InstancePre<PluginState>,
    /// Export lookups per category.
    pub exports: ExportIndices,
}

/// What runs a plugin: a component or a native library.
#[allow(clippy::large_enum_variant)] // one per installed plugin
pub enum PluginCode {
    /// A WebAssembly component, sandboxed.
    Wasm(WasmCode),
    /// A verified native library on disk, opened per activation through
    /// the runtime's library cache (one `dlopen` shared by all tenants).
    Native {
        /// The library file (`<cache>/native/<sha256>.so`).
        path: PathBuf,
        /// What the library said about itself when it was verified.
        library: LibraryManifest,
    },
}

/// A compiled, linked plugin.
pub struct LoadedPlugin {
    /// Its manifest.
    pub manifest: PluginManifest,
    /// SHA-256 of the component (or library).
    pub sha256: String,
    /// The code.
    pub code: PluginCode,
    /// Whether the compilation came from the on-disk cache.
    pub from_cache: bool,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.manifest.id)
            .field("version", &self.manifest.version)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The category interfaces a component exports, read from its type.
pub fn exported_categories(
    engine: &PluginEngine,
    component: &Component,
    contract: &str,
) -> BTreeSet<Category> {
    let ty = component.component_type();
    ty.exports(engine.engine())
        .filter_map(|(name, _)| {
            let rest = name.strip_prefix("vaultaris:plugin/")?;
            let (iface, version) = rest.split_once('@')?;
            (version == contract)
                .then(|| Category::parse(iface))
                .flatten()
        })
        .collect()
}

impl LoadedPlugin {
    /// The compiled component, for WebAssembly plugins.
    pub fn wasm(&self) -> Option<&WasmCode> {
        match &self.code {
            PluginCode::Wasm(w) => Some(w),
            PluginCode::Native { .. } => None,
        }
    }

    /// Stores a native library under its hash, opens it through `cache`
    /// (stabby checks the entry point's layout) and checks its own manifest
    /// against `manifest`: an incompatible library is refused here, at
    /// install time. The library stays open only while activations use it.
    pub fn load_native(
        cache: &NativeLibraryCache,
        cache_dir: &std::path::Path,
        manifest: PluginManifest,
        sha256: String,
        bytes: &[u8],
    ) -> anyhow::Result<Self> {
        let path = store_artifact(cache_dir, &sha256, bytes)?;
        let library = cache.open(&path, &sha256)?;
        library.check(&manifest)?;
        let library = library.manifest.clone();
        Ok(Self {
            manifest,
            sha256,
            code: PluginCode::Native { path, library },
            from_cache: false,
        })
    }

    /// Compiles (or loads from cache) and links a component, and checks that
    /// it exports exactly the categories of its manifest and imports nothing
    /// the host does not provide.
    pub fn load(
        engine: &PluginEngine,
        manifest: PluginManifest,
        sha256: String,
        bytes: &[u8],
    ) -> anyhow::Result<Self> {
        let (component, from_cache) = engine.load_component(&sha256, bytes)?;
        let exported = exported_categories(engine, &component, &manifest.contract);
        let declared: BTreeSet<Category> = manifest.categories.iter().copied().collect();
        if exported != declared {
            let list = |s: &BTreeSet<Category>| {
                s.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            };
            anyhow::bail!(
                "the manifest declares [{}] but the component exports [{}] of contract {}",
                list(&declared),
                list(&exported),
                manifest.contract
            );
        }
        let pre = engine
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .map_err(|e| {
                anyhow::anyhow!("the component imports something the host does not provide: {e}")
            })?;
        let mut exports = ExportIndices::default();
        macro_rules! index {
            ($field:ident, $cat:expr, $module:ident, $ty:ident) => {
                if declared.contains(&$cat) {
                    exports.$field = Some(
                        v::$module::$ty::new(&pre)
                            .map_err(|e| anyhow::anyhow!("{}: {e:#}", $cat))?,
                    );
                }
            };
        }
        index!(
            jwt_customizer,
            Category::JwtCustomizer,
            jwt_customizer,
            JwtCustomizerPluginIndices
        );
        index!(
            policy_engine,
            Category::PolicyEngine,
            policy_engine,
            PolicyEnginePluginIndices
        );
        index!(
            input_validator,
            Category::InputValidator,
            input_validator,
            InputValidatorPluginIndices
        );
        index!(
            lifecycle_hook,
            Category::LifecycleHook,
            lifecycle_hook,
            LifecycleHookPluginIndices
        );
        index!(
            rate_limiter,
            Category::RateLimiter,
            rate_limiter,
            RateLimiterPluginIndices
        );
        index!(
            audit_sink,
            Category::AuditSink,
            audit_sink,
            AuditSinkPluginIndices
        );
        index!(
            metrics_collector,
            Category::MetricsCollector,
            metrics_collector,
            MetricsCollectorPluginIndices
        );
        index!(
            notification_channel,
            Category::NotificationChannel,
            notification_channel,
            NotificationChannelPluginIndices
        );
        index!(
            encryption_provider,
            Category::EncryptionProvider,
            encryption_provider,
            EncryptionProviderPluginIndices
        );
        index!(
            auth_provider,
            Category::AuthProvider,
            auth_provider,
            AuthProviderPluginIndices
        );
        index!(
            identity_provider,
            Category::IdentityProvider,
            identity_provider,
            IdentityProviderPluginIndices
        );
        index!(
            storage_backend,
            Category::StorageBackend,
            storage_backend,
            StorageBackendPluginIndices
        );
        Ok(Self {
            manifest,
            sha256,
            code: PluginCode::Wasm(WasmCode { pre, exports }),
            from_cache,
        })
    }
}
