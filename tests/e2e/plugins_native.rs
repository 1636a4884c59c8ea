//! Native plugins as an operator meets them: the opt-in, what install
//! refuses (and says why), one `dlopen` per library shared by tenants and
//! closed when the last activation goes, and a panicking library that
//! leaves the server serving. The behaviour of every reference plugin's
//! native build is tested by the same suites as its WebAssembly build
//! (`both_builds!` in the category tests).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugin_support::{Build, activate, claims, install, native_plugin, rust_plugin, upload};
use crate::rp::tenant;
use crate::support::Server;

/// Lines of the server's memory map naming the library (0 when unloaded).
fn mappings_of(s: &Server, sha256: &str) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", s.pid())).unwrap();
    maps.lines()
        .filter(|l| l.ends_with(&format!("/native/{sha256}.so")))
        .count()
}

fn field_error(v: &Value) -> String {
    v["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn native_plugins_need_the_operators_opt_in() {
    let (s, admin) = Server::with_admin().await;
    let lib = native_plugin("tenant-claims");
    let (st, v) = upload(&s, &admin, &lib).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "manifest.kind", "{v}");
    assert!(field_error(&v).contains("PLUGIN_ALLOW_NATIVE=true"), "{v}");
    let (_, list) = s.get("/api/v1/plugins", &admin).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "nothing stored: {list}"
    );
}

#[tokio::test]
async fn an_operator_allow_list_admits_only_the_libraries_it_names() {
    let good = native_plugin("tenant-claims");
    let other = native_plugin("noop-customizer");
    let sha = good.manifest["sha256"].as_str().unwrap().to_string();
    let (s, admin) = Build::Native
        .server_with_admin(&[("PLUGIN_NATIVE_SHA256", &sha.to_uppercase())])
        .await;
    let (st, v) = upload(&s, &admin, &other).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(field_error(&v).contains("PLUGIN_NATIVE_SHA256"), "{v}");
    install(&s, &admin, &good).await;
}

#[tokio::test]
async fn a_library_that_does_not_match_its_manifest_is_refused_at_install() {
    let (s, admin) = Build::Native.server_with_admin(&[]).await;
    let good = native_plugin("tenant-claims");

    // Categories the library does not export.
    let mut a = good.clone();
    a.manifest["categories"] = json!(["jwt-customizer", "input-validator"]);
    let (st, v) = upload(&s, &admin, &a).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        field_error(&v).contains("the manifest declares [jwt-customizer, input-validator] but the library exports [jwt-customizer]"),
        "{v}"
    );

    // Another version or contract than the library was built with.
    let mut a = good.clone();
    a.manifest["version"] = "9.9.9".into();
    let (st, v) = upload(&s, &admin, &a).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        field_error(&v).contains("the library is version 0.1.0 but the manifest declares 9.9.9"),
        "{v}"
    );
    let mut a = good.clone();
    a.manifest["contract"] = "0.2.0".into();
    let (st, _) = upload(&s, &admin, &a).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);

    // A WebAssembly component declared native is no library.
    let mut a = rust_plugin("tenant-claims");
    a.manifest["kind"] = "native".into();
    let (st, v) = upload(&s, &admin, &a).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(field_error(&v).contains("loading"), "{v}");

    // A shared library without the plugin entry point (built by someone
    // else, or against another native ABI).
    if let Ok(bytes) = std::fs::read("/usr/lib/x86_64-linux-gnu/libz.so.1") {
        let mut a = good.clone();
        a.manifest["sha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)).into();
        a.component = bytes;
        let (st, v) = upload(&s, &admin, &a).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(
            field_error(&v).contains("no entry point vaultaris_plugin_abi_v1"),
            "{v}"
        );
    }

    let (_, list) = s.get("/api/v1/plugins", &admin).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "nothing stored: {list}"
    );
    let body = install(&s, &admin, &good).await;
    assert_eq!(body["kind"], "native", "{body}");
    assert_eq!(body["sandboxed"], false, "{body}");
}

