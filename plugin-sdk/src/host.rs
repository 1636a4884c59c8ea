//! The host capabilities a plugin may use: [`log`], [`config`], [`kv`],
//! [`http`], [`clock`] and [`random`], as safe functions.
//!
//! # Where the calls go
//!
//! - On `target_arch = "wasm32"` (a plugin built as a component for
//!   `wasm32-wasip2`) every function calls the matching WIT import of
//!   `vaultaris:plugin@0.1.0` (`logging`, `config`, `key-value`,
//!   `outbound-http`, `clock`, `random`). The host decides what is granted:
//!   `kv` fails with [`kv::KvError::Denied`] and `http` with
//!   [`http::HttpError::DeniedHost`] unless the manifest requests them and
//!   the operator allows them.
//! - On every other target (unit tests, and the native dylib build a later
//!   native loader will load) the calls go to a [`HostCapabilities`] trait
//!   object: the one installed for the current thread with
//!   [`with_native_host`] if any, else the process-wide one installed with
//!   [`set_native_host`]. The native loader installs one per call (scoped to
//!   the tenant and plugin it serves); unit tests install a mock (see
//!   [`crate::testing::MockHost`]). With none installed, logging is a no-op,
//!   `config` returns `{}`, `kv` fails with `Unavailable`, `http` fails with
//!   `ConnectionFailed`, and `clock` / `random` fall back to the operating
//!   system's clock and CSPRNG.

use std::fmt;
use std::sync::{Arc, RwLock};

use crate::types::{DurationMs, Json, KeyValue, PluginError, Timestamp};

use crate::bindings::caps::vaultaris::plugin as raw;

/// The host side of the capabilities on non-WebAssembly targets: a native
/// plugin loader or a test mock implements it.
///
/// Every method has a default that behaves like a host that granted
/// nothing: logging is dropped, the configuration is `{}`, key-value calls
/// fail with `Denied`, HTTP requests fail with `DeniedHost`, and the clock
/// and randomness come from the operating system. Override what you need.
pub trait HostCapabilities: Send + Sync {
    /// Writes one log line (see [`log::log`]).
    fn log(&self, level: log::Level, message: &str, fields: &[KeyValue]) {
        let _ = (level, message, fields);
    }

    /// The whole configuration document (see [`config::get_all`]).
    fn config_get_all(&self) -> Json {
        Json::empty_object()
    }

    /// One top-level property of the configuration (see [`config::get`]).
    /// The default extracts it from [`HostCapabilities::config_get_all`].
    fn config_get(&self, key: &str) -> Option<Json> {
        let all = self.config_get_all().value().ok()?;
        all.get(key).map(Json::from_value)
    }

    /// See [`kv::get`].
    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, kv::KvError> {
        let _ = key;
        Err(kv::KvError::Denied)
    }

    /// See [`kv::set`].
    fn kv_set(&self, key: &str, value: &[u8], ttl: Option<DurationMs>) -> Result<(), kv::KvError> {
        let _ = (key, value, ttl);
        Err(kv::KvError::Denied)
    }

    /// See [`kv::delete`].
    fn kv_delete(&self, key: &str) -> Result<bool, kv::KvError> {
        let _ = key;
        Err(kv::KvError::Denied)
    }

