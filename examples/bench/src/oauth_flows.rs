//! Throughput of the OpenID Provider's hot paths over keep-alive HTTP:
//! client_credentials tokens, introspections, refresh grants, and full
//! authorization-code + PKCE flows (authorize with an SSO session, then the
//! code exchange). Prints numbers; asserts nothing.
//!
//! The server runs as a child process pinned to one core (`taskset`) with
//! one Tokio worker, so the figures are "per core". Run the bench itself on
//! the other core:
//!
//! ```text
//! cargo build --release -p vaultaris -p vaultaris-bench
//! taskset -c 1 target/release/bench-oauth
//! ```
//!
//! Environment: `BENCH_SECONDS` (per phase, default 10), `BENCH_CONCURRENCY`
//! (connections, default 64), `BENCH_SERVER_CPU` (default 0),
//! `VAULTARIS_BIN` (default: next to this binary), `DATABASE_URL` (passed
//! to the server; default a fresh SQLite file), `BENCH_ID_TOKEN_ALG` (the
//! web client's ID token algorithm, default RS256).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Result<Server> {
    let bin = std::env::var("VAULTARIS_BIN").unwrap_or_else(|_| {
        let me = std::env::current_exe().expect("current exe");
        me.with_file_name("vaultaris").display().to_string()
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("vaultaris-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cpu = env_or("BENCH_SERVER_CPU", 0u32).to_string();
    let mut cmd = std::process::Command::new("taskset");
    cmd.args(["-c", &cpu, &bin, "serve"])
        .env("SERVER_HOST", "127.0.0.1")
        .env("SERVER_PORT", port.to_string())
        .env("EXTERNAL_URL", format!("http://127.0.0.1:{port}"))
        .env("VAULTARIS_DATA_DIR", &dir)
        .env("TOKIO_WORKER_THREADS", "1")
        .env("PASSWORD_HASH_CONCURRENCY", "1")
        .env("LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null());
    if let Ok(db) = std::env::var("DATABASE_URL") {
        cmd.env("DATABASE_URL", db);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {bin} under taskset"))?;
    Ok(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

async fn json_ok(res: reqwest::Response) -> Result<Value> {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    Ok(body)
}

struct Fixture {
    issuer: String,
    cc_id: String,
    cc_secret: String,
    web_id: String,
    web_secret: String,
    session_cookie: String,
}

const REDIRECT: &str = "http://127.0.0.1:9/cb";

async fn provision(http: &reqwest::Client, base: &str) -> Result<Fixture> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/health")).send().await.is_err() {
        if Instant::now() > deadline {
            bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    json_ok(
        http.post(format!("{base}/setup"))
            .json(&json!({"admin_email": "admin@example.com", "admin_password": "correct-horse-battery", "organization_name": "Bench"}))
            .send()
            .await?,
    )
    .await?;
    let admin = json_ok(
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
    let post = |path: String, body: Value| {
        let admin = admin.clone();
        async move {
            json_ok(
                http.post(format!("{base}{path}"))
                    .bearer_auth(admin)
                    .json(&body)
                    .send()
                    .await?,
            )
            .await
        }
    };
    let tenant = post(
        "/api/v1/tenants".into(),
        json!({"name": "Bench", "slug": "bench"}),
    )
    .await?;
    let tid = tenant["id"].as_str().context("tenant id")?.to_string();
    let issuer = tenant["issuer"].as_str().context("issuer")?.to_string();
    post(
        format!("/api/v1/tenants/{tid}/users"),
        json!({"email": "user@example.com", "password": "correct-horse-battery", "first_name": "Bench"}),
    )
    .await?;
    let cc = post(
        format!("/api/v1/tenants/{tid}/clients"),
        json!({"name": "svc", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["api:read"]}),
    )
    .await?;
    let web = post(
        format!("/api/v1/tenants/{tid}/clients"),
        json!({"name": "web", "client_type": "confidential", "redirect_uris": [REDIRECT],
               "id_token_signed_response_alg": std::env::var("BENCH_ID_TOKEN_ALG").unwrap_or_else(|_| "RS256".into()),
               "grant_types": ["authorization_code", "refresh_token"],
               "scopes": ["openid", "profile", "email", "offline_access"]}),
    )
    .await?;
    let mut f = Fixture {
        issuer,
        cc_id: cc["client_id"].as_str().context("cc id")?.into(),
        cc_secret: cc["client_secret"].as_str().context("cc secret")?.into(),
        web_id: web["client_id"].as_str().context("web id")?.into(),
        web_secret: web["client_secret"].as_str().context("web secret")?.into(),
        session_cookie: String::new(),
    };
    f.session_cookie = login(http, &f).await?;
    Ok(f)
}

fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(f: &Fixture, challenge: &str) -> String {
    let mut u = url::Url::parse(&format!("{}/oauth/authorize", f.issuer)).expect("url");
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &f.web_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile offline_access")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    u.to_string()
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(
        html[start..start + end]
            .replace("&amp;", "&")
            .replace("&#39;", "'")
            .replace("&quot;", "\""),
    )
}

/// Signs in once through the login page; returns the cookie header value.
async fn login(http: &reqwest::Client, f: &Fixture) -> Result<String> {
    let (_, challenge) = pkce();
    let page = http.get(authorize_url(f, &challenge)).send().await?;
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("vx_csrf="))
        .and_then(|c| c.split(';').next())
        .context("csrf cookie")?
        .to_string();
    let html = page.text().await?;
    let form = [
        ("action", "login".to_string()),
        ("flow", hidden(&html, "flow").context("flow")?),
        ("csrf", hidden(&html, "csrf").context("csrf")?),
        ("username", "user@example.com".into()),
        ("password", "correct-horse-battery".into()),
    ];
    let res = http
        .post(format!("{}/oauth/authorize", f.issuer))
        .header("cookie", &csrf_cookie)
        .form(&form)
        .send()
        .await?;
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("vx_session="))
        .and_then(|c| c.split(';').next())
        .context("session cookie")?
        .to_string();
    Ok(format!("{csrf_cookie}; {session}"))
}

/// One full flow: authorize (SSO) then code exchange; returns the tokens.
async fn code_flow(http: &reqwest::Client, f: &Fixture) -> Result<Value> {
    let (verifier, challenge) = pkce();
    let res = http
        .get(authorize_url(f, &challenge))
        .header("cookie", &f.session_cookie)
        .send()
        .await?;
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("authorize did not redirect")?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    json_ok(
        http.post(format!("{}/oauth/token", f.issuer))
            .basic_auth(&f.web_id, Some(&f.web_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ])
            .send()
            .await?,
    )
    .await
}

struct Stats {
    done: AtomicU64,
    failed: AtomicU64,
    latencies: std::sync::Mutex<Vec<u32>>,
}

/// Runs `op` on `concurrency` tasks for `seconds` and prints the figures.
async fn phase<F, Fut>(name: &str, concurrency: usize, seconds: u64, op: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let stats = Arc::new(Stats {
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latencies: Default::default(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let (stats, stop, op) = (stats.clone(), stop.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            let mut first_error = None;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match op(i).await {
                    Ok(()) => {
                        stats.done.fetch_add(1, Ordering::Relaxed);
                        local.push(t.elapsed().as_micros() as u32);
                    }
                    Err(e) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                    }
                }
            }
            stats.latencies.lock().expect("lock").extend(local);
            first_error
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for t in tasks {
        if let Ok(Some(e)) = t.await {
            errors.push(e);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = stats.latencies.lock().expect("lock").clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let done = stats.done.load(Ordering::Relaxed);
    println!(
        "{name:<38} {:>9.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({done} ok, {} failed)",
        done as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        stats.failed.load(Ordering::Relaxed)
    );
    if let Some(e) = errors.first() {
        println!("    first error: {e:#}");
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let seconds = env_or("BENCH_SECONDS", 10u64);
    let concurrency = env_or("BENCH_CONCURRENCY", 64usize);
    let server = start_server()?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let f = Arc::new(provision(&http, &server.base).await?);
    println!(
        "vaultaris OpenID Provider, server pinned to one core ({}), {concurrency} keep-alive connections, {seconds} s per phase",
        server.base
    );

    {
        let (http, f) = (http.clone(), f.clone());
        phase(
            "client_credentials tokens",
            concurrency,
            seconds,
            move |_| {
                let (http, f) = (http.clone(), f.clone());
                async move {
                    json_ok(
                        http.post(format!("{}/oauth/token", f.issuer))
                            .basic_auth(&f.cc_id, Some(&f.cc_secret))
                            .form(&[("grant_type", "client_credentials")])
                            .send()
                            .await?,
                    )
                    .await
                    .map(|_| ())
                }
            },
        )
        .await;
    }
    let at = code_flow(&http, &f).await?["access_token"]
        .as_str()
        .context("at")?
        .to_string();
    {
        let (http, f, at) = (http.clone(), f.clone(), at.clone());
        phase("introspections", concurrency, seconds, move |_| {
            let (http, f, at) = (http.clone(), f.clone(), at.clone());
            async move {
                let v = json_ok(
                    http.post(format!("{}/oauth/introspect", f.issuer))
                        .basic_auth(&f.web_id, Some(&f.web_secret))
                        .form(&[("token", at.as_str())])
                        .send()
                        .await?,
                )
                .await?;
                if v["active"] != true {
                    bail!("token not active: {v}");
                }
                Ok(())
            }
        })
        .await;
    }
    {
        let mut chains = Vec::new();
        for _ in 0..concurrency {
            chains.push(tokio::sync::Mutex::new(
                code_flow(&http, &f).await?["refresh_token"]
                    .as_str()
                    .context("rt")?
                    .to_string(),
            ));
        }
        let chains = Arc::new(chains);
        let (http, f) = (http.clone(), f.clone());
        phase(
            "refresh grants (rotating)",
            concurrency,
            seconds,
            move |i| {
                let (http, f, chains) = (http.clone(), f.clone(), chains.clone());
                async move {
                    let mut rt = chains[i].lock().await;
                    let v = json_ok(
                        http.post(format!("{}/oauth/token", f.issuer))
                            .basic_auth(&f.web_id, Some(&f.web_secret))
                            .form(&[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", rt.as_str()),
                            ])
                            .send()
                            .await?,
                    )
                    .await?;
                    *rt = v["refresh_token"]
                        .as_str()
                        .context("rotated token")?
                        .to_string();
                    Ok(())
                }
            },
        )
        .await;
    }
    {
        let (http, f) = (http.clone(), f.clone());
        phase(
            "authorization code + PKCE flows (SSO)",
            concurrency,
            seconds,
            move |_| {
                let (http, f) = (http.clone(), f.clone());
                async move { code_flow(&http, &f).await.map(|_| ()) }
            },
        )
        .await;
    }
    drop(server);
    Ok(())
}
