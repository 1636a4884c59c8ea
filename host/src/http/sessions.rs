//! `/api/v1/tenants/{tenant_id}/sessions` and `/users/{id}/sessions`:
//! listing live browser sessions and ending them (which revokes the tokens
//! issued from them).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery, Auth, PageQuery};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::context::Ctx;
use crate::model::Page;
use crate::sessions::admin::{self, SessionInfo};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(user_sessions, revoke_user_sessions))
}

/// Query of the session listing.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SessionListQuery {
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size (1-200).
    pub per_page: Option<i64>,
    /// Only this user's sessions.
    pub user_id: Option<Uuid>,
}

/// Live (not ended, not expired) browser sessions, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/sessions", tag = "sessions",
    params(("tenant_id" = Uuid, Path), SessionListQuery),
    responses((status = 200, body = Page<SessionInfo>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn list_sessions(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<SessionListQuery>,
) -> ApiResult<Json<Page<SessionInfo>>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    let page = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .to_request()?;
    Ok(Json(admin::list(&ctx, tid, q.user_id, page).await?))
}

/// Ends a session and revokes the grants issued from it: its refresh and
/// access tokens stop being active and the browser must sign in again.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/sessions/{id}", tag = "sessions",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn revoke_session(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    let session = admin::open_session(&ctx, tid, id).await?;
    authz::delegation::ensure_can_manage_user(&ctx, &auth.principal, tid, session.user_id).await?;
    admin::revoke(&ctx, &auth.actor(), &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Live browser sessions of one user, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{id}/sessions", tag = "sessions",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<SessionInfo>), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn user_sessions(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<SessionInfo>>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    let page = q.to_request()?;
    Ok(Json(admin::list_for_user(&ctx, tid, id, page).await?))
}

/// Ends every session of a user and revokes every grant of the user, from a
/// session or not: all of the user's refresh and access tokens that name a
/// grant stop being active.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/users/{id}/sessions", tag = "sessions",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn revoke_user_sessions(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    authz::delegation::ensure_can_manage_user(&ctx, &auth.principal, tid, id).await?;
    admin::revoke_all_for_user(&ctx, &auth.actor(), tid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
