//! The OpenID Provider's flows, driven over HTTP by a hand-written relying
//! party (`rp.rs`): discovery, code + PKCE through the hosted login page, SSO
//! and prompt/max_age, consent, refresh rotation and reuse detection, code
//! replay, introspection/revocation/userinfo, DPoP, private_key_jwt, logout
//! and per-client ID token algorithms.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::rp::{
    self, AuthRequest, Browser, PASSWORD, REDIRECT, TestKey, active, backchannel, client,
    login_for_code, sso_code, tenant, tokens, verify,
};
use crate::support::Server;

fn strs(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn discovery_is_exact(meta: &Value, issuer: &str) {
    assert_eq!(meta["issuer"], json!(issuer), "{meta}");
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("end_session_endpoint", "/oauth/logout"),
    ] {
        assert_eq!(meta[field], json!(format!("{issuer}{path}")), "{field}");
    }
    assert_eq!(strs(&meta["response_types_supported"]), set(&["code"]));
    assert_eq!(strs(&meta["response_modes_supported"]), set(&["query"]));
    assert_eq!(
        strs(&meta["code_challenge_methods_supported"]),
        set(&["S256"])
    );
    assert_eq!(
        strs(&meta["grant_types_supported"]),
        set(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password"
        ])
    );
    assert_eq!(
        strs(&meta["token_endpoint_auth_methods_supported"]),
        set(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        strs(&meta["id_token_signing_alg_values_supported"]),
        set(&["RS256", "ES256", "EdDSA", "Ed25519"])
    );
    assert_eq!(
        strs(&meta["dpop_signing_alg_values_supported"]),
        set(&["ES256", "EdDSA", "Ed25519", "RS256", "PS256"])
    );
    let scopes = strs(&meta["scopes_supported"]);
    for s in ["openid", "profile", "email", "offline_access"] {
        assert!(scopes.contains(s), "{s} missing from {scopes:?}");
    }
    // Nothing that is not implemented: every advertised scope is one the
    // userinfo test below exercises.
    assert!(
        scopes.is_subset(&set(&[
            "openid",
            "profile",
            "email",
            "offline_access",
            "phone"
        ])),
        "{scopes:?}"
    );
    for (flag, value) in [
        ("request_parameter_supported", false),
        ("request_uri_parameter_supported", false),
        ("authorization_response_iss_parameter_supported", true),
    ] {
        assert!(
            meta.get(flag).is_none_or(|v| *v == json!(value)),
            "{flag}: {meta}"
        );
    }
    for absent in [
        "registration_endpoint",
        "pushed_authorization_request_endpoint",
        "device_authorization_endpoint",
        "check_session_iframe",
    ] {
        assert!(meta.get(absent).is_none(), "{absent} advertised: {meta}");
    }
    for flag in [
        "frontchannel_logout_supported",
        "backchannel_logout_supported",
    ] {
        assert!(meta.get(flag).is_none_or(|v| *v == json!(false)), "{flag}");
    }
}

#[tokio::test]
async fn discovery_for_the_master_and_a_tenant_issuer() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "disco").await;
    let http = backchannel();
    for issuer in [s.base.clone(), t.issuer.clone()] {
        let r = rp::discovery(&http, &issuer).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("application/json")
        );
        discovery_is_exact(&r.body, &issuer);
        // The JWKS has a public key for every advertised ID token algorithm.
        let keys = rp::jwks(
            &http,
            r.body["jwks_uri"]
                .as_str()
                .unwrap()
                .trim_end_matches("/.well-known/jwks.json"),
        )
        .await;
        let keys = keys["keys"].as_array().unwrap().clone();
        for (kty, crv) in [
            ("RSA", None),
            ("EC", Some("P-256")),
            ("OKP", Some("Ed25519")),
        ] {
            assert!(
                keys.iter().any(|k| k["kty"] == kty
                    && crv.is_none_or(|c| k["crv"] == c)
                    && k["kid"].is_string()
                    && k.get("d").is_none()),
                "{issuer}: no {kty} key in {keys:?}"
            );
        }
    }
    // The two issuers have distinct keys.
    let master: BTreeSet<String> = rp::jwks(&http, &s.base).await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    let other: BTreeSet<String> = rp::jwks(&http, &t.issuer).await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert!(master.is_disjoint(&other), "{master:?} {other:?}");
}

#[tokio::test]
async fn code_flow_with_pkce_through_the_login_page() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "codeflow").await;
    let c = client(
        &s,
        &admin,
        &t,
        json!({"scopes": ["openid", "profile", "email", "offline_access"]}),
    )
    .await;
    let http = backchannel();
    let browser = Browser::new();
    let req = AuthRequest::new(
        &t.issuer,
        &c.id,
        REDIRECT,
        "openid profile email offline_access",
    );

    // The login page sets the CSRF cookie scoped to the issuer's /oauth/.
    let page = browser.get(&req.url()).await;
    page.assert_page(StatusCode::OK, "login page");
    assert!(page.is_login_page(), "{}", page.describe());
    let csrf = page.set_cookie("vx_csrf").expect("vx_csrf cookie");
    assert!(
        csrf.contains(&format!("Path=/t/{}/oauth/", t.slug)),
        "{csrf}"
    );
    assert!(csrf.contains("HttpOnly"), "{csrf}");
    let form = page.form();
    assert_eq!(form.action, format!("{}/oauth/authorize", t.issuer));
    assert!(form.hidden("flow").is_some() && form.hidden("csrf").is_some());

    // A wrong password shows the form again with an error, no session.
    let bad = browser.login(&page, &t.email, "not-the-password").await;
    bad.assert_page(StatusCode::UNAUTHORIZED, "bad password");
    assert!(bad.is_login_page() || bad.text.contains(r#"id="password""#));
    assert!(bad.set_cookie("vx_session").is_none());

    let before = rp::now();
    let done = browser.login(&page, &t.email, PASSWORD).await;
    let session = done.set_cookie("vx_session").expect("vx_session cookie");
    assert!(
        session.contains(&format!("Path=/t/{}/oauth/", t.slug)),
        "{session}"
    );
    assert!(session.contains("HttpOnly"), "{session}");
    let code = req.code_from(&done);
    let after = rp::now();

    let r = req.redeem(&http, &code, &c.auth(), None).await;
    let body = tokens(&r, "code redemption");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert_eq!(
        strs(&json!(
            body["scope"]
                .as_str()
                .unwrap()
                .split(' ')
                .collect::<Vec<_>>()
        )),
        set(&["openid", "profile", "email", "offline_access"])
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|r| r.len() >= 32)
    );
    let keys = rp::jwks(&http, &t.issuer).await;

    // Access token: RFC 9068, verified against the JWKS.
    let at = body["access_token"].as_str().unwrap();
    let (h, claims) = verify(at, &keys);
    assert_eq!(h["typ"], "at+jwt", "{h}");
    assert_eq!(claims["iss"], json!(t.issuer));
    assert_eq!(claims["sub"], json!(t.user_id));
    assert_eq!(claims["client_id"], json!(c.id));
    assert!(
        claims["aud"] == json!(c.id)
            || claims["aud"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(c.id)))
    );
    assert!(claims["jti"].is_string() && claims["sid"].is_string());
    assert!(claims["exp"].as_i64().unwrap() > rp::now());
    assert!(claims.get("cnf").is_none());

    // ID token: RS256 by default, verified with the RSA key of the JWKS.
    let idt = body["id_token"].as_str().expect("id_token");
    let (h, id) = verify(idt, &keys);
    assert_eq!(h["alg"], "RS256", "{h}");
    assert_eq!(id["iss"], json!(t.issuer));
    assert_eq!(id["sub"], json!(t.user_id));
    assert!(
        id["aud"] == json!(c.id)
            || id["aud"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(c.id)))
    );
    assert_eq!(id["nonce"], json!(req.nonce));
    assert_eq!(id["at_hash"], json!(rp::at_hash("RS256", at)));
    assert_eq!(
        id["sid"], claims["sid"],
        "ID and access token share the session"
    );
    let auth_time = id["auth_time"].as_i64().unwrap();
    assert!(
        (before - 1..=after + 1).contains(&auth_time),
        "{auth_time} not in [{before}, {after}]"
    );
    assert!(id["exp"].as_i64().unwrap() > rp::now());
    assert!(id["iat"].as_i64().unwrap() <= rp::now() + 1);
    assert_eq!(id["email"], json!(t.email));
    assert_eq!(id["given_name"], "Alice");

    // Without offline_access: no refresh token (SSO gives the code).
    let req2 = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid");
    let code2 = sso_code(&browser, &req2).await;
    let b2 = tokens(
        &req2.redeem(&http, &code2, &c.auth(), None).await,
        "no offline",
    );
    assert!(b2.get("refresh_token").is_none(), "{b2}");
    assert!(b2["id_token"].is_string());
    let (_, id2) = verify(b2["id_token"].as_str().unwrap(), &keys);
    assert_eq!(id2["nonce"], json!(req2.nonce));
    assert!(
        id2.get("email").is_none(),
        "email needs the email scope: {id2}"
    );

    // Without openid: an access token and no ID token.
    let req3 = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "profile");
    let code3 = sso_code(&browser, &req3).await;
    let b3 = tokens(
        &req3.redeem(&http, &code3, &c.auth(), None).await,
        "no openid",
    );
    assert!(b3.get("id_token").is_none(), "{b3}");

    // A public client in the master issuer works the same way.
    let master = rp::Tenant {
        tid: crate::support::MASTER.into(),
        slug: String::new(),
        issuer: s.base.clone(),
        email: crate::support::ADMIN_EMAIL.into(),
        user_id: String::new(),
    };
    let pc = client(&s, &admin, &master, json!({"client_type": "public"})).await;
    assert!(pc.secret.is_none());
    let mreq = AuthRequest::new(&s.base, &pc.id, REDIRECT, "openid");
    let mb = Browser::new();
    let page = mb.get(&mreq.url()).await;
    let csrf = page.set_cookie("vx_csrf").expect("vx_csrf cookie");
    assert!(csrf.contains("Path=/oauth/"), "{csrf}");
    let done = mb
        .login(
            &page,
            crate::support::ADMIN_EMAIL,
            crate::support::ADMIN_PASSWORD,
        )
        .await;
    let code = mreq.code_from(&done);
    let mbody = tokens(&mreq.redeem(&http, &code, &pc.auth(), None).await, "master");
    let (_, mid) = verify(
        mbody["id_token"].as_str().unwrap(),
        &rp::jwks(&http, &s.base).await,
    );
    assert_eq!(mid["iss"], json!(s.base));
    // A master session is not a session at the tenant issuer.
    let r = mb.get(&req2.fresh().url()).await;
    assert!(r.is_login_page(), "{}", r.describe());
}

