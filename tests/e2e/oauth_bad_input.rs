//! Bad input at the OpenID Provider's endpoints: every refused request gets
//! the right error and status, and changes nothing that can be observed (the
//! code stays redeemable, the refresh token stays valid, the audit log does
//! not grow, no session starts).

// Cases are tables of tuples: (what, request, expected ...); naming each
// tuple type would only move the table's columns away from its rows.
#![allow(clippy::type_complexity)]

use reqwest::StatusCode;
use serde_json::json;

use crate::rp::{
    self, Auth, AuthRequest, Browser, PASSWORD, REDIRECT, TestKey, active, authorize_url,
    backchannel, client, login_for_code, sso_code, tenant, tokens,
};
use crate::support::Server;

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn authorize_errors_before_the_redirect_uri_is_trusted_are_pages() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "azpages").await;
    let two = "https://rp.example.test/other";
    let c = client(&s, &admin, &t, json!({"redirect_uris": [REDIRECT, two]})).await;
    let disabled = client(&s, &admin, &t, json!({})).await;
    rp::update_client(&s, &admin, &t, &disabled, json!({"enabled": false})).await;
    let browser = Browser::new();
    let audit = s.audit_count(&t.tid, &admin).await;
    let pkce = rp::pkce();
    let base = |client_id: &str, redirect: Option<&str>| {
        let mut p = params(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("scope", "openid"),
            ("state", "st"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ]);
        if let Some(r) = redirect {
            p.push(("redirect_uri".into(), r.into()));
        }
        p
    };
    let mut repeated_redirect = base(&c.id, Some(REDIRECT));
    repeated_redirect.push(("redirect_uri".into(), two.into()));
    let mut repeated_client = base(&c.id, Some(REDIRECT));
    repeated_client.push(("client_id".into(), c.id.clone()));
    let mut no_client = base(&c.id, Some(REDIRECT));
    no_client.retain(|(k, _)| k != "client_id");
    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("unknown client_id", base("no-such-client", Some(REDIRECT))),
        ("disabled client", base(&disabled.id, Some(REDIRECT))),
        ("no client_id", no_client),
        (
            "unregistered redirect_uri",
            base(&c.id, Some("https://evil.example/cb")),
        ),
        (
            "redirect_uri with a trailing slash",
            base(&c.id, Some("https://rp.example.test/cb/")),
        ),
        (
            "redirect_uri differing in case",
            base(&c.id, Some("https://RP.example.test/cb")),
        ),
        (
            "redirect_uri with an extra query",
            base(&c.id, Some("https://rp.example.test/cb?x=1")),
        ),
        (
            "missing redirect_uri with several registered",
            base(&c.id, None),
        ),
        ("repeated redirect_uri", repeated_redirect),
        ("repeated client_id", repeated_client),
        (
            "NUL in a parameter",
            base(&c.id, Some("https://rp.example.test/cb\0")),
        ),
    ];
    for (what, p) in cases {
        let r = browser.get(&authorize_url(&t.issuer, &p)).await;
        r.assert_error_page(what);
        assert!(r.set_cookie("vx_session").is_none(), "{what}");
        // POSTed the same way (OIDC Core §3.1.2.1).
        let r = browser
            .post(&format!("{}/oauth/authorize", t.issuer), &p)
            .await;
        r.assert_error_page(&format!("{what} (POST)"));
    }
    // Another tenant's client is unknown here.
    let other = tenant(&s, &admin, "azpages2").await;
    let oc = client(&s, &admin, &other, json!({})).await;
    let r = browser
        .get(&authorize_url(&t.issuer, &base(&oc.id, Some(REDIRECT))))
        .await;
    r.assert_error_page("another tenant's client");
    // Unknown issuer: 404 JSON.
    let r = browser
        .get(&authorize_url(
            &format!("{}/t/nope", s.base),
            &base(&c.id, Some(REDIRECT)),
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.describe());
    assert_eq!(r.error(), "invalid_request");
    assert!(r.header("location").is_none());
    assert_eq!(s.audit_count(&t.tid, &admin).await, audit);
    // A good request still shows the login page.
    let ok = browser
        .get(&authorize_url(&t.issuer, &base(&c.id, Some(two))))
        .await;
    assert!(ok.is_login_page(), "{}", ok.describe());
}

