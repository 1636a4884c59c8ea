//! Category `metrics-collector`: receives the tenant's metrics every 10 s
//! and forwards them to a monitoring system. See
//! `docs/metrics-collector.md`. Fails open and lossy (no retries).

use std::marker::PhantomData;

use crate::bindings::metrics_collector as raw;
use crate::types::{CallContext, KeyValue, PluginError, Timestamp, conv};

/// One cumulative histogram bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Inclusive upper bound; the last bucket is `+inf`.
    pub upper_bound: f64,
    /// Observations less than or equal to `upper_bound`.
    pub count: u64,
}

/// A histogram, cumulative since the series started.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Number of observations.
    pub count: u64,
    /// Sum of observed values.
    pub sum: f64,
    /// Cumulative buckets, ascending.
    pub buckets: Vec<Bucket>,
}

/// The value of one point.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A monotonic cumulative counter.
    Counter(u64),
    /// A value that goes up and down.
    Gauge(f64),
    /// A distribution.
    Histogram(Histogram),
}

/// One sample of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// Prometheus-style name, e.g. `vaultaris_tokens_issued_total`.
    pub name: String,
    /// Help text.
    pub description: String,
    /// Labels identifying the series (tenant implied).
    pub labels: Vec<KeyValue>,
    /// The value.
    pub value: MetricValue,
    /// When the sample was taken.
    pub observed_at: Timestamp,
}

/// A metrics-collector plugin.
pub trait MetricsCollector: crate::Plugin {
    /// Receives one batch of 1 to 1,000 points.
    fn collect(&self, ctx: &CallContext, points: Vec<MetricPoint>) -> Result<(), PluginError>;
}

impl From<raw::MetricPoint> for MetricPoint {
    fn from(p: raw::MetricPoint) -> Self {
        MetricPoint {
            name: p.name,
            description: p.description,
            labels: conv(p.labels),
            value: match p.value {
                raw::MetricValue::Counter(c) => MetricValue::Counter(c),
                raw::MetricValue::Gauge(g) => MetricValue::Gauge(g),
                raw::MetricValue::Histogram(h) => MetricValue::Histogram(Histogram {
                    count: h.count,
                    sum: h.sum,
                    buckets: h
                        .buckets
                        .into_iter()
                        .map(|b| Bucket {
                            upper_bound: b.upper_bound,
                            count: b.count,
                        })
                        .collect(),
                }),
            },
            observed_at: p.observed_at,
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: MetricsCollector> raw::Guest for Export<T> {
    fn collect(
        ctx: raw::CallContext,
        points: Vec<raw::MetricPoint>,
    ) -> Result<(), raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.collect(&ctx.into(), conv(points))?)
    }
}
