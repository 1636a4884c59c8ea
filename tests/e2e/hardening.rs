//! Defences found in review: no privilege escalation through delegation,
//! lockout that neither re-locks forever nor reveals accounts, NUL bytes,
//! audit hashes that survive JSON normalisation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, MASTER, Server};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn permission_id(
    s: &Server,
    token: &str,
    base: &str,
    resource: &str,
    action: &str,
) -> String {
    let (_, perms) = s
        .get(&format!("{base}/permissions?per_page=200"), token)
        .await;
    perms["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == resource && p["action"] == action)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn delegation_cannot_exceed_the_callers_own_permissions() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    // A helpdesk role: users:read, users:write, groups:write, roles:write only.
    let helpdesk = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "helpdesk" }),
        )
        .await;
    for (r, a) in [
        ("users", "read"),
        ("users", "write"),
        ("groups", "write"),
        ("roles", "write"),
    ] {
        let pid = permission_id(&s, &token, &base, r, a).await;
        s.link(
            &format!("{base}/roles/{}/permissions", id(&helpdesk)),
            &token,
            json!({ "permission_id": pid }),
        )
        .await;
    }
    let hd = s
        .create(
            &format!("{base}/users"),
            &token,
            json!({ "email": "hd@example.com", "password": "helpdesk-pass" }),
        )
        .await;
    s.link(
        &format!("{base}/users/{}/roles", id(&hd)),
        &token,
        json!({ "role_id": id(&helpdesk) }),
    )
    .await;
    let hd_token = s
        .password_token("", "admin-cli", "hd@example.com", "helpdesk-pass")
        .await;
    let before = s.audit_count(MASTER, &token).await;

    let (_, roles) = s.get(&format!("{base}/roles"), &token).await;
    let admin_role = roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // 1. Assigning the system admin role to oneself.
    let (st, body) = s
        .post(
            &format!("{base}/users/{}/roles", id(&hd)),
            &hd_token,
            json!({ "role_id": admin_role }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    // 2. Through a group: give admin to a group, or join a group that has it.
    let g = s
        .create(
            &format!("{base}/groups"),
            &hd_token,
            json!({ "name": "sneaky" }),
        )
        .await;
    let (st, _) = s
        .post(
            &format!("{base}/groups/{}/roles", id(&g)),
            &hd_token,
            json!({ "role_id": admin_role }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let admins = s
        .create(
            &format!("{base}/groups"),
            &token,
            json!({ "name": "admins" }),
        )
        .await;
    s.post(
        &format!("{base}/groups/{}/roles", id(&admins)),
        &token,
        json!({ "role_id": admin_role }),
    )
    .await;
    let (st, _) = s
        .post(
            &format!("{base}/groups/{}/members", id(&admins)),
            &hd_token,
            json!({ "user_id": id(&hd) }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // 3. Adding a permission it lacks to its own role, or composing in the admin role.
    let tenants_write = permission_id(&s, &token, &base, "tenants", "write").await;
    let (st, _) = s
        .post(
            &format!("{base}/roles/{}/permissions", id(&helpdesk)),
            &hd_token,
            json!({ "permission_id": tenants_write }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let comp = s
        .create(
            &format!("{base}/roles"),
            &hd_token,
            json!({ "name": "combo", "is_composite": true }),
        )
        .await;
    let (st, _) = s
        .post(
            &format!("{base}/roles/{}/composites", id(&comp)),
            &hd_token,
            json!({ "role_id": admin_role }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // 4. Taking over or disabling a more privileged account.
    let (_, users) = s
        .get(&format!("{base}/users?email={ADMIN_EMAIL}"), &token)
        .await;
    let admin_id = users["data"][0]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .put(
            &format!("{base}/users/{admin_id}/password"),
            &hd_token,
            json!({ "password": "taken-over-now" }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .put(
            &format!("{base}/users/{admin_id}"),
            &hd_token,
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s
        .delete(&format!("{base}/users/{admin_id}"), &hd_token)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Only its two permitted creations and the admin's two writes landed.
    assert_eq!(s.audit_count(MASTER, &token).await, before + 4);
    // What it does hold, it may hand out: a role with users:read to a new user.
    let reader = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "reader" }),
        )
        .await;
    let users_read = permission_id(&s, &token, &base, "users", "read").await;
    s.post(
        &format!("{base}/roles/{}/permissions", id(&reader)),
        &token,
        json!({ "permission_id": users_read }),
    )
    .await;
    let newbie = s
        .create(
            &format!("{base}/users"),
            &hd_token,
            json!({ "email": "new@example.com" }),
        )
        .await;
    s.link(
        &format!("{base}/users/{}/roles", id(&newbie)),
        &hd_token,
        json!({ "role_id": id(&reader) }),
    )
    .await;
}

#[tokio::test]
async fn tenant_admins_cannot_disable_their_tenant() {
    let (s, token) = Server::with_admin().await;
    let t = s
        .create("/api/v1/tenants", &token, json!({ "name": "Initech" }))
        .await;
    let tid = id(&t);
    let base = format!("/api/v1/tenants/{tid}");
    let u = s
        .create(
            &format!("{base}/users"),
            &token,
            json!({ "email": "boss@initech.example", "password": "boss-password" }),
        )
        .await;
    let (_, roles) = s.get(&format!("{base}/roles"), &token).await;
    let admin_role = roles["data"][0]["id"].clone();
    s.post(
        &format!("{base}/users/{}/roles", id(&u)),
        &token,
        json!({ "role_id": admin_role }),
    )
    .await;
    let boss = s
        .password_token(
            "/t/initech",
            "admin-cli",
            "boss@initech.example",
            "boss-password",
        )
        .await;
    let (st, _) = s.put(&base, &boss, json!({ "name": "Initech Ltd" })).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.put(&base, &boss, json!({ "enabled": false })).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s.put(&base, &token, json!({ "enabled": false })).await;
    assert_eq!(st, StatusCode::OK, "the instance admin may");
    let (st, body) = s
        .form(
            "/t/initech",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "boss@initech.example"),
                ("password", "boss-password"),
            ],
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn lockout_expires_cleanly_and_does_not_reveal_accounts() {
    let s = Server::start_with(&[("LOCKOUT_THRESHOLD", "3"), ("LOCKOUT_DURATION", "2")]).await;
    let token = s.setup().await;
    s.create(
        &format!("/api/v1/tenants/{MASTER}/users"),
        &token,
        json!({ "email": "erin@example.com", "password": "erin-password" }),
    )
    .await;
    let attempt = |user: &'static str, pw: &'static str| {
        let s = &s;
        async move {
            s.form(
                "",
                &[
                    ("grant_type", "password"),
                    ("client_id", "admin-cli"),
                    ("username", user),
                    ("password", pw),
                ],
                None,
            )
            .await
        }
    };
    for _ in 0..3 {
        attempt("erin@example.com", "wrong-password").await;
    }
    // Locked: a wrong password answers exactly like an unknown account.
    let (_, locked_wrong) = attempt("erin@example.com", "wrong-password").await;
    let (_, unknown) = attempt("nobody@example.com", "wrong-password").await;
    assert_eq!(locked_wrong, unknown);
    // Only the right password learns about the lock.
    let (_, right) = attempt("erin@example.com", "erin-password").await;
    assert!(
        right["error_description"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{right}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    // After the lock ends, one mistake does not lock again.
    let (_, once) = attempt("erin@example.com", "wrong-password").await;
    assert_eq!(once["error"], "invalid_grant");
    s.password_token("", "admin-cli", "erin@example.com", "erin-password")
        .await;
}

#[tokio::test]
async fn nul_bytes_are_client_errors_on_every_backend() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let (st, body) = s
        .form(
            "",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "a\0b"),
                ("password", "x"),
            ],
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (st, body) = s
        .form(
            "",
            &[("grant_type", "client_credentials"), ("client_id", "a\0")],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    let (st, _) = s.form("/t/%00", &[("grant_type", "password")], None).await;
    assert!(st.is_client_error());
    let (st, _) = s
        .post(
            &format!("{base}/users"),
            &token,
            json!({ "email": "z@example.com", "attributes": { "k": "a\u{0}b" } }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = s
        .post(
            &format!("{base}/users"),
            &token,
            json!({ "email": "z@example.com", "first_name": "a\u{0}b" }),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = s.get(&format!("{base}/users?email=%00"), &token).await;
    assert!(
        st == StatusCode::OK || st == StatusCode::UNPROCESSABLE_ENTITY,
        "{st}"
    );
    let (st, _) = s
        .get(&format!("{base}/audit-logs?action=%00"), &token)
        .await;
    assert!(
        st == StatusCode::OK || st == StatusCode::UNPROCESSABLE_ENTITY,
        "{st}"
    );
}

#[tokio::test]
async fn audit_hashes_survive_json_number_normalisation() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let u = s.create(&format!("{base}/users"), &token, json!({ "email": "num@example.com", "attributes": { "big": 1e19, "neg0": -0.0, "frac": 1.234_567_890_123_456_7, "nested": { "b": 1, "a": [1.5, 2] } } })).await;
    s.put(
        &format!("{base}/users/{}", id(&u)),
        &token,
        json!({ "attributes": { "n": 12345678901234567890u64, "f": 0.1 } }),
    )
    .await;
    let (_, v) = s.get(&format!("{base}/audit-logs/verify"), &token).await;
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test]
async fn disabled_service_accounts_get_no_tokens() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let c = s.create(&format!("{base}/clients"), &token, json!({
        "client_id": "batch", "name": "Batch", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["x"]
    })).await;
    let secret = c["client_secret"].as_str().unwrap();
    let sa = c["service_account_user_id"].as_str().unwrap();
    let (st, _) = s
        .put(
            &format!("{base}/users/{sa}"),
            &token,
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = s
        .form(
            "",
            &[("grant_type", "client_credentials")],
            Some(("batch", secret)),
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
}
