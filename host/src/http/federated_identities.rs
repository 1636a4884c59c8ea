//! `/api/v1/tenants/{tenant_id}/users/{id}/federated-identities`: the
//! upstream identities (identity-provider plugins) linked to a user. An
//! administrator links an existing account here instead of trusting an
//! upstream's email claims, and unlinks an identity so it signs in no more
//! (sessions already open stay until revoked through the sessions API).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::context::Ctx;
use crate::error::Error;
use crate::model::AuditEvent;
use crate::store::FederatedIdentityLink;
use crate::time::Timestamp;

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new().routes(routes!(list, link, unlink))
}

/// An upstream identity, as an administrator names it.
#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UpstreamIdentity {
    /// The identity-provider plugin.
    pub plugin_id: String,
    /// The upstream issuer (e.g. the OIDC `iss`).
    pub issuer: String,
    /// The user's id at the upstream (the OIDC `sub`).
    pub subject: String,
}

impl UpstreamIdentity {
    fn check(&self) -> Result<(), Error> {
        for (field, value, max) in [
            ("plugin_id", &self.plugin_id, 64),
            ("issuer", &self.issuer, 255),
            ("subject", &self.subject, 255),
        ] {
            if value.is_empty() || value.len() > max {
                return Err(Error::field(field, format!("must be 1-{max} characters")));
            }
        }
        Ok(())
    }
}

/// A user's linked upstream identities.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/users/{id}/federated-identities", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Vec<FederatedIdentityLink>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<FederatedIdentityLink>>> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "read").await?;
    ctx.store.get_user(tid, id).await.map_err(Error::from)?;
    Ok(Json(
        ctx.store
            .federated_identities_of(tid, id)
            .await
            .map_err(Error::from)?,
    ))
}

/// Links an upstream identity to the user: its next federated sign-in
/// signs this user in. 409 when the identity is linked to another user.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/users/{id}/federated-identities", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = UpstreamIdentity,
    responses((status = 201, body = FederatedIdentityLink), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn link(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpstreamIdentity>,
) -> ApiResult<(StatusCode, Json<FederatedIdentityLink>)> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    body.check()?;
    let link = FederatedIdentityLink {
        plugin_id: body.plugin_id,
        issuer: body.issuer,
        subject: body.subject,
        user_id: id,
        email: None,
        created_at: Timestamp::now(),
        last_login_at: None,
    };
    let event = AuditEvent {
        tenant_id: tid,
        actor: auth.actor(),
        action: "user.federated_identity_linked".into(),
        target_type: "user".into(),
        target_id: Some(id.to_string()),
        changes: json!({
            "plugin": link.plugin_id, "issuer": link.issuer,
            "subject": link.subject, "linked_by": "admin",
        }),
    };
    ctx.store
        .link_federated_identity(tid, &link, &event)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                Error::Conflict("this upstream identity is already linked to a user".into())
            }
            other => Error::from(other),
        })?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Unlinks an upstream identity from the user.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/users/{id}/federated-identities", tag = "users",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path), UpstreamIdentity),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn unlink(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(q): ApiQuery<UpstreamIdentity>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    q.check()?;
    let event = AuditEvent {
        tenant_id: tid,
        actor: auth.actor(),
        action: "user.federated_identity_unlinked".into(),
        target_type: "user".into(),
        target_id: Some(id.to_string()),
        changes: json!({ "plugin": q.plugin_id, "issuer": q.issuer, "subject": q.subject }),
    };
    ctx.store
        .unlink_federated_identity(tid, id, &q.plugin_id, &q.issuer, &q.subject, &event)
        .await
        .map_err(Error::from)?;
    Ok(StatusCode::NO_CONTENT)
}
