//! storage-backend: a tenant's storage-backend plugin takes over the
//! key-value capability of that tenant's other plugins. Each calling plugin
//! gets its own namespace (`plugin:<id>`); the backend's own key-value
//! import is served by the built-in store, never by itself. Errors
//! propagate (no fallback to the built-in store: that would split data).

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use std::sync::{Arc, Weak};
use std::time::Duration;

use uuid::Uuid;

use super::super::activation::{Activation, OutputSize};
use super::super::bindings::v0_1_0::storage_backend::exports::vaultaris::plugin::storage_backend as api;
use super::super::error::PluginCallError;
use super::super::kv::{KeyPageResult, KeyValueBackend, KvFailure, MAX_VALUE_BYTES, check_key};
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;

impl OutputSize for Option<api::Entry> {
    fn output_size(&self) -> usize {
        self.as_ref().map_or(0, |e| e.value.len())
    }
}
impl OutputSize for bool {
    fn output_size(&self) -> usize {
        1
    }
}
impl OutputSize for i64 {
    fn output_size(&self) -> usize {
        8
    }
}
impl OutputSize for api::KeyPage {
    fn output_size(&self) -> usize {
        self.keys.iter().map(|k| k.len()).sum::<usize>()
            + self.next_cursor.as_ref().map_or(0, |c| c.len())
    }
}

/// The key-value backend of a tenant whose storage-backend plugin is active.
#[derive(Debug)]
pub struct PluginStorageKv {
    /// The runtime (weak: the runtime owns the activations that own this).
    pub runtime: Weak<PluginRuntime>,
    /// The tenant.
    pub tenant: Uuid,
}

fn millis_from_now(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| {
        chrono::Utc::now()
            .timestamp_millis()
            .saturating_add(t.as_millis().min(i64::MAX as u128) as i64)
    })
}

impl PluginStorageKv {
    fn backend(&self) -> Result<(Arc<PluginRuntime>, Arc<Activation>), KvFailure> {
        let rt = self
            .runtime
            .upgrade()
            .ok_or_else(|| KvFailure::Unavailable("the server is shutting down".into()))?;
        let act = rt
            .active(self.tenant, Category::StorageBackend)
            .into_iter()
            .next()
            .ok_or_else(|| {
                KvFailure::Unavailable("the tenant's storage backend is not active".into())
            })?;
        Ok((rt, act))
    }
}

fn failed(rt: &PluginRuntime, act: &Activation, e: PluginCallError) -> KvFailure {
    rt.report_failure(act, Category::StorageBackend, &e, FailureMode::Closed);
    KvFailure::Unavailable(format!(
        "storage backend {}: {}",
        act.context.plugin_id,
        e.code()
    ))
}

/// Calls one storage-backend function of either kind of instance: the
/// WebAssembly export `$call` or the native function `$native`, with the
/// same arguments after the call context.
macro_rules! call_backend {
    ($self:ident, $size:expr, $call:ident / $native:ident ($($arg:expr),* $(,)?)) => {{
        let (rt, act) = $self.backend()?;
        let (result, _) = act
            .invoke(rt.engine(), Category::StorageBackend, &super::super::request_id::current(), $size, |inst, cx| {
                Box::pin(async move {
                    let inst = match inst {
                        PluginInstance::Native(n) => {
                            return n.call(native_fn::$native, &(&cx, $($arg),*)).await
                        }
                        PluginInstance::Wasm(w) => w,
                    };
                    let Some(e) = &inst.exports.storage_backend else {
                        return Err(wasmtime::format_err!("storage-backend export missing"));
                    };
                    e.vaultaris_plugin_storage_backend()
                        .$call(&mut inst.store, &cx, $($arg),*)
                        .await
                })
            })
            .await;
        result.map_err(|e| failed(&rt, &act, e))
    }};
}

#[async_trait::async_trait]
impl KeyValueBackend for PluginStorageKv {
    async fn get(
        &self,
        _tenant: Uuid,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvFailure> {
        check_key(key)?;
        let (ns, key) = (format!("plugin:{plugin}"), key.to_string());
        let entry = call_backend!(self, key.len(), call_get / STORAGE_BACKEND_GET(&ns, &key))?;
        let now = chrono::Utc::now().timestamp_millis();
        Ok(entry
            .filter(|e| e.expires_at.is_none_or(|t| t > now))
            .map(|e| e.value))
    }

    async fn set(
        &self,
        _tenant: Uuid,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), KvFailure> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvFailure::ValueTooLarge);
        }
        let (ns, key, value, expires) = (
            format!("plugin:{plugin}"),
            key.to_string(),
            value.to_vec(),
            millis_from_now(ttl),
        );
        let size = key.len() + value.len();
        call_backend!(
            self,
            size,
            call_set / STORAGE_BACKEND_SET(&ns, &key, &value, expires)
        )
    }

    async fn delete(&self, _tenant: Uuid, plugin: &str, key: &str) -> Result<bool, KvFailure> {
        check_key(key)?;
        let (ns, key) = (format!("plugin:{plugin}"), key.to_string());
        call_backend!(
            self,
            key.len(),
            call_delete / STORAGE_BACKEND_DELETE(&ns, &key)
        )
    }

    async fn list_prefix(
        &self,
        _tenant: Uuid,
        plugin: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPageResult, KvFailure> {
        let (ns, prefix, cursor) = (
            format!("plugin:{plugin}"),
            prefix.to_string(),
            cursor.map(str::to_string),
        );
        let limit = limit.clamp(1, 1000);
        let page = call_backend!(
            self,
            prefix.len(),
            call_list_prefix / STORAGE_BACKEND_LIST_PREFIX(&ns, &prefix, cursor.as_deref(), limit)
        )?;
        Ok(KeyPageResult {
            keys: page.keys.into_iter().take(limit as usize).collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn increment(
        &self,
        _tenant: Uuid,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64, KvFailure> {
        check_key(key)?;
        let (ns, key, expires) = (
            format!("plugin:{plugin}"),
            key.to_string(),
            millis_from_now(ttl_if_created),
        );
        call_backend!(
            self,
            key.len(),
            call_increment / STORAGE_BACKEND_INCREMENT(&ns, &key, delta, expires)
        )
    }
}
