//! Feeds each tenant's audit log to its audit-sink plugins: every second,
//! each sink receives the records after its cursor, in chain order, in
//! batches of at most 100.
//!
//! Delivery is at-least-once per sink with one node, and close to exactly
//! once across nodes: a node claims a batch by moving the cursor with a
//! compare-and-set before delivering, and moves it back when delivery fails,
//! so the batch is retried (by any node) on a later tick.

use std::time::Duration;

use crate::context::Ctx;
use crate::model::AuditRecord;
use crate::plugins::Category;
use crate::plugins::hooks::audit_sink::{AuditActor, AuditEntry};

/// Records per batch.
pub const BATCH: i64 = 100;

fn entry(r: &AuditRecord) -> AuditEntry {
    AuditEntry {
        id: r.id.to_string(),
        seq: r.seq.max(0) as u64,
        occurred_at: r.created_at.0.timestamp_millis(),
        actor: match r.actor_type.as_str() {
            "client" => AuditActor::Client,
            "system" => AuditActor::System,
            _ => AuditActor::User,
        },
        actor_id: r.actor_id.map(|a| a.to_string()),
        ip: r.ip.clone(),
        action: r.action.clone(),
        target_kind: Some(r.target_type.clone()),
        target_id: r.target_id.clone(),
        failed: r.action.ends_with("_failed") || r.action.ends_with(".failure"),
        details: r.changes.0.clone(),
        previous_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
    }
}

/// One pass over every tenant's sinks; returns records delivered.
pub async fn tick(ctx: &Ctx) -> usize {
    let mut delivered = 0;
    for tenant in ctx.plugins.tenants_with_plugins() {
        for act in ctx.plugins.active(tenant, Category::AuditSink) {
            let plugin = act.context.plugin_id.clone();
            let result: anyhow::Result<usize> = async {
                let cursor = ctx.store.audit_cursor(tenant, &plugin).await?;
                let Some(from) = cursor else {
                    // First run: start at the chain's head.
                    let head = ctx.store.audit_head_seq(tenant).await?;
                    ctx.store
                        .move_audit_cursor(tenant, &plugin, None, head)
                        .await?;
                    return Ok(0);
                };
                let records = ctx.store.audit_after(tenant, from, BATCH).await?;
                let Some(last) = records.last().map(|r| r.seq) else {
                    return Ok(0);
                };
                if !ctx
                    .store
                    .move_audit_cursor(tenant, &plugin, Some(from), last)
                    .await?
                {
                    return Ok(0); // another node took this batch
                }
                let entries: Vec<_> = records.iter().map(entry).collect();
                if ctx.plugins.deliver_audit(&act, &entries).await.is_err() {
                    ctx.store
                        .move_audit_cursor(tenant, &plugin, Some(last), from)
                        .await?;
                    return Ok(0);
                }
                Ok(entries.len())
            }
            .await;
            match result {
                Ok(n) => delivered += n,
                Err(e) => tracing::warn!(%tenant, %plugin, error = %e, "audit feed failed"),
            }
        }
    }
    delivered
}

/// Runs `tick` every second, forever.
pub async fn run(ctx: Ctx) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        tick(&ctx).await;
    }
}
