//! The token endpoint's grants.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::OAuthError;
use crate::context::Ctx;
use crate::crypto::secrets::verify_secret;
use crate::model::{Actor, AuditEvent, OAuthClient, Tenant};
use crate::time::Timestamp;

/// How the client presented itself.
#[derive(Debug, Clone)]
pub struct ClientAuthentication {
    /// The `client_id`.
    pub client_id: String,
    /// The secret, from Basic auth or the form.
    pub secret: Option<String>,
}

/// Form parameters of a token request.
#[derive(Debug, Clone, Default)]
pub struct TokenParams {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `username` (password grant).
    pub username: Option<String>,
    /// `password` (password grant).
    pub password: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access token (a JWT, RFC 9068 profile).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
}

/// Runs a token request for `tenant`.
pub async fn issue(
    ctx: &Ctx,
    tenant: &Tenant,
    issuer: &str,
    auth: Option<ClientAuthentication>,
    params: TokenParams,
    actor: Actor,
) -> Result<TokenResponse, OAuthError> {
    let grant = params
        .grant_type
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    if !matches!(grant, "password" | "client_credentials") {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type '{grant}' is not supported"
        )));
    }
    if !tenant.enabled {
        return Err(OAuthError::invalid_client("this tenant is disabled"));
    }
    let client = authenticate_client(ctx, tenant, auth).await?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "client may not use the {grant} grant"
        )));
    }
    let scopes = granted_scopes(&client, params.scope.as_deref())?;
    let (subject, actor_type) = match grant {
        "password" => (
            password_subject(ctx, tenant, &client, &params, actor).await?,
            "user",
        ),
        _ => {
            if !client.is_confidential() {
                return Err(OAuthError::unauthorized_client(
                    "public clients cannot use client_credentials",
                ));
            }
            let sa = client
                .service_account_user_id
                .ok_or_else(|| OAuthError::unauthorized_client("client has no service account"))?;
            match ctx.store.get_user(tenant.id, sa).await {
                Ok(u) if u.enabled => {}
                Ok(_) | Err(crate::store::StoreError::NotFound) => {
                    return Err(OAuthError::unauthorized_client(
                        "the client's service account is disabled",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            (sa, "client")
        }
    };
    let lifetime = client
        .access_token_lifetime
        .or(tenant.settings.access_token_lifetime)
        .unwrap_or(ctx.config.access_token_lifetime);
    let keys = ctx.keys.get(tenant.id).await?;
    let now = Timestamp::now().unix();
    let scope = scopes.join(" ");
    let claims = json!({
        "iss": issuer,
        "sub": subject,
        "aud": client.client_id,
        "exp": now + lifetime,
        "iat": now,
        "nbf": now,
        "jti": Uuid::new_v4(),
        "client_id": client.client_id,
        "scope": scope,
        "tenant": tenant.id,
        "sub_type": actor_type,
    });
    Ok(TokenResponse {
        access_token: keys.signing.sign_jwt("at+jwt", &claims),
        token_type: "Bearer",
        expires_in: lifetime,
        scope,
    })
}

/// Identifies the client; confidential clients must prove their secret.
async fn authenticate_client(
    ctx: &Ctx,
    tenant: &Tenant,
    auth: Option<ClientAuthentication>,
) -> Result<OAuthClient, OAuthError> {
    let auth =
        auth.ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    let found = ctx
        .store
        .client_for_auth(tenant.id, &auth.client_id)
        .await?;
    let Some(found) = found else {
        return Err(OAuthError::invalid_client(
            "unknown client or bad credentials",
        ));
    };
    if !found.client.enabled {
        return Err(OAuthError::invalid_client(
            "unknown client or bad credentials",
        ));
    }
    match (
        &found.secret_hash,
        &auth.secret,
        found.client.is_confidential(),
    ) {
        (Some(hash), Some(secret), true) if verify_secret(secret, hash) => Ok(found.client),
        (_, None, false) => Ok(found.client),
        (_, Some(_), false) => Err(OAuthError::invalid_client("public clients have no secret")),
        _ => Err(OAuthError::invalid_client(
            "unknown client or bad credentials",
        )),
    }
}

/// Requested scopes must all be allowed for the client; none requested
/// means all the client's scopes.
fn granted_scopes(
    client: &OAuthClient,
    requested: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    match requested.map(str::split_whitespace) {
        None => Ok(client.scopes.clone()),
        Some(parts) => {
            let mut out = Vec::new();
            for s in parts {
                if !client.scopes.iter().any(|c| c == s) {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope '{s}' is not allowed for this client"
                    )));
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            Ok(out)
        }
    }
}

/// The password grant: verifies the user's password with lockout.
///
/// Security decision: every failure answers the same `invalid_grant` text
/// whether the email exists or not, and unknown emails still cost one
/// Argon2 verification; only a locked account is named as such, because the
/// legitimate owner needs to know why a correct password is refused.
async fn password_subject(
    ctx: &Ctx,
    tenant: &Tenant,
    client: &OAuthClient,
    params: &TokenParams,
    actor: Actor,
) -> Result<Uuid, OAuthError> {
    let username = params.username.as_deref().filter(|u| !u.is_empty());
    let password = params.password.as_deref().filter(|p| !p.is_empty());
    let (Some(username), Some(password)) = (username, password) else {
        return Err(OAuthError::invalid_request(
            "username and password are required",
        ));
    };
    if username.len() > 254 || password.len() > 1024 {
        return Err(OAuthError::invalid_grant("invalid username or password"));
    }
    let creds = ctx
        .store
        .user_credentials_by_email(tenant.id, username)
        .await?;
    let now = Timestamp::now();
    // The hash is always verified first, so a locked, unknown or disabled
    // account costs the same time as a wrong password, and only a caller who
    // knows the password learns that the account is locked.
    let hash = creds
        .as_ref()
        .filter(|c| !c.is_service_account)
        .and_then(|c| c.password_hash.clone());
    let ok = ctx
        .passwords
        .verify(password.to_string(), hash)
        .await
        .map_err(OAuthError::server_error)?;
    let locked = creds
        .as_ref()
        .is_some_and(|c| c.locked_until.is_some_and(|t| t > now));
    let failure = |user_id: Option<Uuid>, reason: &str| AuditEvent {
        tenant_id: tenant.id,
        actor: Actor {
            actor_type: "anonymous".into(),
            actor_id: user_id,
            ..actor.clone()
        },
        action: "user.login_failed".into(),
        target_type: "user".into(),
        target_id: user_id.map(|u| u.to_string()),
        changes: json!({ "client_id": client.client_id, "reason": reason }),
    };
    match creds {
        Some(c) if ok && locked => {
            ctx.store
                .append_audit(&failure(Some(c.id), "account locked"))
                .await?;
            Err(OAuthError::invalid_grant(
                "the account is temporarily locked after too many failed logins",
            ))
        }
        Some(c) if locked => {
            ctx.store
                .append_audit(&failure(Some(c.id), "bad password while locked"))
                .await?;
            Err(OAuthError::invalid_grant("invalid username or password"))
        }
        Some(c) if ok && c.enabled => {
            ctx.store
                .record_login_success(
                    tenant.id,
                    c.id,
                    &AuditEvent {
                        tenant_id: tenant.id,
                        actor: Actor {
                            actor_type: "user".into(),
                            actor_id: Some(c.id),
                            ..actor.clone()
                        },
                        action: "user.login".into(),
                        target_type: "user".into(),
                        target_id: Some(c.id.to_string()),
                        changes: json!({ "client_id": client.client_id, "grant_type": "password" }),
                    },
                )
                .await?;
            Ok(c.id)
        }
        Some(c) if ok => {
            ctx.store
                .append_audit(&failure(Some(c.id), "user disabled"))
                .await?;
            Err(OAuthError::invalid_grant("invalid username or password"))
        }
        Some(c) => {
            let threshold = tenant
                .settings
                .lockout_threshold
                .unwrap_or(ctx.config.lockout_threshold);
            let duration = tenant
                .settings
                .lockout_duration
                .unwrap_or(ctx.config.lockout_duration);
            ctx.store
                .record_login_failure(tenant.id, c.id, threshold, now.plus_seconds(duration))
                .await?;
            ctx.store
                .append_audit(&failure(Some(c.id), "bad password"))
                .await?;
            Err(OAuthError::invalid_grant("invalid username or password"))
        }
        None => {
            ctx.store
                .append_audit(&failure(None, "unknown user"))
                .await?;
            Err(OAuthError::invalid_grant("invalid username or password"))
        }
    }
}
