//! Password reset by email: an administrator (or later the user) asks for a
//! reset link; the tenant's notification-channel plugin delivers it; the
//! hosted page sets the new password.
//!
//! Security decisions:
//! - The link carries a token sealed with the master key (AES-256-GCM)
//!   bound to the tenant, holding the user id, an expiry (30 minutes) and a
//!   fingerprint of the user's current password hash and email. Setting any
//!   password changes the fingerprint, so a token works once and older
//!   tokens die with it; changing the email kills links sent to the old
//!   address. No table of tokens is needed and every node accepts them.
//! - Two submissions of one link racing each other (both checked before
//!   either wrote) are settled in the database: the password is replaced
//!   only if it is still the one the link was checked against.
//! - A password set through a link ends every session of the user and
//!   revokes their refresh tokens: whoever knew the old password is out.
//! - If the account's email was not verified, the link is the first proof
//!   of who owns it, so the account's federated identities are unlinked:
//!   someone who created the account through an upstream with the owner's
//!   (unproven) email cannot keep signing in through that upstream.
//! - The new password passes the same checks as any other password set
//!   (built-in rules, then the tenant's input-validator plugins).
//! - Without a notification channel the request is refused (409): the core
//!   sends no mail of its own.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::{Actor, Tenant};
use crate::plugins::hooks::notification_channel::{Notification, NotifyFailure};

/// How long a reset link works.
pub const RESET_LINK_SECONDS: i64 = 30 * 60;

#[derive(Serialize, Deserialize)]
struct ResetClaims {
    user: Uuid,
    exp: i64,
    fingerprint: String,
}

fn seal_context(tenant: Uuid) -> String {
    format!("password-reset:{tenant}")
}

