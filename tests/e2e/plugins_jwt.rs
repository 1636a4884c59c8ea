//! jwt-customizer plugins, end to end: the `tenant-claims` reference plugin
//! (Rust, built to wasm32-wasip2 by cargo) installed through the admin API,
//! activated for one tenant, and its claims in that tenant's access and ID
//! tokens only; deactivation, upgrade and removal without a restart.

use reqwest::StatusCode;
use serde_json::json;

use crate::plugin_support::{Build, activate, claims, install, rust_plugin, upload};
use crate::rp::{PASSWORD, tenant};
use crate::support::Server;

both_builds!(tenant_claims_customize_one_tenants_tokens_and_no_other => tenant_claims_customize_one_tenants_tokens_and_no_other_wasm, tenant_claims_customize_one_tenants_tokens_and_no_other_native);

pub(crate) async fn tenant_claims_customize_one_tenants_tokens_and_no_other(build: Build) {
    let (s, admin) = build.server_with_admin(&[]).await;
    let plugin = build.plugin("tenant-claims");
    let view = install(&s, &admin, &plugin).await;
    assert_eq!(view["id"], "tenant-claims");
    assert_eq!(view["categories"], json!(["jwt-customizer"]));
    assert_eq!(view["loaded"], true);

    let a = tenant(&s, &admin, "claims-a").await;
    let b = tenant(&s, &admin, "claims-b").await;
    let role = s
        .create(
            &format!("/api/v1/tenants/{}/roles", a.tid),
            &admin,
            json!({"name": "billing"}),
        )
        .await;
    s.link(
        &format!("/api/v1/tenants/{}/users/{}/roles", a.tid, a.user_id),
        &admin,
        json!({"role_id": role["id"]}),
    )
    .await;
    let act = activate(
        &s,
        &admin,
        &a.tid,
        "tenant-claims",
        json!({
            "token_kinds": ["access", "id"],
            "static_claims": {"org": "acme", "tier": "gold"},
            "attribute_claims": {"roles": "roles", "email": "contact"}
        }),
    )
    .await;
    assert_eq!(act["enabled"], true);
    assert_eq!(act["status"]["loaded"], true);

    // Tenant A: access token (password grant) and ID token carry the claims.
    let (st, body) = s
        .form(
            &format!("/t/{}", a.slug),
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", &a.email),
                ("password", PASSWORD),
                ("scope", "openid email"),
            ],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["org"], "acme");
    assert_eq!(at["tier"], "gold");
    assert_eq!(at["roles"], json!(["billing"]));
    assert_eq!(at["contact"], a.email.as_str());
    assert_eq!(at["sub"], a.user_id.as_str(), "registered claims untouched");
    assert_eq!(at["iss"], a.issuer.as_str());

    // Client credentials in tenant A: static claims, no user attributes.
    let client = s
        .create(
            &format!("/api/v1/tenants/{}/clients", a.tid),
            &admin,
            json!({"client_id": "svc", "name": "svc", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["api"]}),
        )
        .await;
    let (st, body) = s
        .form(
            &format!("/t/{}", a.slug),
            &[("grant_type", "client_credentials")],
            Some(("svc", client["client_secret"].as_str().unwrap())),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["org"],
        "acme"
    );

    // Tenant B has no plugin: built-in tokens.
    let token_b = s
        .password_token(&format!("/t/{}", b.slug), "admin-cli", &b.email, PASSWORD)
        .await;
    let cb = claims(&token_b);
    assert!(cb.get("org").is_none(), "{cb}");
    assert!(cb.get("roles").is_none(), "{cb}");

    // The plugin's schema refuses protected claims and unknown settings.
    for bad in [
        json!({"static_claims": {"sub": "x"}}),
        json!({"colour": "red"}),
    ] {
        let (st, body) = s
            .put(
                &format!("/api/v1/tenants/{}/plugins/tenant-claims", a.tid),
                &admin,
                json!({"config": bad}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }

    // Disabled: tokens are built-in again, at once.
    let (st, _) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/tenant-claims", a.tid),
            &admin,
            json!({"enabled": false, "config": {"static_claims": {"org": "acme"}}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let t = s
        .password_token(&format!("/t/{}", a.slug), "admin-cli", &a.email, PASSWORD)
        .await;
    assert!(claims(&t).get("org").is_none());

    // Removal refuses while a tenant uses it, unless forced.
    let (st, _) = s.delete("/api/v1/plugins/tenant-claims", &admin).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = s
        .delete("/api/v1/plugins/tenant-claims?force=true", &admin)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, list) = s.get("/api/v1/plugins", &admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list, json!([]));
    let (st, acts) = s
        .get(&format!("/api/v1/tenants/{}/plugins", a.tid), &admin)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(acts, json!([]));
}

#[tokio::test]
async fn installation_is_verified_and_restricted_to_the_operator() {
    let (s, admin) = Server::with_admin().await;
    let good = rust_plugin("noop-customizer");

    // Wrong sha256, wrong categories, unsupported contract, native kind,
    // garbage component: 422 each, nothing installed.
    let mut wrong_sha = good.clone();
    wrong_sha.manifest["sha256"] = "00".repeat(32).into();
    let mut wrong_cat = good.clone();
    wrong_cat.manifest["categories"] = json!(["policy-engine"]);
    let mut future = good.clone();
    future.manifest["contract"] = "9.0.0".into();
    let mut native = good.clone();
    native.manifest["kind"] = "native".into();
    let garbage = crate::plugin_support::Artifact {
        manifest: {
            let mut m = good.manifest.clone();
            m["sha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"not wasm")).into();
            m
        },
        component: b"not wasm".to_vec(),
    };
    for (name, a) in [
        ("sha", &wrong_sha),
        ("categories", &wrong_cat),
        ("contract", &future),
        ("native", &native),
        ("garbage", &garbage),
    ] {
        let (st, body) = upload(&s, &admin, a).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert_eq!(
            body["type"].as_str().map(|t| t.contains("validation")),
            Some(true),
            "{name}: {body}"
        );
    }
    let (_, list) = s.get("/api/v1/plugins", &admin).await;
    assert_eq!(list, json!([]));

    // A tenant administrator may list but not install.
    let t = tenant(&s, &admin, "plug-perm").await;
    let (_, users) = s
        .get(
            &format!("/api/v1/tenants/{}/roles?per_page=100", t.tid),
            &admin,
        )
        .await;
    let admin_role = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()["id"]
        .clone();
    s.link(
        &format!("/api/v1/tenants/{}/users/{}/roles", t.tid, t.user_id),
        &admin,
        json!({"role_id": admin_role}),
    )
    .await;
    let tenant_admin = s
        .password_token(&format!("/t/{}", t.slug), "admin-cli", &t.email, PASSWORD)
        .await;
    // (A small body: the server answers 403 before reading it.)
    let (st, _) = upload(&s, &tenant_admin, &garbage).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Installing twice is idempotent (200, same version), and an upgrade
    // with a new version answers 200 and takes effect without a restart.
    let (st, _) = upload(&s, &admin, &good).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = upload(&s, &admin, &good).await;
    assert_eq!(st, StatusCode::OK);
    let mut next = good.clone();
    next.manifest["version"] = "0.2.0".into();
    let (st, body) = upload(&s, &admin, &next).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["version"], "0.2.0");
    let (st, list) = s.get("/api/v1/plugins", &tenant_admin).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list[0]["version"], "0.2.0");
}

both_builds!(noop_customizer_changes_nothing => noop_customizer_changes_nothing_wasm, noop_customizer_changes_nothing_native);

async fn noop_customizer_changes_nothing(build: Build) {
    let (s, admin) = build.server_with_admin(&[]).await;
    install(&s, &admin, &build.plugin("noop-customizer")).await;
    let t = tenant(&s, &admin, "noop").await;
    let token = || async {
        let token = s
            .password_token(&format!("/t/{}", t.slug), "admin-cli", &t.email, PASSWORD)
            .await;
        let c = claims(&token);
        let mut keys: Vec<String> = c.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (keys, c["scope"].clone(), c["aud"].clone())
    };
    let before = token().await;
    let act = activate(&s, &admin, &t.tid, "noop-customizer", json!({})).await;
    assert_eq!(act["status"]["loaded"], true, "{act}");
    assert_eq!(token().await, before);
    let (_, acts) = s
        .get(&format!("/api/v1/tenants/{}/plugins", t.tid), &admin)
        .await;
    assert_eq!(acts[0]["status"]["calls"], 1, "{acts}");
}
