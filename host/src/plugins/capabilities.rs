//! The host side of the capability imports (`logging`, `config`,
//! `key-value`, `outbound-http`, `clock`, `random`) for contract 0.1.0.
//!
//! Security decisions:
//! - `key-value` and `outbound-http` are linked into every instance but
//!   answer `denied` unless the activation was granted them, so any
//!   toolchain's component instantiates and a plugin learns at call time,
//!   with a typed error, what it may not do.
//! - Outbound HTTP goes only to granted hosts (manifest ∩ operator
//!   allow-list), over http or https, never follows redirects (a redirect
//!   could lead anywhere), reads at most 1 MiB, makes at most 8 requests
//!   per call, and never outlives the call's deadline.
//! - Logging is rate-limited per call and attributed to tenant and plugin;
//!   a plugin cannot forge other log fields.

use std::time::{Duration, Instant};

use rand::RngCore;

use super::bindings::v0_1_0::caps::vaultaris::plugin::{
    clock, config, key_value, logging, outbound_http, random, types,
};
use super::kv::{KvFailure, check_key};
use super::manifest::host_matches;
use super::state::{
    MAX_HTTP_REQUESTS_PER_CALL, MAX_HTTP_RESPONSE_BYTES, MAX_LOG_LINES_PER_CALL, PluginState,
};

impl types::Host for PluginState {}

impl logging::Host for PluginState {
    async fn log(&mut self, level: logging::Level, message: String, fields: Vec<types::KeyValue>) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            return;
        }
        let mut message = message;
        truncate(&mut message, 1024);
        // Bounded and escaped: keys and values are cut and printed with
        // `{:?}`, so a plugin cannot forge log lines or flood the log.
        let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        let fields: String = fields
            .iter()
            .take(16)
            .map(|kv| format!("{:?}={:?} ", clip(&kv.key, 64), clip(&kv.value, 512)))
            .collect();
        let message = message.escape_debug().to_string();
        let a = &self.activation;
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "vaultaris::plugin", tenant = %a.tenant_id, plugin = %a.plugin_id,
                    request_id = %self.request_id, fields = %fields.trim_end(), "{message}")
            };
        }
        match level {
            logging::Level::Trace => emit!(trace),
            logging::Level::Debug => emit!(debug),
            logging::Level::Info => emit!(info),
            logging::Level::Warn => emit!(warn),
            logging::Level::Error => emit!(error),
        }
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

impl config::Host for PluginState {
    async fn get_all(&mut self) -> String {
        self.activation.config_json.clone()
    }

    async fn get(&mut self, key: String) -> Option<String> {
        self.activation.config.get(&key).map(|v| v.to_string())
    }
}

fn kv_error(e: KvFailure) -> key_value::KvError {
    match e {
        KvFailure::InvalidKey => key_value::KvError::InvalidKey,
        KvFailure::ValueTooLarge => key_value::KvError::ValueTooLarge,
        KvFailure::QuotaExceeded => key_value::KvError::QuotaExceeded,
        KvFailure::NotACounter => key_value::KvError::NotACounter,
        KvFailure::Unavailable(m) => key_value::KvError::Unavailable(m),
    }
}

