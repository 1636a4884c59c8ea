//! Category `storage-backend`: the pluggable store behind the `key-value`
//! capability of a tenant's other plugins. See `docs/storage-backend.md`.
//! Errors propagate to the calling plugin as `kv-error::unavailable`.

use std::marker::PhantomData;

use crate::bindings::storage_backend as raw;
use crate::types::{CallContext, PluginError, Timestamp};

/// A stored value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The value bytes.
    pub value: Vec<u8>,
    /// When the entry expires, if it has a TTL.
    pub expires_at: Option<Timestamp>,
}

/// One page of keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Unexpired keys with the prefix, ascending byte order.
    pub keys: Vec<String>,
    /// Opaque cursor for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// The size of one namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NamespaceUsage {
    /// Number of keys.
    pub keys: u64,
    /// Total value bytes.
    pub bytes: u64,
}

/// A storage-backend plugin. `namespace` identifies the calling plugin;
/// keys of different namespaces must never mix. Entries expired at
/// `ctx.now` must behave as absent.
pub trait StorageBackend: crate::Plugin {
    /// The entry under (namespace, key), if present and unexpired.
    fn get(
        &self,
        ctx: &CallContext,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Entry>, PluginError>;

    /// Stores the value, replacing any previous one.
    fn set(
        &self,
        ctx: &CallContext,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        expires_at: Option<Timestamp>,
    ) -> Result<(), PluginError>;

    /// Deletes the key; `true` if an unexpired entry existed.
    fn delete(&self, ctx: &CallContext, namespace: &str, key: &str) -> Result<bool, PluginError>;

    /// Lists unexpired keys with the prefix, at most `limit`, after
    /// `cursor`.
    fn list_prefix(
        &self,
        ctx: &CallContext,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, PluginError>;

    /// Atomically adds `delta` to the 8-byte little-endian counter and
    /// returns the new value (atomic across all server nodes).
    fn increment(
        &self,
        ctx: &CallContext,
        namespace: &str,
        key: &str,
        delta: i64,
        expires_at_if_created: Option<Timestamp>,
    ) -> Result<i64, PluginError>;

    /// Unexpired keys and value bytes in the namespace (may be approximate).
    fn usage(&self, ctx: &CallContext, namespace: &str) -> Result<NamespaceUsage, PluginError>;
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: StorageBackend> raw::Guest for Export<T> {
    fn get(
        ctx: raw::CallContext,
        namespace: String,
        key: String,
    ) -> Result<Option<raw::Entry>, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin
            .get(&ctx.into(), &namespace, &key)?
            .map(|e| raw::Entry {
                value: e.value,
                expires_at: e.expires_at,
            }))
    }

    fn set(
        ctx: raw::CallContext,
        namespace: String,
        key: String,
        value: Vec<u8>,
        expires_at: Option<Timestamp>,
    ) -> Result<(), raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.set(&ctx.into(), &namespace, &key, value, expires_at)?)
    }

    fn delete(
        ctx: raw::CallContext,
        namespace: String,
        key: String,
    ) -> Result<bool, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.delete(&ctx.into(), &namespace, &key)?)
    }

    fn list_prefix(
        ctx: raw::CallContext,
        namespace: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<raw::KeyPage, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        let page =
            plugin.list_prefix(&ctx.into(), &namespace, &prefix, cursor.as_deref(), limit)?;
        Ok(raw::KeyPage {
            keys: page.keys,
            next_cursor: page.next_cursor,
        })
    }

    fn increment(
        ctx: raw::CallContext,
        namespace: String,
        key: String,
        delta: i64,
        expires_at_if_created: Option<Timestamp>,
    ) -> Result<i64, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.increment(&ctx.into(), &namespace, &key, delta, expires_at_if_created)?)
    }

    fn usage(
        ctx: raw::CallContext,
        namespace: String,
    ) -> Result<raw::NamespaceUsage, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        let u = plugin.usage(&ctx.into(), &namespace)?;
        Ok(raw::NamespaceUsage {
            keys: u.keys,
            bytes: u.bytes,
        })
    }
}
