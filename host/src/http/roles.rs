//! `/api/v1/tenants/{tenant_id}/roles` and `/permissions`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageQuery};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::authz::roles::{
    self, CreatePermission, CreateRole, PermissionRef, RoleRef, UpdatePermission, UpdateRole,
};
use crate::context::Ctx;
use crate::model::{HistoryEntry, Page, Permission, Role};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(role_permissions, grant_permission))
        .routes(routes!(revoke_permission))
        .routes(routes!(role_composites, add_composite))
        .routes(routes!(remove_composite))
        .routes(routes!(role_history))
        .routes(routes!(list_permissions, create_permission))
        .routes(routes!(
            get_permission,
            update_permission,
            delete_permission
        ))
        .routes(routes!(permission_history))
}

/// Lists roles.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/roles", tag = "roles",
    params(("tenant_id" = Uuid, Path), PageQuery), responses((status = 200, body = Page<Role>)), security(("bearer" = [])))]
async fn list_roles(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Role>>> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "read").await?;
    Ok(Json(roles::list_roles(&ctx, tid, q.to_request()?).await?))
}

/// Creates a role.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/roles", tag = "roles",
    params(("tenant_id" = Uuid, Path)), request_body = CreateRole,
    responses((status = 201, body = Role), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn create_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateRole>,
) -> ApiResult<(StatusCode, Json<Role>)> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "write").await?;
    Ok((
        StatusCode::CREATED,
        Json(roles::create_role(&ctx, &auth.actor(), tid, body).await?),
    ))
}

/// One role.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/roles/{id}", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Role), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Role>> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "read").await?;
    Ok(Json(roles::get_role(&ctx, tid, id).await?))
}

/// Updates a role (system roles answer 409).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/roles/{id}", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UpdateRole,
    responses((status = 200, body = Role), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn update_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateRole>,
) -> ApiResult<Json<Role>> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "write").await?;
    Ok(Json(
        roles::update_role(&ctx, &auth.actor(), tid, id, body).await?,
    ))
}

/// Soft-deletes a role (system roles answer 409).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/roles/{id}", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 204), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn delete_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "write").await?;
    roles::delete_role(&ctx, &auth.actor(), tid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Permissions a role carries directly.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/roles/{id}/permissions", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Vec<Permission>)), security(("bearer" = [])))]
async fn role_permissions(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<Permission>>> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "read").await?;
    Ok(Json(roles::role_permissions(&ctx, tid, id).await?))
}

/// Grants a permission to a role.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/roles/{id}/permissions", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = PermissionRef,
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn grant_permission(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<PermissionRef>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "write").await?;
    authz::delegation::ensure_can_grant_permission(&ctx, &auth.principal, tid, body.permission_id)
        .await?;
    roles::grant(&ctx, &auth.actor(), tid, id, body.permission_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a permission from a role.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/roles/{id}/permissions/{permission_id}", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), ("permission_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn revoke_permission(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id, pid)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "write").await?;
    roles::revoke(&ctx, &auth.actor(), tid, id, pid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Child roles of a composite role.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/roles/{id}/composites", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Vec<Role>)), security(("bearer" = [])))]
async fn role_composites(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<Role>>> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "read").await?;
    Ok(Json(roles::composites(&ctx, tid, id).await?))
}

/// Adds a child role to a composite role (cycles answer 409).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/roles/{id}/composites", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = RoleRef,
    responses((status = 204), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn add_composite(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<RoleRef>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "write").await?;
    authz::delegation::ensure_can_assign_role(&ctx, &auth.principal, tid, body.role_id).await?;
    roles::add_composite(&ctx, &auth.actor(), tid, id, body.role_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a child role from a composite role.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/roles/{id}/composites/{child_id}", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), ("child_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn remove_composite(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id, child)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "write").await?;
    roles::remove_composite(&ctx, &auth.actor(), tid, id, child).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Previous versions of a role.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/roles/{id}/history", tag = "roles",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn role_history(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    authz::authorize(&ctx, &auth.principal, tid, "roles", "read").await?;
    Ok(Json(crate::audit::history(&ctx, tid, "role", id).await?))
}

/// Lists permissions.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/permissions", tag = "permissions",
    params(("tenant_id" = Uuid, Path), PageQuery), responses((status = 200, body = Page<Permission>)), security(("bearer" = [])))]
async fn list_permissions(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Permission>>> {
    authz::authorize(&ctx, &auth.principal, tid, "permissions", "read").await?;
    Ok(Json(
        roles::list_permissions(&ctx, tid, q.to_request()?).await?,
    ))
}

/// Creates a permission.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/permissions", tag = "permissions",
    params(("tenant_id" = Uuid, Path)), request_body = CreatePermission,
    responses((status = 201, body = Permission), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn create_permission(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreatePermission>,
) -> ApiResult<(StatusCode, Json<Permission>)> {
    authz::authorize(&ctx, &auth.principal, tid, "permissions", "write").await?;
    Ok((
        StatusCode::CREATED,
        Json(roles::create_permission(&ctx, &auth.actor(), tid, body).await?),
    ))
}

/// One permission.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/permissions/{id}", tag = "permissions",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Permission), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_permission(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Permission>> {
    authz::authorize(&ctx, &auth.principal, tid, "permissions", "read").await?;
    Ok(Json(roles::get_permission(&ctx, tid, id).await?))
}

/// Updates a permission's description.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/permissions/{id}", tag = "permissions",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UpdatePermission,
    responses((status = 200, body = Permission), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn update_permission(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdatePermission>,
) -> ApiResult<Json<Permission>> {
    authz::authorize(&ctx, &auth.principal, tid, "permissions", "write").await?;
    Ok(Json(
        roles::update_permission(&ctx, &auth.actor(), tid, id, body).await?,
    ))
}

/// Soft-deletes a permission (built-in admin permissions answer 409).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/permissions/{id}", tag = "permissions",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 204), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn delete_permission(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "permissions", "write").await?;
    roles::delete_permission(&ctx, &auth.actor(), tid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Previous versions (kept on every update and delete).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/permissions/{id}/history", tag = "permissions",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn permission_history(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    authz::authorize(&ctx, &auth.principal, tid, "permissions", "read").await?;
    Ok(Json(
        crate::audit::history(&ctx, tid, "permission", id).await?,
    ))
}
