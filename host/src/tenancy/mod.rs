//! Tenants: first-run setup, provisioning, and tenant administration.

pub mod applications;
pub mod setup;

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::authz::ADMIN_PERMISSIONS;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::identity::validate::Validator;
use crate::model::{
    Actor, ClientType, MASTER_TENANT_ID, OAuthClient, Page, PageRequest, Permission, Role, Tenant,
    TenantSettings, TenantView,
};
use crate::store::TenantProvisioning;
use crate::store::{NewClient, NewUser, TenantUpdate};
use crate::time::Timestamp;

/// Client id of the public first-party client every tenant starts with.
pub const ADMIN_CLI_CLIENT_ID: &str = "admin-cli";

/// Name of the built-in administrator role.
pub const ADMIN_ROLE: &str = "admin";

/// Body of `POST /api/v1/tenants`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Human name.
    pub name: String,
    /// URL-safe identifier (derived from the name when omitted).
    pub slug: Option<String>,
    /// Name shown on login pages.
    pub display_name: Option<String>,
    /// Settings.
    #[serde(default)]
    pub settings: TenantSettings,
}

/// Body of `PUT /api/v1/tenants/{id}`; absent fields stay unchanged.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// Human name.
    pub name: Option<String>,
    /// Display name; `null` clears it.
    #[serde(default, with = "crate::identity::double_option")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Replacement settings.
    pub settings: Option<TenantSettings>,
}

/// Renders a tenant with its issuer.
pub fn view(ctx: &Ctx, tenant: Tenant) -> TenantView {
    let issuer = ctx.config.issuer_for(&tenant.slug);
    TenantView { tenant, issuer }
}

fn slugify(name: &str) -> String {
    let mut s = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-')
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

fn validate_settings(v: &mut Validator, s: &TenantSettings) {
    for (field, value) in [
        ("settings.access_token_lifetime", s.access_token_lifetime),
        ("settings.refresh_token_lifetime", s.refresh_token_lifetime),
        ("settings.lockout_duration", s.lockout_duration),
        ("settings.session_lifetime", s.session_lifetime),
        ("settings.id_token_lifetime", s.id_token_lifetime),
    ] {
        if value.is_some_and(|x| !(1..=31_536_000).contains(&x)) {
            v.fail(field, "must be between 1 and 31536000 seconds");
        }
    }
    if s.lockout_threshold
        .is_some_and(|x| !(1..=1000).contains(&x))
    {
        v.fail("settings.lockout_threshold", "must be between 1 and 1000");
    }
    for (field, colour) in [
        ("settings.primary_color", &s.primary_color),
        ("settings.background_color", &s.background_color),
    ] {
        if let Some(c) = colour {
            // Colours are interpolated into the login page's CSS: only
            // `#rrggbb` is accepted, so nothing else can reach the style sheet.
            let ok =
                c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                v.fail(field, "must be a #rrggbb colour");
            }
        }
    }
    if let Some(u) = &s.logo_url {
        v.url("settings.logo_url", u);
    }
    if let Some(p) = &s.trusted_email_providers {
        if p.len() > 32 {
            v.fail("settings.trusted_email_providers", "at most 32 plugin ids");
        }
        if p.iter().any(|t| {
            t.plugin_id.is_empty()
                || t.plugin_id.len() > 64
                || t.issuer.is_empty()
                || t.issuer.len() > 255
        }) {
            v.fail(
                "settings.trusted_email_providers",
                "each entry needs a plugin_id (1-64 characters) and an issuer (1-255)",
            );
        }
    }
}

/// A new tenant's signing keys: Ed25519, P-256 and RSA, generated off the
/// async runtime (RSA takes a while).
pub(crate) async fn initial_keys(
    ctx: &Ctx,
    tenant_id: Uuid,
) -> Result<Vec<crate::model::SigningKeyRecord>> {
    let mut out = Vec::new();
    for alg in crate::crypto::signing::KeyAlgorithm::ALL {
        out.push(
            ctx.keys
                .generate_key_record(tenant_id, alg)
                .await
                .map_err(|e| Error::Internal(e.to_string()))?,
        );
    }
    Ok(out)
}

