//! Assignment tables (user↔role, group↔role, group↔user): one way to add
//! and remove a link between two live objects of the same tenant.

use uuid::Uuid;

use super::{Store, StoreError, StoreResult, audited_tx};
use crate::model::AuditEvent;

/// An assignment table and the tables its two columns point into.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    /// The assignment table.
    pub table: &'static str,
    /// Column and owning table of the left side.
    pub left: (&'static str, &'static str),
    /// Column and owning table of the right side.
    pub right: (&'static str, &'static str),
}

/// user_roles: a role given directly to a user.
pub(crate) const USER_ROLE: Link = Link {
    table: "user_roles",
    left: ("user_id", "users"),
    right: ("role_id", "roles"),
};
/// group_roles: a role given to a group.
pub(crate) const GROUP_ROLE: Link = Link {
    table: "group_roles",
    left: ("group_id", "tenant_groups"),
    right: ("role_id", "roles"),
};
/// group_members: a user in a group.
pub(crate) const GROUP_MEMBER: Link = Link {
    table: "group_members",
    left: ("group_id", "tenant_groups"),
    right: ("user_id", "users"),
};

fn live_sql(table: &str) -> String {
    format!(
        "SELECT CAST(1 AS BIGINT) FROM {table} WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
    )
}

/// Fails the transaction with `NotFound` unless `$sql` (from `live_sql`)
/// finds the row `$id` of `$tenant`.
macro_rules! require_live {
    ($tx:expr, $sql:expr, $tenant:expr, $id:expr) => {{
        let found: Option<(i64,)> = sqlx::query_as($sql)
            .bind($tenant)
            .bind($id)
            .fetch_optional($tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
    }};
}

impl Store {
    /// Links `left` and `right` (idempotent). Both must be live objects of
    /// `tenant_id`, so a link never crosses tenants.
    pub(crate) async fn add_link(
        &self,
        link: Link,
        tenant_id: Uuid,
        left: Uuid,
        right: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let insert = format!(
            "INSERT INTO {} (tenant_id, {}, {}) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            link.table, link.left.0, link.right.0
        );
        let (left_live, right_live) = (live_sql(link.left.1), live_sql(link.right.1));
        audited_tx!(self, event, |tx| {
            require_live!(&mut *tx, &left_live, tenant_id, left);
            require_live!(&mut *tx, &right_live, tenant_id, right);
            sqlx::query(&insert)
                .bind(tenant_id)
                .bind(left)
                .bind(right)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Removes a link; `NotFound` unless `left` is live in `tenant_id` and the link exists.
    pub(crate) async fn remove_link(
        &self,
        link: Link,
        tenant_id: Uuid,
        left: Uuid,
        right: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let delete = format!(
            "DELETE FROM {} WHERE tenant_id = $1 AND {} = $2 AND {} = $3",
            link.table, link.left.0, link.right.0
        );
        let left_live = live_sql(link.left.1);
        audited_tx!(self, event, |tx| {
            require_live!(&mut *tx, &left_live, tenant_id, left);
            let done = sqlx::query(&delete)
                .bind(tenant_id)
                .bind(left)
                .bind(right)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        });
        Ok(())
    }
}