#[tokio::test]
async fn authorize_errors_after_the_redirect_uri_is_trusted_redirect() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "azredirect").await;
    let conf = client(&s, &admin, &t, json!({"scopes": ["openid", "profile"]})).await;
    let public = client(&s, &admin, &t, json!({"client_type": "public"})).await;
    let cc_only = client(
        &s,
        &admin,
        &t,
        json!({"grant_types": ["client_credentials"]}),
    )
    .await;
    let browser = Browser::new();
    let audit = s.audit_count(&t.tid, &admin).await;
    let pkce = rp::pkce();
    let good = |client_id: &str| {
        params(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "xyz"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
    };
    let without = |client_id: &str, drop: &[&str]| {
        let mut p = good(client_id);
        p.retain(|(k, _)| !drop.contains(&k.as_str()));
        p
    };
    let with = |client_id: &str, set: &[(&str, &str)]| {
        let mut p = good(client_id);
        for (k, v) in set {
            p.retain(|(n, _)| n != k);
            p.push((k.to_string(), v.to_string()));
        }
        p
    };
    let mut repeated_scope = good(&conf.id);
    repeated_scope.push(("scope".into(), "profile".into()));
    let mut repeated_state = good(&conf.id);
    repeated_state.push(("state".into(), "other".into()));
    let cases: Vec<(&str, Vec<(String, String)>, &str)> = vec![
        (
            "missing response_type",
            without(&conf.id, &["response_type"]),
            "invalid_request",
        ),
        (
            "response_type=token",
            with(&conf.id, &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            "response_type=code id_token",
            with(&conf.id, &[("response_type", "code id_token")]),
            "unsupported_response_type",
        ),
        (
            "code_challenge_method=plain",
            with(
                &conf.id,
                &[
                    ("code_challenge_method", "plain"),
                    ("code_challenge", &pkce.verifier),
                ],
            ),
            "invalid_request",
        ),
        (
            "code_challenge without method",
            without(&conf.id, &["code_challenge_method"]),
            "invalid_request",
        ),
        (
            "method without code_challenge",
            without(&conf.id, &["code_challenge"]),
            "invalid_request",
        ),
        (
            "short code_challenge",
            with(&conf.id, &[("code_challenge", "abc")]),
            "invalid_request",
        ),
        (
            "public client without PKCE",
            without(&public.id, &["code_challenge", "code_challenge_method"]),
            "invalid_request",
        ),
        (
            "confidential client without PKCE (require_pkce default)",
            without(&conf.id, &["code_challenge", "code_challenge_method"]),
            "invalid_request",
        ),
        (
            "unknown scope",
            with(&conf.id, &[("scope", "openid admin:everything")]),
            "invalid_scope",
        ),
        (
            "scope not allowed for the client",
            with(&conf.id, &[("scope", "openid email")]),
            "invalid_scope",
        ),
        ("repeated scope", repeated_scope, "invalid_request"),
        ("repeated state", repeated_state, "invalid_request"),
        (
            "unknown prompt",
            with(&conf.id, &[("prompt", "bogus")]),
            "invalid_request",
        ),
        (
            "prompt=none with login",
            with(&conf.id, &[("prompt", "none login")]),
            "invalid_request",
        ),
        (
            "negative max_age",
            with(&conf.id, &[("max_age", "-1")]),
            "invalid_request",
        ),
        (
            "response_mode=fragment",
            with(&conf.id, &[("response_mode", "fragment")]),
            "invalid_request",
        ),
        (
            "request object",
            with(&conf.id, &[("request", "eyJhbGciOiJub25lIn0.e30.")]),
            "request_not_supported",
        ),
        (
            "request_uri",
            with(&conf.id, &[("request_uri", "https://rp.example.test/r")]),
            "request_uri_not_supported",
        ),
        (
            "malformed dpop_jkt",
            with(&public.id, &[("dpop_jkt", "short")]),
            "invalid_request",
        ),
        (
            "client without the code grant",
            good(&cc_only.id),
            "unauthorized_client",
        ),
    ];
    for (what, p, error) in cases {
        let r = browser.get(&authorize_url(&t.issuer, &p)).await;
        let cb = rp::callback(&r, REDIRECT);
        assert_eq!(r.status, StatusCode::FOUND, "{what}: {}", r.describe());
        assert_eq!(
            cb.get("error").map(String::as_str),
            Some(error),
            "{what}: {cb:?}"
        );
        assert!(
            cb.get("error_description").is_some_and(|d| !d.is_empty()),
            "{what}: {cb:?}"
        );
        assert!(!cb.contains_key("code"), "{what}: {cb:?}");
        if !what.starts_with("repeated state") {
            assert_eq!(
                cb.get("state").map(String::as_str),
                Some("xyz"),
                "{what}: {cb:?}"
            );
        }
        assert_eq!(cb.get("iss"), Some(&t.issuer), "{what}: {cb:?}");
        assert!(r.set_cookie("vx_session").is_none(), "{what}");
    }
    assert_eq!(s.audit_count(&t.tid, &admin).await, audit);
    // Missing redirect_uri with exactly one registered: the registered one.
    let r = browser
        .get(&authorize_url(
            &t.issuer,
            &without(&conf.id, &["redirect_uri"]),
        ))
        .await;
    assert!(r.is_login_page(), "{}", r.describe());
}

/// A tenant with a signed-in browser, two confidential clients and a
/// public one.
struct Fix {
    s: Server,
    admin: String,
    t: rp::Tenant,
    a: rp::Client,
    b: rp::Client,
    public: rp::Client,
    browser: Browser,
    http: reqwest::Client,
}

async fn fix(slug: &str) -> Fix {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, slug).await;
    let two = "https://rp.example.test/two";
    let a = client(&s, &admin, &t, json!({"redirect_uris": [REDIRECT, two]})).await;
    let b = client(&s, &admin, &t, json!({"redirect_uris": [REDIRECT, two]})).await;
    let public = client(&s, &admin, &t, json!({"client_type": "public"})).await;
    let browser = Browser::new();
    let req = AuthRequest::new(&t.issuer, &a.id, REDIRECT, "openid");
    login_for_code(&browser, &req, &t.email, PASSWORD).await;
    Fix {
        s,
        admin,
        t,
        a,
        b,
        public,
        browser,
        http: backchannel(),
    }
}

