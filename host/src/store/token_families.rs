//! Authorization codes, grants (token families), refresh tokens and revoked
//! access tokens. Codes and refresh tokens are stored only as SHA-256.

use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::model::{AuthorizationCode, OAuthGrant, RefreshTokenRecord};
use crate::time::Timestamp;

const CODE_COLUMNS: &str = "code_hash, tenant_id, client_id, user_id, session_id, redirect_uri, scope, nonce, \
    code_challenge, auth_time, dpop_jkt, created_at, expires_at, consumed_at, grant_id";
const GRANT_COLUMNS: &str = "id, tenant_id, client_id, user_id, session_id, scope, auth_time, dpop_jkt, \
    created_at, expires_at, revoked_at";

/// What redeeming a code found.
#[derive(Debug)]
pub enum CodeRedemption {
    /// First use: the grant and refresh token were stored.
    Redeemed,
    /// The code had been redeemed before (or concurrently); its grant has
    /// now been revoked.
    Replayed,
    /// The browser session the code came from has ended; nothing was stored.
    SessionEnded,
}

/// What rotating a refresh token found.
#[derive(Debug)]
pub enum RefreshRotation {
    /// The presented token was active; it is now rotated and the new one stored.
    Rotated,
    /// The presented token had already been rotated: its whole family is
    /// now revoked.
    ReuseDetected,
}

/// Inserts a grant through `$exec`.
macro_rules! insert_grant {
    ($exec:expr, $g:expr) => {{
        let g: &OAuthGrant = $g;
        sqlx::query(
            "INSERT INTO oauth_grants (id, tenant_id, client_id, user_id, session_id, scope, auth_time, dpop_jkt, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(g.id)
        .bind(g.tenant_id)
        .bind(&g.client_id)
        .bind(g.user_id)
        .bind(g.session_id)
        .bind(&g.scope)
        .bind(g.auth_time)
        .bind(&g.dpop_jkt)
        .bind(g.created_at)
        .bind(g.expires_at)
        .execute($exec)
        .await?;
    }};
}

/// Inserts a refresh token through `$exec`.
macro_rules! insert_refresh {
    ($exec:expr, $r:expr) => {{
        let r: &RefreshTokenRecord = $r;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, tenant_id, status, created_at, expires_at) \
             VALUES ($1, $2, $3, 'active', $4, $5)",
        )
        .bind(&r.token_hash)
        .bind(r.grant_id)
        .bind(r.tenant_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute($exec)
        .await?;
    }};
}

/// Revokes a grant and every refresh token of it through `$exec`.
macro_rules! revoke_family {
    ($exec:expr, $tenant:expr, $grant:expr, $reason:expr, $now:expr) => {{
        sqlx::query(
            "UPDATE oauth_grants SET revoked_at = $3, revoked_reason = $4 \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind($tenant)
        .bind($grant)
        .bind($now)
        .bind($reason)
        .execute(&mut *$exec)
        .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET status = 'revoked' WHERE tenant_id = $1 AND grant_id = $2 AND status <> 'revoked'",
        )
        .bind($tenant)
        .bind($grant)
        .execute(&mut *$exec)
        .await?;
    }};
}

/// Revokes every live grant of a tenant whose `$column` (`session_id` or
/// `user_id`) equals `$value`, then their refresh tokens — grant first, the
/// lock order of every family write.
macro_rules! revoke_grants_where {
    ($exec:expr, $column:literal, $tenant:expr, $value:expr, $reason:expr, $now:expr) => {{
        sqlx::query(concat!(
            "UPDATE oauth_grants SET revoked_at = $3, revoked_reason = $4 \
             WHERE tenant_id = $1 AND ",
            $column,
            " = $2 AND revoked_at IS NULL"
        ))
        .bind($tenant)
        .bind($value)
        .bind($now)
        .bind($reason)
        .execute(&mut *$exec)
        .await?;
        sqlx::query(concat!(
            "UPDATE refresh_tokens SET status = 'revoked' WHERE tenant_id = $1 AND status <> 'revoked' \
             AND grant_id IN (SELECT id FROM oauth_grants WHERE tenant_id = $1 AND ",
            $column,
            " = $2)"
        ))
        .bind($tenant)
        .bind($value)
        .execute(&mut *$exec)
        .await?;
    }};
}
pub(crate) use revoke_grants_where;

