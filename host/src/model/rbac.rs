//! Roles, permissions, groups and applications.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::time::Timestamp;

/// A role: a named set of permissions, possibly composed of other roles.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Role {
    /// Role id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Application the role is scoped to, if any.
    pub application_id: Option<Uuid>,
    /// Unique name within the tenant.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Composite roles inherit the permissions of their child roles.
    pub is_composite: bool,
    /// System roles are built in and cannot be modified or deleted.
    pub is_system: bool,
    /// Optimistic version.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

/// A permission in the `resource:action` model.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Permission {
    /// Permission id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Application the permission is scoped to, if any.
    pub application_id: Option<Uuid>,
    /// Resource, e.g. `users`; `*` matches any resource.
    pub resource: String,
    /// Action, e.g. `read`; `*` matches any action.
    pub action: String,
    /// Description.
    pub description: Option<String>,
    /// Optimistic version.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

impl Permission {
    /// `resource:action`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.resource, self.action)
    }
}

/// A group of users; groups nest through `parent_id`.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Group {
    /// Group id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Parent group; members of a group inherit the roles of its ancestors.
    pub parent_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Optimistic version.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

/// A logical service inside a tenant that owns scoped roles and clients.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Application {
    /// Application id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Unique name within the tenant.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Optimistic version.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

/// One permission a user effectively holds, with the role that grants it.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct EffectiveGrant {
    /// Resource of the permission.
    pub resource: String,
    /// Action of the permission.
    pub action: String,
    /// Name of the role that carries it.
    pub role_name: String,
}
