//! Signing keys (private halves sealed with the instance master key).

use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::model::SigningKeyRecord;

const KEY_COLUMNS: &str =
    "kid, tenant_id, algorithm, public_jwk, private_key_enc, status, created_at";

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
    /// Keys of a tenant that still verify (active and retired), newest first.
    pub async fn signing_keys(&self, tenant_id: Uuid) -> StoreResult<Vec<SigningKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE tenant_id = $1 AND status IN ('active', 'retired') \
             ORDER BY created_at DESC"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, SigningKeyRecord>(&sql)
                .bind(tenant_id)
                .fetch_all(pool)
                .await?)
        })
    }
}
