//! Test harness: starts the real `vaultaris` binary on a free port against a
//! fresh database (SQLite by default; PostgreSQL when
//! `VAULTARIS_TEST_POSTGRES_URL` names a server), and talks HTTP to it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

pub const MASTER: &str = "00000000-0000-0000-0000-000000000001";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

/// A running server and the database it owns.
pub struct Server {
    pub base: String,
    pub database_url: String,
    pub http: reqwest::Client,
    child: Child,
    dir: PathBuf,
    pg_admin: Option<(String, String)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a server with extra environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Server {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("vaultaris-e2e-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (database_url, pg_admin) = match std::env::var("VAULTARIS_TEST_POSTGRES_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("vaultaris_e2e_{id}");
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.ok();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                (url.to_string(), Some((admin_url, name)))
            }
            _ => (
                format!("sqlite://{}", dir.join("vaultaris.db").display()),
                None,
            ),
        };
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultaris"));
        cmd.arg("serve")
            .env("SERVER_HOST", "127.0.0.1")
            .env("SERVER_PORT", port.to_string())
            .env("EXTERNAL_URL", &base)
            .env("DATABASE_URL", &database_url)
            .env("DATABASE_MAX_CONNECTIONS", "5")
            .env("VAULTARIS_DATA_DIR", &dir)
            .env("LOG_LEVEL", "warn")
            // Compiled plugins are shared by every test server: compiling a
            // JavaScript or Python component takes seconds.
            .env(
                "PLUGIN_CACHE_DIR",
                std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn vaultaris");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let server = Server {
            base,
            database_url,
            http,
            child,
            dir,
            pg_admin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = server
                .http
                .get(format!("{}/health/ready", server.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
                break;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// Starts a server with defaults.
    pub async fn start() -> Server {
        Self::start_with(&[]).await
    }

    /// Starts a server, runs setup and returns it with a master admin token.
    pub async fn with_admin() -> (Server, String) {
        let s = Self::start().await;
        let token = s.setup().await;
        (s, token)
    }

    /// Runs `POST /setup` and returns a master admin token.
    pub async fn setup(&self) -> String {
        let (status, body) = self
            .call(Method::POST, "/setup", None, Some(json!({
                "admin_email": ADMIN_EMAIL, "admin_password": ADMIN_PASSWORD, "organization_name": "Acme"
            })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.password_token("", "admin-cli", ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
    }

    /// Password grant against the issuer at `prefix` ("" for master, "/t/slug").
    pub async fn password_token(
        &self,
        prefix: &str,
        client_id: &str,
        user: &str,
        password: &str,
    ) -> String {
        let (status, body) = self
            .form(
                prefix,
                &[
                    ("grant_type", "password"),
                    ("client_id", client_id),
                    ("username", user),
                    ("password", password),
                ],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// POSTs a form to `{prefix}/oauth/token`, optionally with Basic auth.
    pub async fn form(
        &self,
        prefix: &str,
        params: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{}/oauth/token", self.base, prefix))
            .form(params);
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends a JSON request; answers status and parsed body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        if status.is_client_error() || status.is_server_error() {
            assert!(
                ct.starts_with("application/problem+json") || path.contains("/oauth/"),
                "{method_path} answered {status} without problem+json: {ct} {text}",
                method_path = path
            );
        }
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        )
    }

    /// Sends a raw body with a content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let res = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json") || status.is_success(),
            "{status} {ct}"
        );
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a resource and returns its JSON, asserting 201.
    pub async fn create(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, v) = self.post(path, token, body).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
        v
    }

    /// POSTs an assignment (role, permission, member, composite) and asserts 204.
    pub async fn link(&self, path: &str, token: &str, body: Value) {
        let (status, v) = self.post(path, token, body).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "POST {path}: {v}");
    }

    /// Number of audit records of a tenant.
    pub async fn audit_count(&self, tenant: &str, token: &str) -> i64 {
        let (status, v) = self
            .get(
                &format!("/api/v1/tenants/{tenant}/audit-logs?per_page=1"),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["total"].as_i64().unwrap()
    }

    /// The data directory (SQLite file, master key).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> String {
        self.dir.display().to_string()
    }

    /// Sends SIGTERM and waits for the process to exit; answers its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `vaultaris <args>` against this server's database and data directory.
    pub fn run_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_vaultaris"))
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("VAULTARIS_DATA_DIR", &self.dir)
            .env("LOG_LEVEL", "info")
            .output()
            .expect("run vaultaris")
    }

    /// Runs a statement directly against the server's database (for tamper tests).
    pub async fn exec_sql(&self, sql: &str) {
        if self.database_url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first so the graceful path runs; then make sure.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin_url, name)) = self.pg_admin.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}
