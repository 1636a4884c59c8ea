//! The domain error: what every domain module returns, mapped once to HTTP
//! (problem+json) in `http::problem`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// One invalid field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// JSON field name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Errors from domain operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist in this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The input is invalid.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// A server-side failure; the message is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// The database is unreachable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// Result alias for domain calls.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A single-field validation error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// Maps a store error, naming the kind of object for `NotFound`.
    pub fn from_store(kind: &'static str) -> impl FnOnce(StoreError) -> Error {
        move |e| match e {
            StoreError::NotFound => Error::NotFound(kind),
            other => Error::from(other),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::NotFound("resource"),
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::InvalidReference(_) => Error::NotFound("referenced object"),
            StoreError::InvalidText(_) => {
                Error::field("request", "contains characters that cannot be stored (NUL)")
            }
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => Error::Unavailable("database unavailable".into()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<crate::crypto::password::PasswordError> for Error {
    fn from(e: crate::crypto::password::PasswordError) -> Self {
        Error::Internal(e.to_string())
    }
}
