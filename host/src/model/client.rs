//! OAuth clients.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::time::Timestamp;

/// Whether a client can keep a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// Browser or native app: no secret, PKCE required.
    Public,
    /// Server-side app with a secret.
    Confidential,
}

impl ClientType {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Confidential => "confidential",
        }
    }
}

/// An OAuth client as rendered by the API (the secret hash is never a field).
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct OAuthClient {
    /// Internal id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Application the client belongs to, if any.
    pub application_id: Option<Uuid>,
    /// The public `client_id`.
    pub client_id: String,
    /// Human name.
    pub name: String,
    /// `public` or `confidential`.
    pub client_type: String,
    /// Exact-match redirect URIs.
    #[sqlx(json)]
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    #[sqlx(json)]
    pub grant_types: Vec<String>,
    /// Allowed scopes.
    #[sqlx(json)]
    pub scopes: Vec<String>,
    /// PKCE required on the authorization code flow.
    pub require_pkce: bool,
    /// Consent screen required.
    pub require_consent: bool,
    /// First-party clients (such as `admin-cli`) are created by the server.
    pub first_party: bool,
    /// Access token lifetime override, seconds.
    pub access_token_lifetime: Option<i64>,
    /// Refresh token lifetime override, seconds.
    pub refresh_token_lifetime: Option<i64>,
    /// The user that represents this client in client_credentials grants.
    pub service_account_user_id: Option<Uuid>,
    /// OpenID Connect metadata (authentication method, keys, ID token
    /// algorithm, logout redirects, DPoP).
    #[sqlx(json)]
    #[serde(flatten)]
    pub oidc_settings: ClientOidcSettings,
    /// Disabled clients get no tokens.
    pub enabled: bool,
    /// Optimistic version.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

/// How a client authenticates at the token, introspection and revocation
/// endpoints (RFC 7591 `token_endpoint_auth_method`).
pub const CLIENT_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// Algorithms a client may choose for its ID tokens. `EdDSA` and `Ed25519`
/// name the same Ed25519 key: RFC 9864 deprecates the polymorphic `EdDSA`
/// and strict libraries accept only `Ed25519`, older ones only `EdDSA`.
pub const ID_TOKEN_ALGS: &[&str] = &["RS256", "ES256", "EdDSA", "Ed25519"];

/// OpenID Connect client metadata kept beside the core client columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ClientOidcSettings {
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or
    /// `none`; unset means `client_secret_basic` for confidential clients
    /// and `none` for public ones.
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys (a JWK Set) for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// ID token signing algorithm (default `RS256`, as OpenID Connect
    /// Dynamic Registration specifies).
    pub id_token_signed_response_alg: Option<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 9449 §5.2: the client must present DPoP proofs at the token
    /// endpoint, so all its tokens are sender-constrained.
    pub dpop_bound_access_tokens: bool,
}

impl OAuthClient {
    /// The effective token endpoint authentication method.
    pub fn auth_method(&self) -> &str {
        match self.oidc_settings.token_endpoint_auth_method.as_deref() {
            Some(m) => m,
            None if self.is_confidential() => "client_secret_basic",
            None => "none",
        }
    }

    /// The effective ID token signing algorithm.
    pub fn id_token_alg(&self) -> &str {
        self.oidc_settings
            .id_token_signed_response_alg
            .as_deref()
            .unwrap_or("RS256")
    }

    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Whether this is a confidential client.
    pub fn is_confidential(&self) -> bool {
        self.client_type == ClientType::Confidential.as_str()
    }
}

/// A client together with its stored secret hash, for authentication only.
#[derive(Debug, Clone)]
pub struct ClientWithSecret {
    /// The client.
    pub client: OAuthClient,
    /// SHA-256 of the secret, hex; `None` for public clients.
    pub secret_hash: Option<String>,
}

/// A signing key as stored: the private half sealed with the master key.
#[derive(Debug, Clone, FromRow)]
pub struct SigningKeyRecord {
    /// Key id (`kid`).
    pub kid: String,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// JOSE algorithm name.
    pub algorithm: String,
    /// Public JWK.
    #[sqlx(json)]
    pub public_jwk: serde_json::Value,
    /// AES-256-GCM sealed private key.
    pub private_key_enc: String,
    /// `active` signs; `retired` only verifies.
    pub status: String,
    /// Creation time.
    pub created_at: Timestamp,
}
