//! Native (dylib) plugins against WebAssembly components, printed (nothing
//! asserted):
//!
//! 1. in process, per category: the warm cost of one call through the hook
//!    facade the core uses (`PluginRuntime::customize_jwt`,
//!    `validate_input`, `before_event`, ...) with the WebAssembly build and
//!    with the native build of the same reference plugin, each kind in its
//!    own runtime and every plugin in its own tenant: the mean over
//!    `BENCH_CALLS` calls (`BENCH_IO_CALLS` for hooks that write files or
//!    send HTTP requests) after warm-up calls. Plugins that send requests
//!    reach a small HTTP server this binary starts on 127.0.0.1. Then two
//!    reference costs (a Tokio `spawn_blocking` round trip, which every
//!    native call pays on the blocking pool (not inline), and
//!    the facade of a tenant without plugins), and the time `prepare` took
//!    per plugin (a fresh compilation for a component; storing, hashing,
//!    loading and checking the library for a native build);
//! 2. over HTTP against the release server pinned to one core with one
//!    Tokio worker: client_credentials tokens per second without a plugin,
//!    with the WebAssembly tenant-claims and with the native tenant-claims
//!    (each in its own tenant), then the native one on a second server
//!    calling it inline (`PLUGIN_NATIVE_CALLS=inline`), and what each adds
//!    per token.
//!
//! The native build is measured both ways: on the blocking pool (the
//! default, where the deadline answers even for a call that never returns)
//! and inline on the worker (no thread hand-off; the deadline is checked
//! when the call returns).
//!
//! The bench builds nothing. Build the server, the bench and the plugins'
//! two kinds of artifact first (`$P` names the plugin crates):
//!
//! ```text
//! P="-p vaultaris-plugin-tenant-claims -p vaultaris-plugin-noop-customizer \
//!    -p vaultaris-plugin-password-policy -p vaultaris-plugin-disposable-email-veto \
//!    -p vaultaris-plugin-abac-policy -p vaultaris-plugin-fixed-window-limiter \
//!    -p vaultaris-plugin-aes-gcm-encryption -p vaultaris-plugin-jsonl-audit-sink \
//!    -p vaultaris-plugin-file-store -p vaultaris-plugin-oidc-upstream \
//!    -p vaultaris-plugin-influx-metrics -p vaultaris-plugin-http-mail \
//!    -p vaultaris-plugin-legacy-http-auth"
//! cargo build --release -p vaultaris -p vaultaris-bench --bin vaultaris --bin bench-native
//! cargo build --release --target wasm32-wasip2 --target-dir target/plugins $P  # components
//! cargo build --release --target-dir target/plugins $P                         # native dylibs
//! taskset -c 1 target/release/bench-native
//! ```
//!
//! Pinning changes what a native call costs: on one core (as above) its
//! hop to the blocking pool is a same-core thread switch; unpinned it is a
//! wake-up on the other core, several times dearer (the reference line
//! shows the round trip), so compare both ways.
//!
//! Artifacts are looked up in `target/plugins/` (where the e2e tests and
//! `bench-plugins` build them) and in `target/` (a build without
//! `--target-dir`): `wasm32-wasip2/release/vaultaris_plugin_<dir>.wasm` and
//! `release/libvaultaris_plugin_<dir>.so`; the newer file wins. A plugin
//! whose artifact is missing is skipped with the command that builds it.
//!
//! Environment: `BENCH_CALLS` (calls per cheap hook, default 20000),
//! `BENCH_IO_CALLS` (calls per hook doing I/O, default 2000),
//! `BENCH_SECONDS` (per HTTP phase, default 8), `BENCH_CONCURRENCY`
//! (default 64), `BENCH_SERVER_CPU` (default 0), `VAULTARIS_BIN` (default:
//! next to this binary), `BENCH_ONLY` (only hooks whose label contains
//! this text), `BENCH_IN_PROCESS_ONLY` / `BENCH_HTTP_ONLY` (one part).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vaultaris::plugins::hooks::audit_sink::{AuditActor, AuditEntry};
use vaultaris::plugins::hooks::auth_provider::ExternalVerdict;
use vaultaris::plugins::hooks::encryption_provider::PluginCiphertext;
use vaultaris::plugins::hooks::identity_provider::BeginFederation;
use vaultaris::plugins::hooks::input_validator::{Operation, ValidationInput};
use vaultaris::plugins::hooks::jwt_customizer::{TokenContext, TokenKind};
use vaultaris::plugins::hooks::lifecycle_hook::{EventContext, PreEvent, UserSnapshot};
use vaultaris::plugins::hooks::metrics_collector::{MetricPoint, MetricValue};
use vaultaris::plugins::hooks::notification_channel::Notification;
use vaultaris::plugins::hooks::policy_engine::{PolicyAnswer, PolicyQuestion};
use vaultaris::plugins::hooks::rate_limiter::RateLimitQuery;
use vaultaris::plugins::hooks::storage_backend::PluginStorageKv;
use vaultaris::plugins::kv::{KeyValueBackend, MemoryKv};
use vaultaris::plugins::limits::OPERATOR_MAXIMA;
use vaultaris::plugins::native::NativeCallMode;

