//! The token endpoint of this issue: password grant for `admin-cli`,
//! client_credentials for confidential clients, lockout, OAuth errors.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, MASTER, Server};

fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn access_tokens_follow_rfc9068_and_verify_with_the_jwks() {
    let (s, token) = Server::with_admin().await;
    let c = claims(&token);
    assert_eq!(c["iss"], s.base);
    assert_eq!(c["client_id"], "admin-cli");
    assert_eq!(c["tenant"], MASTER);
    for k in ["sub", "aud", "exp", "iat", "jti", "scope"] {
        assert!(c.get(k).is_some(), "missing {k}");
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value =
        serde_json::from_slice(&b64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let (_, jwks) = s
        .call(reqwest::Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    let x: [u8; 32] = b64
        .decode(jwk["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let (signing_input, sig) = token.rsplit_once('.').unwrap();
    let sig: [u8; 64] = b64.decode(sig).unwrap().try_into().unwrap();
    use ed25519_dalek::Verifier;
    vk.verify(
        signing_input.as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .expect("signature verifies");
}

#[tokio::test]
async fn oauth_errors_are_precise() {
    let (s, token) = Server::with_admin().await;
    type Case<'a> = (
        Vec<(&'a str, &'a str)>,
        Option<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            vec![("client_id", "admin-cli")],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "magic"), ("client_id", "admin-cli")],
            None,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "nope"),
                ("username", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", ADMIN_EMAIL),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("scope", "admin:everything"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "admin-cli"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("client_id", "admin-cli"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (params, basic, status, error) in cases {
        let (st, body) = s.form("", &params, basic).await;
        assert_eq!(st, status, "{params:?}: {body}");
        assert_eq!(body["error"], error, "{params:?}: {body}");
    }
    let (st, body) = s
        .form("/t/does-not-exist", &[("grant_type", "password")], None)
        .await;
    // No issuer lives at that address: 404 with an OAuth error body.
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    // client_credentials: wrong secret, and a secret sent for a public client.
    let c = s.create(&format!("/api/v1/tenants/{MASTER}/clients"), &token, json!({
        "client_id": "svc", "name": "Service", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["a"]
    })).await;
    let secret = c["client_secret"].as_str().unwrap();
    let (st, body) = s
        .form(
            "",
            &[("grant_type", "client_credentials")],
            Some(("svc", "wrong")),
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (st, body) = s
        .form(
            "",
            &[
                ("grant_type", "password"),
                ("username", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
            Some(("svc", secret)),
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    let (st, body) = s
        .form(
            "",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", secret),
            ],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "client_secret_post works: {body}");
    assert_eq!(body["scope"], "a");
}

#[tokio::test]
async fn service_accounts_act_with_their_roles() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let c = s.create(&format!("{base}/clients"), &token, json!({
        "client_id": "provisioner", "name": "Provisioner", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["api"]
    })).await;
    let secret = c["client_secret"].as_str().unwrap();
    let (_, t) = s
        .form(
            "",
            &[("grant_type", "client_credentials")],
            Some(("provisioner", secret)),
        )
        .await;
    let svc = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&svc)["sub"], c["service_account_user_id"]);
    let (st, _) = s.get(&format!("{base}/users"), &svc).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "no roles yet");
    // Give the service account a role carrying users:read.
    let (_, perms) = s
        .get(&format!("{base}/permissions?per_page=200"), &token)
        .await;
    let users_read = perms["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == "users" && p["action"] == "read")
        .unwrap()["id"]
        .clone();
    let role = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "user-reader" }),
        )
        .await;
    s.link(
        &format!("{base}/roles/{}/permissions", role["id"].as_str().unwrap()),
        &token,
        json!({ "permission_id": users_read }),
    )
    .await;
    let sa = c["service_account_user_id"].as_str().unwrap();
    s.link(
        &format!("{base}/users/{sa}/roles"),
        &token,
        json!({ "role_id": role["id"] }),
    )
    .await;
    let (st, _) = s.get(&format!("{base}/users"), &svc).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "permission applies at once, no new token needed"
    );
    let (st, _) = s
        .post(
            &format!("{base}/users"),
            &svc,
            json!({ "email": "x@example.com" }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "users:write not granted");
    // Audit records name the client's service account as actor.
    let (_, logs) = s
        .get(&format!("{base}/audit-logs?actor_id={sa}"), &token)
        .await;
    assert_eq!(logs["total"], 0, "the service account wrote nothing");
}

#[tokio::test]
async fn repeated_failures_lock_the_account() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let u = s
        .create(
            &format!("{base}/users"),
            &token,
            json!({ "email": "carol@example.com", "password": "carol-password" }),
        )
        .await;
    for _ in 0..5 {
        let (st, body) = s
            .form(
                "",
                &[
                    ("grant_type", "password"),
                    ("client_id", "admin-cli"),
                    ("username", "carol@example.com"),
                    ("password", "wrong-password"),
                ],
                None,
            )
            .await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }
    let (st, body) = s
        .form(
            "",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "carol@example.com"),
                ("password", "carol-password"),
            ],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{body}"
    );
    let (_, user) = s
        .get(
            &format!("{base}/users/{}", u["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(user["failed_attempts"], 5);
    assert!(user["locked_until"].is_string());
    let (_, logs) = s
        .get(
            &format!("{base}/audit-logs?action=user.login_failed"),
            &token,
        )
        .await;
    assert_eq!(
        logs["total"], 6,
        "five wrong passwords and one refused while locked"
    );
    // An administrator unlocks; the right password works again.
    let (st, _) = s
        .put(
            &format!("{base}/users/{}", u["id"].as_str().unwrap()),
            &token,
            json!({ "unlock": true }),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.password_token("", "admin-cli", "carol@example.com", "carol-password")
        .await;
    // Unknown users and wrong passwords answer identically.
    let (_, a) = s
        .form(
            "",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "nobody@example.com"),
                ("password", "whatever-pass"),
            ],
            None,
        )
        .await;
    let (_, b) = s
        .form(
            "",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "carol@example.com"),
                ("password", "whatever-pass"),
            ],
            None,
        )
        .await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn tokens_stop_working_when_the_subject_is_disabled() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let u = s
        .create(
            &format!("{base}/users"),
            &token,
            json!({ "email": "dave@example.com", "password": "dave-password" }),
        )
        .await;
    let (_, roles) = s.get(&format!("{base}/roles"), &token).await;
    let admin_role = roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()["id"]
        .clone();
    assert_eq!(
        roles["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "admin")
            .unwrap()["is_system"],
        true
    );
    let uid = u["id"].as_str().unwrap();
    s.post(
        &format!("{base}/users/{uid}/roles"),
        &token,
        json!({ "role_id": admin_role }),
    )
    .await;
    let dave = s
        .password_token("", "admin-cli", "dave@example.com", "dave-password")
        .await;
    let (st, _) = s.get(&format!("{base}/users"), &dave).await;
    assert_eq!(st, StatusCode::OK);
    s.put(
        &format!("{base}/users/{uid}"),
        &token,
        json!({ "enabled": false }),
    )
    .await;
    let (st, _) = s.get(&format!("{base}/users"), &dave).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, body) = s
        .form(
            "",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "dave@example.com"),
                ("password", "dave-password"),
            ],
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}
