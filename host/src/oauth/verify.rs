//! Verifying access tokens presented to the admin API.

use serde_json::Value;
use uuid::Uuid;

use super::client_auth::load_client;
use super::introspection::active_access_token;
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::signing::decode_unverified;
use crate::error::Error;

/// Who is calling, established from a verified access token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant that issued the token.
    pub tenant_id: Uuid,
    /// The user (or service account) the token was issued to.
    pub user_id: Uuid,
    /// The client the token was issued to.
    pub client_id: String,
    /// Whether the subject is a client's service account.
    pub is_client: bool,
}

fn unauthorized(m: &str) -> Error {
    Error::Unauthorized(m.to_string())
}

/// Verifies an access token for the admin API and returns the caller.
///
/// The token must be active at its issuer exactly as introspection sees it
/// (`introspection::active_access_token`: signature, type, issuer, times,
/// revocation of the token or its grant, a live client, tenant and
/// subject); the admin API then adds its own audience rules below.
pub async fn verify_access_token(ctx: &Ctx, token: &str) -> Result<Principal, Error> {
    let (_, unverified, _, _) =
        decode_unverified(token).map_err(|_| unauthorized("malformed access token"))?;
    let iss = unverified
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| unauthorized("token has no issuer"))?;
    let issuer = Issuer::from_url(ctx, iss)
        .await?
        .ok_or_else(|| unauthorized("token issuer is not this server"))?;
    let active = match active_access_token(ctx, &issuer, token).await {
        Ok(Ok(a)) => a,
        Ok(Err(reason)) => return Err(unauthorized(reason)),
        Err(e) if e.status == 503 => return Err(Error::Unavailable(e.error_description)),
        Err(e) => return Err(Error::Internal(e.error_description)),
    };
    // The admin API takes bearer tokens only; a DPoP-bound token presented
    // as a bearer token is refused, never downgraded (RFC 9449 §7.2).
    if active.jkt().is_some() {
        return Err(unauthorized(
            "DPoP-bound tokens cannot be used as bearer tokens",
        ));
    }
    // Security decision: the admin API is not a resource server for every
    // relying party. A user's token counts here only when a first-party
    // client (such as `admin-cli`) obtained it; any other client's user
    // tokens (issued to some application the user signed in to) are refused,
    // or that application would wield the user's admin rights. A service
    // account's own client_credentials token acts with its roles.
    let client_id = active
        .claims
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let first_party = load_client(ctx, &issuer, &client_id)
        .await
        .map_err(|e| Error::Internal(e.error_description))?
        .is_some_and(|c| c.client.client.first_party);
    let is_service_token = active.claims.get("sub_type").and_then(Value::as_str) == Some("client");
    if !first_party && !is_service_token {
        return Err(unauthorized(
            "this token was issued to an application, not to an admin client",
        ));
    }
    Ok(Principal {
        tenant_id: issuer.tenant.id,
        user_id: active.user.id,
        client_id,
        is_client: active.user.is_service_account,
    })
}
