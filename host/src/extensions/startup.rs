//! Start-up: load installed plugins from the database, install what the
//! plugins directory holds, and load every tenant's activations.
//!
//! A plugin that fails to load is logged and skipped: the server starts,
//! and tenants using it get the plugin's failure policy (its activations are
//! simply absent from the runtime, which the admin API shows as
//! `loaded: false`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::context::Ctx;
use crate::model::Actor;
use crate::plugins::manifest::PluginManifest;

use super::install::{UploadedPlugin, install, sha256_hex};

/// What start-up loaded.
#[derive(Debug, Default, Clone, Copy)]
pub struct StartupReport {
    /// Plugins loaded.
    pub plugins: usize,
    /// Of which compiled components came from the cache.
    pub from_cache: usize,
    /// Plugins that failed to load.
    pub failed: usize,
    /// Tenants with activations.
    pub tenants: usize,
    /// Milliseconds spent.
    pub millis: u128,
}

/// Loads everything; see the module documentation.
pub async fn load_all(ctx: &Ctx) -> anyhow::Result<StartupReport> {
    let started = Instant::now();
    let mut report = StartupReport::default();
    for art in ctx.store.all_plugin_artifacts().await? {
        let id = art.record.id.clone();
        match load_artifact(ctx, art).await {
            Ok(from_cache) => {
                report.plugins += 1;
                report.from_cache += usize::from(from_cache);
            }
            Err(e) => {
                tracing::error!(plugin = %id, error = %e, "plugin failed to load");
                report.failed += 1;
            }
        }
    }
    let dir = ctx.config.plugins.dir.clone();
    if dir.is_dir() {
        install_directory(ctx, &dir).await;
    }
    let mut tenants = std::collections::BTreeSet::new();
    for rec in ctx.store.all_tenant_plugins().await? {
        tenants.insert(rec.tenant_id);
    }
    for t in &tenants {
        if let Err(e) = super::activation::reload_tenant(ctx, *t).await {
            tracing::error!(tenant = %t, error = %e, "loading plugin activations failed");
        }
    }
    report.tenants = tenants.len();
    report.millis = started.elapsed().as_millis();
    tracing::info!(
        plugins = report.plugins,
        cached = report.from_cache,
        failed = report.failed,
        tenants = report.tenants,
        millis = report.millis as u64,
        "plugins loaded"
    );
    Ok(report)
}

/// Verifies, compiles (or loads from the compiled cache) and installs one
/// stored plugin into the runtime; answers whether the cache served it.
pub(crate) async fn load_artifact(
    ctx: &Ctx,
    art: crate::store::PluginArtifact,
) -> Result<bool, String> {
    let actual = sha256_hex(&art.component);
    if actual != art.record.sha256 {
        return Err("stored component does not match its SHA-256; not loading it".into());
    }
    let manifest: PluginManifest = serde_json::from_value(art.record.manifest.0.clone())
        .map_err(|e| format!("stored manifest unreadable: {e}"))?;
    let p = ctx
        .plugins
        .prepare(manifest, actual, Arc::new(art.component))
        .await
        .map_err(|e| format!("{e:#}"))?;
    let from_cache = p.from_cache;
    ctx.plugins.install(p);
    Ok(from_cache)
}

/// Installs every `<dir>/<name>/manifest.json` with its component (the
/// manifest's `artifact`, default `plugin.wasm`, or `plugin.so` for
/// `kind: native`).
async fn install_directory(ctx: &Ctx, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    paths.sort();
    for path in paths {
        let manifest_path = path.join("manifest.json");
        let Ok(text) = std::fs::read_to_string(&manifest_path) else {
            continue;
        };
        let result = async {
            let manifest: serde_json::Value = serde_json::from_str(&text)?;
            let default = match manifest.get("kind").and_then(|k| k.as_str()) {
                Some("native") => "plugin.so",
                _ => "plugin.wasm",
            };
            let artifact = manifest
                .get("artifact")
                .and_then(|a| a.as_str())
                .unwrap_or(default)
                .to_string();
            if artifact.contains('/') || artifact.starts_with('.') {
                anyhow::bail!("artifact must be a plain file name");
            }
            let component = std::fs::read(path.join(&artifact))?;
            install(
                ctx,
                &Actor::system(),
                UploadedPlugin {
                    manifest,
                    component,
                },
                "directory",
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", super::install::describe(&e)))?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(path = %path.display(), error = %format!("{e:#}"), "plugin in the plugins directory not installed");
        }
    }
}
