//! Per-tenant signing keys: three algorithms in every JWKS, listing without
//! private material, rotation with overlap (old tokens keep verifying until
//! `retire_after`, then the key leaves the JWKS), audit, and bad input.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{MASTER, Server};

const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn header(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn kids(jwks: &Value) -> BTreeSet<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn jwks(s: &Server, prefix: &str) -> Value {
    let (status, v) = s
        .call(
            Method::GET,
            &format!("{prefix}/.well-known/jwks.json"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn list(s: &Server, token: &str, tid: &str) -> Vec<Value> {
    let (status, v) = s.get(&format!("/api/v1/tenants/{tid}/keys"), token).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_no_private_material(&v);
    v.as_array().unwrap().clone()
}

fn active_kid(keys: &[Value], alg: &str) -> String {
    let active: Vec<&Value> = keys
        .iter()
        .filter(|k| k["algorithm"] == alg && k["status"] == "active")
        .collect();
    assert_eq!(active.len(), 1, "one active {alg} key: {keys:?}");
    active[0]["kid"].as_str().unwrap().to_string()
}

/// No private JWK member, and no sealed key, anywhere in `v`.
fn assert_no_private_material(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                assert!(
                    !PRIVATE_MEMBERS.contains(&k.as_str()) && !k.contains("private"),
                    "private member {k} in {v}"
                );
                assert_no_private_material(x);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_no_private_material),
        _ => {}
    }
}

/// Checks a JWK with the crates a relying party would use: the Ed25519 point
/// decompresses, the P-256 point is on the curve, the RSA modulus is 2048 bits.
fn assert_usable_public_key(jwk: &Value) {
    let b = |m: &str| URL_SAFE_NO_PAD.decode(jwk[m].as_str().unwrap()).unwrap();
    assert_eq!(jwk["use"], "sig", "{jwk}");
    match jwk["kty"].as_str().unwrap() {
        "OKP" => {
            assert_eq!(jwk["crv"], "Ed25519");
            // RFC 9864: no alg, so the key serves both `EdDSA` and `Ed25519`.
            assert!(jwk.get("alg").is_none(), "{jwk}");
            let x: [u8; 32] = b("x").try_into().unwrap();
            ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
        }
        "EC" => {
            assert_eq!(jwk["crv"], "P-256");
            assert_eq!(jwk["alg"], "ES256");
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&b("x")),
                p256::FieldBytes::from_slice(&b("y")),
                false,
            );
            p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap();
        }
        "RSA" => {
            assert_eq!(jwk["alg"], "RS256");
            assert_eq!(b("n").len(), 256, "2048-bit modulus");
            assert_eq!(jwk["e"], "AQAB");
        }
        other => panic!("unexpected kty {other}"),
    }
}

