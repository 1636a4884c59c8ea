//! Session administration: listing a tenant's live browser sessions and
//! ending them, as Keycloak's and Auth0's admin APIs offer.
//!
//! Security decisions:
//! - A listed session never carries its cookie hash; only when and how the
//!   user signed in, and from which address and user agent.
//! - Ending a session revokes every grant issued from it in the same
//!   transaction, so its refresh tokens and access tokens stop being active
//!   at once (access tokens name their grant in `jti`). Ending a user's
//!   sessions revokes every grant of the user, with or without a session.
//! - Each revocation is audited in the transaction that makes it.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::{Actor, BrowserSession, Page, PageRequest};
use crate::time::Timestamp;

/// A live browser session as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Session id (the `sid` claim of tokens issued from it).
    pub id: Uuid,
    /// Signed-in user.
    pub user_id: Uuid,
    /// When the user last presented credentials.
    pub auth_time: Timestamp,
    /// Authentication methods used (`amr`), e.g. `["pwd"]`.
    pub amr: Vec<String>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Absolute expiry.
    pub expires_at: Timestamp,
}

impl SessionInfo {
    fn new(s: BrowserSession, ip: Option<String>, user_agent: Option<String>) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            auth_time: s.auth_time,
            amr: s.amr.split_whitespace().map(String::from).collect(),
            ip,
            user_agent,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

/// Live sessions of a tenant (of one user when `user_id` is given), newest
/// first. An unknown `user_id` simply matches nothing.
pub async fn list(
    ctx: &Ctx,
    tenant_id: Uuid,
    user_id: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<SessionInfo>> {
    let p = ctx
        .store
        .list_live_browser_sessions(tenant_id, user_id, Timestamp::now(), page)
        .await?;
    Ok(Page {
        data: p
            .data
            .into_iter()
            .map(|(s, ip, ua)| SessionInfo::new(s, ip, ua))
            .collect(),
        page: p.page,
        per_page: p.per_page,
        total: p.total,
    })
}

/// Live sessions of one user, newest first; 404 when the user is not a
/// live user of the tenant.
pub async fn list_for_user(
    ctx: &Ctx,
    tenant_id: Uuid,
    user_id: Uuid,
    page: PageRequest,
) -> Result<Page<SessionInfo>> {
    ctx.store
        .get_user(tenant_id, user_id)
        .await
        .map_err(Error::from_store("user"))?;
    list(ctx, tenant_id, Some(user_id), page).await
}

/// A session of the tenant that has not ended (it may have expired: ending
/// it still revokes its grants); 404 otherwise.
pub async fn open_session(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<BrowserSession> {
    match ctx.store.browser_session(tenant_id, id).await? {
        Some(s) if s.ended_at.is_none() => Ok(s),
        _ => Err(Error::NotFound("session")),
    }
}

/// Ends `session` and revokes the grants issued from it (audited as
/// `session.revoked`). 404 if it ended meanwhile.
pub async fn revoke(ctx: &Ctx, actor: &Actor, session: &BrowserSession) -> Result<()> {
    let ev = event(
        session.tenant_id,
        actor,
        "session.revoked",
        "session",
        session.id,
        json!({ "user_id": session.user_id }),
    );
    ctx.store
        .revoke_browser_session(session.tenant_id, session.id, &ev)
        .await
        .map_err(Error::from_store("session"))
}

/// Ends every session of a user and revokes every grant of the user
/// (audited as `user.sessions_revoked`). 404 when the user is not a live
/// user of the tenant.
pub async fn revoke_all_for_user(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "user.sessions_revoked",
        "user",
        user_id,
        json!({}),
    );
    ctx.store
        .revoke_user_sessions(tenant_id, user_id, &ev)
        .await
        .map_err(Error::from_store("user"))
}
