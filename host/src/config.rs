//! Configuration from the environment, with defaults that let
//! `vaultaris serve` run on a fresh machine with nothing else installed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Errors in the environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that does not parse.
    #[error("{name}: {message}")]
    Invalid {
        /// Variable name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SERVER_HOST` (default `0.0.0.0`).
    pub host: IpAddr,
    /// `SERVER_PORT` (default 8080; 0 picks a free port).
    pub port: u16,
    /// `EXTERNAL_URL`: the public base URL, no trailing slash (default `http://localhost:<port>`).
    pub external_url: String,
    /// `DATABASE_URL`: `postgres://...` or `sqlite://...` (default: `<data dir>/vaultaris.db`).
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub database_max_connections: u32,
    /// `VAULTARIS_DATA_DIR` (default `./data`): SQLite file and generated master key.
    pub data_dir: PathBuf,
    /// `VAULTARIS_MASTER_KEY`: base64 AES-256 key sealing private keys at rest.
    pub master_key: Option<String>,
    /// `ACCESS_TOKEN_LIFETIME` seconds (default 3600).
    pub access_token_lifetime: i64,
    /// `REFRESH_TOKEN_LIFETIME` seconds (default 86400).
    pub refresh_token_lifetime: i64,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins (default none).
    pub cors_origins: Vec<String>,
    /// `LOG_LEVEL` / `RUST_LOG` filter (default `info`).
    pub log_level: String,
    /// `LOG_FORMAT`: `text` or `json` (default `text`).
    pub log_json: bool,
    /// `REQUEST_TIMEOUT` seconds (default 30).
    pub request_timeout: Duration,
    /// `LOCKOUT_THRESHOLD`: failed logins before lockout (default 5).
    pub lockout_threshold: i64,
    /// `LOCKOUT_DURATION` seconds (default 900).
    pub lockout_duration: i64,
    /// `PASSWORD_HASH_CONCURRENCY` (default: number of cores).
    pub password_hash_concurrency: usize,
    /// `REDIS_URL`: when set, one-time identifiers (DPoP proof and client
    /// assertion `jti`s) are remembered in Redis, shared by every node.
    pub redis_url: Option<String>,
    /// Plugin runtime settings (`PLUGINS_DIR`, `PLUGIN_*`).
    pub plugins: PluginConfig,
}

/// What the operator decides about plugins.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// `PLUGINS_DIR` (default `<data dir>/plugins`): installed at start-up,
    /// one sub-directory per plugin holding `manifest.json` and its component.
    pub dir: PathBuf,
    /// `PLUGIN_CACHE_DIR` (default `<data dir>/plugin-cache`): compiled components.
    pub cache_dir: PathBuf,
    /// `PLUGIN_FILES_DIR` (default `<data dir>/plugin-files`), or `off` to
    /// refuse the `files` capability.
    pub files_dir: Option<PathBuf>,
    /// `PLUGIN_HTTP_ALLOWED_HOSTS`: comma-separated `host` or `host:port`
    /// entries plugins may reach (`*`: whatever manifests request). Default none.
    pub http_allowed_hosts: Vec<String>,
    /// `PLUGIN_HTTP_ALLOW_PRIVATE_NETWORKS` (default false): whether a
    /// granted host *name* may resolve to a loopback or private-network
    /// address (RFC 1918, fc00::/7, CGNAT). IP literals listed verbatim in
    /// `PLUGIN_HTTP_ALLOWED_HOSTS` are reachable without it.
    pub http_allow_private_networks: bool,
    /// `PLUGIN_ALLOW_NATIVE` (default false): whether native plugins
    /// (`kind: native`, trusted Rust dylibs running unsandboxed inside the
    /// server process) may be installed and loaded.
    pub allow_native: bool,
    /// `PLUGIN_NATIVE_CALLS` (default `pool`): where native plugin calls
    /// run: `pool` (the blocking pool; the deadline answers even if a call
    /// never returns) or `inline` (the request's worker thread: no hand-off,
    /// the deadline checked when the call returns).
    pub native_calls: crate::plugins::native::NativeCallMode,
    /// `PLUGIN_NATIVE_SHA256`: comma-separated SHA-256s (hex) of the only
    /// native libraries the server accepts (default: any, once
    /// `PLUGIN_ALLOW_NATIVE` is set), so an administrator account alone
    /// cannot bring new native code.
    pub native_allowed_sha256: Vec<String>,
    /// `PLUGIN_WARM_INSTANCES` (default 2): warm instances kept per activation.
    pub warm_instances: usize,
    /// `PLUGIN_MAX_FUEL` (default 1e9): maximum fuel per call.
    pub max_fuel: u64,
    /// `PLUGIN_MAX_MEMORY_MIB` (default 256): maximum memory per instance.
    pub max_memory_mib: u32,
    /// `PLUGIN_MAX_DEADLINE_MS` (default 60000): maximum deadline per call.
    pub max_deadline_ms: u64,
    /// `PLUGIN_BREAKER_THRESHOLD` (default 5): consecutive failures that
    /// open an activation's circuit breaker.
    pub breaker_threshold: u32,
    /// `PLUGIN_BREAKER_COOLDOWN_MS` (default 30000): how long it stays open.
    pub breaker_cooldown_ms: u64,
    /// `PLUGIN_METRICS_INTERVAL_MS` (default 10000): how often
    /// metrics-collector plugins receive a batch.
    pub metrics_interval_ms: u64,
    /// `PLUGIN_SYNC_INTERVAL_MS` (default 2000): how often a node picks up
    /// plugin changes made on other nodes sharing its database.
    pub sync_interval_ms: u64,
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            message: e.to_string(),
        }),
    }
}

