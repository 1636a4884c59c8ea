//! Request and plugin metrics for metrics-collector plugins: the HTTP layer
//! records each request of a tenant that has a collector active (others
//! cost one map lookup), and every 10 seconds each collector receives its
//! tenant's cumulative counters, a latency histogram and its plugins' call
//! statistics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use uuid::Uuid;

use crate::context::Ctx;
use crate::plugins::Category;
use crate::plugins::hooks::metrics_collector::{MetricPoint, MetricValue};

/// Upper bounds (seconds) of the request latency histogram.
pub const LATENCY_BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct TenantRequests {
    /// Requests by (route group, status class).
    counts: HashMap<(&'static str, u16), u64>,
    /// Latency histogram: per-bucket counts (non-cumulative), count, sum.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Per-tenant request metrics (only for tenants with a collector).
#[derive(Debug, Default)]
pub struct RequestMetrics {
    tenants: Mutex<HashMap<Uuid, TenantRequests>>,
}

impl RequestMetrics {
    /// Records one request.
    pub fn record(&self, tenant: Uuid, group: &'static str, status: u16, elapsed: Duration) {
        let mut all = self.tenants.lock().expect("metrics lock");
        let t = all.entry(tenant).or_default();
        *t.counts.entry((group, status / 100)).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            t.buckets[i] += 1;
        }
        t.count += 1;
        t.sum += secs;
    }

    fn snapshot(&self, tenant: Uuid) -> TenantRequests {
        self.tenants
            .lock()
            .expect("metrics lock")
            .get(&tenant)
            .cloned()
            .unwrap_or_default()
    }
}

/// The points of one tenant now.
pub fn points(ctx: &Ctx, tenant: Uuid) -> Vec<MetricPoint> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    let r = ctx.request_metrics.snapshot(tenant);
    let mut counts: Vec<_> = r.counts.iter().collect();
    counts.sort();
    for ((group, class), n) in counts {
        out.push(MetricPoint {
            name: "vaultaris_http_requests_total".into(),
            description: "HTTP requests served for the tenant".into(),
            labels: vec![
                ("route".into(), (*group).into()),
                ("status_class".into(), format!("{class}xx")),
            ],
            value: MetricValue::Counter(*n),
            observed_at: now,
        });
    }
    let mut cumulative = 0;
    let buckets = LATENCY_BUCKETS
        .iter()
        .zip(r.buckets)
        .map(|(b, n)| {
            cumulative += n;
            (*b, cumulative)
        })
        .collect();
    out.push(MetricPoint {
        name: "vaultaris_http_request_duration_seconds".into(),
        description: "Latency of the tenant's HTTP requests".into(),
        labels: vec![],
        value: MetricValue::Histogram(r.count, r.sum, buckets),
        observed_at: now,
    });
    if let Some(plugins) = ctx.plugins.tenant(tenant) {
        for act in plugins.all() {
            let id = act.context.plugin_id.clone();
            let calls = act.stats.calls.load(Ordering::Relaxed);
            let labels = vec![("plugin".to_string(), id)];
            out.push(MetricPoint {
                name: "vaultaris_plugin_calls_total".into(),
                description: "Calls made to the plugin".into(),
                labels: labels.clone(),
                value: MetricValue::Counter(calls),
                observed_at: now,
            });
            out.push(MetricPoint {
                name: "vaultaris_plugin_failures_total".into(),
                description: "Calls that failed (any typed error)".into(),
                labels: labels.clone(),
                value: MetricValue::Counter(act.stats.failures.load(Ordering::Relaxed)),
                observed_at: now,
            });
            let total_ns = act.stats.total_ns.load(Ordering::Relaxed);
            out.push(MetricPoint {
                name: "vaultaris_plugin_call_seconds_mean".into(),
                description: "Mean wall-clock time of a call".into(),
                labels: labels.clone(),
                value: MetricValue::Gauge(if calls == 0 {
                    0.0
                } else {
                    total_ns as f64 / calls as f64 / 1e9
                }),
                observed_at: now,
            });
            out.push(MetricPoint {
                name: "vaultaris_plugin_circuit_open".into(),
                description: "1 while the plugin's circuit breaker is open".into(),
                labels,
                value: MetricValue::Gauge(if act.breaker.is_open() { 1.0 } else { 0.0 }),
                observed_at: now,
            });
        }
    }
    out
}

/// One pass: every collector gets its tenant's points; returns batches sent.
pub async fn tick(ctx: &Ctx) -> usize {
    let mut sent = 0;
    for tenant in ctx.plugins.tenants_with_plugins() {
        let collectors = ctx.plugins.active(tenant, Category::MetricsCollector);
        if collectors.is_empty() {
            continue;
        }
        let batch = points(ctx, tenant);
        for act in collectors {
            if ctx.plugins.deliver_metrics(&act, &batch).await.is_ok() {
                sent += 1;
            }
        }
    }
    sent
}

/// Runs `tick` every `period` (`PLUGIN_METRICS_INTERVAL_MS`, default 10 s).
pub async fn run(ctx: Ctx, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        tick(&ctx).await;
    }
}
