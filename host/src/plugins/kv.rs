//! The key-value capability's backend: a store scoped to (tenant, plugin).
//! The built-in backend is the database (`store::plugin_kv`); a tenant's
//! storage-backend plugin can take its place.

use std::time::Duration;

use uuid::Uuid;

/// Largest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one (tenant, plugin) may hold.
pub const MAX_KEYS: i64 = 10_000;

/// Why a key-value operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KvFailure {
    /// The key is empty, too long or not UTF-8 printable.
    #[error("invalid key")]
    InvalidKey,
    /// The value exceeds `MAX_VALUE_BYTES`.
    #[error("value too large")]
    ValueTooLarge,
    /// The (tenant, plugin) holds `MAX_KEYS` keys already.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// `increment` on a key that holds bytes.
    #[error("not a counter")]
    NotACounter,
    /// The backend failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// One page of keys.
#[derive(Debug, Clone, Default)]
pub struct KeyPageResult {
    /// Keys, ascending.
    pub keys: Vec<String>,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
}

/// Operations of the key-value capability, scoped by the caller.
#[async_trait::async_trait]
pub trait KeyValueBackend: Send + Sync + std::fmt::Debug {
    /// The value of `key`, if set and not expired.
    async fn get(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvFailure>;
    /// Sets `key`, with an optional time to live.
    async fn set(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), KvFailure>;
    /// Deletes `key`; whether it existed.
    async fn delete(&self, tenant: Uuid, plugin: &str, key: &str) -> Result<bool, KvFailure>;
    /// Keys starting with `prefix`, after `cursor`.
    async fn list_prefix(
        &self,
        tenant: Uuid,
        plugin: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPageResult, KvFailure>;
    /// Adds `delta` to the counter at `key` (created at 0, with the TTL, if
    /// missing or expired); the new value.
    async fn increment(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64, KvFailure>;
}

/// Checks a key's shape.
pub fn check_key(key: &str) -> Result<(), KvFailure> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.chars().any(|c| c.is_control()) {
        return Err(KvFailure::InvalidKey);
    }
    Ok(())
}

/// The built-in backend: the server's database.
#[derive(Debug, Clone)]
pub struct DatabaseKv(pub crate::store::Store);

fn unavailable(e: crate::store::StoreError) -> KvFailure {
    tracing::warn!(error = %e, "plugin key-value store failed");
    KvFailure::Unavailable("the key-value store failed".into())
}

fn expiry(ttl: Option<Duration>) -> Option<crate::time::Timestamp> {
    // Guest-supplied: an absurd TTL saturates (a century) instead of
    // overflowing the date arithmetic.
    const MAX_TTL_MS: i64 = 100 * 365 * 24 * 3600 * 1000;
    ttl.map(|t| {
        let ms = i64::try_from(t.as_millis())
            .unwrap_or(i64::MAX)
            .min(MAX_TTL_MS);
        let now = crate::time::Timestamp::now();
        crate::time::Timestamp(now.0 + chrono::Duration::milliseconds(ms))
    })
}

#[async_trait::async_trait]
impl KeyValueBackend for DatabaseKv {
    async fn get(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvFailure> {
        check_key(key)?;
        self.0
            .kv_get(tenant, plugin, key, crate::time::Timestamp::now())
            .await
            .map_err(unavailable)
    }

    async fn set(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), KvFailure> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvFailure::ValueTooLarge);
        }
        let now = crate::time::Timestamp::now();
        if self
            .0
            .kv_get(tenant, plugin, key, now)
            .await
            .map_err(unavailable)?
            .is_none()
            && self
                .0
                .kv_count(tenant, plugin, now)
                .await
                .map_err(unavailable)?
                >= MAX_KEYS
        {
            return Err(KvFailure::QuotaExceeded);
        }
        self.0
            .kv_set(tenant, plugin, key, value, expiry(ttl))
            .await
            .map_err(unavailable)
    }

    async fn delete(&self, tenant: Uuid, plugin: &str, key: &str) -> Result<bool, KvFailure> {
        check_key(key)?;
        self.0
            .kv_delete(tenant, plugin, key, crate::time::Timestamp::now())
            .await
            .map_err(unavailable)
    }

