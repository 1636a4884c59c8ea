//! A user's attributes as plugins see them (`subject-attributes`,
//! `user-snapshot.attributes`): roles (direct, through groups and
//! composites), groups, permissions, email, and the user's custom
//! attributes.

use serde_json::Value;
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::User;

/// The attributes of a user, loaded from the store.
pub async fn of_user(ctx: &Ctx, tenant_id: Uuid, user_id: Uuid) -> Result<Vec<(String, Value)>> {
    let user = ctx
        .store
        .get_user(tenant_id, user_id)
        .await
        .map_err(Error::from_store("user"))?;
    let grants = ctx.store.effective_grants(tenant_id, user_id).await?;
    let mut roles: Vec<String> = ctx
        .store
        .list_user_roles(tenant_id, user_id)
        .await?
        .into_iter()
        .map(|r| r.name)
        .chain(grants.iter().map(|g| g.role_name.clone()))
        .collect();
    roles.sort();
    roles.dedup();
    let mut permissions: Vec<String> = grants
        .iter()
        .map(|g| format!("{}:{}", g.resource, g.action))
        .collect();
    permissions.sort();
    permissions.dedup();
    let groups: Vec<String> = ctx
        .store
        .list_user_groups(tenant_id, user_id)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let mut out = profile(&user);
    out.push(("roles".into(), Value::from(roles)));
    out.push(("groups".into(), Value::from(groups)));
    out.push(("permissions".into(), Value::from(permissions)));
    Ok(out)
}

/// Profile attributes of a user (no database access): email, names,
/// locale, flags, and custom attributes (which never shadow these).
pub fn profile(user: &User) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = vec![
        ("email".into(), Value::from(user.email.clone())),
        ("email_verified".into(), Value::from(user.email_verified)),
        (
            "service_account".into(),
            Value::from(user.is_service_account),
        ),
    ];
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.push((k.into(), Value::from(v.clone())));
        }
    };
    opt("given_name", &user.first_name);
    opt("family_name", &user.last_name);
    opt("name", &user.display_name);
    opt("phone", &user.phone);
    opt("locale", &user.locale);
    opt("zoneinfo", &user.timezone);
    if let Some(attrs) = user.attributes.as_object() {
        for (k, v) in attrs {
            if !out.iter().any(|(name, _)| name == k)
                && !["roles", "groups", "permissions"].contains(&k.as_str())
            {
                out.push((k.clone(), v.clone()));
            }
        }
    }
    out
}
