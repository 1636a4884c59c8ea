//! The OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414): exactly
//! what this server implements, per issuer.

use serde_json::{Value, json};

use super::authorize::STANDARD_SCOPES;
use super::dpop::DPOP_ALGS;
use super::issuer::Issuer;
use super::token::GRANT_TYPES;
use crate::model::{CLIENT_AUTH_METHODS, ID_TOKEN_ALGS};

/// The discovery document for `issuer`.
pub fn metadata(issuer: &Issuer) -> Value {
    let e = |p: &str| issuer.endpoint(p);
    let auth_algs = ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"];
    json!({
        "issuer": issuer.url,
        "authorization_endpoint": e("/oauth/authorize"),
        "token_endpoint": e("/oauth/token"),
        "userinfo_endpoint": e("/oauth/userinfo"),
        "jwks_uri": e("/.well-known/jwks.json"),
        "revocation_endpoint": e("/oauth/revoke"),
        "introspection_endpoint": e("/oauth/introspect"),
        "end_session_endpoint": e("/oauth/logout"),
        "scopes_supported": STANDARD_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ID_TOKEN_ALGS,
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": auth_algs,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": auth_algs,
        "introspection_endpoint_auth_methods_supported": &CLIENT_AUTH_METHODS[..3],
        "introspection_endpoint_auth_signing_alg_values_supported": auth_algs,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "azp",
            "name", "given_name", "family_name", "preferred_username", "locale", "zoneinfo",
            "picture", "updated_at", "email", "email_verified", "phone_number"
        ],
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login", "consent"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": DPOP_ALGS,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}
