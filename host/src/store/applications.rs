//! Applications: logical services inside a tenant.

use uuid::Uuid;

use super::history::record_history;
use super::{Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{Application, AuditEvent, Page, PageRequest};
use crate::time::Timestamp;

const APP_COLUMNS: &str = "id, tenant_id, name, description, version, created_at, updated_at";

fn name_conflict(e: sqlx::Error) -> StoreError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("an application with this name already exists".into())
        }
        other => other,
    }
}

impl Store {
    /// Creates an application.
    pub async fn create_application(
        &self,
        app: &Application,
        event: &AuditEvent,
    ) -> StoreResult<Application> {
        audited_tx!(self, event, |tx| {
            sqlx::query(
                "INSERT INTO applications (id, tenant_id, name, description, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, $5)",
            )
            .bind(app.id)
            .bind(app.tenant_id)
            .bind(&app.name)
            .bind(&app.description)
            .bind(app.created_at)
            .execute(&mut *tx)
            .await
            .map_err(name_conflict)?;
        });
        self.get_application(app.tenant_id, app.id).await
    }

    /// A live application.
    pub async fn get_application(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<Application> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Application>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Live applications of a tenant.
    pub async fn list_applications(
        &self,
        tenant_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<Application>> {
        self.page_of("applications", APP_COLUMNS, "name", tenant_id, page)
            .await
    }

    /// Updates an application's name and description.
    pub async fn update_application(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        name: Option<String>,
        description: Option<Option<String>>,
        event: &AuditEvent,
    ) -> StoreResult<Application> {
        let select = format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Application>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                tenant_id,
                "application",
                id,
                current.version,
                "update",
                &current,
                event.actor.actor_id
            );
            sqlx::query(
                "UPDATE applications SET name = $3, description = $4, version = version + 1, updated_at = $5 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(name.clone().unwrap_or(current.name))
            .bind(description.clone().unwrap_or(current.description))
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await
            .map_err(name_conflict)?;
        });
        self.get_application(tenant_id, id).await
    }

    /// Soft-deletes an application. Refused while live clients or roles still
    /// belong to it, so nothing is left pointing at a deleted owner.
    pub async fn delete_application(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let select = format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Application>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let (owned,): (i64,) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM oauth_clients WHERE tenant_id = $1 AND application_id = $2 AND deleted_at IS NULL) \
                      + (SELECT COUNT(*) FROM roles WHERE tenant_id = $1 AND application_id = $2 AND deleted_at IS NULL)",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if owned > 0 {
                return Err(StoreError::Conflict(
                    "the application still owns clients or roles".into(),
                ));
            }
            record_history!(
                &mut *tx,
                tenant_id,
                "application",
                id,
                current.version,
                "delete",
                &current,
                event.actor.actor_id
            );
            sqlx::query("UPDATE applications SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .bind(Timestamp::now())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }
}
