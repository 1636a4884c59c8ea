//! audit-sink: plugins receive the tenant's audit records in batches, in
//! chain order, from a background feeder (`extensions::audit_feed`). Fail
//! open: a failing sink never blocks a request; its batch is retried from
//! the cursor.

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use std::sync::Arc;

use super::super::activation::{Activation, OutputSize};
use super::super::bindings::v0_1_0::audit_sink::exports::vaultaris::plugin::audit_sink as api;
use super::super::error::PluginCallError;
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;

/// Who acted, as the contract names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditActor {
    /// A user (or an anonymous caller).
    User,
    /// A client's service account.
    Client,
    /// The server.
    System,
}

/// One audit record for a sink.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Record id.
    pub id: String,
    /// Position in the chain.
    pub seq: u64,
    /// Milliseconds since the epoch.
    pub occurred_at: i64,
    /// Actor kind.
    pub actor: AuditActor,
    /// Actor id.
    pub actor_id: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Action name.
    pub action: String,
    /// Target kind.
    pub target_kind: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// Whether the action failed (`*_failed`, `*.failure`).
    pub failed: bool,
    /// Change metadata (JSON text).
    pub details: String,
    /// Previous hash.
    pub previous_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl OutputSize for () {
    fn output_size(&self) -> usize {
        0
    }
}

impl PluginRuntime {
    /// Delivers one batch to one sink.
    pub async fn deliver_audit(
        &self,
        act: &Arc<Activation>,
        entries: &[AuditEntry],
    ) -> Result<(), PluginCallError> {
        let events: Vec<api::AuditEvent> = entries
            .iter()
            .map(|e| api::AuditEvent {
                event_id: e.id.clone(),
                sequence: e.seq,
                occurred_at: e.occurred_at,
                actor_kind: match e.actor {
                    AuditActor::User => api::ActorKind::User,
                    AuditActor::Client => api::ActorKind::Client,
                    AuditActor::System => api::ActorKind::System,
                },
                actor_id: e.actor_id.clone(),
                ip_address: e.ip.clone(),
                request_id: None,
                action: e.action.clone(),
                target_kind: e.target_kind.clone(),
                target_id: e.target_id.clone(),
                outcome: if e.failed {
                    api::Outcome::Failure
                } else {
                    api::Outcome::Success
                },
                details: e.details.clone(),
                previous_hash: e.previous_hash.clone(),
                hash: e.hash.clone(),
            })
            .collect();
        let size = events
            .iter()
            .map(|e| e.details.len() + e.action.len() + 200)
            .sum();
        let (result, _) = act
            .invoke(self.engine(), Category::AuditSink, "-", size, |inst, cx| {
                Box::pin(async move {
                    let inst = match inst {
                        PluginInstance::Native(n) => {
                            return n.call(native_fn::AUDIT_SINK_DELIVER, &(&cx, &events)).await;
                        }
                        PluginInstance::Wasm(w) => w,
                    };
                    let Some(e) = &inst.exports.audit_sink else {
                        return Err(wasmtime::format_err!("audit-sink export missing"));
                    };
                    e.vaultaris_plugin_audit_sink()
                        .call_deliver(&mut inst.store, &cx, &events)
                        .await
                })
            })
            .await;
        if let Err(e) = &result {
            self.report_failure(act, Category::AuditSink, e, FailureMode::Open);
        }
        result
    }
}
