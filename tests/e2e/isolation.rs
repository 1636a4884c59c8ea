//! Tenant isolation: every tenant-scoped query is filtered by tenant, and
//! another tenant's objects (or the tenant itself) answer 404, never 403, so
//! ids cannot be probed. Failed cross-tenant attempts change nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{MASTER, Server};

/// One object of every kind in a tenant.
struct Tenant {
    id: String,
    slug: String,
    user: String,
    role: String,
    permission: String,
    group: String,
    application: String,
    /// Internal id of the confidential client.
    client: String,
    client_id: String,
    client_secret: String,
}

impl Tenant {
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/tenants/{}{rest}", self.id)
    }
    fn prefix(&self) -> String {
        format!("/t/{}", self.slug)
    }
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// Creates a tenant with one user, role, permission, group, application and
/// confidential client (`client_credentials`).
async fn populate(s: &Server, token: &str, slug: &str) -> Tenant {
    let t = s
        .create(
            "/api/v1/tenants",
            token,
            json!({ "name": format!("Tenant {slug}"), "slug": slug }),
        )
        .await;
    assert_eq!(t["issuer"], json!(format!("{}/t/{slug}", s.base)));
    let tid = id(&t);
    let base = format!("/api/v1/tenants/{tid}");
    let user = s
        .create(
            &format!("{base}/users"),
            token,
            json!({ "email": format!("member@{slug}.example"), "password": "member-password-1", "first_name": "Member" }),
        )
        .await;
    let role = s
        .create(
            &format!("{base}/roles"),
            token,
            json!({ "name": "editor", "description": "edits", "is_composite": true }),
        )
        .await;
    let permission = s
        .create(
            &format!("{base}/permissions"),
            token,
            json!({ "resource": "documents", "action": "read" }),
        )
        .await;
    let group = s
        .create(&format!("{base}/groups"), token, json!({ "name": "staff" }))
        .await;
    let application = s
        .create(
            &format!("{base}/applications"),
            token,
            json!({ "name": "portal" }),
        )
        .await;
    let client = s
        .create(
            &format!("{base}/clients"),
            token,
            json!({ "name": "backend", "client_type": "confidential", "grant_types": ["client_credentials"] }),
        )
        .await;
    assert!(client["service_account_user_id"].is_string(), "{client}");
    Tenant {
        id: tid,
        slug: slug.to_string(),
        user: id(&user),
        role: id(&role),
        permission: id(&permission),
        group: id(&group),
        application: id(&application),
        client: id(&client),
        client_id: client["client_id"].as_str().unwrap().to_string(),
        client_secret: client["client_secret"].as_str().unwrap().to_string(),
    }
}

/// Everything readable about a tenant's objects, to compare before and after.
async fn snapshot(s: &Server, token: &str, t: &Tenant) -> Vec<(String, Value)> {
    let paths = [
        String::new(),
        format!("/users/{}", t.user),
        format!("/users/{}/roles", t.user),
        format!("/users/{}/groups", t.user),
        format!("/users/{}/history", t.user),
        format!("/roles/{}", t.role),
        format!("/roles/{}/permissions", t.role),
        format!("/roles/{}/composites", t.role),
        format!("/permissions/{}", t.permission),
        format!("/groups/{}", t.group),
        format!("/groups/{}/members", t.group),
        format!("/groups/{}/roles", t.group),
        format!("/applications/{}", t.application),
        format!("/clients/{}", t.client),
        "/users?per_page=200".to_string(),
        "/roles?per_page=200".to_string(),
        "/permissions?per_page=200".to_string(),
        "/groups?per_page=200".to_string(),
        "/applications?per_page=200".to_string(),
        "/clients?per_page=200".to_string(),
        "/audit-logs?per_page=200".to_string(),
    ];
    let mut out = Vec::new();
    for p in paths {
        let path = t.path(&p);
        let (status, body) = s.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        out.push((path, body));
    }
    out
}

fn assert_not_found(method: &Method, path: &str, status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    assert_eq!(body["status"], json!(404), "{method} {path}: {body}");
    assert!(
        body["type"].is_string() && body["title"].is_string(),
        "{body}"
    );
}

async fn expect_404(s: &Server, token: &str, method: Method, path: &str, body: Option<Value>) {
    let (status, v) = s.call(method.clone(), path, Some(token), body).await;
    assert_not_found(&method, path, status, &v);
}

