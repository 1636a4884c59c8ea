//! User administration.

use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extension_points as ext;
use super::validate::Validator;
use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::model::{Actor, Group, Page, PageRequest, Role, User, UserProfile};
use crate::plugins::hooks::input_validator::Operation;
use crate::plugins::hooks::lifecycle_hook::{PostEvent, PreEvent, UserSnapshot};
use crate::store::{NewUser, UserFilter, UserUpdate};

/// Body of `POST /users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Email, unique within the tenant (case-insensitive).
    pub email: String,
    /// Initial password (8-256 characters); omit for password-less accounts.
    pub password: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// BCP 47 locale.
    pub locale: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Mark the email verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Enabled (default true).
    pub enabled: Option<bool>,
    /// Free-form attributes (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
}

/// Body of `PUT /users/{id}`; absent fields stay unchanged, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Email.
    pub email: Option<String>,
    /// Given name.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    /// Family name.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    /// Display name.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// Phone.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// Locale.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
    /// Time zone.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    /// Avatar URL.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    /// Verified flag.
    pub email_verified: Option<bool>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Replacement attributes.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    /// `true` clears the lockout (failed attempts and lock time).
    #[serde(default)]
    pub unlock: bool,
}

/// Body of `PUT /users/{id}/password`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new password.
    pub password: String,
}

fn validate_profile(v: &mut Validator, p: &[(&str, Option<&str>)]) {
    for (field, value) in p {
        let max = if *field == "avatar_url" { 2048 } else { 200 };
        v.optional_text(field, *value, max);
        if *field == "avatar_url"
            && let Some(u) = value
        {
            v.url(field, u);
        }
    }
}

fn validate_attributes(v: &mut Validator, a: &Value) {
    if !a.is_object() {
        v.fail("attributes", "must be a JSON object");
    } else if a.to_string().contains("\\u0000") {
        v.fail("attributes", "must not contain NUL characters");
    } else if a.to_string().len() > 16 * 1024 {
        v.fail("attributes", "must be at most 16 KiB");
    }
}

/// Creates a user, hashing the password off the runtime.
pub async fn create(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, req: CreateUser) -> Result<User> {
    let mut v = Validator::new();
    v.email("email", &req.email);
    if let Some(p) = &req.password {
        v.password("password", p);
    }
    validate_profile(
        &mut v,
        &[
            ("first_name", req.first_name.as_deref()),
            ("last_name", req.last_name.as_deref()),
            ("display_name", req.display_name.as_deref()),
            ("phone", req.phone.as_deref()),
            ("locale", req.locale.as_deref()),
            ("timezone", req.timezone.as_deref()),
            ("avatar_url", req.avatar_url.as_deref()),
        ],
    );
    if let Some(a) = &req.attributes {
        validate_attributes(&mut v, a);
    }
    v.finish()?;
    let mut fields = profile_fields(&[
        ("email", Some(req.email.trim())),
        ("first_name", req.first_name.as_deref()),
        ("last_name", req.last_name.as_deref()),
        ("display_name", req.display_name.as_deref()),
        ("phone", req.phone.as_deref()),
        ("locale", req.locale.as_deref()),
        ("timezone", req.timezone.as_deref()),
        ("avatar_url", req.avatar_url.as_deref()),
    ]);
    if let Some(a) = &req.attributes {
        fields.push(("attributes".into(), a.clone()));
    }
    let changed: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
    let mut with_password = fields.clone();
    if let Some(p) = &req.password {
        with_password.push(("password".into(), Value::from(p.clone())));
    }
    ext::validate(
        ctx,
        tenant_id,
        Operation::UserCreate,
        None,
        with_password,
        changed.clone(),
    )
    .await?;
    let snapshot = UserSnapshot {
        id: None,
        email: Some(req.email.trim().to_string()),
        email_verified: req.email_verified,
        username: None,
        enabled: req.enabled.unwrap_or(true),
        attributes: fields,
    };
    ext::before(
        ctx,
        tenant_id,
        PreEvent::Registration,
        &snapshot,
        actor,
        "admin-api",
        changed,
    )
    .await?;
    let password_hash = match req.password {
        Some(p) => Some(ctx.passwords.hash(p).await?),
        None => None,
    };
    let user = NewUser {
        id: Uuid::now_v7(),
        tenant_id,
        email: req.email.trim().into(),
        password_hash,
        profile: UserProfile {
            first_name: req.first_name,
            last_name: req.last_name,
            display_name: req.display_name,
            phone: req.phone,
            locale: req.locale,
            timezone: req.timezone,
            avatar_url: req.avatar_url,
        },
        email_verified: req.email_verified,
        enabled: req.enabled.unwrap_or(true),
        is_service_account: false,
        attributes: req.attributes.unwrap_or_else(|| json!({})),
    };
    let ev = event(
        tenant_id,
        actor,
        "user.create",
        "user",
        user.id,
        json!({
            "email": user.email, "profile": user.profile, "enabled": user.enabled, "has_password": user.password_hash.is_some(),
        }),
    );
    let created = ctx.store.create_user(&user, &ev).await?;
    ext::after(
        ctx,
        tenant_id,
        PostEvent::UserRegistered,
        &created,
        actor,
        "admin-api",
        json!({}),
    );
    Ok(created)
}

