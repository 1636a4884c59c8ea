//! Token state: whether an access or refresh token is active (RFC 7662),
//! shared by introspection and userinfo.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::OAuthError;
use super::issuance::grant_of_jti;
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::secrets::sha256_hex;
use crate::crypto::signing::verify_jwt;
use crate::model::User;
use crate::store::StoreError;
use crate::time::Timestamp;

/// Clock leeway for `nbf`, seconds.
const LEEWAY: i64 = 30;

/// An access token that is active right now.
#[derive(Debug, Clone)]
pub struct ActiveAccessToken {
    /// Its claims.
    pub claims: Value,
    /// Its subject.
    pub user: User,
}

impl ActiveAccessToken {
    /// The DPoP key thumbprint the token is bound to, if any.
    pub fn jkt(&self) -> Option<&str> {
        self.claims
            .get("cnf")
            .and_then(|c| c.get("jkt"))
            .and_then(Value::as_str)
    }

    /// Granted scopes.
    pub fn scopes(&self) -> Vec<&str> {
        self.claims
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }
}

/// Checks an access token issued by `issuer`: signature, type, issuer,
/// times, revocation (of the token or its grant) and a live subject.
/// `Ok(Err(reason))` means inactive.
pub async fn active_access_token(
    ctx: &Ctx,
    issuer: &Issuer,
    token: &str,
) -> Result<Result<ActiveAccessToken, &'static str>, OAuthError> {
    // A kid this node has not seen yet may be a key rotated in on another
    // node: `for_token` reloads (rate-limited) before giving up.
    let keys = ctx.keys.for_token(issuer.tenant.id, token).await?;
    let Ok(jwt) = verify_jwt(token, &keys.jwks) else {
        return Ok(Err("the token is malformed, forged or from another issuer"));
    };
    let c = jwt.claims;
    if jwt.header.get("typ").and_then(Value::as_str) != Some("at+jwt") {
        return Ok(Err("not an access token"));
    }
    if c.get("iss").and_then(Value::as_str) != Some(issuer.url.as_str())
        || c.get("tenant").and_then(Value::as_str) != Some(issuer.tenant.id.to_string().as_str())
    {
        return Ok(Err("the token is from another issuer"));
    }
    let now = Timestamp::now().unix();
    if c.get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|e| e <= now)
    {
        return Ok(Err("the token has expired"));
    }
    if c.get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|n| n > now + LEEWAY)
    {
        return Ok(Err("the token is not yet valid"));
    }
    // A disabled tenant or a disabled (or deleted) client ends its tokens
    // at once, not when they expire.
    if !issuer.tenant.enabled {
        return Ok(Err("the tenant is disabled"));
    }
    let client_id = c
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let iat = c.get("iat").and_then(Value::as_i64).unwrap_or_default();
    if !client_live(ctx, issuer, client_id, iat).await? {
        return Ok(Err("the client is disabled or gone"));
    }
    let jti = c.get("jti").and_then(Value::as_str).unwrap_or_default();
    if ctx
        .store
        .access_token_revoked(issuer.tenant.id, jti)
        .await?
    {
        return Ok(Err("the token has been revoked"));
    }
    if let Some(grant_id) = grant_of_jti(jti) {
        match ctx.store.grant(issuer.tenant.id, grant_id).await? {
            Some(g) if g.revoked_at.is_none() => {}
            _ => return Ok(Err("the grant behind the token has been revoked")),
        }
    }
    let Some(sub) = c
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
    else {
        return Ok(Err("the token has no valid subject"));
    };
    match ctx.store.get_user(issuer.tenant.id, sub).await {
        Ok(user) if user.enabled => Ok(Ok(ActiveAccessToken { claims: c, user })),
        Ok(_) | Err(StoreError::NotFound) => Ok(Err("the token's subject is disabled or gone")),
        Err(e) => Err(e.into()),
    }
}

