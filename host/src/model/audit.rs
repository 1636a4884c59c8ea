//! Audit records and the per-tenant hash chain that makes tampering evident.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::time::Timestamp;

/// The hash that precedes the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Actor {
    /// `user`, `client`, `system` or `anonymous`.
    pub actor_type: String,
    /// Id of the user (or service account), when known.
    pub actor_id: Option<Uuid>,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

impl Actor {
    /// The server itself (setup, migrations).
    pub fn system() -> Self {
        Self {
            actor_type: "system".into(),
            actor_id: None,
            ip: None,
            user_agent: None,
        }
    }
}

/// An audit event before it is appended to a chain.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Chain (tenant) the event belongs to.
    pub tenant_id: Uuid,
    /// Who acted.
    pub actor: Actor,
    /// Dotted action name, e.g. `user.create`.
    pub action: String,
    /// Kind of object acted on, e.g. `user`.
    pub target_type: String,
    /// Id of the object acted on.
    pub target_id: Option<String>,
    /// What changed (never secrets).
    pub changes: serde_json::Value,
}

/// An appended audit record.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct AuditRecord {
    /// Record id.
    pub id: Uuid,
    /// Chain (tenant).
    pub tenant_id: Uuid,
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// `user`, `client`, `system` or `anonymous`.
    pub actor_type: String,
    /// Acting user id.
    pub actor_id: Option<Uuid>,
    /// Action name.
    pub action: String,
    /// Target kind.
    pub target_type: String,
    /// Target id.
    pub target_id: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// JSON change metadata, exactly as hashed.
    #[sqlx(try_from = "String")]
    #[schema(value_type = Object)]
    pub changes: JsonText,
    /// When it happened.
    pub created_at: Timestamp,
    /// Hash of the previous record in the chain.
    pub prev_hash: String,
    /// SHA-256 over this record's content and `prev_hash`.
    pub hash: String,
}

impl AuditRecord {
    /// Recomputes this record's hash from its content and `prev_hash`.
    ///
    /// The input is a JSON array in a fixed field order. `changes` enters as
    /// the exact text stored in the database (a TEXT column on both
    /// backends), never as re-serialised JSON: PostgreSQL's JSONB would
    /// normalise numbers (`1e19` comes back as `10000000000000000000`) and
    /// break verification of an untampered record.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.id,
            self.tenant_id,
            self.seq,
            self.actor_type,
            self.actor_id,
            self.action,
            self.target_type,
            self.target_id,
            self.ip,
            self.user_agent,
            self.changes.0,
            self.created_at.to_fixed_string(),
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// A previous version of an entity, kept on every update and delete.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct HistoryEntry {
    /// Entry id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Entity kind, e.g. `user`.
    pub entity_type: String,
    /// Entity id.
    pub entity_id: Uuid,
    /// Version the snapshot had.
    pub version: i64,
    /// `update` or `delete`.
    pub operation: String,
    /// The entity as it was before the change.
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Who changed it.
    pub changed_by: Option<Uuid>,
    /// When it changed.
    pub changed_at: Timestamp,
}

/// A JSON document kept as the exact text it was written as; serialises as
/// raw JSON (not as a string).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText(pub String);

impl JsonText {
    /// The canonical text of `value` (objects with sorted keys).
    pub fn of(value: &serde_json::Value) -> Self {
        Self(value.to_string())
    }
}

impl From<String> for JsonText {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.0.clone()) {
            Ok(raw) => raw.serialize(s),
            Err(_) => s.serialize_str(&self.0),
        }
    }
}