#[tokio::test]
async fn sso_prompt_and_max_age() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "sso").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let browser = Browser::new();
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid");
    let code = login_for_code(&browser, &req, &t.email, PASSWORD).await;
    let first = tokens(&req.redeem(&http, &code, &c.auth(), None).await, "first");
    let keys = rp::jwks(&http, &t.issuer).await;
    let (_, id1) = verify(first["id_token"].as_str().unwrap(), &keys);

    // Same cookies: a code at once, same session.
    let r2 = req.fresh();
    let code = sso_code(&browser, &r2).await;
    let second = tokens(&r2.redeem(&http, &code, &c.auth(), None).await, "sso");
    let (_, id2) = verify(second["id_token"].as_str().unwrap(), &keys);
    assert_eq!(id2["sid"], id1["sid"]);
    assert_eq!(id2["auth_time"], id1["auth_time"]);

    // prompt=none with a session: a code at once.
    let r3 = req.fresh().with("prompt", "none");
    sso_code(&browser, &r3).await;

    // prompt=none without a session: login_required to the client.
    let stranger = Browser::new();
    let r4 = req.fresh().with("prompt", "none");
    let r = stranger.get(&r4.url()).await;
    assert_eq!(r4.error_from(&r), "login_required");

    // max_age within the session's age: a code at once.
    let r5 = req.fresh().with("max_age", "3600");
    sso_code(&browser, &r5).await;

    // prompt=login: the form again, even with a session.
    let r6 = req.fresh().with("prompt", "login");
    let page = browser.get(&r6.url()).await;
    assert!(page.is_login_page(), "prompt=login: {}", page.describe());

    // max_age=0 once the session is older than a second: the form again;
    // after it, a new auth_time.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r7 = req.fresh().with("max_age", "0");
    let page = browser.get(&r7.url()).await;
    assert!(page.is_login_page(), "max_age=0: {}", page.describe());
    // prompt=none with max_age=0 cannot be satisfied silently.
    let r8 = req.fresh().with("max_age", "0").with("prompt", "none");
    let r = browser.get(&r8.url()).await;
    assert_eq!(r8.error_from(&r), "login_required");
    let done = browser.login(&page, &t.email, PASSWORD).await;
    let code = r7.code_from(&done);
    let third = tokens(&r7.redeem(&http, &code, &c.auth(), None).await, "max_age");
    let (_, id3) = verify(third["id_token"].as_str().unwrap(), &keys);
    assert!(
        id3["auth_time"].as_i64().unwrap() > id1["auth_time"].as_i64().unwrap(),
        "{id3} vs {id1}"
    );
    // And SSO continues with the new session.
    sso_code(&browser, &req.fresh()).await;
}

#[tokio::test]
async fn consent_page_allow_deny_remembered_and_prompt_consent() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "consent").await;
    let c = client(&s, &admin, &t, json!({"require_consent": true})).await;
    let plain = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let browser = Browser::new();
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid profile");

    // Login, then the consent page; deny -> access_denied to the client.
    let page = browser.get(&req.url()).await;
    let consent = browser.login(&page, &t.email, PASSWORD).await;
    consent.assert_page(StatusCode::OK, "consent page");
    assert!(consent.is_consent_page(), "{}", consent.describe());
    let form = consent.form();
    assert!(form.hidden("flow").is_some() && form.hidden("csrf").is_some());
    assert_eq!(form.hidden("action"), Some("consent"));
    let denied = browser.consent(&consent, false).await;
    assert_eq!(req.error_from(&denied), "access_denied");

    // Nothing was remembered: the page comes again (no login: the session
    // lives); prompt=none says consent_required.
    let rn = req.fresh().with("prompt", "none");
    let r = browser.get(&rn.url()).await;
    assert_eq!(rn.error_from(&r), "consent_required");
    let r2 = req.fresh();
    let consent = browser.get(&r2.url()).await;
    assert!(consent.is_consent_page(), "{}", consent.describe());
    let allowed = browser.consent(&consent, true).await;
    let code = r2.code_from(&allowed);
    tokens(
        &r2.redeem(&http, &code, &c.auth(), None).await,
        "after consent",
    );

    // Remembered: no page next time, also with prompt=none and a subset.
    sso_code(&browser, &req.fresh()).await;
    sso_code(&browser, &req.fresh().with("prompt", "none")).await;
    sso_code(
        &browser,
        &AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid"),
    )
    .await;

    // A scope not consented yet asks again.
    let more = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid profile email");
    let r = browser.get(&more.url()).await;
    assert!(r.is_consent_page(), "new scope: {}", r.describe());

    // prompt=consent shows it even when everything was consented.
    let rc = req.fresh().with("prompt", "consent");
    let r = browser.get(&rc.url()).await;
    assert!(r.is_consent_page(), "prompt=consent: {}", r.describe());
    let code = rc.code_from(&browser.consent(&r, true).await);
    tokens(
        &rc.redeem(&http, &code, &c.auth(), None).await,
        "prompt=consent",
    );

    // A client without require_consent never shows it.
    sso_code(
        &browser,
        &AuthRequest::new(&t.issuer, &plain.id, REDIRECT, "openid profile email"),
    )
    .await;

    // Another user has not consented.
    s.create(
        &format!("/api/v1/tenants/{}/users", t.tid),
        &admin,
        json!({"email": "bob@consent.example", "password": PASSWORD, "email_verified": true}),
    )
    .await;
    let other = Browser::new();
    let r3 = req.fresh();
    let page = other.get(&r3.url()).await;
    let r = other.login(&page, "bob@consent.example", PASSWORD).await;
    assert!(r.is_consent_page(), "bob: {}", r.describe());
}

