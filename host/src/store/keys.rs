//! Signing keys (private halves sealed with the instance master key, or
//! encrypted by the tenant's encryption-provider plugin; the format of
//! `private_key_enc` is `crypto::field_encryption`'s, opaque here).
//!
//! Status life cycle: `active` (signs, in the JWKS; at most one per tenant
//! and algorithm, enforced by the partial unique index
//! `signing_keys_one_active`), `retiring` (verifies and stays in the JWKS
//! until `retire_after`), `retired` (gone). A `retiring` key past its
//! `retire_after` is treated as retired by every read and marked so by the
//! next rotation.

use uuid::Uuid;

use super::{Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, SigningKeyRecord};
use crate::time::Timestamp;

/// A stored key with the end of its overlap window.
#[derive(sqlx::FromRow)]
struct KeyRow {
    #[sqlx(flatten)]
    record: SigningKeyRecord,
    retire_after: Option<Timestamp>,
}

const KEY_COLUMNS: &str =
    "kid, tenant_id, algorithm, public_jwk, private_key_enc, status, created_at, retire_after";

/// Active keys first, then newest first.
const KEY_ORDER: &str =
    "ORDER BY CASE status WHEN 'active' THEN 0 ELSE 1 END, created_at DESC, kid";

/// Inserts a `SigningKeyRecord` through `$exec`.
macro_rules! insert_signing_key {
    ($exec:expr, $k:expr) => {{
        let k: &$crate::model::SigningKeyRecord = $k;
        sqlx::query(
            "INSERT INTO signing_keys (kid, tenant_id, algorithm, public_jwk, private_key_enc, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.kid)
        .bind(k.tenant_id)
        .bind(&k.algorithm)
        .bind(sqlx::types::Json(&k.public_jwk))
        .bind(&k.private_key_enc)
        .bind(&k.status)
        .bind(k.created_at)
        .execute($exec)
        .await?;
    }};
}
pub(crate) use insert_signing_key;

impl Store {
    /// Keys of a tenant that still verify at `now` (active, and retiring
    /// before their `retire_after`), active first, then newest first; each
    /// with its `retire_after`.
    pub async fn verifying_signing_keys(
        &self,
        tenant_id: Uuid,
        now: Timestamp,
    ) -> StoreResult<Vec<(SigningKeyRecord, Option<Timestamp>)>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE tenant_id = $1 \
             AND (status = 'active' OR (status = 'retiring' AND retire_after > $2)) {KEY_ORDER}"
        );
        let rows = on_pool!(&self.db, |pool| {
            sqlx::query_as::<_, KeyRow>(&sql)
                .bind(tenant_id)
                .bind(now)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| (r.record, r.retire_after))
            .collect())
    }

    /// Every key of a tenant, whatever its status (for the admin listing).
    pub async fn all_signing_keys(
        &self,
        tenant_id: Uuid,
    ) -> StoreResult<Vec<(SigningKeyRecord, Option<Timestamp>)>> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE tenant_id = $1 {KEY_ORDER}");
        let rows = on_pool!(&self.db, |pool| {
            sqlx::query_as::<_, KeyRow>(&sql)
                .bind(tenant_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| (r.record, r.retire_after))
            .collect())
    }

    /// Adds the first active key of an algorithm a tenant lacks. Answers
    /// `false`, writing nothing, when another writer (another node) added
    /// one first: the partial unique index on active keys turns the race
    /// into a no-op insert, and the caller re-reads.
    ///
    /// Not audited: this completes provisioning (recorded as the tenant's
    /// creation) for tenants made before every algorithm had a key; no
    /// principal acts. Rotation, the deliberate change, is audited.
    pub async fn add_missing_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        let done = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO signing_keys (kid, tenant_id, algorithm, public_jwk, private_key_enc, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'active', $6) ON CONFLICT DO NOTHING",
            )
            .bind(&key.kid)
            .bind(key.tenant_id)
            .bind(&key.algorithm)
            .bind(sqlx::types::Json(&key.public_jwk))
            .bind(&key.private_key_enc)
            .bind(key.created_at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Rotates: for each new key, the active key of its algorithm (if any)
    /// becomes `retiring` until `retire_after`, and the new key becomes
    /// active. Retiring keys already past their window are marked `retired`.
    /// One transaction, with `event` appended to the tenant's audit chain.
    pub async fn rotate_signing_keys(
        &self,
        tenant_id: Uuid,
        new_keys: &[SigningKeyRecord],
        now: Timestamp,
        retire_after: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            sqlx::query(
                "UPDATE signing_keys SET status = 'retired', retired_at = retire_after \
                 WHERE tenant_id = $1 AND status = 'retiring' AND retire_after <= $2",
            )
            .bind(tenant_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for key in new_keys {
                // Security: the new key can only come from this tenant's
                // rotation; a mismatched record is a programming error.
                if key.tenant_id != tenant_id || key.status != "active" {
                    return Err(StoreError::InvalidReference("key of another tenant".into()));
                }
                sqlx::query(
                    "UPDATE signing_keys SET status = 'retiring', retire_after = $3 \
                     WHERE tenant_id = $1 AND algorithm = $2 AND status = 'active'",
                )
                .bind(tenant_id)
                .bind(&key.algorithm)
                .bind(retire_after)
                .execute(&mut *tx)
                .await?;
                insert_signing_key!(&mut *tx, key);
            }
        });
        Ok(())
    }

    /// Replaces the stored private halves of some of a tenant's keys
    /// (re-encryption under another key, provider, or back under the master
    /// key), all or nothing, with `event` appended to the tenant's audit
    /// chain. Each change is `(kid, from, to)` and applies only if the row
    /// still holds `from`: a row changed meanwhile (by another node) fails
    /// the whole change with `Conflict`, and nothing is written.
    ///
    /// With `none_left_under` (a stored-text prefix, e.g. a plugin's
    /// `xp1.<plugin_id>.`), the change also fails with `Conflict` if,
    /// afterwards, any key still verifying at `now` is stored under that
    /// prefix: a caller about to disable a provider learns in the same
    /// transaction that a key sealed by it slipped in.
    pub async fn rewrap_signing_keys(
        &self,
        tenant_id: Uuid,
        changes: &[(String, String, String)],
        none_left_under: Option<&str>,
        now: Timestamp,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        // The prefix becomes a LIKE pattern: it must not hold wildcards.
        if none_left_under.is_some_and(|p| p.contains(['%', '_', '\\'])) {
            return Err(StoreError::InvalidReference("bad key prefix".into()));
        }
        audited_tx!(self, event, |tx| {
            for (kid, from, to) in changes {
                let n = sqlx::query(
                    "UPDATE signing_keys SET private_key_enc = $4 \
                     WHERE tenant_id = $1 AND kid = $2 AND private_key_enc = $3",
                )
                .bind(tenant_id)
                .bind(kid)
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    // Dropping the transaction rolls every change back.
                    return Err(StoreError::Conflict(format!(
                        "signing key {kid} changed meanwhile; try again"
                    )));
                }
            }
            if let Some(prefix) = none_left_under {
                let (left,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM signing_keys WHERE tenant_id = $1 \
                     AND private_key_enc LIKE $2 \
                     AND (status = 'active' OR (status = 'retiring' AND retire_after > $3))",
                )
                .bind(tenant_id)
                .bind(format!("{prefix}%"))
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                if left > 0 {
                    return Err(StoreError::Conflict(format!(
                        "{left} signing key(s) were sealed meanwhile; try again"
                    )));
                }
            }
        });
        Ok(())
    }

    /// The longest access or refresh token lifetime any live client of the
    /// tenant overrides, seconds.
    pub async fn longest_client_token_lifetime(&self, tenant_id: Uuid) -> StoreResult<Option<i64>> {
        let (access, refresh): (Option<i64>, Option<i64>) = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT CAST(MAX(access_token_lifetime) AS BIGINT), CAST(MAX(refresh_token_lifetime) AS BIGINT) \
                 FROM oauth_clients WHERE tenant_id = $1 AND deleted_at IS NULL",
            )
            .bind(tenant_id)
            .fetch_one(pool)
            .await?
        });
        Ok(access.max(refresh))
    }
}
