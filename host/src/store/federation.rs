//! Federated sign-in: sign-ins in progress at an upstream
//! (`federation_states`) and the links between local users and upstream
//! identities (`federated_identities`).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{NewUser, Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, User};
use crate::time::Timestamp;

/// A sign-in that left for an upstream and has not come back yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FederationState {
    /// SHA-256 (hex) of the `state` sent upstream.
    pub state_hash: String,
    /// The tenant.
    pub tenant_id: Uuid,
    /// The identity-provider plugin.
    pub plugin_id: String,
    /// The nonce sent upstream.
    pub nonce: String,
    /// What the plugin keeps between `begin` and `complete`.
    pub flow_state: String,
    /// The relying party's authorization request, sealed.
    pub authorization_request: String,
    /// SHA-256 (hex) of the browser's CSRF cookie.
    pub browser_binding: String,
    /// The client's address (empty when unknown).
    pub client_ip: String,
    /// When the browser left.
    pub created_at: Timestamp,
    /// When the sign-in can no longer complete.
    pub expires_at: Timestamp,
}

/// A local user's link to an upstream identity.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct FederatedIdentityLink {
    /// The identity-provider plugin.
    pub plugin_id: String,
    /// The upstream issuer.
    pub issuer: String,
    /// The user's id at the upstream.
    pub subject: String,
    /// The local user.
    pub user_id: Uuid,
    /// The email the upstream released when the link was made or last used.
    pub email: Option<String>,
    /// When the link was made.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// The last sign-in through it.
    #[schema(value_type = Option<String>)]
    pub last_login_at: Option<Timestamp>,
}

const LINK_COLUMNS: &str = "plugin_id, issuer, subject, user_id, email, created_at, last_login_at";

