//! `influx-metrics` (metrics-collector): writes each batch of the tenant's
//! metrics to InfluxDB in line protocol.
//!
//! ```json
//! { "url": "https://influx.example/api/v2/write?org=acme&bucket=vaultaris",
//!   "token": "…", "tags": {"env": "prod"} }
//! ```
//!
//! Request: `POST {url}` with `authorization: Token {token}` (if set),
//! `content-type: text/plain; charset=utf-8` and one line per point:
//!
//! ```text
//! vaultaris_tokens_issued_total,grant_type=authorization_code,tenant=t1 value=42i 1700000000000
//! vaultaris_active_sessions,tenant=t1 value=3.5 1700000000000
//! vaultaris_http_request_duration_seconds,endpoint=/oauth/token,tenant=t1 count=3i,sum=0.42,0.1=1i,0.5=3i,+Inf=3i 1700000000000
//! ```
//!
//! - measurement: `measurement_prefix` + the metric name;
//! - tags: the configured static `tags`, then the point's labels, then the
//!   tenant (`tenant_tag`, default `tenant`), later ones winning on equal
//!   keys, sorted by key (as InfluxDB recommends), empty keys or values
//!   dropped (line protocol has no empty tag values);
//! - fields: a counter is `value=<n>i` (an integer field; counters above
//!   `i64::MAX` saturate), a gauge `value=<x>` (a float field), a histogram
//!   `count=<n>i,sum=<x>` plus one cumulative integer field per bucket named
//!   after its upper bound (`0.005`, …, `+Inf`), the layout Telegraf uses for
//!   Prometheus histograms; non-finite floats (NaN, ±∞) have no line protocol
//!   form and are left out (a point left without fields is skipped);
//! - escaping per the line protocol: backslash, comma and space in
//!   measurements; backslash, comma, equals sign and space in tag keys, tag
//!   values and field keys; control characters (newlines) become spaces; a
//!   leading `#` of a measurement (a comment line) becomes `_`;
//! - timestamp: `observed_at` in the precision named by the URL's
//!   `precision` parameter (`ns`/`n`, `us`/`u`, `ms`, `s`, `m`, `h`); a URL
//!   without one gets `precision=ms`.
//!
//! Bodies are kept under 1 MiB (the host's request limit): a larger batch
//! goes out in several requests. Answers: 2xx → done; 401 / 403 →
//! `misconfigured` (`influx_auth_failed`); 404 → `misconfigured`
//! (`influx_not_found`: wrong org, bucket or database); other 4xx →
//! `invalid-input` (`influx_rejected`, with InfluxDB's message); 429, 5xx,
//! timeouts and connection failures → `unavailable`. The host drops a
//! failed batch (no retries; the next interval carries fresh cumulative
//! values).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use vaultaris_plugin_sdk::host::{http, log};
use vaultaris_plugin_sdk::metrics::{MetricPoint, MetricValue, MetricsCollector};
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};

/// Largest request body sent (the host refuses bodies over 1 MiB).
const MAX_BODY_BYTES: usize = 1_000_000;

fn default_tenant_tag() -> String {
    "tenant".to_owned()
}
fn default_timeout() -> u32 {
    10_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default = "default_tenant_tag")]
    tenant_tag: String,
    #[serde(default)]
    measurement_prefix: String,
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
}

/// The timestamp unit of the write endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// Minutes (v1 API only).
    M,
    /// Hours (v1 API only).
    H,
}

impl Precision {
    fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "ns" | "n" => Precision::Ns,
            "us" | "u" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            "m" => Precision::M,
            "h" => Precision::H,
            _ => return None,
        })
    }

    /// A millisecond timestamp in this unit.
    pub fn convert(self, ms: i64) -> i64 {
        match self {
            Precision::Ns => ms.saturating_mul(1_000_000),
            Precision::Us => ms.saturating_mul(1000),
            Precision::Ms => ms,
            Precision::S => ms.div_euclid(1000),
            Precision::M => ms.div_euclid(60_000),
            Precision::H => ms.div_euclid(3_600_000),
        }
    }
}

/// The plugin.
pub struct InfluxMetrics {
    url: String,
    precision: Precision,
    authorization: Option<String>,
    static_tags: BTreeMap<String, String>,
    tenant_tag: String,
    measurement_prefix: String,
    timeout_ms: u32,
}

