//! `/api/v1/tenants`: instance-level tenant administration.

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
use crate::model::{HistoryEntry, Page, TenantView};
use crate::tenancy::{self, CreateTenant, UpdateTenant};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
        .routes(routes!(tenant_history))
}

/// Lists tenants (master-tenant administrators only).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    params(PageQuery), responses((status = 200, body = Page<TenantView>), (status = 403, body = Problem)), security(("bearer" = [])))]
async fn list_tenants(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<TenantView>>> {
    authz::authorize_instance(&ctx, &auth.principal, "tenants", "read").await?;
    Ok(Json(tenancy::list_tenants(&ctx, q.to_request()?).await?))
}

/// Creates a tenant with its own issuer, keys, `admin` role and `admin-cli` client.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn create_tenant(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    authz::authorize_instance(&ctx, &auth.principal, "tenants", "write").await?;
    Ok((
        StatusCode::CREATED,
        Json(tenancy::create_tenant(&ctx, &auth.actor(), body).await?),
    ))
}

/// One tenant (a tenant's own administrators may read theirs).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = Uuid, Path)), responses((status = 200, body = TenantView), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_tenant(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<Json<TenantView>> {
    authz::authorize(&ctx, &auth.principal, tid, "tenants", "read").await?;
    Ok(Json(tenancy::get_tenant(&ctx, tid).await?))
}

/// Updates a tenant (a tenant's own administrators may update theirs).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = Uuid, Path)), request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn update_tenant(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> ApiResult<Json<TenantView>> {
    authz::authorize(&ctx, &auth.principal, tid, "tenants", "write").await?;
    if body.enabled.is_some() {
        // Disabling a tenant cuts off all its tokens; only the instance decides that.
        authz::authorize_instance(&ctx, &auth.principal, "tenants", "write").await?;
    }
    Ok(Json(
        tenancy::update_tenant(&ctx, &auth.actor(), tid, body).await?,
    ))
}

/// Soft-deletes a tenant (master-tenant administrators only).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn delete_tenant(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    authz::authorize_instance(&ctx, &auth.principal, "tenants", "write").await?;
    tenancy::delete_tenant(&ctx, &auth.actor(), tid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Previous versions of a tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/history", tag = "tenants",
    params(("tenant_id" = Uuid, Path)), responses((status = 200, body = Vec<HistoryEntry>)), security(("bearer" = [])))]
async fn tenant_history(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    authz::authorize(&ctx, &auth.principal, tid, "tenants", "read").await?;
    Ok(Json(crate::audit::history(&ctx, tid, "tenant", tid).await?))
}
