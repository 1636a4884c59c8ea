//! Installed plugins and tenant activations.

use uuid::Uuid;

use super::{Store, StoreResult, audited_tx, on_pool};
use crate::model::AuditEvent;
use crate::time::Timestamp;

/// An installed plugin without its component bytes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PluginRecord {
    /// Plugin id.
    pub id: String,
    /// Plugin version.
    pub version: String,
    /// The manifest as installed.
    pub manifest: sqlx::types::Json<serde_json::Value>,
    /// SHA-256 of the component (hex).
    pub sha256: String,
    /// `directory` or `api`.
    pub source: String,
    /// First installed.
    pub installed_at: Timestamp,
    /// Last replaced.
    pub updated_at: Timestamp,
}

/// A plugin with its component.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PluginArtifact {
    /// The record.
    #[sqlx(flatten)]
    pub record: PluginRecord,
    /// The component bytes.
    pub component: Vec<u8>,
}

/// A tenant's activation of a plugin, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantPluginRecord {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The plugin.
    pub plugin_id: String,
    /// Whether calls are made.
    pub enabled: bool,
    /// Non-secret configuration.
    pub config: sqlx::types::Json<serde_json::Value>,
    /// Secret configuration properties, sealed (JSON object inside).
    pub secrets_enc: Option<String>,
    /// Limit overrides.
    pub limits: sqlx::types::Json<serde_json::Value>,
    /// `open` or `closed`, if chosen.
    pub failure_mode: Option<String>,
    /// Order among the tenant's plugins of a category.
    pub position: i64,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

const PLUGIN_COLUMNS: &str = "id, version, manifest, sha256, source, installed_at, updated_at";
const ACTIVATION_COLUMNS: &str = "tenant_id, plugin_id, enabled, config, secrets_enc, limits, \
     failure_mode, position, created_at, updated_at";

