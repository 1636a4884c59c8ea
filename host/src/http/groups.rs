//! `/api/v1/tenants/{tenant_id}/groups`: hierarchy, members, group roles.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageQuery};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::authz::roles::{RoleRef, UserRef};
use crate::context::Ctx;
use crate::identity::groups::{self, CreateGroup, UpdateGroup};
use crate::model::{Group, HistoryEntry, Page, Role, User};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(group_members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(group_roles, assign_role))
        .routes(routes!(unassign_role))
        .routes(routes!(group_history))
}

/// Lists groups.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/groups", tag = "groups",
    params(("tenant_id" = Uuid, Path), PageQuery), responses((status = 200, body = Page<Group>)), security(("bearer" = [])))]
async fn list_groups(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Group>>> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "read").await?;
    Ok(Json(groups::list(&ctx, tid, q.to_request()?).await?))
}

/// Creates a group.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/groups", tag = "groups",
    params(("tenant_id" = Uuid, Path)), request_body = CreateGroup,
    responses((status = 201, body = Group), (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn create_group(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "write").await?;
    Ok((
        StatusCode::CREATED,
        Json(groups::create(&ctx, &auth.actor(), tid, body).await?),
    ))
}

/// One group.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/groups/{id}", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Group), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_group(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Group>> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "read").await?;
    Ok(Json(groups::get(&ctx, tid, id).await?))
}

/// Updates a group (a parent cycle answers 409).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/groups/{id}", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UpdateGroup,
    responses((status = 200, body = Group), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn update_group(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> ApiResult<Json<Group>> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "write").await?;
    Ok(Json(
        groups::update(&ctx, &auth.actor(), tid, id, body).await?,
    ))
}

/// Soft-deletes a group and its subgroups.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/groups/{id}", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn delete_group(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "write").await?;
    groups::delete(&ctx, &auth.actor(), tid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Direct members.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/groups/{id}/members", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Vec<User>)), security(("bearer" = [])))]
async fn group_members(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<User>>> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "read").await?;
    Ok(Json(groups::members(&ctx, tid, id).await?))
}

/// Adds a member.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/groups/{id}/members", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UserRef,
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn add_member(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UserRef>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "write").await?;
    authz::delegation::ensure_can_add_to_group(&ctx, &auth.principal, tid, id).await?;
    groups::add_member(&ctx, &auth.actor(), tid, id, body.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/groups/{id}/members/{user_id}", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn remove_member(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id, uid)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "write").await?;
    groups::remove_member(&ctx, &auth.actor(), tid, id, uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Roles given to the group.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/groups/{id}/roles", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Vec<Role>)), security(("bearer" = [])))]
async fn group_roles(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<Role>>> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "read").await?;
    Ok(Json(groups::roles(&ctx, tid, id).await?))
}

/// Gives a role to the group (members and subgroup members inherit it).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/groups/{id}/roles", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = RoleRef,
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn assign_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<RoleRef>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "write").await?;
    authz::delegation::ensure_can_assign_role(&ctx, &auth.principal, tid, body.role_id).await?;
    groups::assign_role(&ctx, &auth.actor(), tid, id, body.role_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a role from the group.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/groups/{id}/roles/{role_id}", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), ("role_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn unassign_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id, rid)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "write").await?;
    groups::unassign_role(&ctx, &auth.actor(), tid, id, rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Previous versions of a group.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/groups/{id}/history", tag = "groups",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn group_history(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    authz::authorize(&ctx, &auth.principal, tid, "groups", "read").await?;
    Ok(Json(crate::audit::history(&ctx, tid, "group", id).await?))
}
