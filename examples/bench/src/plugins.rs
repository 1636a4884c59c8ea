//! The plugin runtime's costs, printed (nothing asserted):
//!
//! 1. in process, per jwt-customizer plugin (Rust no-op, Rust tenant-claims,
//!    JavaScript, Python): compile time, cached load time, a call with a
//!    fresh instance (instantiation included) and a call on a warm
//!    instance, through the same hook facade token issuance uses;
//! 2. over HTTP against the release server pinned to one core:
//!    client_credentials tokens per second without a plugin and with each
//!    customizer active;
//! 3. start-up time with the installed plugins' compilations cached and not;
//! 4. RSS with 100 tenants each having 3 plugins active (and warm).
//!
//! ```text
//! cargo build --release -p vaultaris -p vaultaris-bench
//! cargo build --release --target wasm32-wasip2 --target-dir target/plugins \
//!     -p vaultaris-plugin-noop-customizer -p vaultaris-plugin-tenant-claims ...
//! plugins/js-claims/build.sh && plugins/py-profile/build.sh
//! taskset -c 1 target/release/bench-plugins
//! ```
//!
//! Environment: `BENCH_SECONDS` (per HTTP phase, default 8),
//! `BENCH_CONCURRENCY` (default 64), `BENCH_CALLS` (in-process calls,
//! default 20000), `BENCH_SERVER_CPU` (default 0), `VAULTARIS_BIN`,
//! `BENCH_ONLY` (only customizers whose label contains this text),
//! `BENCH_IN_PROCESS_ONLY` (stop after part 1, e.g. under callgrind).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use vaultaris::plugins::hooks::jwt_customizer::{TokenContext, TokenKind};

#[allow(dead_code)] // shared by the benchmarks; each uses part of it
mod server;
use server::{Admin, env_or, json_ok, root, wait_ready};
use vaultaris::plugins::limits::OPERATOR_MAXIMA;
use vaultaris::plugins::{
    ActivationSpec, Category, PluginManifest, PluginRuntime, RuntimeSettings,
};

/// A plugin on disk: manifest (with sha256) and component.
#[derive(Clone)]
struct Artifact {
    label: &'static str,
    manifest: Value,
    component: Vec<u8>,
}

fn artifact(label: &'static str, dir: &str, wasm: &Path) -> Option<Artifact> {
    let component = std::fs::read(wasm).ok()?;
    let mut manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("plugins").join(dir).join("manifest.json")).ok()?,
    )
    .ok()?;
    manifest["sha256"] = hex_sha(&component).into();
    Some(Artifact {
        label,
        manifest,
        component,
    })
}