#[tokio::test]
async fn token_endpoint_refuses_bad_code_redemptions_without_consuming_the_code() {
    let f = fix("tokbad").await;
    let (t, http) = (&f.t, &f.http);
    let req = AuthRequest::new(&t.issuer, &f.a.id, REDIRECT, "openid offline_access");
    let code = sso_code(&f.browser, &req).await;
    let audit = f.s.audit_count(&t.tid, &f.admin).await;
    let token_url = format!("{}/oauth/token", t.issuer);
    let secret = f.a.secret.clone().unwrap();
    let grant = |redirect: &str, verifier: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.clone()),
            ("redirect_uri".into(), redirect.to_string()),
            ("code_verifier".into(), verifier.to_string()),
        ]
    };
    let good = grant(REDIRECT, &req.pkce.verifier);
    let send = |p: Vec<(String, String)>, auth: Auth, dpop: Option<String>| {
        let http = http.clone();
        let issuer = t.issuer.clone();
        async move {
            let pr: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            rp::token(&http, &issuer, &pr, &auth, dpop.as_deref()).await
        }
    };
    let other_verifier = rp::pkce().verifier;
    let mut no_verifier = good.clone();
    no_verifier.retain(|(k, _)| k != "code_verifier");
    let mut no_redirect = good.clone();
    no_redirect.retain(|(k, _)| k != "redirect_uri");
    let mut no_code = good.clone();
    no_code.retain(|(k, _)| k != "code");
    let mut unknown_code = good.clone();
    unknown_code[1].1 = "not-a-code".into();
    let mut repeated = good.clone();
    repeated.push(("code".into(), code.clone()));
    let a = f.a.auth();
    let cases: Vec<(
        &str,
        Vec<(String, String)>,
        Auth,
        Option<String>,
        StatusCode,
        &str,
    )> = vec![
        (
            "wrong redirect_uri (registered, but not the one used)",
            grant("https://rp.example.test/two", &req.pkce.verifier),
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "missing redirect_uri",
            no_redirect,
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "PKCE mismatch",
            grant(REDIRECT, &other_verifier),
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "PKCE: the challenge as verifier",
            grant(REDIRECT, &req.pkce.challenge),
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "missing code_verifier",
            no_verifier,
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "missing code",
            no_code,
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown code",
            unknown_code,
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "repeated parameter",
            repeated,
            a.clone(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "code of another client",
            good.clone(),
            f.b.auth(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "code for a public client id",
            good.clone(),
            f.public.auth(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "wrong client secret",
            good.clone(),
            Auth::basic(&f.a.id, "wrong-secret"),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "wrong client secret in the form",
            good.clone(),
            Auth::Post(f.a.id.clone(), "wrong-secret".into()),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "no client authentication",
            good.clone(),
            Auth::Nothing,
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "client_id only for a confidential client",
            good.clone(),
            Auth::public(&f.a.id),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "unknown client",
            good.clone(),
            Auth::basic("nobody", "x"),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "malformed DPoP proof",
            good.clone(),
            a.clone(),
            Some("not-a-jwt".into()),
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
        ),
        (
            "DPoP proof for another URL",
            good.clone(),
            a.clone(),
            Some(TestKey::es256().dpop(
                "POST",
                &format!("{}/oauth/userinfo", t.issuer),
                None,
                None,
            )),
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
        ),
        (
            "DPoP proof for another method",
            good.clone(),
            a.clone(),
            Some(TestKey::es256().dpop("GET", &token_url, None, None)),
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
        ),
        (
            "DPoP proof with typ JWT",
            good.clone(),
            a.clone(),
            Some(TestKey::es256().sign(
                "ES256",
                json!({"typ": "JWT", "jwk": TestKey::es256().public_jwk()}),
                &json!({"jti": "j", "htm": "POST", "htu": token_url, "iat": rp::now()}),
            )),
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
        ),
        (
            "DPoP proof signed by a key other than its jwk",
            good.clone(),
            a.clone(),
            Some(TestKey::es256().sign(
                "ES256",
                json!({"typ": "dpop+jwt", "jwk": TestKey::es256().public_jwk()}),
                &json!({"jti": "j2", "htm": "POST", "htu": token_url, "iat": rp::now()}),
            )),
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
        ),
    ];
    for (what, p, auth, dpop, status, error) in cases {
        let r = send(p, auth, dpop).await;
        r.assert_oauth_error(status, error, what);
        assert!(r.body.get("access_token").is_none(), "{what}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                r.header("www-authenticate").is_some(),
                "{what}: 401 without WWW-Authenticate: {}",
                r.describe()
            );
        }
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("no-store"),
            "{what}"
        );
    }
    // Two client authentication methods at once.
    let pr: Vec<(&str, &str)> = good.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut both: Vec<(&str, &str)> = pr.clone();
    both.push(("client_secret", &secret));
    let r = rp::token(http, &t.issuer, &both, &Auth::basic(&f.a.id, &secret), None).await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Basic and client_secret",
    );
    let r = rp::token(
        http,
        &t.issuer,
        &[
            pr.as_slice(),
            &[
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "a.b.c"),
            ],
        ]
        .concat(),
        &Auth::basic(&f.a.id, &secret),
        None,
    )
    .await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Basic and assertion",
    );
    // Basic and a different client_id in the form.
    let r = rp::token(
        http,
        &t.issuer,
        &[pr.as_slice(), &[("client_id", f.b.id.as_str())]].concat(),
        &Auth::basic(&f.a.id, &secret),
        None,
    )
    .await;
    assert!(
        r.status.is_client_error() && r.body.get("access_token").is_none(),
        "{}",
        r.describe()
    );
    // Not a form.
    let r = http
        .post(&token_url)
        .basic_auth(&f.a.id, Some(&secret))
        .json(&json!({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": req.pkce.verifier}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    // A GET is not a token request.
    let r = http.get(&token_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Nothing recorded, nothing consumed: the code still redeems, once.
    assert_eq!(
        f.s.audit_count(&t.tid, &f.admin).await,
        audit,
        "refusals changed the audit log"
    );
    let ok = req.redeem(http, &code, &f.a.auth(), None).await;
    let body = tokens(&ok, "the code after all the refusals");
    assert!(body["refresh_token"].is_string());
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let f = fix("expired").await;
    let (t, http) = (&f.t, &f.http);
    let req = AuthRequest::new(&t.issuer, &f.a.id, REDIRECT, "openid");
    let code = sso_code(&f.browser, &req).await;
    // Codes live 60 s; move this one's expiry into the past instead of waiting.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(5))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    f.s.exec_sql(&format!(
        "UPDATE authorization_codes SET expires_at = '{past}' WHERE code_hash = '{}'",
        rp::sha256_hex(&code)
    ))
    .await;
    let r = req.redeem(http, &code, &f.a.auth(), None).await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "expired code");
    // A fresh code works.
    let r2 = req.fresh();
    let code = sso_code(&f.browser, &r2).await;
    tokens(
        &r2.redeem(http, &code, &f.a.auth(), None).await,
        "fresh code",
    );
}

