//! encryption-provider: a tenant with `aes-gcm-encryption` active keeps its
//! signing private keys encrypted by the plugin (`xp1.<plugin>.<key id>.<ct>`
//! in `signing_keys.private_key_enc`), another tenant keeps master-key
//! sealing; keys survive a restart (decrypted through the plugin), move to
//! a new current key on `keys/reencrypt`, and go back under the master key
//! when the provider is disabled or deleted. A provider that cannot decrypt
//! and a key copied from another row answer 503 / `temporarily_unavailable`
//! (never 500) for that tenant only, and block disabling instead of losing
//! keys.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::plugin_support::{Build, activate, install, upload};
use crate::rp::{PASSWORD, Tenant, tenant, try_verify, verify};
use crate::support::Server;

const PLUGIN: &str = "aes-gcm-encryption";

/// base64 of a 32-byte AES key made of `byte`.
fn aes_key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// The stored-text prefix of a value the plugin encrypted under `key_id`.
fn plugin_prefix(key_id: &str) -> String {
    format!(
        "xp1.{PLUGIN}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key_id)
    )
}

/// A stored signing key: (kid, algorithm, status, private_key_enc).
type Row = (String, String, String, String);

/// The tenant's signing keys as stored, read straight from the database.
async fn stored_keys(s: &Server, tid: &str) -> Vec<Row> {
    let tid = uuid::Uuid::parse_str(tid).unwrap();
    let sql = "SELECT kid, algorithm, status, private_key_enc FROM signing_keys \
               WHERE tenant_id = $1 ORDER BY created_at, kid";
    if s.database_url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&s.database_url).await.unwrap();
        sqlx::query_as(sql)
            .bind(tid)
            .fetch_all(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&s.database_url)
            .await
            .unwrap();
        sqlx::query_as(sql)
            .bind(tid)
            .fetch_all(&mut c)
            .await
            .unwrap()
    }
}

fn active<'a>(rows: &'a [Row], alg: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.1 == alg && r.2 == "active")
        .unwrap_or_else(|| panic!("no active {alg} key in {rows:?}"))
}

/// Keys that still verify (active or retiring): what the host re-wraps.
fn live(rows: &[Row]) -> Vec<&Row> {
    rows.iter().filter(|r| r.2 != "retired").collect()
}

