//! `/api/v1/tenants/{tenant_id}/audit-logs`: reading and verifying the chain.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery, Auth, PageQuery};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::context::Ctx;
use crate::error::Error;
use crate::model::{AuditRecord, Page};
use crate::store::audit_api::{AuditFilter, ChainVerification};
use crate::time::Timestamp;

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(verify_chain))
        .routes(routes!(get_audit))
}

/// Query of the audit listing.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size (1-200).
    pub per_page: Option<i64>,
    /// Exact action, e.g. `user.create`.
    pub action: Option<String>,
    /// Acting user id.
    pub actor_id: Option<Uuid>,
    /// Inclusive lower bound (RFC 3339).
    pub from: Option<String>,
    /// Exclusive upper bound (RFC 3339).
    pub to: Option<String>,
}

fn instant(field: &str, v: Option<&str>) -> Result<Option<Timestamp>, Error> {
    v.map(|s| Timestamp::parse(s).map_err(|_| Error::field(field, "must be an RFC 3339 timestamp")))
        .transpose()
}

/// Audit records, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/audit-logs", tag = "audit",
    params(("tenant_id" = Uuid, Path), AuditQuery), responses((status = 200, body = Page<AuditRecord>), (status = 422, body = Problem)), security(("bearer" = [])))]
async fn list_audit(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    authz::authorize(&ctx, &auth.principal, tid, "audit", "read").await?;
    let page = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .to_request()?;
    if q.action.as_ref().is_some_and(|a| a.len() > 100) {
        return Err(Error::field("action", "must be at most 100 characters").into());
    }
    let filter = AuditFilter {
        action: q.action,
        actor_id: q.actor_id,
        from: instant("from", q.from.as_deref())?,
        to: instant("to", q.to.as_deref())?,
    };
    let (data, total) = ctx
        .store
        .list_audit(tid, &filter, page)
        .await
        .map_err(Error::from)?;
    Ok(Json(Page {
        data,
        page: page.page,
        per_page: page.per_page,
        total,
    }))
}

/// One audit record.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/audit-logs/{id}", tag = "audit",
    params(("tenant_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = AuditRecord), (status = 404, body = Problem)), security(("bearer" = [])))]
async fn get_audit(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<AuditRecord>> {
    authz::authorize(&ctx, &auth.principal, tid, "audit", "read").await?;
    Ok(Json(
        ctx.store
            .get_audit(tid, id)
            .await
            .map_err(Error::from_store("audit record"))?,
    ))
}

/// Recomputes the tenant's hash chain and reports the first break, if any.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/audit-logs/verify", tag = "audit",
    params(("tenant_id" = Uuid, Path)), responses((status = 200, body = ChainVerification)), security(("bearer" = [])))]
async fn verify_chain(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<Json<ChainVerification>> {
    authz::authorize(&ctx, &auth.principal, tid, "audit", "read").await?;
    Ok(Json(
        ctx.store
            .verify_audit_chain(tid)
            .await
            .map_err(Error::from)?,
    ))
}