#[tokio::test]
async fn token_endpoint_grant_and_scope_errors() {
    let f = fix("granterr").await;
    let (s, t, http) = (&f.s, &f.t, &f.http);
    let cc = client(
        s,
        &f.admin,
        t,
        json!({"grant_types": ["client_credentials"], "scopes": ["api.read"]}),
    )
    .await;
    let audit = s.audit_count(&t.tid, &f.admin).await;
    let a = f.a.auth();
    let cases: Vec<(&str, Vec<(&str, &str)>, Auth, StatusCode, &str)> = vec![
        (
            "unsupported grant_type",
            vec![("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "implicit is no grant",
            vec![("grant_type", "implicit")],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "missing grant_type",
            vec![],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "password grant not allowed",
            vec![
                ("grant_type", "password"),
                ("username", &t.email),
                ("password", PASSWORD),
            ],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            "client_credentials not allowed",
            vec![("grant_type", "client_credentials")],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            "public client_credentials",
            vec![("grant_type", "client_credentials")],
            f.public.auth(),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            "code grant not allowed",
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", "y"),
            ],
            cc.auth(),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            "scope not allowed",
            vec![("grant_type", "client_credentials"), ("scope", "api.write")],
            cc.auth(),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "one scope of two not allowed",
            vec![
                ("grant_type", "client_credentials"),
                ("scope", "api.read admin"),
            ],
            cc.auth(),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "unknown refresh token",
            vec![("grant_type", "refresh_token"), ("refresh_token", "nope")],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "missing refresh token",
            vec![("grant_type", "refresh_token")],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (what, p, auth, status, error) in cases {
        let r = rp::token(http, &t.issuer, &p, &auth, None).await;
        r.assert_oauth_error(status, error, what);
    }
    assert_eq!(s.audit_count(&t.tid, &f.admin).await, audit);
    let r = rp::token(
        http,
        &t.issuer,
        &[("grant_type", "client_credentials"), ("scope", "api.read")],
        &cc.auth(),
        None,
    )
    .await;
    tokens(&r, "allowed scope");

    // Password grant for a client that lists it: bad password is invalid_grant.
    let pw = client(
        s,
        &f.admin,
        t,
        json!({"grant_types": ["password"], "scopes": ["openid"]}),
    )
    .await;
    let r = rp::token(
        http,
        &t.issuer,
        &[
            ("grant_type", "password"),
            ("username", &t.email),
            ("password", "nope-nope"),
        ],
        &pw.auth(),
        None,
    )
    .await;
    r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "bad password");
    let r = rp::token(
        http,
        &t.issuer,
        &[
            ("grant_type", "password"),
            ("username", &t.email),
            ("password", PASSWORD),
            ("scope", "email"),
        ],
        &pw.auth(),
        None,
    )
    .await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_scope",
        "password grant scope",
    );
    let r = rp::token(
        http,
        &t.issuer,
        &[
            ("grant_type", "password"),
            ("username", &t.email),
            ("password", PASSWORD),
        ],
        &pw.auth(),
        None,
    )
    .await;
    tokens(&r, "password grant");

    // Unknown issuer: 404 JSON at every endpoint.
    for path in [
        "/t/nope/oauth/token",
        "/t/nope/oauth/introspect",
        "/t/nope/oauth/revoke",
    ] {
        let r = rp::post_form(
            http,
            &format!("{}{path}", s.base),
            &[("grant_type", "client_credentials")],
            &a,
            None,
        )
        .await;
        r.assert_oauth_error(StatusCode::NOT_FOUND, "invalid_request", path);
    }
    for path in [
        "/t/nope/.well-known/openid-configuration",
        "/t/nope/.well-known/jwks.json",
        "/t/nope/oauth/userinfo",
        "/t/nope/oauth/logout",
    ] {
        let r = f.browser.get(&format!("{}{path}", s.base)).await;
        r.assert_oauth_error(StatusCode::NOT_FOUND, "invalid_request", path);
    }
}

#[tokio::test]
async fn refused_refreshes_leave_the_refresh_token_valid() {
    let f = fix("rtbad").await;
    let (t, http) = (&f.t, &f.http);
    let req = AuthRequest::new(
        &t.issuer,
        &f.a.id,
        REDIRECT,
        "openid profile offline_access",
    );
    let code = sso_code(&f.browser, &req).await;
    let body = tokens(&req.redeem(http, &code, &f.a.auth(), None).await, "login");
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let audit = f.s.audit_count(&t.tid, &f.admin).await;
    let a = f.a.auth();
    let cases: Vec<(&str, Vec<(&str, &str)>, Auth, StatusCode, &str)> = vec![
        (
            "another client",
            vec![("grant_type", "refresh_token"), ("refresh_token", &rt)],
            f.b.auth(),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "wrong secret",
            vec![("grant_type", "refresh_token"), ("refresh_token", &rt)],
            Auth::basic(&f.a.id, "bad"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "widened scope",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("scope", "openid email"),
            ],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "malformed DPoP",
            vec![("grant_type", "refresh_token"), ("refresh_token", &rt)],
            a.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
        ),
    ];
    for (what, p, auth, status, error) in cases {
        let dpop = (what == "malformed DPoP").then_some("x.y.z");
        let r = rp::token(http, &t.issuer, &p, &auth, dpop).await;
        r.assert_oauth_error(status, error, what);
        assert!(
            active(http, &t.issuer, &a, &rt).await,
            "{what} spent the refresh token"
        );
    }
    assert_eq!(f.s.audit_count(&t.tid, &f.admin).await, audit);
    // The refresh token is still the current one: it rotates normally and
    // no reuse is detected.
    let r = rp::token(
        http,
        &t.issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        &a,
        None,
    )
    .await;
    let fresh = tokens(&r, "refresh after refusals");
    let r = rp::token(
        http,
        &t.issuer,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
        ],
        &a,
        None,
    )
    .await;
    tokens(&r, "second refresh");
    assert_eq!(
        rp::audit_total(&f.s, &f.admin, &t.tid, "oauth.refresh_token_reused").await,
        0
    );
}