impl Store {
    /// Stores a new authorization code.
    pub async fn insert_authorization_code(&self, c: &AuthorizationCode) -> StoreResult<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO authorization_codes (code_hash, tenant_id, client_id, user_id, session_id, redirect_uri, \
                 scope, nonce, code_challenge, auth_time, dpop_jkt, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(&c.code_hash)
            .bind(c.tenant_id)
            .bind(&c.client_id)
            .bind(c.user_id)
            .bind(c.session_id)
            .bind(&c.redirect_uri)
            .bind(&c.scope)
            .bind(&c.nonce)
            .bind(&c.code_challenge)
            .bind(c.auth_time)
            .bind(&c.dpop_jkt)
            .bind(c.created_at)
            .bind(c.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A code by hash, redeemed or not.
    pub async fn authorization_code(
        &self,
        tenant_id: Uuid,
        code_hash: &str,
    ) -> StoreResult<Option<AuthorizationCode>> {
        let sql = format!(
            "SELECT {CODE_COLUMNS} FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, AuthorizationCode>(&sql)
                .bind(tenant_id)
                .bind(code_hash)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Redeems a code once: marks it consumed and stores its grant (and
    /// first refresh token) in one transaction. A code already consumed
    /// instead revokes the grant it produced (RFC 6749 §4.1.2).
    pub async fn redeem_authorization_code(
        &self,
        code: &AuthorizationCode,
        grant: &OAuthGrant,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<CodeRedemption> {
        let now = Timestamp::now();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let consumed = sqlx::query(
                "UPDATE authorization_codes SET consumed_at = $3, grant_id = $4 \
                 WHERE tenant_id = $1 AND code_hash = $2 AND consumed_at IS NULL",
            )
            .bind(code.tenant_id)
            .bind(&code.code_hash)
            .bind(now)
            .bind(grant.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if consumed == 0 {
                tx.rollback().await?;
                self.revoke_code_grant(code.tenant_id, &code.code_hash)
                    .await?;
                return Ok(CodeRedemption::Replayed);
            }
            // Lock the session row and check it is live inside this
            // transaction: a logout that ends it waits for this commit and
            // then revokes the new grant too, or ran first and is seen here.
            if let Some(sid) = code.session_id {
                let live = sqlx::query(
                    "UPDATE browser_sessions SET ended_at = ended_at \
                     WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL AND expires_at > $3",
                )
                .bind(code.tenant_id)
                .bind(sid)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if live == 0 {
                    tx.rollback().await?;
                    return Ok(CodeRedemption::SessionEnded);
                }
            }
            insert_grant!(&mut *tx, grant);
            if let Some(r) = refresh {
                insert_refresh!(&mut *tx, r);
            }
            tx.commit().await?;
            Ok(CodeRedemption::Redeemed)
        })
    }

    /// Revokes the grant a replayed code produced.
    ///
    /// Every statement here writes, starting with the first: a SQLite
    /// transaction that reads before writing cannot wait for the write lock
    /// (it fails at once with "database is locked" under concurrency).
    pub async fn revoke_code_grant(&self, tenant_id: Uuid, code_hash: &str) -> StoreResult<()> {
        let now = Timestamp::now();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE oauth_grants SET revoked_at = $3, revoked_reason = 'code_replayed' \
                 WHERE tenant_id = $1 AND revoked_at IS NULL AND id = \
                 (SELECT grant_id FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2)",
            )
            .bind(tenant_id)
            .bind(code_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE refresh_tokens SET status = 'revoked' WHERE tenant_id = $1 AND status <> 'revoked' \
                 AND grant_id = (SELECT grant_id FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2)",
            )
            .bind(tenant_id)
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// A grant by id.
    pub async fn grant(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<Option<OAuthGrant>> {
        let sql =
            format!("SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE tenant_id = $1 AND id = $2");
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, OAuthGrant>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// A refresh token by hash with its grant.
    pub async fn refresh_token(
        &self,
        tenant_id: Uuid,
        token_hash: &str,
    ) -> StoreResult<Option<(RefreshTokenRecord, OAuthGrant)>> {
        let row: Option<RefreshTokenRecord> = on_pool!(&self.db, |pool| {
            sqlx::query_as::<_, RefreshTokenRecord>(
                "SELECT token_hash, grant_id, tenant_id, status, created_at, expires_at FROM refresh_tokens \
                 WHERE tenant_id = $1 AND token_hash = $2",
            )
            .bind(tenant_id)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
        });
        let Some(rt) = row else { return Ok(None) };
        Ok(self.grant(tenant_id, rt.grant_id).await?.map(|g| (rt, g)))
    }

    /// Rotates a refresh token: the presented one must still be active. A
    /// token already rotated revokes its whole family (reuse detection,
    /// RFC 9700 §4.14.2).
    pub async fn rotate_refresh_token(
        &self,
        tenant_id: Uuid,
        presented_hash: &str,
        next: &RefreshTokenRecord,
    ) -> StoreResult<RefreshRotation> {
        let now = Timestamp::now();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // Lock order for a family is always grant, then refresh tokens
            // (revocation takes the same order), so concurrent rotation and
            // revocation cannot deadlock on PostgreSQL. The no-op update
            // takes the grant's row lock (and SQLite's write lock) first.
            sqlx::query(
                "UPDATE oauth_grants SET revoked_at = revoked_at WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(next.grant_id)
            .execute(&mut *tx)
            .await?;
            let rotated = sqlx::query(
                "UPDATE refresh_tokens SET status = 'rotated', rotated_at = $3 \
                 WHERE tenant_id = $1 AND token_hash = $2 AND status = 'active'",
            )
            .bind(tenant_id)
            .bind(presented_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if rotated == 0 {
                revoke_family!(tx, tenant_id, next.grant_id, "refresh_token_reused", now);
                tx.commit().await?;
                return Ok(RefreshRotation::ReuseDetected);
            }
            insert_refresh!(&mut *tx, next);
            tx.commit().await?;
            Ok(RefreshRotation::Rotated)
        })
    }

    /// Revokes a whole grant (refresh token revocation, RFC 7009 §2.1).
    pub async fn revoke_grant(
        &self,
        tenant_id: Uuid,
        grant_id: Uuid,
        reason: &str,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            revoke_family!(tx, tenant_id, grant_id, reason, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a revoked access token until it would have expired anyway.
    pub async fn revoke_access_token(
        &self,
        tenant_id: Uuid,
        jti: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO revoked_access_tokens (jti, tenant_id, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(tenant_id)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Whether an access token was revoked.
    pub async fn access_token_revoked(&self, tenant_id: Uuid, jti: &str) -> StoreResult<bool> {
        on_pool!(&self.db, |pool| {
            // COUNT(*) is BIGINT on PostgreSQL and INTEGER on SQLite: both i64.
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM revoked_access_tokens WHERE tenant_id = $1 AND jti = $2",
            )
            .bind(tenant_id)
            .bind(jti)
            .fetch_one(pool)
            .await?;
            Ok(n > 0)
        })
    }

    /// Deletes expired codes, refresh tokens, revocations, sessions and
    /// unfinished federated sign-ins.
    pub async fn purge_expired_oauth_state(&self, now: Timestamp) -> StoreResult<u64> {
        let mut n = 0;
        on_pool!(&self.db, |pool| {
            for sql in [
                "DELETE FROM authorization_codes WHERE expires_at < $1",
                "DELETE FROM revoked_access_tokens WHERE expires_at < $1",
                "DELETE FROM refresh_tokens WHERE expires_at < $1",
                "DELETE FROM oauth_grants WHERE expires_at < $1 AND id NOT IN (SELECT grant_id FROM refresh_tokens)",
                "DELETE FROM browser_sessions WHERE expires_at < $1",
                "DELETE FROM federation_states WHERE expires_at < $1",
            ] {
                n += sqlx::query(sql)
                    .bind(now)
                    .execute(pool)
                    .await?
                    .rows_affected();
            }
        });
        Ok(n)
    }
}
