//! OAuth clients and their secrets.

use uuid::Uuid;

use super::history::record_history;
use super::rbac::ensure_live;
use super::token_families::revoke_grants_where;
use super::users::insert_user;
use super::{NewUser, Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, ClientWithSecret, OAuthClient, Page, PageRequest};
use crate::time::Timestamp;

const CLIENT_COLUMNS: &str = "id, tenant_id, application_id, client_id, name, client_type, redirect_uris, \
    grant_types, scopes, require_pkce, require_consent, first_party, access_token_lifetime, \
    refresh_token_lifetime, service_account_user_id, oidc_settings, enabled, version, created_at, updated_at";

/// A client to insert, with its secret hash and service account.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The client row.
    pub client: OAuthClient,
    /// SHA-256 hex of the secret (confidential clients).
    pub secret_hash: Option<String>,
    /// The service account to create with it (client_credentials clients).
    pub service_account: Option<NewUser>,
}

/// Client fields an update may change.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    /// Name.
    pub name: Option<String>,
    /// Redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Grant types.
    pub grant_types: Option<Vec<String>>,
    /// Scopes.
    pub scopes: Option<Vec<String>>,
    /// PKCE flag.
    pub require_pkce: Option<bool>,
    /// Consent flag.
    pub require_consent: Option<bool>,
    /// Access token lifetime.
    pub access_token_lifetime: Option<Option<i64>>,
    /// Refresh token lifetime.
    pub refresh_token_lifetime: Option<Option<i64>>,
    /// OpenID Connect metadata (replaced as a whole).
    pub oidc_settings: Option<crate::model::ClientOidcSettings>,
    /// Enabled flag.
    pub enabled: Option<bool>,
}

/// Inserts a `NewClient` (and its service account) through `$exec`.
macro_rules! insert_client {
    ($exec:expr, $c:expr) => {{
        let nc: &$crate::store::NewClient = $c;
        if let Some(sa) = &nc.service_account {
            insert_user!(&mut *$exec, sa);
        }
        let c = &nc.client;
        sqlx::query(
            "INSERT INTO oauth_clients (id, tenant_id, application_id, client_id, name, client_type, secret_hash, \
             redirect_uris, grant_types, scopes, require_pkce, require_consent, first_party, access_token_lifetime, \
             refresh_token_lifetime, service_account_user_id, enabled, version, created_at, updated_at, oidc_settings) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1, $18, $18, $19)",
        )
        .bind(c.id)
        .bind(c.tenant_id)
        .bind(c.application_id)
        .bind(&c.client_id)
        .bind(&c.name)
        .bind(&c.client_type)
        .bind(&nc.secret_hash)
        .bind(sqlx::types::Json(&c.redirect_uris))
        .bind(sqlx::types::Json(&c.grant_types))
        .bind(sqlx::types::Json(&c.scopes))
        .bind(c.require_pkce)
        .bind(c.require_consent)
        .bind(c.first_party)
        .bind(c.access_token_lifetime)
        .bind(c.refresh_token_lifetime)
        .bind(c.service_account_user_id)
        .bind(c.enabled)
        .bind(c.created_at)
        .bind(sqlx::types::Json(&c.oidc_settings))
        .execute(&mut *$exec)
        .await
        .map_err(|e| match $crate::store::StoreError::from(e) {
            $crate::store::StoreError::Conflict(_) => {
                $crate::store::StoreError::Conflict("a client with this client_id already exists".into())
            }
            other => other,
        })?;
    }};
}
pub(crate) use insert_client;

impl Store {
    /// Creates a client (and its service account).
    pub async fn create_client(
        &self,
        nc: &NewClient,
        event: &AuditEvent,
    ) -> StoreResult<OAuthClient> {
        audited_tx!(self, event, |tx| {
            if let Some(app) = nc.client.application_id {
                ensure_live!(&mut *tx, "applications", nc.client.tenant_id, app);
            }
            let exec = &mut *tx;
            insert_client!(exec, nc);
        });
        self.get_client(nc.client.tenant_id, nc.client.id).await
    }