/// Creates a user with a password in `t` and gives it the tenant's built-in
/// `admin` role; answers its access token from the tenant's own issuer.
async fn tenant_admin(s: &Server, master: &str, t: &Tenant, email: &str) -> String {
    let password = "tenant-admin-password";
    let user = s
        .create(
            &t.path("/users"),
            master,
            json!({ "email": email, "password": password }),
        )
        .await;
    let (status, roles) = s.get(&t.path("/roles?per_page=200"), master).await;
    assert_eq!(status, StatusCode::OK, "{roles}");
    let admin = roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap_or_else(|| panic!("no admin role in {roles}"));
    assert_eq!(admin["is_system"], json!(true));
    let (status, v) = s
        .post(
            &t.path(&format!("/users/{}/roles", id(&user))),
            master,
            json!({ "role_id": admin["id"] }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    s.password_token(&t.prefix(), "admin-cli", email, password)
        .await
}

#[tokio::test]
async fn another_tenants_objects_answer_404_and_stay_unchanged() {
    let (s, token) = Server::with_admin().await;
    let a = populate(&s, &token, "tenant-a").await;
    let b = populate(&s, &token, "tenant-b").await;

    let (status, v) = s.get(&b.path("/audit-logs?per_page=1"), &token).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let b_audit = v["data"][0]["id"].as_str().unwrap().to_string();
    // B's objects are reachable under B's path.
    let (status, _) = s
        .get(&b.path(&format!("/audit-logs/{b_audit}")), &token)
        .await;
    assert_eq!(status, StatusCode::OK);

    let before_b = snapshot(&s, &token, &b).await;
    let before_a = snapshot(&s, &token, &a).await;
    let master_audit = s.audit_count(MASTER, &token).await;

    // Every kind of B object, addressed under A's path: GET, PUT, DELETE.
    let objects: [(&str, &str, Value); 6] = [
        ("users", &b.user, json!({ "first_name": "Hijacked" })),
        ("roles", &b.role, json!({ "name": "hijacked" })),
        (
            "permissions",
            &b.permission,
            json!({ "description": "hijacked" }),
        ),
        ("groups", &b.group, json!({ "name": "hijacked" })),
        (
            "applications",
            &b.application,
            json!({ "name": "hijacked" }),
        ),
        ("clients", &b.client, json!({ "name": "hijacked" })),
    ];
    for (kind, oid, update) in &objects {
        let path = a.path(&format!("/{kind}/{oid}"));
        expect_404(&s, &token, Method::GET, &path, None).await;
        expect_404(&s, &token, Method::PUT, &path, Some(update.clone())).await;
        expect_404(&s, &token, Method::DELETE, &path, None).await;
    }

    // Sub-resources of B objects under A's path.
    for p in [
        format!("/users/{}/roles", b.user),
        format!("/users/{}/groups", b.user),
        format!("/users/{}/history", b.user),
        format!(
            "/users/{}/check-access?resource=documents&action=read",
            b.user
        ),
        format!("/roles/{}/permissions", b.role),
        format!("/roles/{}/composites", b.role),
        format!("/roles/{}/history", b.role),
        format!("/groups/{}/members", b.group),
        format!("/groups/{}/roles", b.group),
        format!("/groups/{}/history", b.group),
        format!("/audit-logs/{b_audit}"),
    ] {
        expect_404(&s, &token, Method::GET, &a.path(&p), None).await;
    }
    expect_404(
        &s,
        &token,
        Method::PUT,
        &a.path(&format!("/users/{}/password", b.user)),
        Some(json!({ "password": "hijacked-password" })),
    )
    .await;
    expect_404(
        &s,
        &token,
        Method::POST,
        &a.path(&format!("/clients/{}/secret", b.client)),
        None,
    )
    .await;

    // Assignments mixing the tenants, in both directions.
    let mixes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            format!("/users/{}/roles", a.user),
            Some(json!({ "role_id": b.role })),
        ),
        (
            Method::POST,
            format!("/users/{}/roles", b.user),
            Some(json!({ "role_id": a.role })),
        ),
        (
            Method::POST,
            format!("/groups/{}/members", a.group),
            Some(json!({ "user_id": b.user })),
        ),
        (
            Method::POST,
            format!("/groups/{}/members", b.group),
            Some(json!({ "user_id": a.user })),
        ),
        (
            Method::POST,
            format!("/groups/{}/roles", a.group),
            Some(json!({ "role_id": b.role })),
        ),
        (
            Method::POST,
            format!("/roles/{}/permissions", a.role),
            Some(json!({ "permission_id": b.permission })),
        ),
        (
            Method::POST,
            format!("/roles/{}/permissions", b.role),
            Some(json!({ "permission_id": a.permission })),
        ),
        (
            Method::POST,
            format!("/roles/{}/composites", a.role),
            Some(json!({ "role_id": b.role })),
        ),
        (
            Method::POST,
            format!("/roles/{}/composites", b.role),
            Some(json!({ "role_id": a.role })),
        ),
        (
            Method::PUT,
            format!("/groups/{}", a.group),
            Some(json!({ "parent_id": b.group })),
        ),
        (
            Method::POST,
            "/groups".into(),
            Some(json!({ "name": "child", "parent_id": b.group })),
        ),
        (
            Method::POST,
            "/roles".into(),
            Some(json!({ "name": "app-role", "application_id": b.application })),
        ),
        (
            Method::POST,
            "/permissions".into(),
            Some(
                json!({ "resource": "reports", "action": "read", "application_id": b.application }),
            ),
        ),
        (
            Method::POST,
            "/clients".into(),
            Some(
                json!({ "name": "c", "client_type": "confidential", "grant_types": ["client_credentials"], "application_id": b.application }),
            ),
        ),
        (
            Method::DELETE,
            format!("/users/{}/roles/{}", b.user, b.role),
            None,
        ),
        (
            Method::DELETE,
            format!("/groups/{}/members/{}", b.group, b.user),
            None,
        ),
        (
            Method::DELETE,
            format!("/roles/{}/permissions/{}", b.role, b.permission),
            None,
        ),
    ];
    for (method, p, body) in mixes {
        expect_404(&s, &token, method, &a.path(&p), body).await;
    }

    // Nothing changed, in either tenant, and nothing was audited.
    assert_eq!(s.audit_count(MASTER, &token).await, master_audit);
    let after_b = snapshot(&s, &token, &b).await;
    let after_a = snapshot(&s, &token, &a).await;
    for (before, after) in [(before_b, after_b), (before_a, after_a)] {
        for ((path, x), (_, y)) in before.iter().zip(after.iter()) {
            assert_eq!(x, y, "GET {path} changed");
        }
    }
}

