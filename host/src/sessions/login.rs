//! Password login with lockout, shared by the hosted login page and the
//! password grant.

use crate::identity::extension_points::snapshot;
use crate::plugins::Category;
use crate::plugins::hooks::auth_provider::{ExternalIdentity, ExternalVerdict};
use crate::plugins::hooks::lifecycle_hook::{EventContext, PostEvent, PreEvent};
use crate::plugins::hooks::rate_limiter::RateLimitQuery;
use serde_json::json;
use uuid::Uuid;

use crate::context::Ctx;
use crate::model::{Actor, AuditEvent, Tenant};
use crate::store::StoreError;
use crate::time::Timestamp;

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong username or password, unknown or disabled account: one answer.
    #[error("invalid username or password")]
    Invalid,
    /// The right password for an account locked after failed attempts.
    #[error("the account is temporarily locked after too many failed logins")]
    Locked,
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Password hashing failure.
    #[error("password verification failed: {0}")]
    Internal(String),
    /// A lifecycle plugin vetoed the login (its message, for the user).
    #[error("sign-in refused: {0}")]
    Vetoed(String),
    /// A rate-limiter plugin refused the attempt; retry after this many seconds.
    #[error("too many sign-in attempts")]
    RateLimited(u64),
    /// A fail-closed plugin on the login path could not answer.
    #[error("a sign-in plugin failed: {0}")]
    PluginUnavailable(String),
}