fn fingerprint(hash: Option<&str>, email: &str) -> String {
    let mut h = Sha256::new();
    h.update(hash.unwrap_or("none").as_bytes());
    h.update(b"\n");
    h.update(email.trim().to_lowercase().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// What the admin API answers after sending.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResetEmailSent {
    /// The channel plugin that delivered.
    pub channel: String,
    /// The message id the server assigned.
    pub message_id: String,
    /// The provider's message id, when it gave one.
    pub provider_message_id: Option<String>,
    /// When the link stops working (seconds since the epoch).
    pub expires_at: i64,
}

/// Sends a reset link to the user's email through the tenant's channels.
pub async fn send(
    ctx: &Ctx,
    actor: &Actor,
    tenant: &Tenant,
    user_id: Uuid,
) -> Result<ResetEmailSent> {
    let user = ctx
        .store
        .get_user(tenant.id, user_id)
        .await
        .map_err(Error::from_store("user"))?;
    if user.is_service_account {
        return Err(Error::Conflict("service accounts have no password".into()));
    }
    let hash = ctx.store.password_hash_of(tenant.id, user_id).await?;
    let exp = crate::time::Timestamp::now().unix() + RESET_LINK_SECONDS;
    let claims = ResetClaims {
        user: user_id,
        exp,
        fingerprint: fingerprint(hash.as_deref(), &user.email),
    };
    let token = ctx.master.seal(
        serde_json::to_vec(&claims)
            .map_err(|e| Error::Internal(e.to_string()))?
            .as_slice(),
        &seal_context(tenant.id),
    );
    let link = format!(
        "{}/reset-password?token={}",
        ctx.config.issuer_for(&tenant.slug),
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let name = tenant
        .display_name
        .clone()
        .unwrap_or_else(|| tenant.name.clone());
    let n = Notification {
        template: "password-reset".into(),
        to: user.email.clone(),
        to_name: user.display_name.clone(),
        subject: format!("Reset your {name} password"),
        text_body: format!(
            "Someone asked to reset the password of your {name} account.\n\nSet a new password here (the link works once, for 30 minutes):\n{link}\n\nIf you did not ask for this, ignore this message."
        ),
        html_body: Some(format!(
            "<p>Someone asked to reset the password of your {} account.</p><p><a href=\"{}\">Set a new password</a> (the link works once, for 30 minutes).</p><p>If you did not ask for this, ignore this message.</p>",
            crate::http::pages::escape(&name),
            crate::http::pages::escape(&link)
        )),
        locale: user.locale.clone().unwrap_or_else(|| "en".into()),
    };
    let delivery = ctx
        .plugins
        .send_email(tenant.id, &n)
        .await
        .map_err(|e| match e {
            NotifyFailure::NoChannel => {
                Error::Conflict("no notification channel plugin is active for this tenant".into())
            }
            NotifyFailure::Failed { plugin_id, .. } => {
                Error::Unavailable(format!("the notification channel {plugin_id} failed"))
            }
        })?;
    let ev = event(
        tenant.id,
        actor,
        "user.password_reset_sent",
        "user",
        user_id,
        json!({ "channel": delivery.plugin_id, "message_id": delivery.message_id }),
    );
    ctx.store.append_audit(&ev).await?;
    Ok(ResetEmailSent {
        channel: delivery.plugin_id,
        message_id: delivery.message_id,
        provider_message_id: delivery.provider_message_id,
        expires_at: exp,
    })
}

/// The user a token is for, if it is valid now.
pub async fn check(ctx: &Ctx, tenant: &Tenant, token: &str) -> Result<Uuid> {
    Ok(check_with_hash(ctx, tenant, token).await?.0)
}

/// The user a token is for and the password hash it was checked against.
async fn check_with_hash(
    ctx: &Ctx,
    tenant: &Tenant,
    token: &str,
) -> Result<(Uuid, Option<String>)> {
    let invalid = || Error::field("token", "this reset link is invalid, used or expired");
    let plain = ctx
        .master
        .open(token, &seal_context(tenant.id))
        .map_err(|_| invalid())?;
    let claims: ResetClaims = serde_json::from_slice(&plain).map_err(|_| invalid())?;
    if claims.exp < crate::time::Timestamp::now().unix() {
        return Err(invalid());
    }
    let user = match ctx.store.get_user(tenant.id, claims.user).await {
        Ok(u) => u,
        Err(crate::store::StoreError::NotFound) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    let hash = ctx.store.password_hash_of(tenant.id, claims.user).await?;
    if fingerprint(hash.as_deref(), &user.email) != claims.fingerprint {
        return Err(invalid());
    }
    Ok((claims.user, hash))
}

/// Sets the new password of the token's user.
pub async fn complete(
    ctx: &Ctx,
    actor: &Actor,
    tenant: &Tenant,
    token: &str,
    password: String,
) -> Result<()> {
    let (user, current_hash) = check_with_hash(ctx, tenant, token).await?;
    let actor = Actor {
        actor_type: "user".into(),
        actor_id: Some(user),
        ..actor.clone()
    };
    crate::identity::users::set_password_replacing(
        ctx,
        &actor,
        tenant.id,
        user,
        crate::identity::users::SetPassword { password },
        current_hash.as_deref(),
    )
    .await
    .map_err(|e| match e {
        // Another submission of this link set the password first.
        Error::Conflict(_) => Error::field("token", "this reset link is invalid, used or expired"),
        other => other,
    })?;
    crate::sessions::admin::revoke_all_for_user(ctx, &actor, tenant.id, user).await?;
    let account = ctx.store.get_user(tenant.id, user).await?;
    if !account.email_verified
        && !ctx
            .store
            .federated_identities_of(tenant.id, user)
            .await?
            .is_empty()
    {
        let ev = event(
            tenant.id,
            &actor,
            "user.federated_identities_unlinked",
            "user",
            user,
            json!({ "reason": "password reset of an account with an unverified email" }),
        );
        ctx.store
            .unlink_all_federated_identities(tenant.id, user, &ev)
            .await?;
    }
    Ok(())
}