#[allow(dead_code)] // shared by the benchmarks; each uses part of it
mod server;
use server::{Admin, env_or, json_ok, root, wait_ready};
use vaultaris::plugins::{
    ActivationSpec, Category, PluginManifest, PluginRuntime, RuntimeSettings,
};

/// Lower-case hex of the SHA-256 of `b`.
fn hex_sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

// ---- Artifacts -------------------------------------------------------------

/// The two builds of a Rust plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// The WebAssembly component, run by wasmtime.
    Wasm,
    /// The native dylib, loaded in process, called on the blocking pool
    /// (the default `PLUGIN_NATIVE_CALLS=pool`).
    Native,
    /// The same dylib called inline on the caller's worker thread
    /// (`PLUGIN_NATIVE_CALLS=inline`).
    NativeInline,
}

impl Kind {
    /// Every kind, in the order they are printed.
    const ALL: [Kind; 3] = [Kind::Wasm, Kind::Native, Kind::NativeInline];

    /// How the output names the kind.
    fn label(self) -> &'static str {
        match self {
            Kind::Wasm => "WASM",
            Kind::Native => "native",
            Kind::NativeInline => "native-inline",
        }
    }

    /// The command that builds plugin `dir` this way.
    fn build_command(self, dir: &str) -> String {
        match self {
            Kind::Wasm => format!(
                "cargo build --release --target wasm32-wasip2 --target-dir target/plugins -p vaultaris-plugin-{dir}"
            ),
            Kind::Native | Kind::NativeInline => {
                format!(
                    "cargo build --release --target-dir target/plugins -p vaultaris-plugin-{dir}"
                )
            }
        }
    }

    /// The places a build of plugin `dir` may be, most usual first.
    fn candidates(self, dir: &str) -> Vec<PathBuf> {
        let stem = format!("vaultaris_plugin_{}", dir.replace('-', "_"));
        let target = root().join("target");
        let (sub, file) = match self {
            Kind::Wasm => ("wasm32-wasip2/release", format!("{stem}.wasm")),
            Kind::Native | Kind::NativeInline => (
                "release",
                format!(
                    "{}{stem}{}",
                    std::env::consts::DLL_PREFIX,
                    std::env::consts::DLL_SUFFIX
                ),
            ),
        };
        vec![
            target.join("plugins").join(sub).join(&file),
            target.join(sub).join(&file),
        ]
    }
}

/// A plugin build on disk: its manifest (with `sha256`, and `kind` for a
/// native build) and its bytes.
#[derive(Clone)]
struct Artifact {
    manifest: Value,
    bytes: Vec<u8>,
}

/// The newest build of plugin `dir` of `kind`, or an error naming the
/// command that builds it.
fn artifact(dir: &str, kind: Kind) -> Result<Artifact> {
    let path = kind
        .candidates(dir)
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p)
        .with_context(|| {
            format!(
                "no {} build of plugins/{dir}; build it with: {}",
                kind.label(),
                kind.build_command(dir)
            )
        })?;
    let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
    let manifest_path = root().join("plugins").join(dir).join("manifest.json");
    let mut manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path)
            .with_context(|| manifest_path.display().to_string())?,
    )?;
    manifest["sha256"] = hex_sha(&bytes).into();
    if kind != Kind::Wasm {
        manifest["kind"] = "native".into();
    }
    Ok(Artifact { manifest, bytes })
}

// ---- In process ------------------------------------------------------------

/// A runtime for one kind of plugin, with its own cache and files root
/// under `work`; outbound HTTP only to 127.0.0.1.
fn runtime(work: &Path, kind: Kind) -> Result<Arc<PluginRuntime>> {
    let name = kind.label().to_lowercase();
    PluginRuntime::new(
        RuntimeSettings {
            maxima: OPERATOR_MAXIMA,
            http_allowed_hosts: vec!["127.0.0.1".into()],
            http_allow_private_networks: true,
            files_root: Some(work.join(format!("files-{name}"))),
            warm_instances: 2,
            breaker_threshold: u32::MAX,
            breaker_cooldown: Duration::from_secs(1),
            cache_dir: work.join(format!("cache-{name}")),
            allow_native: true,
            native_calls: if kind == Kind::NativeInline {
                NativeCallMode::Inline
            } else {
                NativeCallMode::Pool
            },
            native_allowed_sha256: Vec::new(),
        },
        Arc::new(MemoryKv::default()),
    )
}

/// Which facade a case calls.
#[derive(Clone, Copy, Debug)]
enum Hook {
    Jwt,
    Validate,
    BeforeEvent,
    Policy,
    RateLimit,
    Encrypt,
    Decrypt,
    Audit,
    StorageSet,
    StorageGet,
    BeginFederation,
    Providers,
    Metrics,
    Email,
    ExternalPassword,
}

