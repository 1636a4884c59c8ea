//! `/api/v1/plugins` (installed plugins, instance-wide) and
//! `/api/v1/tenants/{tenant_id}/plugins` (a tenant's activations).

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::context::Ctx;
use crate::error::Error;
use crate::extensions::activation::{self, ActiveSchema};
use crate::extensions::install::{self, MAX_COMPONENT_BYTES};
use crate::extensions::{ActivationView, PluginView, PutActivation, UploadedPlugin};

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(install_plugin))
                .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES + 1024 * 1024)),
        )
        .routes(routes!(get_plugin, remove_plugin))
        .routes(routes!(list_activations))
        .routes(routes!(active_schemas))
        .routes(routes!(put_activation, delete_activation))
}

/// The upload form of `POST /api/v1/plugins`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct PluginUpload {
    /// The manifest (JSON), including `sha256` of the component.
    manifest: String,
    /// The component (application/wasm).
    #[schema(format = Binary, value_type = String)]
    component: Vec<u8>,
}

/// Installed plugins. Any administrator may list them (to activate one);
/// only the instance operator installs or removes.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins",
    responses((status = 200, body = Vec<PluginView>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
async fn list_plugins(State(ctx): State<Ctx>, auth: Auth) -> ApiResult<Json<Vec<PluginView>>> {
    authz::require_permission(&ctx, &auth.principal, "plugins", "read").await?;
    Ok(Json(install::list(&ctx).await?))
}

/// One installed plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{plugin_id}", tag = "plugins",
    params(("plugin_id" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn get_plugin(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PluginView>> {
    authz::require_permission(&ctx, &auth.principal, "plugins", "read").await?;
    Ok(Json(install::get(&ctx, &id).await?))
}

/// Installs or upgrades a plugin: `multipart/form-data` with a `manifest`
/// part (JSON, whose `sha256` must match) and a `component` part (the
/// WebAssembly component, or for `kind: native` the plugin's shared
/// library). Takes effect at once, no restart. 201 when new, 200 when it
/// replaced an installed version.
///
/// Native plugins are trusted code: they run unsandboxed inside the server
/// process, with its rights and memory (no fuel, memory or file-system
/// limits; deadlines, size limits, failure policies and circuit breakers
/// still apply). They are refused (422 on `manifest.kind`) unless the
/// operator started the server with `PLUGIN_ALLOW_NATIVE=true`, and a
/// library built against another ABI, contract, category list or version
/// than its manifest says is refused here, before anything is stored.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins",
    request_body(content = PluginUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = PluginView), (status = 200, body = PluginView),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
async fn install_plugin(
    State(ctx): State<Ctx>,
    auth: Auth,
    mut form: Multipart,
) -> ApiResult<(StatusCode, Json<PluginView>)> {
    authz::authorize_instance(&ctx, &auth.principal, "plugins", "install").await?;
    let bad = |m: String| Error::field("body", m);
    let mut manifest = None;
    let mut component = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(bad(format!("malformed multipart body: {}", e.body_text())).into());
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| bad(format!("reading part {name:?}: {}", e.body_text())))?;
        match name.as_str() {
            "manifest" => {
                manifest = Some(
                    serde_json::from_slice::<serde_json::Value>(&bytes)
                        .map_err(|e| Error::field("manifest", format!("not JSON: {e}")))?,
                )
            }
            "component" => component = Some(bytes.to_vec()),
            other => {
                return Err(bad(format!(
                    "unexpected part {other:?}; expected manifest and component"
                ))
                .into());
            }
        }
    }
    let (Some(manifest), Some(component)) = (manifest, component) else {
        return Err(bad("both a manifest and a component part are required".into()).into());
    };
    let (view, upgraded) = install::install(
        &ctx,
        &auth.actor(),
        UploadedPlugin {
            manifest,
            component,
        },
        "api",
    )
    .await?;
    let status = if upgraded {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)))
}

/// Query of `DELETE /api/v1/plugins/{plugin_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct RemoveQuery {
    /// Also remove every tenant's activation (otherwise 409 while any exists).
    #[serde(default)]
    force: bool,
}

/// Removes a plugin (and, with `force=true`, its activations and key-value
/// data). Takes effect at once.
#[utoipa::path(delete, path = "/api/v1/plugins/{plugin_id}", tag = "plugins",
    params(("plugin_id" = String, Path), RemoveQuery),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
async fn remove_plugin(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RemoveQuery>,
) -> ApiResult<StatusCode> {
    authz::authorize_instance(&ctx, &auth.principal, "plugins", "install").await?;
    install::remove(&ctx, &auth.actor(), &id, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's plugin activations, with live status (calls, failures,
/// circuit breaker). Secret configuration is never returned.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/plugins", tag = "plugins",
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = Vec<ActivationView>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn list_activations(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<ActivationView>>> {
    authz::authorize(&ctx, &auth.principal, tid, "plugins", "read").await?;
    Ok(Json(activation::list(&ctx, tid).await?))
}

/// Configuration schemas of the tenant's enabled plugins, for rendering
/// configuration forms.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant_id}/plugins/active-schemas", tag = "plugins",
    params(("tenant_id" = Uuid, Path)),
    responses((status = 200, body = Vec<ActiveSchema>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
async fn active_schemas(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath(tid): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<ActiveSchema>>> {
    authz::authorize(&ctx, &auth.principal, tid, "plugins", "read").await?;
    Ok(Json(activation::active_schemas(&ctx, tid).await?))
}

/// Activates (or reconfigures) a plugin for the tenant: enabled flag,
/// configuration validated against the plugin's schema (secrets sealed),
/// limit overrides, order, failure mode. Takes effect at once. Disabling an
/// encryption-provider first re-wraps the signing keys it encrypted under
/// the master key: 503 (provider unavailable) or 409 (provider refuses, or
/// a second provider would be enabled) change nothing.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant_id}/plugins/{plugin_id}", tag = "plugins",
    params(("tenant_id" = Uuid, Path), ("plugin_id" = String, Path)), request_body = PutActivation,
    responses((status = 200, body = ActivationView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn put_activation(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, plugin_id)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<PutActivation>,
) -> ApiResult<Json<ActivationView>> {
    authz::authorize(&ctx, &auth.principal, tid, "plugins", "write").await?;
    Ok(Json(
        activation::put(&ctx, &auth.actor(), tid, &plugin_id, body).await?,
    ))
}

/// Removes the tenant's activation of a plugin (its configuration too).
/// An encryption-provider's signing keys are first re-wrapped under the
/// master key; 503 or 409 when that fails, and nothing is removed.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant_id}/plugins/{plugin_id}", tag = "plugins",
    params(("tenant_id" = Uuid, Path), ("plugin_id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn delete_activation(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, plugin_id)): ApiPath<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    authz::authorize(&ctx, &auth.principal, tid, "plugins", "write").await?;
    activation::delete(&ctx, &auth.actor(), tid, &plugin_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
