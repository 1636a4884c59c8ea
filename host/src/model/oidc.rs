//! OpenID Connect state: browser sessions, authorization codes, grants
//! (token families) and refresh tokens.

use sqlx::FromRow;
use uuid::Uuid;

use crate::time::Timestamp;

/// A signed-in browser at one tenant (the `sid` of ID tokens).
#[derive(Debug, Clone, FromRow)]
pub struct BrowserSession {
    /// Session id, the `sid` claim.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// Signed-in user.
    pub user_id: Uuid,
    /// When the user last presented credentials (`auth_time`).
    pub auth_time: Timestamp,
    /// Authentication methods used, space-separated (`amr`).
    pub amr: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Absolute expiry.
    pub expires_at: Timestamp,
    /// Set when the user logged out or the session was revoked.
    pub ended_at: Option<Timestamp>,
}

/// A one-time authorization code, stored by hash.
#[derive(Debug, Clone, FromRow)]
pub struct AuthorizationCode {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// Tenant.
    pub tenant_id: Uuid,
    /// Client the code was issued to.
    pub client_id: String,
    /// The user who authorized.
    pub user_id: Uuid,
    /// Browser session it came from.
    pub session_id: Option<Uuid>,
    /// The exact redirect URI of the request (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The request's nonce, copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// DPoP key thumbprint bound at the authorization request (`dpop_jkt`).
    pub dpop_jkt: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry (60 seconds after creation).
    pub expires_at: Timestamp,
    /// Set on first redemption.
    pub consumed_at: Option<Timestamp>,
    /// The grant created on redemption; revoked if the code is replayed.
    pub grant_id: Option<Uuid>,
}

/// One delegation from a user to a client: the family of every refresh
/// token rotated from one authorization (RFC 9700 §4.14.2).
#[derive(Debug, Clone, FromRow)]
pub struct OAuthGrant {
    /// Grant (family) id.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// Client.
    pub client_id: String,
    /// User.
    pub user_id: Uuid,
    /// Browser session, if the grant came from one.
    pub session_id: Option<Uuid>,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// DPoP key thumbprint every token of the family is bound to.
    pub dpop_jkt: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// The family's absolute expiry.
    pub expires_at: Timestamp,
    /// Set when the family is revoked.
    pub revoked_at: Option<Timestamp>,
}

/// A refresh token as stored (by hash), with its family.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Family.
    pub grant_id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// `active`, `rotated` or `revoked`.
    pub status: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
}