    /// A live client by internal id.
    pub async fn get_client(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<OAuthClient> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, OAuthClient>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// A live client by its public `client_id`, with the secret hash, for the
    /// token endpoint.
    pub async fn client_for_auth(
        &self,
        tenant_id: Uuid,
        client_id: &str,
    ) -> StoreResult<Option<ClientWithSecret>> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS}, secret_hash FROM oauth_clients \
             WHERE tenant_id = $1 AND client_id = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            let row = sqlx::query(&sql)
                .bind(tenant_id)
                .bind(client_id)
                .fetch_optional(pool)
                .await?;
            match row {
                None => Ok(None),
                Some(row) => {
                    use sqlx::{FromRow, Row};
                    let client = OAuthClient::from_row(&row)?;
                    let secret_hash: Option<String> = row.try_get("secret_hash")?;
                    Ok(Some(ClientWithSecret {
                        client,
                        secret_hash,
                    }))
                }
            }
        })
    }

    /// Live clients of a tenant.
    pub async fn list_clients(
        &self,
        tenant_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<OAuthClient>> {
        self.page_of(
            "oauth_clients",
            CLIENT_COLUMNS,
            "client_id",
            tenant_id,
            page,
        )
        .await
    }

    /// Updates a client, keeping the previous version.
    pub async fn update_client(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        u: &ClientUpdate,
        event: &AuditEvent,
    ) -> StoreResult<OAuthClient> {
        let select = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, OAuthClient>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                tenant_id,
                "client",
                id,
                current.version,
                "update",
                &current,
                event.actor.actor_id
            );
            let mut next = current.clone();
            macro_rules! patch {
                ($($f:ident),*) => { $( if let Some(v) = &u.$f { next.$f = v.clone(); } )* };
            }
            patch!(
                name,
                redirect_uris,
                grant_types,
                scopes,
                require_pkce,
                require_consent,
                access_token_lifetime,
                refresh_token_lifetime,
                oidc_settings,
                enabled
            );
            sqlx::query(
                "UPDATE oauth_clients SET name = $3, redirect_uris = $4, grant_types = $5, scopes = $6, require_pkce = $7, \
                 require_consent = $8, access_token_lifetime = $9, refresh_token_lifetime = $10, enabled = $11, \
                 version = version + 1, updated_at = $12, oidc_settings = $13 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(&next.name)
            .bind(sqlx::types::Json(&next.redirect_uris))
            .bind(sqlx::types::Json(&next.grant_types))
            .bind(sqlx::types::Json(&next.scopes))
            .bind(next.require_pkce)
            .bind(next.require_consent)
            .bind(next.access_token_lifetime)
            .bind(next.refresh_token_lifetime)
            .bind(next.enabled)
            .bind(Timestamp::now())
            .bind(sqlx::types::Json(&next.oidc_settings))
            .execute(&mut *tx)
            .await?;
        });
        self.get_client(tenant_id, id).await
    }

    /// Replaces a confidential client's secret hash.
    pub async fn set_client_secret(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        secret_hash: &str,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let done = sqlx::query(
                "UPDATE oauth_clients SET secret_hash = $3, version = version + 1, updated_at = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL AND client_type = 'confidential'",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(secret_hash)
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        });
        Ok(())
    }

    /// Soft-deletes a client and its service account.
    pub async fn delete_client(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let select = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, OAuthClient>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                tenant_id,
                "client",
                id,
                current.version,
                "delete",
                &current,
                event.actor.actor_id
            );
            let now = Timestamp::now();
            sqlx::query("UPDATE oauth_clients SET deleted_at = $3, enabled = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .bind(now)
                .bind(false)
                .execute(&mut *tx)
                .await?;
            // Grants, refresh tokens and consents name the client by its
            // client_id, which may be registered again later: everything the
            // deleted client held ends with it.
            revoke_grants_where!(
                tx,
                "client_id",
                tenant_id,
                &current.client_id,
                "client_deleted",
                now
            );
            sqlx::query(
                "DELETE FROM authorization_codes WHERE tenant_id = $1 AND client_id = $2 AND consumed_at IS NULL",
            )
            .bind(tenant_id)
            .bind(&current.client_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM consents WHERE tenant_id = $1 AND client_id = $2")
                .bind(tenant_id)
                .bind(&current.client_id)
                .execute(&mut *tx)
                .await?;
            if let Some(sa) = current.service_account_user_id {
                sqlx::query("UPDATE users SET deleted_at = $3, enabled = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(sa)
                    .bind(now)
                    .bind(false)
                    .execute(&mut *tx)
                    .await?;
            }
        });
        Ok(())
    }
}
