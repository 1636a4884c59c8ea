//! `/setup`: first-run set-up of the instance.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiJson, Meta};
use super::problem::{ApiResult, Problem};
use crate::context::Ctx;
use crate::model::Actor;
use crate::tenancy::setup::{self, SetupRequest, SetupResult, SetupStatus};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(check))
        .routes(routes!(status))
        .routes(routes!(run))
}

/// Answer of `GET /setup/check`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupCheck {
    /// Whether `POST /setup` is still needed.
    pub setup_required: bool,
}

/// Whether the instance still needs setup.
#[utoipa::path(get, path = "/setup/check", tag = "setup", responses((status = 200, body = SetupCheck)))]
async fn check(State(ctx): State<Ctx>) -> ApiResult<Json<SetupCheck>> {
    Ok(Json(SetupCheck {
        setup_required: setup::setup_required(&ctx).await?,
    }))
}

/// Installation details.
#[utoipa::path(get, path = "/setup/status", tag = "setup", responses((status = 200, body = SetupStatus)))]
async fn status(State(ctx): State<Ctx>) -> ApiResult<Json<SetupStatus>> {
    Ok(Json(setup::status(&ctx).await?))
}

/// Creates the master tenant, the first administrator and `admin-cli`. Once.
#[utoipa::path(post, path = "/setup", tag = "setup", request_body = SetupRequest,
    responses((status = 201, body = SetupResult), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn run(
    State(ctx): State<Ctx>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<SetupRequest>,
) -> ApiResult<(StatusCode, Json<SetupResult>)> {
    let actor = Actor {
        actor_type: "anonymous".into(),
        actor_id: None,
        ip: meta.ip,
        user_agent: meta.user_agent,
    };
    Ok((
        StatusCode::CREATED,
        Json(setup::run(&ctx, &actor, body).await?),
    ))
}