#[tokio::test]
async fn one_library_is_loaded_once_for_all_tenants_and_unloaded_after_the_last() {
    let (s, admin) = Build::Native.server_with_admin(&[]).await;
    let lib = native_plugin("tenant-claims");
    let sha = lib.manifest["sha256"].as_str().unwrap().to_string();
    install(&s, &admin, &lib).await;
    // Verified at install, then closed: nothing uses it yet.
    assert_eq!(mappings_of(&s, &sha), 0, "loaded without activations");

    let a = tenant(&s, &admin, "alpha").await;
    let b = tenant(&s, &admin, "beta").await;
    activate(
        &s,
        &admin,
        &a.tid,
        "tenant-claims",
        json!({"token_kinds": ["access"], "static_claims": {"org": "alpha"}}),
    )
    .await;
    let one = mappings_of(&s, &sha);
    assert!(one > 0, "not loaded for an activation");
    activate(
        &s,
        &admin,
        &b.tid,
        "tenant-claims",
        json!({"token_kinds": ["access"], "static_claims": {"org": "beta"}}),
    )
    .await;
    assert_eq!(
        mappings_of(&s, &sha),
        one,
        "a second dlopen for a second tenant"
    );

    // Each tenant's instance has its own configuration.
    for (t, org) in [(&a, "alpha"), (&b, "beta")] {
        let c = s
            .create(
                &format!("/api/v1/tenants/{}/clients", t.tid),
                &admin,
                json!({"client_id": "svc", "name": "svc", "client_type": "confidential",
                       "grant_types": ["client_credentials"], "scopes": ["api"]}),
            )
            .await;
        let (st, v) = s
            .form(
                &format!("/t/{}", t.slug),
                &[("grant_type", "client_credentials")],
                Some(("svc", c["client_secret"].as_str().unwrap())),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            claims(v["access_token"].as_str().unwrap())["org"],
            org,
            "{v}"
        );
    }

    let (st, _) = s
        .delete(
            &format!("/api/v1/tenants/{}/plugins/tenant-claims", a.tid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        mappings_of(&s, &sha),
        one,
        "unloaded while beta still uses it"
    );
    let (st, _) = s
        .delete(
            &format!("/api/v1/tenants/{}/plugins/tenant-claims", b.tid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Instances die with their activation; calls in flight finish first.
    // (glibc keeps a library mapped while a thread holds thread-local
    // destructors it registered: the SDK registers none, and the server's
    // call threads end after 10 s idle, so this bound covers plugins that do.)
    let mut left = usize::MAX;
    for _ in 0..150 {
        left = mappings_of(&s, &sha);
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "still loaded after the last activation went");
}

/// Both builds of one source side by side in one server: the same inputs
/// give byte-for-byte the same results (token claims, violations).
#[tokio::test]
async fn both_builds_of_a_plugin_answer_the_same_side_by_side() {
    let (s, admin) = Build::Native.server_with_admin(&[]).await;
    let builds = [(Build::Wasm, "wasm"), (Build::Native, "native")];
    let mut tokens = Vec::new();
    let mut refusals = Vec::new();
    for (build, label) in builds {
        let mut claims_plugin = build.plugin("tenant-claims");
        claims_plugin.manifest["id"] = format!("tenant-claims-{label}").into();
        install(&s, &admin, &claims_plugin).await;
        let mut policy = build.plugin("password-policy");
        policy.manifest["id"] = format!("password-policy-{label}").into();
        install(&s, &admin, &policy).await;
        let t = tenant(&s, &admin, &format!("side-{label}")).await;
        activate(
            &s,
            &admin,
            &t.tid,
            &format!("tenant-claims-{label}"),
            json!({"token_kinds": ["access"], "static_claims": {"org": "acme", "n": [1, 2.5, null]},
                   "attribute_claims": {"roles": "roles", "email": "contact"}}),
        )
        .await;
        activate(
            &s,
            &admin,
            &t.tid,
            &format!("password-policy-{label}"),
            json!({"min_length": 12, "require_symbol": true, "breach_check": false}),
        )
        .await;
        let token = s
            .password_token(
                &format!("/t/{}", t.slug),
                "admin-cli",
                &t.email,
                crate::rp::PASSWORD,
            )
            .await;
        let mut c = claims(&token);
        // What differs by tenant and token, not by build.
        for k in [
            "iss",
            "sub",
            "jti",
            "iat",
            "exp",
            "nbf",
            "auth_time",
            "sid",
            "tenant",
            "contact",
        ] {
            c.as_object_mut().unwrap().remove(k);
        }
        tokens.push(c);
        let mut answers = Vec::new();
        for password in [
            "short",
            "no-symbols-here-at-all",
            "side-is-my-password!",
            "Fine-and-long-enough!",
        ] {
            let (st, p) = s
                .post(
                    &format!("/api/v1/tenants/{}/users", t.tid),
                    &admin,
                    json!({"email": format!("side-{password}@example.com"), "password": password}),
                )
                .await;
            answers.push((st.as_u16(), p["errors"].clone()));
        }
        refusals.push(answers);
    }
    assert_eq!(tokens[0], tokens[1], "token claims differ between builds");
    assert_eq!(tokens[0]["org"], "acme", "{}", tokens[0]);
    assert_eq!(refusals[0], refusals[1], "violations differ between builds");
    assert_eq!(refusals[0][0].0, 422, "{:?}", refusals[0]);
    assert_eq!(refusals[0][3].0, 201, "{:?}", refusals[0]);
}

// The same behaviour suites with native calls inline on the request
// workers (`PLUGIN_NATIVE_CALLS=inline`): capabilities from a worker
// (key-value, outbound HTTP, a storage-backend plugin under another
// plugin's key-value calls), late answers as `deadline_exceeded`.

#[tokio::test]
async fn inline_calls_tenant_claims() {
    crate::plugins_jwt::tenant_claims_customize_one_tenants_tokens_and_no_other(Build::NativeInline)
        .await
}

#[tokio::test]
async fn inline_calls_fixed_window_limiter() {
    crate::plugins_categories::fixed_window_limiter_limits_tokens_and_sign_ins_of_one_tenant(
        Build::NativeInline,
    )
    .await
}

#[tokio::test]
async fn inline_calls_password_policy() {
    crate::plugins_categories::password_policy_refuses_breached_and_weak_passwords_in_one_tenant_only(
        Build::NativeInline,
    )
    .await
}

#[tokio::test]
async fn inline_calls_storage_backend() {
    crate::plugins_feeds::storage_backend_takes_over_the_key_value_store_of_the_tenants_plugins(
        Build::NativeInline,
    )
    .await
}

#[tokio::test]
async fn inline_calls_hostile() {
    crate::plugins_hostile::every_misbehaviour_fails_typed_under_its_limit_and_others_are_unaffected(
        Build::NativeInline,
    )
    .await
}
