//! Roles, permissions, their assignments, and effective-permission resolution.

use uuid::Uuid;

use super::history::record_history;
use super::{Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, Page, PageRequest, Permission, Role};
use crate::time::Timestamp;

pub(crate) const ROLE_COLUMNS: &str = "id, tenant_id, application_id, name, description, is_composite, is_system, version, created_at, updated_at";
pub(crate) const PERMISSION_COLUMNS: &str =
    "id, tenant_id, application_id, resource, action, description, version, created_at, updated_at";

/// Role fields an update may change.
#[derive(Debug, Clone, Default)]
pub struct RoleUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears).
    pub description: Option<Option<String>>,
    /// Composite flag.
    pub is_composite: Option<bool>,
}

/// Permission fields an update may change.
#[derive(Debug, Clone, Default)]
pub struct PermissionUpdate {
    /// New description (`Some(None)` clears).
    pub description: Option<Option<String>>,
}

/// Fails with `NotFound` unless `$table` holds a live row `$id` of `$tenant`.
macro_rules! ensure_live {
    ($exec:expr, $table:literal, $tenant:expr, $id:expr) => {{
        let row: Option<(i64,)> = sqlx::query_as(concat!(
            "SELECT CAST(1 AS BIGINT) FROM ",
            $table,
            " WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        ))
        .bind($tenant)
        .bind($id)
        .fetch_optional($exec)
        .await?;
        if row.is_none() {
            return Err($crate::store::StoreError::NotFound);
        }
    }};
}
pub(crate) use ensure_live;

/// Inserts a `Role` through `$exec`.
macro_rules! insert_role {
    ($exec:expr, $r:expr) => {{
        let r: &$crate::model::Role = $r;
        sqlx::query(
            "INSERT INTO roles (id, tenant_id, application_id, name, description, is_composite, is_system, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
        )
        .bind(r.id)
        .bind(r.tenant_id)
        .bind(r.application_id)
        .bind(&r.name)
        .bind(&r.description)
        .bind(r.is_composite)
        .bind(r.is_system)
        .bind(r.created_at)
        .execute($exec)
        .await
        .map_err(|e| match $crate::store::StoreError::from(e) {
            $crate::store::StoreError::Conflict(_) => {
                $crate::store::StoreError::Conflict("a role with this name already exists".into())
            }
            other => other,
        })?;
    }};
}
pub(crate) use insert_role;

/// Inserts a `Permission` through `$exec`.
macro_rules! insert_permission {
    ($exec:expr, $p:expr) => {{
        let p: &$crate::model::Permission = $p;
        sqlx::query(
            "INSERT INTO permissions (id, tenant_id, application_id, resource, action, description, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(p.id)
        .bind(p.tenant_id)
        .bind(p.application_id)
        .bind(&p.resource)
        .bind(&p.action)
        .bind(&p.description)
        .bind(p.created_at)
        .execute($exec)
        .await
        .map_err(|e| match $crate::store::StoreError::from(e) {
            $crate::store::StoreError::Conflict(_) => {
                $crate::store::StoreError::Conflict("this permission already exists".into())
            }
            other => other,
        })?;
    }};
}
pub(crate) use insert_permission;

impl Store {
    // ---------------------------------------------------------------- roles

    /// Creates a role.
    pub async fn create_role(&self, role: &Role, event: &AuditEvent) -> StoreResult<Role> {
        audited_tx!(self, event, |tx| {
            if let Some(app) = role.application_id {
                ensure_live!(&mut *tx, "applications", role.tenant_id, app);
            }
            insert_role!(&mut *tx, role);
        });
        self.get_role(role.tenant_id, role.id).await
    }

    /// A live role.
    pub async fn get_role(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<Role> {
        let sql = format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Role>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// A live role by name.
    pub async fn get_role_by_name(&self, tenant_id: Uuid, name: &str) -> StoreResult<Role> {
        let sql = format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Role>(&sql)
                .bind(tenant_id)
                .bind(name)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Live roles of a tenant, by name.
    pub async fn list_roles(&self, tenant_id: Uuid, page: PageRequest) -> StoreResult<Page<Role>> {
        self.page_of("roles", ROLE_COLUMNS, "name", tenant_id, page)
            .await
    }

    /// Updates a non-system role, keeping the previous version.
    pub async fn update_role(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        update: &RoleUpdate,
        event: &AuditEvent,
    ) -> StoreResult<Role> {
        let select = format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Role>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if current.is_system {
                return Err(StoreError::Conflict(
                    "system roles cannot be modified".into(),
                ));
            }
            record_history!(
                &mut *tx,
                tenant_id,
                "role",
                id,
                current.version,
                "update",
                &current,
                event.actor.actor_id
            );
            let name = update.name.clone().unwrap_or(current.name);
            let description = update.description.clone().unwrap_or(current.description);
            let is_composite = update.is_composite.unwrap_or(current.is_composite);
            if current.is_composite && !is_composite {
                let (children,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM role_composites WHERE tenant_id = $1 AND parent_role_id = $2",
                )
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if children > 0 {
                    return Err(StoreError::Conflict(
                        "the role still contains other roles; remove them before making it simple"
                            .into(),
                    ));
                }
            }
            sqlx::query(
                "UPDATE roles SET name = $3, description = $4, is_composite = $5, version = version + 1, updated_at = $6 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(&name)
            .bind(&description)
            .bind(is_composite)
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("a role with this name already exists".into()),
                other => other,
            })?;
        });
        self.get_role(tenant_id, id).await
    }

    /// Soft-deletes a non-system role; its grants stop applying at once.
    pub async fn delete_role(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let select = format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Role>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if current.is_system {
                return Err(StoreError::Conflict(
                    "system roles cannot be deleted".into(),
                ));
            }
            record_history!(
                &mut *tx,
                tenant_id,
                "role",
                id,
                current.version,
                "delete",
                &current,
                event.actor.actor_id
            );
            sqlx::query("UPDATE roles SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .bind(Timestamp::now())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Makes `child` part of composite role `parent`. Refuses a cycle: the
    /// parent must not be reachable from the child through composites.
    pub async fn add_role_composite(
        &self,
        tenant_id: Uuid,
        parent: Uuid,
        child: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let parent_role = sqlx::query_as::<_, Role>(&format!(
                "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
            ))
            .bind(tenant_id)
            .bind(parent)
            .fetch_one(&mut *tx)
            .await?;
            ensure_live!(&mut *tx, "roles", tenant_id, child);
            if parent_role.is_system {
                return Err(StoreError::Conflict(
                    "system roles cannot be modified".into(),
                ));
            }
            if !parent_role.is_composite {
                return Err(StoreError::Conflict(
                    "the parent role is not composite".into(),
                ));
            }
            let cycle: Option<(i64,)> = sqlx::query_as(
                "WITH RECURSIVE below(role_id) AS ( \
                    SELECT $2 \
                  UNION \
                    SELECT rc.child_role_id FROM role_composites rc JOIN below b ON rc.parent_role_id = b.role_id \
                    WHERE rc.tenant_id = $1 \
                 ) SELECT CAST(1 AS BIGINT) FROM below WHERE role_id = $3 LIMIT 1",
            )
            .bind(tenant_id)
            .bind(child)
            .bind(parent)
            .fetch_optional(&mut *tx)
            .await?;
            if cycle.is_some() {
                return Err(StoreError::Conflict(
                    "adding this role would create a cycle of composite roles".into(),
                ));
            }
            sqlx::query(
                "INSERT INTO role_composites (tenant_id, parent_role_id, child_role_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant_id)
            .bind(parent)
            .bind(child)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Removes `child` from composite role `parent`.
    pub async fn remove_role_composite(
        &self,
        tenant_id: Uuid,
        parent: Uuid,
        child: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let done = sqlx::query("DELETE FROM role_composites WHERE tenant_id = $1 AND parent_role_id = $2 AND child_role_id = $3")
                .bind(tenant_id)
                .bind(parent)
                .bind(child)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        });
        Ok(())
    }

    /// Live child roles of a composite role.
    pub async fn list_role_composites(
        &self,
        tenant_id: Uuid,
        parent: Uuid,
    ) -> StoreResult<Vec<Role>> {
        self.get_role(tenant_id, parent).await?;
        let sql = format!(
            "SELECT {} FROM roles r JOIN role_composites rc ON rc.child_role_id = r.id \
             WHERE rc.tenant_id = $1 AND rc.parent_role_id = $2 AND r.deleted_at IS NULL ORDER BY r.name",
            prefixed(ROLE_COLUMNS, "r")
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Role>(&sql)
                .bind(tenant_id)
                .bind(parent)
                .fetch_all(pool)
                .await?)
        })
    }

    // ---------------------------------------------------------- permissions

    /// Creates a permission.
    pub async fn create_permission(
        &self,
        perm: &Permission,
        event: &AuditEvent,
    ) -> StoreResult<Permission> {
        audited_tx!(self, event, |tx| {
            if let Some(app) = perm.application_id {
                ensure_live!(&mut *tx, "applications", perm.tenant_id, app);
            }
            insert_permission!(&mut *tx, perm);
        });
        self.get_permission(perm.tenant_id, perm.id).await
    }

    /// A live permission.
    pub async fn get_permission(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<Permission> {
        let sql = format!(
            "SELECT {PERMISSION_COLUMNS} FROM permissions WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Permission>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Live permissions of a tenant.
    pub async fn list_permissions(
        &self,
        tenant_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<Permission>> {
        self.page_of(
            "permissions",
            PERMISSION_COLUMNS,
            "resource, action",
            tenant_id,
            page,
        )
        .await
    }

    /// Updates a permission's description.
    pub async fn update_permission(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        update: &PermissionUpdate,
        event: &AuditEvent,
    ) -> StoreResult<Permission> {
        let select = format!(
            "SELECT {PERMISSION_COLUMNS} FROM permissions WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Permission>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                tenant_id,
                "permission",
                id,
                current.version,
                "update",
                &current,
                event.actor.actor_id
            );
            let description = update.description.clone().unwrap_or(current.description);
            sqlx::query(
                "UPDATE permissions SET description = $3, version = version + 1, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(&description)
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await?;
        });
        self.get_permission(tenant_id, id).await
    }

    /// Soft-deletes a permission; roles stop granting it at once.
    pub async fn delete_permission(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let select = format!(
            "SELECT {PERMISSION_COLUMNS} FROM permissions WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Permission>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                tenant_id,
                "permission",
                id,
                current.version,
                "delete",
                &current,
                event.actor.actor_id
            );
            sqlx::query("UPDATE permissions SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .bind(Timestamp::now())
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    // ---------------------------------------------------------- assignments

    /// Grants a permission to a role (idempotent).
    pub async fn add_role_permission(
        &self,
        tenant_id: Uuid,
        role_id: Uuid,
        permission_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let role = sqlx::query_as::<_, Role>(&format!(
                "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
            ))
            .bind(tenant_id)
            .bind(role_id)
            .fetch_one(&mut *tx)
            .await?;
            if role.is_system {
                return Err(StoreError::Conflict(
                    "system roles cannot be modified".into(),
                ));
            }
            ensure_live!(&mut *tx, "permissions", tenant_id, permission_id);
            sqlx::query("INSERT INTO role_permissions (tenant_id, role_id, permission_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(tenant_id)
                .bind(role_id)
                .bind(permission_id)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Revokes a permission from a role.
    pub async fn remove_role_permission(
        &self,
        tenant_id: Uuid,
        role_id: Uuid,
        permission_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let role = sqlx::query_as::<_, Role>(&format!(
                "SELECT {ROLE_COLUMNS} FROM roles WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
            ))
            .bind(tenant_id)
            .bind(role_id)
            .fetch_one(&mut *tx)
            .await?;
            if role.is_system {
                return Err(StoreError::Conflict(
                    "system roles cannot be modified".into(),
                ));
            }
            let done = sqlx::query("DELETE FROM role_permissions WHERE tenant_id = $1 AND role_id = $2 AND permission_id = $3")
                .bind(tenant_id)
                .bind(role_id)
                .bind(permission_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        });
        Ok(())
    }

    /// Live permissions a role carries directly.
    pub async fn list_role_permissions(
        &self,
        tenant_id: Uuid,
        role_id: Uuid,
    ) -> StoreResult<Vec<Permission>> {
        self.get_role(tenant_id, role_id).await?;
        let sql = format!(
            "SELECT {} FROM permissions p JOIN role_permissions rp ON rp.permission_id = p.id \
             WHERE rp.tenant_id = $1 AND rp.role_id = $2 AND p.deleted_at IS NULL ORDER BY p.resource, p.action",
            prefixed(PERMISSION_COLUMNS, "p")
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Permission>(&sql)
                .bind(tenant_id)
                .bind(role_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Gives a role to a user (idempotent).
    pub async fn add_user_role(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        role_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.add_link(super::links::USER_ROLE, tenant_id, user_id, role_id, event)
            .await
    }

    /// Takes a role from a user.
    pub async fn remove_user_role(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        role_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.remove_link(super::links::USER_ROLE, tenant_id, user_id, role_id, event)
            .await
    }

    /// Roles assigned directly to a user.
    pub async fn list_user_roles(&self, tenant_id: Uuid, user_id: Uuid) -> StoreResult<Vec<Role>> {
        self.get_user(tenant_id, user_id).await?;
        let sql = format!(
            "SELECT {} FROM roles r JOIN user_roles ur ON ur.role_id = r.id \
             WHERE ur.tenant_id = $1 AND ur.user_id = $2 AND r.deleted_at IS NULL ORDER BY r.name",
            prefixed(ROLE_COLUMNS, "r")
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Role>(&sql)
                .bind(tenant_id)
                .bind(user_id)
                .fetch_all(pool)
                .await?)
        })
    }
}

/// `a, b` -> `t.a, t.b`.
pub(crate) fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_columns() {
        assert_eq!(super::prefixed("id, name", "r"), "r.id, r.name");
    }
}