impl Plugin for InfluxMetrics {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        if !(config.url.starts_with("https://") || config.url.starts_with("http://"))
            || config.url.contains('#')
        {
            return Err(PluginError::misconfigured(
                "invalid_url",
                "url must be an http(s) URL without a fragment",
            ));
        }
        let query = config.url.split_once('?').map_or("", |(_, q)| q);
        let named = query.split('&').find_map(|p| p.strip_prefix("precision="));
        let (url, precision) = match named {
            Some(p) => (
                config.url.clone(),
                Precision::parse(p).ok_or_else(|| {
                    PluginError::misconfigured(
                        "invalid_precision",
                        format!("unknown precision {p:?} in url"),
                    )
                })?,
            ),
            None => {
                let sep = if config.url.contains('?') { '&' } else { '?' };
                (format!("{}{sep}precision=ms", config.url), Precision::Ms)
            }
        };
        let authorization = match config.token.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                return Err(PluginError::misconfigured(
                    "invalid_token",
                    "token is empty",
                ));
            }
            Some(t) => Some(format!("Token {t}")),
        };
        Ok(InfluxMetrics {
            url,
            precision,
            authorization,
            static_tags: config.tags,
            tenant_tag: config.tenant_tag,
            measurement_prefix: config.measurement_prefix,
            timeout_ms: config.timeout_ms.max(1),
        })
    }
}

/// Appends `s` with control characters as spaces and `special` characters
/// (and backslashes) escaped with a backslash.
fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A measurement name, escaped.
pub fn escape_measurement(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let s = match s.strip_prefix('#') {
        Some(rest) => {
            out.push('_');
            rest
        }
        None => s,
    };
    escape_into(&mut out, s, &[',', ' ']);
    out
}

/// A tag key, tag value or field key, escaped.
pub fn escape_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    escape_into(&mut out, s, &[',', '=', ' ']);
    out
}

/// A finite float as line protocol text (Rust's `Display` never uses an
/// exponent, so every finite value is a valid line protocol float).
fn float(x: f64) -> Option<String> {
    x.is_finite().then(|| format!("{x}"))
}

/// The field set of a value; empty if nothing is representable.
fn fields(value: &MetricValue) -> Vec<(String, String)> {
    match value {
        MetricValue::Counter(n) => {
            vec![(
                "value".into(),
                format!("{}i", i64::try_from(*n).unwrap_or(i64::MAX)),
            )]
        }
        MetricValue::Gauge(x) => float(*x)
            .map(|v| vec![("value".to_owned(), v)])
            .unwrap_or_default(),
        MetricValue::Histogram(h) => {
            let mut f = vec![(
                "count".to_owned(),
                format!("{}i", i64::try_from(h.count).unwrap_or(i64::MAX)),
            )];
            if let Some(sum) = float(h.sum) {
                f.push(("sum".into(), sum));
            }
            for b in &h.buckets {
                let key = if b.upper_bound == f64::INFINITY {
                    "+Inf".to_owned()
                } else if let Some(k) = float(b.upper_bound) {
                    k
                } else {
                    continue;
                };
                f.push((
                    key,
                    format!("{}i", i64::try_from(b.count).unwrap_or(i64::MAX)),
                ));
            }
            f
        }
    }
}

impl InfluxMetrics {
    /// One point as a line (without the newline), or `None` if it has no
    /// representable field or no name.
    pub fn line(&self, ctx: &CallContext, point: &MetricPoint) -> Option<String> {
        let name = format!("{}{}", self.measurement_prefix, point.name);
        if name.is_empty() {
            return None;
        }
        let fields = fields(&point.value);
        if fields.is_empty() {
            return None;
        }
        let mut tags: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in &self.static_tags {
            tags.insert(k, v);
        }
        for l in &point.labels {
            tags.insert(&l.key, &l.value);
        }
        if !self.tenant_tag.is_empty() {
            tags.insert(&self.tenant_tag, &ctx.tenant);
        }
        let mut line = escape_measurement(&name);
        for (k, v) in tags {
            if k.is_empty() || v.is_empty() {
                continue;
            }
            line.push(',');
            line.push_str(&escape_key(k));
            line.push('=');
            line.push_str(&escape_key(v));
        }
        for (i, (k, v)) in fields.iter().enumerate() {
            line.push(if i == 0 { ' ' } else { ',' });
            line.push_str(&escape_key(k));
            line.push('=');
            line.push_str(v);
        }
        let _ = write!(line, " {}", self.precision.convert(point.observed_at));
        Some(line)
    }

