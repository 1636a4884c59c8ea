//! Minting tokens: RFC 9068 access tokens, OpenID Connect ID tokens and
//! opaque refresh tokens.

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::OAuthError;
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::jose::oidc_half_hash;
use crate::crypto::secrets::random_secret;
use crate::model::{OAuthClient, User};
use crate::plugins::Category;
use crate::plugins::hooks::jwt_customizer::{TokenContext, TokenKind};
use crate::time::Timestamp;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access token (a JWT, RFC 9068 profile).
    pub access_token: String,
    /// `Bearer`, or `DPoP` when the token is bound to a key.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// A rotating refresh token (when `offline_access` was granted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token (when `openid` was granted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Who and what an access token is for.
#[derive(Debug, Clone)]
pub struct AccessTokenSpec<'a> {
    /// The subject (user or service account).
    pub subject: Uuid,
    /// `user` or `client`.
    pub subject_type: &'a str,
    /// The client.
    pub client: &'a OAuthClient,
    /// Granted scopes, space-separated.
    pub scope: &'a str,
    /// The grant (token family) the token belongs to, if any.
    pub grant_id: Option<Uuid>,
    /// Browser session id (`sid`).
    pub session_id: Option<Uuid>,
    /// When the user authenticated.
    pub auth_time: Option<i64>,
    /// DPoP key thumbprint (`cnf.jkt`).
    pub dpop_jkt: Option<&'a str>,
    /// The grant type that led to this token (told to jwt-customizers).
    pub grant_type: &'a str,
}

/// Access token lifetime for a client at a tenant.
pub fn access_token_lifetime(ctx: &Ctx, issuer: &Issuer, client: &OAuthClient) -> i64 {
    client
        .access_token_lifetime
        .or(issuer.tenant.settings.access_token_lifetime)
        .unwrap_or(ctx.config.access_token_lifetime)
}

/// Refresh token lifetime for a client at a tenant.
pub fn refresh_token_lifetime(ctx: &Ctx, issuer: &Issuer, client: &OAuthClient) -> i64 {
    client
        .refresh_token_lifetime
        .or(issuer.tenant.settings.refresh_token_lifetime)
        .unwrap_or(ctx.config.refresh_token_lifetime)
}

/// The `jti` of an access token. Tokens of a grant carry the grant id as a
/// prefix, so introspection and userinfo can see a revoked family without a
/// row per token; client_credentials tokens get a bare random id.
pub fn new_jti(grant_id: Option<Uuid>) -> String {
    match grant_id {
        Some(g) => format!("{}.{}", g.simple(), Uuid::new_v4().simple()),
        None => Uuid::new_v4().simple().to_string(),
    }
}

/// The grant id encoded in a `jti`, if any.
pub fn grant_of_jti(jti: &str) -> Option<Uuid> {
    jti.split_once('.')
        .and_then(|(g, _)| Uuid::try_parse(g).ok())
}