/// Code flow in a fresh browser; answers the token response.
async fn login_tokens(
    http: &reqwest::Client,
    t: &rp::Tenant,
    c: &rp::Client,
    scope: &str,
) -> (Browser, AuthRequest, Value) {
    let browser = Browser::new();
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, scope);
    let code = login_for_code(&browser, &req, &t.email, PASSWORD).await;
    let body = tokens(&req.redeem(http, &code, &c.auth(), None).await, "login");
    (browser, req, body)
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

#[tokio::test]
async fn refresh_rotation_and_reuse_revokes_the_family() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "rotation").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let (_b, _req, first) = login_tokens(&http, &t, &c, "openid email offline_access").await;
    let keys = rp::jwks(&http, &t.issuer).await;
    let (_, id0) = verify(first["id_token"].as_str().unwrap(), &keys);
    let rt0 = first["refresh_token"].as_str().unwrap().to_string();
    let at0 = first["access_token"].as_str().unwrap().to_string();

    // Rotation: each refresh answers a new refresh token and ID token.
    let r1 = tokens(&refresh(&http, &t.issuer, &c, &rt0).await, "refresh 1");
    let rt1 = r1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt0);
    let (_, id1) = verify(r1["id_token"].as_str().unwrap(), &keys);
    assert_eq!(id1["sub"], id0["sub"]);
    assert_eq!(id1["auth_time"], id0["auth_time"]);
    assert_eq!(
        id1["at_hash"],
        json!(rp::at_hash("RS256", r1["access_token"].as_str().unwrap()))
    );
    // Narrowing the scope is allowed.
    let r2 = rp::token(
        &http,
        &t.issuer,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("scope", "openid"),
        ],
        &c.auth(),
        None,
    )
    .await;
    let r2 = tokens(&r2, "refresh 2 narrowed");
    assert_eq!(r2["scope"], "openid");
    let rt2 = r2["refresh_token"].as_str().unwrap().to_string();
    let at2 = r2["access_token"].as_str().unwrap().to_string();
    assert!(active(&http, &t.issuer, &c.auth(), &at2).await);
    assert!(active(&http, &t.issuer, &c.auth(), &rt2).await);
    assert!(!active(&http, &t.issuer, &c.auth(), &rt1).await, "rotated");
    assert_eq!(
        rp::audit_total(&s, &admin, &t.tid, "oauth.refresh_token_reused").await,
        0
    );

    // Reusing the first token: invalid_grant, and the whole family is gone.
    let reuse = refresh(&http, &t.issuer, &c, &rt0).await;
    reuse.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "reuse");
    let newest = refresh(&http, &t.issuer, &c, &rt2).await;
    newest.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "newest after reuse",
    );
    assert!(!active(&http, &t.issuer, &c.auth(), &rt2).await);
    assert!(
        !active(&http, &t.issuer, &c.auth(), &at2).await,
        "access tokens of the family"
    );
    assert!(!active(&http, &t.issuer, &c.auth(), &at0).await);
    let ui = rp::userinfo(&http, &t.issuer, Some(&format!("Bearer {at2}")), None).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    assert_eq!(
        rp::audit_total(&s, &admin, &t.tid, "oauth.refresh_token_reused").await,
        1
    );

    // Another login starts an unaffected family.
    let (_b, _r, again) = login_tokens(&http, &t, &c, "openid offline_access").await;
    tokens(
        &refresh(
            &http,
            &t.issuer,
            &c,
            again["refresh_token"].as_str().unwrap(),
        )
        .await,
        "new family",
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_its_tokens() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "replay").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let browser = Browser::new();
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid offline_access");
    let code = login_for_code(&browser, &req, &t.email, PASSWORD).await;
    let first = tokens(&req.redeem(&http, &code, &c.auth(), None).await, "first");
    let at = first["access_token"].as_str().unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    assert!(active(&http, &t.issuer, &c.auth(), at).await);

    let again = req.redeem(&http, &code, &c.auth(), None).await;
    again.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "replay");
    assert!(again.body.get("access_token").is_none());
    assert!(
        !active(&http, &t.issuer, &c.auth(), at).await,
        "AT of a replayed code"
    );
    assert!(
        !active(&http, &t.issuer, &c.auth(), rt).await,
        "RT of a replayed code"
    );
    refresh(&http, &t.issuer, &c, rt).await.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "refresh after replay",
    );
    assert_eq!(
        rp::audit_total(&s, &admin, &t.tid, "oauth.code_replayed").await,
        1
    );
    // The browser session itself still works.
    let r2 = req.fresh();
    let code = sso_code(&browser, &r2).await;
    tokens(&r2.redeem(&http, &code, &c.auth(), None).await, "new code");
}