/// Verifies a user's password with lockout, for the password grant and the
/// hosted login page alike.
///
/// Security decision: every failure answers the same `invalid_grant` text
/// whether the email exists or not, and unknown emails still cost one
/// Argon2 verification; only a locked account is named as such, because the
/// legitimate owner needs to know why a correct password is refused.
pub async fn verify_password(
    ctx: &Ctx,
    tenant: &Tenant,
    client_id: &str,
    via: &str,
    username: &str,
    password: &str,
    actor: Actor,
) -> Result<Uuid, LoginError> {
    if username.is_empty() || password.is_empty() {
        return Err(LoginError::Invalid);
    }
    if username.len() > 254 || password.len() > 1024 {
        return Err(LoginError::Invalid);
    }
    if ctx.plugins.has(tenant.id, Category::RateLimiter) {
        let ip = actor.ip.clone().unwrap_or_default();
        let q = RateLimitQuery {
            scope: "login",
            key: format!("login:ip:{ip}:user:{}", username.to_lowercase()),
            ip: &ip,
            client_id: Some(client_id),
            identifier: Some(username),
        };
        match ctx.plugins.check_rate_limit(tenant.id, &q).await {
            Ok(Some(d)) if !d.allowed => {
                return Err(LoginError::RateLimited(d.reset_after_ms.div_ceil(1000)));
            }
            Ok(_) => {}
            Err(f) => return Err(LoginError::PluginUnavailable(f.plugin_id)),
        }
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
        .map_err(|e| LoginError::Internal(e.to_string()))?;
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
        changes: json!({ "client_id": client_id, "via": via, "reason": reason }),
    };
    // Credentials the built-in store cannot decide (an unknown user, or a
    // user without a local password) go to the tenant's auth-provider
    // plugins, in order; the first that verifies or rejects decides.
    let undecidable = creds
        .as_ref()
        .is_none_or(|c| c.password_hash.is_none() && !c.is_service_account);
    if undecidable && ctx.plugins.has(tenant.id, Category::AuthProvider) {
        let verdict = ctx
            .plugins
            .verify_external_password(
                tenant.id,
                username,
                password,
                Some(client_id),
                actor.ip.as_deref(),
                actor.user_agent.as_deref(),
            )
            .await
            .map_err(|f| LoginError::PluginUnavailable(f.plugin_id))?;
        match verdict {
            ExternalVerdict::NotApplicable => {}
            ExternalVerdict::Rejected { plugin_id, reason } => {
                if let Some(c) = &creds {
                    let threshold = tenant
                        .settings
                        .lockout_threshold
                        .unwrap_or(ctx.config.lockout_threshold);
                    let duration = tenant
                        .settings
                        .lockout_duration
                        .unwrap_or(ctx.config.lockout_duration);
                    ctx.store
                        .record_login_failure(
                            tenant.id,
                            c.id,
                            threshold,
                            now.plus_seconds(duration),
                        )
                        .await?;
                }
                ctx.store
                    .append_audit(&failure(
                        creds.as_ref().map(|c| c.id),
                        &format!("rejected by plugin {plugin_id}: {reason}"),
                    ))
                    .await?;
                return Err(LoginError::Invalid);
            }
            ExternalVerdict::Verified(identity) => {
                // Security: a plugin's "verified" only ever signs in the user
                // that plugin created for that external subject. An existing
                // account (with or without a local password) that is not
                // linked to (plugin, subject) is never taken over, whatever
                // email the plugin reports; disabled, locked and service
                // accounts are refused.
                let user_id = match &creds {
                    Some(c) if !c.enabled || locked || c.is_service_account => {
                        ctx.store
                            .append_audit(&failure(
                                Some(c.id),
                                "user disabled, locked or a service account",
                            ))
                            .await?;
                        return Err(LoginError::Invalid);
                    }
                    Some(c) if linked_to(ctx, tenant, c.id, &identity).await? => c.id,
                    Some(c) => {
                        ctx.store
                            .append_audit(&failure(
                                Some(c.id),
                                &format!(
                                    "plugin {} verified an identity not linked to this user",
                                    identity.plugin_id
                                ),
                            ))
                            .await?;
                        return Err(LoginError::Invalid);
                    }
                    None => match provision_external_user(ctx, tenant, username, &identity, &actor)
                        .await?
                    {
                        Some(id) => id,
                        None => {
                            ctx.store
                                .append_audit(&failure(
                                    None,
                                    &format!(
                                        "plugin {} verified an identity whose email belongs to an unlinked user",
                                        identity.plugin_id
                                    ),
                                ))
                                .await?;
                            return Err(LoginError::Invalid);
                        }
                    },
                };
                return login_succeeded(ctx, tenant, user_id, client_id, via, &actor, &failure)
                    .await;
            }
        }
    }
    match creds {
        Some(c) if ok && locked => {
            ctx.store
                .append_audit(&failure(Some(c.id), "account locked"))
                .await?;
            Err(LoginError::Locked)
        }
        Some(c) if locked => {
            ctx.store
                .append_audit(&failure(Some(c.id), "bad password while locked"))
                .await?;
            Err(LoginError::Invalid)
        }
        Some(c) if ok && c.enabled => {
            login_succeeded(ctx, tenant, c.id, client_id, via, &actor, &failure).await
        }
        Some(c) if ok => {
            ctx.store
                .append_audit(&failure(Some(c.id), "user disabled"))
                .await?;
            Err(LoginError::Invalid)
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
            Err(LoginError::Invalid)
        }
        None => {
            ctx.store
                .append_audit(&failure(None, "unknown user"))
                .await?;
            Err(LoginError::Invalid)
        }
    }
}