#[tokio::test]
async fn introspection_and_userinfo_refuse_foreign_expired_and_tampered_tokens() {
    let f = fix("rsbad").await;
    let (s, t, http) = (&f.s, &f.t, &f.http);
    let other = tenant(s, &f.admin, "rsbad2").await;
    let oc = client(
        s,
        &f.admin,
        &other,
        json!({"grant_types": ["password"], "scopes": ["openid"]}),
    )
    .await;
    let short = client(
        s,
        &f.admin,
        t,
        json!({"grant_types": ["password"], "scopes": ["openid"], "access_token_lifetime": 5}),
    )
    .await;
    let pw = |c: &rp::Client, issuer: &str, email: &str| {
        let http = http.clone();
        let auth = c.auth();
        let issuer = issuer.to_string();
        let email = email.to_string();
        async move {
            let r = rp::token(
                &http,
                &issuer,
                &[
                    ("grant_type", "password"),
                    ("username", &email),
                    ("password", PASSWORD),
                    ("scope", "openid"),
                ],
                &auth,
                None,
            )
            .await;
            tokens(&r, "password grant")["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let foreign = pw(&oc, &other.issuer, &other.email).await;
    let req = AuthRequest::new(&t.issuer, &f.a.id, REDIRECT, "openid");
    let code = sso_code(&f.browser, &req).await;
    let body = tokens(&req.redeem(http, &code, &f.a.auth(), None).await, "login");
    let at = body["access_token"].as_str().unwrap().to_string();
    let idt = body["id_token"].as_str().unwrap().to_string();
    let a = f.a.auth();

    // Another tenant's token: inactive here, active there.
    assert!(!active(http, &t.issuer, &a, &foreign).await);
    let ui = rp::userinfo(http, &t.issuer, Some(&format!("Bearer {foreign}")), None).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    assert!(
        ui.header("www-authenticate")
            .is_some_and(|w| w.contains("invalid_token"))
    );
    let ui = rp::userinfo(
        http,
        &other.issuer,
        Some(&format!("Bearer {foreign}")),
        None,
    )
    .await;
    assert_eq!(ui.status, StatusCode::OK, "{}", ui.describe());
    // The master issuer's tokens are foreign too.
    let master_at = s
        .password_token(
            "",
            "admin-cli",
            crate::support::ADMIN_EMAIL,
            crate::support::ADMIN_PASSWORD,
        )
        .await;
    assert!(!active(http, &t.issuer, &a, &master_at).await);

    // Tampered: payload changed (scope widened) or signature cut.
    let parts: Vec<&str> = at.split('.').collect();
    let (_, mut claims) = rp::decode(&at);
    claims["scope"] = json!("openid profile email");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        rp::b64(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    let (mut h, _) = rp::decode(&at);
    h["alg"] = json!("none");
    let alg_none = format!("{}.{}.", rp::b64(serde_json::to_vec(&h).unwrap()), parts[1]);
    for (what, tok) in [
        ("tampered payload", tampered.as_str()),
        ("no signature", unsigned.as_str()),
        ("alg none", alg_none.as_str()),
        ("garbage", "garbage"),
        ("ID token as access token", idt.as_str()),
        ("foreign", foreign.as_str()),
    ] {
        let ui = rp::userinfo(http, &t.issuer, Some(&format!("Bearer {tok}")), None).await;
        assert_eq!(
            ui.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            ui.describe()
        );
        assert_eq!(ui.error(), "invalid_token", "{what}: {}", ui.describe());
        let www = ui.header("www-authenticate").unwrap_or_default();
        assert!(
            www.starts_with("Bearer") && www.contains(r#"error="invalid_token""#),
            "{what}: {www}"
        );
        assert!(!active(http, &t.issuer, &a, tok).await, "{what}");
    }
    // No token at all: 401 with a challenge and no error code (RFC 6750 §3.1).
    let ui = rp::userinfo(http, &t.issuer, None, None).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    assert!(
        ui.header("www-authenticate")
            .is_some_and(|w| w.starts_with("Bearer"))
    );
    let ui = rp::userinfo(http, &t.issuer, Some(&format!("Basic {}", "eDp5")), None).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    // The genuine token still works.
    let ui = rp::userinfo(http, &t.issuer, Some(&format!("Bearer {at}")), None).await;
    assert_eq!(ui.status, StatusCode::OK, "{}", ui.describe());

    // Expired: a 5-second token, checked before and after it expires.
    let short_at = pw(&short, &t.issuer, &t.email).await;
    let ui = rp::userinfo(http, &t.issuer, Some(&format!("Bearer {short_at}")), None).await;
    assert_eq!(ui.status, StatusCode::OK, "{}", ui.describe());
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let ui = rp::userinfo(http, &t.issuer, Some(&format!("Bearer {short_at}")), None).await;
    assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    assert_eq!(ui.error(), "invalid_token");
    assert!(!active(http, &t.issuer, &a, &short_at).await);

    // Introspection needs client authentication.
    let r = rp::introspect(http, &t.issuer, &Auth::Nothing, &at).await;
    r.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "introspect without auth",
    );
    assert!(r.header("www-authenticate").is_some());
    let r = rp::introspect(http, &t.issuer, &Auth::basic(&f.a.id, "wrong"), &at).await;
    r.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "introspect bad secret",
    );
    let r = rp::introspect(http, &t.issuer, &oc.auth(), &at).await;
    r.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "another tenant's client",
    );
    let r = rp::post_form(
        http,
        &format!("{}/oauth/introspect", t.issuer),
        &[],
        &a,
        None,
    )
    .await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "introspect without token",
    );
    // Revocation needs client authentication and a token.
    let r = rp::revoke(http, &t.issuer, &Auth::Nothing, &at).await;
    r.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "revoke without auth",
    );
    let r = rp::revoke(http, &t.issuer, &Auth::basic(&f.a.id, "wrong"), &at).await;
    r.assert_oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "revoke bad secret",
    );
    let r = rp::post_form(http, &format!("{}/oauth/revoke", t.issuer), &[], &a, None).await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "revoke without token",
    );
    // None of those revoked anything.
    assert!(active(http, &t.issuer, &a, &at).await);
}

