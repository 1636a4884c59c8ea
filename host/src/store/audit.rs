//! The audit log: appending (inside `audited_tx!`), reading and verifying.

use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::model::{AuditEvent, AuditRecord, GENESIS_HASH};
use crate::time::Timestamp;

/// Builds the record for `event` at position `seq` after `prev_hash`.
pub(crate) fn seal(event: &AuditEvent, seq: i64, prev_hash: String) -> AuditRecord {
    let mut record = AuditRecord {
        id: Uuid::now_v7(),
        tenant_id: event.tenant_id,
        seq,
        actor_type: event.actor.actor_type.clone(),
        actor_id: event.actor.actor_id,
        action: event.action.clone(),
        target_type: event.target_type.clone(),
        target_id: event.target_id.clone(),
        ip: event.actor.ip.clone(),
        user_agent: event.actor.user_agent.clone(),
        changes: crate::model::JsonText::of(&event.changes),
        created_at: Timestamp::now(),
        prev_hash,
        hash: String::new(),
    };
    record.hash = record.compute_hash();
    record
}

/// Inserts a sealed `AuditRecord` through the given executor.
macro_rules! insert_audit {
    ($exec:expr, $record:expr) => {{
        let r: &$crate::model::AuditRecord = $record;
        sqlx::query(
            "INSERT INTO audit_logs (id, tenant_id, seq, actor_type, actor_id, action, target_type, \
             target_id, ip, user_agent, changes, created_at, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(r.id)
        .bind(r.tenant_id)
        .bind(r.seq)
        .bind(&r.actor_type)
        .bind(r.actor_id)
        .bind(&r.action)
        .bind(&r.target_type)
        .bind(&r.target_id)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(&r.changes.0)
        .bind(r.created_at)
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute($exec)
        .await?;
    }};
}
pub(crate) use insert_audit as insert;

/// Filters for listing audit records.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Exact action name.
    pub action: Option<String>,
    /// Acting user.
    pub actor_id: Option<Uuid>,
    /// Inclusive lower bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
}

/// Outcome of recomputing a tenant's chain.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ChainVerification {
    /// Whether every record and the chain head agree.
    pub valid: bool,
    /// Records examined.
    pub records_checked: i64,
    /// First sequence number at which the chain breaks.
    pub broken_at_seq: Option<i64>,
    /// Why it breaks.
    pub reason: Option<String>,
}

const AUDIT_COLUMNS: &str = "id, tenant_id, seq, actor_type, actor_id, action, target_type, target_id, \
    ip, user_agent, changes, created_at, prev_hash, hash";

impl Store {
    /// Appends an event on its own (for events with no other write, such as
    /// a failed login).
    pub async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        super::audited_tx!(self, event, |tx| ());
        Ok(())
    }

    /// Lists a tenant's audit records, newest first.
    pub async fn list_audit(
        &self,
        tenant_id: Uuid,
        filter: &AuditFilter,
        page: crate::model::PageRequest,
    ) -> StoreResult<(Vec<AuditRecord>, i64)> {
        let where_clause = "tenant_id = $1 AND ($2 IS NULL OR action = $2) \
             AND ($3 IS NULL OR actor_id = $3) AND ($4 IS NULL OR created_at >= $4) \
             AND ($5 IS NULL OR created_at < $5)";
        let list_sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE {where_clause} ORDER BY seq DESC LIMIT $6 OFFSET $7"
        );
        let count_sql = format!("SELECT COUNT(*) FROM audit_logs WHERE {where_clause}");
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query_as::<_, AuditRecord>(&list_sql)
                .bind(tenant_id)
                .bind(&filter.action)
                .bind(filter.actor_id)
                .bind(filter.from)
                .bind(filter.to)
                .bind(page.per_page)
                .bind(page.offset())
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) = sqlx::query_as(&count_sql)
                .bind(tenant_id)
                .bind(&filter.action)
                .bind(filter.actor_id)
                .bind(filter.from)
                .bind(filter.to)
                .fetch_one(pool)
                .await?;
            Ok((rows, total))
        })
    }

    /// One audit record of a tenant.
    pub async fn get_audit(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<AuditRecord> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE tenant_id = $1 AND id = $2");
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, AuditRecord>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Recomputes a tenant's whole chain in batches and compares it with the
    /// stored hashes and the chain head. Detects edited records (hash
    /// mismatch), deleted or reordered records (sequence gap or `prev_hash`
    /// mismatch) and a truncated tail (head disagrees with the last record).
    ///
    /// The head is read first and only records up to it are checked: a head
    /// and its record commit together, so writes landing during the walk are
    /// simply outside this verification instead of looking like tampering.
    pub async fn verify_audit_chain(&self, tenant_id: Uuid) -> StoreResult<ChainVerification> {
        const BATCH: i64 = 1000;
        let head: Option<(i64, String)> = on_pool!(&self.db, |pool| {
            sqlx::query_as("SELECT seq, hash FROM audit_chain_heads WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(pool)
                .await?
        });
        let (head_seq, head_hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE tenant_id = $1 AND seq > $2 AND seq <= $4 \
             ORDER BY seq LIMIT $3"
        );
        let broken = |seq: i64, checked: i64, reason: String| ChainVerification {
            valid: false,
            records_checked: checked,
            broken_at_seq: Some(seq),
            reason: Some(reason),
        };
        let mut expected_prev = GENESIS_HASH.to_string();
        let mut last_seq = 0i64;
        let mut checked = 0i64;
        loop {
            let batch: Vec<AuditRecord> = on_pool!(&self.db, |pool| {
                sqlx::query_as::<_, AuditRecord>(&sql)
                    .bind(tenant_id)
                    .bind(last_seq)
                    .bind(BATCH)
                    .bind(head_seq)
                    .fetch_all(pool)
                    .await?
            });
            let done = (batch.len() as i64) < BATCH;
            for record in batch {
                checked += 1;
                if record.seq != last_seq + 1 {
                    return Ok(broken(
                        last_seq + 1,
                        checked,
                        format!("record {} is missing", last_seq + 1),
                    ));
                }
                if record.prev_hash != expected_prev {
                    return Ok(broken(
                        record.seq,
                        checked,
                        "prev_hash does not match the previous record".into(),
                    ));
                }
                if record.compute_hash() != record.hash {
                    return Ok(broken(
                        record.seq,
                        checked,
                        "record content does not match its hash".into(),
                    ));
                }
                expected_prev = record.hash;
                last_seq = record.seq;
            }
            if done {
                break;
            }
        }
        if head_seq != last_seq || head_hash != expected_prev {
            return Ok(broken(
                last_seq + 1,
                checked,
                format!("chain head is at {head_seq} but the log ends at {last_seq}"),
            ));
        }
        Ok(ChainVerification {
            valid: true,
            records_checked: checked,
            broken_at_seq: None,
            reason: None,
        })
    }
}

impl Store {
    /// The seq of a tenant's newest audit record (0 when none).
    pub async fn audit_head_seq(&self, tenant_id: Uuid) -> StoreResult<i64> {
        let row: Option<(i64,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as("SELECT seq FROM audit_chain_heads WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(s,)| s).unwrap_or(0))
    }

    /// A tenant's audit records after `seq`, oldest first.
    pub async fn audit_after(
        &self,
        tenant_id: Uuid,
        seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, AuditRecord>(&sql)
                .bind(tenant_id)
                .bind(seq)
                .bind(limit)
                .fetch_all(pool)
                .await?)
        })
    }
}
