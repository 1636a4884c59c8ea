//! The release server as the HTTP benchmarks drive it: started pinned to
//! one core with one Tokio worker, set up, and administered over its API.
//! Shared by `bench-plugins` and `bench-native` (each uses part of it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The environment variable `k` parsed, or `d`.
pub fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The server child process, killed on drop.
pub struct Server {
    child: std::process::Child,
    /// Its base URL.
    pub base: String,
}

impl Server {
    /// The process id (for RSS readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the release server (`VAULTARIS_BIN`, default next to this
/// binary) on `port` with data in `dir`, pinned to `BENCH_SERVER_CPU`
/// (default 0) with one Tokio worker, plus `env`.
pub fn start(dir: &Path, port: u16, env: &[(&str, &str)]) -> Result<Server> {
    let bin = std::env::var("VAULTARIS_BIN").unwrap_or_else(|_| {
        std::env::current_exe()
            .expect("exe")
            .with_file_name("vaultaris")
            .display()
            .to_string()
    });
    let cpu = env_or("BENCH_SERVER_CPU", 0u32).to_string();
    let mut cmd = std::process::Command::new("taskset");
    cmd.args(["-c", &cpu, &bin, "serve"])
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", port.to_string())
        .env("EXTERNAL_URL", format!("http://127.0.0.1:{port}"))
        .env("VAULTARIS_DATA_DIR", dir)
        .env("TOKIO_WORKER_THREADS", "1")
        .env("PASSWORD_HASH_CONCURRENCY", "1")
        .env("LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().with_context(|| {
        format!("starting {bin} (build it: cargo build --release -p vaultaris)")
    })?;
    Ok(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

/// Waits until the server answers `/health/ready`; how long that took.
pub async fn wait_ready(http: &reqwest::Client, base: &str) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await
            && r.status().is_success()
        {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The JSON body of a successful response, or an error with the body.
pub async fn json_ok(res: reqwest::Response) -> Result<Value> {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    Ok(body)
}

/// The server's administrator.
pub struct Admin {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The server's base URL.
    pub base: String,
    /// A master admin access token.
    pub token: String,
}

impl Admin {
    /// Sets the server up and signs the administrator in.
    pub async fn setup(http: &reqwest::Client, base: &str) -> Result<Admin> {
        json_ok(
            http.post(format!("{base}/setup"))
                .json(&json!({"admin_email": "admin@example.com", "admin_password": "correct-horse-battery", "organization_name": "Bench"}))
                .send()
                .await?,
        )
        .await?;
        Admin::sign_in(http, base).await
    }

    /// Signs the administrator of a server set up earlier in.
    pub async fn sign_in(http: &reqwest::Client, base: &str) -> Result<Admin> {
        let token = json_ok(
            http.post(format!("{base}/oauth/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", "admin-cli"),
                    ("username", "admin@example.com"),
                    ("password", "correct-horse-battery"),
                ])
                .send()
                .await?,
        )
        .await?["access_token"]
            .as_str()
            .context("admin token")?
            .to_string();
        Ok(Admin {
            http: http.clone(),
            base: base.to_string(),
            token,
        })
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        json_ok(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Result<Value> {
        json_ok(
            self.http
                .put(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// Installs a plugin: its manifest and its component (or library).
    pub async fn install(&self, manifest: &Value, bytes: &[u8]) -> Result<Value> {
        let form = reqwest::multipart::Form::new()
            .part(
                "manifest",
                reqwest::multipart::Part::text(manifest.to_string()),
            )
            .part("component", reqwest::multipart::Part::bytes(bytes.to_vec()));
        json_ok(
            self.http
                .post(format!("{}/api/v1/plugins", self.base))
                .bearer_auth(&self.token)
                .multipart(form)
                .send()
                .await?,
        )
        .await
    }
}

/// Client_credentials tokens per second at `url` with `concurrency`
/// connections for `seconds`, and how many requests failed.
pub async fn tokens_per_second(
    url: &str,
    id: &str,
    secret: &str,
    concurrency: usize,
    seconds: u64,
) -> (f64, u64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..concurrency {
        let (http, done, failed, stop) = (http.clone(), done.clone(), failed.clone(), stop.clone());
        let (url, id, secret) = (url.to_string(), id.to_string(), secret.to_string());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok { &done } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rate, failed.load(Ordering::Relaxed))
}
