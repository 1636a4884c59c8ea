//! The token endpoint's grants: authorization_code (with PKCE),
//! refresh_token (rotation with reuse detection), client_credentials and
//! password (off unless a client lists it).

use std::collections::HashMap;

use crate::plugins::Category;
use crate::plugins::hooks::rate_limiter::RateLimitQuery;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::client_auth::{ClientCredentials, authenticate};
use super::dpop::{self, DpopKey, ProofTarget};
use super::error::OAuthError;
use super::issuance::{
    self, AccessTokenSpec, IdTokenSpec, TokenResponse, new_refresh_token, refresh_token_lifetime,
};
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::secrets::sha256_hex;
use crate::model::{Actor, AuditEvent, OAuthClient, OAuthGrant, RefreshTokenRecord, User};
use crate::sessions::login::{LoginError, verify_password};
use crate::store::{CodeRedemption, RefreshRotation, StoreError};
use crate::time::Timestamp;

/// Grant types the token endpoint implements.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
];

/// A parsed token request.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Form parameters other than client authentication.
    pub form: HashMap<String, String>,
    /// How the client authenticated.
    pub credentials: Option<ClientCredentials>,
    /// The `DPoP` header, if sent.
    pub dpop: Option<String>,
    /// Who is calling (for the audit log).
    pub actor: Actor,
}

/// Runs a token request at `issuer`.
pub async fn issue(
    ctx: &Ctx,
    issuer: &Issuer,
    mut req: TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let grant = req
        .form
        .remove("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    if !GRANT_TYPES.contains(&grant.as_str()) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type '{grant}' is not supported"
        )));
    }
    if !issuer.tenant.enabled {
        return Err(OAuthError::invalid_client("this tenant is disabled"));
    }
    let token_url = issuer.endpoint("/oauth/token");
    let cached = authenticate(ctx, issuer, &token_url, req.credentials.take()).await?;
    let client = &cached.client.client;
    if ctx.plugins.has(issuer.tenant.id, Category::RateLimiter) {
        let ip = req.actor.ip.clone().unwrap_or_default();
        let q = RateLimitQuery {
            scope: "token",
            key: format!("token:client:{}", client.client_id),
            ip: &ip,
            client_id: Some(&client.client_id),
            identifier: None,
        };
        match ctx.plugins.check_rate_limit(issuer.tenant.id, &q).await {
            Ok(Some(d)) if !d.allowed => {
                return Err(OAuthError::rate_limited(d.reset_after_ms.div_ceil(1000)));
            }
            Ok(_) => {}
            Err(f) => {
                return Err(OAuthError::temporarily_unavailable(format!(
                    "a rate-limiting plugin ({}) failed",
                    f.plugin_id
                )));
            }
        }
    }
    if !client.allows_grant(&grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "client may not use the {grant} grant"
        )));
    }
    let dpop = match req.dpop.as_deref() {
        Some(proof) => Some(
            dpop::validate(
                ctx,
                issuer,
                proof,
                ProofTarget {
                    method: "POST",
                    url: &token_url,
                    access_token: None,
                },
            )
            .await?,
        ),
        None if client.oidc_settings.dpop_bound_access_tokens => {
            return Err(OAuthError::invalid_dpop_proof(
                "this client must send a DPoP proof",
            ));
        }
        None => None,
    };
    match grant.as_str() {
        "authorization_code" => code_grant(ctx, issuer, client, &req, dpop).await,
        "refresh_token" => refresh_grant(ctx, issuer, client, &req, dpop).await,
        "client_credentials" => {
            if !client.is_confidential() {
                return Err(OAuthError::unauthorized_client(
                    "public clients cannot use client_credentials",
                ));
            }
            let sa = client
                .service_account_user_id
                .ok_or_else(|| OAuthError::unauthorized_client("client has no service account"))?;
            if !cached.service_account_enabled {
                return Err(OAuthError::unauthorized_client(
                    "the client's service account is disabled",
                ));
            }
            let scope = granted_scopes(client, req.form.get("scope").map(String::as_str))?;
            let spec = AccessTokenSpec {
                subject: sa,
                subject_type: "client",
                client,
                scope: &scope,
                grant_id: None,
                session_id: None,
                auth_time: None,
                dpop_jkt: dpop.as_ref().map(|k| k.jkt.as_str()),
                grant_type: "client_credentials",
            };
            plain_response(ctx, issuer, &spec).await
        }
        _ => password_grant(ctx, issuer, client, &req, dpop).await,
    }
}

