//! Keeps a node's plugin runtime in step with plugin changes made on other
//! nodes sharing the database: every `PLUGIN_SYNC_INTERVAL_MS` the node
//! compares what is installed (id and SHA-256) and each tenant's activations
//! (plugin and revision, bumped by every change in the same transaction, so
//! no change is missed whatever the clocks say) with the database, and
//! reloads what differs. A plugin that fails to load is not retried until
//! its SHA-256 changes.
//!
//! Two queries per poll (plugin ids and hashes without the components, and
//! one aggregate over activations), so every node runs it, whatever the
//! database (several processes may share one SQLite file). A change made on
//! this node is applied at once by the admin API; the next
//! poll sees it too and rebuilds that tenant's activations once more, which
//! costs only the warm instances.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use uuid::Uuid;

use crate::context::Ctx;

/// What a poll saw of each tenant's activations: (plugin, revision) pairs.
pub type Fingerprints = HashMap<Uuid, Vec<(String, i64)>>;

/// Reads the fingerprints now. Call it before loading the activations at
/// start-up, so a change made meanwhile is seen as a change.
pub async fn fingerprints(ctx: &Ctx) -> anyhow::Result<Fingerprints> {
    let mut out = Fingerprints::new();
    for (t, plugin, revision) in ctx.store.activation_revisions().await? {
        out.entry(t).or_default().push((plugin, revision));
    }
    Ok(out)
}

/// The sync state of one node.
#[derive(Debug, Default)]
pub struct SyncState {
    /// The activations last loaded.
    pub seen: Fingerprints,
    /// Plugins (id, SHA-256) that failed to load: not retried until the
    /// stored component changes.
    pub failed: HashSet<(String, String)>,
}

/// Runs the poll loop forever (spawn it), starting from `seen`.
pub async fn run(ctx: Ctx, interval: Duration, seen: Fingerprints) {
    let mut state = SyncState {
        seen,
        failed: HashSet::new(),
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = sync_once(&ctx, &mut state).await {
            tracing::warn!(error = %e, "plugin sync failed; retrying at the next interval");
        }
    }
}

/// One comparison and the reloads it calls for.
pub async fn sync_once(ctx: &Ctx, state: &mut SyncState) -> anyhow::Result<()> {
    // Plugins installed, upgraded or removed elsewhere.
    let stored = ctx.store.list_plugins().await?;
    for rec in &stored {
        let current = ctx.plugins.plugin(&rec.id).map(|p| p.sha256.clone());
        if current.as_deref() == Some(rec.sha256.as_str()) {
            continue;
        }
        let art = ctx.store.plugin_artifact(&rec.id).await?;
        match super::startup::load_artifact(ctx, art).await {
            Ok(_) => {
                tracing::info!(plugin = %rec.id, sha256 = %rec.sha256, "plugin sync: loaded a plugin changed on another node")
            }
            Err(e) => {
                tracing::error!(plugin = %rec.id, error = %e, "plugin sync: plugin failed to load")
            }
        }
    }
    for id in ctx.plugins.plugin_ids() {
        if !stored.iter().any(|r| r.id == id) {
            tracing::info!(plugin = %id, "plugin sync: removing a plugin removed on another node");
            ctx.plugins.remove(&id);
        }
    }
    // Activations added, changed or removed elsewhere.
    let now = fingerprints(ctx).await?;
    let seen = &mut state.seen;
    let changed: Vec<Uuid> = now
        .iter()
        .filter(|(t, f)| seen.get(t) != Some(f))
        .map(|(t, _)| *t)
        .chain(seen.keys().filter(|t| !now.contains_key(t)).copied())
        .collect();
    for t in changed {
        match super::activation::reload_tenant(ctx, t).await {
            Ok(()) => {
                tracing::info!(tenant = %t, "plugin sync: reloaded activations changed on another node");
                match now.get(&t) {
                    Some(f) => seen.insert(t, f.clone()),
                    None => seen.remove(&t),
                };
            }
            // Left out of `seen`, so the next poll tries again.
            Err(e) => tracing::error!(tenant = %t, error = %e, "plugin sync: reload failed"),
        }
    }
    Ok(())
}