/// Signs an access token (EdDSA, `typ: at+jwt`).
pub async fn access_token(
    ctx: &Ctx,
    issuer: &Issuer,
    spec: &AccessTokenSpec<'_>,
) -> Result<(String, i64), OAuthError> {
    let lifetime = access_token_lifetime(ctx, issuer, spec.client);
    let keys = ctx.keys.get(issuer.tenant.id).await?;
    let now = Timestamp::now().unix();
    let mut claims = json!({
        "iss": issuer.url,
        "sub": spec.subject,
        "aud": spec.client.client_id,
        "exp": now + lifetime,
        "iat": now,
        "nbf": now,
        "jti": new_jti(spec.grant_id),
        "client_id": spec.client.client_id,
        "scope": spec.scope,
        "tenant": issuer.tenant.id,
        "sub_type": spec.subject_type,
    });
    let m = claims.as_object_mut().expect("object");
    if let Some(sid) = spec.session_id {
        m.insert("sid".into(), json!(sid));
    }
    if let Some(t) = spec.auth_time {
        m.insert("auth_time".into(), json!(t));
    }
    if let Some(jkt) = spec.dpop_jkt {
        m.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    let subject = spec.subject.to_string();
    let scopes: Vec<String> = spec.scope.split_whitespace().map(str::to_string).collect();
    customize(
        ctx,
        issuer,
        TokenKind::Access,
        Some(subject.as_str()).filter(|_| spec.subject_type == "user"),
        spec.subject,
        spec.client,
        spec.grant_type,
        &scopes,
        m,
    )
    .await?;
    Ok((keys.signing.sign_jwt("at+jwt", &claims), lifetime))
}

/// Runs the tenant's jwt-customizer plugins over `claims` (nothing when the
/// tenant has none). A fail-closed plugin failure fails the token request
/// with `temporarily_unavailable`.
#[allow(clippy::too_many_arguments)]
async fn customize(
    ctx: &Ctx,
    issuer: &Issuer,
    kind: TokenKind,
    user: Option<&str>,
    subject_id: Uuid,
    client: &OAuthClient,
    grant_type: &str,
    scopes: &[String],
    claims: &mut Map<String, Value>,
) -> Result<(), OAuthError> {
    let tenant = issuer.tenant.id;
    if !ctx.plugins.has(tenant, Category::JwtCustomizer) {
        return Ok(());
    }
    // Cached like clients (5 s, cleared by any admin write to the tenant on
    // this node): four queries per token would dominate the customizer's cost.
    let attributes = match ctx.cache.attributes(tenant, subject_id) {
        Some(a) => a,
        None => {
            let a = std::sync::Arc::new(
                crate::identity::attributes::of_user(ctx, tenant, subject_id)
                    .await
                    .map_err(OAuthError::server_error)?,
            );
            ctx.cache.put_attributes(tenant, subject_id, a.clone());
            a
        }
    };
    let audience = vec![client.client_id.clone()];
    let token = TokenContext {
        kind,
        subject: user,
        client_id: &client.client_id,
        grant_type,
        scopes,
        audience: &audience,
        subject_attributes: &attributes,
    };
    ctx.plugins
        .customize_jwt(
            tenant,
            &crate::plugins::request_id::current(),
            &token,
            claims,
        )
        .await
        .map_err(|e| {
            OAuthError::temporarily_unavailable(format!(
                "a token customization plugin ({}) failed",
                e.plugin_id
            ))
        })
}

/// Standard claims of `user` released for `scopes` (OIDC Core §5.4).
pub fn user_claims(user: &User, scopes: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    let p = user;
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    if scopes.contains(&"profile") {
        let name = p
            .display_name
            .clone()
            .or_else(|| match (&p.first_name, &p.last_name) {
                (Some(f), Some(l)) => Some(format!("{f} {l}")),
                (Some(f), None) => Some(f.clone()),
                (None, Some(l)) => Some(l.clone()),
                _ => None,
            });
        put("name", name.map(Value::from));
        put("given_name", p.first_name.clone().map(Value::from));
        put("family_name", p.last_name.clone().map(Value::from));
        put("preferred_username", Some(Value::from(user.email.clone())));
        put("locale", p.locale.clone().map(Value::from));
        put("zoneinfo", p.timezone.clone().map(Value::from));
        put("picture", p.avatar_url.clone().map(Value::from));
        put("updated_at", Some(Value::from(user.updated_at.unix())));
    }
    if scopes.contains(&"email") {
        put("email", Some(Value::from(user.email.clone())));
        put("email_verified", Some(Value::from(user.email_verified)));
    }
    if scopes.contains(&"phone") {
        put("phone_number", p.phone.clone().map(Value::from));
    }
    m
}

/// What an ID token states beyond the user's claims.
#[derive(Debug, Clone)]
pub struct IdTokenSpec<'a> {
    /// The user.
    pub user: &'a User,
    /// The client (audience).
    pub client: &'a OAuthClient,
    /// Granted scopes.
    pub scopes: &'a [&'a str],
    /// The authorization request's nonce.
    pub nonce: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Browser session id.
    pub session_id: Option<Uuid>,
    /// Authentication methods.
    pub amr: Option<&'a str>,
    /// The access token issued beside it (for `at_hash`).
    pub access_token: &'a str,
    /// The grant type (told to jwt-customizers).
    pub grant_type: &'a str,
}

/// Signs an ID token with the client's chosen algorithm.
pub async fn id_token(
    ctx: &Ctx,
    issuer: &Issuer,
    spec: &IdTokenSpec<'_>,
) -> Result<String, OAuthError> {
    let alg = spec.client.id_token_alg();
    let lifetime = issuer.tenant.settings.id_token_lifetime.unwrap_or(3600);
    let now = Timestamp::now().unix();
    let mut claims = user_claims(spec.user, spec.scopes);
    let mut set = |k: &str, v: Value| {
        claims.insert(k.into(), v);
    };
    set("iss", json!(issuer.url));
    set("sub", json!(spec.user.id));
    set("aud", json!(spec.client.client_id));
    set("azp", json!(spec.client.client_id));
    set("exp", json!(now + lifetime));
    set("iat", json!(now));
    set("auth_time", json!(spec.auth_time));
    set("at_hash", json!(oidc_half_hash(alg, spec.access_token)));
    if let Some(n) = spec.nonce {
        set("nonce", json!(n));
    }
    if let Some(sid) = spec.session_id {
        set("sid", json!(sid));
    }
    if let Some(amr) = spec.amr {
        set("amr", json!(amr.split_whitespace().collect::<Vec<_>>()));
    }
    let subject = spec.user.id.to_string();
    let scopes: Vec<String> = spec.scopes.iter().map(|s| s.to_string()).collect();
    customize(
        ctx,
        issuer,
        TokenKind::Id,
        Some(subject.as_str()),
        spec.user.id,
        spec.client,
        spec.grant_type,
        &scopes,
        &mut claims,
    )
    .await?;
    let keys = ctx.keys.get(issuer.tenant.id).await?;
    keys.sign(alg, "JWT", &Value::Object(claims))
        .map_err(OAuthError::server_error)
}

/// A fresh refresh token value (256 random bits).
pub fn new_refresh_token() -> String {
    random_secret()
}
