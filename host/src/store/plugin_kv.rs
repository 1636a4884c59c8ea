//! The plugins' key-value store, scoped to (tenant, plugin). Expired
//! entries read as absent and are purged by the periodic purge task.
//!
//! The key quota (most live keys per (tenant, plugin)) is enforced here, by
//! the statement that writes, so that it holds for `kv_set` and
//! `kv_increment` alike and under concurrency:
//! - overwriting a live key never changes the number of keys, so it is one
//!   unconditional `UPDATE` (the common case: counters of a rate limiter);
//! - creating a key (or reviving an expired one) runs in a transaction that
//!   first takes a per-(tenant, plugin) lock (an upsert of the hidden
//!   `QUOTA_LOCK_KEY` row) and then inserts only
//!   `WHERE (SELECT COUNT(*) ...) < quota`. A conditional insert alone is
//!   not enough on PostgreSQL: under READ COMMITTED two transactions can
//!   both count `quota - 1` and both insert. The lock row serialises them
//!   (row lock on PostgreSQL; on SQLite the upsert takes the database's
//!   write lock at the transaction's first statement), and the count then
//!   sees every committed key. The same SQL runs on both backends.

use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::time::Timestamp;

/// The key of the row that serialises key creation per (tenant, plugin).
/// Plugins can never name it (`plugins::kv::check_key` refuses empty
/// keys), and it is stored already expired, so every query that filters
/// live entries (get, count, list) skips it and the purge task removes it
/// once idle; the next creation recreates it.
const QUOTA_LOCK_KEY: &str = "";

/// Takes the per-(tenant, plugin) creation lock; `$1` tenant, `$2` plugin,
/// `$3` `QUOTA_LOCK_KEY`, `$4` an instant in the past. `DO UPDATE` (not
/// `DO NOTHING`) so that PostgreSQL locks the existing row until commit.
const LOCK_SQL: &str = "INSERT INTO plugin_kv (tenant_id, plugin_id, key, value, counter, expires_at) \
     VALUES ($1, $2, $3, NULL, 0, $4) \
     ON CONFLICT (tenant_id, plugin_id, key) DO UPDATE SET counter = plugin_kv.counter";

/// The quota condition of a creating insert, as a literal for `concat!`:
/// `$1` tenant, `$2` plugin, `$3` key, `$6` now, `$7` the quota. True when
/// the key is live already (an overwrite adds no key) or when fewer than
/// `quota` keys are live.
macro_rules! within_quota {
    () => {
        " WHERE EXISTS (SELECT 1 FROM plugin_kv WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3 \
                 AND (expires_at IS NULL OR expires_at > $6)) \
           OR (SELECT COUNT(*) FROM plugin_kv WHERE tenant_id = $1 AND plugin_id = $2 \
               AND (expires_at IS NULL OR expires_at > $6)) < $7 "
    };
}

/// An instant long past: the lock row's expiry.
fn long_ago() -> Timestamp {
    Timestamp(chrono::DateTime::UNIX_EPOCH)
}

