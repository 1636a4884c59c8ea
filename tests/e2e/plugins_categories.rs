//! The reference plugins of the other categories, end to end: each is
//! installed through the admin API, activated for one tenant, and shown to
//! act there (and only there), with refused requests changing nothing:
//!
//! - `password-policy` (input-validator) against a local stand-in for the
//!   Have I Been Pwned range API;
//! - `disposable-email-veto` (lifecycle-hook);
//! - `abac-policy` (policy-engine) in check-access and the admin API;
//! - `fixed-window-limiter` (rate-limiter) on the token and login scopes;
//! - `jsonl-audit-sink` (audit-sink) writing into its private directory;
//!
//! and the activation API's details: schemas of active plugins, secret
//! configuration, validation errors, limits, and tenant isolation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugin_support::{Artifact, Build, activate, install, rust_plugin};
use crate::rp::{PASSWORD, Tenant, tenant};
use crate::support::Server;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// One request the range API stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    prefix: String,
    padding: Option<String>,
    api_key: Option<String>,
}

#[derive(Default)]
struct RangeState {
    /// (prefix, suffix, count) of the breached passwords.
    breached: Vec<(String, String, u64)>,
    seen: Mutex<Vec<Seen>>,
    down: AtomicBool,
}

/// A local stand-in for the HIBP k-anonymity range API:
/// `GET /range/{prefix}` answers `SUFFIX:COUNT` lines (plus a padding line
/// of count 0), or 503 while "down".
struct RangeApi {
    base: String,
    state: Arc<RangeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RangeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Upper-case hex SHA-1.
fn sha1_hex(text: &str) -> String {
    hex::encode_upper(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        text.as_bytes(),
    ))
}

async fn range(
    axum::extract::State(api): axum::extract::State<Arc<RangeState>>,
    axum::extract::Path(prefix): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> (axum::http::StatusCode, String) {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    api.seen.lock().unwrap().push(Seen {
        prefix: prefix.clone(),
        padding: header("add-padding"),
        api_key: header("hibp-api-key"),
    });
    if api.down.load(Ordering::SeqCst) {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy".to_string(),
        );
    }
    let mut body = String::new();
    for (p, suffix, count) in &api.breached {
        if p.eq_ignore_ascii_case(&prefix) {
            body.push_str(&format!("{suffix}:{count}\r\n"));
        }
    }
    body.push_str("0018A45C4D1DEF81644B54AB7F969B88D65:0\r\n");
    (axum::http::StatusCode::OK, body)
}