#[tokio::test]
async fn dpop_bad_proofs_at_the_token_endpoint_change_nothing() {
    let f = fix("dpopbad").await;
    let (t, http) = (&f.t, &f.http);
    let req = AuthRequest::new(&t.issuer, &f.public.id, REDIRECT, "openid");
    let code = sso_code(&f.browser, &req).await;
    let token_url = format!("{}/oauth/token", t.issuer);
    let key = TestKey::es256();
    let now = rp::now();
    let claims = |extra: serde_json::Value| {
        let mut c = json!({"jti": rp::random(16), "htm": "POST", "htu": token_url, "iat": now});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let mut with_private = key.public_jwk();
    with_private["d"] = json!(rp::b64([7u8; 32]));
    let two_headers_proof = key.dpop("POST", &token_url, None, None);
    let cases: Vec<(&str, String)> = vec![
        ("not a JWT", "abc".into()),
        ("empty", String::new()),
        (
            "no jti",
            key.dpop_with("ES256", &claims(json!({"jti": null}))),
        ),
        (
            "no iat",
            key.dpop_with("ES256", &claims(json!({"iat": null}))),
        ),
        (
            "future iat",
            key.dpop_with("ES256", &claims(json!({"iat": now + 600}))),
        ),
        (
            "old iat",
            key.dpop_with("ES256", &claims(json!({"iat": now - 600}))),
        ),
        (
            "no htm",
            key.dpop_with("ES256", &claims(json!({"htm": null}))),
        ),
        (
            "htu with another host",
            key.dpop_with(
                "ES256",
                &claims(json!({"htu": token_url.replace("127.0.0.1", "localhost")})),
            ),
        ),
        (
            "htu of another tenant",
            key.dpop_with(
                "ES256",
                &claims(json!({"htu": format!("{}/oauth/token", f.s.base)})),
            ),
        ),
        (
            "no jwk",
            key.sign("ES256", json!({"typ": "dpop+jwt"}), &claims(json!({}))),
        ),
        (
            "private jwk",
            key.sign(
                "ES256",
                json!({"typ": "dpop+jwt", "jwk": with_private}),
                &claims(json!({})),
            ),
        ),
        ("HS256", {
            let h = rp::b64(
                serde_json::to_vec(
                    &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()}),
                )
                .unwrap(),
            );
            let c = rp::b64(serde_json::to_vec(&claims(json!({}))).unwrap());
            format!("{h}.{c}.{}", rp::b64([1u8; 32]))
        }),
    ];
    for (what, proof) in cases {
        let r = req
            .redeem(http, &code, &f.public.auth(), Some(&proof))
            .await;
        r.assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", what);
    }
    // Two DPoP headers.
    let r = http
        .post(&token_url)
        .header("dpop", &two_headers_proof)
        .header("dpop", key.dpop("POST", &token_url, None, None))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &req.pkce.verifier),
            ("client_id", &f.public.id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    // A proof used once cannot be used again.
    let once = key.dpop("POST", &token_url, None, None);
    let cc = client(
        &f.s,
        &f.admin,
        t,
        json!({"grant_types": ["client_credentials"]}),
    )
    .await;
    let r = rp::token(
        http,
        &t.issuer,
        &[("grant_type", "client_credentials")],
        &cc.auth(),
        Some(&once),
    )
    .await;
    tokens(&r, "first use of the proof");
    let r = rp::token(
        http,
        &t.issuer,
        &[("grant_type", "client_credentials")],
        &cc.auth(),
        Some(&once),
    )
    .await;
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "reused proof",
    );
    // The code survived every refusal and redeems with a good proof.
    let r = req
        .redeem(
            http,
            &code,
            &f.public.auth(),
            Some(&key.dpop("POST", &token_url, None, None)),
        )
        .await;
    assert_eq!(tokens(&r, "good proof")["token_type"], "DPoP");
}

