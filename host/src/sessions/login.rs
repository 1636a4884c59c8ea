//! Password login with lockout, shared by the hosted login page and the
//! password grant.

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
                        changes: json!({ "client_id": client_id, "via": via }),
                    },
                )
                .await?;
            Ok(c.id)
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
