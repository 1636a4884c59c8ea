//! Audits plugin failures: the runtime queues them (throttled per tenant,
//! plugin and error code), this task appends them to the tenant's audit
//! chain as `plugin.failure`.

use serde_json::json;

use crate::audit::event;
use crate::model::Actor;
use crate::plugins::runtime::PluginFailure;
use crate::store::Store;

/// Runs until the runtime is dropped.
pub async fn audit_failures(store: Store, mut feed: tokio::sync::mpsc::Receiver<PluginFailure>) {
    while let Some(f) = feed.recv().await {
        let ev = event(
            f.tenant_id,
            &Actor::system(),
            "plugin.failure",
            "plugin",
            &f.plugin_id,
            json!({
                "category": f.category,
                "error": f.error.code(),
                "detail": f.error.to_string(),
                "failure_mode": f.mode,
                "similar_failures_not_recorded": f.suppressed,
            }),
        );
        if let Err(e) = store.append_audit(&ev).await {
            tracing::warn!(error = %e, "auditing a plugin failure failed");
        }
    }
}