#[tokio::test]
async fn introspection_revocation_and_userinfo() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "tokens").await;
    let c = client(
        &s,
        &admin,
        &t,
        json!({"scopes": ["openid", "profile", "email", "phone", "offline_access"]}),
    )
    .await;
    let other = client(&s, &admin, &t, json!({})).await;
    let public = client(&s, &admin, &t, json!({"client_type": "public"})).await;
    let http = backchannel();
    let browser = Browser::new();

    // Userinfo releases claims by scope.
    let cases: [(&str, &[&str], &[&str]); 4] = [
        (
            "openid",
            &[],
            &["name", "email", "phone_number", "given_name"],
        ),
        (
            "openid profile",
            &[
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "updated_at",
            ],
            &["email", "phone_number"],
        ),
        (
            "openid email",
            &["email", "email_verified"],
            &["name", "phone_number"],
        ),
        ("openid phone", &["phone_number"], &["name", "email"]),
    ];
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid");
    login_for_code(&browser, &req, &t.email, PASSWORD).await;
    for (scope, present, absent) in cases {
        let r = AuthRequest::new(&t.issuer, &c.id, REDIRECT, scope);
        let code = sso_code(&browser, &r).await;
        let body = tokens(&r.redeem(&http, &code, &c.auth(), None).await, scope);
        let at = body["access_token"].as_str().unwrap();
        let ui = rp::userinfo(&http, &t.issuer, Some(&format!("Bearer {at}")), None).await;
        assert_eq!(ui.status, StatusCode::OK, "{scope}: {}", ui.describe());
        assert_eq!(ui.body["sub"], json!(t.user_id));
        for k in present {
            assert!(
                ui.body.get(*k).is_some_and(|v| !v.is_null()),
                "{scope}: {k} missing: {}",
                ui.body
            );
        }
        for k in absent {
            assert!(
                ui.body.get(*k).is_none(),
                "{scope}: {k} released: {}",
                ui.body
            );
        }
        if scope == "openid email" {
            assert_eq!(ui.body["email"], json!(t.email));
            assert_eq!(ui.body["email_verified"], json!(true));
        }
        if scope == "openid phone" {
            assert_eq!(ui.body["phone_number"], "+441234567890");
        }
        // POST works too.
        let post = http
            .post(format!("{}/oauth/userinfo", t.issuer))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), StatusCode::OK);
    }
    // Without openid: 403 insufficient_scope.
    let r = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "profile");
    let code = sso_code(&browser, &r).await;
    let body = tokens(
        &r.redeem(&http, &code, &c.auth(), None).await,
        "profile only",
    );
    let ui = rp::userinfo(
        &http,
        &t.issuer,
        Some(&format!(
            "Bearer {}",
            body["access_token"].as_str().unwrap()
        )),
        None,
    )
    .await;
    assert_eq!(ui.status, StatusCode::FORBIDDEN, "{}", ui.describe());
    assert!(
        ui.header("www-authenticate")
            .is_some_and(|w| w.contains("insufficient_scope"))
    );

    // Introspection of live tokens.
    let r = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid email offline_access");
    let code = sso_code(&browser, &r).await;
    let body = tokens(&r.redeem(&http, &code, &c.auth(), None).await, "full");
    let at = body["access_token"].as_str().unwrap().to_string();
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let i = rp::introspect(&http, &t.issuer, &c.auth(), &at).await;
    assert_eq!(i.status, StatusCode::OK, "{}", i.describe());
    assert_eq!(i.body["active"], true);
    assert_eq!(i.body["sub"], json!(t.user_id));
    assert_eq!(i.body["client_id"], json!(c.id));
    assert_eq!(i.body["iss"], json!(t.issuer));
    assert_eq!(i.body["token_type"], "Bearer");
    assert_eq!(i.body["username"], json!(t.email));
    assert_eq!(
        strs(&json!(
            i.body["scope"]
                .as_str()
                .unwrap()
                .split(' ')
                .collect::<Vec<_>>()
        )),
        set(&["openid", "email", "offline_access"])
    );
    assert!(i.body["exp"].as_i64().unwrap() > rp::now());
    let i = rp::introspect(&http, &t.issuer, &c.auth(), &rt).await;
    assert_eq!(i.body["active"], true, "{}", i.describe());
    // Another confidential client of the tenant may introspect too
    // (introspection is a resource-server function).
    assert!(active(&http, &t.issuer, &other.auth(), &at).await);
    // Public clients may not introspect.
    let i = rp::introspect(&http, &t.issuer, &public.auth(), &at).await;
    i.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "public introspection",
    );
    // Garbage is inactive, not an error.
    assert!(!active(&http, &t.issuer, &c.auth(), "not-a-token").await);
    assert!(!active(&http, &t.issuer, &c.auth(), "a.b.c").await);

    // Revocation by another client changes nothing (RFC 7009 §2.1), still 200.
    let r = rp::revoke(&http, &t.issuer, &other.auth(), &at).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    let r = rp::revoke(&http, &t.issuer, &other.auth(), &rt).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert!(active(&http, &t.issuer, &c.auth(), &at).await);
    assert!(active(&http, &t.issuer, &c.auth(), &rt).await);
    // Unknown token: 200.
    let r = rp::revoke(&http, &t.issuer, &c.auth(), "unknown-token").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());

    // Revoking the access token: inactive, userinfo 401 invalid_token.
    let r = rp::revoke(&http, &t.issuer, &c.auth(), &at).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert!(!active(&http, &t.issuer, &c.auth(), &at).await);
    let ui = rp::userinfo(&http, &t.issuer, Some(&format!("Bearer {at}")), None).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    let www = ui.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer") && www.contains("invalid_token"),
        "{www}"
    );
    // The refresh token of the same grant lives on.
    let r2 = tokens(
        &refresh(&http, &t.issuer, &c, &rt).await,
        "refresh after AT revoked",
    );
    let rt2 = r2["refresh_token"].as_str().unwrap().to_string();
    let at2 = r2["access_token"].as_str().unwrap().to_string();

    // Revoking the refresh token: refresh fails, its access tokens die.
    let r = rp::revoke(&http, &t.issuer, &c.auth(), &rt2).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    refresh(&http, &t.issuer, &c, &rt2)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "revoked RT");
    assert!(!active(&http, &t.issuer, &c.auth(), &rt2).await);
    assert!(!active(&http, &t.issuer, &c.auth(), &at2).await);

    // A public client revokes its own token with client_id only.
    let pr = AuthRequest::new(&t.issuer, &public.id, REDIRECT, "openid offline_access");
    let code = sso_code(&browser, &pr).await;
    let pb = tokens(
        &pr.redeem(&http, &code, &public.auth(), None).await,
        "public",
    );
    let prt = pb["refresh_token"].as_str().unwrap();
    let r = rp::revoke(&http, &t.issuer, &public.auth(), prt).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    refresh(&http, &t.issuer, &public, prt)
        .await
        .assert_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "public revoked RT",
        );
}

// ---------------------------------------------------------------- DPoP

