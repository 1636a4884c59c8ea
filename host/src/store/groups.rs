//! Groups: hierarchy, members and group roles.

use uuid::Uuid;

use super::history::record_history;
use super::rbac::{ROLE_COLUMNS, ensure_live, prefixed};
use super::users::USER_COLUMNS;
use super::{Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, Group, Page, PageRequest, Role, User};
use crate::time::Timestamp;

const GROUP_COLUMNS: &str =
    "id, tenant_id, parent_id, name, description, version, created_at, updated_at";

/// Group fields an update may change.
#[derive(Debug, Clone, Default)]
pub struct GroupUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears).
    pub description: Option<Option<String>>,
    /// New parent (`Some(None)` makes it a top-level group).
    pub parent_id: Option<Option<Uuid>>,
}

/// Fails with `Conflict` if `$candidate_parent` is `$group` or lies below it.
macro_rules! ensure_not_descendant {
    ($exec:expr, $tenant:expr, $group:expr, $candidate_parent:expr) => {{
        let hit: Option<(i64,)> = sqlx::query_as(
            "WITH RECURSIVE below(id) AS ( \
                SELECT $2 \
              UNION \
                SELECT g.id FROM tenant_groups g JOIN below b ON g.parent_id = b.id WHERE g.tenant_id = $1 \
             ) SELECT CAST(1 AS BIGINT) FROM below WHERE id = $3 LIMIT 1",
        )
        .bind($tenant)
        .bind($group)
        .bind($candidate_parent)
        .fetch_optional($exec)
        .await?;
        if hit.is_some() {
            return Err(StoreError::Conflict("a group cannot be its own ancestor".into()));
        }
    }};
}

impl Store {
    /// Creates a group under an optional live parent.
    pub async fn create_group(&self, group: &Group, event: &AuditEvent) -> StoreResult<Group> {
        audited_tx!(self, event, |tx| {
            if let Some(parent) = group.parent_id {
                ensure_live!(&mut *tx, "tenant_groups", group.tenant_id, parent);
            }
            sqlx::query(
                "INSERT INTO tenant_groups (id, tenant_id, parent_id, name, description, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
            )
            .bind(group.id)
            .bind(group.tenant_id)
            .bind(group.parent_id)
            .bind(&group.name)
            .bind(&group.description)
            .bind(group.created_at)
            .execute(&mut *tx)
            .await?;
        });
        self.get_group(group.tenant_id, group.id).await
    }

    /// A live group.
    pub async fn get_group(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<Group> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM tenant_groups WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Group>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Live groups of a tenant.
    pub async fn list_groups(
        &self,
        tenant_id: Uuid,
        page: PageRequest,
    ) -> StoreResult<Page<Group>> {
        self.page_of(
            "tenant_groups",
            GROUP_COLUMNS,
            "created_at, id",
            tenant_id,
            page,
        )
        .await
    }

    /// Updates a group; moving it under one of its own descendants is refused.
    pub async fn update_group(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        update: &GroupUpdate,
        event: &AuditEvent,
    ) -> StoreResult<Group> {
        let select = format!(
            "SELECT {GROUP_COLUMNS} FROM tenant_groups WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, Group>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if let Some(Some(parent)) = update.parent_id {
                ensure_live!(&mut *tx, "tenant_groups", tenant_id, parent);
                ensure_not_descendant!(&mut *tx, tenant_id, id, parent);
            }
            record_history!(
                &mut *tx,
                tenant_id,
                "group",
                id,
                current.version,
                "update",
                &current,
                event.actor.actor_id
            );
            let name = update.name.clone().unwrap_or(current.name);
            let description = update.description.clone().unwrap_or(current.description);
            let parent_id = update.parent_id.unwrap_or(current.parent_id);
            sqlx::query(
                "UPDATE tenant_groups SET name = $3, description = $4, parent_id = $5, version = version + 1, updated_at = $6 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(&name)
            .bind(&description)
            .bind(parent_id)
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await?;
        });
        self.get_group(tenant_id, id).await
    }

