//! OAuth error responses (RFC 6749 §5.2).

use serde::Serialize;

/// An OAuth error: code, description and HTTP status.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{error}: {error_description}")]
pub struct OAuthError {
    /// RFC 6749 error code.
    pub error: &'static str,
    /// Human-readable explanation.
    pub error_description: String,
    /// HTTP status to answer with.
    #[serde(skip)]
    pub status: u16,
    /// A fresh `DPoP-Nonce` header to send with the error.
    #[serde(skip)]
    pub dpop_nonce: Option<String>,
    /// The `WWW-Authenticate` challenge (resource endpoints).
    #[serde(skip)]
    pub www_authenticate: Option<String>,
}

impl OAuthError {
    fn new(error: &'static str, status: u16, d: impl Into<String>) -> Self {
        Self {
            error,
            error_description: d.into(),
            status,
            dpop_nonce: None,
            www_authenticate: None,
        }
    }
    /// `invalid_dpop_proof` (400, RFC 9449 §5).
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new("invalid_dpop_proof", 400, d)
    }
    /// `use_dpop_nonce` (400, RFC 9449 §8) carrying the nonce to use.
    pub fn use_dpop_nonce(nonce: String) -> Self {
        let mut e = Self::new(
            "use_dpop_nonce",
            400,
            "a DPoP proof with the server-provided nonce is required",
        );
        e.dpop_nonce = Some(nonce);
        e
    }
    /// `invalid_token` (401) for resource endpoints.
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new("invalid_token", 401, d)
    }
    /// `insufficient_scope` (403) for resource endpoints.
    pub fn insufficient_scope(d: impl Into<String>) -> Self {
        Self::new("insufficient_scope", 403, d)
    }
    /// `unsupported_token_type` (400, RFC 7009).
    pub fn unsupported_token_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_token_type", 400, d)
    }
    /// Sets the challenge a resource endpoint answers with: `scheme` is
    /// `Bearer` or `DPoP`; 400/401/403 errors carry their code in it.
    pub fn challenge(mut self, scheme: &str) -> Self {
        let mut c = format!("{scheme} realm=\"vaultaris\"");
        if self.error != "invalid_request" || self.status != 401 {
            c.push_str(&format!(
                ", error=\"{}\", error_description=\"{}\"",
                self.error,
                self.error_description.replace(['"', '\\'], "'")
            ));
        }
        if scheme == "DPoP" {
            c.push_str(", algs=\"ES256 EdDSA Ed25519 RS256 PS256\"");
        }
        self.www_authenticate = Some(c);
        if self.error == "invalid_dpop_proof" || self.error == "use_dpop_nonce" {
            self.status = 401;
        }
        self
    }
    /// `invalid_request` (400).
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, d)
    }
    /// `invalid_client` (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, d)
    }
    /// `invalid_grant` (400).
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", 400, d)
    }
    /// `unauthorized_client` (400).
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", 400, d)
    }
    /// `unsupported_grant_type` (400).
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", 400, d)
    }
    /// `invalid_scope` (400).
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", 400, d)
    }
    /// `server_error` (500): logged with detail, answered without.
    pub fn server_error(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "token endpoint failure");
        Self::new(
            "server_error",
            500,
            "the server could not process the request",
        )
    }
    /// Refused by a rate-limiter plugin: `temporarily_unavailable` with
    /// HTTP 429 (RFC 6585), naming when to retry.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(
            "temporarily_unavailable",
            429,
            format!("too many requests; retry in {retry_after_secs} s"),
        )
    }
    /// `temporarily_unavailable` (503) with a description.
    pub fn temporarily_unavailable(d: impl Into<String>) -> Self {
        Self::new("temporarily_unavailable", 503, d)
    }
    /// `temporarily_unavailable` (503).
    pub fn unavailable() -> Self {
        Self::new(
            "temporarily_unavailable",
            503,
            "the server is temporarily unavailable",
        )
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::InvalidText(_) = e {
            return OAuthError::invalid_request(
                "the request contains characters that cannot be processed",
            );
        }
        match crate::error::Error::from(e) {
            crate::error::Error::Unavailable(_) => OAuthError::unavailable(),
            other => OAuthError::server_error(other),
        }
    }
}

impl From<crate::oauth::keys::KeyError> for OAuthError {
    /// Keys that cannot be opened now (their encryption provider failed, or
    /// a stored key failed authentication) answer `temporarily_unavailable`
    /// (503), logged with the cause, which the client is not told.
    fn from(e: crate::oauth::keys::KeyError) -> Self {
        match e {
            crate::oauth::keys::KeyError::Store(s) => OAuthError::from(s),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "signing keys unavailable");
                OAuthError::temporarily_unavailable(
                    "the issuer's signing keys are temporarily unavailable",
                )
            }
            other => OAuthError::server_error(other),
        }
    }
}
