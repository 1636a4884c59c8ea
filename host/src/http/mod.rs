//! HTTP: axum routers (one module per resource), extractors, problem+json,
//! and the OpenAPI document generated from the handlers.

pub mod applications;
pub mod audit;
pub mod clients;
pub mod extract;
pub mod federated_identities;
pub mod groups;
pub mod health;
pub mod keys;
pub mod oauth;
pub mod pages;
pub mod password_reset;
pub mod plugins;
pub mod problem;
pub mod roles;
pub mod sessions;
pub mod setup;
pub mod tenants;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_scalar::{Scalar, Servable};

use crate::context::Ctx;
use problem::Problem;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Vaultaris", description = "Identity and access management: admin API and OAuth endpoints."),
    modifiers(&BearerAuth),
    tags(
        (name = "setup", description = "First-run setup"),
        (name = "oauth", description = "OAuth 2.0 endpoints per issuer"),
        (name = "tenants", description = "Tenants"),
        (name = "users", description = "Users, their roles and effective permissions"),
        (name = "sessions", description = "Browser sessions (SSO) and their revocation"),
        (name = "roles", description = "Roles and composite roles"),
        (name = "permissions", description = "Permissions (resource:action)"),
        (name = "groups", description = "Hierarchical groups"),
        (name = "applications", description = "Applications"),
        (name = "clients", description = "OAuth clients"),
        (name = "audit", description = "Hash-chained audit log"),
        (name = "plugins", description = "Installed plugins and tenants' plugin activations"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every route with its OpenAPI description.
pub fn api() -> (Router<Ctx>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(setup::router())
        .merge(oauth::documented_routes())
        .merge(tenants::router())
        .merge(users::router())
        .merge(federated_identities::router())
        .merge(sessions::router())
        .merge(roles::router())
        .merge(groups::router())
        .merge(applications::router())
        .merge(clients::router())
        .merge(audit::router())
        .merge(keys::router())
        .merge(plugins::router())
        .merge(password_reset::router())
        .split_for_parts()
}

/// After any admin write under `/api/v1/tenants/{id}`, drops what the OAuth
/// endpoints cached about that tenant (clients, the tenant, its settings),
/// so on this node a change takes effect on the next request.
async fn forget_cached_tenant_on_write(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let tenant = (!matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ))
    .then(|| {
        req.uri()
            .path()
            .strip_prefix("/api/v1/tenants/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
    })
    .flatten();
    let res = next.run(req).await;
    if let Some(t) = tenant {
        ctx.cache.invalidate_tenant(t);
    }
    res
}

/// Makes the request id (set by the outer `SetRequestIdLayer`) available
/// to plugin calls made while serving the request.
async fn scope_request_id(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id: std::sync::Arc<str> = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .into();
    crate::plugins::request_id::scope(id, next.run(req)).await
}

/// Records the request in its tenant's metrics when that tenant has a
/// metrics-collector plugin active (others pay one map lookup).
async fn record_tenant_metrics(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !ctx.plugins.any_metrics_collector() {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let group: &'static str = if path.contains("/oauth/") || path.contains("/.well-known/") {
        "oauth"
    } else if path.starts_with("/api/") {
        "admin"
    } else {
        "other"
    };
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    // Resolved after the handler ran: it caches the tenant of `/t/{slug}`.
    let tenant = if let Some(rest) = path.strip_prefix("/api/v1/tenants/") {
        rest.split('/')
            .next()
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
    } else if let Some(rest) = path.strip_prefix("/t/") {
        rest.split('/')
            .next()
            .and_then(|slug| ctx.cache.tenant(slug))
            .map(|t| t.id)
    } else if path.starts_with("/oauth/") || path.starts_with("/.well-known/") {
        Some(crate::model::MASTER_TENANT_ID)
    } else {
        None
    };
    if let Some(t) = tenant
        && ctx
            .plugins
            .has(t, crate::plugins::Category::MetricsCollector)
    {
        ctx.request_metrics
            .record(t, group, res.status().as_u16(), started.elapsed());
    }
    res
}

/// The application router, before cross-cutting layers.
pub fn router(ctx: Ctx) -> Router {
    let (routes, openapi) = api();
    let doc = openapi.clone();
    routes
        .nest("/t/{slug}", oauth::issuer_routes())
        .route(
            "/reset-password",
            get(password_reset::reset_page).post(password_reset::reset_submit),
        )
        .route(
            "/api/v1/docs/openapi.json",
            get(move || async move { axum::Json(doc) }),
        )
        .merge(Scalar::with_url("/api/v1/docs", openapi))
        .fallback(|| async {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not Found",
                "no route matches this path",
            )
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method Not Allowed",
                "this path does not accept this method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            forget_cached_tenant_on_write,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            record_tenant_metrics,
        ))
        .layer(axum::middleware::from_fn(scope_request_id))
        .with_state(ctx)
}