    /// Soft-deletes a group and its whole subtree, keeping each last version.
    pub async fn delete_group(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<u64> {
        let subtree = format!(
            "WITH RECURSIVE below(id) AS ( \
                SELECT $2 \
              UNION \
                SELECT g.id FROM tenant_groups g JOIN below b ON g.parent_id = b.id \
                WHERE g.tenant_id = $1 AND g.deleted_at IS NULL \
             ) SELECT {} FROM tenant_groups t JOIN below b ON b.id = t.id \
             WHERE t.tenant_id = $1 AND t.deleted_at IS NULL",
            prefixed(GROUP_COLUMNS, "t")
        );
        let deleted = audited_tx!(self, event, |tx| {
            ensure_live!(&mut *tx, "tenant_groups", tenant_id, id);
            let groups = sqlx::query_as::<_, Group>(&subtree)
                .bind(tenant_id)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            let now = Timestamp::now();
            for g in &groups {
                record_history!(
                    &mut *tx,
                    tenant_id,
                    "group",
                    g.id,
                    g.version,
                    "delete",
                    g,
                    event.actor.actor_id
                );
                sqlx::query(
                    "UPDATE tenant_groups SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant_id)
                .bind(g.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            groups.len() as u64
        });
        Ok(deleted)
    }

    /// Adds a user to a group (idempotent).
    pub async fn add_group_member(
        &self,
        tenant_id: Uuid,
        group_id: Uuid,
        user_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.add_link(
            super::links::GROUP_MEMBER,
            tenant_id,
            group_id,
            user_id,
            event,
        )
        .await
    }

    /// Removes a user from a group.
    pub async fn remove_group_member(
        &self,
        tenant_id: Uuid,
        group_id: Uuid,
        user_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.remove_link(
            super::links::GROUP_MEMBER,
            tenant_id,
            group_id,
            user_id,
            event,
        )
        .await
    }

    /// Live direct members of a group.
    pub async fn list_group_members(
        &self,
        tenant_id: Uuid,
        group_id: Uuid,
    ) -> StoreResult<Vec<User>> {
        self.get_group(tenant_id, group_id).await?;
        let sql = format!(
            "SELECT {} FROM users u JOIN group_members gm ON gm.user_id = u.id \
             WHERE gm.tenant_id = $1 AND gm.group_id = $2 AND u.deleted_at IS NULL ORDER BY u.email_normalized",
            prefixed(USER_COLUMNS, "u")
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, User>(&sql)
                .bind(tenant_id)
                .bind(group_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Live groups a user is a direct member of.
    pub async fn list_user_groups(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Vec<Group>> {
        self.get_user(tenant_id, user_id).await?;
        let sql = format!(
            "SELECT {} FROM tenant_groups g JOIN group_members gm ON gm.group_id = g.id \
             WHERE gm.tenant_id = $1 AND gm.user_id = $2 AND g.deleted_at IS NULL ORDER BY g.name",
            prefixed(GROUP_COLUMNS, "g")
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Group>(&sql)
                .bind(tenant_id)
                .bind(user_id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Gives a role to a group (idempotent).
    pub async fn add_group_role(
        &self,
        tenant_id: Uuid,
        group_id: Uuid,
        role_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.add_link(
            super::links::GROUP_ROLE,
            tenant_id,
            group_id,
            role_id,
            event,
        )
        .await
    }

    /// Takes a role from a group.
    pub async fn remove_group_role(
        &self,
        tenant_id: Uuid,
        group_id: Uuid,
        role_id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        self.remove_link(
            super::links::GROUP_ROLE,
            tenant_id,
            group_id,
            role_id,
            event,
        )
        .await
    }

    /// Live roles assigned directly to a group.
    pub async fn list_group_roles(
        &self,
        tenant_id: Uuid,
        group_id: Uuid,
    ) -> StoreResult<Vec<Role>> {
        self.get_group(tenant_id, group_id).await?;
        let sql = format!(
            "SELECT {} FROM roles r JOIN group_roles gr ON gr.role_id = r.id \
             WHERE gr.tenant_id = $1 AND gr.group_id = $2 AND r.deleted_at IS NULL ORDER BY r.name",
            prefixed(ROLE_COLUMNS, "r")
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, Role>(&sql)
                .bind(tenant_id)
                .bind(group_id)
                .fetch_all(pool)
                .await?)
        })
    }
}