/// One line of the in-process table: a facade called with one plugin.
struct Case {
    /// What the line says.
    label: &'static str,
    /// The plugin, `plugins/<dir>`.
    dir: &'static str,
    /// Its configuration.
    config: Value,
    /// The facade.
    hook: Hook,
    /// Whether the call writes files or sends requests (fewer calls).
    io: bool,
}

/// Every case, with `mock` the base URL of the loopback HTTP server.
fn cases(mock: &str) -> Vec<Case> {
    let case = |label, dir, config, hook, io| Case {
        label,
        dir,
        config,
        hook,
        io,
    };
    let key = STANDARD.encode([7u8; 32]);
    vec![
        case(
            "jwt-customizer     customize_jwt (tenant-claims)",
            "tenant-claims",
            json!({"static_claims": {"org": "acme", "tier": "gold"}, "attribute_claims": {"roles": "roles"}}),
            Hook::Jwt,
            false,
        ),
        case(
            "jwt-customizer     customize_jwt (noop-customizer)",
            "noop-customizer",
            json!({}),
            Hook::Jwt,
            false,
        ),
        case(
            "input-validator    validate_input (password-policy)",
            "password-policy",
            json!({"min_length": 12, "breach_check": false}),
            Hook::Validate,
            false,
        ),
        case(
            "lifecycle-hook     before_event (disposable-email-veto)",
            "disposable-email-veto",
            json!({"extra_domains": ["burner.example"]}),
            Hook::BeforeEvent,
            false,
        ),
        case(
            "policy-engine      evaluate_policy (abac-policy)",
            "abac-policy",
            json!({"rules": [
                {"id": "owners-edit", "effect": "allow", "actions": ["documents:*"],
                 "resource_kinds": ["document"],
                 "conditions": [{"attribute": "resource.owner", "op": "equals", "ref": "subject.id"}]},
                {"id": "no-delete-without-mfa", "effect": "deny", "actions": ["*:delete"],
                 "conditions": [{"attribute": "context.mfa", "op": "not_equals", "value": true}]},
                {"id": "senior-read", "effect": "allow", "actions": ["read"],
                 "conditions": [{"attribute": "subject.roles", "op": "contains", "value": "auditor"},
                                {"attribute": "subject.level", "op": "gte", "value": 3}]}
            ]}),
            Hook::Policy,
            false,
        ),
        case(
            "rate-limiter       check_rate_limit (fixed-window-limiter)",
            "fixed-window-limiter",
            json!({"scopes": {"token": {"limit": 1_000_000_000, "window_ms": 3_600_000}}}),
            Hook::RateLimit,
            false,
        ),
        case(
            "encryption-provider encrypt_secret (aes-gcm-encryption)",
            "aes-gcm-encryption",
            json!({"keys": {"k1": key}, "current_key_id": "k1"}),
            Hook::Encrypt,
            false,
        ),
        case(
            "encryption-provider decrypt_secret (aes-gcm-encryption)",
            "aes-gcm-encryption",
            json!({"keys": {"k1": key}, "current_key_id": "k1"}),
            Hook::Decrypt,
            false,
        ),
        case(
            "audit-sink         deliver_audit, 10 events (jsonl-audit-sink)",
            "jsonl-audit-sink",
            json!({"fsync": false, "rotate": "none"}),
            Hook::Audit,
            true,
        ),
        case(
            "storage-backend    PluginStorageKv::set (file-store)",
            "file-store",
            json!({"fsync": false}),
            Hook::StorageSet,
            true,
        ),
        case(
            "storage-backend    PluginStorageKv::get (file-store)",
            "file-store",
            json!({"fsync": false}),
            Hook::StorageGet,
            true,
        ),
        case(
            "identity-provider  begin_federation (oidc-upstream)",
            "oidc-upstream",
            json!({"issuer": "https://upstream.example", "client_id": "vaultaris",
                   "client_secret": "upstream-secret", "display_name": "Sign in with Upstream",
                   "authorization_endpoint": "https://upstream.example/authorize",
                   "token_endpoint": "https://upstream.example/token"}),
            Hook::BeginFederation,
            false,
        ),
        case(
            "identity-provider  identity_providers (oidc-upstream)*",
            "oidc-upstream",
            json!({"issuer": "https://upstream.example", "client_id": "vaultaris",
                   "client_secret": "upstream-secret", "display_name": "Sign in with Upstream",
                   "authorization_endpoint": "https://upstream.example/authorize",
                   "token_endpoint": "https://upstream.example/token"}),
            Hook::Providers,
            false,
        ),
        case(
            "metrics-collector  deliver_metrics, 20 points (influx-metrics)",
            "influx-metrics",
            json!({"url": format!("{mock}/write?org=bench&bucket=bench")}),
            Hook::Metrics,
            true,
        ),
        case(
            "notification-channel send_email (http-mail)",
            "http-mail",
            json!({"endpoint": format!("{mock}/emails"), "api_key": "re_bench",
                   "default_sender": "Acme <no-reply@acme.example>"}),
            Hook::Email,
            true,
        ),
        case(
            "auth-provider      verify_external_password (legacy-http-auth)",
            "legacy-http-auth",
            json!({"endpoint": format!("{mock}/verify")}),
            Hook::ExternalPassword,
            true,
        ),
    ]
}