#[tokio::test]
async fn tenant_admin_is_confined_to_its_tenant() {
    let (s, master) = Server::with_admin().await;
    let a = populate(&s, &master, "tenant-a").await;
    let b = populate(&s, &master, "tenant-b").await;
    let admin_a = tenant_admin(&s, &master, &a, "admin@tenant-a.example").await;

    // Its own tenant: full administration.
    let (status, v) = s.get(&a.path("/users"), &admin_a).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["tenant_id"] == json!(a.id)),
        "{v}"
    );
    let created = s
        .create(
            &a.path("/users"),
            &admin_a,
            json!({ "email": "new@tenant-a.example", "password": "new-user-password" }),
        )
        .await;
    assert_eq!(created["tenant_id"], json!(a.id));
    let (status, v) = s.get(&a.path(""), &admin_a).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(a.id));

    let before_b = snapshot(&s, &master, &b).await;

    // Tenant B (and the master tenant) do not exist for it.
    for tenant in [b.id.as_str(), MASTER] {
        for p in [
            "",
            "/users",
            "/roles",
            "/groups",
            "/permissions",
            "/applications",
            "/clients",
            "/audit-logs",
            "/audit-logs/verify",
            "/history",
        ] {
            expect_404(
                &s,
                &admin_a,
                Method::GET,
                &format!("/api/v1/tenants/{tenant}{p}"),
                None,
            )
            .await;
        }
    }
    for (kind, oid) in [
        ("users", &b.user),
        ("roles", &b.role),
        ("permissions", &b.permission),
        ("groups", &b.group),
        ("applications", &b.application),
        ("clients", &b.client),
    ] {
        let path = b.path(&format!("/{kind}/{oid}"));
        expect_404(&s, &admin_a, Method::GET, &path, None).await;
        expect_404(&s, &admin_a, Method::DELETE, &path, None).await;
    }
    expect_404(
        &s,
        &admin_a,
        Method::PUT,
        &b.path(""),
        Some(json!({ "name": "Hijacked" })),
    )
    .await;
    expect_404(
        &s,
        &admin_a,
        Method::PUT,
        &b.path(&format!("/users/{}", b.user)),
        Some(json!({ "first_name": "Hijacked" })),
    )
    .await;
    expect_404(
        &s,
        &admin_a,
        Method::POST,
        &b.path("/users"),
        Some(json!({ "email": "intruder@tenant-b.example" })),
    )
    .await;
    expect_404(
        &s,
        &admin_a,
        Method::POST,
        &b.path("/roles"),
        Some(json!({ "name": "intruder" })),
    )
    .await;
    expect_404(
        &s,
        &admin_a,
        Method::POST,
        &b.path(&format!("/users/{}/roles", b.user)),
        Some(json!({ "role_id": b.role })),
    )
    .await;

    // Instance-level operations are for master administrators only.
    let (status, v) = s.get("/api/v1/tenants", &admin_a).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["status"], json!(403));
    let (status, v) = s
        .post(
            "/api/v1/tenants",
            &admin_a,
            json!({ "name": "Rogue", "slug": "rogue" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = s.delete(&b.path(""), &admin_a).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");

    let after_b = snapshot(&s, &master, &b).await;
    for ((path, x), (_, y)) in before_b.iter().zip(after_b.iter()) {
        assert_eq!(x, y, "GET {path} changed");
    }
    let (status, v) = s.get("/api/v1/tenants?per_page=200", &master).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["total"], json!(3), "{v}");

    // A user of A without roles may authenticate but not administer.
    s.create(
        &a.path("/users"),
        &master,
        json!({ "email": "plain@tenant-a.example", "password": "plain-user-password" }),
    )
    .await;
    let plain = s
        .password_token(
            &a.prefix(),
            "admin-cli",
            "plain@tenant-a.example",
            "plain-user-password",
        )
        .await;
    let (status, v) = s.get(&a.path("/users"), &plain).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["status"], json!(403));
    let (status, v) = s
        .post(
            &a.path("/users"),
            &plain,
            json!({ "email": "x@tenant-a.example" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    // Still 404, not 403, for another tenant.
    expect_404(&s, &plain, Method::GET, &b.path("/users"), None).await;
}

fn flip_signature(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    // A middle character: every bit of it is significant.
    let i = sig.len() / 2;
    sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", sig.into_iter().collect::<String>())
}

#[tokio::test]
async fn foreign_and_tampered_tokens_are_refused() {
    let (s, master) = Server::with_admin().await;
    let a = populate(&s, &master, "tenant-a").await;
    let b = populate(&s, &master, "tenant-b").await;
    let admin_a = tenant_admin(&s, &master, &a, "admin@tenant-a.example").await;
    let admin_b = tenant_admin(&s, &master, &b, "admin@tenant-b.example").await;

    // A token from B's issuer works for B...
    let (status, v) = s.get(&b.path("/users"), &admin_b).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // ...and not for A, whatever the route.
    for p in [
        "",
        "/users",
        "/roles",
        "/groups",
        "/permissions",
        "/applications",
        "/clients",
        "/audit-logs",
    ] {
        expect_404(&s, &admin_b, Method::GET, &a.path(p), None).await;
    }
    expect_404(
        &s,
        &admin_b,
        Method::GET,
        &a.path(&format!("/users/{}", a.user)),
        None,
    )
    .await;
    expect_404(
        &s,
        &admin_b,
        Method::POST,
        &a.path("/users"),
        Some(json!({ "email": "intruder@tenant-a.example" })),
    )
    .await;

    // B's service account (client_credentials at B's issuer) neither.
    let (status, v) = s
        .form(
            &b.prefix(),
            &[("grant_type", "client_credentials")],
            Some((&b.client_id, &b.client_secret)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let service = v["access_token"].as_str().unwrap().to_string();
    expect_404(&s, &service, Method::GET, &a.path("/users"), None).await;

    // A tampered signature is 401, on its own tenant's routes too.
    for (token, path) in [
        (&admin_a, a.path("/users")),
        (&master, a.path("/users")),
        (&master, "/api/v1/tenants".to_string()),
    ] {
        let (status, v) = s.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let forged = flip_signature(token);
        assert_ne!(&forged, token);
        let (status, v) = s.get(&path, &forged).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {v}");
        assert_eq!(v["status"], json!(401));
    }

    // B's signature over claims rewritten to name A's issuer and tenant: 401.
    let parts: Vec<&str> = admin_b.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["iss"] = json!(format!("{}/t/{}", s.base, a.slug));
    claims["tenant"] = json!(a.id);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let (status, v) = s.get(&a.path("/users"), &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");

    // Garbage and missing tokens.
    let (status, _) = s.get(&a.path("/users"), "not-a-jwt").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.call(Method::GET, &a.path("/users"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
