//! Browser sessions: single sign-on at one tenant, created by the hosted
//! login page and ended by logout or by an administrator (`admin`).
//!
//! Security decision: the cookie carries 256 random bits and the database
//! keeps only their SHA-256, so a database leak yields no usable session.
//! Sessions have an absolute lifetime; `prompt=login` and `max_age` force a
//! fresh password even inside one.

pub mod admin;
pub mod federation;
pub mod login;
pub mod password_reset;

use uuid::Uuid;

use crate::context::Ctx;
use crate::crypto::secrets::{random_secret, sha256_hex};
use crate::model::{BrowserSession, Tenant};
use crate::store::{NewBrowserSession, StoreResult};
use crate::time::Timestamp;

/// Default absolute session lifetime: 10 hours (Keycloak's SSO maximum).
pub const DEFAULT_SESSION_LIFETIME: i64 = 36_000;

/// Starts a session for `user_id`, authenticated at `auth_time` (default
/// now; a federated sign-in passes the upstream's); returns it and the
/// cookie value.
pub async fn start(
    ctx: &Ctx,
    tenant: &Tenant,
    user_id: Uuid,
    amr: &str,
    auth_time: Option<Timestamp>,
    ip: Option<String>,
    user_agent: Option<String>,
) -> StoreResult<(BrowserSession, String)> {
    let now = Timestamp::now();
    let lifetime = tenant
        .settings
        .session_lifetime
        .unwrap_or(DEFAULT_SESSION_LIFETIME);
    let cookie = random_secret();
    let session = BrowserSession {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        user_id,
        auth_time: auth_time.unwrap_or(now),
        amr: amr.into(),
        created_at: now,
        expires_at: now.plus_seconds(lifetime),
        ended_at: None,
    };
    ctx.store
        .create_browser_session(&NewBrowserSession {
            session: session.clone(),
            token_hash: sha256_hex(&cookie),
            ip,
            user_agent,
        })
        .await?;
    Ok((session, cookie))
}

/// The live session a cookie value names, if any.
pub async fn from_cookie(
    ctx: &Ctx,
    tenant: &Tenant,
    cookie: &str,
) -> StoreResult<Option<BrowserSession>> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Ok(None);
    }
    ctx.store
        .live_browser_session(tenant.id, &sha256_hex(cookie), Timestamp::now())
        .await
}

/// Logout: ends a session and revokes the grants issued from it.
pub async fn end(ctx: &Ctx, tenant: &Tenant, id: Uuid) -> StoreResult<bool> {
    ctx.store.end_browser_session(tenant.id, id, true).await
}

/// A new sign-in in the same browser replaces the session. The old
/// session's grants stay: applications already holding tokens keep them,
/// as they would if the user had signed in elsewhere; only logout revokes.
pub async fn replace(ctx: &Ctx, tenant: &Tenant, id: Uuid) -> StoreResult<bool> {
    ctx.store.end_browser_session(tenant.id, id, false).await
}
