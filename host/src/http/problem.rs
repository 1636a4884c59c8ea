//! RFC 9457 problem+json: the one place domain errors become HTTP.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, FieldError};

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// URI identifying the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level errors for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    /// A problem of `status` with a slug type, title and detail.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://vaultaris.dev/problems/{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let mut res = (status, Json(self)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauthorized {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read: close the connection so
            // the client does not reuse it (RFC 9112 §9.6).
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

/// A domain error on its way out as problem+json.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// Result of a JSON handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.0 {
            Error::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not Found",
                format!("{what} not found"),
            ),
            Error::Conflict(m) => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", m),
            Error::Validation(errors) => Problem {
                errors: Some(errors),
                ..Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Invalid input",
                    "the request has invalid fields",
                )
            },
            Error::Unauthorized(m) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", m)
            }
            Error::Forbidden(m) => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", m),
            Error::Unavailable(m) => {
                tracing::warn!(error = %m, "service unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service Unavailable",
                    "try again later",
                )
            }
            Error::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal Server Error",
                    "an unexpected error occurred",
                )
            }
        }
        .into_response()
    }
}
