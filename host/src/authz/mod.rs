//! Authorisation: effective permissions, `check-access`, and the admin API's
//! permission checks.
//!
//! Security decisions:
//! - Permissions are resolved from the database on every admin request (one
//!   query, see `store::rbac`), so revoking a role takes effect at once
//!   rather than when a token expires.
//! - A principal from the master tenant with the permission may act on every
//!   tenant; any other principal only on its own tenant. Requests for another
//!   tenant answer 404, so tenant ids cannot be probed.

pub mod delegation;
pub mod roles;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::{EffectiveGrant, MASTER_TENANT_ID};
use crate::oauth::verify::Principal;
use crate::plugins::Category;
use crate::plugins::hooks::policy_engine::{PolicyAnswer, PolicyQuestion};

/// The permissions the admin API checks, seeded into every tenant and
/// carried by its built-in `admin` system role.
pub const ADMIN_PERMISSIONS: &[(&str, &str)] = &[
    ("tenants", "read"),
    ("tenants", "write"),
    ("users", "read"),
    ("users", "write"),
    ("roles", "read"),
    ("roles", "write"),
    ("permissions", "read"),
    ("permissions", "write"),
    ("groups", "read"),
    ("groups", "write"),
    ("applications", "read"),
    ("applications", "write"),
    ("clients", "read"),
    ("clients", "write"),
    ("audit", "read"),
    ("keys", "read"),
    ("keys", "rotate"),
    ("plugins", "read"),
    ("plugins", "write"),
    ("plugins", "install"),
];

/// Outcome of a permission check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessDecision {
    /// Whether the user holds the permission.
    pub allowed: bool,
    /// Why: the granting roles, or what is missing.
    pub reason: String,
    /// Roles that grant it (empty when denied).
    pub granted_by: Vec<String>,
}

pub(crate) fn matches(grant: &EffectiveGrant, resource: &str, action: &str) -> bool {
    (grant.resource == resource || grant.resource == "*")
        && (grant.action == action || grant.action == "*")
}

/// Decides whether a user of a tenant holds `resource:action`.
pub async fn check_access(
    ctx: &Ctx,
    tenant_id: Uuid,
    user_id: Uuid,
    resource: &str,
    action: &str,
) -> Result<AccessDecision> {
    let user = ctx
        .store
        .get_user(tenant_id, user_id)
        .await
        .map_err(Error::from_store("user"))?;
    if !user.enabled {
        return Ok(AccessDecision {
            allowed: false,
            reason: "the user is disabled".into(),
            granted_by: vec![],
        });
    }
    let grants = ctx.store.effective_grants(tenant_id, user_id).await?;
    let mut roles: Vec<String> = grants
        .iter()
        .filter(|g| matches(g, resource, action))
        .map(|g| g.role_name.clone())
        .collect();
    roles.sort();
    roles.dedup();
    // Policy-engine plugins combine deny-overrides with the built-in RBAC:
    // any deny refuses, else any allow grants, else RBAC decides.
    if ctx.plugins.has(tenant_id, Category::PolicyEngine) {
        let subject = crate::identity::attributes::of_user(ctx, tenant_id, user_id).await?;
        let q = PolicyQuestion {
            subject_is_client: user.is_service_account,
            subject_id: user_id.to_string(),
            subject_attributes: &subject,
            action,
            resource_kind: resource,
            resource_id: None,
            resource_attributes: &[],
            context: &[(
                "rbac_allowed".to_string(),
                serde_json::Value::from(!roles.is_empty()),
            )],
        };
        match ctx.plugins.evaluate_policy(tenant_id, &q).await {
            PolicyAnswer::Deny { reasons } => {
                return Ok(AccessDecision {
                    allowed: false,
                    reason: format!("denied by policy: {}", reasons.join("; ")),
                    granted_by: vec![],
                });
            }
            PolicyAnswer::Allow { reasons } => {
                return Ok(AccessDecision {
                    allowed: true,
                    reason: format!("allowed by policy: {}", reasons.join("; ")),
                    granted_by: roles,
                });
            }
            PolicyAnswer::NotApplicable => {}
        }
    }
    Ok(if roles.is_empty() {
        AccessDecision {
            allowed: false,
            reason: format!("no role of the user grants {resource}:{action}"),
            granted_by: roles,
        }
    } else {
        AccessDecision {
            allowed: true,
            reason: format!(
                "{resource}:{action} is granted by role(s) {}",
                roles.join(", ")
            ),
            granted_by: roles,
        }
    })
}

/// Requires `principal` to hold `resource:action` and to be allowed to act
/// on `tenant_id`.
pub async fn authorize(
    ctx: &Ctx,
    principal: &Principal,
    tenant_id: Uuid,
    resource: &str,
    action: &str,
) -> Result<()> {
    if principal.tenant_id != tenant_id && principal.tenant_id != MASTER_TENANT_ID {
        return Err(Error::NotFound("tenant"));
    }
    require_permission(ctx, principal, resource, action).await?;
    // The tenant must exist and be live, else every route under it is 404.
    ctx.store
        .get_tenant(tenant_id)
        .await
        .map_err(Error::from_store("tenant"))?;
    Ok(())
}

/// Requires `principal` to hold `resource:action` in its own tenant.
pub async fn require_permission(
    ctx: &Ctx,
    principal: &Principal,
    resource: &str,
    action: &str,
) -> Result<()> {
    let grants = ctx
        .store
        .effective_grants(principal.tenant_id, principal.user_id)
        .await?;
    if grants.iter().any(|g| matches(g, resource, action)) {
        // Policy-engine plugins of the principal's tenant may only refuse
        // more: a plugin's allow never grants what the roles refused.
        if ctx.plugins.has(principal.tenant_id, Category::PolicyEngine) {
            let subject =
                crate::identity::attributes::of_user(ctx, principal.tenant_id, principal.user_id)
                    .await?;
            let admin_action = format!("{resource}:{action}");
            let q = PolicyQuestion {
                subject_is_client: principal.is_client,
                subject_id: principal.user_id.to_string(),
                subject_attributes: &subject,
                action: &admin_action,
                resource_kind: "admin-api",
                resource_id: None,
                resource_attributes: &[],
                context: &[(
                    "client_id".to_string(),
                    serde_json::Value::from(principal.client_id.clone()),
                )],
            };
            if let PolicyAnswer::Deny { reasons } =
                ctx.plugins.evaluate_policy(principal.tenant_id, &q).await
            {
                return Err(Error::Forbidden(format!(
                    "denied by policy: {}",
                    reasons.join("; ")
                )));
            }
        }
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "missing permission {resource}:{action}"
        )))
    }
}

/// Requires a master-tenant principal holding `resource:action` (instance-wide operations).
pub async fn authorize_instance(
    ctx: &Ctx,
    principal: &Principal,
    resource: &str,
    action: &str,
) -> Result<()> {
    if principal.tenant_id != MASTER_TENANT_ID {
        return Err(Error::Forbidden(
            "only master-tenant administrators may do this".into(),
        ));
    }
    require_permission(ctx, principal, resource, action).await
}