    /// See [`kv::list_prefix`].
    fn kv_list_prefix(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<kv::KeyPage, kv::KvError> {
        let _ = (prefix, cursor, limit);
        Err(kv::KvError::Denied)
    }

    /// See [`kv::increment`].
    fn kv_increment(
        &self,
        key: &str,
        delta: i64,
        ttl_if_created: Option<DurationMs>,
    ) -> Result<i64, kv::KvError> {
        let _ = (key, delta, ttl_if_created);
        Err(kv::KvError::Denied)
    }

    /// See [`http::send`].
    fn http_send(&self, request: &http::Request) -> Result<http::Response, http::HttpError> {
        Err(http::HttpError::DeniedHost(http::host_of(&request.url)))
    }

    /// See [`clock::now`].
    fn clock_now(&self) -> Timestamp {
        fallback::now()
    }

    /// See [`clock::monotonic_ns`].
    fn clock_monotonic_ns(&self) -> u64 {
        fallback::monotonic_ns()
    }

    /// See [`random::bytes`].
    fn random_bytes(&self, len: u32) -> Vec<u8> {
        fallback::random_bytes(len)
    }

    /// See [`files::root`]: the real path of the activation's private
    /// directory (native builds only; `None` when not granted).
    fn files_root(&self) -> Option<String> {
        None
    }

    /// Whether [`files::resolve`] must confine paths to [`files::root`]:
    /// `true` for the server's host of a loaded native plugin; `false` for
    /// test hosts, where the plugin's own logic is under test with
    /// directories of the test's choosing.
    fn confines_files(&self) -> bool {
        false
    }
}

static GLOBAL_HOST: RwLock<Option<Arc<dyn HostCapabilities>>> = RwLock::new(None);

thread_local! {
    // The host of the innermost `with_native_host` scope on this thread. A
    // raw pointer, not an `Arc`: a thread-local with a destructor would pin
    // a native plugin's library in memory until the thread exits (glibc
    // defers `dlclose` while a library has thread-local destructors
    // registered), so the scope owns the `Arc` and this only points at it.
    static SCOPED_HOST: std::cell::Cell<Option<*const dyn HostCapabilities>> =
        const { std::cell::Cell::new(None) };
}

/// Installs the process-wide host used by the capability functions on
/// non-WebAssembly targets, replacing any previous one. Has no effect on
/// `wasm32`, where the WIT imports are always used.
pub fn set_native_host(host: Box<dyn HostCapabilities>) {
    let mut slot = GLOBAL_HOST.write().unwrap_or_else(|e| e.into_inner());
    *slot = Some(Arc::from(host));
}

/// Removes the process-wide host installed with [`set_native_host`].
pub fn clear_native_host() {
    let mut slot = GLOBAL_HOST.write().unwrap_or_else(|e| e.into_inner());
    *slot = None;
}

/// Runs `f` with `host` serving the capability functions called on this
/// thread (non-WebAssembly targets), then restores the previous one. Scopes
/// nest, and take precedence over [`set_native_host`]. A native loader wraps
/// each plugin call in one, with a host bound to that call's tenant and
/// plugin; tests use it to give each test its own mock.
pub fn with_native_host<R>(host: Arc<dyn HostCapabilities>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<*const dyn HostCapabilities>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPED_HOST.with(|s| s.set(self.0));
        }
    }
    let previous = SCOPED_HOST.with(|s| s.replace(Some(Arc::as_ptr(&host))));
    let _restore = Restore(previous);
    let result = f();
    drop(_restore);
    drop(host);
    result
}

/// The host serving this thread on non-WebAssembly targets, if any.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
fn native_host() -> Option<Arc<dyn HostCapabilities>> {
    if let Some(ptr) = SCOPED_HOST.with(std::cell::Cell::get) {
        // SAFETY: the pointer was taken from an `Arc` that the enclosing
        // `with_native_host` frame owns until after it restores the
        // previous pointer, so the `Arc` is alive here; taking one more
        // strong count makes the returned `Arc` an owned one.
        unsafe {
            Arc::increment_strong_count(ptr);
            return Some(Arc::from_raw(ptr));
        }
    }
    GLOBAL_HOST
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .cloned()
}

#[cfg(not(target_arch = "wasm32"))]
const NO_HOST: &str = "no native host is installed (see vaultaris_plugin_sdk::host)";

/// Fallbacks of the clock and randomness on native targets.
mod fallback {
    use super::Timestamp;

