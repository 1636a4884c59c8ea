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
    /// Sets `key`, with an optional time to live. Creating a key (or
    /// reviving an expired one) fails with `QuotaExceeded` when (tenant,
    /// plugin) holds `MAX_KEYS` live keys; the check and the write are one
    /// atomic step.
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
    /// missing or expired); the new value. Creating the counter counts
    /// against the key quota exactly as `set` does.
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
        // The quota is checked by the writing statement itself (atomic; see
        // `store::plugin_kv`), never by a separate count before the write.
        let written = self
            .0
            .kv_set(
                tenant,
                plugin,
                key,
                value,
                expiry(ttl),
                crate::time::Timestamp::now(),
                MAX_KEYS,
            )
            .await
            .map_err(unavailable)?;
        if written {
            Ok(())
        } else {
            Err(KvFailure::QuotaExceeded)
        }
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
                MAX_KEYS,
            )
            .await
            .map_err(unavailable)?
        {
            crate::store::CounterOutcome::Value(v) => Ok(v),
            crate::store::CounterOutcome::NotACounter => Err(KvFailure::NotACounter),
            crate::store::CounterOutcome::QuotaExceeded => Err(KvFailure::QuotaExceeded),
        }
    }
}

/// An in-process backend (the local runner; tests of plugins). Enforces
/// the same key quota as the database, under its one lock.
#[derive(Debug)]
pub struct MemoryKv {
    entries: std::sync::Mutex<std::collections::BTreeMap<MemoryKey, MemoryEntry>>,
    max_keys: usize,
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self::with_max_keys(MAX_KEYS as usize)
    }
}

/// (tenant, plugin, key).
type MemoryKey = (Uuid, String, String);
/// (bytes, counter, expiry).
type MemoryEntry = (Vec<u8>, Option<i64>, Option<std::time::Instant>);

impl MemoryKv {
    /// An empty store allowing `max_keys` live keys per (tenant, plugin).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            entries: Default::default(),
            max_keys,
        }
    }

    fn live(e: &MemoryEntry) -> bool {
        e.2.is_none_or(|t| t > std::time::Instant::now())
    }

    /// Whether `k` may be written: it is live already (an overwrite adds no
    /// key), or its (tenant, plugin) holds fewer than `max_keys` live keys.
    /// Called with the lock held, so check and write are one step.
    fn within_quota(
        &self,
        m: &std::collections::BTreeMap<MemoryKey, MemoryEntry>,
        k: &MemoryKey,
    ) -> bool {
        if m.get(k).is_some_and(Self::live) {
            return true;
        }
        let (tenant, plugin, _) = k;
        let live = m
            .range((*tenant, plugin.clone(), String::new())..)
            .take_while(|((t, p, _), _)| t == tenant && p == plugin)
            .filter(|(_, e)| Self::live(e))
            .take(self.max_keys)
            .count();
        live < self.max_keys
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
                // 8 little-endian bytes, as the contract says.
                Some(c) => c.to_le_bytes().to_vec(),
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
        let mut m = self.entries.lock().expect("lock");
        let k = (tenant, plugin.to_string(), key.to_string());
        if !self.within_quota(&m, &k) {
            return Err(KvFailure::QuotaExceeded);
        }
        m.insert(k, (value.to_vec(), None, expires));
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
            None if !self.within_quota(&m, &k) => return Err(KvFailure::QuotaExceeded),
            None => (delta, ttl_if_created.map(|t| std::time::Instant::now() + t)),
            Some((_, Some(c), exp)) => (c.checked_add(delta).ok_or(KvFailure::NotACounter)?, exp),
            Some((_, None, _)) => return Err(KvFailure::NotACounter),
        };
        m.insert(k, (Vec::new(), Some(value), expires));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_counter_reads_as_eight_little_endian_bytes() {
        let kv = MemoryKv::default();
        let t = Uuid::new_v4();
        assert_eq!(kv.increment(t, "p", "n", 41, None).await.unwrap(), 41);
        assert_eq!(kv.increment(t, "p", "n", 1, None).await.unwrap(), 42);
        assert_eq!(
            kv.get(t, "p", "n").await.unwrap(),
            Some(42i64.to_le_bytes().to_vec())
        );
    }

    #[tokio::test]
    async fn the_memory_backend_enforces_the_quota_for_set_and_increment() {
        let kv = MemoryKv::with_max_keys(2);
        let (t, other) = (Uuid::new_v4(), Uuid::new_v4());
        kv.set(t, "p", "a", b"1", None).await.unwrap();
        assert_eq!(kv.increment(t, "p", "b", 3, None).await.unwrap(), 3);
        assert!(matches!(
            kv.set(t, "p", "c", b"1", None).await,
            Err(KvFailure::QuotaExceeded)
        ));
        assert!(matches!(
            kv.increment(t, "p", "c", 1, None).await,
            Err(KvFailure::QuotaExceeded)
        ));
        // Existing keys stay writable; other scopes have their own quota.
        kv.set(t, "p", "a", b"2", None).await.unwrap();
        assert_eq!(kv.increment(t, "p", "b", 1, None).await.unwrap(), 4);
        kv.set(t, "q", "c", b"1", None).await.unwrap();
        kv.set(other, "p", "c", b"1", None).await.unwrap();
        // Deleting frees a slot; expired keys do not count.
        assert!(kv.delete(t, "p", "a").await.unwrap());
        kv.set(t, "p", "c", b"1", Some(Duration::from_millis(1)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(kv.increment(t, "p", "d", 1, None).await.unwrap(), 1);
        let page = kv.list_prefix(t, "p", "", None, 10).await.unwrap();
        assert_eq!(page.keys, vec!["b", "d"]);
    }
}
