//! The audit log as the domain sees it: building events from the caller's
//! context, reading records, verifying a tenant's chain.

use serde_json::Value;
use uuid::Uuid;

use crate::model::{Actor, AuditEvent};
use crate::oauth::verify::Principal;

/// Request facts the audit log records about the caller.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Client IP.
    pub ip: Option<String>,
    /// User agent (truncated to 512 characters).
    pub user_agent: Option<String>,
}

/// The actor behind an authenticated admin request.
pub fn actor_of(principal: &Principal, meta: &RequestMeta) -> Actor {
    Actor {
        actor_type: if principal.is_client {
            "client".into()
        } else {
            "user".into()
        },
        actor_id: Some(principal.user_id),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
    }
}

/// An event on `tenant_id`'s chain.
pub fn event(
    tenant_id: Uuid,
    actor: &Actor,
    action: &str,
    target_type: &str,
    target_id: impl ToString,
    changes: Value,
) -> AuditEvent {
    AuditEvent {
        tenant_id,
        actor: actor.clone(),
        action: action.into(),
        target_type: target_type.into(),
        target_id: Some(target_id.to_string()),
        changes,
    }
}