    pub(super) fn now() -> Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    pub(super) fn monotonic_ns() -> u64 {
        use std::sync::OnceLock;
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        let origin = ORIGIN.get_or_init(std::time::Instant::now);
        u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn random_bytes(len: u32) -> Vec<u8> {
        let mut buf = vec![0u8; len.min(4096) as usize];
        getrandom::getrandom(&mut buf).expect("the operating system's CSPRNG failed");
        buf
    }

    #[cfg(target_arch = "wasm32")]
    pub(super) fn random_bytes(len: u32) -> Vec<u8> {
        super::random::bytes(len)
    }
}

/// Structured logging into the host's log (WIT `logging`). Never fails;
/// the host caps lines per call and message sizes. Never log secrets.
pub mod log {
    use super::*;

    /// Severity of a log line.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Level {
        /// Very detailed diagnostics.
        Trace,
        /// Diagnostics useful while developing.
        Debug,
        /// Normal, noteworthy events.
        Info,
        /// Something unexpected that the plugin handled.
        Warn,
        /// Something failed.
        Error,
    }

    /// Writes one line with structured fields (the host prefixes field
    /// names with `plugin.`).
    pub fn log(level: Level, message: &str, fields: &[KeyValue]) {
        #[cfg(target_arch = "wasm32")]
        {
            use raw::logging::Level as L;
            let level = match level {
                Level::Trace => L::Trace,
                Level::Debug => L::Debug,
                Level::Info => L::Info,
                Level::Warn => L::Warn,
                Level::Error => L::Error,
            };
            let fields: Vec<raw::types::KeyValue> =
                fields.iter().cloned().map(Into::into).collect();
            raw::logging::log(level, message, &fields);
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(h) = native_host() {
            h.log(level, message, fields);
        }
    }

    /// Writes a `trace` line.
    pub fn trace(message: &str) {
        log(Level::Trace, message, &[]);
    }

    /// Writes a `debug` line.
    pub fn debug(message: &str) {
        log(Level::Debug, message, &[]);
    }

    /// Writes an `info` line.
    pub fn info(message: &str) {
        log(Level::Info, message, &[]);
    }

    /// Writes a `warn` line.
    pub fn warn(message: &str) {
        log(Level::Warn, message, &[]);
    }

    /// Writes an `error` line.
    pub fn error(message: &str) {
        log(Level::Error, message, &[]);
    }
}

/// The plugin's configuration for the calling tenant (WIT `config`),
/// validated by the host against the manifest's JSON Schema, secrets
/// decrypted. Constant for the life of an instance. The SDK already reads
/// it once and hands it to [`crate::Plugin::new`]; these functions are for
/// plugins that want to read it again.
pub mod config {
    use super::*;

    /// The whole configuration document (`{}` if there is none).
    pub fn get_all() -> Json {
        #[cfg(target_arch = "wasm32")]
        {
            crate::types::json_in(raw::config::get_all())
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host()
                .map(|h| h.config_get_all())
                .unwrap_or_else(Json::empty_object)
        }
    }

    /// One top-level property, or `None` if absent.
    pub fn get(key: &str) -> Option<Json> {
        #[cfg(target_arch = "wasm32")]
        {
            raw::config::get(key).map(crate::types::json_in)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().and_then(|h| h.config_get(key))
        }
    }
}

/// The durable key-value store scoped to (tenant, plugin) (WIT
/// `key-value`). Requires `"key_value": true` in the manifest.
pub mod kv {
    use super::*;

    /// Why a key-value operation failed.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub enum KvError {
        /// The capability is not requested or not granted.
        Denied,
        /// The key is empty or longer than 512 bytes, or `limit` is 0.
        InvalidKey,
        /// The value is over the per-value limit.
        ValueTooLarge,
        /// A quota or the per-call operation budget is exhausted.
        QuotaExceeded,
        /// The existing value is not an 8-byte counter (`increment`).
        NotACounter,
        /// The store is unreachable or timed out.
        Unavailable(String),
    }

