//! Verifying access tokens presented to the admin API.

use serde_json::Value;
use uuid::Uuid;

use crate::context::Ctx;
use crate::crypto::signing::{decode_unverified, verify_jwt};
use crate::error::Error;
use crate::model::{MASTER_TENANT_SLUG, Tenant};
use crate::store::StoreError;
use crate::time::Timestamp;

/// Allowed clock skew for `nbf`, seconds.
const LEEWAY: i64 = 30;

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

/// The tenant whose issuer URL is `iss`, if any.
async fn tenant_for_issuer(ctx: &Ctx, iss: &str) -> Result<Tenant, Error> {
    let base = &ctx.config.external_url;
    let slug = if iss == base {
        MASTER_TENANT_SLUG
    } else {
        iss.strip_prefix(base.as_str())
            .and_then(|rest| rest.strip_prefix("/t/"))
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .ok_or_else(|| unauthorized("token issuer is not this server"))?
    };
    match ctx.store.get_tenant_by_slug(slug).await {
        Ok(t) => Ok(t),
        Err(StoreError::NotFound | StoreError::InvalidText(_)) => {
            Err(unauthorized("token issuer is unknown"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Verifies signature, type, issuer, expiry and that the subject is still a
/// live, enabled user; returns the caller.
pub async fn verify_access_token(ctx: &Ctx, token: &str) -> Result<Principal, Error> {
    let (_, unverified, _, _) =
        decode_unverified(token).map_err(|_| unauthorized("malformed access token"))?;
    let iss = unverified
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| unauthorized("token has no issuer"))?;
    let tenant = tenant_for_issuer(ctx, iss).await?;
    if !tenant.enabled {
        return Err(unauthorized("tenant is disabled"));
    }
    let (header, ..) =
        decode_unverified(token).map_err(|_| unauthorized("malformed access token"))?;
    let keys = ctx
        .keys
        .get_for_kid(tenant.id, header.get("kid").and_then(Value::as_str))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let jwt = verify_jwt(token, &keys.jwks)
        .map_err(|e| unauthorized(&format!("invalid access token: {e}")))?;
    if jwt.header.get("typ").and_then(Value::as_str) != Some("at+jwt") {
        return Err(unauthorized("not an access token"));
    }
    let c = &jwt.claims;
    let now = Timestamp::now().unix();
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| unauthorized("token has no expiry"))?;
    if exp <= now {
        return Err(unauthorized("access token has expired"));
    }
    if c.get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|nbf| nbf > now + LEEWAY)
    {
        return Err(unauthorized("access token is not yet valid"));
    }
    if c.get("tenant").and_then(Value::as_str) != Some(tenant.id.to_string().as_str()) {
        return Err(unauthorized("token tenant does not match its issuer"));
    }
    // The admin API takes bearer tokens only; a DPoP-bound token presented
    // as a bearer token is refused, never downgraded (RFC 9449 §7.2).
    if c.get("cnf").is_some() {
        return Err(unauthorized(
            "DPoP-bound tokens cannot be used as bearer tokens",
        ));
    }
    let jti = c.get("jti").and_then(Value::as_str).unwrap_or_default();
    if ctx.store.access_token_revoked(tenant.id, jti).await? {
        return Err(unauthorized("access token has been revoked"));
    }
    if let Some(grant) = crate::oauth::issuance::grant_of_jti(jti)
        && ctx
            .store
            .grant(tenant.id, grant)
            .await?
            .is_none_or(|g| g.revoked_at.is_some())
    {
        return Err(unauthorized("access token has been revoked"));
    }
    // Security decision: the admin API is not a resource server for every
    // relying party. A user's token counts here only when a first-party
    // client (such as `admin-cli`) obtained it; any other client's user
    // tokens (issued to some application the user signed in to) are refused,
    // or that application would wield the user's admin rights. A service
    // account's own client_credentials token acts with its roles. The client
    // must still exist and be enabled, and must be the one that issued the
    // token (a client_id registered again after deletion is another client).
    let client_id = c
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let client = ctx
        .store
        .client_for_auth(tenant.id, client_id)
        .await?
        .map(|c| c.client)
        .filter(|cl| cl.enabled)
        .filter(|cl| {
            c.get("iat")
                .and_then(Value::as_i64)
                .is_some_and(|iat| iat >= cl.created_at.unix())
        })
        .ok_or_else(|| unauthorized("the token's client is disabled or gone"))?;
    let is_service_token = c.get("sub_type").and_then(Value::as_str) == Some("client");
    if !client.first_party && !is_service_token {
        return Err(unauthorized(
            "this token was issued to an application, not to an admin client",
        ));
    }
    let user_id = c
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| unauthorized("token subject is invalid"))?;
    let user = match ctx.store.get_user(tenant.id, user_id).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => return Err(unauthorized("token subject no longer exists")),
        Err(e) => return Err(e.into()),
    };
    if !user.enabled {
        return Err(unauthorized("token subject is disabled"));
    }
    Ok(Principal {
        tenant_id: tenant.id,
        user_id,
        client_id: c
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        is_client: user.is_service_account,
    })
}
