//! Helpers for native unit tests of plugins: a [`MockHost`] that serves the
//! host capabilities in memory, and [`check_manifest`], which compares a
//! plugin's `manifest.json` with what it exports.
//!
//! ```
//! use std::sync::Arc;
//! use vaultaris_plugin_sdk::host::{kv, with_native_host};
//! use vaultaris_plugin_sdk::testing::MockHost;
//!
//! let host = Arc::new(MockHost::new().grant_kv());
//! with_native_host(host.clone(), || {
//!     assert_eq!(kv::increment("hits", 1, Some(60_000)).unwrap(), 1);
//!     assert_eq!(kv::increment("hits", 2, Some(60_000)).unwrap(), 3);
//! });
//! host.advance_ms(60_000);
//! with_native_host(host, || assert_eq!(kv::get("hits").unwrap(), None));
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::host::http::{HttpError, Request, Response, host_of};
use crate::host::kv::{KeyPage, KvError};
use crate::host::log::Level;
use crate::host::{self, HostCapabilities};
use crate::{Category, ExportedPlugin, Json, KeyValue, Timestamp};

type KvMap = BTreeMap<String, (Vec<u8>, Option<Timestamp>)>;
type HttpHandler = Box<dyn Fn(&Request) -> Result<Response, HttpError> + Send + Sync>;

/// An in-memory host for unit tests. Denies what it was not told to grant,
/// like the real host: key-value needs [`MockHost::grant_kv`], outbound
/// HTTP needs [`MockHost::http`] with the allowed hosts. Its clock stands
/// still unless moved with [`MockHost::advance_ms`]; key-value TTLs follow
/// it.
pub struct MockHost {
    config: Json,
    kv_granted: bool,
    kv: Mutex<KvMap>,
    now: AtomicI64,
    allowed_hosts: Vec<String>,
    http: Option<HttpHandler>,
    requests: Mutex<Vec<Request>>,
    logs: Mutex<Vec<(Level, String)>>,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost::new()
    }
}

impl MockHost {
    /// A host with configuration `{}`, nothing granted and the clock at
    /// 1,700,000,000,000 ms (the `now` of [`crate::CallContext::for_tests`]).
    pub fn new() -> Self {
        MockHost {
            config: Json::empty_object(),
            kv_granted: false,
            kv: Mutex::new(BTreeMap::new()),
            now: AtomicI64::new(1_700_000_000_000),
            allowed_hosts: Vec::new(),
            http: None,
            requests: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
        }
    }

    /// Sets the configuration returned by `config::get-all`.
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.config = Json::from_value(&config);
        self
    }

    /// Grants the key-value capability.
    pub fn grant_kv(mut self) -> Self {
        self.kv_granted = true;
        self
    }

    /// Grants outbound HTTP to `allowed_hosts` (`host` or `host:port`) and
    /// answers requests to them with `handler`; other hosts get
    /// `DeniedHost`.
    pub fn http<F>(mut self, allowed_hosts: &[&str], handler: F) -> Self
    where
        F: Fn(&Request) -> Result<Response, HttpError> + Send + Sync + 'static,
    {
        self.allowed_hosts = allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        self.http = Some(Box::new(handler));
        self
    }

    /// Sets the clock.
    pub fn at(self, now: Timestamp) -> Self {
        self.now.store(now, Ordering::SeqCst);
        self
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// The requests sent to allowed hosts so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The log lines written so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.lock().unwrap().clone()
    }

    /// The unexpired key-value keys.
    pub fn kv_keys(&self) -> Vec<String> {
        let now = self.clock_now();
        self.kv
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (_, exp))| exp.is_none_or(|e| e > now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn check_kv(&self, key: &str) -> Result<(), KvError> {
        if !self.kv_granted {
            return Err(KvError::Denied);
        }
        if key.is_empty() || key.len() > 512 {
            return Err(KvError::InvalidKey);
        }
        Ok(())
    }

    fn live(&self, map: &KvMap, key: &str) -> Option<Vec<u8>> {
        let now = self.clock_now();
        map.get(key)
            .filter(|(_, exp)| exp.is_none_or(|e| e > now))
            .map(|(v, _)| v.clone())
    }

    fn expiry(&self, ttl: Option<u64>) -> Option<Timestamp> {
        ttl.map(|t| {
            self.clock_now()
                .saturating_add(i64::try_from(t).unwrap_or(i64::MAX))
        })
    }
}

impl HostCapabilities for MockHost {
    fn log(&self, level: Level, message: &str, _fields: &[KeyValue]) {
        self.logs.lock().unwrap().push((level, message.to_owned()));
    }

