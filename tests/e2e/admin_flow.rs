//! The main administration journey: setup → admin token → tenant →
//! users/roles/groups → check-access → audit → history.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{MASTER, Server};

#[tokio::test]
async fn setup_runs_once_and_reports_status() {
    let s = Server::start().await;
    let (_, check) = s.call(Method::GET, "/setup/check", None, None).await;
    assert_eq!(check, json!({ "setup_required": true }));
    let token = s.setup().await;
    let (_, check) = s.call(Method::GET, "/setup/check", None, None).await;
    assert_eq!(check, json!({ "setup_required": false }));
    let (status, body) = s
        .call(Method::POST, "/setup", None, Some(json!({
            "admin_email": "other@example.com", "admin_password": "another-password", "organization_name": "Evil"
        })))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, st) = s.call(Method::GET, "/setup/status", None, None).await;
    assert_eq!(st["setup_required"], false);
    assert_eq!(st["organization_name"], "Acme");
    // The master tenant is visible with its issuer, and a second setup changed nothing.
    let (status, t) = s.get(&format!("/api/v1/tenants/{MASTER}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["name"], "Acme");
    assert_eq!(t["issuer"], s.base);
    let (_, users) = s
        .get(&format!("/api/v1/tenants/{MASTER}/users"), &token)
        .await;
    assert_eq!(users["total"], 1);
    // Admin API without a token answers 401 problem+json.
    let (status, _) = s.call(Method::GET, "/api/v1/tenants", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn tenant_users_roles_groups_and_check_access() {
    let (s, token) = Server::with_admin().await;
    let tenant = s
        .create("/api/v1/tenants", &token, json!({ "name": "Globex Corp" }))
        .await;
    assert_eq!(tenant["slug"], "globex-corp");
    assert_eq!(tenant["issuer"], format!("{}/t/globex-corp", s.base));
    let t = id(&tenant);
    let base = format!("/api/v1/tenants/{t}");

    // The new tenant issues its own keys.
    let (status, jwks) = s
        .call(
            Method::GET,
            "/t/globex-corp/.well-known/jwks.json",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");

    let alice = s.create(&format!("{base}/users"), &token, json!({
        "email": "Alice@Globex.example", "password": "alice-password", "first_name": "Alice", "locale": "en-GB"
    })).await;
    assert!(alice.get("password_hash").is_none() && alice.get("password").is_none());
    let bob = s
        .create(
            &format!("{base}/users"),
            &token,
            json!({ "email": "bob@globex.example" }),
        )
        .await;

    // Listing, pagination and email filter (case-insensitive).
    let (_, page) = s
        .get(&format!("{base}/users?email=ALICE&per_page=10"), &token)
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["data"][0]["email"], "Alice@Globex.example");
    let (_, page) = s
        .get(&format!("{base}/users?per_page=1&page=2"), &token)
        .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    // Permissions and roles: reader (simple), editor (simple), power (composite of editor).
    let docs_read = s
        .create(
            &format!("{base}/permissions"),
            &token,
            json!({ "resource": "documents", "action": "read" }),
        )
        .await;
    let docs_write = s
        .create(
            &format!("{base}/permissions"),
            &token,
            json!({ "resource": "documents", "action": "write" }),
        )
        .await;
    let reader = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "reader" }),
        )
        .await;
    let editor = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "editor" }),
        )
        .await;
    let power = s
        .create(
            &format!("{base}/roles"),
            &token,
            json!({ "name": "power", "is_composite": true }),
        )
        .await;
    for (role, perm) in [(&reader, &docs_read), (&editor, &docs_write)] {
        s.link(
            &format!("{base}/roles/{}/permissions", id(role)),
            &token,
            json!({ "permission_id": id(perm) }),
        )
        .await;
    }
    s.link(
        &format!("{base}/roles/{}/composites", id(&power)),
        &token,
        json!({ "role_id": id(&editor) }),
    )
    .await;
    // A composite role with children cannot silently become simple.
    let (st, _) = s
        .put(
            &format!("{base}/roles/{}", id(&power)),
            &token,
            json!({ "is_composite": false }),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    let check = |user: String, res: &'static str, act: &'static str| {
        let s = &s;
        let token = token.clone();
        let base = base.clone();
        async move {
            let (st, d) = s
                .get(
                    &format!("{base}/users/{user}/check-access?resource={res}&action={act}"),
                    &token,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{d}");
            d
        }
    };
    let d = check(id(&alice), "documents", "read").await;
    assert_eq!(d["allowed"], false, "{d}");

    // Group hierarchy: root → mid → leaf; reader on root, power on mid; alice in leaf.
    let root = s
        .create(&format!("{base}/groups"), &token, json!({ "name": "root" }))
        .await;
    let mid = s
        .create(
            &format!("{base}/groups"),
            &token,
            json!({ "name": "mid", "parent_id": id(&root) }),
        )
        .await;
    let leaf = s
        .create(
            &format!("{base}/groups"),
            &token,
            json!({ "name": "leaf", "parent_id": id(&mid) }),
        )
        .await;
    for (g, r) in [(&root, &reader), (&mid, &power)] {
        s.link(
            &format!("{base}/groups/{}/roles", id(g)),
            &token,
            json!({ "role_id": id(r) }),
        )
        .await;
    }
    s.link(
        &format!("{base}/groups/{}/members", id(&leaf)),
        &token,
        json!({ "user_id": id(&alice) }),
    )
    .await;
    let d = check(id(&alice), "documents", "read").await;
    assert_eq!(d["allowed"], true, "inherited from the root group: {d}");
    assert_eq!(d["granted_by"], json!(["reader"]));
    let d = check(id(&alice), "documents", "write").await;
    assert_eq!(
        d["allowed"], true,
        "composite power → editor via mid group: {d}"
    );
    assert_eq!(d["granted_by"], json!(["editor"]));
    let d = check(id(&bob), "documents", "read").await;
    assert_eq!(d["allowed"], false);

    // Direct role for bob; then revoke it.
    s.link(
        &format!("{base}/users/{}/roles", id(&bob)),
        &token,
        json!({ "role_id": id(&reader) }),
    )
    .await;
    assert_eq!(check(id(&bob), "documents", "read").await["allowed"], true);
    let (_, roles) = s
        .get(&format!("{base}/users/{}/roles", id(&bob)), &token)
        .await;
    assert_eq!(roles[0]["name"], "reader");
    let (st, _) = s
        .delete(
            &format!("{base}/users/{}/roles/{}", id(&bob), id(&reader)),
            &token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(check(id(&bob), "documents", "read").await["allowed"], false);

    // Moving leaf to the top level drops the inherited grants.
    let (st, _) = s
        .put(
            &format!("{base}/groups/{}", id(&leaf)),
            &token,
            json!({ "parent_id": null }),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        check(id(&alice), "documents", "read").await["allowed"],
        false
    );
    assert_eq!(
        check(id(&alice), "documents", "write").await["allowed"],
        false
    );
    // Back under mid, then deleting mid (and its subtree) drops them too.
    let (st, _) = s
        .put(
            &format!("{base}/groups/{}", id(&leaf)),
            &token,
            json!({ "parent_id": id(&mid) }),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        check(id(&alice), "documents", "write").await["allowed"],
        true
    );
    let (st, _) = s
        .delete(&format!("{base}/groups/{}", id(&mid)), &token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&format!("{base}/groups/{}", id(&leaf)), &token).await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "subgroups are deleted with their parent"
    );
    assert_eq!(
        check(id(&alice), "documents", "write").await["allowed"],
        false
    );

    // A disabled user is denied whatever their roles.
    s.link(
        &format!("{base}/users/{}/roles", id(&bob)),
        &token,
        json!({ "role_id": id(&reader) }),
    )
    .await;
    let (st, _) = s
        .put(
            &format!("{base}/users/{}", id(&bob)),
            &token,
            json!({ "enabled": false }),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let d = check(id(&bob), "documents", "read").await;
    assert_eq!(d["allowed"], false);
    assert!(d["reason"].as_str().unwrap().contains("disabled"));

    // Updates keep history; null clears a field; absent fields stay.
    let (st, updated) = s
        .put(
            &format!("{base}/users/{}", id(&alice)),
            &token,
            json!({ "first_name": null, "last_name": "Smith" }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{updated}");
    assert_eq!(updated["first_name"], Value::Null);
    assert_eq!(updated["last_name"], "Smith");
    assert_eq!(updated["locale"], "en-GB");
    assert_eq!(updated["version"], 2);
    let (_, hist) = s
        .get(&format!("{base}/users/{}/history", id(&alice)), &token)
        .await;
    assert_eq!(hist[0]["version"], 1);
    assert_eq!(hist[0]["data"]["first_name"], "Alice");

    // Soft delete: gone from the API, history kept, email free again.
    let (st, _) = s
        .delete(&format!("{base}/users/{}", id(&alice)), &token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&format!("{base}/users/{}", id(&alice)), &token).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, hist) = s
        .get(&format!("{base}/users/{}/history", id(&alice)), &token)
        .await;
    assert_eq!(
        hist.as_array().unwrap().last().unwrap()["operation"],
        "delete"
    );
    s.create(
        &format!("{base}/users"),
        &token,
        json!({ "email": "alice@globex.example" }),
    )
    .await;

    // Applications own roles and clients; an owning application cannot be deleted.
    let app = s
        .create(
            &format!("{base}/applications"),
            &token,
            json!({ "name": "billing" }),
        )
        .await;
    s.create(
        &format!("{base}/roles"),
        &token,
        json!({ "name": "billing-admin", "application_id": id(&app) }),
    )
    .await;
    let (st, _) = s
        .delete(&format!("{base}/applications/{}", id(&app)), &token)
        .await;
    assert_eq!(st, StatusCode::CONFLICT);

    // The audit log recorded every write, filterable, and the chain verifies.
    let (_, logs) = s
        .get(&format!("{base}/audit-logs?action=user.create"), &token)
        .await;
    assert_eq!(logs["total"], 3);
    let (_, logs) = s
        .get(&format!("{base}/audit-logs?per_page=200"), &token)
        .await;
    let first = &logs["data"][0];
    assert!(first["hash"].as_str().unwrap().len() == 64);
    let (st, one) = s
        .get(
            &format!("{base}/audit-logs/{}", first["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(&one, first);
    let (_, v) = s.get(&format!("{base}/audit-logs/verify"), &token).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["records_checked"], logs["total"]);
    let (_, master_logs) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/audit-logs?action=tenant.create"),
            &token,
        )
        .await;
    assert_eq!(master_logs["data"][0]["target_id"], t);
}

#[tokio::test]
async fn clients_secrets_are_shown_once_and_rotate() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let c = s
        .create(
            &format!("{base}/clients"),
            &token,
            json!({
                "client_id": "reporting", "name": "Reporting", "client_type": "confidential",
                "grant_types": ["client_credentials"], "scopes": ["reports"]
            }),
        )
        .await;
    let secret = c["client_secret"].as_str().unwrap().to_string();
    assert!(c["service_account_user_id"].is_string());
    let (_, got) = s.get(&format!("{base}/clients/{}", id(&c)), &token).await;
    assert!(got.get("client_secret").is_none() && got.get("secret_hash").is_none());
    let (st, _) = s
        .form(
            "",
            &[("grant_type", "client_credentials")],
            Some(("reporting", &secret)),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, rotated) = s
        .post(
            &format!("{base}/clients/{}/secret", id(&c)),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let (st, e) = s
        .form(
            "",
            &[("grant_type", "client_credentials")],
            Some(("reporting", &secret)),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"], "invalid_client");
    let (st, _) = s
        .form(
            "",
            &[("grant_type", "client_credentials")],
            Some(("reporting", new_secret)),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // admin-cli is first-party and stays.
    let (_, list) = s.get(&format!("{base}/clients"), &token).await;
    let cli = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "admin-cli")
        .unwrap()
        .clone();
    let (st, _) = s
        .delete(&format!("{base}/clients/{}", id(&cli)), &token)
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    // Deleting the client disables its grant.
    let (st, _) = s
        .delete(&format!("{base}/clients/{}", id(&c)), &token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s
        .form(
            "",
            &[("grant_type", "client_credentials")],
            Some(("reporting", new_secret)),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn openapi_document_and_ui_are_served() {
    let s = Server::start().await;
    let (st, doc) = s
        .call(Method::GET, "/api/v1/docs/openapi.json", None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/setup",
        "/oauth/token",
        "/api/v1/tenants",
        "/api/v1/tenants/{tenant_id}/users/{id}/check-access",
        "/api/v1/tenants/{tenant_id}/audit-logs/verify",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    let html = s
        .http
        .get(format!("{}/api/v1/docs", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    assert!(html.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn every_resource_keeps_its_previous_versions() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let app = s
        .create(
            &format!("{base}/applications"),
            &token,
            json!({ "name": "crm", "description": "v1" }),
        )
        .await;
    let perm = s
        .create(
            &format!("{base}/permissions"),
            &token,
            json!({ "resource": "leads", "action": "read", "description": "v1" }),
        )
        .await;
    let client = s.create(&format!("{base}/clients"), &token, json!({
        "client_id": "crm-web", "name": "CRM v1", "client_type": "public", "redirect_uris": ["https://crm.example/cb"]
    })).await;
    for (path, body) in [
        (
            format!("{base}/applications/{}", id(&app)),
            json!({ "description": "v2" }),
        ),
        (
            format!("{base}/permissions/{}", id(&perm)),
            json!({ "description": "v2" }),
        ),
        (
            format!("{base}/clients/{}", id(&client)),
            json!({ "name": "CRM v2" }),
        ),
    ] {
        let (st, v) = s.put(&path, &token, body).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["version"], 2);
        let (st, hist) = s.get(&format!("{path}/history"), &token).await;
        assert_eq!(st, StatusCode::OK, "{hist}");
        assert_eq!(hist.as_array().unwrap().len(), 1);
        assert_eq!(hist[0]["version"], 1);
        assert_eq!(hist[0]["operation"], "update");
    }
    let (_, hist) = s
        .get(&format!("{base}/clients/{}/history", id(&client)), &token)
        .await;
    assert_eq!(hist[0]["data"]["name"], "CRM v1");
    // Deleted objects keep their history; unknown ids are 404.
    let (st, _) = s
        .delete(&format!("{base}/applications/{}", id(&app)), &token)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, hist) = s
        .get(&format!("{base}/applications/{}/history", id(&app)), &token)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        hist.as_array().unwrap().last().unwrap()["operation"],
        "delete"
    );
    let (st, _) = s
        .get(
            &format!("{base}/clients/{}/history", uuid::Uuid::new_v4()),
            &token,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
