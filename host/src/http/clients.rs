//! `/api/v1/tenants/{tenant_id}/clients`.

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
use crate::model::{HistoryEntry, OAuthClient, Page};
use crate::oauth::clients::{self, ClientWithPlainSecret, CreateClient, UpdateClient};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, create_client))
        .routes(routes!(get_client, update_client, delete_client))
        .routes(routes!(rotate_secret))
        .routes(routes!(client_history))
}

/// Lists clients.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/clients", tag = "clients",
    params(("tenant_id" = Uuid, Path), PageQuery), responses((status = 200, body = Page<OAuthClient>)), security(("bearer" = [])))]
async fn list_clients(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<OAuthClient>>> {
    authz::authorize(&ctx, &auth.principal, tid, "clients", "read").await?;
    Ok(Json(clients::list(&ctx, tid, q.to_request()?).await?))
}

/// Registers a client; a confidential client's secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/clients", tag = "clients",
    params(("tenant_id" = Uuid, Path)), request_body = CreateClient,
    responses((status = 201, body = ClientWithPlainSecret), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn create_client(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateClient>,
) -> ApiResult<(StatusCode, Json<ClientWithPlainSecret>)> {
    authz::authorize(&ctx, &auth.principal, tid, "clients", "write").await?;
    Ok((
        StatusCode::CREATED,
        Json(clients::create(&ctx, &auth.actor(), tid, body).await?),
    ))
}

/// One client (never its secret).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/clients/{id}", tag = "clients",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = OAuthClient), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_client(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<OAuthClient>> {
    authz::authorize(&ctx, &auth.principal, tid, "clients", "read").await?;
    Ok(Json(clients::get(&ctx, tid, id).await?))
}

/// Updates a client.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/clients/{id}", tag = "clients",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UpdateClient,
    responses((status = 200, body = OAuthClient), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn update_client(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateClient>,
) -> ApiResult<Json<OAuthClient>> {
    authz::authorize(&ctx, &auth.principal, tid, "clients", "write").await?;
    Ok(Json(
        clients::update(&ctx, &auth.actor(), tid, id, body).await?,
    ))
}

/// Soft-deletes a client and its service account.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/clients/{id}", tag = "clients",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 204), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn delete_client(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "clients", "write").await?;
    clients::delete(&ctx, &auth.actor(), tid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Issues a new secret (shown once); the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/clients/{id}/secret", tag = "clients",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = ClientWithPlainSecret), (status = 409, body = Problem)), security(("bearer" = [])))]
async fn rotate_secret(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<ClientWithPlainSecret>> {
    authz::authorize(&ctx, &auth.principal, tid, "clients", "write").await?;
    Ok(Json(
        clients::rotate_secret(&ctx, &auth.actor(), tid, id).await?,
    ))
}

/// Previous versions (kept on every update and delete).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/clients/{id}/history", tag = "clients",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn client_history(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    authz::authorize(&ctx, &auth.principal, tid, "clients", "read").await?;
    Ok(Json(crate::audit::history(&ctx, tid, "client", id).await?))
}
