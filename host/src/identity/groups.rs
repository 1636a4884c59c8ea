//! Group administration: hierarchy, members, group roles.

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::validate::Validator;
use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::{Actor, Group, Page, PageRequest, Role, User};
use crate::store::GroupUpdate;
use crate::time::Timestamp;

/// Body of create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Parent group.
    pub parent_id: Option<Uuid>,
}

/// Body of update; absent fields stay unchanged, `null` clears.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    /// Name.
    pub name: Option<String>,
    /// Description.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Parent; `null` makes the group top-level.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

/// Creates a group.
pub async fn create(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, req: CreateGroup) -> Result<Group> {
    let mut v = Validator::new();
    v.text("name", &req.name, 200);
    v.optional_text("description", req.description.as_deref(), 2000);
    v.finish()?;
    let now = Timestamp::now();
    let group = Group {
        id: Uuid::now_v7(),
        tenant_id,
        parent_id: req.parent_id,
        name: req.name.trim().into(),
        description: req.description,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        tenant_id,
        actor,
        "group.create",
        "group",
        group.id,
        json!({ "name": group.name, "parent_id": group.parent_id }),
    );
    ctx.store
        .create_group(&group, &ev)
        .await
        .map_err(Error::from_store("parent group"))
}

/// Lists groups.
pub async fn list(ctx: &Ctx, tenant_id: Uuid, page: PageRequest) -> Result<Page<Group>> {
    Ok(ctx.store.list_groups(tenant_id, page).await?)
}

/// One group.
pub async fn get(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Group> {
    ctx.store
        .get_group(tenant_id, id)
        .await
        .map_err(Error::from_store("group"))
}

/// Updates a group; refuses to create a cycle.
pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: UpdateGroup,
) -> Result<Group> {
    let mut v = Validator::new();
    if let Some(n) = &req.name {
        v.text("name", n, 200);
    }
    if let Some(Some(d)) = &req.description {
        v.optional_text("description", Some(d), 2000);
    }
    if req.parent_id == Some(Some(id)) {
        v.fail("parent_id", "a group cannot be its own parent");
    }
    v.finish()?;
    let ev = event(
        tenant_id,
        actor,
        "group.update",
        "group",
        id,
        json!({
            "name": req.name, "description": req.description, "parent_id": req.parent_id,
        }),
    );
    let update = GroupUpdate {
        name: req.name.map(|n| n.trim().to_string()),
        description: req.description,
        parent_id: req.parent_id,
    };
    ctx.store
        .update_group(tenant_id, id, &update, &ev)
        .await
        .map_err(Error::from_store("group"))
}

/// Soft-deletes a group and its subgroups; returns how many were deleted.
pub async fn delete(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, id: Uuid) -> Result<u64> {
    let ev = event(
        tenant_id,
        actor,
        "group.delete",
        "group",
        id,
        json!({ "subtree": true }),
    );
    ctx.store
        .delete_group(tenant_id, id, &ev)
        .await
        .map_err(Error::from_store("group"))
}

/// Direct members.
pub async fn members(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Vec<User>> {
    ctx.store
        .list_group_members(tenant_id, id)
        .await
        .map_err(Error::from_store("group"))
}

/// Adds a member.
pub async fn add_member(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    group_id: Uuid,
    user_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "group.member_add",
        "group",
        group_id,
        json!({ "user_id": user_id }),
    );
    ctx.store
        .add_group_member(tenant_id, group_id, user_id, &ev)
        .await
        .map_err(Error::from_store("group or user"))
}

/// Removes a member.
pub async fn remove_member(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    group_id: Uuid,
    user_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "group.member_remove",
        "group",
        group_id,
        json!({ "user_id": user_id }),
    );
    ctx.store
        .remove_group_member(tenant_id, group_id, user_id, &ev)
        .await
        .map_err(Error::from_store("group membership"))
}

/// Roles given to the group.
pub async fn roles(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Vec<Role>> {
    ctx.store
        .list_group_roles(tenant_id, id)
        .await
        .map_err(Error::from_store("group"))
}

/// Gives a role to a group.
pub async fn assign_role(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    group_id: Uuid,
    role_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "group.role_assign",
        "group",
        group_id,
        json!({ "role_id": role_id }),
    );
    ctx.store
        .add_group_role(tenant_id, group_id, role_id, &ev)
        .await
        .map_err(Error::from_store("group or role"))
}

/// Takes a role from a group.
pub async fn unassign_role(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    group_id: Uuid,
    role_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "group.role_unassign",
        "group",
        group_id,
        json!({ "role_id": role_id }),
    );
    ctx.store
        .remove_group_role(tenant_id, group_id, role_id, &ev)
        .await
        .map_err(Error::from_store("role assignment"))
}