/// The end of every successful password check: pre-login hooks (which may
/// veto), the audited success, and the post-login event.
pub(crate) async fn login_succeeded(
    ctx: &Ctx,
    tenant: &Tenant,
    user_id: Uuid,
    client_id: &str,
    via: &str,
    actor: &Actor,
    failure: &(dyn Fn(Option<Uuid>, &str) -> AuditEvent + Sync),
) -> Result<Uuid, LoginError> {
    let user = if ctx.plugins.has(tenant.id, Category::LifecycleHook) {
        Some(ctx.store.get_user(tenant.id, user_id).await?)
    } else {
        None
    };
    let ev = EventContext {
        client_id: Some(client_id.to_string()),
        method: via.to_string(),
        ip: actor.ip.clone(),
        user_agent: actor.user_agent.clone(),
        ..Default::default()
    };
    if let Some(u) = &user {
        match ctx
            .plugins
            .before_event(tenant.id, PreEvent::Login, &snapshot(u), &ev)
            .await
        {
            Ok(None) => {}
            Ok(Some(veto)) => {
                ctx.store
                    .append_audit(&failure(
                        Some(user_id),
                        &format!("vetoed by plugin {}: {}", veto.plugin_id, veto.code),
                    ))
                    .await?;
                return Err(LoginError::Vetoed(veto.message));
            }
            Err(f) => return Err(LoginError::PluginUnavailable(f.plugin_id)),
        }
    }
    ctx.store
        .record_login_success(
            tenant.id,
            user_id,
            &AuditEvent {
                tenant_id: tenant.id,
                actor: Actor {
                    actor_type: "user".into(),
                    actor_id: Some(user_id),
                    ..actor.clone()
                },
                action: "user.login".into(),
                target_type: "user".into(),
                target_id: Some(user_id.to_string()),
                changes: json!({ "client_id": client_id, "via": via }),
            },
        )
        .await?;
    if let Some(u) = user {
        ctx.plugins
            .after_event(tenant.id, PostEvent::UserLoggedIn, snapshot(&u), ev);
    }
    Ok(user_id)
}

/// Whether `user_id` is the user created for this (plugin, external subject).
async fn linked_to(
    ctx: &Ctx,
    tenant: &Tenant,
    user_id: Uuid,
    identity: &ExternalIdentity,
) -> Result<bool, LoginError> {
    let user = ctx.store.get_user(tenant.id, user_id).await?;
    let ext = &user.attributes["external"];
    Ok(ext["plugin"].as_str() == Some(identity.plugin_id.as_str())
        && ext["subject"].as_str() == Some(identity.external_subject.as_str()))
}

/// Creates the local user for an identity an auth-provider plugin verified
/// (just-in-time migration): no local password, the plugin's attributes,
/// and `external: {plugin, subject}` so the link is visible to admins.
/// `None` when the email belongs to a user not linked to this identity.
async fn provision_external_user(
    ctx: &Ctx,
    tenant: &Tenant,
    username: &str,
    identity: &ExternalIdentity,
    actor: &Actor,
) -> Result<Option<Uuid>, LoginError> {
    let email = identity
        .email
        .clone()
        .or_else(|| username.contains('@').then(|| username.to_string()))
        .ok_or(LoginError::Invalid)?;
    let mut attributes = serde_json::Map::new();
    for (k, v) in &identity.attributes {
        attributes.insert(k.clone(), v.clone());
    }
    attributes.insert(
        "external".into(),
        json!({ "plugin": identity.plugin_id, "subject": identity.external_subject }),
    );
    let user = crate::store::NewUser {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        email: email.trim().to_string(),
        password_hash: None,
        profile: crate::model::UserProfile {
            display_name: identity.name.clone(),
            ..Default::default()
        },
        email_verified: identity.email_verified,
        enabled: true,
        is_service_account: false,
        attributes: serde_json::Value::Object(attributes),
    };
    let ev = AuditEvent {
        tenant_id: tenant.id,
        actor: Actor {
            actor_type: "system".into(),
            actor_id: None,
            ..actor.clone()
        },
        action: "user.create".into(),
        target_type: "user".into(),
        target_id: Some(user.id.to_string()),
        changes: json!({ "email": user.email, "via": "auth-provider", "plugin": identity.plugin_id }),
    };
    match ctx.store.create_user(&user, &ev).await {
        Ok(u) => Ok(Some(u.id)),
        // The email is taken: only the user this plugin created for this
        // subject (a concurrent first login) may be used, never another.
        Err(crate::store::StoreError::Conflict(_)) => {
            let Some(c) = ctx
                .store
                .user_credentials_by_email(tenant.id, &user.email)
                .await?
            else {
                return Ok(None);
            };
            let usable = c.enabled
                && !c.is_service_account
                && linked_to(ctx, tenant, c.id, identity).await?;
            Ok(usable.then_some(c.id))
        }
        Err(e) => Err(e.into()),
    }
}