/// Whether the client that was issued a token at `issued_at` still exists
/// and is enabled. A client registered again under a deleted one's
/// client_id is another client: it was created after the token.
async fn client_live(
    ctx: &Ctx,
    issuer: &Issuer,
    client_id: &str,
    issued_at: i64,
) -> Result<bool, OAuthError> {
    Ok(super::client_auth::load_client(ctx, issuer, client_id)
        .await?
        .is_some_and(|c| c.client.client.enabled && c.client.client.created_at.unix() <= issued_at))
}

/// The RFC 7662 response for `token` at `issuer`. Anything not active —
/// unknown, expired, revoked, or another tenant's — is just
/// `{"active": false}`, revealing nothing. `token_type_hint` is not
/// needed (RFC 7662 §2.1 makes it an optimisation): access tokens are JWTs
/// and refresh tokens are opaque, so the token's shape tells which it is.
pub async fn introspect(ctx: &Ctx, issuer: &Issuer, token: &str) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    let looks_like_jwt = token.matches('.').count() == 2;
    if looks_like_jwt {
        if let Ok(active) = active_access_token(ctx, issuer, token).await? {
            let mut out = Map::new();
            out.insert("active".into(), json!(true));
            for k in [
                "scope",
                "client_id",
                "sub",
                "exp",
                "iat",
                "nbf",
                "iss",
                "aud",
                "jti",
                "cnf",
                "sid",
                "auth_time",
            ] {
                if let Some(v) = active.claims.get(k) {
                    out.insert(k.into(), v.clone());
                }
            }
            out.insert("username".into(), json!(active.user.email));
            out.insert(
                "token_type".into(),
                json!(if active.jkt().is_some() {
                    "DPoP"
                } else {
                    "Bearer"
                }),
            );
            return Ok(Value::Object(out));
        }
        return Ok(inactive);
    }
    let Some((rt, grant)) = ctx
        .store
        .refresh_token(issuer.tenant.id, &sha256_hex(token))
        .await?
    else {
        return Ok(inactive);
    };
    let now = Timestamp::now();
    if rt.status != "active" || grant.revoked_at.is_some() || rt.expires_at <= now {
        return Ok(inactive);
    }
    if !issuer.tenant.enabled
        || !client_live(ctx, issuer, &grant.client_id, grant.created_at.unix()).await?
    {
        return Ok(inactive);
    }
    let mut out = json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": grant.scope,
        "client_id": grant.client_id,
        "sub": grant.user_id,
        "exp": rt.expires_at.unix(),
        "iat": rt.created_at.unix(),
        "iss": issuer.url,
    });
    if let Some(jkt) = grant.dpop_jkt {
        out["cnf"] = json!({ "jkt": jkt });
    }
    Ok(out)
}

/// Revokes `token` if it belongs to `client_id` (RFC 7009 §2.1). Unknown
/// tokens and other clients' tokens are ignored: the answer is the same.
pub async fn revoke(
    ctx: &Ctx,
    issuer: &Issuer,
    client_id: &str,
    token: &str,
) -> Result<(), OAuthError> {
    if token.matches('.').count() == 2 {
        if let Ok(active) = active_access_token(ctx, issuer, token).await?
            && active.claims.get("client_id").and_then(Value::as_str) == Some(client_id)
        {
            let jti = active.claims["jti"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let exp = active.claims["exp"].as_i64().unwrap_or_default();
            let now = Timestamp::now();
            ctx.store
                .revoke_access_token(
                    issuer.tenant.id,
                    &jti,
                    now.plus_seconds((exp - now.unix()).max(0)),
                )
                .await?;
        }
        return Ok(());
    }
    if let Some((_, grant)) = ctx
        .store
        .refresh_token(issuer.tenant.id, &sha256_hex(token))
        .await?
        && grant.client_id == client_id
    {
        // Revoking a refresh token revokes its grant: every access token
        // from it stops being active too (RFC 7009 §2.1 SHOULD).
        ctx.store
            .revoke_grant(issuer.tenant.id, grant.id, "revoked_by_client")
            .await?;
    }
    Ok(())
}
