//! Browser sessions (single sign-on), their administration, and remembered
//! consents.

use sqlx::{FromRow, Row};
use uuid::Uuid;

use super::token_families::revoke_grants_where;
use super::{Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, BrowserSession, Page, PageRequest};
use crate::time::Timestamp;

const SESSION_COLUMNS: &str =
    "id, tenant_id, user_id, auth_time, amr, created_at, expires_at, ended_at";

/// A session to create; the cookie value is known only by its hash.
#[derive(Debug, Clone)]
pub struct NewBrowserSession {
    /// The session.
    pub session: BrowserSession,
    /// SHA-256 of the cookie value.
    pub token_hash: String,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
}

impl Store {
    /// Stores a new browser session.
    pub async fn create_browser_session(&self, s: &NewBrowserSession) -> StoreResult<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO browser_sessions (id, tenant_id, user_id, token_hash, auth_time, amr, ip, user_agent, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(s.session.id)
            .bind(s.session.tenant_id)
            .bind(s.session.user_id)
            .bind(&s.token_hash)
            .bind(s.session.auth_time)
            .bind(&s.session.amr)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .bind(s.session.created_at)
            .bind(s.session.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The live session whose cookie hashes to `token_hash` in `tenant_id`.
    pub async fn live_browser_session(
        &self,
        tenant_id: Uuid,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<BrowserSession>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM browser_sessions WHERE tenant_id = $1 AND token_hash = $2 \
             AND ended_at IS NULL AND expires_at > $3"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, BrowserSession>(&sql)
                .bind(tenant_id)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// A session by id, live or not.
    pub async fn browser_session(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<BrowserSession>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM browser_sessions WHERE tenant_id = $1 AND id = $2"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, BrowserSession>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Ends a session; with `revoke_grants`, also revokes every grant issued
    /// from it, in the same transaction (logout ends the tokens the session
    /// produced).
    pub async fn end_browser_session(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        revoke_grants: bool,
    ) -> StoreResult<bool> {
        let now = Timestamp::now();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let ended = sqlx::query(
                "UPDATE browser_sessions SET ended_at = $3 WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if !revoke_grants {
                tx.commit().await?;
                return Ok(ended > 0);
            }
            revoke_grants_where!(tx, "session_id", tenant_id, id, "logout", now);
            tx.commit().await?;
            Ok(ended > 0)
        })
    }

    /// One page of the live (not ended, not expired at `now`) sessions of
    /// `tenant_id`, of `user_id` only when given, newest first. Each comes
    /// with the IP address and user agent it was started from; the cookie
    /// hash is never read.
    pub async fn list_live_browser_sessions(
        &self,
        tenant_id: Uuid,
        user_id: Option<Uuid>,
        now: Timestamp,
        page: PageRequest,
    ) -> StoreResult<Page<(BrowserSession, Option<String>, Option<String>)>> {
        let where_clause = "tenant_id = $1 AND ended_at IS NULL AND expires_at > $2 \
             AND ($3 IS NULL OR user_id = $3)";
        let list_sql = format!(
            "SELECT {SESSION_COLUMNS}, ip, user_agent FROM browser_sessions WHERE {where_clause} \
             ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        );
        let count_sql = format!("SELECT COUNT(*) FROM browser_sessions WHERE {where_clause}");
        on_pool!(&self.db, |pool| {
            let rows = sqlx::query(&list_sql)
                .bind(tenant_id)
                .bind(now)
                .bind(user_id)
                .bind(page.per_page)
                .bind(page.offset())
                .fetch_all(pool)
                .await?;
            let data = rows
                .iter()
                .map(|r| {
                    Ok((
                        BrowserSession::from_row(r)?,
                        r.try_get("ip")?,
                        r.try_get("user_agent")?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let (total,): (i64,) = sqlx::query_as(&count_sql)
                .bind(tenant_id)
                .bind(now)
                .bind(user_id)
                .fetch_one(pool)
                .await?;
            Ok(Page {
                data,
                page: page.page,
                per_page: page.per_page,
                total,
            })
        })
    }

    /// Ends a session that has not ended yet and revokes every grant issued
    /// from it (so its refresh and access tokens stop being active), with
    /// `event` in the same transaction. `NotFound`, and nothing written,
    /// when no such session of `tenant_id` is still open.
    pub async fn revoke_browser_session(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        audited_tx!(self, event, |tx| {
            let ended = sqlx::query(
                "UPDATE browser_sessions SET ended_at = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if ended == 0 {
                return Err(StoreError::NotFound);
            }
            revoke_grants_where!(tx, "session_id", tenant_id, id, "session_revoked", now);
        });
        Ok(())
    }

    /// Ends every open session of a live user and revokes every grant of
    /// that user, whether issued from a session or not, with `event` in the
    /// same transaction. `NotFound`, and nothing written, when the user is
    /// not a live user of `tenant_id`.
    pub async fn revoke_user_sessions(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        audited_tx!(self, event, |tx| {
            // Read after the chain-head write above: on SQLite this
            // transaction already holds the write lock.
            let (live,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            if live == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "UPDATE browser_sessions SET ended_at = $3 \
                 WHERE tenant_id = $1 AND user_id = $2 AND ended_at IS NULL",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            revoke_grants_where!(
                tx,
                "user_id",
                tenant_id,
                user_id,
                "user_sessions_revoked",
                now
            );
        });
        Ok(())
    }

    /// Scopes the user already consented to for `client_id`.
    pub async fn consented_scopes(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        client_id: &str,
    ) -> StoreResult<Vec<String>> {
        on_pool!(&self.db, |pool| {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT scopes FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
            Ok(row
                .map(|(s,)| s.split_whitespace().map(String::from).collect())
                .unwrap_or_default())
        })
    }

    /// Remembers a consent (the union of old and new scopes).
    pub async fn save_consent(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        client_id: &str,
        scopes: &[String],
    ) -> StoreResult<()> {
        let mut all = self.consented_scopes(tenant_id, user_id, client_id).await?;
        for s in scopes {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        let joined = all.join(" ");
        let now = Timestamp::now();
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO consents (tenant_id, user_id, client_id, scopes, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (tenant_id, user_id, client_id) \
                 DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(client_id)
            .bind(&joined)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