impl RangeApi {
    async fn start(breached: &[&str]) -> RangeApi {
        let state = Arc::new(RangeState {
            breached: breached
                .iter()
                .map(|p| {
                    let h = sha1_hex(p);
                    (h[..5].to_string(), h[5..].to_string(), 42)
                })
                .collect(),
            ..Default::default()
        });
        let app = axum::Router::new()
            .route("/range/{prefix}", axum::routing::get(range))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        RangeApi { base, state, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

/// `password-policy` with its manifest asking for the local range API
/// (the sha256 covers the component only, so the manifest may change).
fn password_policy_for_localhost(build: Build) -> Artifact {
    let mut plugin = build.plugin("password-policy");
    plugin.manifest["capabilities"]["outbound_http"] = json!(["127.0.0.1"]);
    plugin
}

/// A server whose operator lets plugins reach 127.0.0.1, with a master
/// admin token.
async fn server_allowing_localhost(build: Build) -> (Server, String) {
    let s = build
        .server(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "127.0.0.1")])
        .await;
    let admin = s.setup().await;
    (s, admin)
}

/// PUT of an activation with a full body; asserts 200.
async fn put_activation(s: &Server, token: &str, t: &Tenant, plugin: &str, body: Value) -> Value {
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/{plugin}", t.tid),
            token,
            body,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

/// The `total` of a paged listing.
async fn total(s: &Server, token: &str, path: &str) -> i64 {
    let (st, v) = s.get(path, token).await;
    assert_eq!(st, StatusCode::OK, "{path}: {v}");
    v["total"].as_i64().unwrap()
}

async fn user_count(s: &Server, token: &str, t: &Tenant) -> i64 {
    total(
        s,
        token,
        &format!("/api/v1/tenants/{}/users?per_page=1", t.tid),
    )
    .await
}

async fn audit_actions(s: &Server, token: &str, t: &Tenant, action: &str) -> i64 {
    total(
        s,
        token,
        &format!(
            "/api/v1/tenants/{}/audit-logs?action={action}&per_page=1",
            t.tid
        ),
    )
    .await
}

/// Gives the tenant's test user the built-in `admin` role and `attributes`;
/// answers a token of theirs.
async fn tenant_admin(s: &Server, admin: &str, t: &Tenant, attributes: Value) -> String {
    let (_, roles) = s
        .get(
            &format!("/api/v1/tenants/{}/roles?per_page=100", t.tid),
            admin,
        )
        .await;
    let admin_role = roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()["id"]
        .clone();
    s.link(
        &format!("/api/v1/tenants/{}/users/{}/roles", t.tid, t.user_id),
        admin,
        json!({"role_id": admin_role}),
    )
    .await;
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/users/{}", t.tid, t.user_id),
            admin,
            json!({"attributes": attributes}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.password_token(&format!("/t/{}", t.slug), "admin-cli", &t.email, PASSWORD)
        .await
}

/// The field errors of a 422 problem as (field, message).
fn field_errors(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no field errors: {problem}"))
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// input-validator: password-policy
// ---------------------------------------------------------------------------

const BREACHED: &str = "letmein-forever-2024";
const SHORT: &str = "sh0rt-pw";
const GOOD: &str = "quiet-lantern-orbit-77";
const GOOD_2: &str = "amber-cactus-drift-58";
const GOOD_3: &str = "violet-harbour-spin-31";

both_builds!(password_policy_refuses_breached_and_weak_passwords_in_one_tenant_only => password_policy_refuses_breached_and_weak_passwords_in_one_tenant_only_wasm, password_policy_refuses_breached_and_weak_passwords_in_one_tenant_only_native);

pub(crate) async fn password_policy_refuses_breached_and_weak_passwords_in_one_tenant_only(
    build: Build,
) {
    let hibp = RangeApi::start(&[BREACHED]).await;
    let (s, admin) = server_allowing_localhost(build).await;
    install(&s, &admin, &password_policy_for_localhost(build)).await;
    let a = tenant(&s, &admin, "pwpol-a").await;
    let b = tenant(&s, &admin, "pwpol-b").await;
    let config = json!({"min_length": 12, "breach_base_url": hibp.base});
    let act = activate(&s, &admin, &a.tid, "password-policy", config.clone()).await;
    assert_eq!(act["status"]["loaded"], true, "{act}");

    let users_a = format!("/api/v1/tenants/{}/users", a.tid);
    let create = |email: &str, password: &str| json!({"email": email, "password": password});

    // A breached password: 422 with a field-level violation naming the
    // code; only the 5-digit SHA-1 prefix left the server; nothing written.
    let before_users = user_count(&s, &admin, &a).await;
    let before_creates = audit_actions(&s, &admin, &a, "user.create").await;
    let (st, p) = s
        .post(&users_a, &admin, create("carol@pwpol-a.example", BREACHED))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let errors = field_errors(&p);
    assert_eq!(errors.len(), 1, "{p}");
    assert_eq!(errors[0].0, "password");
    assert!(errors[0].1.ends_with("(breached)"), "{p}");
    assert!(errors[0].1.contains("data breach"), "{p}");
    let seen = hibp.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].prefix, sha1_hex(BREACHED)[..5]);
    assert_eq!(seen[0].padding.as_deref(), Some("true"));
    assert_eq!(seen[0].api_key, None);

    // Too short by the tenant's policy (the built-in minimum is 8): refused
    // before any lookup.
    let (st, p) = s
        .post(&users_a, &admin, create("carol@pwpol-a.example", SHORT))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let errors = field_errors(&p);
    assert_eq!(errors[0].0, "password");
    assert!(errors[0].1.ends_with("(too_short)"), "{p}");
    assert!(errors[0].1.contains("12"), "{p}");
    assert_eq!(
        hibp.seen().len(),
        1,
        "no lookup for a locally refused password"
    );
    // Containing the email's local part.
    let (st, p) = s
        .post(
            &users_a,
            &admin,
            create("carol@pwpol-a.example", "carol-is-the-best-1"),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(field_errors(&p)[0].1.ends_with("(contains_email)"), "{p}");
    assert_eq!(user_count(&s, &admin, &a).await, before_users);
    assert_eq!(
        audit_actions(&s, &admin, &a, "user.create").await,
        before_creates
    );

    // A good one is accepted (after a lookup of its prefix).
    let carol = s
        .create(&users_a, &admin, create("carol@pwpol-a.example", GOOD))
        .await;
    let carol_id = carol["id"].as_str().unwrap().to_string();
    assert_eq!(hibp.seen().last().unwrap().prefix, sha1_hex(GOOD)[..5]);
    assert_eq!(user_count(&s, &admin, &a).await, before_users + 1);

    // Tenant B has no policy: the breached password is accepted, unasked.
    let lookups = hibp.seen().len();
    s.create(
        &format!("/api/v1/tenants/{}/users", b.tid),
        &admin,
        create("carol@pwpol-b.example", BREACHED),
    )
    .await;
    assert_eq!(hibp.seen().len(), lookups);

    // The password set endpoint is checked too; a refusal keeps the old one.
    let pw_path = format!("{users_a}/{carol_id}/password");
    let sets = audit_actions(&s, &admin, &a, "user.password_set").await;
    for (bad, code) in [(BREACHED, "breached"), (SHORT, "too_short")] {
        let (st, p) = s.put(&pw_path, &admin, json!({"password": bad})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        let errors = field_errors(&p);
        assert_eq!(errors[0].0, "password");
        assert!(errors[0].1.ends_with(&format!("({code})")), "{p}");
    }
    assert_eq!(
        audit_actions(&s, &admin, &a, "user.password_set").await,
        sets
    );
    let issuer_a = format!("/t/{}", a.slug);
    s.password_token(&issuer_a, "admin-cli", "carol@pwpol-a.example", GOOD)
        .await;
    let (st, p) = s.put(&pw_path, &admin, json!({"password": GOOD_2})).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{p}");
    s.password_token(&issuer_a, "admin-cli", "carol@pwpol-a.example", GOOD_2)
        .await;
    // Tenant B's user may be given a breached password.
    let (st, p) = s
        .put(
            &format!("/api/v1/tenants/{}/users/{}/password", b.tid, b.user_id),
            &admin,
            json!({"password": BREACHED}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{p}");

    // The range API is down and the policy fails closed (the default):
    // 503, nothing written.
    hibp.set_down(true);
    let (st, p) = s.put(&pw_path, &admin, json!({"password": GOOD_3})).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{p}");
    let (st, p) = s
        .post(&users_a, &admin, create("dave@pwpol-a.example", GOOD))
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{p}");
    assert_eq!(user_count(&s, &admin, &a).await, before_users + 1);
    assert_eq!(
        audit_actions(&s, &admin, &a, "user.password_set").await,
        sets + 1
    );
    s.password_token(&issuer_a, "admin-cli", "carol@pwpol-a.example", GOOD_2)
        .await;
    // Still down, but the tenant chose to fail open: accepted unchecked.
    let mut open = config.clone();
    open["breach_failure"] = "open".into();
    put_activation(&s, &admin, &a, "password-policy", json!({"config": open})).await;
    let (st, p) = s.put(&pw_path, &admin, json!({"password": GOOD_3})).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{p}");
    s.password_token(&issuer_a, "admin-cli", "carol@pwpol-a.example", GOOD_3)
        .await;
    // Failing open skips only the breach check, never the local rules.
    let (st, p) = s.put(&pw_path, &admin, json!({"password": SHORT})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    hibp.set_down(false);
}

// ---------------------------------------------------------------------------
// lifecycle-hook: disposable-email-veto
// ---------------------------------------------------------------------------

both_builds!(disposable_email_veto_refuses_registrations_in_one_tenant_only => disposable_email_veto_refuses_registrations_in_one_tenant_only_wasm, disposable_email_veto_refuses_registrations_in_one_tenant_only_native);

async fn disposable_email_veto_refuses_registrations_in_one_tenant_only(build: Build) {
    let (s, admin) = build.server_with_admin(&[]).await;
    install(&s, &admin, &build.plugin("disposable-email-veto")).await;
    let a = tenant(&s, &admin, "veto-a").await;
    let b = tenant(&s, &admin, "veto-b").await;
    activate(
        &s,
        &admin,
        &a.tid,
        "disposable-email-veto",
        json!({"extra_domains": ["burner.example"], "check_user_update": true}),
    )
    .await;
    let users_a = format!("/api/v1/tenants/{}/users", a.tid);
    let before_users = user_count(&s, &admin, &a).await;
    let before_audit = audit_actions(&s, &admin, &a, "user.create").await;

    // Built-in list, and a subdomain of a tenant-added domain: 403 naming
    // the plugin and its code; nothing created.
    for email in ["x@mailinator.com", "y@mx.burner.example"] {
        let (st, p) = s
            .post(
                &users_a,
                &admin,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{email}: {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("refused by plugin disposable-email-veto"),
            "{p}"
        );
        assert!(detail.ends_with("(disposable_email)"), "{p}");
        let (_, found) = s.get(&format!("{users_a}?email={email}"), &admin).await;
        assert_eq!(found["total"], 0, "{found}");
    }
    assert_eq!(user_count(&s, &admin, &a).await, before_users);
    assert_eq!(
        audit_actions(&s, &admin, &a, "user.create").await,
        before_audit
    );

    // A permanent address is accepted.
    let zoe = s
        .create(
            &users_a,
            &admin,
            json!({"email": "zoe@permanent.example", "password": PASSWORD}),
        )
        .await;
    assert_eq!(user_count(&s, &admin, &a).await, before_users + 1);

    // With check_user_update, changing the email to a disposable one is
    // vetoed too, and the user keeps the old address; other changes pass.
    let zoe_path = format!("{users_a}/{}", zoe["id"].as_str().unwrap());
    let (st, p) = s
        .put(&zoe_path, &admin, json!({"email": "zoe@yopmail.com"}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    let (_, now) = s.get(&zoe_path, &admin).await;
    assert_eq!(now["email"], "zoe@permanent.example");
    let (st, p) = s.put(&zoe_path, &admin, json!({"first_name": "Zoe"})).await;
    assert_eq!(st, StatusCode::OK, "{p}");

    // Tenant B has no hook: the same addresses are fine.
    for email in ["x@mailinator.com", "y@mx.burner.example"] {
        s.create(
            &format!("/api/v1/tenants/{}/users", b.tid),
            &admin,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    }

    // Disabled, tenant A accepts them again at once.
    put_activation(
        &s,
        &admin,
        &a,
        "disposable-email-veto",
        json!({"enabled": false, "config": {}}),
    )
    .await;
    s.create(
        &users_a,
        &admin,
        json!({"email": "x@mailinator.com", "password": PASSWORD}),
    )
    .await;
}

// ---------------------------------------------------------------------------
// policy-engine: abac-policy
// ---------------------------------------------------------------------------

/// Users of the ABAC test, as (dana, erin, finn) ids: dana and erin are
/// editors (documents:delete), dana a contractor; finn has no role but is
/// in the audit department.
async fn abac_people(s: &Server, admin: &str, t: &Tenant) -> (String, String, String) {
    let base = format!("/api/v1/tenants/{}", t.tid);
    let perm = s
        .create(
            &format!("{base}/permissions"),
            admin,
            json!({"resource": "documents", "action": "delete"}),
        )
        .await;
    let editor = s
        .create(&format!("{base}/roles"), admin, json!({"name": "editor"}))
        .await;
    s.link(
        &format!(
            "{base}/roles/{}/permissions",
            editor["id"].as_str().unwrap()
        ),
        admin,
        json!({"permission_id": perm["id"]}),
    )
    .await;
    let mut ids = Vec::new();
    for (name, editor_role, attributes) in [
        ("dana", true, json!({"employment": "contractor"})),
        ("erin", true, json!({"employment": "staff"})),
        ("finn", false, json!({"department": "audit"})),
    ] {
        let u = s
            .create(
                &format!("{base}/users"),
                admin,
                json!({
                    "email": format!("{name}@{}.example", t.slug),
                    "password": PASSWORD,
                    "attributes": attributes,
                }),
            )
            .await;
        let id = u["id"].as_str().unwrap().to_string();
        if editor_role {
            s.link(
                &format!("{base}/users/{id}/roles"),
                admin,
                json!({"role_id": editor["id"]}),
            )
            .await;
        }
        ids.push(id);
    }
    (ids[0].clone(), ids[1].clone(), ids[2].clone())
}

async fn check(
    s: &Server,
    token: &str,
    t: &Tenant,
    user: &str,
    resource: &str,
    action: &str,
) -> Value {
    let (st, d) = s
        .get(
            &format!(
                "/api/v1/tenants/{}/users/{user}/check-access?resource={resource}&action={action}",
                t.tid
            ),
            token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    d
}

both_builds!(abac_policy_decides_check_access_and_restricts_the_admin_api_of_one_tenant => abac_policy_decides_check_access_and_restricts_the_admin_api_of_one_tenant_wasm, abac_policy_decides_check_access_and_restricts_the_admin_api_of_one_tenant_native);

async fn abac_policy_decides_check_access_and_restricts_the_admin_api_of_one_tenant(build: Build) {
    let (s, admin) = build.server_with_admin(&[]).await;
    install(&s, &admin, &build.plugin("abac-policy")).await;
    let a = tenant(&s, &admin, "abac-a").await;
    let b = tenant(&s, &admin, "abac-b").await;
    let (dana_a, erin_a, finn_a) = abac_people(&s, &admin, &a).await;
    let (dana_b, _, finn_b) = abac_people(&s, &admin, &b).await;
    // Both tenants' test users are administrators in read-only mode; only
    // tenant A's policy gives that attribute a meaning.
    let alice_a = tenant_admin(&s, &admin, &a, json!({"admin_mode": "read-only"})).await;
    let alice_b = tenant_admin(&s, &admin, &b, json!({"admin_mode": "read-only"})).await;
    let finn_token = s
        .password_token(
            &format!("/t/{}", a.slug),
            "admin-cli",
            "finn@abac-a.example",
            PASSWORD,
        )
        .await;

    let rules = json!({"rules": [
        {"id": "contractors-never-delete", "effect": "deny", "actions": ["delete"],
         "resource_kinds": ["documents"],
         "conditions": [{"attribute": "subject.employment", "op": "equals", "value": "contractor"}]},
        {"id": "auditors-read-reports", "effect": "allow", "actions": ["read"],
         "resource_kinds": ["reports"],
         "conditions": [{"attribute": "subject.department", "op": "equals", "value": "audit"}]},
        {"id": "read-only-admins", "effect": "deny", "actions": ["users:write", "roles:write"],
         "resource_kinds": ["admin-api"],
         "conditions": [{"attribute": "subject.admin_mode", "op": "equals", "value": "read-only"}]},
        {"id": "auditors-everything", "effect": "allow", "actions": ["*"],
         "resource_kinds": ["admin-api"],
         "conditions": [{"attribute": "subject.department", "op": "equals", "value": "audit"}]}
    ]});
    // A generous deadline: the point here is the decisions, not timing on a
    // loaded machine (policy-engine failures deny).
    put_activation(
        &s,
        &admin,
        &a,
        "abac-policy",
        json!({"config": rules, "limits": {"deadline_ms": 2000}}),
    )
    .await;

    // check-access in tenant A: a matching deny overrides RBAC's allow ...
    let d = check(&s, &admin, &a, &dana_a, "documents", "delete").await;
    assert_eq!(d["allowed"], false, "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.starts_with("denied by policy"), "{d}");
    assert!(
        reason.contains("abac-policy: contractors-never-delete"),
        "{d}"
    );
    // ... the same role without the attribute is still allowed by RBAC ...
    let d = check(&s, &admin, &a, &erin_a, "documents", "delete").await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["granted_by"], json!(["editor"]), "{d}");
    // ... and an allow grants what no role does.
    let d = check(&s, &admin, &a, &finn_a, "reports", "read").await;
    assert_eq!(d["allowed"], true, "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("abac-policy: auditors-read-reports"),
        "{d}"
    );
    // Not applicable: RBAC decides.
    let d = check(&s, &admin, &a, &finn_a, "documents", "delete").await;
    assert_eq!(d["allowed"], false, "{d}");
    let d = check(&s, &admin, &a, &dana_a, "reports", "read").await;
    assert_eq!(d["allowed"], false, "{d}");

    // Tenant B: plain RBAC.
    let d = check(&s, &admin, &b, &dana_b, "documents", "delete").await;
    assert_eq!(d["allowed"], true, "{d}");
    let d = check(&s, &admin, &b, &finn_b, "reports", "read").await;
    assert_eq!(d["allowed"], false, "{d}");

    // Attributes are read at decision time: dana stops being a contractor.
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/users/{dana_a}", a.tid),
            &admin,
            json!({"attributes": {"employment": "staff"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let d = check(&s, &admin, &a, &dana_a, "documents", "delete").await;
    assert_eq!(d["allowed"], true, "{d}");

    // The admin API: tenant A's read-only administrator may read but not
    // write users; the refused calls change nothing.
    let users_a = format!("/api/v1/tenants/{}/users", a.tid);
    let before_users = user_count(&s, &admin, &a).await;
    let before_audit = s.audit_count(&a.tid, &admin).await;
    let (st, list) = s.get(&format!("{users_a}?per_page=1"), &alice_a).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let (st, p) = s
        .post(
            &users_a,
            &alice_a,
            json!({"email": "new@abac-a.example", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.starts_with("denied by policy"), "{p}");
    assert!(detail.contains("abac-policy: read-only-admins"), "{p}");
    let (st, p) = s
        .put(
            &format!("{users_a}/{erin_a}"),
            &alice_a,
            json!({"first_name": "Changed"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    let (st, p) = s
        .post(
            &format!("/api/v1/tenants/{}/roles", a.tid),
            &alice_a,
            json!({"name": "sneaky"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    let (st, roles) = s
        .get(&format!("/api/v1/tenants/{}/roles", a.tid), &alice_a)
        .await;
    assert_eq!(st, StatusCode::OK, "{roles}");
    assert_eq!(user_count(&s, &admin, &a).await, before_users);
    assert_eq!(s.audit_count(&a.tid, &admin).await, before_audit);
    let (_, erin) = s.get(&format!("{users_a}/{erin_a}"), &admin).await;
    assert!(erin["first_name"].is_null(), "{erin}");

    // An allow never grants an admin permission the roles do not: finn
    // (no roles, matched by `auditors-everything`) is still refused.
    let (st, p) = s.get(&users_a, &finn_token).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("missing permission users:read"),
        "{p}"
    );

    // Tenant B's administrator with the same attribute is unaffected.
    s.create(
        &format!("/api/v1/tenants/{}/users", b.tid),
        &alice_b,
        json!({"email": "new@abac-b.example", "password": PASSWORD}),
    )
    .await;

    // Dropping the attribute lifts the restriction at once.
    let (st, v) = s
        .put(
            &format!("{users_a}/{}", a.user_id),
            &admin,
            json!({"attributes": {}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.create(
        &users_a,
        &alice_a,
        json!({"email": "new@abac-a.example", "password": PASSWORD}),
    )
    .await;
}

// ---------------------------------------------------------------------------
// rate-limiter: fixed-window-limiter
// ---------------------------------------------------------------------------

async fn service_client(s: &Server, admin: &str, t: &Tenant, id: &str) -> String {
    let c = s
        .create(
            &format!("/api/v1/tenants/{}/clients", t.tid),
            admin,
            json!({"client_id": id, "name": id, "client_type": "confidential",
                   "grant_types": ["client_credentials"], "scopes": ["api"]}),
        )
        .await;
    c["client_secret"].as_str().unwrap().to_string()
}

async fn client_token(s: &Server, t: &Tenant, id: &str, secret: &str) -> (StatusCode, Value) {
    s.form(
        &format!("/t/{}", t.slug),
        &[("grant_type", "client_credentials")],
        Some((id, secret)),
    )
    .await
}

async fn password_grant(s: &Server, t: &Tenant, user: &str, password: &str) -> (StatusCode, Value) {
    s.form(
        &format!("/t/{}", t.slug),
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

both_builds!(fixed_window_limiter_limits_tokens_and_sign_ins_of_one_tenant => fixed_window_limiter_limits_tokens_and_sign_ins_of_one_tenant_wasm, fixed_window_limiter_limits_tokens_and_sign_ins_of_one_tenant_native);

pub(crate) async fn fixed_window_limiter_limits_tokens_and_sign_ins_of_one_tenant(build: Build) {
    let (s, admin) = build.server_with_admin(&[]).await;
    install(&s, &admin, &build.plugin("fixed-window-limiter")).await;
    let a = tenant(&s, &admin, "limit-a").await;
    let b = tenant(&s, &admin, "limit-b").await;
    let svc_a = service_client(&s, &admin, &a, "svc").await;
    let other_a = service_client(&s, &admin, &a, "other").await;
    let svc_b = service_client(&s, &admin, &b, "svc").await;
    // A day-long window: the test never straddles two windows in practice.
    // The deadline is generous for a loaded machine (rate-limiter failures
    // refuse the request).
    let window = 86_400_000u64;
    put_activation(
        &s,
        &admin,
        &a,
        "fixed-window-limiter",
        json!({"config": {"scopes": {"token": {"limit": 3, "window_ms": window}}},
               "limits": {"deadline_ms": 2000}}),
    )
    .await;

    // Scope "token", counted per client: three tokens, then 429.
    for i in 1..=3 {
        let (st, v) = client_token(&s, &a, "svc", &svc_a).await;
        assert_eq!(st, StatusCode::OK, "request {i}: {v}");
    }
    for _ in 0..2 {
        let (st, v) = client_token(&s, &a, "svc", &svc_a).await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
        assert_eq!(v["error"], "temporarily_unavailable", "{v}");
        assert!(v.get("access_token").is_none(), "{v}");
    }
    // Another client of the same tenant has its own counter.
    let (st, v) = client_token(&s, &a, "other", &other_a).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Tenant B is not limited.
    for i in 1..=6 {
        let (st, v) = client_token(&s, &b, "svc", &svc_b).await;
        assert_eq!(st, StatusCode::OK, "tenant B request {i}: {v}");
    }
    // Bad client credentials are refused before the limiter counts them:
    // "other" still has its second and third token, then 429.
    for _ in 0..3 {
        let (st, v) = client_token(&s, &a, "other", "wrong-secret").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(v["error"], "invalid_client", "{v}");
    }
    for _ in 0..2 {
        let (st, v) = client_token(&s, &a, "other", &other_a).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let (st, v) = client_token(&s, &a, "other", &other_a).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");

    // Scope "login" (every password check), counted per IP and user: the
    // token scope is no longer limited after this reconfiguration.
    put_activation(
        &s,
        &admin,
        &a,
        "fixed-window-limiter",
        json!({"config": {"scopes": {"login": {"limit": 3, "window_ms": window}}},
               "limits": {"deadline_ms": 2000}}),
    )
    .await;
    let (st, v) = client_token(&s, &a, "svc", &svc_a).await;
    assert_eq!(st, StatusCode::OK, "token scope unlimited now: {v}");
    for i in 1..=3 {
        let (st, v) = password_grant(&s, &a, &a.email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK, "sign-in {i}: {v}");
    }
    // The fourth is refused without checking the password: no login, no
    // failed attempt recorded, whether the password is right or wrong.
    let before_audit = s.audit_count(&a.tid, &admin).await;
    for password in [PASSWORD, "a-wrong-password"] {
        let (st, v) = password_grant(&s, &a, &a.email, password).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"], "invalid_grant", "{v}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("too many sign-in attempts"),
            "{v}"
        );
    }
    assert_eq!(s.audit_count(&a.tid, &admin).await, before_audit);
    let (_, u) = s
        .get(
            &format!("/api/v1/tenants/{}/users/{}", a.tid, a.user_id),
            &admin,
        )
        .await;
    assert_eq!(u["failed_attempts"], 0, "{u}");
    // Another user of tenant A, and the same user name in tenant B, sign in.
    s.create(
        &format!("/api/v1/tenants/{}/users", a.tid),
        &admin,
        json!({"email": "bob@limit-a.example", "password": PASSWORD}),
    )
    .await;
    let (st, v) = password_grant(&s, &a, "bob@limit-a.example", PASSWORD).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for i in 1..=5 {
        let (st, v) = password_grant(&s, &b, &b.email, PASSWORD).await;
        assert_eq!(st, StatusCode::OK, "tenant B sign-in {i}: {v}");
    }
}

// ---------------------------------------------------------------------------
// audit-sink: jsonl-audit-sink
// ---------------------------------------------------------------------------

fn plugin_dir(s: &Server, t: &Tenant, plugin: &str) -> PathBuf {
    Path::new(&s.data_dir())
        .join("plugin-files")
        .join(&t.tid)
        .join(plugin)
}

/// Every line of every `.jsonl` file in `dir` (none if it does not exist).
fn jsonl_lines(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            // A line being appended right now may be incomplete: skip it.
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                out.push(v);
            }
        }
    }
    out
}

both_builds!(jsonl_audit_sink_writes_one_tenants_audit_records_to_its_directory => jsonl_audit_sink_writes_one_tenants_audit_records_to_its_directory_wasm, jsonl_audit_sink_writes_one_tenants_audit_records_to_its_directory_native);

async fn jsonl_audit_sink_writes_one_tenants_audit_records_to_its_directory(build: Build) {
    let (s, admin) = build.server_with_admin(&[]).await;
    install(&s, &admin, &build.plugin("jsonl-audit-sink")).await;
    let a = tenant(&s, &admin, "sink-a").await;
    let b = tenant(&s, &admin, "sink-b").await;
    activate(&s, &admin, &a.tid, "jsonl-audit-sink", json!({})).await;
    let dir_a = plugin_dir(&s, &a, "jsonl-audit-sink");
    let base_a = format!("/api/v1/tenants/{}", a.tid);

    // The feed starts at the chain's head on its first tick: make changes
    // until the first lines appear.
    let started = Instant::now();
    let mut i = 0;
    while jsonl_lines(&dir_a).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the sink wrote nothing into {}",
            dir_a.display()
        );
        i += 1;
        s.create(
            &format!("{base_a}/groups"),
            &admin,
            json!({"name": format!("warm-up-{i}")}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Audited changes in tenant A (and one in B, which must not show up).
    let user = s
        .create(
            &format!("{base_a}/users"),
            &admin,
            json!({"email": "sink-user@sink-a.example", "password": PASSWORD}),
        )
        .await;
    let uid = user["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .put(
            &format!("{base_a}/users/{uid}"),
            &admin,
            json!({"first_name": "Sunk"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .put(
            &format!("{base_a}/users/{uid}/password"),
            &admin,
            json!({"password": "another-long-password-9"}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let role = s
        .create(&format!("{base_a}/roles"), &admin, json!({"name": "sunk"}))
        .await;
    let rid = role["id"].as_str().unwrap().to_string();
    let (st, v) = s.delete(&format!("{base_a}/users/{uid}"), &admin).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let b_user = s
        .create(
            &format!("/api/v1/tenants/{}/users", b.tid),
            &admin,
            json!({"email": "sink-user@sink-b.example", "password": PASSWORD}),
        )
        .await;
    let b_uid = b_user["id"].as_str().unwrap().to_string();

    // The audit API's records of those changes.
    let (st, page) = s
        .get(&format!("{base_a}/audit-logs?per_page=200"), &admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{page}");
    let records: Vec<Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target_id"] == json!(uid) || r["target_id"] == json!(rid))
        .cloned()
        .collect();
    let mut actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "role.create",
            "user.create",
            "user.delete",
            "user.password_set",
            "user.update"
        ],
        "{page}"
    );

    // Wait (up to ~10 s) until the sink delivered all of them.
    let started = Instant::now();
    let lines = loop {
        let lines = jsonl_lines(&dir_a);
        let all = records
            .iter()
            .all(|r| lines.iter().any(|l| l["event_id"] == r["id"]));
        if all {
            break lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "records missing from the sink's files: {records:#?}\nlines: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for r in &records {
        let l = lines.iter().find(|l| l["event_id"] == r["id"]).unwrap();
        assert_eq!(l["tenant"], json!(a.tid), "{l}");
        assert_eq!(l["sequence"], r["seq"], "{l} vs {r}");
        assert_eq!(l["action"], r["action"], "{l} vs {r}");
        assert_eq!(l["target_id"], r["target_id"], "{l} vs {r}");
        assert_eq!(l["hash"], r["hash"], "{l} vs {r}");
        assert_eq!(l["previous_hash"], r["prev_hash"], "{l} vs {r}");
        assert_eq!(l["actor_kind"], "user", "{l}");
    }
    // Every line once, in chain order, each linked to the one before.
    let mut seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "duplicate lines");
    for pair in lines.windows(2) {
        assert_eq!(
            pair[1]["sequence"].as_u64().unwrap(),
            pair[0]["sequence"].as_u64().unwrap() + 1,
            "{pair:?}"
        );
        assert_eq!(pair[1]["previous_hash"], pair[0]["hash"], "{pair:?}");
    }
    // Nothing of tenant B: no directory of its own, none of its records here.
    assert!(
        lines
            .iter()
            .all(|l| l["tenant"] == json!(a.tid) && l["target_id"] != json!(b_uid))
    );
    assert!(!plugin_dir(&s, &b, "jsonl-audit-sink").exists());
}

// ---------------------------------------------------------------------------
// The activation API
// ---------------------------------------------------------------------------

#[tokio::test]
async fn activation_api_keeps_secrets_validates_config_and_isolates_tenants() {
    const SECRET: &str = "hibp-secret-7f3a9c";
    let hibp = RangeApi::start(&[]).await;
    let (s, admin) = server_allowing_localhost(Build::Wasm).await;
    install(&s, &admin, &password_policy_for_localhost(Build::Wasm)).await;
    install(&s, &admin, &rust_plugin("disposable-email-veto")).await;
    let a = tenant(&s, &admin, "api-a").await;
    let b = tenant(&s, &admin, "api-b").await;
    let admin_a = tenant_admin(&s, &admin, &a, json!({})).await;
    let plugins_a = format!("/api/v1/tenants/{}/plugins", a.tid);
    let policy_a = format!("{plugins_a}/password-policy");
    let users_a = format!("/api/v1/tenants/{}/users", a.tid);

    // The tenant's own administrator activates it with a secret: the
    // answer names the secret as set but never shows it.
    let config = json!({"min_length": 12, "breach_base_url": hibp.base});
    let mut with_secret = config.clone();
    with_secret["breach_api_key"] = SECRET.into();
    let act = put_activation(
        &s,
        &admin_a,
        &a,
        "password-policy",
        json!({"config": with_secret}),
    )
    .await;
    assert_eq!(act["config"], config, "{act}");
    assert_eq!(act["secrets_set"], json!(["breach_api_key"]), "{act}");
    assert!(!act.to_string().contains(SECRET));
    put_activation(
        &s,
        &admin_a,
        &a,
        "disposable-email-veto",
        json!({"config": {}}),
    )
    .await;

    // Listing and schemas: no secret value either.
    let (st, list) = s.get(&plugins_a, &admin_a).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert!(!list.to_string().contains(SECRET));
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["plugin_id"] == "password-policy")
        .unwrap();
    assert_eq!(listed["secrets_set"], json!(["breach_api_key"]));
    assert!(listed["config"].get("breach_api_key").is_none());
    let (st, schemas) = s
        .get(&format!("{plugins_a}/active-schemas"), &admin_a)
        .await;
    assert_eq!(st, StatusCode::OK, "{schemas}");
    assert!(!schemas.to_string().contains(SECRET));
    let mut ids: Vec<&str> = schemas
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["plugin_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["disposable-email-veto", "password-policy"]);
    let schema = schemas
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["plugin_id"] == "password-policy")
        .unwrap();
    assert_eq!(schema["version"], "0.1.0");
    assert_eq!(schema["categories"], json!(["input-validator"]));
    assert_eq!(
        schema["config_schema"]["properties"]["min_length"]["type"],
        "integer"
    );
    assert_eq!(
        schema["config_schema"]["properties"]["breach_api_key"]["writeOnly"],
        true
    );
    assert_eq!(schema["secret_fields"], json!(["breach_api_key"]));
    assert_eq!(schema["secrets_set"], json!(["breach_api_key"]));
    // Nor in the audit log: only the secret's name.
    let (_, audit) = s
        .get(
            &format!(
                "/api/v1/tenants/{}/audit-logs?action=plugin.activation.create&per_page=100",
                a.tid
            ),
            &admin,
        )
        .await;
    assert!(!audit.to_string().contains(SECRET));
    let created = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target_id"] == "password-policy")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(created["changes"]["secrets_set"], json!(["breach_api_key"]));

    // The plugin itself gets the secret (it sends it upstream).
    let create_user = |n: u32, api_key: Option<&'static str>| {
        let (s, admin, users_a, hibp) = (&s, &admin, &users_a, &hibp);
        async move {
            s.create(
                users_a,
                admin,
                json!({"email": format!("u{n}@api-a.example"), "password": GOOD}),
            )
            .await;
            let seen = hibp.seen();
            assert_eq!(seen.last().unwrap().api_key.as_deref(), api_key, "{seen:?}");
        }
    };
    create_user(1, Some(SECRET)).await;

    // A PUT without the secret keeps it (a form need not re-send it) ...
    let mut longer = config.clone();
    longer["min_length"] = 14.into();
    let act = put_activation(
        &s,
        &admin_a,
        &a,
        "password-policy",
        json!({"config": longer}),
    )
    .await;
    assert_eq!(act["secrets_set"], json!(["breach_api_key"]), "{act}");
    assert_eq!(act["config"]["min_length"], 14);
    create_user(2, Some(SECRET)).await;
    // ... and null removes it.
    let mut removed = longer.clone();
    removed["breach_api_key"] = Value::Null;
    let act = put_activation(
        &s,
        &admin_a,
        &a,
        "password-policy",
        json!({"config": removed}),
    )
    .await;
    assert_eq!(act["secrets_set"], json!([]), "{act}");
    assert!(act["config"].get("breach_api_key").is_none(), "{act}");
    create_user(3, None).await;

    // Invalid configuration: 422 with a field path per problem (a secret's
    // value never echoed), and the stored activation is unchanged.
    let (st, p) = s
        .put(
            &policy_a,
            &admin_a,
            json!({"config": {"min_length": 0, "breach_failure": "maybe",
                              "colour": "red", "breach_api_key": 987654321}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let errors = field_errors(&p);
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    for f in [
        "config/min_length",
        "config/breach_failure",
        "config/breach_api_key",
    ] {
        assert!(fields.contains(&f), "{f} missing: {p}");
    }
    assert!(
        errors
            .iter()
            .any(|(f, m)| f == "config" && m.contains("colour")),
        "{p}"
    );
    let secret_error = errors
        .iter()
        .find(|(f, _)| f == "config/breach_api_key")
        .unwrap();
    assert_eq!(secret_error.1, "invalid value for a secret property");
    assert!(!p.to_string().contains("987654321"), "{p}");
    let (st, p) = s
        .put(&policy_a, &admin_a, json!({"config": "not an object"}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(field_errors(&p)[0].0, "config");

    // Limits above the operator's maxima (defaults: fuel 1e9, memory 256
    // MiB, deadline 60 s), zero limits, and failing open for a category
    // that always fails closed: 422 each.
    for (body, field) in [
        (json!({"limits": {"fuel": 1_000_000_001u64}}), "limits"),
        (json!({"limits": {"memory_mib": 257}}), "limits"),
        (json!({"limits": {"deadline_ms": 60_001}}), "limits"),
        (json!({"limits": {"fuel": 0}}), "limits"),
        (json!({"failure_mode": "open"}), "failure_mode"),
    ] {
        let mut full = body.clone();
        full["config"] = longer.clone();
        let (st, p) = s.put(&policy_a, &admin_a, full).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        let errors = field_errors(&p);
        assert_eq!(errors.len(), 1, "{p}");
        assert_eq!(errors[0].0, field, "{p}");
    }
    // At the maxima is fine.
    let act = put_activation(
        &s,
        &admin_a,
        &a,
        "password-policy",
        json!({"config": longer, "limits": {"fuel": 1_000_000_000u64, "deadline_ms": 60_000}}),
    )
    .await;
    assert_eq!(
        act["effective_limits"]["input-validator"]["fuel"],
        1_000_000_000u64
    );
    assert_eq!(act["config"], longer, "{act}");
    let (_, list) = s.get(&plugins_a, &admin_a).await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["plugin_id"] == "password-policy")
        .unwrap();
    assert_eq!(listed["config"], longer, "{listed}");

    // A disabled plugin has no schema among the active ones.
    put_activation(
        &s,
        &admin_a,
        &a,
        "disposable-email-veto",
        json!({"enabled": false, "config": {}}),
    )
    .await;
    let (_, schemas) = s
        .get(&format!("{plugins_a}/active-schemas"), &admin_a)
        .await;
    let ids: Vec<&str> = schemas
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["plugin_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["password-policy"]);

    // Tenant A's administrator cannot see or touch tenant B's activations:
    // 404 everywhere, and B's activation stays as it was.
    let b_config = json!({"min_length": 20, "breach_check": false});
    put_activation(
        &s,
        &admin,
        &b,
        "password-policy",
        json!({"config": b_config}),
    )
    .await;
    let plugins_b = format!("/api/v1/tenants/{}/plugins", b.tid);
    let policy_b = format!("{plugins_b}/password-policy");
    let (st, p) = s.get(&plugins_b, &admin_a).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, p) = s
        .get(&format!("{plugins_b}/active-schemas"), &admin_a)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, p) = s
        .put(
            &policy_b,
            &admin_a,
            json!({"enabled": false, "config": {"min_length": 1}}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, p) = s
        .put(
            &format!("{plugins_b}/disposable-email-veto"),
            &admin_a,
            json!({"config": {}}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, p) = s.delete(&policy_b, &admin_a).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, list_b) = s.get(&plugins_b, &admin).await;
    assert_eq!(st, StatusCode::OK, "{list_b}");
    let ids: Vec<&str> = list_b
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["plugin_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["password-policy"], "{list_b}");
    assert_eq!(list_b[0]["enabled"], true);
    assert_eq!(list_b[0]["config"], b_config);
    // Tenant B's policy is in force there (20 characters at least).
    let (st, p) = s
        .post(
            &format!("/api/v1/tenants/{}/users", b.tid),
            &admin,
            json!({"email": "x@api-b.example", "password": "fifteen-chars-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(field_errors(&p)[0].1.ends_with("(too_short)"), "{p}");

    // Removing an activation that does not exist: 404; one that does: 204.
    let (st, _) = s
        .delete(&format!("{plugins_a}/fixed-window-limiter"), &admin_a)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.delete(&policy_a, &admin_a).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, schemas) = s
        .get(&format!("{plugins_a}/active-schemas"), &admin_a)
        .await;
    assert_eq!(schemas, json!([]));
}
