//! Client authentication at the token, introspection and revocation
//! endpoints: `client_secret_basic`, `client_secret_post`, `private_key_jwt`
//! (RFC 7523 §2.2) and `none` for public clients.

use std::sync::Arc;

use serde_json::Value;

use super::cache::CachedClient;
use super::error::OAuthError;
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::jose::verify_jws;
use crate::crypto::secrets::verify_secret;
use crate::model::OAuthClient;
use crate::time::Timestamp;

/// The JWT bearer assertion type of RFC 7523.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Algorithms accepted for client assertions.
const ASSERTION_ALGS: &[&str] = &["RS256", "PS256", "ES256", "EdDSA", "Ed25519"];

/// How the client presented itself.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// Nothing but a `client_id` (public clients).
    None {
        /// The client id.
        client_id: String,
    },
    /// A shared secret from HTTP Basic or the form.
    Secret {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: String,
    },
    /// A signed JWT (`private_key_jwt`).
    Assertion {
        /// The `client_id` form parameter, if sent.
        client_id: Option<String>,
        /// The compact JWT.
        assertion: String,
    },
}

/// Loads a live client (cached) by id.
pub async fn load_client(
    ctx: &Ctx,
    issuer: &Issuer,
    client_id: &str,
) -> Result<Option<Arc<CachedClient>>, OAuthError> {
    let tenant_id = issuer.tenant.id;
    if let Some(c) = ctx.cache.client(tenant_id, client_id) {
        return Ok(Some(c));
    }
    let Some(found) = ctx.store.client_for_auth(tenant_id, client_id).await? else {
        return Ok(None);
    };
    let service_account_enabled = match found.client.service_account_user_id {
        Some(sa) => match ctx.store.get_user(tenant_id, sa).await {
            Ok(u) => u.enabled,
            Err(crate::store::StoreError::NotFound) => false,
            Err(e) => return Err(e.into()),
        },
        None => false,
    };
    let cached = Arc::new(CachedClient {
        client: found,
        service_account_enabled,
    });
    ctx.cache.put_client(tenant_id, cached.clone());
    Ok(Some(cached))
}

/// A replay cache that cannot answer refuses the request (fail closed).
fn unavailable(e: super::replay::ReplayCacheUnavailable) -> OAuthError {
    tracing::error!(error = %e, "replay cache unavailable");
    OAuthError::unavailable()
}

fn bad_credentials() -> OAuthError {
    OAuthError::invalid_client("unknown client or bad credentials")
}

/// Authenticates the client as its registered method requires.
///
/// Security decision: a confidential client registered for a secret may
/// present it by Basic or by form (both are "the secret", as in Keycloak);
/// a `private_key_jwt` client can only use its key, and a public client can
/// never present a secret. Every failure answers the same `invalid_client`.
pub async fn authenticate(
    ctx: &Ctx,
    issuer: &Issuer,
    endpoint_url: &str,
    creds: Option<ClientCredentials>,
) -> Result<Arc<CachedClient>, OAuthError> {
    let creds =
        creds.ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    let client_id = match &creds {
        ClientCredentials::None { client_id } | ClientCredentials::Secret { client_id, .. } => {
            client_id.clone()
        }
        ClientCredentials::Assertion {
            client_id,
            assertion,
        } => assertion_subject(assertion, client_id.as_deref())?,
    };
    let cached = load_client(ctx, issuer, &client_id)
        .await?
        .ok_or_else(bad_credentials)?;
    let client = &cached.client.client;
    if !client.enabled {
        return Err(bad_credentials());
    }
    match (client.auth_method(), &creds) {
        ("none", ClientCredentials::None { .. }) => Ok(cached),
        (
            "client_secret_basic" | "client_secret_post",
            ClientCredentials::Secret { secret, .. },
        ) => match &cached.client.secret_hash {
            Some(hash) if verify_secret(secret, hash) => Ok(cached),
            _ => Err(bad_credentials()),
        },
        ("private_key_jwt", ClientCredentials::Assertion { assertion, .. }) => {
            verify_assertion(ctx, issuer, endpoint_url, client, assertion).await?;
            Ok(cached)
        }
        ("none", _) => Err(OAuthError::invalid_client(
            "public clients authenticate with client_id only",
        )),
        _ => Err(OAuthError::invalid_client(format!(
            "this client must authenticate with {}",
            client.auth_method()
        ))),
    }
}

/// The `sub` of an unverified assertion, which must equal `client_id` when
/// both are present.
fn assertion_subject(assertion: &str, client_id: Option<&str>) -> Result<String, OAuthError> {
    let (_, claims, _, _) = crate::crypto::signing::decode_unverified(assertion)
        .map_err(|_| OAuthError::invalid_client("client_assertion is not a JWT"))?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| OAuthError::invalid_client("client_assertion has no sub"))?;
    if client_id.is_some_and(|c| c != sub) {
        return Err(OAuthError::invalid_client(
            "client_id does not match the assertion's subject",
        ));
    }
    Ok(sub.to_string())
}

/// Checks a `private_key_jwt` assertion (RFC 7523 §3): signature by one of
/// the client's registered keys, `iss` = `sub` = client_id, `aud` naming this
/// issuer or endpoint, a near expiry, and a `jti` never seen before.
async fn verify_assertion(
    ctx: &Ctx,
    issuer: &Issuer,
    endpoint_url: &str,
    client: &OAuthClient,
    assertion: &str,
) -> Result<(), OAuthError> {
    let keys = client
        .oidc_settings
        .jwks
        .as_ref()
        .and_then(|j| j.get("keys"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let jwt = verify_jws(assertion, &keys, ASSERTION_ALGS)
        .map_err(|e| OAuthError::invalid_client(format!("client_assertion refused: {e}")))?;
    let c = &jwt.claims;
    let str_claim = |k: &str| c.get(k).and_then(Value::as_str);
    if str_claim("iss") != Some(client.client_id.as_str())
        || str_claim("sub") != Some(client.client_id.as_str())
    {
        return Err(OAuthError::invalid_client(
            "client_assertion iss and sub must be the client_id",
        ));
    }
    let token_endpoint = issuer.endpoint("/oauth/token");
    let accepted = [issuer.url.as_str(), token_endpoint.as_str(), endpoint_url];
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => accepted.contains(&a.as_str()),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|a| accepted.contains(&a)),
        _ => false,
    };
    if !aud_ok {
        return Err(OAuthError::invalid_client(
            "client_assertion aud must be the issuer or the endpoint URL",
        ));
    }
    let now = Timestamp::now().unix();
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| OAuthError::invalid_client("client_assertion has no exp"))?;
    if exp <= now - 30 {
        return Err(OAuthError::invalid_client("client_assertion has expired"));
    }
    // Security decision: assertions must be short-lived, so the replay
    // cache (which keeps each jti until its exp) stays small. RFC 7523 sets
    // no ceiling; one hour is what common libraries (Authlib) sign with.
    if exp > now + 3600 + 60 {
        return Err(OAuthError::invalid_client(
            "client_assertion must expire within one hour",
        ));
    }
    if c.get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + 60)
    {
        return Err(OAuthError::invalid_client(
            "client_assertion iat is in the future",
        ));
    }
    let jti = str_claim("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| OAuthError::invalid_client("client_assertion needs a jti"))?;
    let key = format!(
        "assertion:{}:{}:{}",
        issuer.tenant.id, client.client_id, jti
    );
    if !ctx
        .replay
        .first_use(key, exp + 30, now)
        .await
        .map_err(unavailable)?
    {
        return Err(OAuthError::invalid_client(
            "client_assertion was already used",
        ));
    }
    Ok(())
}
