//! Plugins written in JavaScript (componentize-js) and Python
//! (componentize-py), built by their `build.sh` from the test set-up and
//! loaded by the same host as the Rust ones.

use reqwest::StatusCode;
use serde_json::json;

use crate::plugin_support::{activate, claims, install, js_claims, py_profile};
use crate::rp::{PASSWORD, tenant};
use crate::support::Server;

#[tokio::test]
async fn javascript_and_python_plugins_customize_and_validate_per_tenant() {
    // The first install compiles a 12-18 MB component (SpiderMonkey,
    // CPython); on a busy machine that can outlast the 30 s default.
    let s = Server::start_with(&[("REQUEST_TIMEOUT", "600")]).await;
    let admin = s.setup().await;
    let js = install(&s, &admin, &js_claims()).await;
    assert_eq!(js["categories"], json!(["jwt-customizer"]));
    let py = install(&s, &admin, &py_profile()).await;
    assert_eq!(
        py["categories"],
        json!(["input-validator", "jwt-customizer"])
    );

    let a = tenant(&s, &admin, "js-tenant").await;
    let b = tenant(&s, &admin, "py-tenant").await;
    let c = tenant(&s, &admin, "plain-tenant").await;
    activate(
        &s,
        &admin,
        &a.tid,
        "js-claims",
        json!({"claims": {"org": "acme-js"}, "copy_attributes": {"email": "mail"}, "token_kinds": ["access"]}),
    )
    .await;
    activate(
        &s,
        &admin,
        &b.tid,
        "py-profile",
        json!({"blocked_words": ["root"], "default_locale": "en-GB", "token_kinds": ["access"]}),
    )
    .await;

    // JavaScript: static claim and copied attribute in tenant A's tokens.
    let ta = claims(
        &s.password_token(&format!("/t/{}", a.slug), "admin-cli", &a.email, PASSWORD)
            .await,
    );
    assert_eq!(ta["org"], "acme-js", "{ta}");
    assert_eq!(ta["mail"], a.email.as_str(), "{ta}");
    assert!(ta.get("profile_complete").is_none());

    // Python: profile claims in tenant B's tokens...
    let tb = claims(
        &s.password_token(&format!("/t/{}", b.slug), "admin-cli", &b.email, PASSWORD)
            .await,
    );
    assert_eq!(tb["locale"], "en-GB", "{tb}");
    assert!(tb["profile_complete"].is_boolean(), "{tb}");
    assert!(tb.get("org").is_none());

    // ... and field-level violations on user creation, nothing written.
    let users = format!("/api/v1/tenants/{}/users", b.tid);
    let before = s.get(&users, &admin).await.1["total"].clone();
    let (st, body) = s
        .post(
            &users,
            &admin,
            json!({"email": "r@py.example", "display_name": "R.o.o.t Admin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["field"] == "display_name"
            && e["message"].as_str().unwrap().contains("blocked_word")),
        "{body}"
    );
    assert_eq!(s.get(&users, &admin).await.1["total"], before);
    let (st, _) = s
        .post(
            &users,
            &admin,
            json!({"email": "ok@py.example", "display_name": "Bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);

    // Tenant C has neither: built-in behaviour.
    let tc = claims(
        &s.password_token(&format!("/t/{}", c.slug), "admin-cli", &c.email, PASSWORD)
            .await,
    );
    assert!(
        tc.get("org").is_none() && tc.get("locale").is_none(),
        "{tc}"
    );
    let (st, _) = s
        .post(
            &format!("/api/v1/tenants/{}/users", c.tid),
            &admin,
            json!({"email": "r@plain.example", "display_name": "Root Admin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
}