/// A timestamp as both databases store and compare it.
fn db_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[tokio::test]
async fn a_new_tenant_publishes_three_public_keys_and_lists_them() {
    let (s, token) = Server::with_admin().await;
    let t = s
        .create(
            "/api/v1/tenants",
            &token,
            json!({ "name": "Acme", "slug": "acme" }),
        )
        .await;
    let tid = t["id"].as_str().unwrap().to_string();

    // A burst of first requests creates exactly one key per algorithm.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = s.http.clone();
        let url = format!("{}/t/acme/.well-known/jwks.json", s.base);
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    let mut seen = BTreeSet::new();
    for task in tasks {
        seen.insert(kids(&task.await.unwrap()).into_iter().collect::<Vec<_>>());
    }
    assert_eq!(
        seen.len(),
        1,
        "every response shows the same keys: {seen:?}"
    );

    let set = jwks(&s, "/t/acme").await;
    assert_no_private_material(&set);
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{set}");
    let ktys: BTreeSet<&str> = keys.iter().map(|k| k["kty"].as_str().unwrap()).collect();
    assert_eq!(ktys, BTreeSet::from(["EC", "OKP", "RSA"]));
    keys.iter().for_each(assert_usable_public_key);
    // The master tenant's keys are its own.
    assert!(kids(&jwks(&s, "").await).is_disjoint(&kids(&set)));

    let listed = list(&s, &token, &tid).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    for k in &listed {
        assert_eq!(k["status"], "active");
        assert!(k["retire_after"].is_null());
        assert!(k["created_at"].is_string());
        assert!(set["keys"].as_array().unwrap().contains(&k["public_jwk"]));
    }
    let algs: BTreeSet<&str> = listed
        .iter()
        .map(|k| k["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(algs, BTreeSet::from(["EdDSA", "ES256", "RS256"]));

    let (_, v) = s
        .get(&format!("/api/v1/tenants/{tid}/audit-logs/verify"), &token)
        .await;
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key() {
    let (s, token) = Server::with_admin().await;
    let keys_path = format!("/api/v1/tenants/{MASTER}/keys");
    let before = list(&s, &token, MASTER).await;
    let old_ed = active_kid(&before, "EdDSA");
    let old_es = active_kid(&before, "ES256");
    let old_rs = active_kid(&before, "RS256");
    assert_eq!(header(&token)["kid"], old_ed.as_str());

    let now = chrono::Utc::now();
    let (status, rotated) = s
        .post(
            &format!("{keys_path}/rotate"),
            &token,
            json!({ "algorithm": "EdDSA" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_no_private_material(&rotated);
    let rotated = rotated.as_array().unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["algorithm"], "EdDSA");
    assert_eq!(rotated[0]["status"], "active");
    let new_ed = rotated[0]["kid"].as_str().unwrap().to_string();
    assert_ne!(new_ed, old_ed);

    // The token signed before rotation still works, and its key is published.
    let (status, _) = s.get(&keys_path, &token).await;
    assert_eq!(status, StatusCode::OK);
    let set = kids(&jwks(&s, "").await);
    assert!(set.contains(&old_ed) && set.contains(&new_ed), "{set:?}");
    assert_eq!(set.len(), 4);

    // The old key retires after the longest token lifetime (refresh, 86400 s
    // by default) plus a margin; the other algorithms are untouched.
    let after = list(&s, &token, MASTER).await;
    let old = after.iter().find(|k| k["kid"] == old_ed.as_str()).unwrap();
    assert_eq!(old["status"], "retiring");
    let retire_after = chrono::DateTime::parse_from_rfc3339(old["retire_after"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let overlap = (retire_after - now).num_seconds();
    assert!(
        (86400..=86400 + 600).contains(&overlap),
        "overlap {overlap}"
    );
    assert_eq!(active_kid(&after, "EdDSA"), new_ed);
    assert_eq!(active_kid(&after, "ES256"), old_es);
    assert_eq!(active_kid(&after, "RS256"), old_rs);

    // New tokens carry the new kid and verify.
    let fresh = s
        .password_token(
            "",
            "admin-cli",
            crate::support::ADMIN_EMAIL,
            crate::support::ADMIN_PASSWORD,
        )
        .await;
    assert_eq!(header(&fresh)["kid"], new_ed.as_str());
    assert_eq!(header(&fresh)["alg"], "EdDSA");
    let (status, _) = s.get(&keys_path, &fresh).await;
    assert_eq!(status, StatusCode::OK);

    // Rotating with no body rotates all three; both old tokens still work.
    let res = s
        .http
        .post(format!("{}{keys_path}/rotate", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let all: Value = res.json().await.unwrap();
    let algs: BTreeSet<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(algs, BTreeSet::from(["EdDSA", "ES256", "RS256"]));
    for t in [&token, &fresh] {
        let (status, _) = s.get(&keys_path, t).await;
        assert_eq!(status, StatusCode::OK);
    }
    let set = kids(&jwks(&s, "").await);
    assert_eq!(set.len(), 7, "3 active + 4 retiring: {set:?}");
    for k in [&old_ed, &new_ed, &old_es, &old_rs] {
        assert!(set.contains(k));
    }

    // Both rotations were audited with the new kids; the chain verifies.
    let (_, logs) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/audit-logs?action=key.rotated"),
            &token,
        )
        .await;
    assert_eq!(logs["total"], 2, "{logs}");
    let text = logs.to_string();
    assert!(text.contains(&new_ed), "{text}");
    assert_no_private_material(&logs);
    let (_, v) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/audit-logs/verify"),
            &token,
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test]
async fn a_retiring_key_leaves_the_jwks_after_retire_after() {
    let (s, token) = Server::with_admin().await;
    let keys_path = format!("/api/v1/tenants/{MASTER}/keys");
    let old_ed = active_kid(&list(&s, &token, MASTER).await, "EdDSA");
    let (status, v) = s
        .post(
            &format!("{keys_path}/rotate"),
            &token,
            json!({ "algorithm": "EdDSA" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let fresh = s
        .password_token(
            "",
            "admin-cli",
            crate::support::ADMIN_EMAIL,
            crate::support::ADMIN_PASSWORD,
        )
        .await;

    // Shorten the overlap window to a few seconds from now.
    let soon = chrono::Utc::now() + chrono::Duration::seconds(3);
    s.exec_sql(&format!(
        "UPDATE signing_keys SET retire_after = '{}' WHERE kid = '{old_ed}'",
        db_time(soon)
    ))
    .await;
    // Another rotation reloads the cache (ES256 only, so EdDSA stays put).
    let (status, _) = s
        .post(
            &format!("{keys_path}/rotate"),
            &fresh,
            json!({ "algorithm": "ES256" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kids(&jwks(&s, "").await).contains(&old_ed));
    let (status, _) = s.get(&keys_path, &token).await;
    assert_eq!(status, StatusCode::OK, "still within the window");

    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    // Gone from the JWKS (the cache expires with the window), the token it
    // signed is refused, and the listing says retired.
    let set = kids(&jwks(&s, "").await);
    assert!(!set.contains(&old_ed), "{set:?}");
    let (status, _) = s.get(&keys_path, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let listed = list(&s, &fresh, MASTER).await;
    let old = listed.iter().find(|k| k["kid"] == old_ed.as_str()).unwrap();
    assert_eq!(old["status"], "retired");
    assert_eq!(
        set.len(),
        listed.iter().filter(|k| k["status"] != "retired").count()
    );
}

#[tokio::test]
async fn a_tenant_admin_rotates_only_its_own_keys() {
    let (s, token) = Server::with_admin().await;
    let t = s
        .create(
            "/api/v1/tenants",
            &token,
            json!({ "name": "Initech", "slug": "initech" }),
        )
        .await;
    let tid = t["id"].as_str().unwrap().to_string();
    let user = s
        .create(
            &format!("/api/v1/tenants/{tid}/users"),
            &token,
            json!({ "email": "boss@initech.example", "password": "initech-admin-pw" }),
        )
        .await;
    let (_, roles) = s
        .get(&format!("/api/v1/tenants/{tid}/roles?per_page=200"), &token)
        .await;
    let admin = roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()
        .clone();
    s.link(
        &format!(
            "/api/v1/tenants/{tid}/users/{}/roles",
            user["id"].as_str().unwrap()
        ),
        &token,
        json!({ "role_id": admin["id"] }),
    )
    .await;
    let (_, perms) = s
        .get(
            &format!(
                "/api/v1/tenants/{tid}/roles/{}/permissions",
                admin["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert!(
        perms.to_string().contains("\"rotate\""),
        "the admin role carries keys:rotate: {perms}"
    );
    let tenant_token = s
        .password_token(
            "/t/initech",
            "admin-cli",
            "boss@initech.example",
            "initech-admin-pw",
        )
        .await;

    let (status, v) = s
        .post(
            &format!("/api/v1/tenants/{tid}/keys/rotate"),
            &tenant_token,
            json!({ "algorithm": "RS256" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The master tenant's keys are another tenant's: 404, for both routes.
    let master_before = list(&s, &token, MASTER).await;
    let (status, _) = s
        .get(&format!("/api/v1/tenants/{MASTER}/keys"), &tenant_token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .post(
            &format!("/api/v1/tenants/{MASTER}/keys/rotate"),
            &tenant_token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(list(&s, &token, MASTER).await, master_before);
}

#[tokio::test]
async fn bad_rotations_answer_problem_json_and_change_nothing() {
    let (s, token) = Server::with_admin().await;
    let keys_path = format!("/api/v1/tenants/{MASTER}/keys");
    let rotate = format!("{keys_path}/rotate");
    // A user without roles.
    s.create(
        &format!("/api/v1/tenants/{MASTER}/users"),
        &token,
        json!({ "email": "nobody@example.com", "password": "nobody-password-1" }),
    )
    .await;
    let nobody = s
        .password_token("", "admin-cli", "nobody@example.com", "nobody-password-1")
        .await;
    let before = list(&s, &token, MASTER).await;
    let audit = s.audit_count(MASTER, &token).await;

    for body in [
        json!({ "algorithm": "HS256" }),
        json!({ "algorithm": "none" }),
        json!({ "algorithm": "Ed25519" }),
        json!({ "algorithm": "es256" }),
        json!({ "algorithm": "" }),
        json!({ "algorithm": 256 }),
        json!({ "algorithm": ["EdDSA"] }),
        json!({ "algorithm": "EdDSA", "force": true }),
        json!(["EdDSA"]),
    ] {
        let (status, v) = s.post(&rotate, &token, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    }
    let (status, v) = s
        .post(&rotate, &token, json!({ "algorithm": "RS512" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["field"], "algorithm", "{v}");

    let (status, _) = s
        .raw(
            Method::POST,
            &rotate,
            &token,
            "application/json",
            "{\"algorithm\":",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .raw(Method::POST, &rotate, &token, "text/plain", "EdDSA")
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Without the permission: 403; without a token: 401; unknown tenant: 404.
    let (status, _) = s
        .post(&rotate, &nobody, json!({ "algorithm": "EdDSA" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.get(&keys_path, &nobody).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.call(Method::POST, &rotate, None, Some(json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let missing = "/api/v1/tenants/0190c0de-0000-7000-8000-000000000000/keys";
    let (status, _) = s.get(missing, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s
        .post(&format!("{missing}/rotate"), &token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.get("/api/v1/tenants/not-a-uuid/keys", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Nothing changed and nothing was audited.
    assert_eq!(list(&s, &token, MASTER).await, before);
    assert_eq!(s.audit_count(MASTER, &token).await, audit);
}
