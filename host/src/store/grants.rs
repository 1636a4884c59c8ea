//! Effective-permission resolution: which `resource:action` pairs a user, a
//! role or a group membership confers. One statement each, whatever the
//! depth of the group hierarchy or of composite roles.
//!
//! The statements are assembled from shared fragments:
//! - `member_groups` walks up from a set of groups to every live ancestor;
//! - `all_roles` expands composite roles downwards;
//! - the final select joins roles to their live permissions.
//!
//! `UNION` (not `UNION ALL`) deduplicates, so each recursive step only
//! carries new rows and the walk ends even on bad data. Every step filters by
//! tenant, although links are tenant-checked when written.
//!
//! `CROSS JOIN ... WHERE` fixes the join order on SQLite (PostgreSQL plans
//! it freely): the working row of each step drives primary-key look-ups.
//! Left to itself, SQLite 3.46 prefers the `(tenant_id, ...)` indexes and
//! scans every group of the tenant per step, which made a 10-level walk 25x
//! slower (measured: 57 ms vs 2 ms for 50 groups x 10 levels).

use uuid::Uuid;

use super::{Store, StoreResult, on_pool};
use crate::model::EffectiveGrant;

/// Recursive step of `member_groups`: the live parent of each group.
macro_rules! ancestors_step {
    () => {
        "
  UNION
    SELECT g.parent_id FROM member_groups mg
    CROSS JOIN tenant_groups g
    CROSS JOIN tenant_groups p
    WHERE g.id = mg.group_id AND p.id = g.parent_id AND p.tenant_id = $1 AND p.deleted_at IS NULL
),"
    };
}

/// Recursive step of `all_roles`: the live children of composite roles.
macro_rules! composites_step {
    () => {
        "
  UNION
    SELECT rc.child_role_id FROM all_roles ar
    CROSS JOIN role_composites rc
    CROSS JOIN roles c
    WHERE rc.parent_role_id = ar.role_id AND c.id = rc.child_role_id AND c.tenant_id = $1 AND c.deleted_at IS NULL
)"
    };
}

/// The live permissions of every role in `all_roles`, with the role's name.
macro_rules! permissions_of_all_roles {
    () => {
        "
SELECT DISTINCT p.resource, p.action, r.name AS role_name
FROM all_roles ar
CROSS JOIN roles r
CROSS JOIN role_permissions rp
CROSS JOIN permissions p
WHERE r.id = ar.role_id AND rp.role_id = r.id AND p.id = rp.permission_id
  AND p.tenant_id = $1 AND p.deleted_at IS NULL
ORDER BY p.resource, p.action, role_name"
    };
}

/// A user's permissions: direct roles, and roles of their groups and of
/// every ancestor group, with composites expanded. `$1` tenant, `$2` user.
const USER_GRANTS_SQL: &str = concat!(
    "
WITH RECURSIVE
member_groups(group_id) AS (
    SELECT gm.group_id FROM group_members gm
    CROSS JOIN tenant_groups g
    WHERE gm.tenant_id = $1 AND gm.user_id = $2
      AND g.id = gm.group_id AND g.tenant_id = $1 AND g.deleted_at IS NULL",
    ancestors_step!(),
    "
granted_roles(role_id) AS (
    SELECT ur.role_id FROM user_roles ur WHERE ur.user_id = $2 AND ur.tenant_id = $1
  UNION
    SELECT gr.role_id FROM member_groups mg
    CROSS JOIN group_roles gr
    WHERE gr.group_id = mg.group_id AND gr.tenant_id = $1
),
all_roles(role_id) AS (
    SELECT g.role_id FROM granted_roles g
    CROSS JOIN roles r
    WHERE r.id = g.role_id AND r.tenant_id = $1 AND r.deleted_at IS NULL",
    composites_step!(),
    permissions_of_all_roles!(),
);

/// One role's permissions, through its composites. `$1` tenant, `$2` role.
const ROLE_GRANTS_SQL: &str = concat!(
    "
WITH RECURSIVE
all_roles(role_id) AS (
    SELECT r.id FROM roles r WHERE r.id = $2 AND r.tenant_id = $1 AND r.deleted_at IS NULL",
    composites_step!(),
    permissions_of_all_roles!(),
);

/// What membership of one group confers: roles of the group and of its
/// ancestors, with composites expanded. `$1` tenant, `$2` group.
const GROUP_GRANTS_SQL: &str = concat!(
    "
WITH RECURSIVE
member_groups(group_id) AS (
    SELECT g.id FROM tenant_groups g WHERE g.id = $2 AND g.tenant_id = $1 AND g.deleted_at IS NULL",
    ancestors_step!(),
    "
all_roles(role_id) AS (
    SELECT gr.role_id FROM member_groups mg
    CROSS JOIN group_roles gr
    CROSS JOIN roles r
    WHERE gr.group_id = mg.group_id AND gr.tenant_id = $1 AND r.id = gr.role_id AND r.deleted_at IS NULL",
    composites_step!(),
    permissions_of_all_roles!(),
);

impl Store {
    async fn grants(
        &self,
        sql: &'static str,
        tenant_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Vec<EffectiveGrant>> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, EffectiveGrant>(sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Every permission a user holds, with the role carrying it.
    pub async fn effective_grants(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Vec<EffectiveGrant>> {
        self.grants(USER_GRANTS_SQL, tenant_id, user_id).await
    }

    /// Every permission a role carries, directly or through composites.
    pub async fn role_grants(
        &self,
        tenant_id: Uuid,
        role_id: Uuid,
    ) -> StoreResult<Vec<EffectiveGrant>> {
        self.grants(ROLE_GRANTS_SQL, tenant_id, role_id).await
    }

    /// Every permission membership of a group confers.
    pub async fn group_grants(
        &self,
        tenant_id: Uuid,
        group_id: Uuid,
    ) -> StoreResult<Vec<EffectiveGrant>> {
        self.grants(GROUP_GRANTS_SQL, tenant_id, group_id).await
    }
}
