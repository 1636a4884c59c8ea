//! No escalation through delegation.
//!
//! Security decision: inside its own tenant, a caller may only hand out
//! permissions it holds itself, and may only manage users who hold no more
//! than it does. Without this, anyone with `users:write` could assign
//! themselves the system `admin` role (in the master tenant: every tenant),
//! anyone with `roles:write` could add `tenants:write` to a role they hold,
//! and anyone with `users:write` could reset an administrator's password.
//! Master-tenant principals acting on another tenant are not limited here:
//! their authority over that tenant is already total for the resource.

use uuid::Uuid;

use super::matches;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::EffectiveGrant;
use crate::oauth::verify::Principal;

async fn ensure_holds(
    ctx: &Ctx,
    principal: &Principal,
    tenant_id: Uuid,
    needed: &[EffectiveGrant],
    what: &str,
) -> Result<()> {
    if principal.tenant_id != tenant_id || needed.is_empty() {
        return Ok(());
    }
    let held = ctx
        .store
        .effective_grants(principal.tenant_id, principal.user_id)
        .await?;
    let mut missing: Vec<String> = needed
        .iter()
        .filter(|n| !held.iter().any(|h| matches(h, &n.resource, &n.action)))
        .map(|n| format!("{}:{}", n.resource, n.action))
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{what} needs permissions you do not hold: {}",
            missing.join(", ")
        )))
    }
}

/// The caller may give role `role_id` (to a user, a group or a composite).
pub async fn ensure_can_assign_role(
    ctx: &Ctx,
    principal: &Principal,
    tenant_id: Uuid,
    role_id: Uuid,
) -> Result<()> {
    let needed = ctx.store.role_grants(tenant_id, role_id).await?;
    ensure_holds(ctx, principal, tenant_id, &needed, "assigning this role").await
}

/// The caller may add members to group `group_id`.
pub async fn ensure_can_add_to_group(
    ctx: &Ctx,
    principal: &Principal,
    tenant_id: Uuid,
    group_id: Uuid,
) -> Result<()> {
    let needed = ctx.store.group_grants(tenant_id, group_id).await?;
    ensure_holds(
        ctx,
        principal,
        tenant_id,
        &needed,
        "adding members to this group",
    )
    .await
}

/// The caller may add permission `permission_id` to a role.
pub async fn ensure_can_grant_permission(
    ctx: &Ctx,
    principal: &Principal,
    tenant_id: Uuid,
    permission_id: Uuid,
) -> Result<()> {
    let p = ctx
        .store
        .get_permission(tenant_id, permission_id)
        .await
        .map_err(Error::from_store("permission"))?;
    let needed = [EffectiveGrant {
        resource: p.resource,
        action: p.action,
        role_name: String::new(),
    }];
    ensure_holds(
        ctx,
        principal,
        tenant_id,
        &needed,
        "granting this permission",
    )
    .await
}

/// The caller may change, lock out or delete user `user_id`.
pub async fn ensure_can_manage_user(
    ctx: &Ctx,
    principal: &Principal,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<()> {
    let needed = ctx.store.effective_grants(tenant_id, user_id).await?;
    ensure_holds(ctx, principal, tenant_id, &needed, "managing this user").await
}
