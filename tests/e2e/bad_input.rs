//! Bad input: each answers a 4xx RFC 9457 problem document and changes
//! nothing (no audit record, objects unchanged).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, MASTER, Server};

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// Asserts an RFC 9457 problem document with `status`.
fn assert_problem(what: &str, status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{what}: {body}");
    assert_eq!(body["status"], json!(expected.as_u16()), "{what}: {body}");
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: {body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: {body}"
    );
}

/// Asserts a 422 naming `field` in `errors[]`.
fn assert_field_error(what: &str, status: StatusCode, body: &Value, field: &str) {
    assert_problem(what, status, body, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors[] in {body}"));
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == json!(field)
                && e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "{what}: no error for {field} in {body}"
    );
}

/// A fresh tenant; answers its id.
async fn tenant(s: &Server, token: &str, slug: &str) -> String {
    let t = s
        .create(
            "/api/v1/tenants",
            token,
            json!({ "name": format!("Tenant {slug}"), "slug": slug }),
        )
        .await;
    id(&t)
}

async fn get_ok(s: &Server, token: &str, path: &str) -> Value {
    let (status, v) = s.get(path, token).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
    v
}

/// Everything in a tenant, to compare before and after.
async fn state(s: &Server, token: &str, tid: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for kind in [
        "users",
        "roles",
        "permissions",
        "groups",
        "applications",
        "clients",
    ] {
        out.push(
            get_ok(
                s,
                token,
                &format!("/api/v1/tenants/{tid}/{kind}?per_page=200"),
            )
            .await,
        );
    }
    out.push(get_ok(s, token, &format!("/api/v1/tenants/{tid}")).await);
    out
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    let (s, token) = Server::with_admin().await;
    let tid = tenant(&s, &token, "acme").await;
    let users = format!("/api/v1/tenants/{tid}/users");
    let user = s
        .create(&users, &token, json!({ "email": "kept@acme.example" }))
        .await;
    let user_path = format!("{users}/{}", id(&user));
    let audit = s.audit_count(&tid, &token).await;
    let before = state(&s, &token, &tid).await;

    // Malformed JSON: 400.
    for body in ["{\"email\": ", "not json", "{\"email\": \"a@b.c\",}", ""] {
        let (status, v) = s
            .raw(Method::POST, &users, &token, "application/json", body)
            .await;
        assert_problem(
            &format!("malformed {body:?}"),
            status,
            &v,
            StatusCode::BAD_REQUEST,
        );
    }
    let (status, v) = s
        .raw(
            Method::PUT,
            &user_path,
            &token,
            "application/json",
            "{\"first_name\": }",
        )
        .await;
    assert_problem("malformed update", status, &v, StatusCode::BAD_REQUEST);

    // Wrong content type: 415.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let (status, v) = s
            .raw(
                Method::POST,
                &users,
                &token,
                ct,
                "{\"email\": \"ct@acme.example\"}",
            )
            .await;
        assert_problem(
            &format!("content type {ct}"),
            status,
            &v,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        );
    }
    let (status, v) = s
        .raw(
            Method::POST,
            &format!("/api/v1/tenants/{tid}/roles"),
            &token,
            "text/plain",
            "{\"name\": \"r\"}",
        )
        .await;
    assert_problem(
        "role content type",
        status,
        &v,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );

    // Unknown fields and wrong types: 422.
    for (path, body) in [
        (
            users.clone(),
            json!({ "email": "unknown@acme.example", "is_admin": true }),
        ),
        (users.clone(), json!({ "email": 42 })),
        (users.clone(), json!({ "password": "no-email-given" })),
        (
            user_path.clone(),
            json!({ "first_name": "X", "role": "admin" }),
        ),
        (
            format!("/api/v1/tenants/{tid}/roles"),
            json!({ "name": "r", "is_system": true }),
        ),
        (
            format!("/api/v1/tenants/{tid}/groups"),
            json!({ "name": "g", "members": [] }),
        ),
        (
            format!("/api/v1/tenants/{tid}/applications"),
            json!({ "name": "a", "owner": "me" }),
        ),
        (
            format!("/api/v1/tenants/{tid}/permissions"),
            json!({ "resource": "r", "action": "a", "extra": 1 }),
        ),
        (
            format!("/api/v1/tenants/{tid}/clients"),
            json!({ "name": "c", "client_type": "secretive" }),
        ),
        (
            "/api/v1/tenants".to_string(),
            json!({ "name": "Other", "slug": "other", "plan": "gold" }),
        ),
    ] {
        let method = if path == user_path {
            Method::PUT
        } else {
            Method::POST
        };
        let (status, v) = s
            .call(method, &path, Some(&token), Some(body.clone()))
            .await;
        assert_problem(
            &format!("{path} {body}"),
            status,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }

    assert_eq!(s.audit_count(&tid, &token).await, audit);
    assert_eq!(state(&s, &token, &tid).await, before);
}

