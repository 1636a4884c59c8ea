//! `/api/v1/tenants/{tenant_id}/keys`: listing, rotating and re-encrypting
//! signing keys.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::MAX_BODY_BYTES;
use super::extract::{ApiJson, ApiPath, Auth};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::context::Ctx;
use crate::oauth::keys::{self, ReencryptReport, RotateKeys, SigningKeyView};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_keys))
        .routes(routes!(rotate_keys))
        .routes(routes!(reencrypt_keys))
}

/// An optional JSON object body: an empty body is `None`; anything else must
/// be a JSON object, with the usual problem+json answers (`ApiJson`).
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    "Payload Too Large",
                    "the request body is too large",
                )
            })?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        let req = Request::from_parts(parts, Body::from(bytes));
        let ApiJson(v) = ApiJson::<serde_json::Value>::from_request(req, state).await?;
        let invalid = |detail: String| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid body",
                detail,
            )
        };
        // serde would read a struct from a JSON array too; only an object
        // is a valid body here.
        if !v.is_object() {
            return Err(invalid("expected a JSON object".into()));
        }
        serde_json::from_value(v)
            .map(|t| Self(Some(t)))
            .map_err(|e| invalid(e.to_string()))
    }
}

/// The tenant's signing keys (active, retiring, retired) with their public
/// JWKs; never private material.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/keys", tag = "keys",
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = Vec<SigningKeyView>), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_keys(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<SigningKeyView>>> {
    authz::authorize(&ctx, &auth.principal, tid, "keys", "read").await?;
    Ok(Json(keys::list_keys(&ctx, tid).await?))
}

/// Rotates one algorithm's key (or, without a body, all three): the new key
/// signs from now on, the old one keeps verifying until `retire_after`.
/// Answers the new keys.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/keys/rotate", tag = "keys",
    params(("tenant_id" = Uuid, Path)), request_body(content = Option<RotateKeys>, description = "Optional; absent rotates every algorithm"),
    responses((status = 200, body = Vec<SigningKeyView>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn rotate_keys(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    OptionalJson(body): OptionalJson<RotateKeys>,
) -> ApiResult<Json<Vec<SigningKeyView>>> {
    authz::authorize(&ctx, &auth.principal, tid, "keys", "rotate").await?;
    Ok(Json(
        keys::rotate_keys(&ctx, &auth.actor(), tid, body.unwrap_or_default()).await?,
    ))
}

/// Re-encrypts every live signing key of the tenant under its
/// encryption-provider plugin's current key (after the provider was
/// activated, or its current key changed). Keys already under that key are
/// left alone; nothing changes unless every key could be re-encrypted.
/// 409 when the tenant has no active encryption provider or the provider
/// refuses a key; 503 when it is unavailable.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/keys/reencrypt", tag = "keys",
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = ReencryptReport), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn reencrypt_keys(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<Json<ReencryptReport>> {
    authz::authorize(&ctx, &auth.principal, tid, "keys", "rotate").await?;
    Ok(Json(keys::reencrypt_keys(&ctx, &auth.actor(), tid).await?))
}
