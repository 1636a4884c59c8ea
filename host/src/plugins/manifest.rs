//! The plugin manifest: what a plugin is, what it implements, what it may
//! touch and what its configuration looks like.
//!
//! Security decisions:
//! - The manifest is checked completely at install time (id shape, contract
//!   version, categories, capability requests, limits within the operator's
//!   maxima, a compilable JSON Schema), so nothing about it can fail later at
//!   call time.
//! - Capabilities are requests: `outbound_http` hosts are granted only when
//!   the operator's allow-list (`PLUGIN_HTTP_ALLOWED_HOSTS`) also names them,
//!   and `files` only when the operator enabled plugin file storage.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::limits::LimitOverrides;

/// The contract versions this host can load (newest last).
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0"];

/// One of the twelve plugin categories of the contract.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Verifies credentials the core does not know.
    AuthProvider,
    /// Federates sign-in with an upstream identity provider.
    IdentityProvider,
    /// Stores plugin and other pluggable data.
    StorageBackend,
    /// Delivers rendered messages (mail, SMS, ...).
    NotificationChannel,
    /// Encrypts and decrypts fields at rest with a key id.
    EncryptionProvider,
    /// Decides allow/deny for (subject, action, resource, context).
    PolicyEngine,
    /// Receives batches of audit records.
    AuditSink,
    /// Adds or removes claims of issued tokens.
    JwtCustomizer,
    /// Decides whether a request key is over its limit.
    RateLimiter,
    /// Receives batches of metrics.
    MetricsCollector,
    /// Returns field-level violations for user input.
    InputValidator,
    /// Vetoes pre-events and observes post-events of users and sessions.
    LifecycleHook,
}

impl Category {
    /// Every category, in contract order.
    pub const ALL: [Category; 12] = [
        Category::AuthProvider,
        Category::IdentityProvider,
        Category::StorageBackend,
        Category::NotificationChannel,
        Category::EncryptionProvider,
        Category::PolicyEngine,
        Category::AuditSink,
        Category::JwtCustomizer,
        Category::RateLimiter,
        Category::MetricsCollector,
        Category::InputValidator,
        Category::LifecycleHook,
    ];

    /// The WIT name (`jwt-customizer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::AuthProvider => "auth-provider",
            Category::IdentityProvider => "identity-provider",
            Category::StorageBackend => "storage-backend",
            Category::NotificationChannel => "notification-channel",
            Category::EncryptionProvider => "encryption-provider",
            Category::PolicyEngine => "policy-engine",
            Category::AuditSink => "audit-sink",
            Category::JwtCustomizer => "jwt-customizer",
            Category::RateLimiter => "rate-limiter",
            Category::MetricsCollector => "metrics-collector",
            Category::InputValidator => "input-validator",
            Category::LifecycleHook => "lifecycle-hook",
        }
    }

    /// Parses a WIT category name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// What happens to the request when a plugin of this category fails,
    /// unless the activation chose otherwise where that is allowed
    /// (DESIGN.md: security decisions fail closed, observers fail open).
    pub fn default_failure_mode(self) -> FailureMode {
        match self {
            Category::AuditSink | Category::MetricsCollector => FailureMode::Open,
            _ => FailureMode::Closed,
        }
    }

    /// Whether an activation may choose to fail open. Security decisions
    /// (auth-provider, policy-engine, input-validator, rate-limiter,
    /// encryption-provider, storage-backend) always fail closed: failing
    /// open there would turn a broken plugin into an open door or lost data.
    pub fn may_fail_open(self) -> bool {
        matches!(
            self,
            Category::JwtCustomizer
                | Category::LifecycleHook
                | Category::NotificationChannel
                | Category::AuditSink
                | Category::MetricsCollector
                | Category::IdentityProvider
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fail closed (the request fails) or open (the request goes on without
/// the plugin's contribution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// The request that needed the plugin fails.
    Closed,
    /// The request continues as if the plugin were not active.
    Open,
}

/// How the plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// A WebAssembly component, sandboxed.
    Wasm,
    /// A native dylib (trusted code; not loadable yet).
    Native,
}

/// Capabilities the plugin requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRequest {
    /// Use of the key-value store scoped to (tenant, plugin).
    #[serde(default)]
    pub key_value: bool,
    /// Hosts (`host` or `host:port`) the plugin may send HTTP requests to.
    #[serde(default)]
    pub outbound_http: Vec<String>,
    /// A private directory, preopened at `/data`, per (tenant, plugin).
    #[serde(default)]
    pub files: bool,
}