    fn config_get_all(&self) -> Json {
        self.config.clone()
    }

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.check_kv(key)?;
        Ok(self.live(&self.kv.lock().unwrap(), key))
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), KvError> {
        self.check_kv(key)?;
        if value.len() > 64 * 1024 {
            return Err(KvError::ValueTooLarge);
        }
        let exp = self.expiry(ttl);
        self.kv
            .lock()
            .unwrap()
            .insert(key.to_owned(), (value.to_vec(), exp));
        Ok(())
    }

    fn kv_delete(&self, key: &str) -> Result<bool, KvError> {
        self.check_kv(key)?;
        let mut map = self.kv.lock().unwrap();
        let existed = self.live(&map, key).is_some();
        map.remove(key);
        Ok(existed)
    }

    fn kv_list_prefix(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, KvError> {
        if !self.kv_granted {
            return Err(KvError::Denied);
        }
        if limit == 0 {
            return Err(KvError::InvalidKey);
        }
        let limit = limit.min(1000) as usize;
        let now = self.clock_now();
        let map = self.kv.lock().unwrap();
        let mut keys: Vec<String> = map
            .iter()
            .filter(|(k, (_, exp))| {
                k.starts_with(prefix)
                    && exp.is_none_or(|e| e > now)
                    && cursor.is_none_or(|c| k.as_str() > c)
            })
            .map(|(k, _)| k.clone())
            .take(limit + 1)
            .collect();
        let next_cursor = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPage { keys, next_cursor })
    }

    fn kv_increment(
        &self,
        key: &str,
        delta: i64,
        ttl_if_created: Option<u64>,
    ) -> Result<i64, KvError> {
        self.check_kv(key)?;
        let mut map = self.kv.lock().unwrap();
        let (current, exp) = match self.live(&map, key) {
            None => (0, self.expiry(ttl_if_created)),
            Some(bytes) => {
                let b = <[u8; 8]>::try_from(bytes.as_slice()).map_err(|_| KvError::NotACounter)?;
                (i64::from_le_bytes(b), map.get(key).and_then(|(_, e)| *e))
            }
        };
        let new = current.wrapping_add(delta);
        map.insert(key.to_owned(), (new.to_le_bytes().to_vec(), exp));
        Ok(new)
    }

    fn http_send(&self, request: &Request) -> Result<Response, HttpError> {
        let host = host_of(&request.url);
        let allowed = self.allowed_hosts.contains(&host);
        match (&self.http, allowed) {
            (Some(handler), true) => {
                self.requests.lock().unwrap().push(request.clone());
                handler(request)
            }
            _ => Err(HttpError::DeniedHost(host)),
        }
    }

    fn clock_now(&self) -> Timestamp {
        self.now.load(Ordering::SeqCst)
    }
}

/// Runs `f` with `host` serving the capabilities on this thread: shorthand
/// for [`host::with_native_host`].
pub fn with_host<R>(host: std::sync::Arc<MockHost>, f: impl FnOnce() -> R) -> R {
    host::with_native_host(host, f)
}

/// A response with `status` and `body` and no headers.
pub fn response(status: u16, body: impl Into<Vec<u8>>) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

/// Checks a plugin's `manifest.json` against the contract and against
/// what `P` exports: required fields present, `contract` equal to
/// [`crate::CONTRACT_VERSION`], `kind` `wasm` or `native`, `categories`
/// exactly the exported ones, `capabilities` well-formed, `config_schema` a
/// JSON Schema object, `limits` (if present) positive integers. Returns the
/// parsed manifest.
pub fn check_manifest<P: ExportedPlugin>(manifest: &str) -> Result<serde_json::Value, String> {
    let m: serde_json::Value =
        serde_json::from_str(manifest).map_err(|e| format!("not JSON: {e}"))?;
    let obj = m.as_object().ok_or("manifest is not an object")?;
    for key in ["id", "name", "version", "contract", "kind", "description"] {
        let v = obj
            .get(key)
            .and_then(|v| v.as_str())
            .ok_or(format!("`{key}` missing or not a string"))?;
        if v.is_empty() {
            return Err(format!("`{key}` is empty"));
        }
    }
    let id = obj["id"].as_str().unwrap_or_default();
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!("id `{id}` must be lower-case kebab-case"));
    }
    if obj["contract"] != crate::CONTRACT_VERSION {
        return Err(format!("contract must be {}", crate::CONTRACT_VERSION));
    }
    if !matches!(obj["kind"].as_str(), Some("wasm" | "native")) {
        return Err("kind must be wasm or native".into());
    }
    let listed = obj
        .get("categories")
        .and_then(|c| c.as_array())
        .ok_or("`categories` missing")?
        .iter()
        .map(|c| {
            c.as_str()
                .and_then(Category::from_name)
                .ok_or(format!("unknown category {c}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    listed_sorted.dedup();
    let mut exported = P::CATEGORIES.to_vec();
    exported.sort();
    if listed_sorted.len() != listed.len() || listed_sorted != exported {
        return Err(format!(
            "categories {listed:?} differ from the exported {:?}",
            P::CATEGORIES
        ));
    }
    let caps = obj
        .get("capabilities")
        .and_then(|c| c.as_object())
        .ok_or("`capabilities` missing")?;
    if !caps.get("key_value").is_some_and(|v| v.is_boolean())
        || !caps.get("files").is_some_and(|v| v.is_boolean())
    {
        return Err("capabilities.key_value and capabilities.files must be booleans".into());
    }
    let hosts = caps
        .get("outbound_http")
        .and_then(|v| v.as_array())
        .ok_or("capabilities.outbound_http must be a list")?;
    for h in hosts {
        let h = h.as_str().ok_or("outbound_http entries must be strings")?;
        if h.is_empty() || h.contains('/') || h.contains('*') {
            return Err(format!(
                "outbound_http entry `{h}` must be `host` or `host:port`"
            ));
        }
    }
    let schema = obj
        .get("config_schema")
        .and_then(|s| s.as_object())
        .ok_or("`config_schema` missing")?;
    if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("config_schema must describe an object".into());
    }
    if let Some(limits) = obj.get("limits") {
        let limits = limits.as_object().ok_or("limits must be an object")?;
        for (k, v) in limits {
            if ![
                "fuel",
                "memory_mib",
                "deadline_ms",
                "max_input_kib",
                "max_output_kib",
            ]
            .contains(&k.as_str())
            {
                return Err(format!("unknown limit `{k}`"));
            }
            if v.as_u64().is_none_or(|n| n == 0) {
                return Err(format!("limit `{k}` must be a positive integer"));
            }
        }
    }
    if obj.contains_key("sha256") {
        return Err("sha256 is added by packaging, not in the source manifest".into());
    }
    Ok(m)
}