    impl fmt::Display for KvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                KvError::Denied => f.write_str("key-value capability denied"),
                KvError::InvalidKey => f.write_str("invalid key-value key"),
                KvError::ValueTooLarge => f.write_str("key-value value too large"),
                KvError::QuotaExceeded => f.write_str("key-value quota exceeded"),
                KvError::NotACounter => f.write_str("key-value entry is not a counter"),
                KvError::Unavailable(why) => write!(f, "key-value store unavailable: {why}"),
            }
        }
    }

    impl std::error::Error for KvError {}

    /// Maps a key-value failure to a plugin error so `?` works:
    /// `Denied` → `misconfigured` (`kv_denied`), `QuotaExceeded` and
    /// `Unavailable` → `unavailable`, the rest → `internal`.
    impl From<KvError> for PluginError {
        fn from(e: KvError) -> Self {
            let message = e.to_string();
            match e {
                KvError::Denied => PluginError::misconfigured("kv_denied", message),
                KvError::InvalidKey => PluginError::internal("kv_invalid_key", message),
                KvError::ValueTooLarge => PluginError::internal("kv_value_too_large", message),
                KvError::QuotaExceeded => PluginError::unavailable("kv_quota_exceeded", message),
                KvError::NotACounter => PluginError::internal("kv_not_a_counter", message),
                KvError::Unavailable(_) => PluginError::unavailable("kv_unavailable", message),
            }
        }
    }

    /// One page of keys from [`list_prefix`].
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct KeyPage {
        /// Matching keys in ascending byte order.
        pub keys: Vec<String>,
        /// Cursor for the next page; `None` at the end.
        pub next_cursor: Option<String>,
    }

    impl From<raw::key_value::KvError> for KvError {
        fn from(e: raw::key_value::KvError) -> Self {
            use raw::key_value::KvError as R;
            match e {
                R::Denied => KvError::Denied,
                R::InvalidKey => KvError::InvalidKey,
                R::ValueTooLarge => KvError::ValueTooLarge,
                R::QuotaExceeded => KvError::QuotaExceeded,
                R::NotACounter => KvError::NotACounter,
                R::Unavailable(s) => KvError::Unavailable(s),
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn unavailable() -> KvError {
        KvError::Unavailable(NO_HOST.to_owned())
    }

    /// The value under `key`, or `None` if absent or expired.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        #[cfg(target_arch = "wasm32")]
        {
            raw::key_value::get(key).map_err(Into::into)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(|| Err(unavailable()), |h| h.kv_get(key))
        }
    }

    /// Stores `value` under `key`, expiring after `ttl` ms if given.
    pub fn set(key: &str, value: &[u8], ttl: Option<DurationMs>) -> Result<(), KvError> {
        #[cfg(target_arch = "wasm32")]
        {
            raw::key_value::set(key, value, ttl).map_err(Into::into)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(|| Err(unavailable()), |h| h.kv_set(key, value, ttl))
        }
    }

    /// Deletes `key`; `true` if an entry existed.
    pub fn delete(key: &str) -> Result<bool, KvError> {
        #[cfg(target_arch = "wasm32")]
        {
            raw::key_value::delete(key).map_err(Into::into)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(|| Err(unavailable()), |h| h.kv_delete(key))
        }
    }

    /// Lists keys starting with `prefix`, at most `limit` (capped at 1,000
    /// by the host) after `cursor`.
    pub fn list_prefix(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KeyPage, KvError> {
        #[cfg(target_arch = "wasm32")]
        {
            raw::key_value::list_prefix(prefix, cursor, limit)
                .map(|p| KeyPage {
                    keys: p.keys,
                    next_cursor: p.next_cursor,
                })
                .map_err(Into::into)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(
                || Err(unavailable()),
                |h| h.kv_list_prefix(prefix, cursor, limit),
            )
        }
    }

    /// Atomically adds `delta` to the counter under `key` and returns the
    /// new value; a missing counter starts at 0 and is created with
    /// `ttl_if_created`. One call is a fixed window:
    /// `increment("login:<key>:<window>", cost, Some(window_ms))`.
    pub fn increment(
        key: &str,
        delta: i64,
        ttl_if_created: Option<DurationMs>,
    ) -> Result<i64, KvError> {
        #[cfg(target_arch = "wasm32")]
        {
            raw::key_value::increment(key, delta, ttl_if_created).map_err(Into::into)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(
                || Err(unavailable()),
                |h| h.kv_increment(key, delta, ttl_if_created),
            )
        }
    }

    /// Reads a counter written by [`increment`] (8 bytes, little-endian).
    pub fn get_counter(key: &str) -> Result<Option<i64>, KvError> {
        match get(key)? {
            None => Ok(None),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(|b| Some(i64::from_le_bytes(b)))
                .map_err(|_| KvError::NotACounter),
        }
    }
}

/// Outbound HTTP to the hosts the manifest declares and the operator allows
/// (WIT `outbound-http`). Redirects are not followed.
pub mod http {
    use super::*;

    /// HTTP request method.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Method {
        /// GET.
        Get,
        /// HEAD.
        Head,
        /// POST.
        Post,
        /// PUT.
        Put,
        /// PATCH.
        Patch,
        /// DELETE.
        Delete,
        /// OPTIONS.
        Options,
    }

    /// An outgoing request. Build it with [`Request::get`] /
    /// [`Request::post`] / [`Request::new`] and the builder methods.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Request {
        /// The method.
        pub method: Method,
        /// Absolute URL.
        pub url: String,
        /// Request headers (hop-by-hop headers are set by the host).
        pub headers: Vec<KeyValue>,
        /// The body, if any.
        pub body: Option<Vec<u8>>,
        /// Total timeout in ms; `None` means until the call's deadline.
        pub timeout_ms: Option<u32>,
    }

    impl Request {
        /// A request with no headers, body or timeout.
        pub fn new(method: Method, url: impl Into<String>) -> Self {
            Request {
                method,
                url: url.into(),
                headers: Vec::new(),
                body: None,
                timeout_ms: None,
            }
        }

        /// A GET request.
        pub fn get(url: impl Into<String>) -> Self {
            Request::new(Method::Get, url)
        }

        /// A POST request.
        pub fn post(url: impl Into<String>) -> Self {
            Request::new(Method::Post, url)
        }

        /// Adds a header.
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.headers.push(KeyValue::new(name, value));
            self
        }

        /// Sets the body.
        pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
            self.body = Some(body.into());
            self
        }

        /// Sets a JSON body and the `content-type: application/json` header.
        pub fn json_body(self, value: &serde_json::Value) -> Self {
            self.header("content-type", "application/json")
                .body(value.to_string())
        }

        /// Sets the timeout in milliseconds.
        pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
            self.timeout_ms = Some(timeout_ms);
            self
        }
    }

    /// A received response (any status).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// Response headers, names in lower case.
        pub headers: Vec<KeyValue>,
        /// The full body.
        pub body: Vec<u8>,
    }

    impl Response {
        /// Whether the status is 2xx.
        pub fn is_success(&self) -> bool {
            (200..300).contains(&self.status)
        }

        /// The first value of header `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            crate::types::find_key_value(&self.headers, name)
        }

        /// The body as text (invalid UTF-8 replaced).
        pub fn text(&self) -> std::borrow::Cow<'_, str> {
            String::from_utf8_lossy(&self.body)
        }

        /// The body parsed as JSON.
        pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
            serde_json::from_slice(&self.body)
        }
    }

    /// Why no response could be returned.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub enum HttpError {
        /// The host is not allowed for this plugin and tenant (no traffic
        /// was sent); holds the refused host.
        DeniedHost(String),
        /// Malformed URL or header, disallowed scheme, or body over the
        /// limit.
        InvalidRequest(String),
        /// The per-call request budget is exhausted.
        TooManyRequests,
        /// The timeout or the call's deadline was reached.
        Timeout,
        /// DNS, TCP or TLS failure.
        ConnectionFailed(String),
        /// The response body was over the limit.
        ResponseTooLarge,
    }

    impl fmt::Display for HttpError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                HttpError::DeniedHost(h) => write!(f, "outbound HTTP to host {h} is not allowed"),
                HttpError::InvalidRequest(why) => write!(f, "invalid outbound request: {why}"),
                HttpError::TooManyRequests => f.write_str("outbound request budget exhausted"),
                HttpError::Timeout => f.write_str("outbound request timed out"),
                HttpError::ConnectionFailed(why) => write!(f, "outbound connection failed: {why}"),
                HttpError::ResponseTooLarge => f.write_str("upstream response too large"),
            }
        }
    }

    impl std::error::Error for HttpError {}

    /// Maps an HTTP failure to a plugin error so `?` works: `DeniedHost` →
    /// `misconfigured` (`http_denied_host`), `Timeout` /
    /// `ConnectionFailed` → `unavailable` (`upstream_timeout` /
    /// `upstream_unreachable`), the rest → `internal`.
    impl From<HttpError> for PluginError {
        fn from(e: HttpError) -> Self {
            let message = e.to_string();
            match e {
                HttpError::DeniedHost(_) => PluginError::misconfigured("http_denied_host", message),
                HttpError::InvalidRequest(_) => {
                    PluginError::internal("http_invalid_request", message)
                }
                HttpError::TooManyRequests => {
                    PluginError::internal("http_budget_exhausted", message)
                }
                HttpError::Timeout => PluginError::unavailable("upstream_timeout", message),
                HttpError::ConnectionFailed(_) => {
                    PluginError::unavailable("upstream_unreachable", message)
                }
                HttpError::ResponseTooLarge => {
                    PluginError::internal("upstream_response_too_large", message)
                }
            }
        }
    }

    /// The host (and port, if any) part of an absolute URL, as the host
    /// reports it in `DeniedHost`; the whole text if it has no `//`.
    pub fn host_of(url: &str) -> String {
        let rest = url.split_once("//").map_or(url, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        authority.to_ascii_lowercase()
    }

    /// The contract's form of a request.
    pub(crate) fn to_raw(request: &Request) -> raw::outbound_http::Request {
        use raw::outbound_http as h;
        let method = match request.method {
            Method::Get => h::Method::Get,
            Method::Head => h::Method::Head,
            Method::Post => h::Method::Post,
            Method::Put => h::Method::Put,
            Method::Patch => h::Method::Patch,
            Method::Delete => h::Method::Delete,
            Method::Options => h::Method::Options,
        };
        h::Request {
            method,
            url: request.url.clone(),
            headers: request.headers.iter().cloned().map(Into::into).collect(),
            body: request.body.clone(),
            timeout_ms: request.timeout_ms,
        }
    }

    /// The SDK's form of the contract's answer.
    pub(crate) fn from_raw(
        answer: Result<raw::outbound_http::Response, raw::outbound_http::HttpError>,
    ) -> Result<Response, HttpError> {
        use raw::outbound_http as h;
        match answer {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: crate::types::conv(r.headers),
                body: r.body,
            }),
            Err(e) => Err(match e {
                h::HttpError::DeniedHost(s) => HttpError::DeniedHost(s),
                h::HttpError::InvalidRequest(s) => HttpError::InvalidRequest(s),
                h::HttpError::TooManyRequests => HttpError::TooManyRequests,
                h::HttpError::Timeout => HttpError::Timeout,
                h::HttpError::ConnectionFailed(s) => HttpError::ConnectionFailed(s),
                h::HttpError::ResponseTooLarge => HttpError::ResponseTooLarge,
            }),
        }
    }

    /// Sends a request and waits for the complete response.
    pub fn send(request: &Request) -> Result<Response, HttpError> {
        #[cfg(target_arch = "wasm32")]
        {
            from_raw(raw::outbound_http::send(&to_raw(request)))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(
                || Err(HttpError::ConnectionFailed(NO_HOST.to_owned())),
                |h| h.http_send(request),
            )
        }
    }
}

