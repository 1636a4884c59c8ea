//! Role and permission administration.

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::identity::validate::Validator;
use crate::model::{Actor, Page, PageRequest, Permission, Role};
use crate::store::{PermissionUpdate, RoleUpdate};
use crate::time::Timestamp;

/// Body of role create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Unique name in the tenant.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Composite roles inherit their child roles' permissions.
    #[serde(default)]
    pub is_composite: bool,
    /// Application that owns the role.
    pub application_id: Option<Uuid>,
}

/// Body of role update.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    /// Name.
    pub name: Option<String>,
    /// Description; `null` clears.
    #[serde(default, with = "crate::identity::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Composite flag.
    pub is_composite: Option<bool>,
}

/// Body of permission create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePermission {
    /// Resource (`*` for any).
    pub resource: String,
    /// Action (`*` for any).
    pub action: String,
    /// Description.
    pub description: Option<String>,
    /// Application that owns the permission.
    pub application_id: Option<Uuid>,
}

/// Body of permission update.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePermission {
    /// Description; `null` clears.
    #[serde(default, with = "crate::identity::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Body naming a role to assign.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRef {
    /// Role id.
    pub role_id: Uuid,
}

/// Body naming a permission to grant.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionRef {
    /// Permission id.
    pub permission_id: Uuid,
}

/// Body naming a user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    /// User id.
    pub user_id: Uuid,
}

/// Creates a role.
pub async fn create_role(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    req: CreateRole,
) -> Result<Role> {
    let mut v = Validator::new();
    v.text("name", &req.name, 100);
    v.optional_text("description", req.description.as_deref(), 2000);
    v.finish()?;
    let now = Timestamp::now();
    let role = Role {
        id: Uuid::now_v7(),
        tenant_id,
        application_id: req.application_id,
        name: req.name.trim().into(),
        description: req.description,
        is_composite: req.is_composite,
        is_system: false,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        tenant_id,
        actor,
        "role.create",
        "role",
        role.id,
        json!({
            "name": role.name, "is_composite": role.is_composite, "application_id": role.application_id,
        }),
    );
    ctx.store
        .create_role(&role, &ev)
        .await
        .map_err(Error::from_store("application"))
}

/// Lists roles.
pub async fn list_roles(ctx: &Ctx, tenant_id: Uuid, page: PageRequest) -> Result<Page<Role>> {
    Ok(ctx.store.list_roles(tenant_id, page).await?)
}

/// One role.
pub async fn get_role(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Role> {
    ctx.store
        .get_role(tenant_id, id)
        .await
        .map_err(Error::from_store("role"))
}

/// Updates a non-system role.
pub async fn update_role(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: UpdateRole,
) -> Result<Role> {
    let mut v = Validator::new();
    if let Some(n) = &req.name {
        v.text("name", n, 100);
    }
    if let Some(Some(d)) = &req.description {
        v.optional_text("description", Some(d), 2000);
    }
    v.finish()?;
    let ev = event(
        tenant_id,
        actor,
        "role.update",
        "role",
        id,
        json!({
            "name": req.name, "description": req.description, "is_composite": req.is_composite,
        }),
    );
    let update = RoleUpdate {
        name: req.name.map(|n| n.trim().to_string()),
        description: req.description,
        is_composite: req.is_composite,
    };
    ctx.store
        .update_role(tenant_id, id, &update, &ev)
        .await
        .map_err(Error::from_store("role"))
}

/// Soft-deletes a non-system role.
pub async fn delete_role(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, id: Uuid) -> Result<()> {
    let ev = event(tenant_id, actor, "role.delete", "role", id, json!({}));
    ctx.store
        .delete_role(tenant_id, id, &ev)
        .await
        .map_err(Error::from_store("role"))
}

/// Child roles of a composite role.
pub async fn composites(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Vec<Role>> {
    ctx.store
        .list_role_composites(tenant_id, id)
        .await
        .map_err(Error::from_store("role"))
}

/// Adds a child to a composite role; refuses cycles.
pub async fn add_composite(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    parent: Uuid,
    child: Uuid,
) -> Result<()> {
    if parent == child {
        return Err(Error::Conflict("a role cannot contain itself".into()));
    }
    let ev = event(
        tenant_id,
        actor,
        "role.composite_add",
        "role",
        parent,
        json!({ "child_role_id": child }),
    );
    ctx.store
        .add_role_composite(tenant_id, parent, child, &ev)
        .await
        .map_err(Error::from_store("role"))
}

/// Removes a child from a composite role.
pub async fn remove_composite(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    parent: Uuid,
    child: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "role.composite_remove",
        "role",
        parent,
        json!({ "child_role_id": child }),
    );
    ctx.store
        .remove_role_composite(tenant_id, parent, child, &ev)
        .await
        .map_err(Error::from_store("composite"))
}

/// Permissions a role carries directly.
pub async fn role_permissions(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Vec<Permission>> {
    ctx.store
        .list_role_permissions(tenant_id, id)
        .await
        .map_err(Error::from_store("role"))
}

/// Grants a permission to a role.
pub async fn grant(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    role_id: Uuid,
    permission_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "role.permission_grant",
        "role",
        role_id,
        json!({ "permission_id": permission_id }),
    );
    ctx.store
        .add_role_permission(tenant_id, role_id, permission_id, &ev)
        .await
        .map_err(Error::from_store("role or permission"))
}

/// Revokes a permission from a role.
pub async fn revoke(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    role_id: Uuid,
    permission_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "role.permission_revoke",
        "role",
        role_id,
        json!({ "permission_id": permission_id }),
    );
    ctx.store
        .remove_role_permission(tenant_id, role_id, permission_id, &ev)
        .await
        .map_err(Error::from_store("role permission"))
}

