//! The plugins' key-value store, scoped to (tenant, plugin). Expired
//! entries read as absent and are purged by the periodic purge task.

use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::time::Timestamp;

/// What `kv_increment` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOutcome {
    /// The new value.
    Value(i64),
    /// The key holds bytes, not a counter.
    NotACounter,
}

impl Store {
    /// The bytes at `key`, if set, unexpired, and not a counter.
    pub async fn kv_get(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>, Option<i64>)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT value, counter FROM plugin_kv WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3 \
                 AND (expires_at IS NULL OR expires_at > $4)",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(match row {
            Some((Some(v), _)) => Some(v),
            // A counter reads as its decimal text.
            Some((None, Some(c))) => Some(c.to_string().into_bytes()),
            _ => None,
        })
    }

    /// Live keys of (tenant, plugin).
    pub async fn kv_count(&self, tenant: Uuid, plugin: &str, now: Timestamp) -> StoreResult<i64> {
        let (n,): (i64,) = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT COUNT(*) FROM plugin_kv WHERE tenant_id = $1 AND plugin_id = $2 \
                 AND (expires_at IS NULL OR expires_at > $3)",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(n)
    }

    /// Sets `key` to bytes.
    pub async fn kv_set(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
    ) -> StoreResult<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO plugin_kv (tenant_id, plugin_id, key, value, counter, expires_at) \
                 VALUES ($1, $2, $3, $4, NULL, $5) \
                 ON CONFLICT (tenant_id, plugin_id, key) DO UPDATE SET value = $4, counter = NULL, expires_at = $5",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deletes `key`; whether a live entry existed.
    pub async fn kv_delete(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let rows: Vec<(Option<Timestamp>,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "DELETE FROM plugin_kv WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3 RETURNING expires_at",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.iter().any(|(e,)| e.is_none_or(|e| e > now)))
    }

    /// Live keys starting with `prefix`, ascending, after `cursor`.
    pub async fn kv_list_prefix(
        &self,
        tenant: Uuid,
        plugin: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<String>> {
        // Prefix match by range, not LIKE: no escaping of % and _ needed.
        // The upper bound is the prefix followed by the highest code point.
        let upper = format!("{prefix}\u{10FFFF}");
        let after = cursor.unwrap_or("");
        let rows: Vec<(String,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT key FROM plugin_kv WHERE tenant_id = $1 AND plugin_id = $2 \
                 AND key >= $3 AND key < $4 AND key > $5 AND (expires_at IS NULL OR expires_at > $6) \
                 ORDER BY key LIMIT $7",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(prefix)
            .bind(&upper)
            .bind(after)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    /// Atomically adds `delta` to the counter at `key`; a missing or expired
    /// key starts from 0 with `expires_at`.
    pub async fn kv_increment(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        delta: i64,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<CounterOutcome> {
        let row: (Option<i64>, Option<Vec<u8>>) = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "INSERT INTO plugin_kv (tenant_id, plugin_id, key, value, counter, expires_at) \
                 VALUES ($1, $2, $3, NULL, $4, $5) \
                 ON CONFLICT (tenant_id, plugin_id, key) DO UPDATE SET \
                   counter = CASE WHEN plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= $6 THEN $4 \
                                  WHEN plugin_kv.value IS NOT NULL THEN NULL \
                                  ELSE plugin_kv.counter + $4 END, \
                   value = CASE WHEN plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= $6 THEN NULL \
                                ELSE plugin_kv.value END, \
                   expires_at = CASE WHEN plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= $6 THEN $5 \
                                     ELSE plugin_kv.expires_at END \
                 RETURNING counter, value",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .bind(delta)
            .bind(expires_at)
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(match row {
            (Some(c), None) => CounterOutcome::Value(c),
            _ => CounterOutcome::NotACounter,
        })
    }

    /// Removes expired entries; how many.
    pub async fn purge_expired_kv(&self, now: Timestamp) -> StoreResult<u64> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query("DELETE FROM plugin_kv WHERE expires_at IS NOT NULL AND expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