#[tokio::test]
async fn dpop_binds_tokens_to_the_key() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "dpop").await;
    let c = client(&s, &admin, &t, json!({"client_type": "public"})).await;
    let conf = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let browser = Browser::new();
    let key = TestKey::es256();
    let token_url = format!("{}/oauth/token", t.issuer);
    let ui_url = format!("{}/oauth/userinfo", t.issuer);

    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid offline_access");
    let code = login_for_code(&browser, &req, &t.email, PASSWORD).await;
    let proof = key.dpop("POST", &token_url, None, None);
    let r = req.redeem(&http, &code, &c.auth(), Some(&proof)).await;
    let body = tokens(&r, "DPoP code redemption");
    assert!(
        r.header("dpop-nonce").is_some(),
        "token responses to DPoP carry a nonce"
    );
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap().to_string();
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let (_, claims) = verify(&at, &rp::jwks(&http, &t.issuer).await);
    assert_eq!(claims["cnf"]["jkt"], json!(key.thumbprint()), "{claims}");
    let i = rp::introspect(&http, &t.issuer, &conf.auth(), &at).await;
    assert_eq!(i.body["active"], true);
    assert_eq!(i.body["token_type"], "DPoP");
    assert_eq!(i.body["cnf"]["jkt"], json!(key.thumbprint()));

    // Userinfo with the DPoP scheme and a proof carrying ath.
    let dpop_auth = format!("DPoP {at}");
    let ok = rp::userinfo(
        &http,
        &t.issuer,
        Some(&dpop_auth),
        Some(&key.dpop("GET", &ui_url, Some(&at), None)),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.describe());
    assert_eq!(ok.body["sub"], json!(t.user_id));

    let expect_401 = |r: rp::Reply, error: &str, what: &str| {
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            r.describe()
        );
        assert_eq!(r.error(), error, "{what}: {}", r.describe());
        let www = r.header("www-authenticate").unwrap_or_default();
        assert!(www.contains(error), "{what}: WWW-Authenticate {www}");
    };
    // The same token as a bearer token (with or without a proof).
    let r = rp::userinfo(&http, &t.issuer, Some(&format!("Bearer {at}")), None).await;
    expect_401(r, "invalid_token", "bearer downgrade");
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&format!("Bearer {at}")),
        Some(&key.dpop("GET", &ui_url, Some(&at), None)),
    )
    .await;
    expect_401(r, "invalid_token", "bearer downgrade with proof");
    // DPoP scheme without a proof.
    let r = rp::userinfo(&http, &t.issuer, Some(&dpop_auth), None).await;
    expect_401(r, "invalid_dpop_proof", "no proof");
    // Proof for another URL, another method.
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&dpop_auth),
        Some(&key.dpop("GET", &token_url, Some(&at), None)),
    )
    .await;
    expect_401(r, "invalid_dpop_proof", "other URL");
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&dpop_auth),
        Some(&key.dpop("POST", &ui_url, Some(&at), None)),
    )
    .await;
    expect_401(r, "invalid_dpop_proof", "other method");
    // Reused jti.
    let once = key.dpop("GET", &ui_url, Some(&at), None);
    let r = rp::userinfo(&http, &t.issuer, Some(&dpop_auth), Some(&once)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    let r = rp::userinfo(&http, &t.issuer, Some(&dpop_auth), Some(&once)).await;
    expect_401(r, "invalid_dpop_proof", "reused jti");
    // Another key.
    let thief = TestKey::es256();
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&dpop_auth),
        Some(&thief.dpop("GET", &ui_url, Some(&at), None)),
    )
    .await;
    expect_401(r, "invalid_dpop_proof", "wrong key");
    // No ath, and ath of another token.
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&dpop_auth),
        Some(&key.dpop("GET", &ui_url, None, None)),
    )
    .await;
    expect_401(r, "invalid_dpop_proof", "missing ath");
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&dpop_auth),
        Some(&key.dpop("GET", &ui_url, Some("another-token"), None)),
    )
    .await;
    expect_401(r, "invalid_dpop_proof", "wrong ath");
    // Stale iat.
    let stale = key.dpop_with(
        "ES256",
        &json!({"jti": rp::random(16), "htm": "GET", "htu": ui_url, "iat": rp::now() - 600, "ath": rp::ath(&at)}),
    );
    let r = rp::userinfo(&http, &t.issuer, Some(&dpop_auth), Some(&stale)).await;
    expect_401(r, "invalid_dpop_proof", "stale iat");
    // A bearer token sent with the DPoP scheme.
    let bearer_req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid");
    let code = sso_code(&browser, &bearer_req).await;
    let bearer = tokens(
        &bearer_req.redeem(&http, &code, &c.auth(), None).await,
        "bearer",
    );
    assert_eq!(bearer["token_type"], "Bearer");
    let bat = bearer["access_token"].as_str().unwrap();
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&format!("DPoP {bat}")),
        Some(&key.dpop("GET", &ui_url, Some(bat), None)),
    )
    .await;
    expect_401(r, "invalid_token", "bearer token with DPoP scheme");

    // Refresh of a public client's DPoP-bound token: same key only.
    let refresh_with = |proof: Option<String>| {
        let http = http.clone();
        let issuer = t.issuer.clone();
        let auth = c.auth();
        let rt = rt.clone();
        async move {
            rp::token(
                &http,
                &issuer,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                &auth,
                proof.as_deref(),
            )
            .await
        }
    };
    let r = refresh_with(Some(thief.dpop("POST", &token_url, None, None))).await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "refresh with another key",
    );
    let r = refresh_with(None).await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "refresh without proof",
    );
    // Those failures did not rotate the token: the right key still works.
    let r = refresh_with(Some(key.dpop("POST", &token_url, None, None))).await;
    let body = tokens(&r, "refresh with the key");
    assert_eq!(body["token_type"], "DPoP");
    let (_, claims) = verify(
        body["access_token"].as_str().unwrap(),
        &rp::jwks(&http, &t.issuer).await,
    );
    assert_eq!(claims["cnf"]["jkt"], json!(key.thumbprint()));
}

#[tokio::test]
async fn dpop_server_nonce_when_the_tenant_requires_it() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "dpopnonce").await;
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}", t.tid),
            &admin,
            json!({"settings": {"dpop_nonce_required": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let c = client(&s, &admin, &t, json!({"client_type": "public"})).await;
    let http = backchannel();
    let browser = Browser::new();
    let key = TestKey::es256();
    let token_url = format!("{}/oauth/token", t.issuer);
    let ui_url = format!("{}/oauth/userinfo", t.issuer);

    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid");
    let code = login_for_code(&browser, &req, &t.email, PASSWORD).await;
    let r = req
        .redeem(
            &http,
            &code,
            &c.auth(),
            Some(&key.dpop("POST", &token_url, None, None)),
        )
        .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce", "no nonce");
    let nonce = r.header("dpop-nonce").expect("DPoP-Nonce header");
    // A made-up nonce is refused the same way.
    let r = req
        .redeem(
            &http,
            &code,
            &c.auth(),
            Some(&key.dpop("POST", &token_url, None, Some("made-up"))),
        )
        .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "use_dpop_nonce", "bad nonce");
    assert!(r.header("dpop-nonce").is_some());
    // With the nonce: tokens (the code survived the refusals).
    let r = req
        .redeem(
            &http,
            &code,
            &c.auth(),
            Some(&key.dpop("POST", &token_url, None, Some(&nonce))),
        )
        .await;
    let body = tokens(&r, "with nonce");
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap();

    // Userinfo also asks for the nonce: 401 with DPoP-Nonce.
    let auth = format!("DPoP {at}");
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&auth),
        Some(&key.dpop("GET", &ui_url, Some(at), None)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.describe());
    assert_eq!(r.error(), "use_dpop_nonce");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|w| w.starts_with("DPoP") && w.contains("use_dpop_nonce"))
    );
    let nonce = r.header("dpop-nonce").expect("DPoP-Nonce at userinfo");
    let r = rp::userinfo(
        &http,
        &t.issuer,
        Some(&auth),
        Some(&key.dpop("GET", &ui_url, Some(at), Some(&nonce))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
}

#[tokio::test]
async fn dpop_required_clients_and_dpop_jkt() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "dpopreq").await;
    let bound = client(
        &s,
        &admin,
        &t,
        json!({"dpop_bound_access_tokens": true, "grant_types": ["authorization_code", "client_credentials"]}),
    )
    .await;
    let public = client(&s, &admin, &t, json!({"client_type": "public"})).await;
    let http = backchannel();
    let browser = Browser::new();
    let key = TestKey::es256();
    let token_url = format!("{}/oauth/token", t.issuer);

    // A client registered with dpop_bound_access_tokens needs a proof.
    let r = rp::token(
        &http,
        &t.issuer,
        &[("grant_type", "client_credentials")],
        &bound.auth(),
        None,
    )
    .await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "cc without proof",
    );
    let r = rp::token(
        &http,
        &t.issuer,
        &[("grant_type", "client_credentials")],
        &bound.auth(),
        Some(&key.dpop("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(tokens(&r, "cc with proof")["token_type"], "DPoP");
    let req = AuthRequest::new(&t.issuer, &bound.id, REDIRECT, "openid");
    let code = login_for_code(&browser, &req, &t.email, PASSWORD).await;
    let r = req.redeem(&http, &code, &bound.auth(), None).await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "code without proof",
    );
    let r = req
        .redeem(
            &http,
            &code,
            &bound.auth(),
            Some(&key.dpop("POST", &token_url, None, None)),
        )
        .await;
    assert_eq!(tokens(&r, "code with proof")["token_type"], "DPoP");

    // dpop_jkt binds the code to a key (RFC 9449 §10).
    let req = AuthRequest::new(&t.issuer, &public.id, REDIRECT, "openid")
        .with("dpop_jkt", &key.thumbprint());
    let code = sso_code(&browser, &req).await;
    let other = TestKey::es256();
    let r = req
        .redeem(
            &http,
            &code,
            &public.auth(),
            Some(&other.dpop("POST", &token_url, None, None)),
        )
        .await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "code bound to another key",
    );
    let r = req.redeem(&http, &code, &public.auth(), None).await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "bound code without proof",
    );
    let r = req
        .redeem(
            &http,
            &code,
            &public.auth(),
            Some(&key.dpop("POST", &token_url, None, None)),
        )
        .await;
    let body = tokens(&r, "bound code with its key");
    let (_, claims) = verify(
        body["access_token"].as_str().unwrap(),
        &rp::jwks(&http, &t.issuer).await,
    );
    assert_eq!(claims["cnf"]["jkt"], json!(key.thumbprint()));
}

