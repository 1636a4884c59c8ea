//! metrics-collector: plugins receive batches of metric points (the
//! tenant's request metrics and its plugins' own), every 10 seconds, from a
//! background feeder. Fail open: a failed batch is dropped, counted and
//! audited, never retried (the next batch carries cumulative counters).

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use std::sync::Arc;

use super::super::activation::Activation;
use super::super::bindings::v0_1_0::caps::vaultaris::plugin::types as wit;
use super::super::bindings::v0_1_0::metrics_collector::exports::vaultaris::plugin::metrics_collector as api;
use super::super::error::PluginCallError;
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;

/// A metric value.
#[derive(Debug, Clone)]
pub enum MetricValue {
    /// A monotonically increasing count.
    Counter(u64),
    /// A value that goes up and down.
    Gauge(f64),
    /// A histogram: (count, sum, cumulative buckets (upper bound, count)).
    Histogram(u64, f64, Vec<(f64, u64)>),
}

/// One point.
#[derive(Debug, Clone)]
pub struct MetricPoint {
    /// Name, e.g. `vaultaris_http_requests_total`.
    pub name: String,
    /// What it measures.
    pub description: String,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: MetricValue,
    /// Milliseconds since the epoch.
    pub observed_at: i64,
}

impl PluginRuntime {
    /// Delivers one batch to one collector.
    pub async fn deliver_metrics(
        &self,
        act: &Arc<Activation>,
        points: &[MetricPoint],
    ) -> Result<(), PluginCallError> {
        let batch: Vec<api::MetricPoint> = points
            .iter()
            .map(|p| api::MetricPoint {
                name: p.name.clone(),
                description: p.description.clone(),
                labels: p
                    .labels
                    .iter()
                    .map(|(k, v)| wit::KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                value: match &p.value {
                    MetricValue::Counter(c) => api::MetricValue::Counter(*c),
                    MetricValue::Gauge(g) => api::MetricValue::Gauge(*g),
                    MetricValue::Histogram(count, sum, buckets) => {
                        api::MetricValue::Histogram(api::Histogram {
                            count: *count,
                            sum: *sum,
                            buckets: buckets
                                .iter()
                                .map(|(upper_bound, count)| api::Bucket {
                                    upper_bound: *upper_bound,
                                    count: *count,
                                })
                                .collect(),
                        })
                    }
                },
                observed_at: p.observed_at,
            })
            .collect();
        let size = batch
            .iter()
            .map(|p| {
                p.name.len()
                    + p.description.len()
                    + p.labels
                        .iter()
                        .map(|l| l.key.len() + l.value.len())
                        .sum::<usize>()
                    + 32
            })
            .sum();
        let (result, _) = act
            .invoke(
                self.engine(),
                Category::MetricsCollector,
                "-",
                size,
                |inst, cx| {
                    Box::pin(async move {
                        let inst = match inst {
                            PluginInstance::Native(n) => {
                                return n
                                    .call(native_fn::METRICS_COLLECTOR_COLLECT, &(&cx, &batch))
                                    .await;
                            }
                            PluginInstance::Wasm(w) => w,
                        };
                        let Some(e) = &inst.exports.metrics_collector else {
                            return Err(wasmtime::format_err!("metrics-collector export missing"));
                        };
                        e.vaultaris_plugin_metrics_collector()
                            .call_collect(&mut inst.store, &cx, &batch)
                            .await
                    })
                },
            )
            .await;
        if let Err(e) = &result {
            self.report_failure(act, Category::MetricsCollector, e, FailureMode::Open);
        }
        result
    }
}
