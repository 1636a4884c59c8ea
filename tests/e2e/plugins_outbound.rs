//! Outbound HTTP against server-side request forgery: a granted host
//! *name* that resolves to a loopback or private address is refused unless
//! the operator allows private networks, while an IP literal the operator
//! lists verbatim stays reachable. The `hostile` plugin's `http` mode makes
//! the request and reports the outcome in a token claim.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugin_support::{claims, install, rust_plugin};
use crate::rp::tenant;
use crate::support::Server;

/// A server with `env`, the hostile plugin (its manifest asking for
/// `localhost` and `127.0.0.1`) installed, and a tenant whose service
/// client gets tokens.
struct Probe {
    s: Server,
    admin: String,
    tid: String,
    slug: String,
    secret: String,
}

impl Probe {
    async fn start(env: &[(&str, &str)]) -> Probe {
        let s = Server::start_with(env).await;
        let admin = s.setup().await;
        let mut plugin = rust_plugin("hostile");
        plugin.manifest["capabilities"]["outbound_http"] = json!(["localhost", "127.0.0.1"]);
        install(&s, &admin, &plugin).await;
        let t = tenant(&s, &admin, "ssrf").await;
        let c = s
            .create(
                &format!("/api/v1/tenants/{}/clients", t.tid),
                &admin,
                json!({"client_id": "svc", "name": "svc", "client_type": "confidential",
                       "grant_types": ["client_credentials"], "scopes": ["api"]}),
            )
            .await;
        let secret = c["client_secret"].as_str().unwrap().to_string();
        Probe {
            s,
            admin,
            tid: t.tid,
            slug: t.slug,
            secret,
        }
    }

    /// What the plugin saw when it requested `url`.
    async fn fetch(&self, url: &str) -> Value {
        let (st, v) = self
            .s
            .put(
                &format!("/api/v1/tenants/{}/plugins/hostile", self.tid),
                &self.admin,
                json!({"config": {"mode": "http", "url": url}, "limits": {"deadline_ms": 5000}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, v) = self
            .s
            .form(
                &format!("/t/{}", self.slug),
                &[("grant_type", "client_credentials")],
                Some(("svc", &self.secret)),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        claims(v["access_token"].as_str().unwrap())["hostile_http"].clone()
    }

    fn port(&self) -> u16 {
        url::Url::parse(&self.s.base).unwrap().port().unwrap()
    }
}

#[tokio::test]
async fn names_resolving_to_private_addresses_need_the_operators_consent() {
    // The operator allows `localhost` (a name) and `127.0.0.1` (an address).
    let p = Probe::start(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "localhost,127.0.0.1")]).await;
    let port = p.port();
    let r = p.fetch(&format!("http://localhost:{port}/health")).await;
    assert_eq!(r["ok"], false, "{r}");
    let kind = r["kind"].as_str().unwrap();
    assert!(
        kind.contains("DeniedHost") && kind.contains("loopback"),
        "{r}"
    );
    // The address the operator named is reachable.
    let r = p.fetch(&format!("http://127.0.0.1:{port}/health")).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");

    // With private networks allowed, the name is reachable too.
    let p = Probe::start(&[
        ("PLUGIN_HTTP_ALLOWED_HOSTS", "localhost"),
        ("PLUGIN_HTTP_ALLOW_PRIVATE_NETWORKS", "true"),
    ])
    .await;
    let port = p.port();
    let r = p.fetch(&format!("http://localhost:{port}/health")).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    // `127.0.0.1` is in the manifest but not in this operator's list.
    let r = p.fetch(&format!("http://127.0.0.1:{port}/health")).await;
    assert!(r["kind"].as_str().unwrap().contains("DeniedHost"), "{r}");
}

#[tokio::test]
async fn addresses_granted_only_through_a_wildcard_are_classified() {
    let p = Probe::start(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "*")]).await;
    let port = p.port();
    // The operator did not name 127.0.0.1: a loopback address is refused,
    // whatever the scheme, without any traffic.
    for url in [
        format!("https://127.0.0.1:{port}/health"),
        format!("http://127.0.0.1:{port}/health"),
        format!("http://localhost:{port}/health"),
    ] {
        let r = p.fetch(&url).await;
        assert_eq!(r["ok"], false, "{url}: {r}");
        assert!(
            r["kind"].as_str().unwrap().contains("DeniedHost"),
            "{url}: {r}"
        );
    }
}
