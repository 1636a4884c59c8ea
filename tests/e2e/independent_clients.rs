//! Independent-client conformance: third-party OAuth/OIDC client libraries
//! talk to the real server. `tests/clients/python` drives it with Authlib
//! (requests for the hosted login page); `tests/clients/node` is a relying
//! party on oauth4webapi and jose whose user logs in through headless
//! Chromium (playwright-core). Each test provisions a tenant, a user and the
//! clients its script needs, runs the script and requires exit code 0.
//!
//! The toolchains are set up here, idempotently: a Python virtualenv under
//! `target/tmp/client-venv` (rebuilt when `requirements.txt` changes) and
//! `npm ci` in `tests/clients/node` (rerun when `package-lock.json` changes).
//! python3, node/npm and Chromium must be installed (`.ci/run` installs
//! them); a missing one fails the test with a message saying so.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::Server;

const USER_EMAIL: &str = "ada@rp.example";
const USER_PASSWORD: &str = "rp-user-password-1";
/// Never contacted: the Python client stops at the redirect to it.
const PY_REDIRECT_URI: &str = "https://rp.example.test/callback";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn clients_dir() -> PathBuf {
    repo_root().join("tests").join("clients")
}

/// `target/tmp`: the virtualenv, script output and screenshots live here.
fn work_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(bytes))
}

/// Runs a set-up command; answers its combined output or an error with it.
fn run_setup(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn require_tool(program: &str, arg: &str, hint: &str) -> Result<String, String> {
    match Command::new(program).arg(arg).stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!(
            "`{program} {arg}` failed: {}{hint}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("{program} is not installed ({e}); {hint}")),
    }
}

/// The virtualenv's python, created or refreshed when requirements changed.
/// Tests run as threads of one process: the `OnceLock` makes the others wait.
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let res = PYTHON.get_or_init(|| {
        let hint = "install it (`.ci/run` does: apt-get install python3 python3-venv)";
        require_tool("python3", "--version", hint)?;
        let requirements = clients_dir().join("python").join("requirements.txt");
        let venv = work_dir().join("client-venv");
        let py = venv.join("bin").join("python");
        let stamp = venv.join(".requirements-sha256");
        let want = sha256_hex(&requirements);
        if py.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
            return Ok(py);
        }
        let _ = std::fs::remove_dir_all(&venv);
        run_setup(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv (Debian needs python3-venv)",
        )?;
        run_setup(
            Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    "-r",
                ])
                .arg(&requirements),
            "pip install -r tests/clients/python/requirements.txt",
        )?;
        std::fs::write(&stamp, &want).map_err(|e| e.to_string())?;
        Ok(py)
    });
    match res {
        Ok(p) => p,
        Err(e) => panic!("Python toolchain for the Authlib client is not available: {e}"),
    }
}

/// `tests/clients/node` with its dependencies installed by `npm ci`.
fn node_project() -> &'static Path {
    static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let res = NODE.get_or_init(|| {
        let hint = "install it (`.ci/run` does: apt-get install nodejs npm)";
        let version = require_tool("node", "--version", hint)?;
        let major: u32 = version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 20 {
            return Err(format!(
                "node {version} is too old: oauth4webapi 3 needs 20+"
            ));
        }
        require_tool("npm", "--version", hint)?;
        let dir = clients_dir().join("node");
        let stamp = dir.join("node_modules").join(".package-lock-sha256");
        let want = sha256_hex(&dir.join("package-lock.json"));
        if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
            return Ok(dir);
        }
        run_setup(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir),
            "npm ci in tests/clients/node",
        )?;
        std::fs::write(&stamp, &want).map_err(|e| e.to_string())?;
        Ok(dir)
    });
    match res {
        Ok(p) => p,
        Err(e) => panic!("Node toolchain for the oauth4webapi client is not available: {e}"),
    }
}

fn chromium() -> String {
    let path = std::env::var("VAULTARIS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "Chromium not found at {path}: install it (`.ci/run` does: apt-get install chromium) \
         or set VAULTARIS_CHROMIUM"
    );
    path
}

/// Runs a client script to completion (bounded), answers (success, output).
fn run_script(name: &str, mut cmd: Command, limit: Duration) -> (bool, String) {
    let dir = work_dir().join("independent-clients");
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&out_path).unwrap();
    let err = out.try_clone().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => (true, text),
        Some(s) => {
            text.push_str(&format!(
                "\n[{name} exited with {s}; log: {}]",
                out_path.display()
            ));
            (false, text)
        }
        None => {
            text.push_str(&format!(
                "\n[{name} killed after {limit:?}; log: {}]",
                out_path.display()
            ));
            (false, text)
        }
    }
}