#[tokio::test]
async fn every_advertised_dpop_algorithm_is_accepted() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "dpopalgs").await;
    let c = client(
        &s,
        &admin,
        &t,
        json!({"grant_types": ["client_credentials"]}),
    )
    .await;
    let http = backchannel();
    let token_url = format!("{}/oauth/token", t.issuer);
    let meta = rp::discovery(&http, &t.issuer).await.body;
    let rsa = TestKey::rsa();
    let ec = TestKey::es256();
    let ed = TestKey::ed25519();
    for alg in strs(&meta["dpop_signing_alg_values_supported"]) {
        let key = match alg.as_str() {
            "RS256" | "PS256" => &rsa,
            "ES256" => &ec,
            "EdDSA" | "Ed25519" => &ed,
            other => panic!("advertised DPoP alg {other} unknown to this test"),
        };
        let proof = key.dpop_with(
            &alg,
            &json!({"jti": rp::random(16), "htm": "POST", "htu": token_url, "iat": rp::now()}),
        );
        let r = rp::token(
            &http,
            &t.issuer,
            &[("grant_type", "client_credentials")],
            &c.auth(),
            Some(&proof),
        )
        .await;
        let body = tokens(&r, &format!("DPoP proof with {alg}"));
        let (_, claims) = verify(
            body["access_token"].as_str().unwrap(),
            &rp::jwks(&http, &t.issuer).await,
        );
        assert_eq!(claims["cnf"]["jkt"], json!(key.thumbprint()), "{alg}");
    }
    // HS256 and none are not DPoP algorithms.
    let unsigned = format!(
        "{}.{}.",
        rp::b64(
            serde_json::to_vec(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": ec.public_jwk()}))
                .unwrap()
        ),
        rp::b64(
            serde_json::to_vec(
                &json!({"jti": rp::random(16), "htm": "POST", "htu": token_url, "iat": rp::now()})
            )
            .unwrap()
        )
    );
    let r = rp::token(
        &http,
        &t.issuer,
        &[("grant_type", "client_credentials")],
        &c.auth(),
        Some(&unsigned),
    )
    .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", "alg none");
}

// ---------------------------------------------------------------- private_key_jwt

#[tokio::test]
async fn private_key_jwt_client_credentials() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "pkjwt").await;
    let key = TestKey::es256();
    let c = client(
        &s,
        &admin,
        &t,
        json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.registered_jwk()]},
            "scopes": ["api.read"]
        }),
    )
    .await;
    assert!(c.secret.is_none(), "private_key_jwt clients get no secret");
    let http = backchannel();
    let token_url = format!("{}/oauth/token", t.issuer);
    let cc = [("grant_type", "client_credentials")];

    let assertion = key.client_assertion(&c.id, &token_url);
    let r = rp::token(
        &http,
        &t.issuer,
        &cc,
        &rp::Auth::Assertion(assertion.clone()),
        None,
    )
    .await;
    let body = tokens(&r, "private_key_jwt");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api.read");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let (_, claims) = verify(
        body["access_token"].as_str().unwrap(),
        &rp::jwks(&http, &t.issuer).await,
    );
    assert_eq!(claims["client_id"], json!(c.id));
    assert_eq!(claims["sub_type"], "client");

    // The same assertion again: invalid_client.
    let r = rp::token(&http, &t.issuer, &cc, &rp::Auth::Assertion(assertion), None).await;
    r.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "replayed assertion",
    );
    // Signed by another key claiming the registered kid.
    let mut thief = TestKey::es256();
    thief.kid = key.kid.clone();
    let r = rp::token(
        &http,
        &t.issuer,
        &cc,
        &rp::Auth::Assertion(thief.client_assertion(&c.id, &token_url)),
        None,
    )
    .await;
    r.assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "wrong key");
    // Claims that must be right.
    let t0 = rp::now();
    let bad_claims = [
        (
            "expired",
            json!({"iss": c.id, "sub": c.id, "aud": token_url, "iat": t0 - 600, "exp": t0 - 300, "jti": rp::random(16)}),
        ),
        (
            "no exp",
            json!({"iss": c.id, "sub": c.id, "aud": token_url, "jti": rp::random(16)}),
        ),
        (
            "no jti",
            json!({"iss": c.id, "sub": c.id, "aud": token_url, "exp": t0 + 60}),
        ),
        (
            "other aud",
            json!({"iss": c.id, "sub": c.id, "aud": format!("{}/oauth/token", s.base), "exp": t0 + 60, "jti": rp::random(16)}),
        ),
        (
            "iss differs",
            json!({"iss": "someone", "sub": c.id, "aud": token_url, "exp": t0 + 60, "jti": rp::random(16)}),
        ),
    ];
    for (what, claims) in bad_claims {
        let r = rp::token(
            &http,
            &t.issuer,
            &cc,
            &rp::Auth::Assertion(key.client_assertion_with(&claims)),
            None,
        )
        .await;
        r.assert_oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", what);
    }
    // A secret is no way in for this client.
    let r = rp::token(
        &http,
        &t.issuer,
        &cc,
        &rp::Auth::basic(&c.id, "guess"),
        None,
    )
    .await;
    r.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "secret for a pkjwt client",
    );
    // A fresh assertion still works.
    let r = rp::token(
        &http,
        &t.issuer,
        &cc,
        &rp::Auth::Assertion(key.client_assertion(&c.id, &token_url)),
        None,
    )
    .await;
    tokens(&r, "fresh assertion");
    // The issuer identifier is an accepted audience too.
    let r = rp::token(
        &http,
        &t.issuer,
        &cc,
        &rp::Auth::Assertion(key.client_assertion(&c.id, &t.issuer)),
        None,
    )
    .await;
    tokens(&r, "issuer as audience");
}

// ---------------------------------------------------------------- logout