/// Everything a new tenant starts with: the admin permissions, the `admin`
/// system role carrying them, the `admin-cli` public client, and one
/// signing key per algorithm (generated beforehand by `initial_keys`).
pub(crate) fn provisioning(
    tenant: Tenant,
    admin: Option<NewUser>,
    signing_keys: Vec<crate::model::SigningKeyRecord>,
) -> TenantProvisioning {
    let now = Timestamp::now();
    let tid = tenant.id;
    let permissions: Vec<Permission> = ADMIN_PERMISSIONS
        .iter()
        .map(|(resource, action)| Permission {
            id: Uuid::now_v7(),
            tenant_id: tid,
            application_id: None,
            resource: (*resource).into(),
            action: (*action).into(),
            description: Some(format!(
                "Built-in: {action} {resource} through the admin API"
            )),
            version: 1,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let admin_role = Role {
        id: Uuid::now_v7(),
        tenant_id: tid,
        application_id: None,
        name: ADMIN_ROLE.into(),
        description: Some(if tid == MASTER_TENANT_ID {
            "System administrator: manages every tenant".into()
        } else {
            "Tenant administrator: manages this tenant".into()
        }),
        is_composite: false,
        is_system: true,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let admin_cli = NewClient {
        client: OAuthClient {
            id: Uuid::now_v7(),
            tenant_id: tid,
            application_id: None,
            client_id: ADMIN_CLI_CLIENT_ID.into(),
            name: "Admin CLI".into(),
            client_type: ClientType::Public.as_str().into(),
            redirect_uris: vec![],
            grant_types: vec!["password".into()],
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            require_pkce: true,
            require_consent: false,
            first_party: true,
            access_token_lifetime: None,
            refresh_token_lifetime: None,
            service_account_user_id: None,
            oidc_settings: Default::default(),
            enabled: true,
            version: 1,
            created_at: now,
            updated_at: now,
        },
        secret_hash: None,
        service_account: None,
    };
    let role_id = admin_role.id;
    TenantProvisioning {
        signing_keys,
        roles: vec![(admin_role, permissions.iter().map(|p| p.id).collect())],
        permissions,
        clients: vec![admin_cli],
        admin: admin.map(|u| (u, vec![role_id])),
        tenant,
    }
}

/// Creates a tenant (recorded on the master tenant's audit chain).
pub async fn create_tenant(ctx: &Ctx, actor: &Actor, req: CreateTenant) -> Result<TenantView> {
    let slug = req.slug.clone().unwrap_or_else(|| slugify(&req.name));
    let mut v = Validator::new();
    v.text("name", &req.name, 200);
    v.slug("slug", &slug);
    v.optional_text("display_name", req.display_name.as_deref(), 200);
    validate_settings(&mut v, &req.settings);
    if slug == crate::model::MASTER_TENANT_SLUG {
        v.fail("slug", "is reserved");
    }
    v.finish()?;
    let now = Timestamp::now();
    let tenant = Tenant {
        id: Uuid::now_v7(),
        name: req.name.trim().into(),
        slug: slug.clone(),
        display_name: req.display_name.clone(),
        enabled: true,
        settings: req.settings.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        MASTER_TENANT_ID,
        actor,
        "tenant.create",
        "tenant",
        tenant.id,
        json!({ "name": tenant.name, "slug": slug }),
    );
    let keys = initial_keys(ctx, tenant.id).await?;
    let p = provisioning(tenant, None, keys);
    let created = ctx.store.provision_tenant(&p, &ev).await?;
    Ok(view(ctx, created))
}

/// Lists tenants.
pub async fn list_tenants(ctx: &Ctx, page: PageRequest) -> Result<Page<TenantView>> {
    let p = ctx.store.list_tenants(page).await?;
    Ok(Page {
        data: p.data.into_iter().map(|t| view(ctx, t)).collect(),
        page: p.page,
        per_page: p.per_page,
        total: p.total,
    })
}

/// One tenant.
pub async fn get_tenant(ctx: &Ctx, id: Uuid) -> Result<TenantView> {
    Ok(view(
        ctx,
        ctx.store
            .get_tenant(id)
            .await
            .map_err(Error::from_store("tenant"))?,
    ))
}

/// Updates a tenant. The master tenant cannot be disabled.
pub async fn update_tenant(
    ctx: &Ctx,
    actor: &Actor,
    id: Uuid,
    req: UpdateTenant,
) -> Result<TenantView> {
    let mut v = Validator::new();
    if let Some(n) = &req.name {
        v.text("name", n, 200);
    }
    if let Some(Some(d)) = &req.display_name {
        v.optional_text("display_name", Some(d), 200);
    }
    if let Some(s) = &req.settings {
        validate_settings(&mut v, s);
    }
    if id == MASTER_TENANT_ID && req.enabled == Some(false) {
        v.fail("enabled", "the master tenant cannot be disabled");
    }
    v.finish()?;
    let changes = json!({
        "name": req.name, "display_name": req.display_name, "enabled": req.enabled, "settings": req.settings,
    });
    let ev = event(id, actor, "tenant.update", "tenant", id, changes);
    let update = TenantUpdate {
        name: req.name,
        display_name: req.display_name,
        enabled: req.enabled,
        settings: req.settings,
    };
    let t = ctx
        .store
        .update_tenant(id, &update, &ev)
        .await
        .map_err(Error::from_store("tenant"))?;
    Ok(view(ctx, t))
}

/// Soft-deletes a tenant. The master tenant cannot be deleted.
pub async fn delete_tenant(ctx: &Ctx, actor: &Actor, id: Uuid) -> Result<()> {
    if id == MASTER_TENANT_ID {
        return Err(Error::Conflict(
            "the master tenant cannot be deleted".into(),
        ));
    }
    let ev = event(
        MASTER_TENANT_ID,
        actor,
        "tenant.delete",
        "tenant",
        id,
        json!({}),
    );
    ctx.store
        .delete_tenant(id, &ev)
        .await
        .map_err(Error::from_store("tenant"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugify_names() {
        assert_eq!(super::slugify("Acme Corp!"), "acme-corp");
        assert_eq!(super::slugify("  Über  Team "), "ber-team");
    }
}