    /// The request bodies for a batch (each under `MAX_BODY_BYTES`) and the
    /// number of points skipped.
    pub fn bodies(&self, ctx: &CallContext, points: &[MetricPoint]) -> (Vec<String>, usize) {
        let mut bodies: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut skipped = 0;
        for p in points {
            let Some(line) = self.line(ctx, p) else {
                skipped += 1;
                continue;
            };
            if line.len() + 1 > MAX_BODY_BYTES {
                skipped += 1;
                continue;
            }
            if current.len() + line.len() + 1 > MAX_BODY_BYTES {
                bodies.push(std::mem::take(&mut current));
            }
            current.push_str(&line);
            current.push('\n');
        }
        if !current.is_empty() {
            bodies.push(current);
        }
        (bodies, skipped)
    }

    fn send(&self, ctx: &CallContext, body: String) -> Result<(), PluginError> {
        let timeout = u32::try_from(ctx.time_left_ms())
            .unwrap_or(u32::MAX)
            .min(self.timeout_ms)
            .max(1);
        let mut request = http::Request::post(&self.url)
            .header("content-type", "text/plain; charset=utf-8")
            .header("accept", "application/json")
            .body(body)
            .timeout_ms(timeout);
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        let response = http::send(&request)?;
        let status = response.status;
        let detail = || -> String { response.text().chars().take(300).collect() };
        match status {
            200..=299 => Ok(()),
            401 | 403 => Err(PluginError::misconfigured(
                "influx_auth_failed",
                format!("InfluxDB refused the token (HTTP {status})"),
            )),
            404 => Err(PluginError::misconfigured(
                "influx_not_found",
                format!(
                    "InfluxDB answered 404 (wrong org, bucket or database?): {}",
                    detail()
                ),
            )),
            429 | 500..=599 => Err(PluginError::unavailable(
                "influx_unavailable",
                format!("InfluxDB answered HTTP {status}"),
            )),
            _ => Err(PluginError::invalid_input(
                "influx_rejected",
                format!("InfluxDB answered HTTP {status}: {}", detail()),
            )),
        }
    }
}

impl MetricsCollector for InfluxMetrics {
    fn collect(&self, ctx: &CallContext, points: Vec<MetricPoint>) -> Result<(), PluginError> {
        let (bodies, skipped) = self.bodies(ctx, &points);
        if skipped > 0 {
            log::debug(&format!(
                "skipped {skipped} of {} points without a representable value",
                points.len()
            ));
        }
        for body in bodies {
            self.send(ctx, body)?;
        }
        Ok(())
    }
}