/// A boolean variable: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
fn flag(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                message: format!("{v:?} is not a boolean (true or false)"),
            }),
        },
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let host = parse("SERVER_HOST", IpAddr::from([0, 0, 0, 0]))?;
        let port = parse("SERVER_PORT", 8080u16)?;
        let data_dir = PathBuf::from(var("VAULTARIS_DATA_DIR").unwrap_or_else(|| "data".into()));
        let base_dir = data_dir.clone();
        let plugin_dir = move |name: &str| base_dir.join(name);
        let external_url = var("EXTERNAL_URL")
            .unwrap_or_else(|| format!("http://localhost:{port}"))
            .trim_end_matches('/')
            .to_string();
        url::Url::parse(&external_url).map_err(|e| ConfigError::Invalid {
            name: "EXTERNAL_URL",
            message: e.to_string(),
        })?;
        let database_url = var("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("vaultaris.db").display()));
        let positive = |name: &'static str, v: i64| {
            if v > 0 {
                Ok(v)
            } else {
                Err(ConfigError::Invalid {
                    name,
                    message: "must be positive".into(),
                })
            }
        };
        Ok(Self {
            host,
            port,
            external_url,
            database_url,
            database_max_connections: parse("DATABASE_MAX_CONNECTIONS", 10u32)?,
            data_dir,
            master_key: var("VAULTARIS_MASTER_KEY"),
            access_token_lifetime: positive(
                "ACCESS_TOKEN_LIFETIME",
                parse("ACCESS_TOKEN_LIFETIME", 3600i64)?,
            )?,
            refresh_token_lifetime: positive(
                "REFRESH_TOKEN_LIFETIME",
                parse("REFRESH_TOKEN_LIFETIME", 86400i64)?,
            )?,
            cors_origins: var("CORS_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log_level: var("RUST_LOG")
                .or_else(|| var("LOG_LEVEL"))
                .unwrap_or_else(|| "info".into()),
            log_json: var("LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json")),
            request_timeout: Duration::from_secs(positive(
                "REQUEST_TIMEOUT",
                parse("REQUEST_TIMEOUT", 30i64)?,
            )? as u64),
            lockout_threshold: positive("LOCKOUT_THRESHOLD", parse("LOCKOUT_THRESHOLD", 5i64)?)?,
            lockout_duration: positive("LOCKOUT_DURATION", parse("LOCKOUT_DURATION", 900i64)?)?,
            password_hash_concurrency: parse(
                "PASSWORD_HASH_CONCURRENCY",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )?,
            redis_url: var("REDIS_URL"),
            plugins: PluginConfig {
                dir: var("PLUGINS_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| plugin_dir("plugins")),
                cache_dir: var("PLUGIN_CACHE_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| plugin_dir("plugin-cache")),
                files_dir: match var("PLUGIN_FILES_DIR") {
                    Some(v) if v.eq_ignore_ascii_case("off") => None,
                    Some(v) => Some(PathBuf::from(v)),
                    None => Some(plugin_dir("plugin-files")),
                },
                http_allowed_hosts: var("PLUGIN_HTTP_ALLOWED_HOSTS")
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                http_allow_private_networks: flag("PLUGIN_HTTP_ALLOW_PRIVATE_NETWORKS", false)?,
                allow_native: flag("PLUGIN_ALLOW_NATIVE", false)?,
                native_calls: parse("PLUGIN_NATIVE_CALLS", Default::default())?,
                native_allowed_sha256: var("PLUGIN_NATIVE_SHA256")
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.trim().to_ascii_lowercase())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                warm_instances: parse("PLUGIN_WARM_INSTANCES", 2usize)?,
                max_fuel: positive(
                    "PLUGIN_MAX_FUEL",
                    parse("PLUGIN_MAX_FUEL", 1_000_000_000i64)?,
                )? as u64,
                max_memory_mib: positive(
                    "PLUGIN_MAX_MEMORY_MIB",
                    parse("PLUGIN_MAX_MEMORY_MIB", 256i64)?,
                )?
                .min(4096) as u32,
                max_deadline_ms: positive(
                    "PLUGIN_MAX_DEADLINE_MS",
                    parse("PLUGIN_MAX_DEADLINE_MS", 60_000i64)?,
                )? as u64,
                breaker_threshold: positive(
                    "PLUGIN_BREAKER_THRESHOLD",
                    parse("PLUGIN_BREAKER_THRESHOLD", 5i64)?,
                )?
                .min(i64::from(u32::MAX)) as u32,
                breaker_cooldown_ms: positive(
                    "PLUGIN_BREAKER_COOLDOWN_MS",
                    parse("PLUGIN_BREAKER_COOLDOWN_MS", 30_000i64)?,
                )? as u64,
                metrics_interval_ms: positive(
                    "PLUGIN_METRICS_INTERVAL_MS",
                    parse("PLUGIN_METRICS_INTERVAL_MS", 10_000i64)?,
                )? as u64,
                sync_interval_ms: positive(
                    "PLUGIN_SYNC_INTERVAL_MS",
                    parse("PLUGIN_SYNC_INTERVAL_MS", 2_000i64)?,
                )? as u64,
            },
        })
    }

    /// The issuer URL of a tenant: the master tenant is the root issuer,
    /// every other tenant lives under `/t/{slug}`.
    pub fn issuer_for(&self, slug: &str) -> String {
        if slug == crate::model::MASTER_TENANT_SLUG {
            self.external_url.clone()
        } else {
            format!("{}/t/{}", self.external_url, slug)
        }
    }
}