fn hex_sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn rust_wasm(crate_name: &str) -> PathBuf {
    root()
        .join("target/plugins/wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// `BENCH_ONLY=<text>`: only the customizers whose label contains it.
fn selected(label: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |f| label.to_lowercase().contains(&f.to_lowercase()))
}

fn customizers() -> Vec<(Artifact, Value)> {
    let mut out = Vec::new();
    let mut add = |a: Option<Artifact>, config: Value, hint: &str| match a {
        Some(a) if !selected(a.label) => {}
        Some(a) => out.push((a, config)),
        None => println!("(skipping a plugin: build it first: {hint})"),
    };
    add(
        artifact(
            "Rust no-op",
            "noop-customizer",
            &rust_wasm("vaultaris-plugin-noop-customizer"),
        ),
        json!({}),
        "cargo build --release --target wasm32-wasip2 --target-dir target/plugins -p vaultaris-plugin-noop-customizer",
    );
    add(
        artifact(
            "Rust tenant-claims",
            "tenant-claims",
            &rust_wasm("vaultaris-plugin-tenant-claims"),
        ),
        json!({"static_claims": {"org": "acme", "tier": "gold"}, "attribute_claims": {"roles": "roles"}}),
        "cargo build ... -p vaultaris-plugin-tenant-claims",
    );
    add(
        artifact(
            "JavaScript js-claims",
            "js-claims",
            &root().join("plugins/js-claims/dist/js-claims.wasm"),
        ),
        json!({"claims": {"org": "acme"}, "copy_attributes": {"roles": "roles"}}),
        "plugins/js-claims/build.sh",
    );
    add(
        artifact(
            "Python py-profile",
            "py-profile",
            &root().join("plugins/py-profile/dist/py-profile.wasm"),
        ),
        json!({"default_locale": "en-GB"}),
        "plugins/py-profile/build.sh",
    );
    out
}

fn runtime(cache: &Path, warm: usize) -> Result<Arc<PluginRuntime>> {
    PluginRuntime::new(
        RuntimeSettings {
            maxima: OPERATOR_MAXIMA,
            http_allowed_hosts: vec![],
            http_allow_private_networks: false,
            files_root: None,
            warm_instances: warm,
            breaker_threshold: u32::MAX,
            breaker_cooldown: Duration::from_secs(1),
            cache_dir: cache.to_path_buf(),
            allow_native: false,
            native_calls: Default::default(),
            native_allowed_sha256: Vec::new(),
        },
        Arc::new(vaultaris::plugins::kv::MemoryKv::default()),
    )
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

async fn in_process(calls: u32) -> Result<()> {
    println!("== in process: one jwt-customizer call through the hook facade ({calls} calls each)");
    let cache = std::env::temp_dir().join(format!("vaultaris-bench-cache-{}", std::process::id()));
    let attributes = vec![
        ("email".to_string(), json!("svc@example.com")),
        ("roles".to_string(), json!(["reader", "billing"])),
        ("groups".to_string(), json!(["ops"])),
    ];
    let scopes = vec!["api:read".to_string()];
    let audience = vec!["svc".to_string()];
    let tenant = Uuid::now_v7();
    // The built-in path: no plugin active.
    {
        let rt = runtime(&cache, 2)?;
        let t = TokenContext {
            kind: TokenKind::Access,
            subject: None,
            client_id: "svc",
            grant_type: "client_credentials",
            scopes: &scopes,
            audience: &audience,
            subject_attributes: &attributes,
        };
        let started = Instant::now();
        for _ in 0..calls {
            let mut c = token_claims();
            rt.customize_jwt(tenant, "-", &t, &mut c).await.ok();
        }
        println!(
            "{:<24} {:>10.2} µs per token (no plugin active)",
            "built-in",
            started.elapsed().as_secs_f64() * 1e6 / f64::from(calls)
        );
    }
    for (a, config) in customizers() {
        let manifest: PluginManifest = serde_json::from_value(a.manifest.clone())?;
        let _ = std::fs::remove_dir_all(&cache);
        let rt_fresh = runtime(&cache, 0)?;
        let started = Instant::now();
        let loaded = rt_fresh
            .prepare(
                manifest.clone(),
                hex_sha(&a.component),
                Arc::new(a.component.clone()),
            )
            .await?;
        let compile = started.elapsed();
        rt_fresh.install(loaded);
        let rt_warm = runtime(&cache, 2)?;
        let started = Instant::now();
        let loaded = rt_warm
            .prepare(
                manifest.clone(),
                hex_sha(&a.component),
                Arc::new(a.component.clone()),
            )
            .await?;
        let cached = started.elapsed();
        assert!(loaded.from_cache);
        rt_warm.install(loaded);
        for rt in [&rt_fresh, &rt_warm] {
            rt.set_tenant(
                tenant,
                vec![ActivationSpec {
                    plugin_id: manifest.id.clone(),
                    enabled: true,
                    config: config.clone(),
                    limits: Default::default(),
                    failure_mode: None,
                    position: 0,
                }],
            );
        }
        let t = TokenContext {
            kind: TokenKind::Access,
            subject: None,
            client_id: "svc",
            grant_type: "client_credentials",
            scopes: &scopes,
            audience: &audience,
            subject_attributes: &attributes,
        };
        let fresh_calls = (calls / 20).clamp(20, 500);
        let started = Instant::now();
        for _ in 0..fresh_calls {
            let mut c = token_claims();
            rt_fresh
                .customize_jwt(tenant, "-", &t, &mut c)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let fresh = started.elapsed().as_secs_f64() * 1e6 / f64::from(fresh_calls);
        // Warm-up, then measure.
        for _ in 0..100 {
            let mut c = token_claims();
            rt_warm
                .customize_jwt(tenant, "-", &t, &mut c)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let started = Instant::now();
        let mut sample = Map::new();
        for _ in 0..calls {
            let mut c = token_claims();
            rt_warm
                .customize_jwt(tenant, "-", &t, &mut c)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            sample = c;
        }
        let warm = started.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
        let act = rt_warm.active(tenant, Category::JwtCustomizer).remove(0);
        let (_, m) = act
            .invoke(
                rt_warm.engine(),
                Category::JwtCustomizer,
                "-",
                0,
                |inst, cx| {
                    let req = sample_request();
                    Box::pin(async move {
                        let vaultaris::plugins::activation::PluginInstance::Wasm(inst) = inst
                        else {
                            return Err(wasmtime::format_err!("a WebAssembly instance"));
                        };
                        inst.exports
                            .jwt_customizer
                            .as_ref()
                            .expect("export")
                            .vaultaris_plugin_jwt_customizer()
                            .call_customize(&mut inst.store, &cx, &req)
                            .await
                    })
                },
            )
            .await;
        println!(
            "{:<24} compile {:>7.1} ms  cached load {:>6.1} ms  fresh instance per call {:>8.1} µs  warm {:>7.2} µs  ({} fuel, {} KiB memory; {} claims out)",
            a.label,
            compile.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            fresh,
            warm,
            m.fuel_used,
            m.peak_memory / 1024,
            sample.len()
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

fn sample_request() -> vaultaris::plugins::bindings::v0_1_0::jwt_customizer::exports::vaultaris::plugin::jwt_customizer::TokenRequest{
    use vaultaris::plugins::bindings::v0_1_0::jwt_customizer::exports::vaultaris::plugin::jwt_customizer as api;
    api::TokenRequest {
        kind: api::TokenKind::Access,
        subject: None,
        client_id: "svc".into(),
        grant_type: "client_credentials".into(),
        scopes: vec!["api:read".into()],
        audience: vec!["svc".into()],
        subject_attributes: vec![],
        claims: token_claims()
            .into_iter()
            .map(|(name, v)| api::Claim {
                name,
                value: v.to_string(),
            })
            .collect(),
    }
}

// ---- HTTP part ----------------------------------------------------------

/// A tenant with a confidential client: (tenant id, token URL, client id, secret).
async fn tenant_with_client(admin: &Admin, slug: &str) -> Result<(String, String, String, String)> {
    let t = admin
        .post("/api/v1/tenants", json!({"name": slug, "slug": slug}))
        .await?;
    let tid = t["id"].as_str().context("tid")?.to_string();
    let c = admin
        .post(
            &format!("/api/v1/tenants/{tid}/clients"),
            json!({"name": "svc", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["api:read"]}),
        )
        .await?;
    Ok((
        tid,
        format!("{}/oauth/token", t["issuer"].as_str().context("issuer")?),
        c["client_id"].as_str().context("id")?.to_string(),
        c["client_secret"].as_str().context("secret")?.to_string(),
    ))
}

/// Tokens per second (see `server::tokens_per_second`), printed as `name`.
async fn tokens_per_second(
    name: &str,
    url: &str,
    id: &str,
    secret: &str,
    concurrency: usize,
    seconds: u64,
) -> f64 {
    let (rate, failed) = server::tokens_per_second(url, id, secret, concurrency, seconds).await;
    println!("{name:<40} {rate:>9.0} tokens/s   ({failed} failed)");
    rate
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn all_plugins() -> Vec<Artifact> {
    let mut v: Vec<Artifact> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root().join("plugins")) {
        let mut dirs: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            let Ok(text) = std::fs::read_to_string(d.join("Cargo.toml")) else {
                continue;
            };
            let Some(name) = text.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("name = ")
                    .map(|n| n.trim_matches('"').to_string())
            }) else {
                continue;
            };
            let dir = d.file_name().unwrap().to_string_lossy().to_string();
            if let Some(a) = artifact("rust", &dir, &rust_wasm(&name)) {
                v.push(a);
            }
        }
    }
    if let Some(a) = artifact(
        "js",
        "js-claims",
        &root().join("plugins/js-claims/dist/js-claims.wasm"),
    ) {
        v.push(a);
    }
    if let Some(a) = artifact(
        "py",
        "py-profile",
        &root().join("plugins/py-profile/dist/py-profile.wasm"),
    ) {
        v.push(a);
    }
    v
}

async fn over_http(seconds: u64, concurrency: usize) -> Result<()> {
    println!("== over HTTP: server pinned to one core, one Tokio worker");
    let dir = std::env::temp_dir().join(format!("vaultaris-bench-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let http = reqwest::Client::new();
    let server = server::start(&dir, port, &[("REQUEST_TIMEOUT", "900")])?;
    wait_ready(&http, &server.base).await?;
    let admin = Admin::setup(&http, &server.base).await?;
    let (tid, url, id, secret) = tenant_with_client(&admin, "bench").await?;
    tokens_per_second(
        "client_credentials, no plugin",
        &url,
        &id,
        &secret,
        concurrency,
        seconds,
    )
    .await;
    for (a, config) in customizers() {
        let pid = a.manifest["id"].as_str().unwrap_or_default().to_string();
        admin.install(&a.manifest, &a.component).await?;
        admin
            .put(
                &format!("/api/v1/tenants/{tid}/plugins/{pid}"),
                json!({"enabled": true, "config": config}),
            )
            .await?;
        tokens_per_second(
            &format!("client_credentials + {}", a.label),
            &url,
            &id,
            &secret,
            concurrency,
            seconds,
        )
        .await;
        admin
            .put(
                &format!("/api/v1/tenants/{tid}/plugins/{pid}"),
                json!({"enabled": false, "config": config}),
            )
            .await?;
    }

    // Start-up with every plugin installed: compiled artifacts cached, and not.
    let plugins = all_plugins();
    for a in &plugins {
        admin.install(&a.manifest, &a.component).await?;
    }
    println!("== start-up with {} plugins installed", plugins.len());
    drop(server);
    for (label, clear) in [
        ("not cached", true),
        ("cached", false),
        ("cached (again)", false),
    ] {
        if clear {
            let _ = std::fs::remove_dir_all(dir.join("plugin-cache"));
        }
        let server = server::start(&dir, port, &[("REQUEST_TIMEOUT", "900")])?;
        let took = wait_ready(&http, &server.base).await?;
        println!(
            "start-up until ready, compilations {label:<15} {:>8.0} ms",
            took.as_secs_f64() * 1e3
        );
    }

    // RSS with 100 tenants × 3 plugins active and warm.
    let server = server::start(&dir, port, &[("REQUEST_TIMEOUT", "900")])?;
    wait_ready(&http, &server.base).await?;
    let admin = Admin::sign_in(&http, &server.base).await?;
    let pid = server.pid();
    let before = rss_kib(pid);
    let three = [
        ("noop-customizer", json!({})),
        ("tenant-claims", json!({"static_claims": {"org": "acme"}})),
        ("hostile", json!({"mode": "ok"})),
    ];
    let mut tenants = Vec::new();
    for i in 0..100 {
        let (tid, url, id, secret) = tenant_with_client(&admin, &format!("rss-{i}")).await?;
        for (p, config) in &three {
            admin
                .put(
                    &format!("/api/v1/tenants/{tid}/plugins/{p}"),
                    json!({"enabled": true, "config": config}),
                )
                .await?;
        }
        tenants.push((url, id, secret));
    }
    let after_activation = rss_kib(pid);
    for (url, id, secret) in &tenants {
        json_ok(
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await?,
        )
        .await?;
    }
    let after_tokens = rss_kib(pid);
    println!(
        "RSS: {:.1} MiB before; {:.1} MiB with 100 tenants × 3 plugins activated; {:.1} MiB after one token per tenant (300 warm instances)",
        before as f64 / 1024.0,
        after_activation as f64 / 1024.0,
        after_tokens as f64 / 1024.0
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    in_process(env_or("BENCH_CALLS", 20_000u32)).await?;
    if std::env::var("BENCH_IN_PROCESS_ONLY").is_ok() {
        return Ok(());
    }
    over_http(
        env_or("BENCH_SECONDS", 8u64),
        env_or("BENCH_CONCURRENCY", 64usize),
    )
    .await
}
