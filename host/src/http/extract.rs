//! Extractors: parse and authenticate, answering problem+json on failure.

use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::problem::Problem;
use crate::audit::{RequestMeta, actor_of};
use crate::context::Ctx;
use crate::model::{Actor, PageRequest};
use crate::oauth::verify::{Principal, verify_access_token};

use super::problem::ApiError;

/// JSON body; malformed JSON, wrong content type, unknown fields and
/// oversized bodies answer problem+json.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(r: JsonRejection) -> Problem {
    let status = r.status();
    let detail = r.body_text();
    match r {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported Media Type",
            "expected Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid body",
            detail,
        ),
        JsonRejection::JsonSyntaxError(_) => Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            detail,
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            status,
            "payload-too-large",
            "Payload Too Large",
            "the request body is too large",
        ),
        _ => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "Invalid body",
            detail,
        ),
    }
}

/// Path parameters; an invalid UUID answers 400 problem+json.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(r) => Err(path_problem(r)),
        }
    }
}

fn path_problem(r: PathRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-path",
        "Invalid path parameter",
        r.body_text(),
    )
}

/// Query string; invalid values answer 400 problem+json.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(r) => Err(query_problem(r)),
        }
    }
}

fn query_problem(r: QueryRejection) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-query",
        "Invalid query parameter",
        r.body_text(),
    )
}

/// Pagination query: `page` (from 1) and `per_page` (1-200, default 50).
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
pub struct PageQuery {
    /// 1-based page number.
    pub page: Option<i64>,
    /// Items per page (1-200).
    pub per_page: Option<i64>,
}

impl PageQuery {
    /// Validates into a `PageRequest`.
    pub fn to_request(self) -> Result<PageRequest, ApiError> {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(50);
        let mut errors = Vec::new();
        if !(1..=1_000_000).contains(&page) {
            errors.push(crate::error::FieldError {
                field: "page".into(),
                message: "must be between 1 and 1000000".into(),
            });
        }
        if !(1..=200).contains(&per_page) {
            errors.push(crate::error::FieldError {
                field: "per_page".into(),
                message: "must be between 1 and 200".into(),
            });
        }
        if errors.is_empty() {
            Ok(PageRequest { page, per_page })
        } else {
            Err(ApiError(crate::error::Error::Validation(errors)))
        }
    }
}

/// Caller facts recorded in the audit log.
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(request_meta(parts)))
    }
}

/// IP (the TCP peer; proxies' forwarding headers are not trusted) and user agent.
fn request_meta(parts: &Parts) -> RequestMeta {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect());
    RequestMeta { ip, user_agent }
}

/// An authenticated admin API caller (Bearer access token).
pub struct Auth {
    /// The verified caller.
    pub principal: Principal,
    /// Request facts.
    pub meta: RequestMeta,
}

impl Auth {
    /// The audit actor for this caller.
    pub fn actor(&self) -> Actor {
        actor_of(&self.principal, &self.meta)
    }
}

impl FromRequestParts<Ctx> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                crate::error::Error::Unauthorized("a Bearer access token is required".into())
            })?;
        if token.len() > 8192 {
            return Err(
                crate::error::Error::Unauthorized("access token is too long".into()).into(),
            );
        }
        let principal = verify_access_token(ctx, token).await?;
        tracing::Span::current().record("tenant_id", tracing::field::display(principal.tenant_id));
        Ok(Self {
            principal,
            meta: request_meta(parts),
        })
    }
}