#[tokio::test]
async fn logout_bad_input_ends_nothing() {
    let f = fix("logoutbad").await;
    let (t, http) = (&f.t, &f.http);
    let after = "https://rp.example.test/bye";
    rp::update_client(
        &f.s,
        &f.admin,
        t,
        &f.a,
        json!({"post_logout_redirect_uris": [after]}),
    )
    .await;
    let req = AuthRequest::new(&t.issuer, &f.a.id, REDIRECT, "openid offline_access");
    let code = sso_code(&f.browser, &req).await;
    let body = tokens(&req.redeem(http, &code, &f.a.auth(), None).await, "login");
    let idt = body["id_token"].as_str().unwrap().to_string();
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let url = |p: &[(&str, &str)]| {
        let mut u = url::Url::parse(&format!("{}/oauth/logout", t.issuer)).unwrap();
        for (k, v) in p {
            u.query_pairs_mut().append_pair(k, v);
        }
        u.to_string()
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "unregistered post_logout_redirect_uri",
            url(&[
                ("id_token_hint", &idt),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ]),
        ),
        (
            "registered URI of another client",
            url(&[("client_id", &f.b.id), ("post_logout_redirect_uri", after)]),
        ),
        (
            "redirect without client_id or hint",
            url(&[("post_logout_redirect_uri", after)]),
        ),
        (
            "client_id not matching the hint",
            url(&[
                ("id_token_hint", &idt),
                ("client_id", &f.b.id),
                ("post_logout_redirect_uri", after),
            ]),
        ),
        (
            "garbage hint",
            url(&[
                ("id_token_hint", "x.y.z"),
                ("post_logout_redirect_uri", after),
            ]),
        ),
        (
            "post_logout_redirect_uri with a trailing slash",
            url(&[
                ("id_token_hint", &idt),
                ("post_logout_redirect_uri", &format!("{after}/")),
            ]),
        ),
    ];
    for (what, u) in cases {
        let r = f.browser.get(&u).await;
        r.assert_error_page(what);
        assert!(
            r.set_cookie("vx_session").is_none(),
            "{what}: cookie touched"
        );
        sso_code(&f.browser, &req.fresh()).await;
    }
    // A confirmation POST without the CSRF field is refused.
    let r = f
        .browser
        .post(
            &format!("{}/oauth/logout", t.issuer),
            &params(&[("confirm", "yes")]),
        )
        .await;
    r.assert_page(StatusCode::FORBIDDEN, "logout confirm without csrf");
    sso_code(&f.browser, &req.fresh()).await;
    assert!(active(http, &t.issuer, &f.a.auth(), &rt).await);
}