impl Store {
    /// Every installed plugin, by id.
    pub async fn list_plugins(&self) -> StoreResult<Vec<PluginRecord>> {
        let sql = format!("SELECT {PLUGIN_COLUMNS} FROM plugins ORDER BY id");
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?))
    }

    /// One installed plugin.
    pub async fn get_plugin(&self, id: &str) -> StoreResult<PluginRecord> {
        let sql = format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE id = $1");
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_one(pool)
            .await?))
    }

    /// Every installed plugin with its component (start-up).
    pub async fn all_plugin_artifacts(&self) -> StoreResult<Vec<PluginArtifact>> {
        let sql = format!("SELECT {PLUGIN_COLUMNS}, component FROM plugins ORDER BY id");
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?))
    }

    /// One installed plugin with its component.
    pub async fn plugin_artifact(&self, id: &str) -> StoreResult<PluginArtifact> {
        let sql = format!("SELECT {PLUGIN_COLUMNS}, component FROM plugins WHERE id = $1");
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_one(pool)
            .await?))
    }

    /// Every activation's (tenant, plugin, revision): any change of an
    /// activation (added, changed, removed) changes this list.
    pub async fn activation_revisions(&self) -> StoreResult<Vec<(Uuid, String, i64)>> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query_as(
            "SELECT tenant_id, plugin_id, revision FROM tenant_plugins ORDER BY tenant_id, plugin_id"
        )
        .fetch_all(pool)
        .await?
        }))
    }

    /// Installs or replaces a plugin (audited in the master tenant's chain).
    pub async fn upsert_plugin(
        &self,
        record: &PluginRecord,
        component: &[u8],
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            sqlx::query(
                "INSERT INTO plugins (id, version, manifest, sha256, component, source, installed_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (id) DO UPDATE SET version = $2, manifest = $3, sha256 = $4, \
                 component = $5, source = $6, updated_at = $7",
            )
            .bind(&record.id)
            .bind(&record.version)
            .bind(&record.manifest)
            .bind(&record.sha256)
            .bind(component)
            .bind(&record.source)
            .bind(record.updated_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Tenants with an activation of `plugin_id`.
    pub async fn plugin_tenants(&self, plugin_id: &str) -> StoreResult<Vec<Uuid>> {
        let rows: Vec<(Uuid,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id FROM tenant_plugins WHERE plugin_id = $1 ORDER BY tenant_id",
            )
            .bind(plugin_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Removes a plugin, its activations and its key-value data.
    pub async fn delete_plugin(&self, id: &str, event: &AuditEvent) -> StoreResult<bool> {
        let n = audited_tx!(self, event, |tx| {
            sqlx::query("DELETE FROM tenant_plugins WHERE plugin_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM plugin_kv WHERE plugin_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM plugins WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// A tenant's activations, in category order.
    pub async fn tenant_plugins(&self, tenant_id: Uuid) -> StoreResult<Vec<TenantPluginRecord>> {
        let sql = format!(
            "SELECT {ACTIVATION_COLUMNS} FROM tenant_plugins WHERE tenant_id = $1 ORDER BY position, plugin_id"
        );
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(tenant_id)
            .fetch_all(pool)
            .await?))
    }

    /// Every activation of every tenant (start-up).
    pub async fn all_tenant_plugins(&self) -> StoreResult<Vec<TenantPluginRecord>> {
        let sql = format!(
            "SELECT {ACTIVATION_COLUMNS} FROM tenant_plugins ORDER BY tenant_id, position, plugin_id"
        );
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?))
    }

    /// Creates or replaces a tenant's activation (audited).
    pub async fn upsert_tenant_plugin(
        &self,
        rec: &TenantPluginRecord,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            sqlx::query(
                "INSERT INTO tenant_plugins (tenant_id, plugin_id, enabled, config, secrets_enc, limits, \
                 failure_mode, position, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (tenant_id, plugin_id) DO UPDATE SET enabled = $3, config = $4, \
                 secrets_enc = $5, limits = $6, failure_mode = $7, position = $8, updated_at = $9, \
                 revision = tenant_plugins.revision + 1",
            )
            .bind(rec.tenant_id)
            .bind(&rec.plugin_id)
            .bind(rec.enabled)
            .bind(&rec.config)
            .bind(&rec.secrets_enc)
            .bind(&rec.limits)
            .bind(&rec.failure_mode)
            .bind(rec.position)
            .bind(rec.updated_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Removes a tenant's activation (audited); whether it existed.
    pub async fn delete_tenant_plugin(
        &self,
        tenant_id: Uuid,
        plugin_id: &str,
        event: &AuditEvent,
    ) -> StoreResult<bool> {
        let n = audited_tx!(self, event, |tx| {
            sqlx::query("DELETE FROM tenant_plugins WHERE tenant_id = $1 AND plugin_id = $2")
                .bind(tenant_id)
                .bind(plugin_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }
}

impl Store {
    /// An audit-sink activation's cursor (`None` before its first delivery).
    pub async fn audit_cursor(&self, tenant_id: Uuid, plugin_id: &str) -> StoreResult<Option<i64>> {
        let row: Option<(Option<i64>,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT audit_cursor FROM tenant_plugins WHERE tenant_id = $1 AND plugin_id = $2",
            )
            .bind(tenant_id)
            .bind(plugin_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.and_then(|(c,)| c))
    }

    /// Moves the cursor from `from` to `to` if it still is at `from` and
    /// `owner` still holds the delivery lease (compare-and-set: with
    /// several nodes, one of them delivers a batch).
    pub async fn move_audit_cursor(
        &self,
        tenant_id: Uuid,
        plugin_id: &str,
        owner: &str,
        from: Option<i64>,
        to: i64,
    ) -> StoreResult<bool> {
        let n = on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE tenant_plugins SET audit_cursor = $3 WHERE tenant_id = $1 AND plugin_id = $2 \
                 AND ((audit_cursor IS NULL AND $4 IS NULL) OR audit_cursor = $4) AND audit_lease_owner = $5",
            )
            .bind(tenant_id)
            .bind(plugin_id)
            .bind(to)
            .bind(from)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Takes the delivery lease of an audit-sink activation for `owner`
    /// until `until`, if no node holds an unexpired one: the node holding
    /// it is the only one delivering to that sink.
    pub async fn take_audit_lease(
        &self,
        tenant_id: Uuid,
        plugin_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let n = on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE tenant_plugins SET audit_lease_owner = $5, audit_lease_until = $4 \
                 WHERE tenant_id = $1 AND plugin_id = $2 \
                 AND (audit_lease_until IS NULL OR audit_lease_until < $3)",
            )
            .bind(tenant_id)
            .bind(plugin_id)
            .bind(now)
            .bind(until)
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Gives the lease back, if `owner` still holds it.
    pub async fn release_audit_lease(
        &self,
        tenant_id: Uuid,
        plugin_id: &str,
        owner: &str,
    ) -> StoreResult<()> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE tenant_plugins SET audit_lease_owner = NULL, audit_lease_until = NULL \
                 WHERE tenant_id = $1 AND plugin_id = $2 AND audit_lease_owner = $3",
            )
            .bind(tenant_id)
            .bind(plugin_id)
            .bind(owner)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
