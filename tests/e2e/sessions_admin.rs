//! The sessions admin API: listing live browser sessions (per tenant and
//! per user), ending one (its tokens stop being active, its browser must
//! sign in again) and ending all of a user's (every grant of the user is
//! revoked). Real sessions come from the hosted login page (`rp.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::rp::{
    self, AuthRequest, Browser, PASSWORD, REDIRECT, active, audit_total, backchannel, client,
    login_for_code, sso_code, tenant, tokens,
};
use crate::support::Server;

/// A browser that announces itself as `agent`.
fn browser(agent: &str) -> Browser {
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .user_agent(agent)
            .build()
            .unwrap(),
    }
}

/// Signs `email` in through the login page of `b` and redeems the code:
/// answers the request (for later SSO) and the token response.
async fn sign_in(
    b: &Browser,
    http: &reqwest::Client,
    t: &rp::Tenant,
    c: &rp::Client,
    email: &str,
) -> (AuthRequest, Value) {
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid offline_access");
    let code = login_for_code(b, &req, email, PASSWORD).await;
    let body = tokens(&req.redeem(http, &code, &c.auth(), None).await, email);
    (req, body)
}

fn tok<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

/// The `sid` of an ID token.
fn sid(body: &Value) -> String {
    rp::decode(tok(body, "id_token")).1["sid"]
        .as_str()
        .expect("sid claim")
        .to_string()
}

