//! Feeds each tenant's audit log to its audit-sink plugins: every second,
//! each sink receives the records after its cursor, in chain order, in
//! batches of at most 100.
//!
//! Delivery is at-least-once, across any number of nodes: a node first
//! takes the sink's delivery lease (`LEASE`), delivers the records after
//! the cursor, and only then moves the cursor (compare-and-set) and gives
//! the lease back; only the lease's owner (a random token per delivery) can
//! move the cursor or release it. A failed delivery leaves the cursor where it was, so the
//! batch is retried on a later tick; a node that dies mid-delivery loses
//! nothing, because its lease expires and another node delivers the batch
//! (the sink may then see it twice: records carry `seq` and `hash` for
//! deduplication).
//!
//! Sinks are fed concurrently, so a slow sink delays only itself.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use crate::context::Ctx;
use crate::model::AuditRecord;
use crate::plugins::Category;
use crate::plugins::activation::Activation;
use crate::plugins::hooks::audit_sink::{AuditActor, AuditEntry};
use crate::time::Timestamp;

/// Records per batch.
pub const BATCH: i64 = 100;

/// How long a node may take to deliver one batch before another node may
/// take over, at least (longer for sinks with long deadlines).
pub const LEASE_SECONDS: i64 = 120;

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

/// Feeds every sink not already being fed, each in its own task, and does
/// not wait for them: a slow sink delays only itself.
fn spawn_deliveries(ctx: &Ctx, in_flight: &Arc<Mutex<HashSet<(Uuid, String)>>>) {
    for tenant in ctx.plugins.tenants_with_plugins() {
        for act in ctx.plugins.active(tenant, Category::AuditSink) {
            let key = (tenant, act.context.plugin_id.clone());
            if !in_flight
                .lock()
                .expect("in-flight lock")
                .insert(key.clone())
            {
                continue;
            }
            let (ctx, in_flight) = (ctx.clone(), in_flight.clone());
            tokio::spawn(async move {
                if let Err(e) = feed_sink(&ctx, tenant, &act).await {
                    tracing::warn!(%tenant, plugin = %key.1, error = %e, "audit feed failed");
                }
                in_flight.lock().expect("in-flight lock").remove(&key);
            });
        }
    }
}

/// Delivers the next batch to one sink, under its lease.
async fn feed_sink(ctx: &Ctx, tenant: Uuid, act: &Arc<Activation>) -> anyhow::Result<usize> {
    let plugin = act.context.plugin_id.as_str();
    // Long enough for the slowest call the limits allow: a slot wait and
    // the call, each up to the deadline, plus instantiation.
    let deadline_s = act
        .limits_for(Category::AuditSink)
        .deadline_ms
        .div_ceil(1000) as i64;
    let lease = LEASE_SECONDS.max(2 * deadline_s + 15);
    let owner = crate::crypto::secrets::random_secret();
    let now = Timestamp::now();
    if !ctx
        .store
        .take_audit_lease(tenant, plugin, &owner, now, now.plus_seconds(lease))
        .await?
    {
        return Ok(0); // another node is delivering to this sink
    }
    let result = deliver_batch(ctx, tenant, act, &owner).await;
    ctx.store
        .release_audit_lease(tenant, plugin, &owner)
        .await?;
    result
}

async fn deliver_batch(
    ctx: &Ctx,
    tenant: Uuid,
    act: &Arc<Activation>,
    owner: &str,
) -> anyhow::Result<usize> {
    let plugin = act.context.plugin_id.as_str();
    let cursor = ctx.store.audit_cursor(tenant, plugin).await?;
    let Some(from) = cursor else {
        // First run: start at the chain's head.
        let head = ctx.store.audit_head_seq(tenant).await?;
        ctx.store
            .move_audit_cursor(tenant, plugin, owner, None, head)
            .await?;
        return Ok(0);
    };
    let records = ctx.store.audit_after(tenant, from, BATCH).await?;
    let Some(last) = records.last().map(|r| r.seq) else {
        return Ok(0);
    };
    let entries: Vec<_> = records.iter().map(entry).collect();
    if ctx.plugins.deliver_audit(act, &entries).await.is_err() {
        return Ok(0); // the cursor stays: retried on a later tick
    }
    ctx.store
        .move_audit_cursor(tenant, plugin, owner, Some(from), last)
        .await?;
    Ok(entries.len())
}

/// Starts deliveries every second, forever.
pub async fn run(ctx: Ctx) {
    let in_flight = Arc::new(Mutex::new(HashSet::new()));
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        spawn_deliveries(&ctx, &in_flight);
    }
}