/// `BENCH_ONLY=<text>`: only the cases whose label contains it.
fn selected(label: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |f| label.to_lowercase().contains(&f.to_lowercase()))
}

/// Starts the loopback HTTP server the plugins that send requests talk
/// to: an InfluxDB write endpoint (204), a mail API (200 with an id) and a
/// legacy user store that verifies every password. Returns its base URL.
async fn start_mock() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_mock(stream));
        }
    });
    Ok(base)
}

/// Reads more of `stream` into `buf`; `false` at the end of the stream.
async fn read_more(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// Answers the requests of one keep-alive HTTP/1.1 connection (bodies
/// with a `content-length`, as the plugins' requests have) by path.
async fn serve_mock(mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !read_more(&mut stream, &mut buf).await? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if !read_more(&mut stream, &mut buf).await? {
                return Ok(());
            }
        }
        buf.drain(..head_end + length);
        let json = |body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let response = if path.starts_with("/write") {
            "HTTP/1.1 204 No Content\r\n\r\n".to_string()
        } else if path.starts_with("/emails") {
            json(r#"{"id":"msg-1"}"#)
        } else if path.starts_with("/verify") {
            json(
                r#"{"id":"u-1","email":"ann@acme.example","email_verified":true,"name":"Ann Lee"}"#,
            )
        } else {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_string()
        };
        stream.write_all(response.as_bytes()).await?;
    }
}

/// The inputs of the calls, built once (what a call builds itself, such
/// as fresh token claims, it builds in both kinds alike).
struct Inputs {
    scopes: Vec<String>,
    audience: Vec<String>,
    attributes: Vec<(String, Value)>,
    fields: Vec<(String, Value)>,
    changed: Vec<String>,
    locales: Vec<String>,
    user: UserSnapshot,
    event: EventContext,
    subject: Vec<(String, Value)>,
    resource: Vec<(String, Value)>,
    context: Vec<(String, Value)>,
    secret: Vec<u8>,
    associated_data: Vec<u8>,
    value: Vec<u8>,
    points: Vec<MetricPoint>,
    mail: Notification,
}

impl Inputs {
    /// Inputs like the core's on its usual paths.
    fn new() -> Self {
        let pairs = |v: &[(&str, Value)]| -> Vec<(String, Value)> {
            v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
        };
        Inputs {
            scopes: vec!["api:read".into()],
            audience: vec!["svc".into()],
            attributes: pairs(&[
                ("email", json!("svc@example.com")),
                ("roles", json!(["reader", "billing"])),
                ("groups", json!(["ops"])),
            ]),
            fields: pairs(&[
                ("password", json!("correct-horse-battery-staple-42")),
                ("username", json!("ann")),
                ("email", json!("ann@acme.example")),
            ]),
            changed: vec!["password".into()],
            locales: vec!["en".into()],
            user: UserSnapshot {
                email: Some("ann@permanent.example".into()),
                enabled: true,
                ..Default::default()
            },
            event: EventContext {
                method: "password".into(),
                ip: Some("203.0.113.7".into()),
                ..Default::default()
            },
            subject: pairs(&[("roles", json!(["auditor", "staff"])), ("level", json!(4))]),
            resource: pairs(&[("owner", json!("u-2"))]),
            context: pairs(&[("mfa", json!(true)), ("ip", json!("203.0.113.7"))]),
            secret: b"client-secret-0123456789abcdef-0123456789".to_vec(),
            associated_data: b"tenant|oauth_clients|secret|row-1".to_vec(),
            value: vec![42u8; 256],
            points: metric_points(),
            mail: Notification {
                template: "password_reset".into(),
                to: "ann@acme.example".into(),
                to_name: Some("Ann Lee".into()),
                subject: "Reset your password".into(),
                text_body:
                    "Open https://id.example.com/reset?code=0123456789 to choose a new password."
                        .into(),
                html_body: None,
                locale: "en".into(),
            },
        }
    }
}

/// Claims like those of a client_credentials access token.
fn token_claims() -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("iss", json!("https://id.example.com/t/acme")),
        ("sub", json!(Uuid::now_v7())),
        ("aud", json!("svc")),
        ("exp", json!(1_900_000_000)),
        ("iat", json!(1_800_000_000)),
        ("nbf", json!(1_800_000_000)),
        ("jti", json!(Uuid::now_v7())),
        ("client_id", json!("svc")),
        ("scope", json!("api:read")),
        ("tenant", json!(Uuid::now_v7())),
        ("sub_type", json!("client")),
    ] {
        m.insert(k.into(), v);
    }
    m
}

