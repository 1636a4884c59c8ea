//! Installing, upgrading and removing plugins.
//!
//! Security decisions:
//! - The component's SHA-256 must equal the manifest's `sha256`: what an
//!   operator reviewed is what runs. The bytes are stored in the database,
//!   so every node loads the same component, and re-verified on load.
//! - A component is compiled, linked against the host's imports and checked
//!   to export exactly its declared categories before anything is stored:
//!   a plugin that cannot run is refused at install time, not at first call.
//! - Native plugins (`kind: native`) are trusted code running unsandboxed
//!   in the server process: refused unless the operator opted in with
//!   `PLUGIN_ALLOW_NATIVE=true`. A library is loaded and checked (stabby's
//!   layout report, its own manifest against `manifest.json`) before
//!   anything is stored, like a component is compiled and linked.
//! - An upgrade whose configuration schema rejects a tenant's existing
//!   configuration is refused (naming the tenants), so an upgrade never
//!   leaves an activation with configuration its plugin cannot read.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, FieldError, Result};
use crate::model::{Actor, MASTER_TENANT_ID};
use crate::plugins::limits::Limits;
use crate::plugins::manifest::{CapabilityRequest, Category, PluginKind, PluginManifest};
use crate::store::PluginRecord;
use crate::time::Timestamp;

/// Largest component accepted, bytes.
pub const MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;

/// A plugin to install: its manifest and component.
#[derive(Debug, Clone)]
pub struct UploadedPlugin {
    /// The manifest (JSON).
    pub manifest: serde_json::Value,
    /// The component bytes.
    pub component: Vec<u8>,
}

/// Capabilities the host actually grants a plugin.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantedCapabilities {
    /// Key-value store.
    pub key_value: bool,
    /// Hosts outbound HTTP may reach (requested and allowed by the operator).
    pub outbound_http: Vec<String>,
    /// Private `/data` directory.
    pub files: bool,
}

/// An installed plugin as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginView {
    /// Plugin id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Version.
    pub version: String,
    /// Contract version.
    pub contract: String,
    /// `wasm` or `native`.
    pub kind: PluginKind,
    /// Whether the plugin runs in the WebAssembly sandbox. `false` for
    /// native plugins: trusted code running inside the server process with
    /// its rights and memory (only if the operator set
    /// `PLUGIN_ALLOW_NATIVE=true`).
    pub sandboxed: bool,
    /// Categories implemented.
    pub categories: Vec<Category>,
    /// Description.
    pub description: Option<String>,
    /// Requested capabilities.
    pub capabilities: CapabilityRequest,
    /// Granted capabilities.
    pub granted: GrantedCapabilities,
    /// Configuration schema.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
    /// Effective default limits per category.
    pub limits: std::collections::BTreeMap<Category, Limits>,
    /// SHA-256 of the component.
    pub sha256: String,
    /// `directory` or `api`.
    pub source: String,
    /// Whether it is loaded in this node's runtime.
    pub loaded: bool,
    /// Tenants with an activation.
    pub tenants: usize,
    /// First installed.
    pub installed_at: Timestamp,
    /// Last replaced.
    pub updated_at: Timestamp,
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::field(field, message)
}

