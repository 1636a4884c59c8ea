//! auth-provider: `legacy-http-auth` verifies passwords of users the local
//! store does not know against a legacy user store's HTTP API (a stand-in
//! here), and the first successful sign-in migrates the user just in time.

use axum::Json;
use axum::http::StatusCode as AxumStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugin_support::{Build, activate, claims, install};
use crate::rp::tenant;
use crate::support::Server;

/// The legacy store: knows bob (password "legacy-pass-1"), has carol locked.
async fn legacy_store() -> u16 {
    let app = axum::Router::new().route(
        "/login",
        axum::routing::post(|Json(body): Json<Value>| async move {
            match (body["username"].as_str(), body["password"].as_str()) {
                (Some("bob@legacy.example"), Some("legacy-pass-1")) => (
                    AxumStatus::OK,
                    Json(json!({"id": "legacy-42", "email": "bob@legacy.example", "email_verified": true,
                                "name": "Bob Legacy", "attributes": {"department": "finance"}})),
                ),
                (Some("bob@legacy.example"), _) => (AxumStatus::UNAUTHORIZED, Json(json!({}))),
                // A legacy account whose email is a local user's: must not take it over.
                (Some("mallory@legacy.example"), Some("m-pass")) => (
                    AxumStatus::OK,
                    Json(json!({"id": "legacy-66", "email": "alice@legacy-a.example", "email_verified": true})),
                ),
                (Some("carol@legacy.example"), _) => (AxumStatus::LOCKED, Json(json!({}))),
                _ => (AxumStatus::NOT_FOUND, Json(json!({}))),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn sign_in(s: &Server, slug: &str, user: &str, password: &str) -> (StatusCode, Value) {
    s.form(
        &format!("/t/{slug}"),
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", user),
            ("password", password),
        ],
        None,
    )
    .await
}

both_builds!(legacy_users_sign_in_through_the_auth_provider_and_are_migrated => legacy_users_sign_in_through_the_auth_provider_and_are_migrated_wasm, legacy_users_sign_in_through_the_auth_provider_and_are_migrated_native);

async fn legacy_users_sign_in_through_the_auth_provider_and_are_migrated(build: Build) {
    let port = legacy_store().await;
    let s = build
        .server(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "127.0.0.1")])
        .await;
    let admin = s.setup().await;
    install(&s, &admin, &build.plugin("legacy-http-auth")).await;
    let a = tenant(&s, &admin, "legacy-a").await;
    let b = tenant(&s, &admin, "legacy-b").await;
    activate(
        &s,
        &admin,
        &a.tid,
        "legacy-http-auth",
        json!({"endpoint": format!("http://127.0.0.1:{port}/login")}),
    )
    .await;
    let users = format!("/api/v1/tenants/{}/users", a.tid);
    let before = s.get(&users, &admin).await.1["total"].as_i64().unwrap();

    // Wrong password, locked and unknown-everywhere users: refused, nobody created.
    for (user, pass) in [
        ("bob@legacy.example", "wrong"),
        ("carol@legacy.example", "whatever"),
        ("nobody@legacy.example", "x"),
    ] {
        let (st, v) = sign_in(&s, &a.slug, user, pass).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{user}: {v}");
        assert_eq!(v["error"], "invalid_grant");
    }
    assert_eq!(
        s.get(&users, &admin).await.1["total"].as_i64().unwrap(),
        before
    );

    // The right legacy password: signed in, and the user now exists locally
    // (no local password, linked to the legacy subject).
    let (st, v) = sign_in(&s, &a.slug, "bob@legacy.example", "legacy-pass-1").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let sub = claims(v["access_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, user) = s.get(&format!("{users}/{sub}"), &admin).await;
    assert_eq!(st, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "bob@legacy.example");
    assert_eq!(user["email_verified"], true);
    assert_eq!(
        user["attributes"]["external"],
        json!({"plugin": "legacy-http-auth", "subject": "legacy-42"})
    );
    assert_eq!(user["attributes"]["department"], "finance");
    assert_eq!(
        s.get(&users, &admin).await.1["total"].as_i64().unwrap(),
        before + 1
    );
    // A second sign-in reuses the migrated user.
    let (st, v) = sign_in(&s, &a.slug, "bob@legacy.example", "legacy-pass-1").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["sub"],
        sub.as_str()
    );
    assert_eq!(
        s.get(&users, &admin).await.1["total"].as_i64().unwrap(),
        before + 1
    );
    // Local users keep signing in with their local password, untouched by the plugin.
    let (st, _) = sign_in(&s, &a.slug, &a.email, crate::rp::PASSWORD).await;
    assert_eq!(st, StatusCode::OK);

    // Tenant B has no auth provider: the legacy user does not exist there.
    let (st, v) = sign_in(&s, &b.slug, "bob@legacy.example", "legacy-pass-1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    // The legacy store down: sign-in is unavailable (fail closed), not "wrong password".
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/legacy-http-auth", a.tid),
            &admin,
            json!({"config": {"endpoint": "http://127.0.0.1:9/login"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = sign_in(&s, &a.slug, "dave@legacy.example", "x").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"], "temporarily_unavailable");
}
