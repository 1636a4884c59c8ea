//! `/api/v1/tenants/{tenant_id}/applications`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, PageQuery};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::context::Ctx;
use crate::model::{Application, HistoryEntry, Page};
use crate::tenancy::applications::{self, CreateApplication, UpdateApplication};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_applications, create_application))
        .routes(routes!(
            get_application,
            update_application,
            delete_application
        ))
        .routes(routes!(application_history))
}

/// Lists applications.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/applications", tag = "applications",
    params(("tenant_id" = Uuid, Path), PageQuery), responses((status = 200, body = Page<Application>)), security(("bearer" = [])))]
async fn list_applications(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Application>>> {
    authz::authorize(&ctx, &auth.principal, tid, "applications", "read").await?;
    Ok(Json(applications::list(&ctx, tid, q.to_request()?).await?))
}

/// Creates an application.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/applications", tag = "applications",
    params(("tenant_id" = Uuid, Path)), request_body = CreateApplication,
    responses((status = 201, body = Application), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn create_application(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateApplication>,
) -> ApiResult<(StatusCode, Json<Application>)> {
    authz::authorize(&ctx, &auth.principal, tid, "applications", "write").await?;
    Ok((
        StatusCode::CREATED,
        Json(applications::create(&ctx, &auth.actor(), tid, body).await?),
    ))
}

/// One application.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/applications/{id}", tag = "applications",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = Application), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_application(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Application>> {
    authz::authorize(&ctx, &auth.principal, tid, "applications", "read").await?;
    Ok(Json(applications::get(&ctx, tid, id).await?))
}

/// Updates an application.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/applications/{id}", tag = "applications",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UpdateApplication,
    responses((status = 200, body = Application), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn update_application(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateApplication>,
) -> ApiResult<Json<Application>> {
    authz::authorize(&ctx, &auth.principal, tid, "applications", "write").await?;
    Ok(Json(
        applications::update(&ctx, &auth.actor(), tid, id, body).await?,
    ))
}

/// Soft-deletes an application that owns no clients or roles.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/applications/{id}", tag = "applications",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 204), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn delete_application(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "applications", "write").await?;
    applications::delete(&ctx, &auth.actor(), tid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Previous versions (kept on every update and delete).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/applications/{id}/history", tag = "applications",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn application_history(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    authz::authorize(&ctx, &auth.principal, tid, "applications", "read").await?;
    Ok(Json(
        crate::audit::history(&ctx, tid, "application", id).await?,
    ))
}