/// The plugin's private directory (manifest `"files": true`, granted by the
/// operator): a WebAssembly build sees it preopened at `/data`; a native
/// build gets its real path from the host.
pub mod files {
    use std::path::PathBuf;

    /// Where a WebAssembly build sees the directory.
    pub const GUEST_ROOT: &str = "/data";

    /// The directory's path for this build: `/data` on `wasm32`; the real
    /// path on native targets, or `None` when the host granted none.
    pub fn root() -> Option<PathBuf> {
        #[cfg(target_arch = "wasm32")]
        {
            Some(PathBuf::from(GUEST_ROOT))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            super::native_host()
                .and_then(|h| h.files_root())
                .map(PathBuf::from)
        }
    }

    /// Resolves a configured directory the way a WebAssembly build sees
    /// it, so one configuration works for both builds.
    ///
    /// Security decision: on native targets only `/data` and plain paths
    /// below it are accepted, re-rooted at [`root`]; `..`, `.`, other
    /// absolute paths and a missing grant are refused (`misconfigured`,
    /// `directory_outside_data`). The configuration is a tenant
    /// administrator's, and a native plugin has the server's own file
    /// rights: without this a tenant could point it at another tenant's
    /// directory or anywhere the server can write, which the WebAssembly
    /// sandbox rules out by construction. On `wasm32` the path is returned
    /// as it is (the sandbox confines it), and so it is under a test host
    /// ([`super::HostCapabilities::confines_files`] `false`) or none.
    pub fn resolve(configured: &str) -> Result<PathBuf, crate::PluginError> {
        #[cfg(target_arch = "wasm32")]
        {
            Ok(PathBuf::from(configured))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            use std::path::Component;
            if !super::native_host().is_some_and(|h| h.confines_files()) {
                return Ok(PathBuf::from(configured));
            }
            let refuse = |why: &str| {
                crate::PluginError::misconfigured(
                    "directory_outside_data",
                    format!("directory {configured:?}: {why}"),
                )
            };
            let rest = configured
                .strip_prefix(GUEST_ROOT)
                .filter(|r| r.is_empty() || r.starts_with('/'))
                .ok_or_else(|| refuse("a native build reaches only its own /data directory"))?;
            let rest = std::path::Path::new(rest.trim_start_matches('/'));
            if !rest.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(refuse("only plain names below /data are allowed"));
            }
            let root = root().ok_or_else(|| refuse("the host granted this plugin no directory"))?;
            Ok(root.join(rest))
        }
    }
}

