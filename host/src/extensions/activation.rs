//! A tenant's activations: enable/disable, configuration validated against
//! the plugin's JSON Schema, limit overrides within the operator's maxima,
//! order within a category, and failure mode.
//!
//! Security decisions:
//! - Configuration properties the schema marks `writeOnly` are secrets:
//!   they are sealed with the master key (AES-256-GCM, bound to tenant and
//!   plugin) in `secrets_enc`, never stored in `config`, never returned and
//!   never written to the audit log (only their names are). A PUT that omits
//!   a secret keeps the stored value, so a form need not re-send secrets; a
//!   secret set to `null` is removed.
//! - The configuration is validated as the plugin will see it (secrets
//!   included) before anything is stored.
//! - `failure_mode: open` applies only to categories that may fail open
//!   (token customization, observers); security decisions stay closed.
//! - encryption-provider: at most one enabled per tenant (the contract's
//!   rule; a second is refused with 409), so "the tenant's provider" is
//!   never ambiguous. Before an activation is disabled or deleted, every
//!   live signing key that plugin encrypted is re-wrapped under the master
//!   key (`oauth::keys::unwrap_from_provider`), under the key ring's
//!   maintenance lock so no rotation seals a new key with it meanwhile. If
//!   that fails — the plugin is unavailable (503) or refuses (409) — the
//!   activation is left exactly as it was: disabling a provider must never
//!   leave keys nobody can decrypt. Enabling a provider changes no stored
//!   key: new keys use it, existing ones move with
//!   `POST /api/v1/tenants/{tid}/keys/reencrypt`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::error::{Error, FieldError, Result};
use crate::model::Actor;
use crate::oauth::keys;
use crate::plugins::limits::{LimitOverrides, Limits};
use crate::plugins::manifest::{Category, FailureMode, PluginManifest};
use crate::plugins::runtime::ActivationSpec;
use crate::store::TenantPluginRecord;
use crate::time::Timestamp;

/// Body of `PUT /api/v1/tenants/{tid}/plugins/{plugin_id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutActivation {
    /// Whether the plugin runs for this tenant (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Configuration (an object matching the plugin's schema). Omitted
    /// secrets keep their stored value; `null` removes one.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<Value>,
    /// Limit overrides (within the operator's maxima).
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Order among the tenant's plugins of the same category (ascending).
    #[serde(default)]
    pub position: i64,
    /// `open` or `closed`; only categories that may fail open accept `open`.
    #[serde(default)]
    pub failure_mode: Option<FailureMode>,
}

fn yes() -> bool {
    true
}

/// Live state of an activation on this node.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivationStatus {
    /// Loaded and callable on this node.
    pub loaded: bool,
    /// The circuit breaker is open.
    pub breaker_open: bool,
    /// Calls since start-up.
    pub calls: u64,
    /// Failed calls since start-up.
    pub failures: u64,
    /// Failures by code.
    pub failures_by_code: BTreeMap<String, u64>,
    /// Warm instances now.
    pub warm_instances: usize,
    /// Instances created since start-up.
    pub instantiations: u64,
}

/// An activation as the admin API shows it (secrets never included).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivationView {
    /// The plugin.
    pub plugin_id: String,
    /// Its version.
    pub plugin_version: String,
    /// Its categories.
    pub categories: Vec<Category>,
    /// Enabled.
    pub enabled: bool,
    /// Non-secret configuration.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Names of secret properties that are set.
    pub secrets_set: Vec<String>,
    /// Limit overrides.
    pub limits: LimitOverrides,
    /// Effective limits per category.
    pub effective_limits: BTreeMap<Category, Limits>,
    /// Order within a category.
    pub position: i64,
    /// Chosen failure mode, if any.
    pub failure_mode: Option<FailureMode>,
    /// Live state.
    pub status: ActivationStatus,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The configuration schema of an active plugin, for forms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveSchema {
    /// The plugin.
    pub plugin_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its version.
    pub version: String,
    /// Its categories.
    pub categories: Vec<Category>,
    /// JSON Schema of the configuration.
    #[schema(value_type = Object)]
    pub config_schema: Value,
    /// Secret properties (write-only).
    pub secret_fields: Vec<String>,
    /// Which secrets are set.
    pub secrets_set: Vec<String>,
}

