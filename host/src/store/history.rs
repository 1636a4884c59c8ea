//! Entity history: the previous version of an entity, kept on every update
//! and delete inside the same transaction as the change.

use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::model::HistoryEntry;

/// Inserts a history row: `record_history!(exec, tenant_id, "user", id, version, "update", &entity, actor_id)`.
macro_rules! record_history {
    ($exec:expr, $tenant:expr, $etype:expr, $id:expr, $version:expr, $op:expr, $data:expr, $actor:expr) => {{
        let data = serde_json::to_value($data).map_err(|e| {
            $crate::store::StoreError::Database(sqlx::Error::Encode(Box::new(e)))
        })?;
        sqlx::query(
            "INSERT INTO entity_history (id, tenant_id, entity_type, entity_id, version, operation, data, changed_by, changed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind($tenant)
        .bind($etype)
        .bind($id)
        .bind($version)
        .bind($op)
        .bind(sqlx::types::Json(data))
        .bind($actor)
        .bind($crate::time::Timestamp::now())
        .execute($exec)
        .await?;
    }};
}
pub(crate) use record_history;

impl Store {
    /// Previous versions of one entity, oldest first.
    pub async fn entity_history(
        &self,
        tenant_id: Uuid,
        entity_type: &str,
        entity_id: Uuid,
    ) -> StoreResult<Vec<HistoryEntry>> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, HistoryEntry>(
                "SELECT id, tenant_id, entity_type, entity_id, version, operation, data, changed_by, changed_at \
                 FROM entity_history WHERE tenant_id = $1 AND entity_type = $2 AND entity_id = $3 \
                 ORDER BY version, changed_at",
            )
            .bind(tenant_id)
            .bind(entity_type)
            .bind(entity_id)
            .fetch_all(pool)
            .await?)
        })
    }
}
