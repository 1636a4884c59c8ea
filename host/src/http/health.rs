//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::Ctx;

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Database backend.
    pub database: &'static str,
    /// Server version.
    pub version: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Health)))]
async fn health(State(ctx): State<Ctx>) -> Json<Health> {
    Json(Health {
        status: "ok",
        database: ctx.store.backend(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Readiness: the database answers a query.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn ready(State(ctx): State<Ctx>) -> (StatusCode, Json<Health>) {
    let ok = tokio::time::timeout(std::time::Duration::from_secs(3), ctx.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if ok { "ok" } else { "unavailable" },
            database: ctx.store.backend(),
            version: env!("CARGO_PKG_VERSION"),
        }),
    )
}