fn seal_context(tenant: Uuid, plugin: &str) -> String {
    format!("plugin-secrets:{tenant}:{plugin}")
}

fn open_secrets(ctx: &Ctx, rec: &TenantPluginRecord) -> Result<Map<String, Value>> {
    let Some(sealed) = &rec.secrets_enc else {
        return Ok(Map::new());
    };
    let plain = ctx
        .master
        .open(sealed, &seal_context(rec.tenant_id, &rec.plugin_id))
        .map_err(|e| Error::Internal(format!("plugin secrets of {}: {e}", rec.plugin_id)))?;
    serde_json::from_slice(&plain).map_err(|e| Error::Internal(format!("plugin secrets: {e}")))
}

/// The configuration the plugin sees: stored config plus secrets.
pub fn full_config(ctx: &Ctx, rec: &TenantPluginRecord) -> Result<Value> {
    let mut config = rec.config.0.as_object().cloned().unwrap_or_default();
    config.extend(open_secrets(ctx, rec)?);
    Ok(Value::Object(config))
}

async fn manifest_of(ctx: &Ctx, plugin_id: &str) -> Result<(PluginManifest, String)> {
    let rec = ctx
        .store
        .get_plugin(plugin_id)
        .await
        .map_err(Error::from_store("plugin"))?;
    let m = serde_json::from_value(rec.manifest.0)
        .map_err(|e| Error::Internal(format!("stored manifest: {e}")))?;
    Ok((m, rec.version))
}

fn view(
    ctx: &Ctx,
    rec: TenantPluginRecord,
    m: &PluginManifest,
    version: String,
) -> Result<ActivationView> {
    let secrets_set = open_secrets(ctx, &rec)?.keys().cloned().collect();
    let limits: LimitOverrides = serde_json::from_value(rec.limits.0.clone()).unwrap_or_default();
    let overrides = m.limits.then(&limits);
    let maxima = ctx.plugins.settings().maxima;
    let effective_limits = m
        .categories
        .iter()
        .map(|c| (*c, Limits::default_for(*c).with(&overrides, &maxima)))
        .collect();
    let live = ctx.plugins.tenant(rec.tenant_id).and_then(|t| {
        t.all()
            .into_iter()
            .find(|a| a.context.plugin_id == rec.plugin_id)
    });
    let status = match &live {
        Some(a) => ActivationStatus {
            loaded: true,
            breaker_open: a.breaker.is_open(),
            calls: a.stats.calls.load(std::sync::atomic::Ordering::Relaxed),
            failures: a.stats.failures.load(std::sync::atomic::Ordering::Relaxed),
            failures_by_code: a
                .stats
                .by_code
                .lock()
                .expect("stats lock")
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            warm_instances: a.warm_instances(),
            instantiations: a
                .stats
                .instantiations
                .load(std::sync::atomic::Ordering::Relaxed),
        },
        None => ActivationStatus {
            loaded: false,
            breaker_open: false,
            calls: 0,
            failures: 0,
            failures_by_code: BTreeMap::new(),
            warm_instances: 0,
            instantiations: 0,
        },
    };
    Ok(ActivationView {
        plugin_id: rec.plugin_id,
        plugin_version: version,
        categories: m.categories.clone(),
        enabled: rec.enabled,
        config: rec.config.0,
        secrets_set,
        limits,
        effective_limits,
        position: rec.position,
        failure_mode: rec.failure_mode.as_deref().and_then(|f| match f {
            "open" => Some(FailureMode::Open),
            "closed" => Some(FailureMode::Closed),
            _ => None,
        }),
        status,
        created_at: rec.created_at,
        updated_at: rec.updated_at,
    })
}

/// A tenant's activations.
pub async fn list(ctx: &Ctx, tenant: Uuid) -> Result<Vec<ActivationView>> {
    let mut out = Vec::new();
    for rec in ctx.store.tenant_plugins(tenant).await? {
        let (m, version) = manifest_of(ctx, &rec.plugin_id).await?;
        out.push(view(ctx, rec, &m, version)?);
    }
    Ok(out)
}