#[tokio::test]
async fn rp_initiated_logout() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "logout").await;
    let after = "https://rp.example.test/bye";
    let c = client(
        &s,
        &admin,
        &t,
        json!({"post_logout_redirect_uris": [after]}),
    )
    .await;
    let http = backchannel();
    let logout_url = |params: &[(&str, &str)]| {
        let mut u = url::Url::parse(&format!("{}/oauth/logout", t.issuer)).unwrap();
        for (k, v) in params {
            u.query_pairs_mut().append_pair(k, v);
        }
        u.to_string()
    };

    let (browser, req, first) = login_tokens(&http, &t, &c, "openid offline_access").await;
    let idt = first["id_token"].as_str().unwrap().to_string();
    let at = first["access_token"].as_str().unwrap().to_string();
    let rt = first["refresh_token"].as_str().unwrap().to_string();

    // An unregistered post_logout_redirect_uri: an error page, nothing ends.
    let r = browser
        .get(&logout_url(&[
            ("id_token_hint", &idt),
            ("post_logout_redirect_uri", "https://evil.example/bye"),
            ("state", "s1"),
        ]))
        .await;
    r.assert_error_page("unregistered post_logout_redirect_uri");
    assert!(r.set_cookie("vx_session").is_none());
    assert!(active(&http, &t.issuer, &c.auth(), &at).await);
    assert!(active(&http, &t.issuer, &c.auth(), &rt).await);
    sso_code(&browser, &req.fresh()).await;

    // A forged hint: an error page, nothing ends.
    let (h, _) = rp::decode(&idt);
    let forged = TestKey::es256().sign(
        "ES256",
        json!({"typ": "JWT", "kid": h["kid"]}),
        &rp::decode(&idt).1,
    );
    let r = browser
        .get(&logout_url(&[
            ("id_token_hint", &forged),
            ("post_logout_redirect_uri", after),
        ]))
        .await;
    r.assert_error_page("forged id_token_hint");
    assert!(active(&http, &t.issuer, &c.auth(), &at).await);

    // A second browser signs in; keep its session cookie to replay it
    // after logout.
    let b2 = Browser::new();
    let r2 = req.fresh();
    let page = b2.get(&r2.url()).await;
    let done2 = b2.login(&page, &t.email, PASSWORD).await;
    let cookie2 = done2.set_cookie("vx_session").unwrap();
    let cookie2 = cookie2.split(';').next().unwrap().to_string();
    let code2 = r2.code_from(&done2);
    let second = tokens(
        &r2.redeem(&http, &code2, &c.auth(), None).await,
        "second browser",
    );
    let idt2 = second["id_token"].as_str().unwrap().to_string();
    let at2 = second["access_token"].as_str().unwrap().to_string();
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();

    // Logout in the second browser with a hint and a registered URI.
    let r = b2
        .get(&logout_url(&[
            ("id_token_hint", &idt2),
            ("post_logout_redirect_uri", after),
            ("state", "bye-state"),
        ]))
        .await;
    assert!(
        r.status == StatusCode::SEE_OTHER || r.status == StatusCode::FOUND,
        "{}",
        r.describe()
    );
    let loc = r.location().unwrap();
    assert_eq!(loc.as_str(), format!("{after}?state=bye-state"));
    let cleared = r.set_cookie("vx_session").expect("session cookie cleared");
    assert!(
        cleared.contains("Max-Age=0") || cleared.to_ascii_lowercase().contains("expires="),
        "{cleared}"
    );
    // No more SSO in that browser, nor with the old cookie replayed.
    let page = b2.get(&r2.fresh().url()).await;
    assert!(page.is_login_page(), "after logout: {}", page.describe());
    let replay = backchannel()
        .get(r2.fresh().url())
        .header("cookie", &cookie2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::OK,
        "old session cookie must not give SSO"
    );
    // That session's tokens are inactive; the first browser's are not.
    assert!(!active(&http, &t.issuer, &c.auth(), &at2).await);
    assert!(!active(&http, &t.issuer, &c.auth(), &rt2).await);
    refresh(&http, &t.issuer, &c, &rt2)
        .await
        .assert_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh after logout",
        );
    assert!(active(&http, &t.issuer, &c.auth(), &at).await);
    sso_code(&browser, &req.fresh()).await;

    // Logout without a hint asks to confirm; nothing ends until confirmed.
    let r = browser.get(&logout_url(&[])).await;
    r.assert_page(StatusCode::OK, "logout confirmation");
    assert!(r.text.contains(r#"id="logout""#), "{}", r.describe());
    sso_code(&browser, &req.fresh()).await;
    let done = browser.submit(&r, &[], Some("logout")).await;
    assert!(
        done.status.is_success() || done.status.is_redirection(),
        "{}",
        done.describe()
    );
    let page = browser.get(&req.fresh().url()).await;
    assert!(
        page.is_login_page(),
        "after confirmed logout: {}",
        page.describe()
    );
    assert!(!active(&http, &t.issuer, &c.auth(), &at).await);
    assert!(!active(&http, &t.issuer, &c.auth(), &rt).await);
}

// ---------------------------------------------------------------- ID token algs

#[tokio::test]
async fn id_token_algorithm_per_client() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "idalgs").await;
    let http = backchannel();
    let browser = Browser::new();
    let keys = rp::jwks(&http, &t.issuer).await;
    let mut logged_in = false;
    for (alg, kty) in [
        (None, "RSA"),
        (Some("RS256"), "RSA"),
        (Some("ES256"), "EC"),
        (Some("EdDSA"), "OKP"),
        (Some("Ed25519"), "OKP"),
    ] {
        let body = match alg {
            Some(a) => json!({"client_type": "public", "id_token_signed_response_alg": a}),
            None => json!({"client_type": "public"}),
        };
        let c = client(&s, &admin, &t, body).await;
        let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid offline_access");
        let code = if logged_in {
            sso_code(&browser, &req).await
        } else {
            logged_in = true;
            login_for_code(&browser, &req, &t.email, PASSWORD).await
        };
        let b = tokens(&req.redeem(&http, &code, &c.auth(), None).await, "code");
        let expected = alg.unwrap_or("RS256");
        for (what, body) in [
            ("code", b.clone()),
            (
                "refresh",
                tokens(
                    &refresh(&http, &t.issuer, &c, b["refresh_token"].as_str().unwrap()).await,
                    "refresh",
                ),
            ),
        ] {
            let idt = body["id_token"].as_str().unwrap();
            let (h, claims) = verify(idt, &keys);
            assert_eq!(h["alg"], expected, "{what}: {h}");
            let kid = h["kid"].as_str().unwrap();
            let jwk = keys["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid)
                .unwrap();
            assert_eq!(jwk["kty"], kty, "{what} {expected}: {jwk}");
            assert_eq!(claims["aud"], json!(c.id));
            assert_eq!(
                claims["at_hash"],
                json!(rp::at_hash(
                    expected,
                    body["access_token"].as_str().unwrap()
                )),
                "{what} {expected}"
            );
            // Tampering breaks the signature.
            let mut parts: Vec<String> = idt.split('.').map(String::from).collect();
            let mut c2 = claims.clone();
            c2["sub"] = json!("someone-else");
            parts[1] = rp::b64(serde_json::to_vec(&c2).unwrap());
            assert!(
                rp::try_verify(&parts.join("."), &keys).is_err(),
                "{expected}"
            );
        }
    }
}

#[tokio::test]
async fn login_form_refuses_missing_csrf_and_a_tampered_flow() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "csrf").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let browser = Browser::new();
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid");
    let page = browser.get(&req.url()).await;
    let form = page.form();
    let mut fields: Vec<(String, String)> = form
        .inputs
        .iter()
        .map(|(n, _, v)| (n.clone(), v.clone()))
        .collect();
    for f in fields.iter_mut() {
        match f.0.as_str() {
            "username" => f.1 = t.email.clone(),
            "password" => f.1 = PASSWORD.into(),
            _ => {}
        }
    }
    // Without the CSRF cookie (another browser): refused, no session.
    let r = Browser::new().post(&form.action, &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.describe());
    assert!(r.set_cookie("vx_session").is_none());
    assert!(r.header("location").is_none());
    // With a wrong csrf field: refused.
    let wrong: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                if n == "csrf" {
                    rp::random(32)
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let r = browser.post(&form.action, &wrong).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.describe());
    // A tampered flow: an error page, never a redirect.
    let tampered: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                if n == "flow" {
                    format!("{v}x")
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let r = browser.post(&form.action, &tampered).await;
    r.assert_error_page("tampered flow");
    // None of this signed the browser in.
    let r = browser.get(&req.fresh().url()).await;
    assert!(r.is_login_page(), "{}", r.describe());
    // The untouched form still works.
    let done = browser.login(&page, &t.email, PASSWORD).await;
    req.code_from(&done);
}