/// A server with a tenant `rp` and one user in it.
struct Rp {
    s: Server,
    token: String,
    tenant: String,
    issuer: String,
}

impl Rp {
    /// A server with a tenant `rp` whose settings are `settings`.
    async fn start(settings: Value) -> Rp {
        let (s, token) = Server::with_admin().await;
        let t = s
            .create(
                "/api/v1/tenants",
                &token,
                json!({ "name": "Relying parties", "slug": "rp", "settings": settings }),
            )
            .await;
        let tenant = t["id"].as_str().unwrap().to_string();
        let issuer = t["issuer"].as_str().unwrap().to_string();
        assert_eq!(issuer, format!("{}/t/rp", s.base));
        s.create(
            &format!("/api/v1/tenants/{tenant}/users"),
            &token,
            json!({
                "email": USER_EMAIL, "password": USER_PASSWORD,
                "first_name": "Ada", "last_name": "Lovelace", "email_verified": true
            }),
        )
        .await;
        Rp {
            s,
            token,
            tenant,
            issuer,
        }
    }

    /// Creates a client; answers (client_id, secret or "").
    async fn client(&self, body: Value) -> (String, String) {
        let c = self
            .s
            .create(
                &format!("/api/v1/tenants/{}/clients", self.tenant),
                &self.token,
                body,
            )
            .await;
        (
            c["client_id"].as_str().unwrap().to_string(),
            c["client_secret"].as_str().unwrap_or_default().to_string(),
        )
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn python_authlib_client_conforms() {
    let py = python();
    let script = clients_dir().join("python").join("conformance.py");
    let rp = Rp::start(json!({})).await;

    // The private_key_jwt client's key pair comes from the script itself.
    let key_file = work_dir().join(format!("pkjwt-{}.json", uuid::Uuid::new_v4().simple()));
    let out = Command::new(py)
        .arg(&script)
        .arg("keygen")
        .arg(&key_file)
        .output()
        .expect("run keygen");
    assert!(
        out.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public_jwk: Value = serde_json::from_slice(&out.stdout).expect("keygen prints a JWK");

    let code = json!(["authorization_code", "refresh_token"]);
    let (web, web_secret) = rp
        .client(json!({
            "client_id": "py-web", "name": "Python web app", "client_type": "confidential",
            "redirect_uris": [PY_REDIRECT_URI], "grant_types": code,
            "token_endpoint_auth_method": "client_secret_basic"
        }))
        .await;
    let (public, _) = rp
        .client(json!({
            "client_id": "py-spa", "name": "Python public app", "client_type": "public",
            "redirect_uris": [PY_REDIRECT_URI], "grant_types": code
        }))
        .await;
    let (consent, consent_secret) = rp
        .client(json!({
            "client_id": "py-consent", "name": "Third-party app", "client_type": "confidential",
            "redirect_uris": [PY_REDIRECT_URI], "grant_types": code, "require_consent": true
        }))
        .await;
    let (svc, svc_secret) = rp
        .client(json!({
            "client_id": "py-svc", "name": "Service (basic)", "client_type": "confidential",
            "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"
        }))
        .await;
    let (post, post_secret) = rp
        .client(json!({
            "client_id": "py-svc-post", "name": "Service (post)", "client_type": "confidential",
            "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post"
        }))
        .await;
    let (pkjwt, _) = rp
        .client(json!({
            "client_id": "py-pkjwt", "name": "Service (private_key_jwt)", "client_type": "confidential",
            "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks": { "keys": [public_jwk] }
        }))
        .await;

    let (eddsa, eddsa_secret) = rp
        .client(json!({
            "client_id": "py-eddsa", "name": "EdDSA ID tokens", "client_type": "confidential",
            "redirect_uris": [PY_REDIRECT_URI], "grant_types": code,
            "id_token_signed_response_alg": "EdDSA"
        }))
        .await;
    let (es256, es256_secret) = rp
        .client(json!({
            "client_id": "py-es256", "name": "ES256 ID tokens", "client_type": "confidential",
            "redirect_uris": [PY_REDIRECT_URI], "grant_types": code,
            "id_token_signed_response_alg": "ES256"
        }))
        .await;

    let mut cmd = Command::new(py);
    cmd.arg(&script)
        .arg("run")
        .env("ISSUER", &rp.issuer)
        .env("USERNAME", USER_EMAIL)
        .env("PASSWORD", USER_PASSWORD)
        .env("REDIRECT_URI", PY_REDIRECT_URI)
        .env("WEB_CLIENT_ID", web)
        .env("WEB_CLIENT_SECRET", web_secret)
        .env("PUBLIC_CLIENT_ID", public)
        .env("CONSENT_CLIENT_ID", consent)
        .env("CONSENT_CLIENT_SECRET", consent_secret)
        .env("SVC_CLIENT_ID", svc)
        .env("SVC_CLIENT_SECRET", svc_secret)
        .env("POST_CLIENT_ID", post)
        .env("POST_CLIENT_SECRET", post_secret)
        .env("PKJWT_CLIENT_ID", pkjwt)
        .env("PKJWT_KEY_FILE", &key_file)
        .env("EDDSA_CLIENT_ID", eddsa)
        .env("EDDSA_CLIENT_SECRET", eddsa_secret)
        .env("ES256_CLIENT_ID", es256)
        .env("ES256_CLIENT_SECRET", es256_secret)
        .env("PYTHONUNBUFFERED", "1");
    let (ok, output) = run_script("python-authlib", cmd, Duration::from_secs(180));
    let _ = std::fs::remove_file(&key_file);
    assert!(ok, "the Authlib client found problems:\n{output}");
    println!("{output}");
}

#[tokio::test]
async fn node_oauth4webapi_client_in_chromium_conforms() {
    let dir = node_project();
    let chromium = chromium();
    // This tenant requires server DPoP nonces, so oauth4webapi's
    // use_dpop_nonce retry (token endpoint and userinfo) is exercised too.
    let rp = Rp::start(json!({ "dpop_nonce_required": true })).await;
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let logged_out = format!("http://127.0.0.1:{port}/logged-out");
    let web_client = |id: &str, extra: Value| {
        let mut body = json!({
            "client_id": id, "name": id, "client_type": "confidential",
            "redirect_uris": [redirect], "post_logout_redirect_uris": [logged_out],
            "grant_types": ["authorization_code", "refresh_token"]
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let (web, web_secret) = rp.client(web_client("node-web", json!({}))).await;
    let (dpop, dpop_secret) = rp
        .client(web_client(
            "node-dpop",
            json!({ "dpop_bound_access_tokens": true }),
        ))
        .await;
    let (spa, _) = rp
        .client(web_client(
            "node-spa-dpop",
            json!({ "client_type": "public", "dpop_bound_access_tokens": true }),
        ))
        .await;
    let (ed, ed_secret) = rp
        .client(web_client(
            "node-ed25519",
            json!({ "id_token_signed_response_alg": "Ed25519" }),
        ))
        .await;
    let (es, es_secret) = rp
        .client(web_client(
            "node-es256",
            json!({ "id_token_signed_response_alg": "ES256" }),
        ))
        .await;

    let artifacts = work_dir().join("independent-clients");
    let mut cmd = Command::new("node");
    cmd.current_dir(dir)
        .arg(dir.join("rp.mjs"))
        .env("ISSUER", &rp.issuer)
        .env("USERNAME", USER_EMAIL)
        .env("PASSWORD", USER_PASSWORD)
        .env("RP_PORT", port.to_string())
        .env("WEB_CLIENT_ID", web)
        .env("WEB_CLIENT_SECRET", web_secret)
        .env("DPOP_CLIENT_ID", dpop)
        .env("DPOP_CLIENT_SECRET", dpop_secret)
        .env("SPA_CLIENT_ID", spa)
        .env("ED_CLIENT_ID", ed)
        .env("ED_CLIENT_SECRET", ed_secret)
        .env("ES_CLIENT_ID", es)
        .env("ES_CLIENT_SECRET", es_secret)
        .env("CHROMIUM", chromium)
        .env("ARTIFACTS_DIR", &artifacts);
    let (ok, output) = run_script("node-oauth4webapi", cmd, Duration::from_secs(240));
    assert!(
        ok,
        "the oauth4webapi relying party found problems (screenshots in {}):\n{output}",
        artifacts.display()
    );
    println!("{output}");
}