/// Creates a permission.
pub async fn create_permission(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    req: CreatePermission,
) -> Result<Permission> {
    let mut v = Validator::new();
    v.ident("resource", &req.resource);
    v.ident("action", &req.action);
    v.optional_text("description", req.description.as_deref(), 2000);
    v.finish()?;
    let now = Timestamp::now();
    let perm = Permission {
        id: Uuid::now_v7(),
        tenant_id,
        application_id: req.application_id,
        resource: req.resource,
        action: req.action,
        description: req.description,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        tenant_id,
        actor,
        "permission.create",
        "permission",
        perm.id,
        json!({ "name": perm.name() }),
    );
    ctx.store
        .create_permission(&perm, &ev)
        .await
        .map_err(Error::from_store("application"))
}

/// Lists permissions.
pub async fn list_permissions(
    ctx: &Ctx,
    tenant_id: Uuid,
    page: PageRequest,
) -> Result<Page<Permission>> {
    Ok(ctx.store.list_permissions(tenant_id, page).await?)
}

/// One permission.
pub async fn get_permission(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Permission> {
    ctx.store
        .get_permission(tenant_id, id)
        .await
        .map_err(Error::from_store("permission"))
}

/// Updates a permission's description.
pub async fn update_permission(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: UpdatePermission,
) -> Result<Permission> {
    if let Some(Some(d)) = &req.description {
        let mut v = Validator::new();
        v.optional_text("description", Some(d), 2000);
        v.finish()?;
    }
    let ev = event(
        tenant_id,
        actor,
        "permission.update",
        "permission",
        id,
        json!({ "description": req.description }),
    );
    ctx.store
        .update_permission(
            tenant_id,
            id,
            &PermissionUpdate {
                description: req.description,
            },
            &ev,
        )
        .await
        .map_err(Error::from_store("permission"))
}

/// Soft-deletes a permission. The built-in admin permissions stay: the admin
/// API depends on them.
pub async fn delete_permission(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, id: Uuid) -> Result<()> {
    let perm = get_permission(ctx, tenant_id, id).await?;
    if perm.application_id.is_none()
        && super::ADMIN_PERMISSIONS
            .iter()
            .any(|(r, a)| *r == perm.resource && *a == perm.action)
    {
        return Err(Error::Conflict(
            "built-in admin permissions cannot be deleted".into(),
        ));
    }
    let ev = event(
        tenant_id,
        actor,
        "permission.delete",
        "permission",
        id,
        json!({ "name": perm.name() }),
    );
    ctx.store
        .delete_permission(tenant_id, id, &ev)
        .await
        .map_err(Error::from_store("permission"))
}
