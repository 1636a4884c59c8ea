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

/// Previous versions of an entity of `kind` (`user`, `role`, `permission`,
/// `group`, `application`, `client`, `tenant`), oldest first. A deleted
/// entity keeps its history; an id never seen in this tenant answers 404.
pub async fn history(
    ctx: &crate::context::Ctx,
    tenant_id: Uuid,
    kind: &'static str,
    id: Uuid,
) -> crate::error::Result<Vec<crate::model::HistoryEntry>> {
    use crate::error::Error;
    let entries = ctx.store.entity_history(tenant_id, kind, id).await?;
    if entries.is_empty() {
        let s = &ctx.store;
        let found = match kind {
            "user" => s.get_user(tenant_id, id).await.map(|_| ()),
            "role" => s.get_role(tenant_id, id).await.map(|_| ()),
            "permission" => s.get_permission(tenant_id, id).await.map(|_| ()),
            "group" => s.get_group(tenant_id, id).await.map(|_| ()),
            "application" => s.get_application(tenant_id, id).await.map(|_| ()),
            "client" => s.get_client(tenant_id, id).await.map(|_| ()),
            "tenant" if id == tenant_id => s.get_tenant(id).await.map(|_| ()),
            _ => Err(crate::store::StoreError::NotFound),
        };
        found.map_err(Error::from_store(kind))?;
    }
    Ok(entries)
}