/// A one-line description of a domain error, with field messages.
pub fn describe(e: &Error) -> String {
    match e {
        Error::Validation(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Parses and checks a manifest.
pub fn parse_manifest(v: serde_json::Value) -> Result<PluginManifest> {
    let m: PluginManifest =
        serde_json::from_value(v).map_err(|e| invalid("manifest", e.to_string()))?;
    m.validate().map_err(|e| invalid("manifest", e.0))?;
    jsonschema::validator_for(&m.config_schema).map_err(|e| {
        invalid(
            "manifest.config_schema",
            format!("not a usable JSON Schema: {e}"),
        )
    })?;
    Ok(m)
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds the API view of a record.
pub async fn view(ctx: &Ctx, rec: PluginRecord) -> Result<PluginView> {
    let m: PluginManifest = serde_json::from_value(rec.manifest.0.clone())
        .map_err(|e| Error::Internal(format!("stored manifest of {}: {e}", rec.id)))?;
    let tenants = ctx.store.plugin_tenants(&rec.id).await?.len();
    let rt = &ctx.plugins;
    let granted = GrantedCapabilities {
        key_value: m.capabilities.key_value,
        outbound_http: m
            .capabilities
            .outbound_http
            .iter()
            .filter(|h| rt.operator_allows_host(h))
            .cloned()
            .collect(),
        files: m.capabilities.files && rt.settings().files_root.is_some(),
    };
    let limits = m
        .categories
        .iter()
        .map(|c| {
            (
                *c,
                Limits::default_for(*c).with(&m.limits, &rt.settings().maxima),
            )
        })
        .collect();
    let loaded = rt.plugin(&rec.id).is_some_and(|p| p.sha256 == rec.sha256);
    Ok(PluginView {
        id: rec.id,
        name: m.name,
        version: rec.version,
        contract: m.contract,
        kind: m.kind,
        sandboxed: m.kind == PluginKind::Wasm,
        categories: m.categories,
        description: m.description,
        capabilities: m.capabilities,
        granted,
        config_schema: m.config_schema,
        limits,
        sha256: rec.sha256,
        source: rec.source,
        loaded,
        tenants,
        installed_at: rec.installed_at,
        updated_at: rec.updated_at,
    })
}

/// Every installed plugin.
pub async fn list(ctx: &Ctx) -> Result<Vec<PluginView>> {
    let mut out = Vec::new();
    for rec in ctx.store.list_plugins().await? {
        out.push(view(ctx, rec).await?);
    }
    Ok(out)
}

/// One installed plugin.
pub async fn get(ctx: &Ctx, id: &str) -> Result<PluginView> {
    let rec = ctx
        .store
        .get_plugin(id)
        .await
        .map_err(Error::from_store("plugin"))?;
    view(ctx, rec).await
}

/// Installs or upgrades a plugin; `source` is `api` or `directory`.
/// Returns the view and whether the plugin was already installed (an
/// upgrade, or the same bytes and manifest again, which changes nothing).
pub async fn install(
    ctx: &Ctx,
    actor: &Actor,
    upload: UploadedPlugin,
    source: &str,
) -> Result<(PluginView, bool)> {
    let manifest = parse_manifest(upload.manifest)?;
    if manifest.kind == PluginKind::Native && !ctx.plugins.settings().allow_native {
        return Err(invalid(
            "manifest.kind",
            crate::plugins::runtime::NATIVE_REFUSED,
        ));
    }
    if upload.component.is_empty() || upload.component.len() > MAX_COMPONENT_BYTES {
        return Err(invalid(
            "component",
            format!("must be 1 to {MAX_COMPONENT_BYTES} bytes"),
        ));
    }
    let actual = sha256_hex(&upload.component);
    match &manifest.sha256 {
        None => {
            return Err(invalid(
                "manifest.sha256",
                "required: the SHA-256 (hex) of the component",
            ));
        }
        Some(expected) if !expected.eq_ignore_ascii_case(&actual) => {
            return Err(invalid(
                "manifest.sha256",
                format!("does not match the component (its SHA-256 is {actual})"),
            ));
        }
        Some(_) => {}
    }
    let previous = match ctx.store.get_plugin(&manifest.id).await {
        Ok(p) => Some(p),
        Err(crate::store::StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(p) = &previous
        && p.sha256 == actual
        && p.manifest.0 == serde_json::to_value(&manifest).unwrap_or_default()
    {
        // Same bytes and manifest: nothing to do (idempotent re-install).
        if ctx.plugins.plugin(&manifest.id).is_none() {
            let loaded = ctx
                .plugins
                .prepare(manifest.clone(), actual.clone(), Arc::new(upload.component))
                .await
                .map_err(|e| invalid("component", format!("{e:#}")))?;
            ctx.plugins.install(loaded);
        }
        return Ok((view(ctx, p.clone()).await?, true));
    }
    if previous.is_some() {
        check_existing_configs(ctx, &manifest).await?;
    }
    let loaded = ctx
        .plugins
        .prepare(
            manifest.clone(),
            actual.clone(),
            Arc::new(upload.component.clone()),
        )
        .await
        .map_err(|e| invalid("component", format!("{e:#}")))?;
    let now = Timestamp::now();
    let rec = PluginRecord {
        id: manifest.id.clone(),
        version: manifest.version.clone(),
        manifest: sqlx::types::Json(
            serde_json::to_value(&manifest).map_err(|e| Error::Internal(e.to_string()))?,
        ),
        sha256: actual.clone(),
        source: source.to_string(),
        installed_at: previous.as_ref().map(|p| p.installed_at).unwrap_or(now),
        updated_at: now,
    };
    let upgraded = previous.is_some();
    let action = if upgraded {
        "plugin.upgrade"
    } else {
        "plugin.install"
    };
    let ev = event(
        MASTER_TENANT_ID,
        actor,
        action,
        "plugin",
        &manifest.id,
        json!({
            "version": manifest.version,
            "previous_version": previous.as_ref().map(|p| p.version.clone()),
            "sha256": actual,
            "categories": manifest.categories,
            "source": source,
        }),
    );
    ctx.store
        .upsert_plugin(&rec, &upload.component, &ev)
        .await?;
    ctx.plugins.install(loaded);
    tracing::info!(plugin = %manifest.id, version = %manifest.version, kind = ?manifest.kind, upgraded, "plugin installed");
    Ok((view(ctx, rec).await?, upgraded))
}

/// Refuses an upgrade whose schema rejects a tenant's current configuration.
async fn check_existing_configs(ctx: &Ctx, manifest: &PluginManifest) -> Result<()> {
    let validator = jsonschema::validator_for(&manifest.config_schema)
        .map_err(|e| invalid("manifest.config_schema", e.to_string()))?;
    let mut errors = Vec::new();
    for rec in ctx.store.all_tenant_plugins().await? {
        if rec.plugin_id != manifest.id {
            continue;
        }
        let config = super::activation::full_config(ctx, &rec)?;
        if let Some(e) = validator.iter_errors(&config).next() {
            // Path and keyword only: the message could quote a secret value.
            errors.push(FieldError {
                field: format!("tenants[{}]", rec.tenant_id),
                message: format!(
                    "the new configuration schema rejects this tenant's configuration at {:?} ({})",
                    e.instance_path().to_string(),
                    e.kind().keyword()
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}

/// Removes a plugin. With activations it refuses (409) unless `force`,
/// which removes them too.
pub async fn remove(ctx: &Ctx, actor: &Actor, id: &str, force: bool) -> Result<()> {
    let rec = ctx
        .store
        .get_plugin(id)
        .await
        .map_err(Error::from_store("plugin"))?;
    let tenants: Vec<Uuid> = ctx.store.plugin_tenants(id).await?;
    if !tenants.is_empty() && !force {
        return Err(Error::Conflict(format!(
            "plugin {id} is activated by {} tenant(s); deactivate it first or remove with ?force=true",
            tenants.len()
        )));
    }
    // An encryption-provider going away takes its keys with it unless they
    // are re-wrapped under the master key first; if that fails for any
    // tenant, nothing is removed (see extensions/activation.rs).
    let held = ctx.keys.maintenance().await;
    if rec_is_encryption_provider(&rec) {
        for t in &tenants {
            crate::oauth::keys::unwrap_from_provider(ctx, &held, actor, *t, id, "plugin.remove")
                .await?;
        }
    }
    let ev = event(
        MASTER_TENANT_ID,
        actor,
        "plugin.remove",
        "plugin",
        id,
        json!({ "version": rec.version, "sha256": rec.sha256, "activations_removed": tenants.len() }),
    );
    ctx.store.delete_plugin(id, &ev).await?;
    ctx.plugins.remove(id);
    for t in tenants {
        super::activation::reload_tenant(ctx, t).await?;
    }
    drop(held);
    Ok(())
}

/// Whether an installed plugin's manifest declares the encryption-provider category.
fn rec_is_encryption_provider(rec: &crate::store::PluginRecord) -> bool {
    rec.manifest.0["categories"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c == "encryption-provider"))
}