async fn list(s: &Server, token: &str, path: &str) -> Value {
    let (st, v) = s.get(path, token).await;
    assert_eq!(st, StatusCode::OK, "GET {path}: {v}");
    v
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {page}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

async fn refresh(http: &reqwest::Client, issuer: &str, c: &rp::Client, rt: &str) -> rp::Reply {
    rp::token(
        http,
        issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        &c.auth(),
        None,
    )
    .await
}

/// Both tokens of a token response are (in)active.
async fn assert_tokens(
    http: &reqwest::Client,
    t: &rp::Tenant,
    c: &rp::Client,
    body: &Value,
    live: bool,
    what: &str,
) {
    for field in ["access_token", "refresh_token"] {
        assert_eq!(
            active(http, &t.issuer, &c.auth(), tok(body, field)).await,
            live,
            "{what}: {field}"
        );
    }
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one_and_per_user() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "sessadm").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let base = format!("/api/v1/tenants/{}", t.tid);
    let bob = s
        .create(
            &format!("{base}/users"),
            &admin,
            json!({"email": "bob@sessadm.example", "password": PASSWORD}),
        )
        .await;
    let bob_id = bob["id"].as_str().unwrap().to_string();

    // Alice signs in from two browsers, then Bob from a third.
    let b1 = browser("agent-one/1.0");
    let b2 = browser("agent-two/2.0");
    let b3 = browser("agent-bob/3.0");
    let (req1, t1) = sign_in(&b1, &http, &t, &c, &t.email).await;
    let (req2, t2) = sign_in(&b2, &http, &t, &c, &t.email).await;
    let (_, t3) = sign_in(&b3, &http, &t, &c, "bob@sessadm.example").await;
    let (sid1, sid2, sid3) = (sid(&t1), sid(&t2), sid(&t3));

    // The tenant's sessions, newest first, with what the admin needs and
    // nothing else (no cookie hash).
    let all = list(&s, &admin, &format!("{base}/sessions")).await;
    assert_eq!(all["total"], json!(3), "{all}");
    assert_eq!(ids(&all), vec![sid3.clone(), sid2.clone(), sid1.clone()]);
    let expected_keys: BTreeSet<&str> = [
        "id",
        "user_id",
        "auth_time",
        "amr",
        "ip",
        "user_agent",
        "created_at",
        "expires_at",
    ]
    .into();
    for (item, (user, agent)) in all["data"].as_array().unwrap().iter().zip([
        (bob_id.as_str(), "agent-bob/3.0"),
        (t.user_id.as_str(), "agent-two/2.0"),
        (t.user_id.as_str(), "agent-one/1.0"),
    ]) {
        let keys: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, expected_keys, "{item}");
        assert_eq!(item["user_id"], json!(user), "{item}");
        assert_eq!(item["user_agent"], json!(agent), "{item}");
        assert_eq!(item["ip"], json!("127.0.0.1"), "{item}");
        assert_eq!(item["amr"], json!(["pwd"]), "{item}");
        for f in ["auth_time", "created_at", "expires_at"] {
            let when = item[f].as_str().unwrap_or_else(|| panic!("{f}: {item}"));
            chrono::DateTime::parse_from_rfc3339(when).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        assert!(
            item["expires_at"].as_str() > item["created_at"].as_str(),
            "{item}"
        );
    }
    assert!(!all.to_string().contains("token_hash"));

    // Filtered by user, and the user's own listing; paged.
    let alice_path = format!("{base}/users/{}/sessions", t.user_id);
    let filtered = list(
        &s,
        &admin,
        &format!("{base}/sessions?user_id={}", t.user_id),
    )
    .await;
    assert_eq!(filtered["total"], json!(2), "{filtered}");
    assert_eq!(ids(&filtered), vec![sid2.clone(), sid1.clone()]);
    let alice = list(&s, &admin, &alice_path).await;
    assert_eq!(alice["data"], filtered["data"]);
    assert_eq!(alice["total"], json!(2));
    let bobs = list(&s, &admin, &format!("{base}/users/{bob_id}/sessions")).await;
    assert_eq!(ids(&bobs), vec![sid3.clone()]);
    let p1 = list(&s, &admin, &format!("{alice_path}?per_page=1")).await;
    let p2 = list(&s, &admin, &format!("{alice_path}?per_page=1&page=2")).await;
    let p3 = list(&s, &admin, &format!("{base}/sessions?per_page=1&page=4")).await;
    assert_eq!(
        (p1["total"].clone(), p1["per_page"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(ids(&p1), vec![sid2.clone()]);
    assert_eq!(ids(&p2), vec![sid1.clone()]);
    assert_eq!(p2["page"], json!(2));
    assert!(ids(&p3).is_empty(), "{p3}");
    let stranger = uuid::Uuid::new_v4();
    let none = list(&s, &admin, &format!("{base}/sessions?user_id={stranger}")).await;
    assert_eq!(none["total"], json!(0), "{none}");

    // Ending browser 1's session: its tokens die, it must sign in again;
    // browser 2 keeps SSO and its tokens.
    let audit_before = s.audit_count(&t.tid, &admin).await;
    let (st, v) = s.delete(&format!("{base}/sessions/{sid1}"), &admin).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    assert_tokens(&http, &t, &c, &t1, false, "revoked session").await;
    refresh(&http, &t.issuer, &c, tok(&t1, "refresh_token"))
        .await
        .assert_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh after revocation",
        );
    let ui = rp::userinfo(
        &http,
        &t.issuer,
        Some(&format!("Bearer {}", tok(&t1, "access_token"))),
        None,
    )
    .await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    let page = b1.get(&req1.fresh().url()).await;
    assert!(
        page.is_login_page(),
        "SSO after revocation: {}",
        page.describe()
    );
    sso_code(&b2, &req2.fresh()).await;
    assert_tokens(&http, &t, &c, &t2, true, "other session").await;
    assert_tokens(&http, &t, &c, &t3, true, "other user").await;
    let alice = list(&s, &admin, &alice_path).await;
    assert_eq!(ids(&alice), vec![sid2.clone()]);
    assert_eq!(s.audit_count(&t.tid, &admin).await, audit_before + 1);
    let rec = list(
        &s,
        &admin,
        &format!("{base}/audit-logs?action=session.revoked"),
    )
    .await;
    assert_eq!(rec["total"], json!(1), "{rec}");
    assert_eq!(rec["data"][0]["target_type"], json!("session"), "{rec}");
    assert_eq!(rec["data"][0]["target_id"], json!(sid1), "{rec}");
    assert_eq!(
        rec["data"][0]["changes"]["user_id"],
        json!(t.user_id),
        "{rec}"
    );

    // Already ended, unknown: 404, nothing audited.
    for id in [sid1.clone(), stranger.to_string()] {
        let (st, v) = s.delete(&format!("{base}/sessions/{id}"), &admin).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    }
    assert_eq!(audit_total(&s, &admin, &t.tid, "session.revoked").await, 1);

    // Browser 2 signs in again (prompt=login): the replaced session ends,
    // but its grant lives on, out of reach of the per-session endpoint.
    let r4 = req2.fresh().with("prompt", "login");
    let code4 = login_for_code(&b2, &r4, &t.email, PASSWORD).await;
    let t4 = tokens(
        &r4.redeem(&http, &code4, &c.auth(), None).await,
        "new sign-in",
    );
    assert_ne!(sid(&t4), sid2);
    assert_tokens(&http, &t, &c, &t2, true, "grant of a replaced session").await;
    let (st, _) = s.delete(&format!("{base}/sessions/{sid2}"), &admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Ending all of Alice's sessions revokes every grant of hers; Bob's stay.
    let (st, v) = s.delete(&alice_path, &admin).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    assert_tokens(&http, &t, &c, &t2, false, "replaced session, all revoked").await;
    assert_tokens(&http, &t, &c, &t4, false, "live session, all revoked").await;
    let page = b2.get(&r4.fresh().url()).await;
    assert!(
        page.is_login_page(),
        "SSO after revoking all: {}",
        page.describe()
    );
    let alice = list(&s, &admin, &alice_path).await;
    assert_eq!(alice["total"], json!(0), "{alice}");
    let all = list(&s, &admin, &format!("{base}/sessions")).await;
    assert_eq!(ids(&all), vec![sid3.clone()]);
    assert_tokens(&http, &t, &c, &t3, true, "other user after revoking all").await;
    let rec = list(
        &s,
        &admin,
        &format!("{base}/audit-logs?action=user.sessions_revoked"),
    )
    .await;
    assert_eq!(rec["total"], json!(1), "{rec}");
    assert_eq!(rec["data"][0]["target_type"], json!("user"), "{rec}");
    assert_eq!(rec["data"][0]["target_id"], json!(t.user_id), "{rec}");

    // Nothing left to end is still a success for a live user; an unknown
    // user is 404 (and nothing is audited for it).
    let (st, _) = s.delete(&alice_path, &admin).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let before = s.audit_count(&t.tid, &admin).await;
    let unknown = format!("{base}/users/{stranger}/sessions");
    let (st, v) = s.delete(&unknown, &admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = s.get(&unknown, &admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(s.audit_count(&t.tid, &admin).await, before);

    // A fresh sign-in works as before, and the chain still verifies.
    sign_in(&b1, &http, &t, &c, &t.email).await;
    let alice = list(&s, &admin, &alice_path).await;
    assert_eq!(alice["total"], json!(1), "{alice}");
    let chain = list(&s, &admin, &format!("{base}/audit-logs/verify")).await;
    assert_eq!(chain["valid"], json!(true), "{chain}");
}

/// A user of `t` with a new role holding exactly `perms`; answers the user
/// id and a token.
async fn user_with(
    s: &Server,
    admin: &str,
    t: &rp::Tenant,
    email: &str,
    perms: &[(&str, &str)],
) -> (String, String) {
    let base = format!("/api/v1/tenants/{}", t.tid);
    let user = s
        .create(
            &format!("{base}/users"),
            admin,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    let uid = user["id"].as_str().unwrap().to_string();
    if !perms.is_empty() {
        let role = s
            .create(
                &format!("{base}/roles"),
                admin,
                json!({"name": format!("role-{}", rp::random(4))}),
            )
            .await;
        let rid = role["id"].as_str().unwrap();
        let all = list(s, admin, &format!("{base}/permissions?per_page=200")).await;
        for (r, a) in perms {
            let pid = all["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["resource"] == *r && p["action"] == *a)
                .unwrap_or_else(|| panic!("no {r}:{a} in {all}"))["id"]
                .clone();
            s.link(
                &format!("{base}/roles/{rid}/permissions"),
                admin,
                json!({"permission_id": pid}),
            )
            .await;
        }
        s.link(
            &format!("{base}/users/{uid}/roles"),
            admin,
            json!({"role_id": rid}),
        )
        .await;
    }
    let token = s
        .password_token(&format!("/t/{}", t.slug), "admin-cli", email, PASSWORD)
        .await;
    (uid, token)
}

#[tokio::test]
async fn session_admin_is_tenant_scoped_and_needs_permissions() {
    let (s, master) = Server::with_admin().await;
    let a = tenant(&s, &master, "sess-a").await;
    let b = tenant(&s, &master, "sess-b").await;
    let ca = client(&s, &master, &a, json!({})).await;
    let cb = client(&s, &master, &b, json!({})).await;
    let http = backchannel();
    let (_, tb) = sign_in(&Browser::new(), &http, &b, &cb, &b.email).await;
    let sid_b = sid(&tb);
    let (_, ta) = sign_in(&Browser::new(), &http, &a, &ca, &a.email).await;
    let sid_a = sid(&ta);
    let pa = format!("/api/v1/tenants/{}", a.tid);
    let pb = format!("/api/v1/tenants/{}", b.tid);
    let b_audit = s.audit_count(&b.tid, &master).await;

    // An administrator of A (users:read and users:write) ...
    let (_, admin_a) = user_with(
        &s,
        &master,
        &a,
        "admin@sess-a.example",
        &[("users", "read"), ("users", "write")],
    )
    .await;
    let page = list(&s, &admin_a, &format!("{pa}/sessions")).await;
    assert_eq!(ids(&page), vec![sid_a.clone()]);
    // ... sees nothing of B: B's routes, and B's objects under A's routes.
    for (method, path) in [
        ("GET", format!("{pb}/sessions")),
        ("GET", format!("{pb}/users/{}/sessions", b.user_id)),
        ("DELETE", format!("{pb}/sessions/{sid_b}")),
        ("DELETE", format!("{pb}/users/{}/sessions", b.user_id)),
        ("GET", format!("{pa}/users/{}/sessions", b.user_id)),
        ("DELETE", format!("{pa}/sessions/{sid_b}")),
        ("DELETE", format!("{pa}/users/{}/sessions", b.user_id)),
    ] {
        let (st, v) = match method {
            "GET" => s.get(&path, &admin_a).await,
            _ => s.delete(&path, &admin_a).await,
        };
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_eq!(v["status"], json!(404), "{v}");
    }
    let filtered = list(
        &s,
        &admin_a,
        &format!("{pa}/sessions?user_id={}", b.user_id),
    )
    .await;
    assert_eq!(filtered["total"], json!(0), "{filtered}");
    assert_tokens(&http, &b, &cb, &tb, true, "B after A's attempts").await;
    let page = list(&s, &master, &format!("{pb}/sessions")).await;
    assert_eq!(ids(&page), vec![sid_b.clone()]);
    assert_eq!(s.audit_count(&b.tid, &master).await, b_audit);

    // A user without roles: 403 on its tenant, 404 on another.
    let (_, plain) = user_with(&s, &master, &a, "plain@sess-a.example", &[]).await;
    // A reader: may list, may not end.
    let (_, reader) = user_with(
        &s,
        &master,
        &a,
        "reader@sess-a.example",
        &[("users", "read")],
    )
    .await;
    for token in [&plain, &reader] {
        for path in [
            format!("{pa}/sessions/{sid_a}"),
            format!("{pa}/users/{}/sessions", a.user_id),
        ] {
            let (st, v) = s.delete(&path, token).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "DELETE {path}: {v}");
            assert_eq!(v["status"], json!(403), "{v}");
        }
    }
    for path in [
        format!("{pa}/sessions"),
        format!("{pa}/users/{}/sessions", a.user_id),
    ] {
        let (st, v) = s.get(&path, &plain).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "GET {path}: {v}");
        list(&s, &reader, &path).await;
    }
    let (st, _) = s.get(&format!("{pb}/sessions"), &plain).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Without a token: 401.
    let (st, _) = s
        .call(reqwest::Method::GET, &format!("{pa}/sessions"), None, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // users:write does not reach a user who holds more than the caller:
    // the tenant's full administrator keeps their session.
    let (boss_id, _) = user_with(
        &s,
        &master,
        &a,
        "boss@sess-a.example",
        &[("users", "read"), ("users", "write"), ("roles", "write")],
    )
    .await;
    let boss = rp::Tenant {
        email: "boss@sess-a.example".into(),
        user_id: boss_id.clone(),
        ..a.clone()
    };
    let (_, tboss) = sign_in(&Browser::new(), &http, &boss, &ca, &boss.email).await;
    for path in [
        format!("{pa}/sessions/{}", sid(&tboss)),
        format!("{pa}/users/{boss_id}/sessions"),
    ] {
        let (st, v) = s.delete(&path, &admin_a).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "DELETE {path}: {v}");
    }
    assert_tokens(&http, &a, &ca, &tboss, true, "a stronger user's session").await;
    assert_tokens(&http, &a, &ca, &ta, true, "after refused attempts").await;

    // A master administrator may act on any tenant.
    let (st, v) = s.delete(&format!("{pb}/sessions/{sid_b}"), &master).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    assert_tokens(
        &http,
        &b,
        &cb,
        &tb,
        false,
        "B after the master's revocation",
    )
    .await;
    // And A's administrator may end A's plain user's sessions.
    let (st, v) = s.delete(&format!("{pa}/sessions/{sid_a}"), &admin_a).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    assert_tokens(&http, &a, &ca, &ta, false, "A after its admin's revocation").await;
}

#[tokio::test]
async fn session_listing_parameters_are_validated() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "sessbad").await;
    let base = format!("/api/v1/tenants/{}", t.tid);
    let audit = s.audit_count(&t.tid, &admin).await;
    for list_path in [
        format!("{base}/sessions"),
        format!("{base}/users/{}/sessions", t.user_id),
    ] {
        for (q, field) in [
            ("per_page=0", "per_page"),
            ("per_page=1000", "per_page"),
            ("page=0", "page"),
            ("page=-1", "page"),
        ] {
            let path = format!("{list_path}?{q}");
            let (st, v) = s.get(&path, &admin).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
            assert!(
                v["errors"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["field"] == json!(field))),
                "{path}: {v}"
            );
        }
        for q in ["page=abc", "per_page=ten", "page=1.5"] {
            let path = format!("{list_path}?{q}");
            let (st, v) = s.get(&path, &admin).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        }
        let ok = list(&s, &admin, &format!("{list_path}?per_page=200&page=1")).await;
        assert_eq!(ok["total"], json!(0), "{ok}");
    }
    let (st, v) = s
        .get(&format!("{base}/sessions?user_id=not-a-uuid"), &admin)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    for path in [
        format!("{base}/sessions/not-a-uuid"),
        format!("{base}/users/not-a-uuid/sessions"),
    ] {
        let (st, v) = s.delete(&path, &admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "DELETE {path}: {v}");
        let (st, v) = s.get(&path, &admin).await;
        assert!(
            st == StatusCode::BAD_REQUEST || st == StatusCode::METHOD_NOT_ALLOWED,
            "GET {path}: {st} {v}"
        );
    }
    assert_eq!(s.audit_count(&t.tid, &admin).await, audit);
    // The endpoints are in the OpenAPI document.
    let (_, doc) = s
        .call(
            reqwest::Method::GET,
            "/api/v1/docs/openapi.json",
            None,
            None,
        )
        .await;
    let paths = doc["paths"].as_object().unwrap();
    for (p, methods) in [
        ("/api/v1/tenants/{tenant_id}/sessions", &["get"][..]),
        ("/api/v1/tenants/{tenant_id}/sessions/{id}", &["delete"][..]),
        (
            "/api/v1/tenants/{tenant_id}/users/{id}/sessions",
            &["get", "delete"][..],
        ),
    ] {
        for m in methods {
            assert!(paths[p].get(*m).is_some(), "{m} {p} not documented");
        }
    }
}