fn profile_fields(p: &[(&str, Option<&str>)]) -> Vec<(String, Value)> {
    p.iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), Value::from(v))))
        .collect()
}

/// Lists users, optionally filtered by email substring.
pub async fn list(
    ctx: &Ctx,
    tenant_id: Uuid,
    email: Option<String>,
    page: PageRequest,
) -> Result<Page<User>> {
    if email.as_ref().is_some_and(|e| e.len() > 254) {
        return Err(Error::field("email", "must be at most 254 characters"));
    }
    Ok(ctx
        .store
        .list_users(tenant_id, &UserFilter { email }, page)
        .await?)
}

/// One user.
pub async fn get(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<User> {
    ctx.store
        .get_user(tenant_id, id)
        .await
        .map_err(Error::from_store("user"))
}

/// Updates a user.
pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: UpdateUser,
) -> Result<User> {
    let mut v = Validator::new();
    if let Some(e) = &req.email {
        v.email("email", e);
    }
    let flat =
        |o: &Option<Option<String>>| o.as_ref().and_then(|x| x.as_deref().map(str::to_string));
    let fields = [
        ("first_name", flat(&req.first_name)),
        ("last_name", flat(&req.last_name)),
        ("display_name", flat(&req.display_name)),
        ("phone", flat(&req.phone)),
        ("locale", flat(&req.locale)),
        ("timezone", flat(&req.timezone)),
        ("avatar_url", flat(&req.avatar_url)),
    ];
    let refs: Vec<(&str, Option<&str>)> = fields.iter().map(|(f, x)| (*f, x.as_deref())).collect();
    validate_profile(&mut v, &refs);
    if let Some(a) = &req.attributes {
        validate_attributes(&mut v, a);
    }
    v.finish()?;
    let current = get(ctx, tenant_id, id).await?;
    let mut changed: Vec<String> = Vec::new();
    let mut values: Vec<(String, Value)> = Vec::new();
    if let Some(e) = &req.email {
        changed.push("email".into());
        values.push(("email".into(), Value::from(e.trim())));
    }
    for ((name, _), raw) in fields.iter().zip([
        &req.first_name,
        &req.last_name,
        &req.display_name,
        &req.phone,
        &req.locale,
        &req.timezone,
        &req.avatar_url,
    ]) {
        if let Some(v) = raw {
            changed.push(name.to_string());
            values.push((
                name.to_string(),
                v.clone().map(Value::from).unwrap_or(Value::Null),
            ));
        }
    }
    if let Some(a) = &req.attributes {
        changed.push("attributes".into());
        values.push(("attributes".into(), a.clone()));
    }
    for (flag, v) in [
        ("email_verified", req.email_verified),
        ("enabled", req.enabled),
    ] {
        if let Some(v) = v {
            changed.push(flag.into());
            values.push((flag.into(), Value::from(v)));
        }
    }
    ext::validate(
        ctx,
        tenant_id,
        Operation::UserUpdate,
        Some(id),
        values.clone(),
        changed.clone(),
    )
    .await?;
    let mut snap = ext::snapshot(&current);
    for (k, v) in &values {
        match k.as_str() {
            "email" => snap.email = v.as_str().map(str::to_string),
            "email_verified" => snap.email_verified = v.as_bool().unwrap_or(snap.email_verified),
            "enabled" => snap.enabled = v.as_bool().unwrap_or(snap.enabled),
            _ => {
                snap.attributes.retain(|(name, _)| name != k);
                snap.attributes.push((k.clone(), v.clone()));
            }
        }
    }
    ext::before(
        ctx,
        tenant_id,
        PreEvent::UserUpdate,
        &snap,
        actor,
        "admin-api",
        changed.clone(),
    )
    .await?;
    let update = UserUpdate {
        email: req.email.map(|e| e.trim().to_string()),
        first_name: req.first_name,
        last_name: req.last_name,
        display_name: req.display_name,
        phone: req.phone,
        locale: req.locale,
        timezone: req.timezone,
        avatar_url: req.avatar_url,
        email_verified: req.email_verified,
        enabled: req.enabled,
        attributes: req.attributes,
        unlock: req.unlock,
    };
    let ev = event(
        tenant_id,
        actor,
        "user.update",
        "user",
        id,
        serde_json::to_value(&update).unwrap_or_default(),
    );
    let updated = ctx
        .store
        .update_user(tenant_id, id, &update, &ev)
        .await
        .map_err(Error::from_store("user"))?;
    ext::after(
        ctx,
        tenant_id,
        PostEvent::UserUpdated,
        &updated,
        actor,
        "admin-api",
        json!({ "changed": changed }),
    );
    Ok(updated)
}