#[tokio::test]
async fn invalid_fields_are_refused_with_field_errors() {
    let (s, token) = Server::with_admin().await;
    let tid = tenant(&s, &token, "acme").await;
    let base = format!("/api/v1/tenants/{tid}");
    let user = s
        .create(
            &format!("{base}/users"),
            &token,
            json!({ "email": "kept@acme.example", "password": "kept-password" }),
        )
        .await;
    let uid = id(&user);
    let role = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "editor" }),
        )
        .await;
    let group = s
        .create(
            &format!("{base}/groups"),
            &token,
            json!({ "name": "staff" }),
        )
        .await;
    let app = s
        .create(
            &format!("{base}/applications"),
            &token,
            json!({ "name": "portal" }),
        )
        .await;
    let audit = s.audit_count(&tid, &token).await;
    let master_audit = s.audit_count(MASTER, &token).await;
    let before = state(&s, &token, &tid).await;
    let long = "x".repeat(301);

    // Over-long names.
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            format!("{base}/roles"),
            json!({ "name": long }),
            "name",
        ),
        (
            Method::PUT,
            format!("{base}/roles/{}", id(&role)),
            json!({ "name": long }),
            "name",
        ),
        (
            Method::POST,
            format!("{base}/groups"),
            json!({ "name": long }),
            "name",
        ),
        (
            Method::PUT,
            format!("{base}/groups/{}", id(&group)),
            json!({ "name": long }),
            "name",
        ),
        (
            Method::POST,
            format!("{base}/applications"),
            json!({ "name": long }),
            "name",
        ),
        (
            Method::PUT,
            format!("{base}/applications/{}", id(&app)),
            json!({ "name": long }),
            "name",
        ),
        (
            Method::POST,
            format!("{base}/clients"),
            json!({ "name": long, "client_type": "confidential", "grant_types": ["client_credentials"] }),
            "name",
        ),
        (
            Method::POST,
            format!("{base}/users"),
            json!({ "email": "long@acme.example", "first_name": long }),
            "first_name",
        ),
        (
            Method::PUT,
            format!("{base}/users/{uid}"),
            json!({ "display_name": long }),
            "display_name",
        ),
        (
            Method::POST,
            "/api/v1/tenants".into(),
            json!({ "name": long, "slug": "long" }),
            "name",
        ),
        (
            Method::POST,
            format!("{base}/roles"),
            json!({ "name": "   " }),
            "name",
        ),
        // Invalid emails.
        (
            Method::POST,
            format!("{base}/users"),
            json!({ "email": "not-an-email" }),
            "email",
        ),
        (
            Method::POST,
            format!("{base}/users"),
            json!({ "email": "two@@acme.example" }),
            "email",
        ),
        (
            Method::POST,
            format!("{base}/users"),
            json!({ "email": "sp ace@acme.example" }),
            "email",
        ),
        (
            Method::POST,
            format!("{base}/users"),
            json!({ "email": "" }),
            "email",
        ),
        (
            Method::PUT,
            format!("{base}/users/{uid}"),
            json!({ "email": "broken@" }),
            "email",
        ),
        // Short (and over-long) passwords.
        (
            Method::POST,
            format!("{base}/users"),
            json!({ "email": "short@acme.example", "password": "short" }),
            "password",
        ),
        (
            Method::PUT,
            format!("{base}/users/{uid}/password"),
            json!({ "password": "1234567" }),
            "password",
        ),
        (
            Method::PUT,
            format!("{base}/users/{uid}/password"),
            json!({ "password": "p".repeat(257) }),
            "password",
        ),
        // Other field rules.
        (
            Method::POST,
            format!("{base}/permissions"),
            json!({ "resource": "bad resource", "action": "read" }),
            "resource",
        ),
        (
            Method::POST,
            "/api/v1/tenants".into(),
            json!({ "name": "Bad Slug", "slug": "Bad_Slug" }),
            "slug",
        ),
        (
            Method::POST,
            format!("{base}/clients"),
            json!({ "name": "c", "client_type": "public", "grant_types": ["client_credentials"] }),
            "grant_types",
        ),
    ];
    for (method, path, body, field) in cases {
        let what = format!(
            "{method} {path} {}",
            body.to_string().chars().take(80).collect::<String>()
        );
        let (status, v) = s.call(method, &path, Some(&token), Some(body)).await;
        assert_field_error(&what, status, &v, field);
    }

    // Invalid UUIDs: in the path 400, in the body 422.
    for path in [
        format!("{base}/users/not-a-uuid"),
        format!("{base}/roles/1234"),
        format!("{base}/groups/{uid}x"),
        "/api/v1/tenants/not-a-uuid/users".to_string(),
        "/api/v1/tenants/not-a-uuid".to_string(),
    ] {
        let (status, v) = s.get(&path, &token).await;
        assert_problem(&path, status, &v, StatusCode::BAD_REQUEST);
    }
    let (status, v) = s.delete(&format!("{base}/users/zzz"), &token).await;
    assert_problem("delete bad uuid", status, &v, StatusCode::BAD_REQUEST);
    for (path, body) in [
        (
            format!("{base}/users/{uid}/roles"),
            json!({ "role_id": "not-a-uuid" }),
        ),
        (
            format!("{base}/groups/{}/members", id(&group)),
            json!({ "user_id": "12345" }),
        ),
        (
            format!("{base}/groups"),
            json!({ "name": "child", "parent_id": "nope" }),
        ),
        (
            format!("{base}/roles"),
            json!({ "name": "r2", "application_id": 7 }),
        ),
    ] {
        let (status, v) = s.post(&path, &token, body.clone()).await;
        assert_problem(
            &format!("{path} {body}"),
            status,
            &v,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }

    // check-access with an invalid resource or action: 422; missing: 400.
    let check = format!("{base}/users/{uid}/check-access");
    let (status, v) = s
        .get(
            &format!("{check}?resource=bad%20resource&action=read"),
            &token,
        )
        .await;
    assert_field_error("check-access resource", status, &v, "resource");
    let (status, v) = s
        .get(
            &format!("{check}?resource=documents&action=re%2Fad"),
            &token,
        )
        .await;
    assert_field_error("check-access action", status, &v, "action");
    let (status, v) = s
        .get(&format!("{check}?resource=&action=read"), &token)
        .await;
    assert_field_error("check-access empty resource", status, &v, "resource");
    let (status, v) = s.get(&format!("{check}?resource=documents"), &token).await;
    assert_problem(
        "check-access without action",
        status,
        &v,
        StatusCode::BAD_REQUEST,
    );
    let (status, v) = s
        .get(&format!("{check}?resource=documents&action=read"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["allowed"], json!(false));

    // Page parameters out of range: 422; not a number: 400.
    for list in [
        "users",
        "roles",
        "permissions",
        "groups",
        "applications",
        "clients",
        "audit-logs",
    ] {
        for (q, field) in [
            ("per_page=0", "per_page"),
            ("per_page=1000", "per_page"),
            ("page=0", "page"),
            ("page=-1", "page"),
        ] {
            let path = format!("{base}/{list}?{q}");
            let (status, v) = s.get(&path, &token).await;
            assert_field_error(&path, status, &v, field);
        }
        for q in ["page=abc", "per_page=ten", "page=1.5"] {
            let path = format!("{base}/{list}?{q}");
            let (status, v) = s.get(&path, &token).await;
            assert_problem(&path, status, &v, StatusCode::BAD_REQUEST);
        }
    }
    let (status, v) = s.get("/api/v1/tenants?per_page=1000", &token).await;
    assert_field_error("tenants per_page", status, &v, "per_page");

    assert_eq!(s.audit_count(&tid, &token).await, audit);
    assert_eq!(s.audit_count(MASTER, &token).await, master_audit);
    assert_eq!(state(&s, &token, &tid).await, before);
    let (status, v) = s.get("/api/v1/tenants?per_page=200", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["total"], json!(2), "{v}");
    // The password did not change.
    s.password_token("/t/acme", "admin-cli", "kept@acme.example", "kept-password")
        .await;
}

#[tokio::test]
async fn duplicate_email_conflicts_case_insensitively_within_a_tenant() {
    let (s, token) = Server::with_admin().await;
    let a = tenant(&s, &token, "tenant-a").await;
    let b = tenant(&s, &token, "tenant-b").await;
    let users_a = format!("/api/v1/tenants/{a}/users");
    let first = s
        .create(
            &users_a,
            &token,
            json!({ "email": "a@x.com", "first_name": "First" }),
        )
        .await;
    let other = s
        .create(&users_a, &token, json!({ "email": "other@x.com" }))
        .await;
    let audit = s.audit_count(&a, &token).await;
    let before = state(&s, &token, &a).await;

    for email in ["a@x.com", "A@x.com", "A@X.COM", "  a@x.com  "] {
        let (status, v) = s
            .post(
                &users_a,
                &token,
                json!({ "email": email, "password": "dup-password" }),
            )
            .await;
        assert_problem(
            &format!("duplicate {email:?}"),
            status,
            &v,
            StatusCode::CONFLICT,
        );
    }
    // Renaming another user onto the taken address conflicts too.
    let (status, v) = s
        .put(
            &format!("{users_a}/{}", id(&other)),
            &token,
            json!({ "email": "A@x.com" }),
        )
        .await;
    assert_problem("rename onto taken email", status, &v, StatusCode::CONFLICT);
    // The master administrator's email is taken only in the master tenant.
    let (status, v) = s
        .post(
            &format!("/api/v1/tenants/{MASTER}/users"),
            &token,
            json!({ "email": ADMIN_EMAIL.to_uppercase() }),
        )
        .await;
    assert_problem("duplicate master admin", status, &v, StatusCode::CONFLICT);

    assert_eq!(s.audit_count(&a, &token).await, audit);
    assert_eq!(state(&s, &token, &a).await, before);
    let kept = get_ok(&s, &token, &format!("{users_a}/{}", id(&first))).await;
    assert_eq!(kept, first);

    // The same email in another tenant is a different user.
    let in_b = s
        .create(
            &format!("/api/v1/tenants/{b}/users"),
            &token,
            json!({ "email": "A@x.com" }),
        )
        .await;
    assert_eq!(in_b["tenant_id"], json!(b));
    assert_ne!(in_b["id"], first["id"]);
    s.create(
        &format!("/api/v1/tenants/{b}/users"),
        &token,
        json!({ "email": ADMIN_EMAIL }),
    )
    .await;
    // The duplicate within B is refused as well.
    let (status, v) = s
        .post(
            &format!("/api/v1/tenants/{b}/users"),
            &token,
            json!({ "email": "a@X.com" }),
        )
        .await;
    assert_problem("duplicate in b", status, &v, StatusCode::CONFLICT);
}

#[tokio::test]
async fn group_parent_cycles_are_refused() {
    let (s, token) = Server::with_admin().await;
    let tid = tenant(&s, &token, "acme").await;
    let groups = format!("/api/v1/tenants/{tid}/groups");
    let a = s.create(&groups, &token, json!({ "name": "A" })).await;
    let b = s
        .create(
            &groups,
            &token,
            json!({ "name": "B", "parent_id": a["id"] }),
        )
        .await;
    let c = s
        .create(
            &groups,
            &token,
            json!({ "name": "C", "parent_id": b["id"] }),
        )
        .await;
    let path = |g: &Value| format!("{groups}/{}", id(g));
    let audit = s.audit_count(&tid, &token).await;
    let before = state(&s, &token, &tid).await;

    // A -> B -> C, then A under C: a cycle.
    let (status, v) = s
        .put(&path(&a), &token, json!({ "parent_id": c["id"] }))
        .await;
    assert_problem("A under C", status, &v, StatusCode::CONFLICT);
    let (status, v) = s
        .put(&path(&a), &token, json!({ "parent_id": b["id"] }))
        .await;
    assert_problem("A under B", status, &v, StatusCode::CONFLICT);
    let (status, v) = s
        .put(
            &path(&b),
            &token,
            json!({ "parent_id": c["id"], "name": "renamed" }),
        )
        .await;
    assert_problem("B under C", status, &v, StatusCode::CONFLICT);
    // A group as its own parent: 422.
    for g in [&a, &b, &c] {
        let (status, v) = s
            .put(&path(g), &token, json!({ "parent_id": g["id"] }))
            .await;
        assert_field_error("self parent", status, &v, "parent_id");
    }

    assert_eq!(s.audit_count(&tid, &token).await, audit);
    assert_eq!(state(&s, &token, &tid).await, before);
    for (g, parent) in [
        (&a, Value::Null),
        (&b, a["id"].clone()),
        (&c, b["id"].clone()),
    ] {
        let now = get_ok(&s, &token, &path(g)).await;
        assert_eq!(&now, g);
        assert_eq!(now["parent_id"], parent);
    }
    for g in [&a, &b, &c] {
        let (status, v) = s.get(&format!("{}/history", path(g)), &token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v, json!([]), "history of a refused change");
    }
    // A legal move still works afterwards: C to the top.
    let (status, v) = s.put(&path(&c), &token, json!({ "parent_id": null })).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["parent_id"], Value::Null);
}