impl PluginState {
    fn kv_allowed(&self, key: &str) -> Result<(), key_value::KvError> {
        if !self.activation.key_value {
            return Err(key_value::KvError::Denied);
        }
        check_key(key).map_err(kv_error)
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Runs a backend operation no longer than the call's remaining time.
async fn bounded<T>(
    remaining: Duration,
    f: impl Future<Output = Result<T, KvFailure>>,
) -> Result<T, key_value::KvError> {
    match tokio::time::timeout(remaining, f).await {
        Ok(r) => r.map_err(kv_error),
        Err(_) => Err(key_value::KvError::Unavailable("deadline reached".into())),
    }
}

impl key_value::Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        bounded(self.remaining(), a.kv.get(a.tenant_id, &a.plugin_id, &key)).await
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl: Option<u64>,
    ) -> Result<(), key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        let ttl = ttl.map(Duration::from_millis);
        bounded(
            self.remaining(),
            a.kv.set(a.tenant_id, &a.plugin_id, &key, &value, ttl),
        )
        .await
    }

    async fn delete(&mut self, key: String) -> Result<bool, key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        bounded(
            self.remaining(),
            a.kv.delete(a.tenant_id, &a.plugin_id, &key),
        )
        .await
    }

    async fn list_prefix(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<key_value::KeyPage, key_value::KvError> {
        if !self.activation.key_value {
            return Err(key_value::KvError::Denied);
        }
        let a = self.activation.clone();
        let page = bounded(
            self.remaining(),
            a.kv.list_prefix(
                a.tenant_id,
                &a.plugin_id,
                &prefix,
                cursor.as_deref(),
                limit.clamp(1, 1000),
            ),
        )
        .await?;
        Ok(key_value::KeyPage {
            keys: page.keys,
            next_cursor: page.next_cursor,
        })
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
        ttl_if_created: Option<u64>,
    ) -> Result<i64, key_value::KvError> {
        self.kv_allowed(&key)?;
        let a = self.activation.clone();
        let ttl = ttl_if_created.map(Duration::from_millis);
        bounded(
            self.remaining(),
            a.kv.increment(a.tenant_id, &a.plugin_id, &key, delta, ttl),
        )
        .await
    }
}

impl outbound_http::Host for PluginState {
    async fn send(
        &mut self,
        request: outbound_http::Request,
    ) -> Result<outbound_http::Response, outbound_http::HttpError> {
        use outbound_http::HttpError;
        let url = url::Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest("only http and https URLs".into()));
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(0);
        let granted = self
            .activation
            .http_hosts
            .iter()
            .any(|p| host_matches(p, host.trim_start_matches('[').trim_end_matches(']'), port));
        if !granted {
            return Err(HttpError::DeniedHost(host));
        }
        self.http_requests += 1;
        if self.http_requests > MAX_HTTP_REQUESTS_PER_CALL {
            return Err(HttpError::TooManyRequests);
        }
        let remaining = self.remaining();
        let timeout = request
            .timeout_ms
            .map(|t| Duration::from_millis(t.into()))
            .unwrap_or(remaining)
            .min(remaining);
        if timeout.is_zero() {
            return Err(HttpError::Timeout);
        }
        let method = match request.method {
            outbound_http::Method::Get => reqwest::Method::GET,
            outbound_http::Method::Head => reqwest::Method::HEAD,
            outbound_http::Method::Post => reqwest::Method::POST,
            outbound_http::Method::Put => reqwest::Method::PUT,
            outbound_http::Method::Patch => reqwest::Method::PATCH,
            outbound_http::Method::Delete => reqwest::Method::DELETE,
            outbound_http::Method::Options => reqwest::Method::OPTIONS,
        };
        let mut builder = self.activation.http.request(method, url).timeout(timeout);
        for h in &request.headers {
            let name = reqwest::header::HeaderName::from_bytes(h.key.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("header name {:?}", h.key)))?;
            if name == reqwest::header::HOST {
                return Err(HttpError::InvalidRequest(
                    "the Host header is set by the host".into(),
                ));
            }
            let value = reqwest::header::HeaderValue::from_str(&h.value)
                .map_err(|_| HttpError::InvalidRequest(format!("header value of {:?}", h.key)))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| {
            if e.is_timeout() {
                HttpError::Timeout
            } else {
                HttpError::ConnectionFailed(e.without_url().to_string())
            }
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some(types::KeyValue {
                    key: k.as_str().to_string(),
                    value: v.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_HTTP_RESPONSE_BYTES {
                        return Err(HttpError::ResponseTooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(HttpError::Timeout),
                Err(e) => return Err(HttpError::ConnectionFailed(e.without_url().to_string())),
            }
        }
        Ok(outbound_http::Response {
            status,
            headers,
            body,
        })
    }
}

impl clock::Host for PluginState {
    async fn now(&mut self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    async fn monotonic_ns(&mut self) -> u64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Most random bytes one `random.bytes` call returns.
pub const MAX_RANDOM_BYTES: u32 = 64 * 1024;

impl random::Host for PluginState {
    async fn bytes(&mut self, len: u32) -> Vec<u8> {
        let mut out = vec![0u8; len.min(MAX_RANDOM_BYTES) as usize];
        rand::rngs::OsRng.fill_bytes(&mut out);
        out
    }
}
