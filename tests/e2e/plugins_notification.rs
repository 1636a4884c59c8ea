//! notification-channel: a password-reset link goes out through the
//! tenant's `http-mail` plugin (to a mail-API stand-in), and the hosted page
//! behind the link sets the new password once.

use std::sync::{Arc, Mutex};

use axum::Json;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugin_support::{Build, activate, install};
use crate::rp::{PASSWORD, tenant};

async fn mail_api() -> (u16, Arc<Mutex<Vec<(String, Value)>>>) {
    let sent: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = sent.clone();
    let app = axum::Router::new().route(
        "/emails",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                let seen = seen.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    seen.lock().unwrap().push((auth, body));
                    Json(json!({"id": "msg-1"}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, sent)
}

both_builds!(password_reset_mail_goes_through_the_tenants_channel_and_the_link_works_once => password_reset_mail_goes_through_the_tenants_channel_and_the_link_works_once_wasm, password_reset_mail_goes_through_the_tenants_channel_and_the_link_works_once_native);

async fn password_reset_mail_goes_through_the_tenants_channel_and_the_link_works_once(
    build: Build,
) {
    let (port, sent) = mail_api().await;
    let s = build
        .server(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "127.0.0.1")])
        .await;
    let admin = s.setup().await;
    let mut mail = build.plugin("http-mail");
    mail.manifest["capabilities"]["outbound_http"] = json!(["127.0.0.1"]);
    install(&s, &admin, &mail).await;
    let a = tenant(&s, &admin, "mail-a").await;
    let b = tenant(&s, &admin, "mail-b").await;
    activate(
        &s,
        &admin,
        &a.tid,
        "http-mail",
        json!({"endpoint": format!("http://127.0.0.1:{port}/emails"), "api_key": "re_secret", "default_sender": "Acme <no-reply@acme.example>"}),
    )
    .await;

    let (st, v) = s
        .post(
            &format!(
                "/api/v1/tenants/{}/users/{}/password-reset-email",
                a.tid, a.user_id
            ),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["channel"], "http-mail");
    assert_eq!(v["provider_message_id"], "msg-1");
    let (auth, body) = sent
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a mail was sent");
    assert_eq!(auth, "Bearer re_secret");
    assert!(body["to"][0].as_str().unwrap().contains(&a.email), "{body}");
    let text = body["text"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http") && w.contains("/reset-password?token="))
        .expect("a link in the mail")
        .to_string();
    assert!(link.starts_with(&a.issuer), "{link}");

    // The page behind the link, then the form.
    let page = s.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let token = url::Url::parse(&link)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .to_string();
    let new_password = "a-brand-new-passphrase-7";
    let post = |password: &'static str, confirm: &'static str| {
        let (http, url, token) = (
            s.http.clone(),
            format!("{}/reset-password", a.issuer),
            token.clone(),
        );
        async move {
            http.post(url)
                .form(&[
                    ("token", token.as_str()),
                    ("password", password),
                    ("confirm", confirm),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        post("short-one-1", "different-2").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        post("short", "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "built-in password rules apply"
    );
    assert_eq!(post(new_password, new_password).await, StatusCode::OK);
    // The old password is gone, the new one signs in; the link is spent.
    let (st, _) = s
        .form(
            &format!("/t/{}", a.slug),
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", &a.email),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let _ = s
        .password_token(
            &format!("/t/{}", a.slug),
            "admin-cli",
            &a.email,
            new_password,
        )
        .await;
    assert_eq!(
        post(new_password, new_password).await,
        StatusCode::BAD_REQUEST,
        "a link works once"
    );
    assert_eq!(
        s.http.get(&link).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );

    // A tenant without a channel cannot send mail: 409, nothing sent.
    let before = sent.lock().unwrap().len();
    let (st, v) = s
        .post(
            &format!(
                "/api/v1/tenants/{}/users/{}/password-reset-email",
                b.tid, b.user_id
            ),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(sent.lock().unwrap().len(), before);
    // A token of tenant A is worthless at tenant B.
    let res = s
        .http
        .get(format!(
            "{}/reset-password?token={}",
            b.issuer,
            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