async fn jwks(s: &Server, t: &Tenant) -> (StatusCode, Value) {
    let res = s
        .http
        .get(format!("{}/t/{}/.well-known/jwks.json", s.base, t.slug))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A password grant at the tenant: (status, body).
async fn try_token(s: &Server, t: &Tenant) -> (StatusCode, Value) {
    s.form(
        &format!("/t/{}", t.slug),
        &[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", &t.email),
            ("password", PASSWORD),
        ],
        None,
    )
    .await
}

/// A token of the tenant's user, checked against the tenant's JWKS.
async fn token(s: &Server, t: &Tenant) -> String {
    let (status, body) = try_token(s, t).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let at = body["access_token"].as_str().unwrap().to_string();
    let (st, set) = jwks(s, t).await;
    assert_eq!(st, StatusCode::OK, "{set}");
    verify(&at, &set);
    at
}

/// The tenant's keys are unusable: 503 / `temporarily_unavailable` for
/// tokens and the JWKS, never a 500.
async fn assert_keys_unavailable(s: &Server, t: &Tenant) {
    let (status, body) = try_token(s, t).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    let (status, body) = jwks(s, t).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

/// Starts a new process on `owner`'s database and data directory (master
/// key), with the same external URL (issuers), after the running one was
/// terminated. `owner` stays the handle for direct database access: the
/// new process's own `database_url` field names a database it does not use.
async fn start_again(build: Build, owner: &Server) -> Server {
    let dir = owner.data_dir();
    build
        .server(&[
            ("DATABASE_URL", owner.database_url.as_str()),
            ("VAULTARIS_DATA_DIR", dir.as_str()),
            ("EXTERNAL_URL", owner.base.as_str()),
            // The tampering test makes a provider fail on purpose, more often
            // than the default 5 times in a row.
            ("PLUGIN_BREAKER_THRESHOLD", "100"),
        ])
        .await
}

async fn audit_total(s: &Server, admin: &str, tid: &str, action: &str) -> i64 {
    let (st, v) = s
        .get(
            &format!("/api/v1/tenants/{tid}/audit-logs?action={action}"),
            admin,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["total"].as_i64().unwrap()
}

async fn rotate(s: &Server, admin: &str, tid: &str) {
    let res = s
        .http
        .post(format!("{}/api/v1/tenants/{tid}/keys/rotate", s.base))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn reencrypt(s: &Server, admin: &str, tid: &str) -> (StatusCode, Value) {
    s.post(
        &format!("/api/v1/tenants/{tid}/keys/reencrypt"),
        admin,
        json!({}),
    )
    .await
}

both_builds!(a_tenants_signing_keys_are_encrypted_by_its_provider_across_restart_reencryption_and_disabling => a_tenants_signing_keys_are_encrypted_by_its_provider_across_restart_reencryption_and_disabling_wasm, a_tenants_signing_keys_are_encrypted_by_its_provider_across_restart_reencryption_and_disabling_native);

async fn a_tenants_signing_keys_are_encrypted_by_its_provider_across_restart_reencryption_and_disabling(
    build: Build,
) {
    let mut s = build.server(&[]).await;
    let admin = s.setup().await;
    install(&s, &admin, &build.plugin(PLUGIN)).await;
    let a = tenant(&s, &admin, "enc-a").await;
    let b = tenant(&s, &admin, "enc-b").await;
    activate(
        &s,
        &admin,
        &a.tid,
        PLUGIN,
        json!({"keys": {"k1": aes_key(1), "k2": aes_key(2)}, "current_key_id": "k1"}),
    )
    .await;

    // Activation re-encrypts nothing by itself: the provisioning keys stay
    // master-sealed and keep working.
    let before = stored_keys(&s, &a.tid).await;
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(
        before.iter().all(|r| !r.3.starts_with("xp1.")),
        "{before:?}"
    );
    token(&s, &a).await;

    // New keys of A are encrypted by the plugin; B's stay master-sealed.
    rotate(&s, &admin, &a.tid).await;
    rotate(&s, &admin, &b.tid).await;
    let rows_a = stored_keys(&s, &a.tid).await;
    for alg in ["EdDSA", "ES256", "RS256"] {
        let r = active(&rows_a, alg);
        assert!(r.3.starts_with(&plugin_prefix("k1")), "{alg}: {}", r.3);
    }
    let retiring: Vec<_> = rows_a.iter().filter(|r| r.2 == "retiring").collect();
    assert_eq!(retiring.len(), 3);
    assert!(retiring.iter().all(|r| !r.3.starts_with("xp1.")));
    let rows_b = stored_keys(&s, &b.tid).await;
    assert_eq!(live(&rows_b).len(), 6);
    assert!(rows_b.iter().all(|r| !r.3.contains('.')), "{rows_b:?}");

    // A's tokens are signed by the new (plugin-encrypted) key and verify
    // against A's JWKS only.
    let at = token(&s, &a).await;
    let (header, _) = verify(&at, &jwks(&s, &a).await.1);
    assert_eq!(header["kid"], active(&rows_a, "EdDSA").0.as_str());
    assert!(try_verify(&at, &jwks(&s, &b).await.1).is_err());
    let bt = token(&s, &b).await;

    // After a restart the keys are decrypted through the plugin (loaded
    // before the first request): tokens are issued, old ones verify.
    assert!(s.terminate().success());
    let s2 = start_again(build, &s).await;
    let fresh = token(&s2, &a).await;
    let (header, _) = verify(&fresh, &jwks(&s2, &a).await.1);
    assert_eq!(header["kid"], active(&rows_a, "EdDSA").0.as_str());
    verify(&at, &jwks(&s2, &a).await.1);
    verify(&bt, &jwks(&s2, &b).await.1);
    token(&s2, &b).await;

    // A new current key: re-encryption moves every live key (the three
    // master-sealed retiring ones and the three under k1) to k2, once.
    let (st, v) = s2
        .put(
            &format!("/api/v1/tenants/{}/plugins/{PLUGIN}", a.tid),
            &admin,
            json!({"enabled": true, "config": {"current_key_id": "k2"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, report) = reencrypt(&s2, &admin, &a.tid).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"plugin_id": PLUGIN, "key_id": "k2", "keys": 6, "reencrypted": 6, "already_current": 0})
    );
    let (st, again) = reencrypt(&s2, &admin, &a.tid).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(again["reencrypted"], 0, "{again}");
    assert_eq!(again["already_current"], 6, "{again}");
    let rows = stored_keys(&s, &a.tid).await;
    assert!(
        live(&rows)
            .iter()
            .all(|r| r.3.starts_with(&plugin_prefix("k2"))),
        "{rows:?}"
    );
    // Same keys, new ciphertexts: the kids did not change.
    let kids = |rows: &[Row]| rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>();
    assert_eq!(kids(&rows), kids(&rows_a));
    token(&s2, &a).await;
    verify(&at, &jwks(&s2, &a).await.1);
    assert_eq!(audit_total(&s2, &admin, &a.tid, "key.reencrypted").await, 1);
    // B has no provider: nothing to re-encrypt under.
    let (st, v) = reencrypt(&s2, &admin, &b.tid).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");

    // Disabling the provider first puts every live key back under the
    // master key; tokens keep working, old ones keep verifying.
    let (st, v) = s2
        .put(
            &format!("/api/v1/tenants/{}/plugins/{PLUGIN}", a.tid),
            &admin,
            json!({"enabled": false, "config": {"current_key_id": "k2"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    let rows = stored_keys(&s, &a.tid).await;
    assert_eq!(live(&rows).len(), 6);
    assert!(rows.iter().all(|r| !r.3.contains('.')), "{rows:?}");
    let after = token(&s2, &a).await;
    verify(&at, &jwks(&s2, &a).await.1);
    assert_eq!(audit_total(&s2, &admin, &a.tid, "key.reencrypted").await, 2);
    // With the provider disabled new keys are master-sealed again.
    rotate(&s2, &admin, &a.tid).await;
    let rows = stored_keys(&s, &a.tid).await;
    assert!(!active(&rows, "EdDSA").3.contains('.'));
    token(&s2, &a).await;
    verify(&after, &jwks(&s2, &a).await.1);

    // Every change is in A's audit chain, which verifies.
    let (_, v) = s2
        .get(
            &format!("/api/v1/tenants/{}/audit-logs/verify", a.tid),
            &admin,
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
    // The endpoint is documented.
    let (_, doc) = s2
        .call(
            reqwest::Method::GET,
            "/api/v1/docs/openapi.json",
            None,
            None,
        )
        .await;
    assert!(
        doc["paths"]["/api/v1/tenants/{tenant_id}/keys/reencrypt"]
            .get("post")
            .is_some()
    );
}

both_builds!(a_provider_that_cannot_decrypt_or_a_moved_key_fails_cleanly_for_its_tenant_only => a_provider_that_cannot_decrypt_or_a_moved_key_fails_cleanly_for_its_tenant_only_wasm, a_provider_that_cannot_decrypt_or_a_moved_key_fails_cleanly_for_its_tenant_only_native);

async fn a_provider_that_cannot_decrypt_or_a_moved_key_fails_cleanly_for_its_tenant_only(
    build: Build,
) {
    let mut s = build.server(&[]).await;
    let admin = s.setup().await;
    let artifact = build.plugin(PLUGIN);
    install(&s, &admin, &artifact).await;
    let a = tenant(&s, &admin, "cipher-a").await;
    let b = tenant(&s, &admin, "cipher-b").await;
    let config = json!({"keys": {"k1": aes_key(1), "k2": aes_key(2)}, "current_key_id": "k1"});
    activate(&s, &admin, &a.tid, PLUGIN, config.clone()).await;
    rotate(&s, &admin, &a.tid).await;
    token(&s, &a).await;

    // Only one encryption provider per tenant: a second one (the same
    // component under another id) is refused while the first is enabled.
    let mut second = artifact.clone();
    second.manifest["id"] = json!("aes-gcm-encryption-b");
    let (st, v) = upload(&s, &admin, &second).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/aes-gcm-encryption-b", a.tid),
            &admin,
            json!({"enabled": true, "config": config}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");

    // A reconfiguration that drops the keys in use: the provider can no
    // longer decrypt A's keys, so disabling or deleting it is refused
    // (409) and changes nothing — no key is left that nobody can decrypt.
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/{PLUGIN}", a.tid),
            &admin,
            json!({"enabled": true, "config": {"keys": {"k3": aes_key(3)}, "current_key_id": "k3"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let stored = stored_keys(&s, &a.tid).await;
    let updates = audit_total(&s, &admin, &a.tid, "plugin.activation.update").await;
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/{PLUGIN}", a.tid),
            &admin,
            json!({"enabled": false, "config": {"current_key_id": "k3"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, v) = s
        .delete(
            &format!("/api/v1/tenants/{}/plugins/{PLUGIN}", a.tid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, v) = reencrypt(&s, &admin, &a.tid).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(stored_keys(&s, &a.tid).await, stored);
    let (_, list) = s
        .get(&format!("/api/v1/tenants/{}/plugins", a.tid), &admin)
        .await;
    let act = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["plugin_id"] == PLUGIN)
        .unwrap();
    assert_eq!(act["enabled"], true, "{act}");
    assert_eq!(
        audit_total(&s, &admin, &a.tid, "plugin.activation.update").await,
        updates
    );
    assert_eq!(
        audit_total(&s, &admin, &a.tid, "plugin.activation.delete").await,
        0
    );
    assert_eq!(audit_total(&s, &admin, &a.tid, "key.reencrypted").await, 0);

    // Once A's cached keys are gone (a restart), A answers 503 /
    // temporarily_unavailable — not 500 — while B is unaffected.
    assert!(s.terminate().success());
    let mut s2 = start_again(build, &s).await;
    assert_keys_unavailable(&s2, &a).await;
    token(&s2, &b).await;
    // Admin API reads that need the keys answer 503 problem+json.
    let (st, v) = s2
        .get(&format!("/api/v1/tenants/{}/keys", a.tid), &admin)
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");

    // Putting the keys back makes A work again at once.
    let (st, v) = s2
        .put(
            &format!("/api/v1/tenants/{}/plugins/{PLUGIN}", a.tid),
            &admin,
            json!({"enabled": true, "config": {"keys": {"k1": aes_key(1), "k2": aes_key(2), "k3": aes_key(3)}, "current_key_id": "k1"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    token(&s2, &a).await;

    // A ciphertext copied from another row (A's ES256 key onto its EdDSA
    // row) or garbage fails authentication: 503 for A, audited as
    // tampering, B unaffected; the original value works again.
    let rows = stored_keys(&s, &a.tid).await;
    let (ed_kid, ed_enc) = {
        let r = active(&rows, "EdDSA");
        (r.0.clone(), r.3.clone())
    };
    let es_enc = active(&rows, "ES256").3.clone();
    assert!(es_enc.starts_with(&plugin_prefix("k1")));
    s.exec_sql(&format!(
        "UPDATE signing_keys SET private_key_enc = '{es_enc}' WHERE kid = '{ed_kid}'"
    ))
    .await;
    assert!(s2.terminate().success());
    let s3 = start_again(build, &s).await;
    assert_keys_unavailable(&s3, &a).await;
    token(&s3, &b).await;
    for garbage in ["xp1.aes-gcm-encryption.azE.AAAA", "not.a.key", "AAAA"] {
        s.exec_sql(&format!(
            "UPDATE signing_keys SET private_key_enc = '{garbage}' WHERE kid = '{ed_kid}'"
        ))
        .await;
        assert_keys_unavailable(&s3, &a).await;
    }
    let (st, v) = s3
        .get(
            &format!(
                "/api/v1/tenants/{}/audit-logs?action=key.tamper_detected",
                a.tid
            ),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["total"].as_i64().unwrap() >= 1, "{v}");
    assert!(v.to_string().contains(&ed_kid), "{v}");
    assert!(
        !v.to_string().contains(&es_enc),
        "no ciphertext in the audit log"
    );
    s.exec_sql(&format!(
        "UPDATE signing_keys SET private_key_enc = '{ed_enc}' WHERE kid = '{ed_kid}'"
    ))
    .await;
    token(&s3, &a).await;

    // With the provider healthy, deleting the activation re-wraps A's keys
    // under the master key first; tokens keep working.
    let (st, v) = s3
        .delete(
            &format!("/api/v1/tenants/{}/plugins/{PLUGIN}", a.tid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let rows = stored_keys(&s, &a.tid).await;
    assert!(rows.iter().all(|r| !r.3.contains('.')), "{rows:?}");
    token(&s3, &a).await;
    assert_eq!(audit_total(&s3, &admin, &a.tid, "key.reencrypted").await, 1);
    let (_, v) = s3
        .get(
            &format!("/api/v1/tenants/{}/audit-logs/verify", a.tid),
            &admin,
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
}
