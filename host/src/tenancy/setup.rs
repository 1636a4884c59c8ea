//! First-run setup: creates the master tenant and the first administrator.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::provisioning;
use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::identity::validate::Validator;
use crate::model::{Actor, MASTER_TENANT_ID, MASTER_TENANT_SLUG, Tenant, UserProfile};
use crate::store::NewUser;
use crate::time::Timestamp;

/// Body of `POST /setup`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// Email of the first administrator.
    pub admin_email: String,
    /// Their password (8-256 characters).
    pub admin_password: String,
    /// Name of the organisation running this instance.
    pub organization_name: String,
}

/// Answer of `POST /setup`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SetupResult {
    /// The master tenant id.
    pub tenant_id: Uuid,
    /// The administrator's user id.
    pub admin_user_id: Uuid,
    /// The master issuer.
    pub issuer: String,
    /// Public client to obtain admin tokens with the password grant.
    pub client_id: String,
}

/// `GET /setup/status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SetupStatus {
    /// Whether `POST /setup` is still needed.
    pub setup_required: bool,
    /// Server version.
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The master issuer.
    pub issuer: String,
    /// The master tenant's name, once set up.
    pub organization_name: Option<String>,
}

/// Whether the instance still needs setup.
pub async fn setup_required(ctx: &Ctx) -> Result<bool> {
    Ok(!ctx.store.tenant_exists(MASTER_TENANT_ID).await?)
}

/// Details for `GET /setup/status`.
pub async fn status(ctx: &Ctx) -> Result<SetupStatus> {
    let org = match ctx.store.get_tenant(MASTER_TENANT_ID).await {
        Ok(t) => Some(t.name),
        Err(crate::store::StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(SetupStatus {
        setup_required: org.is_none(),
        version: env!("CARGO_PKG_VERSION").into(),
        database: ctx.store.backend().into(),
        issuer: ctx.config.external_url.clone(),
        organization_name: org,
    })
}

/// Creates the master tenant, the first admin with the system admin role,
/// and `admin-cli`. Succeeds once; afterwards answers `Conflict`. Two racing
/// calls cannot both succeed: the master tenant's primary key admits one.
pub async fn run(ctx: &Ctx, actor: &Actor, req: SetupRequest) -> Result<SetupResult> {
    let mut v = Validator::new();
    v.email("admin_email", &req.admin_email);
    v.password("admin_password", &req.admin_password);
    v.text("organization_name", &req.organization_name, 200);
    v.finish()?;
    if !setup_required(ctx).await? {
        return Err(Error::Conflict("setup has already been completed".into()));
    }
    let hash = ctx.passwords.hash(req.admin_password).await?;
    let now = Timestamp::now();
    let tenant = Tenant {
        id: MASTER_TENANT_ID,
        name: req.organization_name.trim().into(),
        slug: MASTER_TENANT_SLUG.into(),
        display_name: None,
        enabled: true,
        settings: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let admin = NewUser {
        id: Uuid::now_v7(),
        tenant_id: MASTER_TENANT_ID,
        email: req.admin_email.trim().into(),
        password_hash: Some(hash),
        profile: UserProfile::default(),
        email_verified: true,
        enabled: true,
        is_service_account: false,
        attributes: json!({}),
    };
    let admin_id = admin.id;
    let ev = event(
        MASTER_TENANT_ID,
        actor,
        "setup.complete",
        "tenant",
        MASTER_TENANT_ID,
        json!({
            "organization_name": tenant.name, "admin_email": admin.email, "admin_user_id": admin_id,
        }),
    );
    let keys = super::initial_keys(ctx, tenant.id).await?;
    let p = provisioning(tenant, Some(admin), keys);
    ctx.store
        .provision_tenant(&p, &ev)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                Error::Conflict("setup has already been completed".into())
            }
            other => other.into(),
        })?;
    Ok(SetupResult {
        tenant_id: MASTER_TENANT_ID,
        admin_user_id: admin_id,
        issuer: ctx.config.external_url.clone(),
        client_id: super::ADMIN_CLI_CLIENT_ID.into(),
    })
}
