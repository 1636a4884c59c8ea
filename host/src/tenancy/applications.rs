//! Applications: logical services inside a tenant.

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::identity::validate::Validator;
use crate::model::{Actor, Application, Page, PageRequest};
use crate::time::Timestamp;

/// Body of create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    /// Unique name in the tenant.
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

/// Body of update; absent fields stay unchanged.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApplication {
    /// Name.
    pub name: Option<String>,
    /// Description; `null` clears it.
    #[serde(default, with = "crate::identity::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Creates an application.
pub async fn create(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    req: CreateApplication,
) -> Result<Application> {
    let mut v = Validator::new();
    v.text("name", &req.name, 200);
    v.optional_text("description", req.description.as_deref(), 2000);
    v.finish()?;
    let now = Timestamp::now();
    let app = Application {
        id: Uuid::now_v7(),
        tenant_id,
        name: req.name.trim().into(),
        description: req.description,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        tenant_id,
        actor,
        "application.create",
        "application",
        app.id,
        json!({ "name": app.name }),
    );
    Ok(ctx.store.create_application(&app, &ev).await?)
}

/// Lists applications.
pub async fn list(ctx: &Ctx, tenant_id: Uuid, page: PageRequest) -> Result<Page<Application>> {
    Ok(ctx.store.list_applications(tenant_id, page).await?)
}

/// One application.
pub async fn get(ctx: &Ctx, tenant_id: Uuid, id: Uuid) -> Result<Application> {
    ctx.store
        .get_application(tenant_id, id)
        .await
        .map_err(Error::from_store("application"))
}

/// Updates an application.
pub async fn update(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    id: Uuid,
    req: UpdateApplication,
) -> Result<Application> {
    let mut v = Validator::new();
    if let Some(n) = &req.name {
        v.text("name", n, 200);
    }
    if let Some(Some(d)) = &req.description {
        v.optional_text("description", Some(d), 2000);
    }
    v.finish()?;
    let ev = event(
        tenant_id,
        actor,
        "application.update",
        "application",
        id,
        json!({ "name": req.name, "description": req.description }),
    );
    ctx.store
        .update_application(
            tenant_id,
            id,
            req.name.map(|n| n.trim().to_string()),
            req.description,
            &ev,
        )
        .await
        .map_err(Error::from_store("application"))
}

/// Soft-deletes an application that owns nothing.
pub async fn delete(ctx: &Ctx, actor: &Actor, tenant_id: Uuid, id: Uuid) -> Result<()> {
    let ev = event(
        tenant_id,
        actor,
        "application.delete",
        "application",
        id,
        json!({}),
    );
    ctx.store
        .delete_application(tenant_id, id, &ev)
        .await
        .map_err(Error::from_store("application"))
}
