//! Plugins for the end-to-end tests: builds the Rust reference plugins in
//! `plugins/` to `wasm32-wasip2` with cargo (once per test process, into
//! `target/plugins`, which cargo keeps incremental), and installs and
//! activates them through the admin API like an operator would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::Server;

/// A built plugin: its manifest (with `sha256`) and component.
#[derive(Clone)]
pub struct Artifact {
    pub manifest: Value,
    pub component: Vec<u8>,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Rust plugin crates: every `plugins/<dir>/Cargo.toml`, as (dir, package).
fn rust_plugins() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("plugins"))
        .unwrap()
        .flatten()
    {
        let cargo = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&cargo) else {
            continue;
        };
        let name = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name = ")
                    .map(|v| v.trim_matches('"').to_string())
            })
            .expect("package name");
        out.push((entry.file_name().to_string_lossy().to_string(), name));
    }
    out.sort();
    out
}

/// Builds every Rust plugin in release into `target/plugins`, for `target`
/// (`None`: the host's own, the native build); returns the output folder.
fn cargo_build_plugins(target: Option<&str>) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let plugin_target = target_dir().join("plugins");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--release"]);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    cmd.arg("--target-dir").arg(&plugin_target);
    for (_, package) in rust_plugins() {
        cmd.args(["-p", &package]);
    }
    let status = cmd.status().expect("run cargo to build the plugins");
    assert!(
        status.success(),
        "building the Rust plugins for {} failed",
        target.unwrap_or("the host")
    );
    match target {
        Some(t) => plugin_target.join(t).join("release"),
        None => plugin_target.join("release"),
    }
}

/// Builds every Rust plugin once; returns the directory of the `.wasm` files.
pub fn build_rust_plugins() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        // The plugins' target ships with rustup; add it on a fresh machine.
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
            .unwrap_or(true);
        if !installed {
            let ok = Command::new("rustup")
                .args(["target", "add", "wasm32-wasip2"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "rustup target add wasm32-wasip2 failed");
        }
        cargo_build_plugins(Some("wasm32-wasip2"))
    })
}

/// Builds every Rust plugin once for the host's own target (the native
/// dylib build of the same sources); returns the directory of the `.so`s.
pub fn build_native_plugins() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| cargo_build_plugins(None))
}

/// The native (dylib) build of the Rust plugin in `plugins/<dir>`, with
/// its `manifest.json` turned to `kind: native`.
pub fn native_plugin(dir: &str) -> Artifact {
    let out = build_native_plugins();
    let (_, package) = rust_plugins()
        .into_iter()
        .find(|(d, _)| d == dir)
        .unwrap_or_else(|| panic!("no Rust plugin in plugins/{dir}"));
    let lib = out.join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ));
    let library = std::fs::read(&lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    let manifest_path = workspace_root()
        .join("plugins")
        .join(dir)
        .join("manifest.json");
    let mut a = with_manifest(&manifest_path, library);
    a.manifest["kind"] = "native".into();
    a
}

/// Which build of a Rust plugin a behaviour test runs against: one suite,
/// two builds, the same expectations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// The WebAssembly component (`wasm32-wasip2`).
    Wasm,
    /// The native dylib.
    Native,
    /// The native dylib, called inline on the server's request workers
    /// (`PLUGIN_NATIVE_CALLS=inline`).
    NativeInline,
}

impl Build {
    /// The plugin in `plugins/<dir>`, built this way.
    pub fn plugin(self, dir: &str) -> Artifact {
        match self {
            Build::Wasm => rust_plugin(dir),
            Build::Native | Build::NativeInline => native_plugin(dir),
        }
    }

    /// A server that loads this kind (native needs the operator's opt-in).
    pub async fn server(self, env: &[(&str, &str)]) -> Server {
        let mut env = env.to_vec();
        if self != Build::Wasm {
            env.push(("PLUGIN_ALLOW_NATIVE", "true"));
        }
        if self == Build::NativeInline {
            env.push(("PLUGIN_NATIVE_CALLS", "inline"));
        }
        Server::start_with(&env).await
    }

    /// The same, set up, with an admin token.
    pub async fn server_with_admin(self, env: &[(&str, &str)]) -> (Server, String) {
        let s = self.server(env).await;
        let token = s.setup().await;
        (s, token)
    }
}