async fn plain_response(
    ctx: &Ctx,
    issuer: &Issuer,
    spec: &AccessTokenSpec<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (access_token, expires_in) = issuance::access_token(ctx, issuer, spec).await?;
    Ok(TokenResponse {
        access_token,
        token_type: if spec.dpop_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
        expires_in,
        scope: spec.scope.to_string(),
        refresh_token: None,
        id_token: None,
    })
}

/// Requested scopes must all be allowed for the client; none requested
/// means all the client's scopes.
fn granted_scopes(client: &OAuthClient, requested: Option<&str>) -> Result<String, OAuthError> {
    match requested {
        None => Ok(client.scopes.join(" ")),
        Some(r) => narrow_scopes(
            r,
            client.scopes.iter().map(String::as_str),
            "is not allowed for this client",
        ),
    }
}

/// `requested` (space-separated, duplicates dropped) when every scope in it
/// is among `allowed`; otherwise `invalid_scope` naming the first stranger.
fn narrow_scopes<'a>(
    requested: &str,
    allowed: impl Iterator<Item = &'a str> + Clone,
    refusal: &str,
) -> Result<String, OAuthError> {
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split_whitespace() {
        if !allowed.clone().any(|a| a == s) {
            return Err(OAuthError::invalid_scope(format!("scope '{s}' {refusal}")));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out.join(" "))
}

fn param<'a>(req: &'a TokenRequest, name: &str) -> Result<&'a str, OAuthError> {
    req.form
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

