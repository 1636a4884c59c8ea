//! Tenants, and provisioning a new tenant with everything it starts with.

use uuid::Uuid;

use super::clients::insert_client;
use super::history::record_history;
use super::keys::insert_signing_key;
use super::rbac::{insert_permission, insert_role};
use super::users::insert_user;
use super::{NewClient, NewUser, Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, Permission, Role, SigningKeyRecord, Tenant, TenantSettings};
use crate::time::Timestamp;

const TENANT_COLUMNS: &str =
    "id, name, slug, display_name, enabled, settings, version, created_at, updated_at";

/// Everything a tenant is created with, written in one transaction.
#[derive(Debug, Clone)]
pub struct TenantProvisioning {
    /// The tenant row.
    pub tenant: Tenant,
    /// Built-in permissions.
    pub permissions: Vec<Permission>,
    /// Built-in roles with the ids of their permissions.
    pub roles: Vec<(Role, Vec<Uuid>)>,
    /// Built-in clients.
    pub clients: Vec<NewClient>,
    /// The first signing keys, one per algorithm.
    pub signing_keys: Vec<SigningKeyRecord>,
    /// An initial administrator and the roles to give them.
    pub admin: Option<(NewUser, Vec<Uuid>)>,
}

/// Tenant fields an update may change.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    /// New name.
    pub name: Option<String>,
    /// New display name (`Some(None)` clears).
    pub display_name: Option<Option<String>>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Replacement settings.
    pub settings: Option<TenantSettings>,
}

impl Store {
    /// Creates a tenant with its roles, clients, key and optional admin, and
    /// records `event` (normally on the master tenant's chain).
    pub async fn provision_tenant(
        &self,
        p: &TenantProvisioning,
        event: &AuditEvent,
    ) -> StoreResult<Tenant> {
        let t = &p.tenant;
        audited_tx!(self, event, |tx| {
            sqlx::query(
                "INSERT INTO tenants (id, name, slug, display_name, enabled, settings, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
            )
            .bind(t.id)
            .bind(&t.name)
            .bind(&t.slug)
            .bind(&t.display_name)
            .bind(t.enabled)
            .bind(sqlx::types::Json(&t.settings))
            .bind(t.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("a tenant with this slug or id already exists".into()),
                other => other,
            })?;
            for perm in &p.permissions {
                insert_permission!(&mut *tx, perm);
            }
            for (role, perms) in &p.roles {
                insert_role!(&mut *tx, role);
                for perm in perms {
                    sqlx::query("INSERT INTO role_permissions (tenant_id, role_id, permission_id) VALUES ($1, $2, $3)")
                        .bind(t.id)
                        .bind(role.id)
                        .bind(perm)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if let Some((admin, roles)) = &p.admin {
                insert_user!(&mut *tx, admin);
                for role in roles {
                    sqlx::query(
                        "INSERT INTO user_roles (tenant_id, user_id, role_id) VALUES ($1, $2, $3)",
                    )
                    .bind(t.id)
                    .bind(admin.id)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for client in &p.clients {
                insert_client!(&mut *tx, client);
            }
            for k in &p.signing_keys {
                insert_signing_key!(&mut *tx, k);
            }
        });
        self.get_tenant(t.id).await
    }

    /// A live tenant by id.
    pub async fn get_tenant(&self, id: Uuid) -> StoreResult<Tenant> {
        let sql =
            format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL");
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Tenant>(&sql)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// A live tenant by slug.
    pub async fn get_tenant_by_slug(&self, slug: &str) -> StoreResult<Tenant> {
        let sql =
            format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1 AND deleted_at IS NULL");
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Tenant>(&sql)
                .bind(slug)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Whether any tenant row exists (live or not) with this id.
    pub async fn tenant_exists(&self, id: Uuid) -> StoreResult<bool> {
        on_pool!(&self.db, |pool| {
            let row: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM tenants WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Live tenants, oldest first.
    pub async fn list_tenants(
        &self,
        page: crate::model::PageRequest,
    ) -> StoreResult<crate::model::Page<Tenant>> {
        let sql = format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE deleted_at IS NULL ORDER BY created_at, id LIMIT $1 OFFSET $2"
        );
        on_pool!(&self.db, |pool| {
            let data = sqlx::query_as::<_, Tenant>(&sql)
                .bind(page.per_page)
                .bind(page.offset())
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM tenants WHERE deleted_at IS NULL")
                    .fetch_one(pool)
                    .await?;
            Ok(crate::model::Page {
                data,
                page: page.page,
                per_page: page.per_page,
                total,
            })
        })
    }

    /// Updates a tenant, keeping the previous version.
    pub async fn update_tenant(
        &self,
        id: Uuid,
        update: &TenantUpdate,
        event: &AuditEvent,
    ) -> StoreResult<Tenant> {
        let select =
            format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL");
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Tenant>(&select)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                id,
                "tenant",
                id,
                current.version,
                "update",
                &current,
                event.actor.actor_id
            );
            let mut next = current.clone();
            if let Some(v) = &update.name {
                next.name = v.clone();
            }
            if let Some(v) = &update.display_name {
                next.display_name = v.clone();
            }
            if let Some(v) = update.enabled {
                next.enabled = v;
            }
            if let Some(v) = &update.settings {
                next.settings = v.clone();
            }
            sqlx::query(
                "UPDATE tenants SET name = $2, display_name = $3, enabled = $4, settings = $5, \
                 version = version + 1, updated_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(&next.name)
            .bind(&next.display_name)
            .bind(next.enabled)
            .bind(sqlx::types::Json(&next.settings))
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await?;
        });
        self.get_tenant(id).await
    }

    /// Soft-deletes a tenant: it disappears from every API and issues no
    /// tokens; its data stays for the record.
    pub async fn delete_tenant(&self, id: Uuid, event: &AuditEvent) -> StoreResult<()> {
        let select =
            format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL");
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Tenant>(&select)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                id,
                "tenant",
                id,
                current.version,
                "delete",
                &current,
                event.actor.actor_id
            );
            sqlx::query("UPDATE tenants SET deleted_at = $2, enabled = $3 WHERE id = $1")
                .bind(id)
                .bind(Timestamp::now())
                .bind(false)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }
}