/// A plugin manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    /// Stable identifier: lowercase letters, digits and `-`, 1–64 characters.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
    /// The plugin's own version (semantic version).
    pub version: String,
    /// The contract version the component was built against (`0.1.0`).
    pub contract: String,
    /// `wasm` or `native`.
    pub kind: PluginKind,
    /// The categories the component exports.
    pub categories: Vec<Category>,
    /// What the plugin does.
    #[serde(default)]
    pub description: Option<String>,
    /// Requested capabilities.
    #[serde(default)]
    pub capabilities: CapabilityRequest,
    /// JSON Schema of the per-tenant configuration. Properties marked
    /// `"writeOnly": true` are secrets: encrypted at rest, never returned.
    #[serde(default = "empty_object_schema")]
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
    /// Default limits of this plugin (within the operator's maxima).
    #[serde(default)]
    pub limits: LimitOverrides,
    /// SHA-256 (hex) of the component; required to install.
    #[serde(default)]
    pub sha256: Option<String>,
    /// File name of the component beside the manifest (plugins directory).
    #[serde(default)]
    pub artifact: Option<String>,
}

fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({ "type": "object" })
}

/// Why a manifest cannot be installed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

impl PluginManifest {
    /// Checks everything that can be checked without the component.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError(m));
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || self.id.starts_with('-')
        {
            return bad(format!(
                "id {:?}: use 1-64 lowercase letters, digits and '-'",
                self.id
            ));
        }
        if !is_semver(&self.version) {
            return bad(format!(
                "version {:?} is not a semantic version",
                self.version
            ));
        }
        if !SUPPORTED_CONTRACTS.contains(&self.contract.as_str()) {
            return bad(format!(
                "contract {:?} is not supported (this host loads {})",
                self.contract,
                SUPPORTED_CONTRACTS.join(", ")
            ));
        }
        if self.categories.is_empty() {
            return bad("categories: at least one is required".into());
        }
        let set: BTreeSet<_> = self.categories.iter().collect();
        if set.len() != self.categories.len() {
            return bad("categories: duplicates".into());
        }
        for h in &self.capabilities.outbound_http {
            if !valid_host_pattern(h) {
                return bad(format!(
                    "capabilities.outbound_http: {h:?} is not a host or host:port"
                ));
            }
        }
        self.limits
            .check(&super::limits::OPERATOR_MAXIMA)
            .map_err(ManifestError)?;
        if !self.config_schema.is_object() {
            return bad("config_schema must be a JSON object".into());
        }
        if let Some(s) = &self.sha256
            && (s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return bad("sha256 must be 64 hex digits".into());
        }
        if let Some(a) = &self.artifact
            && (a.contains('/') || a.contains('\\') || a.starts_with('.'))
        {
            return bad("artifact must be a plain file name".into());
        }
        Ok(())
    }

    /// The names of secret configuration properties (`writeOnly: true`).
    pub fn secret_fields(&self) -> Vec<String> {
        self.config_schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, s)| s.get("writeOnly").and_then(|w| w.as_bool()) == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<_> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_host_pattern(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Whether `pattern` (`host` or `host:port`) matches a request to `host`
/// on `port`. Host names compare case-insensitively; a pattern without a
/// port matches every port.
pub fn host_matches(pattern: &str, host: &str, port: u16) -> bool {
    match pattern.rsplit_once(':') {
        Some((h, p)) => h.eq_ignore_ascii_case(host) && p.parse::<u16>().ok() == Some(port),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> PluginManifest {
        serde_json::from_value(serde_json::json!({
            "id": "tenant-claims", "version": "0.1.0", "contract": "0.1.0", "kind": "wasm",
            "categories": ["jwt-customizer"],
            "config_schema": {"type": "object", "properties": {"api_key": {"type": "string", "writeOnly": true}}}
        }))
        .unwrap()
    }

    #[test]
    fn validates_shapes() {
        let m = manifest();
        m.validate().unwrap();
        assert_eq!(m.secret_fields(), vec!["api_key".to_string()]);
        for (field, value) in [
            ("id", serde_json::json!("Bad_Id")),
            ("version", serde_json::json!("1.0")),
            ("contract", serde_json::json!("9.9.9")),
            ("categories", serde_json::json!([])),
        ] {
            let mut v = serde_json::to_value(manifest()).unwrap();
            v[field] = value;
            let m: PluginManifest = serde_json::from_value(v).unwrap();
            assert!(m.validate().is_err(), "{field}");
        }
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("api.example.com", "API.example.com", 443));
        assert!(host_matches("127.0.0.1:8080", "127.0.0.1", 8080));
        assert!(!host_matches("127.0.0.1:8080", "127.0.0.1", 8081));
        assert!(!host_matches("example.com", "evil-example.com", 443));
        assert!(valid_host_pattern("a.b:1"));
        assert!(!valid_host_pattern("a/b"));
        assert!(!valid_host_pattern("a:0"));
    }
}