/// Ten chained audit events for the `call`th batch (sequences continue
/// from batch to batch, as the feeder's do).
fn audit_batch(call: u64) -> Vec<AuditEntry> {
    let hash = |seq: u64| format!("{seq:064x}");
    (0..10)
        .map(|j| {
            let seq = call * 10 + j;
            AuditEntry {
                id: Uuid::now_v7().to_string(),
                seq,
                occurred_at: 1_800_000_000_000 + seq as i64,
                actor: AuditActor::User,
                actor_id: Some("u-1".into()),
                ip: Some("203.0.113.7".into()),
                action: "login.succeeded".into(),
                target_kind: Some("user".into()),
                target_id: Some("u-1".into()),
                failed: false,
                details: r#"{"method":"password","client_id":"web"}"#.into(),
                previous_hash: hash(seq - 1),
                hash: hash(seq),
            }
        })
        .collect()
}

/// Twenty points: counters, gauges and histograms with two labels.
fn metric_points() -> Vec<MetricPoint> {
    (0..20u64)
        .map(|i| MetricPoint {
            name: format!("vaultaris_bench_metric_{}", i % 5),
            description: "A benchmark metric".into(),
            labels: vec![
                ("endpoint".into(), "/oauth/token".into()),
                ("grant_type".into(), "client_credentials".into()),
            ],
            value: match i % 3 {
                0 => MetricValue::Counter(i),
                1 => MetricValue::Gauge(i as f64 * 0.5),
                _ => MetricValue::Histogram(3, 0.42, vec![(0.1, 1), (0.5, 3), (f64::INFINITY, 3)]),
            },
            observed_at: 1_800_000_000_000,
        })
        .collect()
}

/// One plugin of one kind, installed in that kind's runtime and active
/// for a tenant of its own.
struct Target {
    rt: Arc<PluginRuntime>,
    tenant: Uuid,
    plugin_id: String,
    /// Calls made so far (numbers audit batches and storage keys).
    calls: u64,
    /// The last `encrypt_secret` result, for `decrypt_secret`.
    ciphertext: Option<PluginCiphertext>,
    /// How long `prepare` took.
    prepare: Duration,
}

/// Installs the `kind` build of plugin `dir` in `rt` and activates it with
/// `config` for a new tenant.
async fn activate(
    rt: &Arc<PluginRuntime>,
    dir: &str,
    kind: Kind,
    config: &Value,
) -> Result<Target> {
    let mut a = artifact(dir, kind)?;
    if dir == "http-mail" {
        // Its manifest asks for api.resend.com only; the bench's copy asks
        // for the loopback mail API instead (the artifact is unchanged).
        a.manifest["capabilities"]["outbound_http"] = json!(["127.0.0.1"]);
    }
    let manifest: PluginManifest = serde_json::from_value(a.manifest)?;
    let plugin_id = manifest.id.clone();
    let started = Instant::now();
    let loaded = rt
        .prepare(manifest, hex_sha(&a.bytes), Arc::new(a.bytes))
        .await?;
    let prepare = started.elapsed();
    rt.install(loaded);
    let tenant = Uuid::now_v7();
    rt.set_tenant(
        tenant,
        vec![ActivationSpec {
            plugin_id: plugin_id.clone(),
            enabled: true,
            config: config.clone(),
            limits: Default::default(),
            failure_mode: None,
            position: 0,
        }],
    );
    Ok(Target {
        rt: rt.clone(),
        tenant,
        plugin_id,
        calls: 0,
        ciphertext: None,
        prepare,
    })
}

impl Target {
    /// The tenant's storage backend, as its other plugins' key-value
    /// capability reaches it.
    fn storage(&self) -> PluginStorageKv {
        PluginStorageKv {
            runtime: Arc::downgrade(&self.rt),
            tenant: self.tenant,
        }
    }