#[tokio::test]
async fn composite_role_cycles_are_refused() {
    let (s, token) = Server::with_admin().await;
    let tid = tenant(&s, &token, "acme").await;
    let roles = format!("/api/v1/tenants/{tid}/roles");
    let mut r = Vec::new();
    for name in ["R1", "R2", "R3"] {
        r.push(
            s.create(
                &roles,
                &token,
                json!({ "name": name, "is_composite": true }),
            )
            .await,
        );
    }
    let composites = |role: &Value| format!("{roles}/{}/composites", id(role));
    for (parent, child) in [(0, 1), (1, 2)] {
        let (status, v) = s
            .post(
                &composites(&r[parent]),
                &token,
                json!({ "role_id": r[child]["id"] }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    }
    let audit = s.audit_count(&tid, &token).await;
    let before = state(&s, &token, &tid).await;
    let mut contents = Vec::new();
    for role in &r {
        contents.push(get_ok(&s, &token, &composites(role)).await);
    }

    // R1 ⊃ R2 ⊃ R3; R3 ⊃ R1 or R2 ⊃ R1 would close a cycle.
    for (parent, child) in [(2, 0), (1, 0), (2, 1)] {
        let (status, v) = s
            .post(
                &composites(&r[parent]),
                &token,
                json!({ "role_id": r[child]["id"] }),
            )
            .await;
        assert_problem(
            &format!("R{} into R{}", child + 1, parent + 1),
            status,
            &v,
            StatusCode::CONFLICT,
        );
    }
    for role in &r {
        let (status, v) = s
            .post(&composites(role), &token, json!({ "role_id": role["id"] }))
            .await;
        assert_problem("self composite", status, &v, StatusCode::CONFLICT);
    }

    assert_eq!(s.audit_count(&tid, &token).await, audit);
    assert_eq!(state(&s, &token, &tid).await, before);
    for (role, was) in r.iter().zip(&contents) {
        assert_eq!(&get_ok(&s, &token, &composites(role)).await, was);
    }
    assert_eq!(contents[2], json!([]));
}

#[tokio::test]
async fn system_role_and_builtin_permissions_are_protected() {
    let (s, token) = Server::with_admin().await;
    let tid = tenant(&s, &token, "acme").await;
    let base = format!("/api/v1/tenants/{tid}");
    let roles = get_ok(&s, &token, &format!("{base}/roles?per_page=200")).await;
    let admin = roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()
        .clone();
    assert_eq!(admin["is_system"], json!(true));
    let admin_path = format!("{base}/roles/{}", id(&admin));
    let perms = get_ok(&s, &token, &format!("{base}/permissions?per_page=200")).await;
    let builtin: Vec<Value> = perms["data"].as_array().unwrap().clone();
    assert_eq!(builtin.len(), 20, "{perms}");
    let extra = s
        .create(
            &format!("{base}/permissions"),
            &token,
            json!({ "resource": "documents", "action": "read" }),
        )
        .await;
    let other = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "viewer" }),
        )
        .await;
    let admin_perms = get_ok(&s, &token, &format!("{admin_path}/permissions")).await;
    let audit = s.audit_count(&tid, &token).await;
    let before = state(&s, &token, &tid).await;

    for (method, path, body) in [
        (
            Method::PUT,
            admin_path.clone(),
            Some(json!({ "name": "superuser" })),
        ),
        (
            Method::PUT,
            admin_path.clone(),
            Some(json!({ "description": "changed" })),
        ),
        (
            Method::PUT,
            admin_path.clone(),
            Some(json!({ "is_composite": true })),
        ),
        (Method::DELETE, admin_path.clone(), None),
        (
            Method::POST,
            format!("{admin_path}/permissions"),
            Some(json!({ "permission_id": extra["id"] })),
        ),
        (
            Method::DELETE,
            format!("{admin_path}/permissions/{}", id(&builtin[0])),
            None,
        ),
        (
            Method::POST,
            format!("{admin_path}/composites"),
            Some(json!({ "role_id": other["id"] })),
        ),
        // The name stays reserved for the system role.
        (
            Method::POST,
            format!("{base}/roles"),
            Some(json!({ "name": "admin" })),
        ),
        (
            Method::PUT,
            format!("{base}/roles/{}", id(&other)),
            Some(json!({ "name": "admin" })),
        ),
    ] {
        let what = format!("{method} {path}");
        let (status, v) = s.call(method, &path, Some(&token), body).await;
        assert_problem(&what, status, &v, StatusCode::CONFLICT);
    }
    for p in &builtin {
        let path = format!("{base}/permissions/{}", id(p));
        let (status, v) = s.delete(&path, &token).await;
        assert_problem(
            &format!("delete {}:{}", p["resource"], p["action"]),
            status,
            &v,
            StatusCode::CONFLICT,
        );
    }
    // The master tenant's too.
    let master_roles = get_ok(
        &s,
        &token,
        &format!("/api/v1/tenants/{MASTER}/roles?per_page=200"),
    )
    .await;
    let master_admin = master_roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap();
    let (status, v) = s
        .delete(
            &format!("/api/v1/tenants/{MASTER}/roles/{}", id(master_admin)),
            &token,
        )
        .await;
    assert_problem("delete master admin role", status, &v, StatusCode::CONFLICT);

    assert_eq!(s.audit_count(&tid, &token).await, audit);
    assert_eq!(state(&s, &token, &tid).await, before);
    assert_eq!(get_ok(&s, &token, &admin_path).await, admin);
    assert_eq!(
        get_ok(&s, &token, &format!("{admin_path}/permissions")).await,
        admin_perms
    );
    // The master administrator still administers.
    let (status, _) = s.get("/api/v1/tenants", &token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn routing_setup_and_size_errors_are_problems() {
    let (s, token) = Server::with_admin().await;
    let tid = tenant(&s, &token, "acme").await;
    let audit = s.audit_count(&tid, &token).await;
    let master_audit = s.audit_count(MASTER, &token).await;
    let before = state(&s, &token, &tid).await;

    // Unknown routes: 404 problem, with or without a token.
    for path in [
        "/api/v1/nothing-here",
        "/api/v2/tenants",
        &format!("/api/v1/tenants/{tid}/widgets"),
        "/no/such/page",
    ] {
        let (status, v) = s.get(path, &token).await;
        assert_problem(path, status, &v, StatusCode::NOT_FOUND);
        let (status, v) = s.call(Method::GET, path, None, None).await;
        assert_problem(path, status, &v, StatusCode::NOT_FOUND);
    }

    // Wrong methods: 405 problem.
    for (method, path) in [
        (Method::DELETE, format!("/api/v1/tenants/{tid}/users")),
        (Method::PATCH, format!("/api/v1/tenants/{tid}")),
        (Method::PUT, "/api/v1/tenants".to_string()),
        (Method::GET, "/setup".to_string()),
        (Method::DELETE, "/setup".to_string()),
        (Method::PUT, "/health/ready".to_string()),
    ] {
        let what = format!("{method} {path}");
        let (status, v) = s.call(method, &path, Some(&token), None).await;
        assert_problem(&what, status, &v, StatusCode::METHOD_NOT_ALLOWED);
    }

    // Setup a second time: 409, even with other (valid) details.
    for (email, password) in [
        (ADMIN_EMAIL, ADMIN_PASSWORD),
        ("intruder@example.com", "intruder-password"),
    ] {
        let (status, v) = s
            .call(
                Method::POST,
                "/setup",
                None,
                Some(json!({ "admin_email": email, "admin_password": password, "organization_name": "Evil" })),
            )
            .await;
        assert_problem("second setup", status, &v, StatusCode::CONFLICT);
    }
    let (status, v) = s.call(Method::GET, "/setup/check", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["setup_required"], json!(false));
    let (status, v) = s.call(Method::GET, "/setup/status", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["organization_name"], json!("Acme"));
    let (status, v) = s
        .form(
            "",
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "intruder@example.com"),
                ("password", "intruder-password"),
            ],
            None,
        )
        .await;
    assert_ne!(status, StatusCode::OK, "{v}");
    // That failed login is audited; nothing else was.
    let master_audit = master_audit + 1;

    // A body over 1 MiB: 413.
    let big = format!(
        "{{\"email\": \"big@acme.example\", \"attributes\": {{\"blob\": \"{}\"}}}}",
        "x".repeat(1024 * 1024 + 16)
    );
    let (status, v) = s
        .raw(
            Method::POST,
            &format!("/api/v1/tenants/{tid}/users"),
            &token,
            "application/json",
            &big,
        )
        .await;
    assert_problem("oversized body", status, &v, StatusCode::PAYLOAD_TOO_LARGE);
    let big = format!("{{\"name\": \"{}\"}}", "r".repeat(2 * 1024 * 1024));
    let (status, v) = s
        .raw(
            Method::POST,
            &format!("/api/v1/tenants/{tid}/roles"),
            &token,
            "application/json",
            &big,
        )
        .await;
    assert_problem(
        "oversized role body",
        status,
        &v,
        StatusCode::PAYLOAD_TOO_LARGE,
    );

    assert_eq!(s.audit_count(&tid, &token).await, audit);
    assert_eq!(s.audit_count(MASTER, &token).await, master_audit);
    assert_eq!(state(&s, &token, &tid).await, before);
    // The server is still healthy.
    let (status, _) = s.call(Method::GET, "/health/ready", None, None).await;
    assert_eq!(status, StatusCode::OK);
}