async fn live_user(ctx: &Ctx, issuer: &Issuer, id: Uuid) -> Result<User, OAuthError> {
    match ctx.store.get_user(issuer.tenant.id, id).await {
        Ok(u) if u.enabled => Ok(u),
        Ok(_) | Err(StoreError::NotFound) => Err(OAuthError::invalid_grant(
            "the user is disabled or no longer exists",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn security_event(
    ctx: &Ctx,
    issuer: &Issuer,
    actor: &Actor,
    action: &str,
    changes: serde_json::Value,
) {
    let ev = AuditEvent {
        tenant_id: issuer.tenant.id,
        actor: actor.clone(),
        action: action.into(),
        target_type: "grant".into(),
        target_id: changes
            .get("grant_id")
            .and_then(|g| g.as_str())
            .map(String::from),
        changes,
    };
    if let Err(e) = ctx.store.append_audit(&ev).await {
        tracing::error!(error = %e, action, "could not audit a security event");
    }
}

/// Audits a replayed authorization code and answers the client's error.
async fn code_replayed(
    ctx: &Ctx,
    issuer: &Issuer,
    actor: &Actor,
    client: &OAuthClient,
    grant_id: Option<Uuid>,
) -> OAuthError {
    security_event(
        ctx,
        issuer,
        actor,
        "oauth.code_replayed",
        json!({ "client_id": client.client_id, "grant_id": grant_id.map(|g| g.to_string()) }),
    )
    .await;
    OAuthError::invalid_grant(
        "the authorization code was already used; tokens issued from it are revoked",
    )
}

/// Audits a reused refresh token (its family is already revoked) and
/// answers the client's error.
async fn refresh_reused(
    ctx: &Ctx,
    issuer: &Issuer,
    actor: &Actor,
    client: &OAuthClient,
    grant: &OAuthGrant,
) -> OAuthError {
    security_event(
        ctx,
        issuer,
        actor,
        "oauth.refresh_token_reused",
        json!({ "client_id": client.client_id, "grant_id": grant.id.to_string(), "user_id": grant.user_id }),
    )
    .await;
    OAuthError::invalid_grant("the refresh token was already used; its whole family is revoked")
}

/// Tokens for a user grant: access token, ID token when `openid` was
/// granted, and the refresh token given.
#[allow(clippy::too_many_arguments)]
async fn user_tokens(
    ctx: &Ctx,
    issuer: &Issuer,
    client: &OAuthClient,
    user: &User,
    grant: &OAuthGrant,
    nonce: Option<&str>,
    dpop: Option<&DpopKey>,
    refresh_token: Option<String>,
    amr: Option<&str>,
    grant_type: &str,
) -> Result<TokenResponse, OAuthError> {
    let jkt = dpop.map(|k| k.jkt.as_str());
    let spec = AccessTokenSpec {
        subject: user.id,
        subject_type: "user",
        client,
        scope: &grant.scope,
        grant_id: Some(grant.id),
        session_id: grant.session_id,
        auth_time: Some(grant.auth_time.unix()),
        dpop_jkt: jkt,
        grant_type,
    };
    let (access_token, expires_in) = issuance::access_token(ctx, issuer, &spec).await?;
    let scopes: Vec<&str> = grant.scope.split_whitespace().collect();
    let id_token = if scopes.contains(&"openid") {
        Some(
            issuance::id_token(
                ctx,
                issuer,
                &IdTokenSpec {
                    user,
                    client,
                    scopes: &scopes,
                    nonce,
                    auth_time: grant.auth_time.unix(),
                    session_id: grant.session_id,
                    amr,
                    access_token: &access_token,
                    grant_type,
                },
            )
            .await?,
        )
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in,
        scope: grant.scope.clone(),
        refresh_token,
        id_token,
    })
}

fn new_refresh_record(
    ctx: &Ctx,
    issuer: &Issuer,
    client: &OAuthClient,
    grant_id: Uuid,
) -> (String, RefreshTokenRecord) {
    let token = new_refresh_token();
    let now = Timestamp::now();
    let record = RefreshTokenRecord {
        token_hash: sha256_hex(&token),
        grant_id,
        tenant_id: issuer.tenant.id,
        status: "active".into(),
        created_at: now,
        expires_at: now.plus_seconds(refresh_token_lifetime(ctx, issuer, client)),
    };
    (token, record)
}

/// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).
async fn code_grant(
    ctx: &Ctx,
    issuer: &Issuer,
    client: &OAuthClient,
    req: &TokenRequest,
    dpop: Option<DpopKey>,
) -> Result<TokenResponse, OAuthError> {
    let code = param(req, "code")?;
    let code_hash = sha256_hex(code);
    let rec = ctx
        .store
        .authorization_code(issuer.tenant.id, &code_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the authorization code is invalid"))?;
    if rec.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if rec.consumed_at.is_some() {
        // Security decision (RFC 6749 §4.1.2): a replayed code means it
        // leaked; everything issued from it is revoked.
        ctx.store
            .revoke_code_grant(issuer.tenant.id, &code_hash)
            .await?;
        return Err(code_replayed(ctx, issuer, &req.actor, client, rec.grant_id).await);
    }
    let now = Timestamp::now();
    if rec.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    match req.form.get("redirect_uri") {
        Some(u) if *u == rec.redirect_uri => {}
        None if client.redirect_uris.len() == 1 => {}
        _ => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
    }
    match (&rec.code_challenge, req.form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let ok_len = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            use subtle::ConstantTimeEq;
            if !ok_len || !bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                return Err(OAuthError::invalid_grant(
                    "the PKCE code_verifier does not match",
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant("code_verifier is required"));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent for a request without code_challenge",
            ));
        }
        (None, None) => {}
    }
    if let Some(bound) = &rec.dpop_jkt
        && dpop.as_ref().map(|k| &k.jkt) != Some(bound)
    {
        return Err(OAuthError::invalid_dpop_proof(
            "the code is bound to another DPoP key (dpop_jkt)",
        ));
    }
    // A code outlives nothing: if its browser session ended (logout), the
    // user withdrew, and the code must not yield tokens afterwards.
    let session = match rec.session_id {
        Some(sid) => ctx.store.browser_session(issuer.tenant.id, sid).await?,
        None => None,
    };
    if rec.session_id.is_some()
        && session
            .as_ref()
            .is_none_or(|s| s.ended_at.is_some() || s.expires_at <= now)
    {
        return Err(OAuthError::invalid_grant(
            "the session that issued this code has ended",
        ));
    }
    let user = live_user(ctx, issuer, rec.user_id).await?;
    let offline = rec.scope.split_whitespace().any(|s| s == "offline_access")
        && client.allows_grant("refresh_token");
    let grant = OAuthGrant {
        id: Uuid::new_v4(),
        tenant_id: issuer.tenant.id,
        client_id: client.client_id.clone(),
        user_id: user.id,
        session_id: rec.session_id,
        scope: rec.scope.clone(),
        auth_time: rec.auth_time,
        dpop_jkt: dpop.as_ref().map(|k| k.jkt.clone()),
        created_at: now,
        expires_at: now.plus_seconds(if offline {
            refresh_token_lifetime(ctx, issuer, client)
        } else {
            issuance::access_token_lifetime(ctx, issuer, client)
        }),
        revoked_at: None,
    };
    let refresh = offline.then(|| new_refresh_record(ctx, issuer, client, grant.id));
    // Sign before committing: if signing fails, the code is still unused
    // and the client's retry is not mistaken for a replay.
    let tokens = user_tokens(
        ctx,
        issuer,
        client,
        &user,
        &grant,
        rec.nonce.as_deref(),
        dpop.as_ref(),
        refresh.as_ref().map(|(t, _)| t.clone()),
        session.as_ref().map(|s| s.amr.as_str()),
        "authorization_code",
    )
    .await?;
    match ctx
        .store
        .redeem_authorization_code(&rec, &grant, refresh.as_ref().map(|(_, r)| r))
        .await?
    {
        CodeRedemption::Redeemed => Ok(tokens),
        CodeRedemption::Replayed => Err(code_replayed(ctx, issuer, &req.actor, client, None).await),
        CodeRedemption::SessionEnded => Err(OAuthError::invalid_grant(
            "the session that issued this code has ended",
        )),
    }
}

/// RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2).
async fn refresh_grant(
    ctx: &Ctx,
    issuer: &Issuer,
    client: &OAuthClient,
    req: &TokenRequest,
    dpop: Option<DpopKey>,
) -> Result<TokenResponse, OAuthError> {
    let presented = param(req, "refresh_token")?;
    let hash = sha256_hex(presented);
    let (rt, grant) = ctx
        .store
        .refresh_token(issuer.tenant.id, &hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if rt.status == "rotated" {
        // Security decision: a rotated token presented again means two
        // parties hold the family; revoke it all, the legitimate client
        // signs in again.
        ctx.store
            .revoke_grant(issuer.tenant.id, grant.id, "refresh_token_reused")
            .await?;
        return Err(refresh_reused(ctx, issuer, &req.actor, client, &grant).await);
    }
    let now = Timestamp::now();
    if rt.status != "active" || grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant(
            "the refresh token has been revoked",
        ));
    }
    if rt.expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP
    // key; confidential clients are already sender-constrained by their
    // authentication.
    if let Some(bound) = &grant.dpop_jkt
        && !client.is_confidential()
        && dpop.as_ref().map(|k| &k.jkt) != Some(bound)
    {
        return Err(OAuthError::invalid_dpop_proof(
            "the refresh token is bound to another DPoP key",
        ));
    }
    let mut narrowed = grant.clone();
    if let Some(requested) = req.form.get("scope") {
        narrowed.scope = narrow_scopes(
            requested,
            grant.scope.split_whitespace(),
            "was not granted originally",
        )?;
    }
    let user = live_user(ctx, issuer, grant.user_id).await?;
    let (token, record) = new_refresh_record(ctx, issuer, client, grant.id);
    // Sign before rotating, so a signing failure leaves the presented token
    // active instead of turning the client's retry into a "reuse".
    let tokens = user_tokens(
        ctx,
        issuer,
        client,
        &user,
        &narrowed,
        None,
        dpop.as_ref(),
        Some(token),
        None,
        "refresh_token",
    )
    .await?;
    match ctx
        .store
        .rotate_refresh_token(issuer.tenant.id, &hash, &record)
        .await?
    {
        RefreshRotation::Rotated => Ok(tokens),
        RefreshRotation::ReuseDetected => {
            Err(refresh_reused(ctx, issuer, &req.actor, client, &grant).await)
        }
    }
}

/// The resource owner password grant (RFC 6749 §4.3), for clients that list it.
async fn password_grant(
    ctx: &Ctx,
    issuer: &Issuer,
    client: &OAuthClient,
    req: &TokenRequest,
    dpop: Option<DpopKey>,
) -> Result<TokenResponse, OAuthError> {
    let (Some(username), Some(password)) = (
        req.form.get("username").filter(|u| !u.is_empty()),
        req.form.get("password").filter(|p| !p.is_empty()),
    ) else {
        return Err(OAuthError::invalid_request(
            "username and password are required",
        ));
    };
    let scope = granted_scopes(client, req.form.get("scope").map(String::as_str))?;
    let user_id = verify_password(
        ctx,
        &issuer.tenant,
        &client.client_id,
        "password_grant",
        username,
        password,
        req.actor.clone(),
    )
    .await
    .map_err(|e| match e {
        LoginError::Invalid => OAuthError::invalid_grant("invalid username or password"),
        LoginError::Locked => OAuthError::invalid_grant(
            "the account is temporarily locked after too many failed logins",
        ),
        LoginError::Store(e) => e.into(),
        LoginError::Internal(e) => OAuthError::server_error(e),
        LoginError::Vetoed(m) => OAuthError::invalid_grant(format!("sign-in refused: {m}")),
        LoginError::RateLimited(after) => {
            OAuthError::invalid_grant(format!("too many sign-in attempts; retry in {after} s"))
        }
        LoginError::PluginUnavailable(p) => {
            OAuthError::temporarily_unavailable(format!("a sign-in plugin ({p}) failed"))
        }
    })?;
    let spec = AccessTokenSpec {
        subject: user_id,
        subject_type: "user",
        client,
        scope: &scope,
        grant_id: None,
        session_id: None,
        auth_time: Some(Timestamp::now().unix()),
        dpop_jkt: dpop.as_ref().map(|k| k.jkt.as_str()),
        grant_type: "password",
    };
    plain_response(ctx, issuer, &spec).await
}