// ---------------------------------------------------------------- races and lifecycles

#[tokio::test]
async fn concurrent_redemptions_of_a_code_have_exactly_one_winner() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "races").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let browser = Browser::new();
    const N: usize = 8;

    // The same code redeemed N times at once.
    let req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid offline_access");
    let code = login_for_code(&browser, &req, &t.email, PASSWORD).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..N {
        let (http, req, code, auth) = (http.clone(), req.clone(), code.clone(), c.auth());
        set.spawn(async move { req.redeem(&http, &code, &auth, None).await });
    }
    let replies = set.join_all().await;
    let winners: Vec<&rp::Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:#?}",
        replies.iter().map(|r| r.describe()).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status != StatusCode::OK) {
        r.assert_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "losing redemption",
        );
    }
    // The losers were replays: the winner's tokens are revoked.
    let at = winners[0].body["access_token"].as_str().unwrap();
    assert!(
        !active(&http, &t.issuer, &c.auth(), at).await,
        "winner's AT after a replay"
    );
    // ... and the replay is a security event in the audit log, however the
    // race was lost.
    assert!(
        rp::audit_total(&s, &admin, &t.tid, "oauth.code_replayed").await >= 1,
        "a concurrent code replay left no oauth.code_replayed audit record"
    );
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_have_exactly_one_winner() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "racesrt").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let browser = Browser::new();
    const N: usize = 8;

    // The same refresh token rotated N times at once.
    let r2 = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid offline_access");
    let code = login_for_code(&browser, &r2, &t.email, PASSWORD).await;
    let body = tokens(
        &r2.redeem(&http, &code, &c.auth(), None).await,
        "second code",
    );
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..N {
        let (http, issuer, rt, auth) = (http.clone(), t.issuer.clone(), rt.clone(), c.auth());
        set.spawn(async move {
            rp::token(
                &http,
                &issuer,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                &auth,
                None,
            )
            .await
        });
    }
    let replies = set.join_all().await;
    let winners: Vec<&rp::Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:#?}",
        replies.iter().map(|r| r.describe()).collect::<Vec<_>>()
    );
    for r in replies.iter().filter(|r| r.status != StatusCode::OK) {
        r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "losing refresh");
    }
    // Reuse was detected: the family, including the winner's token, is gone.
    let newest = winners[0].body["refresh_token"].as_str().unwrap();
    refresh(&http, &t.issuer, &c, newest)
        .await
        .assert_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "winner after the race",
        );
    assert!(
        rp::audit_total(&s, &admin, &t.tid, "oauth.refresh_token_reused").await >= 1,
        "a concurrent refresh token reuse left no oauth.refresh_token_reused audit record"
    );
}

#[tokio::test]
async fn logout_also_voids_codes_issued_in_the_ended_session() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "logoutcode").await;
    let after = "https://rp.example.test/bye";
    let c = client(
        &s,
        &admin,
        &t,
        json!({"post_logout_redirect_uris": [after]}),
    )
    .await;
    let http = backchannel();
    let (browser, req, first) = login_tokens(&http, &t, &c, "openid offline_access").await;
    // A code issued in the session but not yet redeemed.
    let pending = req.fresh();
    let code = sso_code(&browser, &pending).await;
    let mut u = url::Url::parse(&format!("{}/oauth/logout", t.issuer)).unwrap();
    u.query_pairs_mut()
        .append_pair("id_token_hint", first["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", after);
    let r = browser.get(u.as_str()).await;
    assert!(r.status.is_redirection(), "{}", r.describe());
    assert!(
        !active(
            &http,
            &t.issuer,
            &c.auth(),
            first["refresh_token"].as_str().unwrap()
        )
        .await
    );
    // Redeeming it now must not create a live grant for the ended session.
    let r = pending.redeem(&http, &code, &c.auth(), None).await;
    if r.status == StatusCode::OK {
        let at = r.body["access_token"].as_str().unwrap();
        let rt = r.body["refresh_token"].as_str().unwrap();
        panic!(
            "a code from a session ended by logout was redeemed: AT active={}, RT active={}; {}",
            active(&http, &t.issuer, &c.auth(), at).await,
            active(&http, &t.issuer, &c.auth(), rt).await,
            r.describe()
        );
    }
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "code of an ended session",
    );
}

#[tokio::test]
async fn a_disabled_user_loses_sso_and_tokens() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "disabled").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let (browser, req, first) = login_tokens(&http, &t, &c, "openid offline_access").await;
    let at = first["access_token"].as_str().unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/users/{}", t.tid, t.user_id),
            &admin,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(!active(&http, &t.issuer, &c.auth(), at).await);
    let ui = rp::userinfo(&http, &t.issuer, Some(&format!("Bearer {at}")), None).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    refresh(&http, &t.issuer, &c, rt).await.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "disabled user's refresh",
    );
    let page = browser.get(&req.fresh().url()).await;
    assert!(
        page.is_login_page(),
        "SSO of a disabled user: {}",
        page.describe()
    );
    let rn = req.fresh().with("prompt", "none");
    let r = browser.get(&rn.url()).await;
    assert_eq!(rn.error_from(&r), "login_required");
    let r = browser.login(&page, &t.email, PASSWORD).await;
    assert!(
        r.status.is_client_error() && r.header("location").is_none(),
        "a disabled user signed in: {}",
        r.describe()
    );
    assert!(r.set_cookie("vx_session").is_none());
}

#[tokio::test]
async fn state_and_nonce_round_trip_and_the_request_may_be_posted() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "roundtrip").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let browser = Browser::new();
    let mut req = AuthRequest::new(&t.issuer, &c.id, REDIRECT, "openid");
    req.state = "a&b=c d+e/?#%25é\"<>".into();
    req.nonce = "n&=+ é".into();
    // OIDC Core §3.1.2.1: the authorization request may be a form POST. The
    // server answers 303 to the same request as a GET (which, unlike a
    // cross-site POST, carries the SameSite=Lax session cookie); a browser
    // follows it.
    let posted = browser
        .post(&format!("{}/oauth/authorize", t.issuer), &req.params())
        .await;
    assert_eq!(
        posted.status,
        StatusCode::SEE_OTHER,
        "{}",
        posted.describe()
    );
    let location = posted
        .header("location")
        .expect("303 has a Location")
        .to_string();
    assert!(
        location.starts_with(&format!("{}/oauth/authorize?", t.issuer)),
        "{}",
        posted.describe()
    );
    let page = browser.get(&location).await;
    assert!(page.is_login_page(), "{}", page.describe());
    let done = browser.login(&page, &t.email, PASSWORD).await;
    let code = req.code_from(&done);
    let body = tokens(
        &req.redeem(&http, &code, &c.auth(), None).await,
        "posted request",
    );
    let (_, id) = verify(
        body["id_token"].as_str().unwrap(),
        &rp::jwks(&http, &t.issuer).await,
    );
    assert_eq!(id["nonce"], json!(req.nonce));
    // Error redirects carry the same exact state.
    let mut bad = req.fresh().with("prompt", "bogus");
    bad.state = req.state.clone();
    let r = browser.get(&bad.url()).await;
    assert_eq!(bad.error_from(&r), "invalid_request");
}