/// Declares one `#[tokio::test]` per build for a behaviour test written as
/// `async fn name(build: Build)`.
macro_rules! both_builds {
    ($test:ident => $wasm:ident, $native:ident) => {
        #[tokio::test]
        async fn $wasm() {
            $test($crate::plugin_support::Build::Wasm).await
        }
        #[tokio::test]
        async fn $native() {
            $test($crate::plugin_support::Build::Native).await
        }
    };
}

/// The built Rust plugin in `plugins/<dir>`.
pub fn rust_plugin(dir: &str) -> Artifact {
    let out = build_rust_plugins();
    let (_, package) = rust_plugins()
        .into_iter()
        .find(|(d, _)| d == dir)
        .unwrap_or_else(|| panic!("no Rust plugin in plugins/{dir}"));
    let wasm = out.join(format!("{}.wasm", package.replace('-', "_")));
    let component = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    let manifest_path = workspace_root()
        .join("plugins")
        .join(dir)
        .join("manifest.json");
    with_manifest(&manifest_path, component)
}

/// An artifact from a manifest file and component bytes (sha256 filled in).
pub fn with_manifest(manifest_path: &Path, component: Vec<u8>) -> Artifact {
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    manifest["sha256"] = hex::encode(Sha256::digest(&component)).into();
    Artifact {
        manifest,
        component,
    }
}

/// Uploads a plugin (`POST /api/v1/plugins`).
pub async fn upload(server: &Server, token: &str, a: &Artifact) -> (StatusCode, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "manifest",
            reqwest::multipart::Part::text(a.manifest.to_string()),
        )
        .part(
            "component",
            reqwest::multipart::Part::bytes(a.component.clone())
                .mime_str("application/wasm")
                .unwrap(),
        );
    // Installing compiles the component (cached afterwards): a JavaScript
    // or Python one takes seconds, more on a busy machine.
    static UPLOADS: OnceLock<reqwest::Client> = OnceLock::new();
    let http = UPLOADS.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .unwrap()
    });
    let res = http
        .post(format!("{}/api/v1/plugins", server.base))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Installs a plugin and asserts it was accepted.
pub async fn install(server: &Server, token: &str, a: &Artifact) -> Value {
    let (status, body) = upload(server, token, a).await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "{status}: {body}"
    );
    body
}

/// Activates a plugin for a tenant with `config`.
pub async fn activate(
    server: &Server,
    token: &str,
    tenant: &str,
    plugin: &str,
    config: Value,
) -> Value {
    let (status, body) = server
        .put(
            &format!("/api/v1/tenants/{tenant}/plugins/{plugin}"),
            token,
            json!({ "enabled": true, "config": config }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Decodes a JWT's claims without verifying it (the tests check content;
/// signature checks are the OIDC suites' job).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn newest_mtime(paths: &[PathBuf]) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        } else if let Ok(m) = meta.modified() {
            newest = newest.max(m);
        }
    }
    newest
}

/// A plugin built by its own `build.sh` (the JavaScript and Python ones):
/// runs the script once per test process when the component is missing or
/// older than its sources or the contract.
pub fn scripted_plugin(dir: &str, wasm: &str, sources: &[&str]) -> Artifact {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root().join("plugins").join(dir);
    let out = root.join(wasm);
    let mut inputs: Vec<PathBuf> = sources.iter().map(|s| root.join(s)).collect();
    inputs.push(root.join("build.sh"));
    inputs.push(workspace_root().join("wit").join("vaultaris-plugin-0.1.0"));
    let fresh = std::fs::metadata(&out)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built > newest_mtime(&inputs));
    if !fresh {
        let status = Command::new("bash")
            .arg(root.join("build.sh"))
            .status()
            .expect("run build.sh");
        assert!(status.success(), "plugins/{dir}/build.sh failed");
    }
    with_manifest(&root.join("manifest.json"), std::fs::read(&out).unwrap())
}

/// The JavaScript plugin (componentize-js).
pub fn js_claims() -> Artifact {
    scripted_plugin(
        "js-claims",
        "dist/js-claims.wasm",
        &["src", "package.json", "package-lock.json"],
    )
}

/// The Python plugin (componentize-py).
pub fn py_profile() -> Artifact {
    scripted_plugin(
        "py-profile",
        "dist/py-profile.wasm",
        &["app.py", "wit/world.wit", "requirements-build.txt"],
    )
}
