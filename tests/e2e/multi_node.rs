//! Two nodes behind one "load balancer": they share the database, the
//! master key, the public URL and Redis. Tokens issued by one verify at the
//! other, and a one-time DPoP proof or client assertion used at one node is
//! refused at the other (the replay cache lives in Redis, `REDIS_URL`).

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::rp::{Auth, TestKey, active, backchannel, client, tenant, token, tokens};
use crate::support::Server;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Node A (with setup done) and node B serving the same deployment.
async fn two_nodes() -> (Server, Server, String) {
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let a = Server::start_with(&[("VAULTARIS_MASTER_KEY", &key), ("REDIS_URL", REDIS_URL)]).await;
    let admin = a.setup().await;
    let b = Server::start_with(&[
        ("VAULTARIS_MASTER_KEY", &key),
        ("REDIS_URL", REDIS_URL),
        ("DATABASE_URL", &a.database_url),
        ("EXTERNAL_URL", &a.base),
    ])
    .await;
    (a, b, admin)
}

/// The same path at node B.
fn at_b(a: &Server, b: &Server, url: &str) -> String {
    url.replacen(&a.base, &b.base, 1)
}

#[tokio::test]
async fn a_dpop_proof_used_at_one_node_is_refused_at_the_other() {
    let (a, b, admin) = two_nodes().await;
    let t = tenant(&a, &admin, "cluster").await;
    let c = client(
        &a,
        &admin,
        &t,
        json!({"grant_types": ["client_credentials"], "scopes": ["api"]}),
    )
    .await;
    let http = backchannel();
    let key = TestKey::es256();
    // The proof names the public URL (node A's base is the deployment's).
    let proof = key.dpop("POST", &format!("{}/oauth/token", t.issuer), None, None);
    let first = token(
        &http,
        &t.issuer,
        &[("grant_type", "client_credentials")],
        &c.auth(),
        Some(&proof),
    )
    .await;
    let issued = tokens(&first, "DPoP token at node A");
    assert_eq!(issued["token_type"], "DPoP");
    // The same proof at node B: a replay, refused although B never saw it.
    let replay = token(
        &http,
        &at_b(&a, &b, &t.issuer),
        &[("grant_type", "client_credentials")],
        &c.auth(),
        Some(&proof),
    )
    .await;
    replay.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", "replay at B");
    // A fresh proof works at B, and tokens from either node verify at both.
    let fresh = key.dpop("POST", &format!("{}/oauth/token", t.issuer), None, None);
    let second = token(
        &http,
        &at_b(&a, &b, &t.issuer),
        &[("grant_type", "client_credentials")],
        &c.auth(),
        Some(&fresh),
    )
    .await;
    let at_from_b = tokens(&second, "DPoP token at node B")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let at_from_a = issued["access_token"].as_str().unwrap().to_string();
    let auth = c.auth();
    assert!(active(&http, &t.issuer, &auth, &at_from_b).await);
    assert!(active(&http, &at_b(&a, &b, &t.issuer), &auth, &at_from_a).await);
}

#[tokio::test]
async fn a_client_assertion_used_at_one_node_is_refused_at_the_other() {
    let (a, b, admin) = two_nodes().await;
    let t = tenant(&a, &admin, "cluster-jwt").await;
    let key = TestKey::es256();
    let c = client(
        &a,
        &admin,
        &t,
        json!({
            "grant_types": ["client_credentials"], "scopes": ["api"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.registered_jwk()]}
        }),
    )
    .await;
    let http = backchannel();
    let assertion = key.client_assertion(&c.id, &format!("{}/oauth/token", t.issuer));
    let ok = token(
        &http,
        &t.issuer,
        &[("grant_type", "client_credentials")],
        &Auth::Assertion(assertion.clone()),
        None,
    )
    .await;
    tokens(&ok, "assertion at node A");
    let replay = token(
        &http,
        &at_b(&a, &b, &t.issuer),
        &[("grant_type", "client_credentials")],
        &Auth::Assertion(assertion),
        None,
    )
    .await;
    replay.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "assertion replay at B",
    );
}

/// Client-credentials access token claims at `issuer`.
async fn cc_claims(
    http: &reqwest::Client,
    issuer: &str,
    c: &crate::rp::Client,
) -> serde_json::Value {
    let t = tokens(
        &token(
            http,
            issuer,
            &[("grant_type", "client_credentials")],
            &c.auth(),
            None,
        )
        .await,
        "client credentials",
    );
    crate::plugin_support::claims(t["access_token"].as_str().unwrap())
}

/// Polls node B until `want` holds for its tokens (the sync interval is
/// 2 s by default; 20 s is the test's patience).
async fn eventually_at_b(
    http: &reqwest::Client,
    issuer_b: &str,
    c: &crate::rp::Client,
    want: impl Fn(&serde_json::Value) -> bool,
    what: &str,
) {
    let started = std::time::Instant::now();
    loop {
        let claims = cc_claims(http, issuer_b, c).await;
        if want(&claims) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{what}: node B still issues {claims}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn plugin_changes_made_at_one_node_reach_the_other() {
    let (a, b, admin) = two_nodes().await;
    let t = tenant(&a, &admin, "cluster-plugins").await;
    let c = client(
        &a,
        &admin,
        &t,
        json!({"grant_types": ["client_credentials"], "scopes": ["api"]}),
    )
    .await;
    let http = backchannel();
    let issuer_b = at_b(&a, &b, &t.issuer);
    // Installed and activated through node A only.
    crate::plugin_support::install(
        &a,
        &admin,
        &crate::plugin_support::rust_plugin("tenant-claims"),
    )
    .await;
    crate::plugin_support::activate(
        &a,
        &admin,
        &t.tid,
        "tenant-claims",
        json!({"token_kinds": ["access"], "static_claims": {"org": "acme"}}),
    )
    .await;
    assert_eq!(cc_claims(&http, &t.issuer, &c).await["org"], "acme");
    eventually_at_b(&http, &issuer_b, &c, |c| c["org"] == "acme", "activation").await;
    // Reconfigured at A.
    let (st, v) = a
        .put(
            &format!("/api/v1/tenants/{}/plugins/tenant-claims", t.tid),
            &admin,
            json!({"config": {"token_kinds": ["access"], "static_claims": {"org": "globex"}}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    eventually_at_b(
        &http,
        &issuer_b,
        &c,
        |c| c["org"] == "globex",
        "new configuration",
    )
    .await;
    // Removed at A.
    let (st, v) = a
        .delete(
            &format!("/api/v1/tenants/{}/plugins/tenant-claims", t.tid),
            &admin,
        )
        .await;
    assert!(st.is_success(), "{st}: {v}");
    eventually_at_b(&http, &issuer_b, &c, |c| c.get("org").is_none(), "removal").await;
}