/// Inserts `$link` for `$tenant` in transaction `$tx`, first dropping a link
/// of the same upstream identity to a deleted user (a deleted account's
/// identity may sign up again).
macro_rules! insert_link {
    ($tx:expr, $tenant:expr, $link:expr) => {{
        let link: &FederatedIdentityLink = $link;
        sqlx::query(
            "DELETE FROM federated_identities WHERE tenant_id = $1 AND plugin_id = $2 AND issuer = $3 \
             AND subject = $4 AND user_id IN (SELECT id FROM users WHERE tenant_id = $1 AND deleted_at IS NOT NULL)",
        )
        .bind($tenant)
        .bind(&link.plugin_id)
        .bind(&link.issuer)
        .bind(&link.subject)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO federated_identities (tenant_id, plugin_id, issuer, subject, user_id, email, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($tenant)
        .bind(&link.plugin_id)
        .bind(&link.issuer)
        .bind(&link.subject)
        .bind(link.user_id)
        .bind(&link.email)
        .bind(link.created_at)
        .bind(link.last_login_at)
        .execute(&mut *$tx)
        .await?;
    }};
}

impl Store {
    /// Unexpired sign-ins waiting at upstreams: the tenant's, and those
    /// from `client_ip`.
    pub async fn pending_federations(
        &self,
        tenant_id: Uuid,
        client_ip: &str,
        now: Timestamp,
    ) -> StoreResult<(i64, i64)> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM federation_states WHERE tenant_id = $1 AND expires_at > $3), \
                    (SELECT COUNT(*) FROM federation_states WHERE tenant_id = $1 AND client_ip = $2 AND expires_at > $3)"
        )
        .bind(tenant_id)
        .bind(client_ip)
        .bind(now)
        .fetch_one(pool)
        .await?
        }))
    }

    /// Records a sign-in leaving for an upstream; `Conflict` when the tenant
    /// already has `max_pending` unexpired sign-ins waiting, or the client's
    /// address `max_per_client`.
    pub async fn put_federation_state(
        &self,
        s: &FederationState,
        max_pending: i64,
        max_per_client: i64,
    ) -> StoreResult<()> {
        let done = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO federation_states (state_hash, tenant_id, plugin_id, nonce, flow_state, authorization_request, \
                 browser_binding, client_ip, created_at, expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
                 WHERE (SELECT COUNT(*) FROM federation_states WHERE tenant_id = $2 AND expires_at > $9) < $11 \
                 AND (SELECT COUNT(*) FROM federation_states WHERE tenant_id = $2 AND client_ip = $8 AND expires_at > $9) < $12",
            )
            .bind(&s.state_hash)
            .bind(s.tenant_id)
            .bind(&s.plugin_id)
            .bind(&s.nonce)
            .bind(&s.flow_state)
            .bind(&s.authorization_request)
            .bind(&s.browser_binding)
            .bind(&s.client_ip)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(max_pending)
            .bind(max_per_client)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::Conflict(
                "too many federated sign-ins in progress".into(),
            ));
        }
        Ok(())
    }

    /// Consumes the sign-in with this state hash: it is deleted whether or
    /// not it is still valid, so a state works at most once even when two
    /// callbacks race. `None` when unknown, another tenant's, or expired.
    pub async fn take_federation_state(
        &self,
        tenant_id: Uuid,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<FederationState>> {
        let row: Option<FederationState> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "DELETE FROM federation_states WHERE state_hash = $1 AND tenant_id = $2 \
                 RETURNING state_hash, tenant_id, plugin_id, nonce, flow_state, authorization_request, \
                 browser_binding, client_ip, created_at, expires_at",
            )
            .bind(state_hash)
            .bind(tenant_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.filter(|s| s.expires_at > now))
    }

    /// The live user linked to an upstream identity, if any.
    pub async fn federated_user(
        &self,
        tenant_id: Uuid,
        plugin_id: &str,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<Uuid>> {
        let row: Option<(Uuid,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT f.user_id FROM federated_identities f JOIN users u ON u.id = f.user_id \
                 WHERE f.tenant_id = $1 AND f.plugin_id = $2 AND f.issuer = $3 AND f.subject = $4 \
                 AND u.tenant_id = $1 AND u.deleted_at IS NULL",
            )
            .bind(tenant_id)
            .bind(plugin_id)
            .bind(issuer)
            .bind(subject)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|r| r.0))
    }

    /// Notes a sign-in through a link (and the email the upstream released).
    pub async fn touch_federated_identity(
        &self,
        tenant_id: Uuid,
        link: &FederatedIdentityLink,
        now: Timestamp,
    ) -> StoreResult<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE federated_identities SET last_login_at = $5, email = $6 \
                 WHERE tenant_id = $1 AND plugin_id = $2 AND issuer = $3 AND subject = $4",
            )
            .bind(tenant_id)
            .bind(&link.plugin_id)
            .bind(&link.issuer)
            .bind(&link.subject)
            .bind(now)
            .bind(&link.email)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Creates a user and its link to an upstream identity in one audited
    /// transaction: a federated account never exists without its link.
    pub async fn create_federated_user(
        &self,
        user: &NewUser,
        link: &FederatedIdentityLink,
        event: &AuditEvent,
    ) -> StoreResult<User> {
        audited_tx!(self, event, |tx| {
            super::users::insert_user!(&mut *tx, user);
            insert_link!(tx, user.tenant_id, link);
        });
        self.get_user(user.tenant_id, user.id).await
    }

    /// Links a live user of `tenant_id` to an upstream identity (audited).
    /// `Conflict` when the identity is already linked to a live user.
    pub async fn link_federated_identity(
        &self,
        tenant_id: Uuid,
        link: &FederatedIdentityLink,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let live: Option<(i64,)> = sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(tenant_id)
            .bind(link.user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                return Err(StoreError::NotFound);
            }
            insert_link!(tx, tenant_id, link);
        });
        Ok(())
    }

    /// A user's links, oldest first.
    pub async fn federated_identities_of(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Vec<FederatedIdentityLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM federated_identities WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at, plugin_id, issuer, subject"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, FederatedIdentityLink>(&sql)
                .bind(tenant_id)
                .bind(user_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Removes one of a user's links (audited); `NotFound` when absent.
    pub async fn unlink_federated_identity(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        plugin_id: &str,
        issuer: &str,
        subject: &str,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let done = sqlx::query(
                "DELETE FROM federated_identities WHERE tenant_id = $1 AND user_id = $2 \
                 AND plugin_id = $3 AND issuer = $4 AND subject = $5",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(plugin_id)
            .bind(issuer)
            .bind(subject)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        });
        Ok(())
    }

    /// Removes every link of a user (audited); answers how many went.
    pub async fn unlink_all_federated_identities(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<u64> {
        let n = audited_tx!(self, event, |tx| {
            sqlx::query("DELETE FROM federated_identities WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(n)
    }
}