/// The host's clock (WIT `clock`).
pub mod clock {
    use super::*;

    /// Current wall-clock time, ms since the Unix epoch (UTC).
    pub fn now() -> Timestamp {
        #[cfg(target_arch = "wasm32")]
        {
            raw::clock::now()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(fallback::now, |h| h.clock_now())
        }
    }

    /// A monotonic clock in nanoseconds from an arbitrary origin.
    pub fn monotonic_ns() -> u64 {
        #[cfg(target_arch = "wasm32")]
        {
            raw::clock::monotonic_ns()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(fallback::monotonic_ns, |h| h.clock_monotonic_ns())
        }
    }
}

/// Cryptographically secure randomness from the host (WIT `random`).
pub mod random {
    #[allow(unused_imports)]
    use super::*;

    /// `len` random bytes (the host caps one call at 4,096; use [`fill`]
    /// for more).
    pub fn bytes(len: u32) -> Vec<u8> {
        #[cfg(target_arch = "wasm32")]
        {
            raw::random::bytes(len)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            native_host().map_or_else(|| fallback::random_bytes(len), |h| h.random_bytes(len))
        }
    }

    /// Fills `buf` with random bytes, in as many calls as needed.
    pub fn fill(buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let want = (buf.len() - done).min(4096);
            let got = bytes(want as u32);
            if got.is_empty() {
                panic!("host returned no random bytes");
            }
            let n = got.len().min(want);
            buf[done..done + n].copy_from_slice(&got[..n]);
            done += n;
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    struct FixedClock(Timestamp);
    impl HostCapabilities for FixedClock {
        fn clock_now(&self) -> Timestamp {
            self.0
        }
    }

    /// The server's host of a loaded native plugin, as far as files go.
    struct Confining(Option<&'static str>);
    impl HostCapabilities for Confining {
        fn files_root(&self) -> Option<String> {
            self.0.map(str::to_owned)
        }
        fn confines_files(&self) -> bool {
            true
        }
    }

    #[test]
    fn native_builds_reach_only_their_own_directory() {
        use std::path::PathBuf;
        let granted = Arc::new(Confining(Some("/srv/files/t1/p")));
        with_native_host(granted, || {
            assert_eq!(
                files::resolve("/data"),
                Ok(PathBuf::from("/srv/files/t1/p"))
            );
            assert_eq!(
                files::resolve("/data/audit/2026"),
                Ok(PathBuf::from("/srv/files/t1/p/audit/2026"))
            );
            for escape in ["/data/../t2/p", "/data/./x", "/etc", "/data2", "data", "/"] {
                let e = files::resolve(escape).unwrap_err();
                assert_eq!(e.code(), "directory_outside_data", "{escape}");
            }
        });
        with_native_host(Arc::new(Confining(None)), || {
            assert!(files::resolve("/data").is_err(), "no grant, no directory");
        });
        // Test hosts (and none) leave the plugin's own tests their paths.
        assert_eq!(files::resolve("/tmp/x"), Ok(PathBuf::from("/tmp/x")));
        with_native_host(Arc::new(FixedClock(0)), || {
            assert_eq!(files::resolve("/tmp/x"), Ok(PathBuf::from("/tmp/x")));
        });
    }

    #[test]
    fn no_host_means_unavailable_and_defaults() {
        // Runs on its own thread with no scoped host; the global one is
        // never set in this crate's tests.
        std::thread::spawn(|| {
            assert!(matches!(kv::get("k"), Err(kv::KvError::Unavailable(_))));
            assert!(matches!(
                http::send(&http::Request::get("https://example.com/")),
                Err(http::HttpError::ConnectionFailed(_))
            ));
            assert_eq!(config::get_all().as_str(), "{}");
            assert!(clock::now() > 1_600_000_000_000);
            assert_eq!(random::bytes(16).len(), 16);
            log::info("dropped");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn scoped_hosts_nest_and_default_methods_deny() {
        with_native_host(Arc::new(FixedClock(5)), || {
            assert_eq!(clock::now(), 5);
            with_native_host(Arc::new(FixedClock(7)), || assert_eq!(clock::now(), 7));
            assert_eq!(clock::now(), 5);
            assert_eq!(kv::get("k"), Err(kv::KvError::Denied));
            assert_eq!(
                http::send(&http::Request::get("https://Evil.example:8443/x?y")),
                Err(http::HttpError::DeniedHost("evil.example:8443".to_owned()))
            );
        });
    }

    #[test]
    fn errors_map_to_plugin_errors() {
        let e: PluginError = kv::KvError::Denied.into();
        assert_eq!((e.kind(), e.code()), ("misconfigured", "kv_denied"));
        let e: PluginError = http::HttpError::Timeout.into();
        assert_eq!((e.kind(), e.code()), ("unavailable", "upstream_timeout"));
    }

    #[test]
    fn random_fill_spans_several_calls() {
        let mut buf = vec![0u8; 10_000];
        random::fill(&mut buf);
        assert!(buf.iter().any(|b| *b != 0));
    }
}