    async fn list_prefix(
        &self,
        tenant: Uuid,
        plugin: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPageResult, KvFailure> {
        let limit = limit.clamp(1, 1000);
        let mut keys = self
            .0
            .kv_list_prefix(
                tenant,
                plugin,
                prefix,
                cursor,
                limit + 1,
                crate::time::Timestamp::now(),
            )
            .await
            .map_err(unavailable)?;
        let next_cursor = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPageResult { keys, next_cursor })
    }

    async fn increment(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64, KvFailure> {
        check_key(key)?;
        match self
            .0
            .kv_increment(
                tenant,
                plugin,
                key,
                delta,
                expiry(ttl_if_created),
                crate::time::Timestamp::now(),
            )
            .await
            .map_err(unavailable)?
        {
            crate::store::CounterOutcome::Value(v) => Ok(v),
            crate::store::CounterOutcome::NotACounter => Err(KvFailure::NotACounter),
        }
    }
}

/// An in-process backend (the local runner; tests of plugins).
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: std::sync::Mutex<std::collections::BTreeMap<MemoryKey, MemoryEntry>>,
}

/// (tenant, plugin, key).
type MemoryKey = (Uuid, String, String);
/// (bytes, counter, expiry).
type MemoryEntry = (Vec<u8>, Option<i64>, Option<std::time::Instant>);

impl MemoryKv {
    fn live(e: &MemoryEntry) -> bool {
        e.2.is_none_or(|t| t > std::time::Instant::now())
    }
}

#[async_trait::async_trait]
impl KeyValueBackend for MemoryKv {
    async fn get(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvFailure> {
        check_key(key)?;
        let m = self.entries.lock().expect("lock");
        Ok(m.get(&(tenant, plugin.to_string(), key.to_string()))
            .filter(|e| Self::live(e))
            .map(|e| match e.1 {
                Some(c) => c.to_string().into_bytes(),
                None => e.0.clone(),
            }))
    }

    async fn set(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), KvFailure> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvFailure::ValueTooLarge);
        }
        let expires = ttl.map(|t| std::time::Instant::now() + t);
        self.entries.lock().expect("lock").insert(
            (tenant, plugin.to_string(), key.to_string()),
            (value.to_vec(), None, expires),
        );
        Ok(())
    }

    async fn delete(&self, tenant: Uuid, plugin: &str, key: &str) -> Result<bool, KvFailure> {
        check_key(key)?;
        Ok(self
            .entries
            .lock()
            .expect("lock")
            .remove(&(tenant, plugin.to_string(), key.to_string()))
            .is_some_and(|e| Self::live(&e)))
    }

    async fn list_prefix(
        &self,
        tenant: Uuid,
        plugin: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPageResult, KvFailure> {
        let m = self.entries.lock().expect("lock");
        let mut keys: Vec<String> = m
            .iter()
            .filter(|((t, p, k), e)| {
                *t == tenant
                    && p == plugin
                    && k.starts_with(prefix)
                    && cursor.is_none_or(|c| k.as_str() > c)
                    && Self::live(e)
            })
            .map(|((_, _, k), _)| k.clone())
            .take(limit.clamp(1, 1000) as usize + 1)
            .collect();
        let next_cursor = if keys.len() > limit.clamp(1, 1000) as usize {
            keys.pop();
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPageResult { keys, next_cursor })
    }

    async fn increment(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl_if_created: Option<Duration>,
    ) -> Result<i64, KvFailure> {
        check_key(key)?;
        let mut m = self.entries.lock().expect("lock");
        let k = (tenant, plugin.to_string(), key.to_string());
        let entry = m.get(&k).filter(|e| Self::live(e)).cloned();
        let (value, expires) = match entry {
            None => (delta, ttl_if_created.map(|t| std::time::Instant::now() + t)),
            Some((_, Some(c), exp)) => (c.checked_add(delta).ok_or(KvFailure::NotACounter)?, exp),
            Some((_, None, _)) => return Err(KvFailure::NotACounter),
        };
        m.insert(k, (Vec::new(), Some(value), expires));
        Ok(value)
    }
}