    /// Makes what `hook` reads exist: a ciphertext to decrypt, keys to get.
    async fn seed(&mut self, hook: Hook, inp: &Inputs) -> Result<()> {
        match hook {
            Hook::Decrypt if self.ciphertext.is_none() => self.call(Hook::Encrypt, inp).await,
            Hook::StorageGet => {
                for k in 0..16 {
                    self.storage()
                        .set(self.tenant, "bench", &format!("key-{k}"), &inp.value, None)
                        .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// One call of `hook` through the facade; an error when it failed or
    /// answered something other than the configuration implies.
    async fn call(&mut self, hook: Hook, inp: &Inputs) -> Result<()> {
        self.calls += 1;
        let (rt, tenant, n) = (&self.rt, self.tenant, self.calls);
        match hook {
            Hook::Jwt => {
                let token = TokenContext {
                    kind: TokenKind::Access,
                    subject: None,
                    client_id: "svc",
                    grant_type: "client_credentials",
                    scopes: &inp.scopes,
                    audience: &inp.audience,
                    subject_attributes: &inp.attributes,
                };
                let mut claims = token_claims();
                rt.customize_jwt(tenant, "-", &token, &mut claims).await?;
            }
            Hook::Validate => {
                let input = ValidationInput {
                    operation: Operation::PasswordChange,
                    user_id: Some(Uuid::nil()),
                    fields: &inp.fields,
                    changed: &inp.changed,
                    locales: &inp.locales,
                };
                let v = rt.validate_input(tenant, &input).await?;
                ensure!(v.is_empty(), "unexpected violations: {v:?}");
            }
            Hook::BeforeEvent => {
                let veto = rt
                    .before_event(tenant, PreEvent::Registration, &inp.user, &inp.event)
                    .await?;
                ensure!(veto.is_none(), "unexpected veto: {veto:?}");
            }
            Hook::Policy => {
                let q = PolicyQuestion {
                    subject_is_client: false,
                    subject_id: "u-1".into(),
                    subject_attributes: &inp.subject,
                    action: "read",
                    resource_kind: "document",
                    resource_id: Some("d-1"),
                    resource_attributes: &inp.resource,
                    context: &inp.context,
                };
                match rt.evaluate_policy(tenant, &q).await {
                    PolicyAnswer::Allow { .. } => {}
                    other => bail!("expected allow, got {other:?}"),
                }
            }
            Hook::RateLimit => {
                let q = RateLimitQuery {
                    scope: "token",
                    key: "client:svc".into(),
                    ip: "203.0.113.7",
                    client_id: Some("svc"),
                    identifier: None,
                };
                let d = rt
                    .check_rate_limit(tenant, &q)
                    .await?
                    .context("no rate limiter answered")?;
                ensure!(d.allowed, "refused: {d:?}");
            }
            Hook::Encrypt => {
                let c = rt
                    .encrypt_secret(tenant, None, &inp.secret, &inp.associated_data)
                    .await?
                    .context("no encryption provider active")?;
                self.ciphertext = Some(c);
            }
            Hook::Decrypt => {
                let c = self.ciphertext.as_ref().context("nothing encrypted")?;
                let p = rt
                    .decrypt_secret(
                        tenant,
                        &c.plugin_id,
                        &c.key_id,
                        &c.ciphertext,
                        &inp.associated_data,
                    )
                    .await?;
                ensure!(*p == inp.secret, "decrypted something else");
            }
            Hook::Audit => {
                let act = rt
                    .active(tenant, Category::AuditSink)
                    .into_iter()
                    .next()
                    .context("no audit sink active")?;
                rt.deliver_audit(&act, &audit_batch(n)).await?;
            }
            Hook::StorageSet => {
                let key = format!("key-{}", n % 16);
                self.storage()
                    .set(tenant, "bench", &key, &inp.value, None)
                    .await?;
            }
            Hook::StorageGet => {
                let key = format!("key-{}", n % 16);
                let v = self.storage().get(tenant, "bench", &key).await?;
                ensure!(v.as_ref() == Some(&inp.value), "{key} not found");
            }
            Hook::BeginFederation => {
                let begin = BeginFederation {
                    callback_url: "https://id.example.com/t/acme/federation/callback",
                    state: "state-0123456789abcdef",
                    nonce: "nonce-0123456789abcdef",
                    login_hint: None,
                    locales: &inp.locales,
                    force_authentication: false,
                    max_age: None,
                };
                rt.begin_federation(tenant, &self.plugin_id, &begin)
                    .await?
                    .context("the identity provider is not active")?;
            }
            Hook::Providers => {
                let buttons = rt.identity_providers(tenant).await;
                ensure!(buttons.len() == 1, "describe failed");
            }
            Hook::Metrics => {
                let act = rt
                    .active(tenant, Category::MetricsCollector)
                    .into_iter()
                    .next()
                    .context("no metrics collector active")?;
                rt.deliver_metrics(&act, &inp.points).await?;
            }
            Hook::Email => {
                rt.send_email(tenant, &inp.mail).await?;
            }
            Hook::ExternalPassword => {
                let verdict = rt
                    .verify_external_password(
                        tenant,
                        "ann@acme.example",
                        "legacy-password",
                        Some("web"),
                        Some("203.0.113.7"),
                        None,
                    )
                    .await?;
                ensure!(
                    matches!(verdict, ExternalVerdict::Verified(_)),
                    "expected verified, got {verdict:?}"
                );
            }
        }
        Ok(())
    }

    /// Seeds, warms up with `warmup` calls, then the mean µs of `calls`.
    async fn measure(&mut self, hook: Hook, inp: &Inputs, warmup: u32, calls: u32) -> Result<f64> {
        self.seed(hook, inp).await?;
        for _ in 0..warmup {
            self.call(hook, inp).await?;
        }
        let started = Instant::now();
        for _ in 0..calls {
            self.call(hook, inp).await?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(calls))
    }
}

/// `v` with two decimals, or a dash.
fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// Two costs that help read the table: a `spawn_blocking` round trip (a
/// native call runs on the blocking pool, so it pays one per call) and the
/// jwt-customizer facade of a tenant without plugins.
async fn references(calls: u32, rt: &Arc<PluginRuntime>, inp: &Inputs) -> Result<()> {
    for _ in 0..100 {
        tokio::task::spawn_blocking(|| ()).await?;
    }
    let started = Instant::now();
    for _ in 0..calls {
        tokio::task::spawn_blocking(|| ()).await?;
    }
    let round_trip = started.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
    let mut none = Target {
        rt: rt.clone(),
        tenant: Uuid::now_v7(),
        plugin_id: String::new(),
        calls: 0,
        ciphertext: None,
        prepare: Duration::ZERO,
    };
    let built_in = none.measure(Hook::Jwt, inp, 100, calls).await?;
    println!(
        "reference: tokio spawn_blocking round trip {round_trip:.2} µs; customize_jwt with no plugin active {built_in:.2} µs"
    );
    Ok(())
}

/// Part 1: the table of per-call costs, then the prepare times.
async fn in_process(calls: u32, io_calls: u32) -> Result<()> {
    let work = std::env::temp_dir().join(format!("vaultaris-bench-native-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mock = start_mock().await?;
    let runtimes = [
        runtime(&work, Kind::Wasm)?,
        runtime(&work, Kind::Native)?,
        runtime(&work, Kind::NativeInline)?,
    ];
    let inp = Inputs::new();
    println!(
        "== in process: one warm call through the hook facade, mean µs ({calls} calls, {io_calls} for hooks doing I/O)"
    );
    println!(
        "   files without fsync; HTTP to a loopback server in this process; * = describe is cached per activation after the first call"
    );
    println!(
        "   native = calls on the blocking pool (default); inline = PLUGIN_NATIVE_CALLS=inline"
    );
    println!(
        "{:<66} {:>9} {:>10} {:>10} {:>12} {:>13}",
        "category / facade (plugin)",
        "WASM µs",
        "native µs",
        "inline µs",
        "WASM/native",
        "WASM/inline"
    );
    let mut targets: HashMap<(&str, Kind), Result<Target, String>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for case in cases(&mock).into_iter().filter(|c| selected(c.label)) {
        let n = if case.io { io_calls } else { calls };
        let warmup = (n / 20).clamp(10, 200);
        let mut us = [None, None, None];
        let mut notes = Vec::new();
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            // Cases of one plugin share its activation (decrypt reads what
            // encrypt wrote, get what set wrote).
            let target = match targets.entry((case.dir, kind)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    if !order.contains(&case.dir) {
                        order.push(case.dir);
                    }
                    let t = activate(&runtimes[i], case.dir, kind, &case.config).await;
                    e.insert(t.map_err(|e| format!("{e:#}")))
                }
            };
            match target {
                Ok(t) => match t.measure(case.hook, &inp, warmup, n).await {
                    Ok(v) => us[i] = Some(v),
                    Err(e) => notes.push(format!("{} call failed: {e:#}", kind.label())),
                },
                Err(e) => notes.push(format!("{} skipped: {e}", kind.label())),
            }
        }
        let ratio = |n: Option<f64>| match (us[0], n) {
            (Some(w), Some(n)) if n > 0.0 => format!("{:.2}×", w / n),
            _ => "-".into(),
        };
        println!(
            "{:<66} {:>9} {:>10} {:>10} {:>12} {:>13}",
            case.label,
            cell(us[0]),
            cell(us[1]),
            cell(us[2]),
            ratio(us[1]),
            ratio(us[2])
        );
        for note in notes {
            println!("    ({note})");
        }
    }
    references(calls, &runtimes[0], &inp).await?;
    println!(
        "== prepare (install-time load), ms: WASM = compile from scratch, native = store, hash, dlopen and check"
    );
    for dir in order {
        let ms = |kind| {
            targets
                .get(&(dir, kind))
                .and_then(|t| t.as_ref().ok())
                .map(|t| t.prepare.as_secs_f64() * 1e3)
        };
        println!(
            "{dir:<24} WASM {:>9}   native {:>9}",
            cell(ms(Kind::Wasm)),
            cell(ms(Kind::Native))
        );
    }
    drop(targets);
    drop(runtimes);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

// ---- Over HTTP -------------------------------------------------------------

/// A tenant with a confidential client, and `plugin` (if any) active
/// with `config`: (token URL, client id, secret).
async fn tenant(
    admin: &Admin,
    slug: &str,
    plugin: Option<(&str, &Value)>,
) -> Result<(String, String, String)> {
    let t = admin
        .post("/api/v1/tenants", json!({"name": slug, "slug": slug}))
        .await?;
    let tid = t["id"].as_str().context("tenant id")?;
    let c = admin
        .post(
            &format!("/api/v1/tenants/{tid}/clients"),
            json!({"name": "svc", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["api:read"]}),
        )
        .await?;
    if let Some((pid, config)) = plugin {
        admin
            .put(
                &format!("/api/v1/tenants/{tid}/plugins/{pid}"),
                json!({"enabled": true, "config": config}),
            )
            .await?;
    }
    Ok((
        format!("{}/oauth/token", t["issuer"].as_str().context("issuer")?),
        c["client_id"].as_str().context("client id")?.to_string(),
        c["client_secret"].as_str().context("secret")?.to_string(),
    ))
}
/// One client_credentials token's claims (checks the plugin is in effect).
async fn one_token(
    http: &reqwest::Client,
    (url, id, secret): &(String, String, String),
) -> Result<Value> {
    let body = json_ok(
        http.post(url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?,
    )
    .await?;
    let jwt = body["access_token"].as_str().context("access_token")?;
    let payload = jwt.split('.').nth(1).context("not a JWT")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

/// Client_credentials tokens per second for one client, and the failures.
async fn tokens_per_second(
    (url, id, secret): &(String, String, String),
    concurrency: usize,
    seconds: u64,
) -> (f64, u64) {
    server::tokens_per_second(url, id, secret, concurrency, seconds).await
}

/// Part 2: tokens per second without a plugin and with each build of
/// tenant-claims.
async fn over_http(seconds: u64, concurrency: usize) -> Result<()> {
    println!(
        "== over HTTP: client_credentials, server pinned to one core, one Tokio worker, {concurrency} connections, {seconds} s per phase"
    );
    let (wasm, mut native) = match (
        artifact("tenant-claims", Kind::Wasm),
        artifact("tenant-claims", Kind::Native),
    ) {
        (Ok(w), Ok(n)) => (w, n),
        (w, n) => {
            for e in [w.err(), n.err()].into_iter().flatten() {
                println!("(skipping the HTTP part: {e:#})");
            }
            return Ok(());
        }
    };
    // Both builds installed side by side: the native one under its own id.
    native.manifest["id"] = "tenant-claims-native".into();
    native.manifest["name"] = "Tenant claims (native)".into();
    let config = json!({"static_claims": {"org": "acme", "tier": "gold"}, "attribute_claims": {"roles": "roles"}});

    let dir = std::env::temp_dir().join(format!(
        "vaultaris-bench-native-http-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let http = reqwest::Client::new();
    let server = server::start(
        &dir,
        port,
        &[
            ("PLUGIN_ALLOW_NATIVE", "true"),
            ("PLUGIN_NATIVE_CALLS", "pool"),
        ],
    )?;
    wait_ready(&http, &server.base).await?;
    let admin = Admin::setup(&http, &server.base).await?;
    admin
        .install(&wasm.manifest, &wasm.bytes)
        .await
        .context("installing the WebAssembly build")?;
    admin
        .install(&native.manifest, &native.bytes)
        .await
        .context("installing the native build")?;
    let phases = [
        ("no plugin", tenant(&admin, "plain", None).await?),
        (
            "+ WASM tenant-claims",
            tenant(&admin, "wasm", Some(("tenant-claims", &config))).await?,
        ),
        (
            "+ native tenant-claims",
            tenant(&admin, "native", Some(("tenant-claims-native", &config))).await?,
        ),
    ];
    for (label, client) in &phases[1..] {
        let claims = one_token(&http, client).await?;
        ensure!(
            claims["org"] == "acme",
            "{label}: the plugin did not run: {claims}"
        );
    }
    let mut base = None;
    for (label, client) in &phases {
        let (rate, failed) = tokens_per_second(client, concurrency, seconds).await;
        let added = match base {
            None => {
                base = Some(rate);
                String::new()
            }
            Some(b) => format!("   {:+8.1} µs per token", 1e6 / rate - 1e6 / b),
        };
        println!("client_credentials {label:<24} {rate:>9.0} tokens/s{added}   ({failed} failed)");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    // The native build again on a server that calls it inline.
    let dir = std::env::temp_dir().join(format!(
        "vaultaris-bench-native-inline-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let server = server::start(
        &dir,
        port,
        &[
            ("PLUGIN_ALLOW_NATIVE", "true"),
            ("PLUGIN_NATIVE_CALLS", "inline"),
        ],
    )?;
    wait_ready(&http, &server.base).await?;
    let admin = Admin::setup(&http, &server.base).await?;
    admin
        .install(&native.manifest, &native.bytes)
        .await
        .context("installing the native build")?;
    let client = tenant(&admin, "inline", Some(("tenant-claims-native", &config))).await?;
    let claims = one_token(&http, &client).await?;
    ensure!(
        claims["org"] == "acme",
        "inline: the plugin did not run: {claims}"
    );
    let (rate, failed) = tokens_per_second(&client, concurrency, seconds).await;
    let added = base
        .map(|b| format!("   {:+8.1} µs per token", 1e6 / rate - 1e6 / b))
        .unwrap_or_default();
    let label = "+ native, inline calls";
    println!("client_credentials {label:<24} {rate:>9.0} tokens/s{added}   ({failed} failed)");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::var("BENCH_HTTP_ONLY").is_err() {
        in_process(
            env_or("BENCH_CALLS", 20_000u32).max(1),
            env_or("BENCH_IO_CALLS", 2_000u32).max(1),
        )
        .await?;
    }
    if std::env::var("BENCH_IN_PROCESS_ONLY").is_ok() {
        return Ok(());
    }
    over_http(
        env_or("BENCH_SECONDS", 8u64),
        env_or("BENCH_CONCURRENCY", 64usize),
    )
    .await
}