/// What `kv_increment` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOutcome {
    /// The new value.
    Value(i64),
    /// The key holds bytes, not a counter.
    NotACounter,
    /// The key did not exist (or had expired) and (tenant, plugin) holds
    /// the most keys allowed: nothing was written.
    QuotaExceeded,
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
            // A counter reads as 8 little-endian bytes (the contract's
            // `increment` documentation; the SDK's `get_counter` decodes it).
            Some((None, Some(c))) => Some(c.to_le_bytes().to_vec()),
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

    /// Sets `key` to bytes, unless that would make (tenant, plugin) hold
    /// more than `max_keys` live keys: `false` then, and nothing written.
    /// Atomic under concurrency (see the module documentation).
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_set(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
        max_keys: i64,
    ) -> StoreResult<bool> {
        // Overwriting a live key: the number of keys does not change.
        let updated = on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE plugin_kv SET value = $4, counter = NULL, expires_at = $5 \
                 WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3 \
                 AND (expires_at IS NULL OR expires_at > $6)",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated > 0 {
            return Ok(true);
        }
        // Creating (or reviving) a key: under the creation lock, within quota.
        let inserted = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_SQL)
                .bind(tenant)
                .bind(plugin)
                .bind(QUOTA_LOCK_KEY)
                .bind(long_ago())
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query(concat!(
                "INSERT INTO plugin_kv (tenant_id, plugin_id, key, value, counter, expires_at) \
                 SELECT $1, $2, $3, $4, $8, $5",
                within_quota!(),
                "ON CONFLICT (tenant_id, plugin_id, key) DO UPDATE SET \
                   value = excluded.value, counter = NULL, expires_at = excluded.expires_at"
            ))
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(now)
            .bind(max_keys)
            .bind(None::<i64>)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(inserted > 0)
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
    /// key starts from 0 with `expires_at`, unless that would make (tenant,
    /// plugin) hold more than `max_keys` live keys (`QuotaExceeded`, nothing
    /// written). Atomic under concurrency (see the module documentation).
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_increment(
        &self,
        tenant: Uuid,
        plugin: &str,
        key: &str,
        delta: i64,
        expires_at: Option<Timestamp>,
        now: Timestamp,
        max_keys: i64,
    ) -> StoreResult<CounterOutcome> {
        // A live counter: one statement, no new key.
        let updated: Option<(i64,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "UPDATE plugin_kv SET counter = counter + $4 \
                 WHERE tenant_id = $1 AND plugin_id = $2 AND key = $3 AND counter IS NOT NULL \
                 AND (expires_at IS NULL OR expires_at > $5) \
                 RETURNING counter",
            )
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .bind(delta)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        if let Some((c,)) = updated {
            return Ok(CounterOutcome::Value(c));
        }
        // Missing, expired, holding bytes, or created meanwhile: under the
        // creation lock, within quota. A live row (bytes, or a counter
        // created since the first statement) passes the quota condition and
        // takes the `DO UPDATE` branch.
        let row: Option<(Option<i64>, Option<Vec<u8>>)> = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_SQL)
                .bind(tenant)
                .bind(plugin)
                .bind(QUOTA_LOCK_KEY)
                .bind(long_ago())
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query_as(concat!(
                "INSERT INTO plugin_kv (tenant_id, plugin_id, key, value, counter, expires_at) \
                 SELECT $1, $2, $3, $8, $4, $5",
                within_quota!(),
                "ON CONFLICT (tenant_id, plugin_id, key) DO UPDATE SET \
                   counter = CASE WHEN plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= $6 THEN $4 \
                                  WHEN plugin_kv.value IS NOT NULL THEN NULL \
                                  ELSE plugin_kv.counter + $4 END, \
                   value = CASE WHEN plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= $6 THEN NULL \
                                ELSE plugin_kv.value END, \
                   expires_at = CASE WHEN plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= $6 THEN $5 \
                                     ELSE plugin_kv.expires_at END \
                 RETURNING counter, value"
            ))
            .bind(tenant)
            .bind(plugin)
            .bind(key)
            .bind(delta)
            .bind(expires_at)
            .bind(now)
            .bind(max_keys)
            .bind(None::<Vec<u8>>)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            row
        });
        Ok(match row {
            None => CounterOutcome::QuotaExceeded,
            Some((Some(c), None)) => CounterOutcome::Value(c),
            Some(_) => CounterOutcome::NotACounter,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::kv::{DatabaseKv, KeyValueBackend, KvFailure, MAX_KEYS};
    use crate::store::StoreOptions;

    /// A fresh database with one tenant: PostgreSQL when
    /// `VAULTARIS_TEST_POSTGRES_URL` names a server (a new database on it,
    /// dropped by `finish`), otherwise a SQLite file.
    struct Fresh {
        store: Store,
        tenant: Uuid,
        pg: Option<(String, String)>,
    }

    impl Fresh {
        async fn new() -> Self {
            use sqlx::Connection;
            let id = Uuid::new_v4().simple().to_string();
            let (url, pg) = match std::env::var("VAULTARIS_TEST_POSTGRES_URL") {
                Ok(admin) if !admin.is_empty() => {
                    let name = format!("vaultaris_kv_{id}");
                    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    conn.close().await.ok();
                    let mut url = url::Url::parse(&admin).unwrap();
                    url.set_path(&name);
                    (url.to_string(), Some((admin, name)))
                }
                _ => {
                    let dir = std::env::temp_dir().join(format!("vaultaris-kv-{id}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    (format!("sqlite://{}", dir.join("kv.db").display()), None)
                }
            };
            let store = Store::open(&StoreOptions {
                url,
                max_connections: 8,
            })
            .await
            .unwrap();
            let tenant = Uuid::new_v4();
            on_pool!(&store.db, |pool| {
                sqlx::query(
                    "INSERT INTO tenants (id, name, slug, settings, created_at, updated_at) \
                     VALUES ($1, 'kv', $2, '{}', $3, $3)",
                )
                .bind(tenant)
                .bind(format!("kv-{id}"))
                .bind(Timestamp::now())
                .execute(pool)
                .await
                .unwrap();
            });
            Self { store, tenant, pg }
        }

        /// Inserts `n` counters `fill-<i>` for `plugin` in one statement.
        async fn fill(&self, plugin: &str, n: i64) {
            on_pool!(&self.store.db, |pool| {
                sqlx::query(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3) \
                     INSERT INTO plugin_kv (tenant_id, plugin_id, key, value, counter, expires_at) \
                     SELECT $1, $2, 'fill-' || CAST(i AS TEXT), NULL, 1, NULL FROM n",
                )
                .bind(self.tenant)
                .bind(plugin)
                .bind(n)
                .execute(pool)
                .await
                .unwrap();
            });
        }

        async fn finish(self) {
            self.store.close().await;
            if let Some((admin, name)) = self.pg {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut conn)
                    .await
                    .ok();
            }
        }
    }

    #[tokio::test]
    async fn a_counter_reads_as_eight_little_endian_bytes() {
        let f = Fresh::new().await;
        let (s, t) = (&f.store, f.tenant);
        let now = Timestamp::now();
        assert_eq!(
            s.kv_increment(t, "p", "n", 42, None, now, 10)
                .await
                .unwrap(),
            CounterOutcome::Value(42)
        );
        assert_eq!(
            s.kv_get(t, "p", "n", now).await.unwrap(),
            Some(42i64.to_le_bytes().to_vec())
        );
        f.finish().await;
    }

    #[tokio::test]
    async fn the_quota_holds_for_set_and_increment() {
        let f = Fresh::new().await;
        let (s, t) = (&f.store, f.tenant);
        let now = Timestamp::now();
        let later = now.plus_seconds(60);
        assert!(s.kv_set(t, "p", "a", b"1", None, now, 3).await.unwrap());
        assert!(
            s.kv_set(t, "p", "b", b"2", Some(now.plus_seconds(30)), now, 3)
                .await
                .unwrap()
        );
        assert_eq!(
            s.kv_increment(t, "p", "c", 5, None, now, 3).await.unwrap(),
            CounterOutcome::Value(5)
        );
        // Full: neither a new key nor a new counter.
        assert!(!s.kv_set(t, "p", "d", b"4", None, now, 3).await.unwrap());
        assert_eq!(
            s.kv_increment(t, "p", "e", 1, None, now, 3).await.unwrap(),
            CounterOutcome::QuotaExceeded
        );
        assert_eq!(s.kv_get(t, "p", "d", now).await.unwrap(), None);
        assert_eq!(s.kv_get(t, "p", "e", now).await.unwrap(), None);
        // Existing keys stay writable at the quota.
        assert!(s.kv_set(t, "p", "a", b"x", None, now, 3).await.unwrap());
        assert_eq!(
            s.kv_increment(t, "p", "c", 1, None, now, 3).await.unwrap(),
            CounterOutcome::Value(6)
        );
        assert_eq!(
            s.kv_increment(t, "p", "a", 1, None, now, 3).await.unwrap(),
            CounterOutcome::NotACounter
        );
        // Another plugin of the tenant has its own quota.
        assert!(s.kv_set(t, "q", "d", b"4", None, now, 3).await.unwrap());
        // Expired keys do not count; reviving one counts as creating it.
        assert_eq!(s.kv_count(t, "p", later).await.unwrap(), 2);
        assert!(s.kv_set(t, "p", "d", b"4", None, later, 3).await.unwrap());
        assert!(!s.kv_set(t, "p", "b", b"2", None, later, 3).await.unwrap());
        assert_eq!(
            s.kv_increment(t, "p", "b", 1, None, later, 3)
                .await
                .unwrap(),
            CounterOutcome::QuotaExceeded
        );
        // Deleting frees a slot.
        assert!(s.kv_delete(t, "p", "a", later).await.unwrap());
        assert_eq!(
            s.kv_increment(t, "p", "b", 2, None, later, 3)
                .await
                .unwrap(),
            CounterOutcome::Value(2)
        );
        assert_eq!(s.kv_count(t, "p", later).await.unwrap(), 3);
        // The creation lock row is invisible to listing.
        let keys = s
            .kv_list_prefix(t, "p", "", None, 100, later)
            .await
            .unwrap();
        assert_eq!(keys, vec!["b", "c", "d"]);
        f.finish().await;
    }

    /// Reviewers' findings: `increment` created keys without the quota
    /// check, and `set` checked the count before inserting, so concurrent
    /// calls could all pass the check. Both through the real backend.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_database_backend_quota_cannot_be_bypassed() {
        let f = Fresh::new().await;
        let t = f.tenant;
        let kv = std::sync::Arc::new(DatabaseKv(f.store.clone()));
        f.fill("p", MAX_KEYS - 4).await;
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let kv = kv.clone();
                tokio::spawn(async move {
                    let key = format!("new-{i}");
                    if i % 2 == 0 {
                        kv.set(t, "p", &key, b"v", None).await.map(|_| ())
                    } else {
                        kv.increment(t, "p", &key, 1, None).await.map(|_| ())
                    }
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => ok += 1,
                Err(KvFailure::QuotaExceeded) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok, 4, "exactly the free slots were taken");
        let now = Timestamp::now();
        assert_eq!(f.store.kv_count(t, "p", now).await.unwrap(), MAX_KEYS);
        assert!(matches!(
            kv.increment(t, "p", "one-more", 1, None).await,
            Err(KvFailure::QuotaExceeded)
        ));
        assert!(matches!(
            kv.set(t, "p", "one-more", b"v", None).await,
            Err(KvFailure::QuotaExceeded)
        ));
        // At the quota, existing keys and counters still work.
        assert_eq!(kv.increment(t, "p", "fill-1", 1, None).await.unwrap(), 2);
        kv.set(t, "p", "fill-2", b"v", None).await.unwrap();
        f.finish().await;
    }
}