#[tokio::test]
async fn codes_tokens_and_sessions_do_not_cross_tenants_sharing_a_client_id() {
    let (s, admin) = Server::with_admin().await;
    let ta = tenant(&s, &admin, "crossa").await;
    let tb = tenant(&s, &admin, "crossb").await;
    let ca = client(&s, &admin, &ta, json!({"client_id": "shared-app"})).await;
    let cb = client(&s, &admin, &tb, json!({"client_id": "shared-app"})).await;
    assert_eq!(ca.id, cb.id);
    let http = backchannel();
    let browser = Browser::new();
    let req = AuthRequest::new(&ta.issuer, &ca.id, REDIRECT, "openid offline_access");
    let page = browser.get(&req.url()).await;
    let done = browser.login(&page, &ta.email, PASSWORD).await;
    let session = done.set_cookie("vx_session").unwrap();
    let session = session.split(';').next().unwrap().to_string();
    let code = req.code_from(&done);

    // A's code at B's token endpoint, with B's or A's credentials.
    let mut at_b = req.clone();
    at_b.issuer = tb.issuer.clone();
    at_b.redeem(&http, &code, &cb.auth(), None)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "A's code at B");
    at_b.redeem(&http, &code, &ca.auth(), None)
        .await
        .assert_oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "A's secret at B",
        );
    // It still redeems at A.
    let body = tokens(
        &req.redeem(&http, &code, &ca.auth(), None).await,
        "A's code at A",
    );
    let rt = body["refresh_token"].as_str().unwrap();
    let at = body["access_token"].as_str().unwrap();
    let idt = body["id_token"].as_str().unwrap();
    rp::token(
        &http,
        &tb.issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        &cb.auth(),
        None,
    )
    .await
    .assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "A's refresh token at B",
    );
    assert!(!active(&http, &tb.issuer, &cb.auth(), at).await);
    assert!(!active(&http, &tb.issuer, &cb.auth(), rt).await);
    // Revoking at B does nothing to A's tokens.
    rp::revoke(&http, &tb.issuer, &cb.auth(), rt).await;
    rp::revoke(&http, &tb.issuer, &cb.auth(), at).await;
    assert!(active(&http, &ta.issuer, &ca.auth(), at).await);
    assert!(active(&http, &ta.issuer, &ca.auth(), rt).await);
    // A's session cookie sent to B's authorization endpoint: no SSO.
    let breq = AuthRequest::new(&tb.issuer, &cb.id, REDIRECT, "openid");
    let r = http
        .get(breq.url())
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "A's session must not sign in at B"
    );
    assert!(r.text().await.unwrap().contains(r#"id="password""#));
    // A's ID token as a logout hint at B: refused, nothing ends at A.
    let mut u = url::Url::parse(&format!("{}/oauth/logout", tb.issuer)).unwrap();
    u.query_pairs_mut().append_pair("id_token_hint", idt);
    let r = browser.get(u.as_str()).await;
    r.assert_error_page("A's id_token_hint at B");
    sso_code(&browser, &req.fresh()).await;
    // B's user cannot sign in at A's login page (users are per tenant).
    let other = Browser::new();
    let page = other.get(&req.fresh().url()).await;
    let r = other.login(&page, &tb.email, PASSWORD).await;
    r.assert_page(StatusCode::UNAUTHORIZED, "B's user at A");
}

#[tokio::test]
async fn a_code_verifier_without_a_challenge_is_refused() {
    let f = fix("nochallenge").await;
    let (s, t, http) = (&f.s, &f.t, &f.http);
    let c = client(s, &f.admin, t, json!({"require_pkce": false})).await;
    let p = params(&[
        ("response_type", "code"),
        ("client_id", &c.id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "st"),
    ]);
    let r = f.browser.get(&authorize_url(&t.issuer, &p)).await;
    let cb = rp::callback(&r, REDIRECT);
    let code = cb.get("code").unwrap_or_else(|| panic!("{cb:?}")).clone();
    let verifier = rp::pkce().verifier;
    let without = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let with = [without.as_slice(), &[("code_verifier", verifier.as_str())]].concat();
    // RFC 9700 §2.1.1: a code_verifier for a request without a challenge
    // is refused (PKCE downgrade).
    rp::token(http, &t.issuer, &with, &c.auth(), None)
        .await
        .assert_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "verifier without challenge",
        );
    let r = rp::token(http, &t.issuer, &without, &c.auth(), None).await;
    tokens(&r, "no PKCE for a client that does not require it");
}

#[tokio::test]
async fn the_login_page_locks_out_and_does_not_tell_users_apart() {
    let f = fix("lockout").await;
    let (s, t) = (&f.s, &f.t);
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}", t.tid),
            &f.admin,
            json!({"settings": {"lockout_threshold": 3, "lockout_duration": 600}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let browser = Browser::new();
    let req = AuthRequest::new(&t.issuer, &f.a.id, REDIRECT, "openid");
    let page = browser.get(&req.url()).await;
    let error_text = |r: &rp::Reply| -> String {
        let i = r
            .text
            .find(r#"class="error""#)
            .unwrap_or_else(|| panic!("no error: {}", r.describe()));
        let rest = &r.text[i..];
        rest[rest.find('>').unwrap() + 1..rest.find("</").unwrap()].to_string()
    };
    let unknown = browser
        .login(&page, "nobody@lockout.example", "whatever-password")
        .await;
    unknown.assert_page(StatusCode::UNAUTHORIZED, "unknown user");
    let wrong = browser.login(&page, &t.email, "wrong-password-1").await;
    wrong.assert_page(StatusCode::UNAUTHORIZED, "wrong password");
    assert_eq!(
        error_text(&unknown),
        error_text(&wrong),
        "the page tells unknown users apart"
    );
    for i in 2..=3 {
        let r = browser
            .login(&page, &t.email, &format!("wrong-password-{i}"))
            .await;
        r.assert_page(StatusCode::UNAUTHORIZED, "wrong password");
    }
    // Locked: even the right password is refused, no session, no redirect.
    let r = browser.login(&page, &t.email, PASSWORD).await;
    r.assert_page(StatusCode::FORBIDDEN, "locked");
    assert!(r.set_cookie("vx_session").is_none());
    assert_eq!(
        rp::audit_total(s, &f.admin, &t.tid, "user.login_failed").await,
        4 + 1,
        "3 wrong passwords, 1 unknown user, 1 while locked"
    );
}