/// Sets a user's password (and clears any lockout).
pub async fn set_password(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: SetPassword,
) -> Result<()> {
    set_password_inner(ctx, actor, tenant_id, id, req, None).await
}

/// Sets a user's password only if the current one is still `expected`
/// (its hash; `None` for no password): a reset link checked against one
/// password cannot overwrite a password set meanwhile. 409 otherwise.
pub async fn set_password_replacing(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: SetPassword,
    expected: Option<&str>,
) -> Result<()> {
    set_password_inner(ctx, actor, tenant_id, id, req, Some(expected)).await
}

async fn set_password_inner(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: SetPassword,
    expected: Option<Option<&str>>,
) -> Result<()> {
    let mut v = Validator::new();
    v.password("password", &req.password);
    v.finish()?;
    let user = get(ctx, tenant_id, id).await?;
    if user.is_service_account {
        return Err(Error::Conflict("service accounts have no password".into()));
    }
    ext::validate(
        ctx,
        tenant_id,
        Operation::PasswordChange,
        Some(id),
        vec![
            ("password".into(), Value::from(req.password.clone())),
            ("email".into(), Value::from(user.email.clone())),
        ],
        vec!["password".into()],
    )
    .await?;
    let hash = ctx.passwords.hash(req.password).await?;
    let ev = event(tenant_id, actor, "user.password_set", "user", id, json!({}));
    ctx.store
        .set_password(tenant_id, id, &hash, expected, &ev)
        .await
        .map_err(Error::from_store("user"))?;
    ext::after(
        ctx,
        tenant_id,
        PostEvent::PasswordChanged,
        &user,
        actor,
        "admin-api",
        json!({}),
    );
    Ok(())
}

/// Soft-deletes a user.
pub async fn delete(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, id: Uuid) -> Result<()> {
    if actor.actor_id == Some(id) {
        return Err(Error::Conflict("you cannot delete your own account".into()));
    }
    let user = get(ctx, tenant_id, id).await?;
    ext::before(
        ctx,
        tenant_id,
        PreEvent::UserDelete,
        &ext::snapshot(&user),
        actor,
        "admin-api",
        vec![],
    )
    .await?;
    let ev = event(tenant_id, actor, "user.delete", "user", id, json!({}));
    ctx.store
        .delete_user(tenant_id, id, &ev)
        .await
        .map_err(Error::from_store("user"))?;
    ext::after(
        ctx,
        tenant_id,
        PostEvent::UserDeleted,
        &user,
        actor,
        "admin-api",
        json!({}),
    );
    Ok(())
}

/// Roles assigned directly to a user.
pub async fn roles(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Vec<Role>> {
    ctx.store
        .list_user_roles(tenant_id, id)
        .await
        .map_err(Error::from_store("user"))
}

/// Groups a user is a direct member of.
pub async fn groups(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Vec<Group>> {
    ctx.store
        .list_user_groups(tenant_id, id)
        .await
        .map_err(Error::from_store("user"))
}

/// Gives a role to a user.
pub async fn assign_role(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "user.role_assign",
        "user",
        user_id,
        json!({ "role_id": role_id }),
    );
    ctx.store
        .add_user_role(tenant_id, user_id, role_id, &ev)
        .await
        .map_err(Error::from_store("user or role"))
}

/// Takes a role from a user.
pub async fn unassign_role(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "user.role_unassign",
        "user",
        user_id,
        json!({ "role_id": role_id }),
    );
    ctx.store
        .remove_user_role(tenant_id, user_id, role_id, &ev)
        .await
        .map_err(Error::from_store("role assignment"))
}
