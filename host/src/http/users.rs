//! `/api/v1/tenants/{tenant_id}/users`: users, their roles, groups, history
//! and `check-access`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageQuery};
use super::problem::{ApiResult, Problem};
use crate::authz::roles::RoleRef;
use crate::authz::{self, AccessDecision};
use crate::context::Ctx;
use crate::identity::users::{self, CreateUser, SetPassword, UpdateUser};
use crate::model::{Group, HistoryEntry, Page, Role, User};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password))
        .routes(routes!(user_roles, assign_role))
        .routes(routes!(unassign_role))
        .routes(routes!(user_groups))
        .routes(routes!(user_history))
        .routes(routes!(check_access))
}

/// Query of the user listing.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UserListQuery {
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size (1-200).
    pub per_page: Option<i64>,
    /// Case-insensitive substring of the email.
    pub email: Option<String>,
}

/// Lists users.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users", tag = "users",
    params(("tenant_id" = Uuid, Path), UserListQuery),
    responses((status = 200, body = Page<User>), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_users(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> ApiResult<Json<Page<User>>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    let page = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .to_request()?;
    Ok(Json(users::list(&ctx, tid, q.email, page).await?))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/users", tag = "users",
    params(("tenant_id" = Uuid, Path)), request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn create_user(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    Ok((
        StatusCode::CREATED,
        Json(users::create(&ctx, &auth.actor(), tid, body).await?),
    ))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{id}", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_user(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<User>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    Ok(Json(users::get(&ctx, tid, id).await?))
}

/// Updates a user (absent fields unchanged, `null` clears).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/users/{id}", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn update_user(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    authz::delegation::ensure_can_manage_user(&ctx, &auth.principal, tid, id).await?;
    Ok(Json(
        users::update(&ctx, &auth.actor(), tid, id, body).await?,
    ))
}

/// Soft-deletes a user.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/users/{id}", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn delete_user(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    authz::delegation::ensure_can_manage_user(&ctx, &auth.principal, tid, id).await?;
    users::delete(&ctx, &auth.actor(), tid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/users/{id}/password", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = SetPassword,
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn set_password(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    authz::delegation::ensure_can_manage_user(&ctx, &auth.principal, tid, id).await?;
    users::set_password(&ctx, &auth.actor(), tid, id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Roles assigned directly to a user.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{id}/roles", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Role>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn user_roles(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<Role>>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    Ok(Json(users::roles(&ctx, tid, id).await?))
}

/// Assigns a role to a user.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/users/{id}/roles", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = RoleRef,
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn assign_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<RoleRef>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    authz::delegation::ensure_can_assign_role(&ctx, &auth.principal, tid, body.role_id).await?;
    users::assign_role(&ctx, &auth.actor(), tid, id, body.role_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a role from a user.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/users/{id}/roles/{role_id}", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), ("role_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn unassign_role(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id, role_id)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    users::unassign_role(&ctx, &auth.actor(), tid, id, role_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Groups a user is a direct member of.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{id}/groups", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Group>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn user_groups(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<Group>>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    Ok(Json(users::groups(&ctx, tid, id).await?))
}

/// Previous versions of a user (kept on every update and delete).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{id}/history", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn user_history(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    Ok(Json(crate::audit::history(&ctx, tid, "user", id).await?))
}

/// Query of `check-access`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CheckAccessQuery {
    /// Resource, e.g. `documents`.
    pub resource: String,
    /// Action, e.g. `read`.
    pub action: String,
}

/// Whether the user effectively holds `resource:action` (direct roles,
/// composite roles, group roles up the group hierarchy).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{id}/check-access", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), CheckAccessQuery),
    responses((status = 200, body = AccessDecision), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn check_access(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(q): ApiQuery<CheckAccessQuery>,
) -> ApiResult<Json<AccessDecision>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    let mut v = crate::identity::validate::Validator::new();
    v.ident("resource", &q.resource);
    v.ident("action", &q.action);
    v.finish()?;
    Ok(Json(
        authz::check_access(&ctx, tid, id, &q.resource, &q.action).await?,
    ))
}