/// Schemas of the tenant's enabled plugins.
pub async fn active_schemas(ctx: &Ctx, tenant: Uuid) -> Result<Vec<ActiveSchema>> {
    let mut out = Vec::new();
    for rec in ctx.store.tenant_plugins(tenant).await? {
        if !rec.enabled {
            continue;
        }
        let (m, version) = manifest_of(ctx, &rec.plugin_id).await?;
        out.push(ActiveSchema {
            plugin_id: rec.plugin_id.clone(),
            name: m.name.clone(),
            version,
            categories: m.categories.clone(),
            secret_fields: m.secret_fields(),
            secrets_set: open_secrets(ctx, &rec)?.keys().cloned().collect(),
            config_schema: m.config_schema,
        });
    }
    Ok(out)
}

/// Creates or replaces a tenant's activation of a plugin.
pub async fn put(
    ctx: &Ctx,
    actor: &Actor,
    tenant: Uuid,
    plugin_id: &str,
    req: PutActivation,
) -> Result<ActivationView> {
    let (m, version) = manifest_of(ctx, plugin_id).await?;
    let existing = ctx
        .store
        .tenant_plugins(tenant)
        .await?
        .into_iter()
        .find(|r| r.plugin_id == plugin_id);
    let mut errors = Vec::new();
    let incoming = match req.config {
        None => Map::new(),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(Error::field("config", "must be a JSON object")),
    };
    let secret_fields = m.secret_fields();
    let mut secrets = match &existing {
        Some(r) => open_secrets(ctx, r)?,
        None => Map::new(),
    };
    let mut config = Map::new();
    for (k, v) in incoming {
        if secret_fields.contains(&k) {
            if v.is_null() {
                secrets.remove(&k);
            } else {
                secrets.insert(k, v);
            }
        } else {
            config.insert(k, v);
        }
    }
    let mut full = config.clone();
    full.extend(secrets.clone());
    let full = Value::Object(full);
    let validator = jsonschema::validator_for(&m.config_schema)
        .map_err(|e| Error::Internal(format!("schema of {plugin_id}: {e}")))?;
    for e in validator.iter_errors(&full) {
        let path = e.instance_path().to_string();
        let in_secret = secret_fields
            .iter()
            .any(|s| path == format!("/{s}") || path.starts_with(&format!("/{s}/")));
        // Never echo a secret's value: errors inside a secret say so only,
        // and errors at the root (anyOf, not, enum, ...), which may quote
        // the whole object, give the keyword only. Property names are not
        // secret, so unknown properties are named.
        let message =
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                e.kind()
            {
                format!("unknown properties: {}", unexpected.join(", "))
            } else if in_secret {
                "invalid value for a secret property".into()
            } else if path.is_empty() && !secret_fields.is_empty() {
                format!(
                    "the configuration does not satisfy the schema ({})",
                    e.kind().keyword()
                )
            } else {
                e.to_string()
            };
        errors.push(FieldError {
            field: format!("config{path}"),
            message,
        });
    }
    if let Err(e) = req.limits.check(&ctx.plugins.settings().maxima) {
        errors.push(FieldError {
            field: "limits".into(),
            message: e,
        });
    }
    // `open` applies to the plugin's categories that may fail open; the
    // others (security decisions) stay closed whatever is chosen.
    if req.failure_mode == Some(FailureMode::Open)
        && !m.categories.iter().any(|c| c.may_fail_open())
    {
        errors.push(FieldError {
            field: "failure_mode".into(),
            message: format!(
                "{} plugins always fail closed",
                m.categories
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    if req.enabled && m.categories.contains(&Category::EncryptionProvider) {
        for other in ctx.store.tenant_plugins(tenant).await? {
            if other.plugin_id == plugin_id || !other.enabled {
                continue;
            }
            let (om, _) = manifest_of(ctx, &other.plugin_id).await?;
            if om.categories.contains(&Category::EncryptionProvider) {
                return Err(Error::Conflict(format!(
                    "encryption-provider {} is already active for this tenant; only one may be \
                     (disable it first: its keys are re-wrapped under the master key)",
                    other.plugin_id
                )));
            }
        }
    }
    // Disabling: keys this plugin encrypted go back under the master key
    // first; if that fails nothing below runs (see the module docs). The
    // lock is held until the runtime has the new activation.
    let maintenance = if req.enabled {
        None
    } else {
        let held = ctx.keys.maintenance().await;
        keys::unwrap_from_provider(
            ctx,
            &held,
            actor,
            tenant,
            plugin_id,
            "plugin.activation.disable",
        )
        .await?;
        Some(held)
    };
    let now = Timestamp::now();
    let secrets_enc = (!secrets.is_empty()).then(|| {
        ctx.master.seal(
            Value::Object(secrets.clone()).to_string().as_bytes(),
            &seal_context(tenant, plugin_id),
        )
    });
    let rec = TenantPluginRecord {
        tenant_id: tenant,
        plugin_id: plugin_id.to_string(),
        enabled: req.enabled,
        config: sqlx::types::Json(Value::Object(config.clone())),
        secrets_enc,
        limits: sqlx::types::Json(serde_json::to_value(req.limits).unwrap_or_default()),
        failure_mode: req.failure_mode.map(|f| match f {
            FailureMode::Open => "open".to_string(),
            FailureMode::Closed => "closed".to_string(),
        }),
        position: req.position,
        created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(now),
        updated_at: now,
    };
    let ev = event(
        tenant,
        actor,
        if existing.is_some() {
            "plugin.activation.update"
        } else {
            "plugin.activation.create"
        },
        "plugin",
        plugin_id,
        json!({
            "enabled": req.enabled,
            "config": Value::Object(config),
            "secrets_set": secrets.keys().collect::<Vec<_>>(),
            "limits": req.limits,
            "position": req.position,
            "failure_mode": req.failure_mode,
        }),
    );
    ctx.store.upsert_tenant_plugin(&rec, &ev).await?;
    reload_tenant(ctx, tenant).await?;
    drop(maintenance);
    view(ctx, rec, &m, version)
}

/// Removes a tenant's activation. Signing keys the plugin encrypted are
/// first re-wrapped under the master key; if that fails, nothing is removed.
pub async fn delete(ctx: &Ctx, actor: &Actor, tenant: Uuid, plugin_id: &str) -> Result<()> {
    if !ctx
        .store
        .tenant_plugins(tenant)
        .await?
        .iter()
        .any(|r| r.plugin_id == plugin_id)
    {
        return Err(Error::NotFound("plugin activation"));
    }
    let held = ctx.keys.maintenance().await;
    keys::unwrap_from_provider(
        ctx,
        &held,
        actor,
        tenant,
        plugin_id,
        "plugin.activation.delete",
    )
    .await?;
    let ev = event(
        tenant,
        actor,
        "plugin.activation.delete",
        "plugin",
        plugin_id,
        json!({}),
    );
    if !ctx
        .store
        .delete_tenant_plugin(tenant, plugin_id, &ev)
        .await?
    {
        return Err(Error::NotFound("plugin activation"));
    }
    let reloaded = reload_tenant(ctx, tenant).await;
    drop(held);
    reloaded
}

/// The runtime spec of a stored activation.
pub fn spec(ctx: &Ctx, rec: &TenantPluginRecord) -> Result<ActivationSpec> {
    Ok(ActivationSpec {
        plugin_id: rec.plugin_id.clone(),
        enabled: rec.enabled,
        config: full_config(ctx, rec)?,
        limits: serde_json::from_value(rec.limits.0.clone()).unwrap_or_default(),
        failure_mode: match rec.failure_mode.as_deref() {
            Some("open") => Some(FailureMode::Open),
            Some("closed") => Some(FailureMode::Closed),
            _ => None,
        },
        position: rec.position,
    })
}

/// Serialises `reload_tenant`: a reload reads the database and then
/// replaces the runtime's activations, so two reloads interleaving (an
/// admin change and the multi-node sync, say) could otherwise install the
/// older read last.
static RELOADS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Loads a tenant's stored activations into the runtime.
pub async fn reload_tenant(ctx: &Ctx, tenant: Uuid) -> Result<()> {
    let _one_at_a_time = RELOADS.lock().await;
    let specs = ctx
        .store
        .tenant_plugins(tenant)
        .await?
        .iter()
        .map(|r| spec(ctx, r))
        .collect::<Result<Vec<_>>>()?;
    ctx.plugins.set_tenant(tenant, specs);
    Ok(())
}