export_plugin!(InfluxMetrics: metrics_collector);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use vaultaris_plugin_sdk::KeyValue;
    use vaultaris_plugin_sdk::host::http::HttpError;
    use vaultaris_plugin_sdk::metrics::{Bucket, Histogram};
    use vaultaris_plugin_sdk::testing::{MockHost, response, with_host};

    const URL: &str = "https://influx.example/api/v2/write?org=acme&bucket=vaultaris";
    const AT: i64 = 1_700_000_000_123;

    fn plugin(extra: Value) -> InfluxMetrics {
        let mut c = json!({"url": URL, "token": "tok-1"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        InfluxMetrics::new(c).unwrap()
    }

    fn point(name: &str, labels: &[(&str, &str)], value: MetricValue) -> MetricPoint {
        MetricPoint {
            name: name.into(),
            description: "help".into(),
            labels: labels.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect(),
            value,
            observed_at: AT,
        }
    }

    fn histogram() -> MetricValue {
        MetricValue::Histogram(Histogram {
            count: 3,
            sum: 0.42,
            buckets: vec![
                Bucket {
                    upper_bound: 0.1,
                    count: 1,
                },
                Bucket {
                    upper_bound: 0.5,
                    count: 3,
                },
                Bucket {
                    upper_bound: f64::INFINITY,
                    count: 3,
                },
            ],
        })
    }

    #[test]
    fn manifest_matches_exports() {
        let m = vaultaris_plugin_sdk::testing::check_manifest::<InfluxMetrics>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
        assert_eq!(m["config_schema"]["properties"]["token"]["writeOnly"], true);
    }

    #[test]
    fn lines_for_each_kind() {
        let p = plugin(json!({}));
        let ctx = CallContext::for_tests();
        assert_eq!(
            p.line(
                &ctx,
                &point(
                    "vaultaris_tokens_issued_total",
                    &[("grant_type", "authorization_code")],
                    MetricValue::Counter(42)
                )
            )
            .unwrap(),
            "vaultaris_tokens_issued_total,grant_type=authorization_code,tenant=test-tenant value=42i 1700000000123"
        );
        assert_eq!(
            p.line(
                &ctx,
                &point("vaultaris_active_sessions", &[], MetricValue::Gauge(3.5))
            )
            .unwrap(),
            "vaultaris_active_sessions,tenant=test-tenant value=3.5 1700000000123"
        );
        assert_eq!(
            p.line(&ctx, &point("g", &[], MetricValue::Gauge(2.0)))
                .unwrap(),
            "g,tenant=test-tenant value=2 1700000000123"
        );
        assert_eq!(
            p.line(
                &ctx,
                &point(
                    "vaultaris_http_request_duration_seconds",
                    &[("endpoint", "/oauth/token")],
                    histogram()
                )
            )
            .unwrap(),
            "vaultaris_http_request_duration_seconds,endpoint=/oauth/token,tenant=test-tenant count=3i,sum=0.42,0.1=1i,0.5=3i,+Inf=3i 1700000000123"
        );
        assert_eq!(
            p.line(&ctx, &point("c", &[], MetricValue::Counter(u64::MAX)))
                .unwrap(),
            format!("c,tenant=test-tenant value={}i 1700000000123", i64::MAX)
        );
        // Tiny and huge floats never use an exponent.
        let tiny = p
            .line(&ctx, &point("g", &[], MetricValue::Gauge(1e-7)))
            .unwrap();
        assert!(tiny.contains("value=0.0000001 "), "{tiny}");
        let huge = p
            .line(&ctx, &point("g", &[], MetricValue::Gauge(1e21)))
            .unwrap();
        assert!(huge.contains("value=1000000000000000000000 "), "{huge}");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_measurement("cpu load,x"), r"cpu\ load\,x");
        assert_eq!(escape_measurement("a=b"), "a=b");
        assert_eq!(escape_measurement("#comment"), "_comment");
        assert_eq!(escape_key("a b,c=d"), r"a\ b\,c\=d");
        assert_eq!(escape_key(r"back\slash"), r"back\\slash");
        assert_eq!(escape_key("two\nlines"), r"two\ lines");
        let p = plugin(json!({"tenant_tag": ""}));
        let line = p
            .line(
                &CallContext::for_tests(),
                &point(
                    "my metric",
                    &[("path", "/a b"), ("k=", "v,1"), ("empty", ""), ("", "x")],
                    MetricValue::Counter(1),
                ),
            )
            .unwrap();
        assert_eq!(
            line,
            r"my\ metric,k\==v\,1,path=/a\ b value=1i 1700000000123"
        );
    }

    #[test]
    fn tags_precedence_and_order() {
        let p = plugin(
            json!({"tags": {"env": "prod", "zone": "a", "tenant": "spoofed-static"},
            "measurement_prefix": "vx_"}),
        );
        let line = p
            .line(
                &CallContext::for_tests(),
                &point(
                    "m",
                    &[("zone", "b"), ("tenant", "spoofed-label"), ("app", "x")],
                    MetricValue::Counter(1),
                ),
            )
            .unwrap();
        assert_eq!(
            line,
            "vx_m,app=x,env=prod,tenant=test-tenant,zone=b value=1i 1700000000123"
        );
    }

    #[test]
    fn non_finite_values() {
        let p = plugin(json!({}));
        let ctx = CallContext::for_tests();
        assert_eq!(
            p.line(&ctx, &point("g", &[], MetricValue::Gauge(f64::NAN))),
            None
        );
        let h = MetricValue::Histogram(Histogram {
            count: 0,
            sum: f64::NAN,
            buckets: vec![Bucket {
                upper_bound: f64::NAN,
                count: 0,
            }],
        });
        assert_eq!(
            p.line(&ctx, &point("h", &[], h)).unwrap(),
            "h,tenant=test-tenant count=0i 1700000000123"
        );
    }

    #[test]
    fn precision_from_url() {
        let ctx = CallContext::for_tests();
        let c = point("c", &[], MetricValue::Counter(1));
        let p = InfluxMetrics::new(json!({"url": "http://127.0.0.1:8086/write?db=x&precision=s"}))
            .unwrap();
        assert_eq!(p.url, "http://127.0.0.1:8086/write?db=x&precision=s");
        assert!(p.line(&ctx, &c).unwrap().ends_with(" 1700000000"));
        let p = InfluxMetrics::new(
            json!({"url": "http://127.0.0.1:8086/api/v2/write?bucket=b&precision=ns"}),
        )
        .unwrap();
        assert!(p.line(&ctx, &c).unwrap().ends_with(" 1700000000123000000"));
        let p = InfluxMetrics::new(json!({"url": "http://localhost:8086/write"})).unwrap();
        assert_eq!(p.url, "http://localhost:8086/write?precision=ms");
        assert_eq!(plugin(json!({})).url, format!("{URL}&precision=ms"));
        assert_eq!(
            InfluxMetrics::new(json!({"url": "http://x/write?precision=fortnight"}))
                .err()
                .unwrap()
                .code(),
            "invalid_precision"
        );
        assert_eq!(
            InfluxMetrics::new(json!({"url": "udp://x"}))
                .err()
                .unwrap()
                .code(),
            "invalid_url"
        );
        assert_eq!(
            InfluxMetrics::new(json!({"url": URL, "token": " "}))
                .err()
                .unwrap()
                .code(),
            "invalid_token"
        );
    }

    #[test]
    fn collect_posts_one_body_with_token() {
        let h = Arc::new(MockHost::new().http(&["influx.example"], |_| Ok(response(204, ""))));
        let p = plugin(json!({}));
        with_host(h.clone(), || {
            p.collect(
                &CallContext::for_tests(),
                vec![
                    point("a_total", &[], MetricValue::Counter(1)),
                    point("b", &[], MetricValue::Gauge(f64::NAN)),
                    point("c", &[], MetricValue::Gauge(0.25)),
                ],
            )
        })
        .unwrap();
        let sent = h.requests();
        assert_eq!(sent.len(), 1);
        let r = &sent[0];
        assert_eq!(r.method, http::Method::Post);
        assert_eq!(r.url, format!("{URL}&precision=ms"));
        let header = |n: &str| vaultaris_plugin_sdk::find_key_value(&r.headers, n);
        assert_eq!(header("authorization"), Some("Token tok-1"));
        assert_eq!(header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            String::from_utf8(r.body.clone().unwrap()).unwrap(),
            "a_total,tenant=test-tenant value=1i 1700000000123\nc,tenant=test-tenant value=0.25 1700000000123\n"
        );
        // Nothing representable: nothing sent.
        with_host(h.clone(), || {
            p.collect(
                &CallContext::for_tests(),
                vec![point("b", &[], MetricValue::Gauge(f64::INFINITY))],
            )
        })
        .unwrap();
        assert_eq!(h.requests().len(), 1);
    }

    #[test]
    fn large_batches_are_split() {
        let p = plugin(json!({}));
        let long = "x".repeat(2000);
        let points: Vec<MetricPoint> = (0..1000)
            .map(|i| {
                point(
                    &format!("m{i}"),
                    &[("long", long.as_str())],
                    MetricValue::Counter(i),
                )
            })
            .collect();
        let (bodies, skipped) = p.bodies(&CallContext::for_tests(), &points);
        assert_eq!(skipped, 0);
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| b.len() <= MAX_BODY_BYTES));
        assert_eq!(
            bodies.iter().map(|b| b.lines().count()).sum::<usize>(),
            1000
        );
    }

    #[test]
    fn status_mapping() {
        let p = plugin(json!({}));
        let collect = |status: u16, body: &'static str| {
            let h = Arc::new(
                MockHost::new().http(&["influx.example"], move |_| Ok(response(status, body))),
            );
            with_host(h, || {
                p.collect(
                    &CallContext::for_tests(),
                    vec![point("a", &[], MetricValue::Counter(1))],
                )
            })
        };
        assert!(collect(204, "").is_ok());
        assert!(collect(200, "").is_ok());
        assert_eq!(collect(401, "").unwrap_err().code(), "influx_auth_failed");
        assert_eq!(collect(404, "").unwrap_err().kind(), "misconfigured");
        let e = collect(400, r#"{"code":"invalid","message":"partial write"}"#).unwrap_err();
        assert_eq!((e.kind(), e.code()), ("invalid-input", "influx_rejected"));
        assert!(e.message().contains("partial write"));
        assert_eq!(collect(503, "").unwrap_err().kind(), "unavailable");
        assert_eq!(collect(429, "").unwrap_err().kind(), "unavailable");
        let down = Arc::new(MockHost::new().http(&["influx.example"], |_| {
            Err(HttpError::ConnectionFailed("refused".into()))
        }));
        let e = with_host(down, || {
            p.collect(
                &CallContext::for_tests(),
                vec![point("a", &[], MetricValue::Counter(1))],
            )
        })
        .unwrap_err();
        assert_eq!(e.kind(), "unavailable");
    }
}
