//! Pins the review fixes: the admin API takes user tokens only from
//! first-party clients (service accounts keep their access); deleting a
//! client ends its grants and consents, also for a client later registered
//! under the same `client_id`; a relying party's logout form post (and an
//! authorization form post) is answered with a 303 to the same request as a
//! GET; `prompt=consent` shows the consent page for every client; an access
//! token is no `id_token_hint`.
//!
//! (A code issued before logout and redeemed after it is refused: see
//! `oidc_flows::logout_also_voids_codes_issued_in_the_ended_session`.)

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use crate::rp::{
    self, Auth, AuthRequest, Browser, PASSWORD, REDIRECT, active, backchannel, client,
    login_for_code, sso_code, tenant, tokens,
};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, MASTER, Server};

const AFTER_LOGOUT: &str = "https://rp.example.test/bye";

/// The master tenant as an `rp::Tenant` (issuer = the server's base URL),
/// with the setup administrator as its user.
fn master(s: &Server) -> rp::Tenant {
    rp::Tenant {
        tid: MASTER.into(),
        slug: "master".into(),
        issuer: s.base.clone(),
        email: ADMIN_EMAIL.into(),
        user_id: String::new(),
    }
}

/// Code flow in a fresh browser as the tenant's user; answers the browser,
/// the request and the token response.
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

async fn refresh(http: &reqwest::Client, issuer: &str, auth: &Auth, rt: &str) -> rp::Reply {
    rp::token(
        http,
        issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        auth,
        None,
    )
    .await
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
}

/// `{issuer}/oauth/logout?` with `params`.
fn logout_url(issuer: &str, params: &[(&str, &str)]) -> String {
    let mut u = Url::parse(&format!("{issuer}/oauth/logout")).unwrap();
    for (k, v) in params {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Asserts `r` is a 303 to `{issuer}{path}` whose query is exactly
/// `params`, in order; answers the absolute Location.
fn replayed_as_get(r: &rp::Reply, issuer: &str, path: &str, params: &[(&str, &str)]) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.describe());
    let loc = r.location().expect("a 303 has a Location");
    let mut bare = loc.clone();
    bare.set_query(None);
    assert_eq!(bare.as_str(), format!("{issuer}{path}"), "{}", r.describe());
    let got: Vec<(String, String)> = loc
        .query_pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, owned(params), "{}", r.describe());
    loc.to_string()
}

/// The status of `GET path` on the admin API with `token`.
async fn admin_status(s: &Server, token: &str, path: &str) -> StatusCode {
    s.get(path, token).await.0
}

/// Sleeps until just after the next full second, so what follows (a few
/// fast requests) very likely happens within one second of the clock.
async fn start_of_a_second() {
    let ms = chrono::Utc::now().timestamp_subsec_millis() as u64;
    tokio::time::sleep(Duration::from_millis(1000 - ms.min(999) + 5)).await;
}

/// The id of the master tenant's `admin` role.
async fn master_admin_role(s: &Server, admin: &str) -> String {
    let (st, roles) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/roles?per_page=200"),
            admin,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{roles}");
    roles["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap_or_else(|| panic!("no admin role in {roles}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A client_credentials token at `issuer`.
async fn service_token(http: &reqwest::Client, issuer: &str, c: &rp::Client) -> String {
    let r = rp::token(
        http,
        issuer,
        &[("grant_type", "client_credentials")],
        &c.auth(),
        None,
    )
    .await;
    str_of(&tokens(&r, "client_credentials"), "access_token").to_string()
}

// ---------------------------------------------------------------- 1. admin API audience

#[tokio::test]
async fn admin_api_refuses_user_tokens_issued_to_third_party_clients() {
    let (s, admin) = Server::with_admin().await;
    let http = backchannel();
    let m = master(&s);
    // A third-party web application in the master tenant that also has a
    // service account and may use the password grant.
    let web = client(
        &s,
        &admin,
        &m,
        json!({
            "name": "Third-party web app",
            "grant_types": ["authorization_code", "refresh_token", "password", "client_credentials"]
        }),
    )
    .await;

    // The setup administrator's admin-cli (first-party) token administers.
    assert_eq!(
        admin_status(&s, &admin, "/api/v1/tenants").await,
        StatusCode::OK
    );

    // The same administrator signs in to the web app on the hosted login
    // page: the app's access token is a good token...
    let browser = Browser::new();
    let req = AuthRequest::new(
        &s.base,
        &web.id,
        REDIRECT,
        "openid profile email offline_access",
    );
    let code = login_for_code(&browser, &req, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = tokens(
        &req.redeem(&http, &code, &web.auth(), None).await,
        "web app login",
    );
    let at = str_of(&body, "access_token").to_string();
    let rt = str_of(&body, "refresh_token").to_string();
    // (Introspection, not userinfo: the master issuer's /oauth/userinfo
    // answers GET with 405.)
    let intro = rp::introspect(&http, &s.base, &web.auth(), &at).await;
    assert_eq!(intro.status, StatusCode::OK, "{}", intro.describe());
    assert_eq!(intro.body["active"], json!(true), "{}", intro.describe());
    assert_eq!(
        intro.body["username"],
        json!(ADMIN_EMAIL),
        "{}",
        intro.describe()
    );

    // ...but not one for the admin API, whatever the user's roles.
    let tenants_before = s.get("/api/v1/tenants", &admin).await.1["total"].clone();
    for path in [
        "/api/v1/tenants".to_string(),
        format!("/api/v1/tenants/{MASTER}"),
        format!("/api/v1/tenants/{MASTER}/users"),
        format!("/api/v1/tenants/{MASTER}/clients"),
    ] {
        let (st, v) = s.get(&path, &at).await;
        assert_eq!(
            st,
            StatusCode::UNAUTHORIZED,
            "web app user token on {path}: {v}"
        );
    }
    let (st, v) = s
        .post(
            "/api/v1/tenants",
            &at,
            json!({"name": "Planted", "slug": "planted"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "create a tenant: {v}");
    let (st, v) = s
        .post(
            &format!("/api/v1/tenants/{MASTER}/users"),
            &at,
            json!({"email": "mallory@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "create a master user: {v}");
    let (_, after) = s.get("/api/v1/tenants", &admin).await;
    assert_eq!(after["total"], tenants_before, "{after}");
    assert!(
        !after.to_string().contains("planted"),
        "a tenant was created: {after}"
    );

    // A refreshed access token of the app: refused too.
    let r = tokens(
        &refresh(&http, &s.base, &web.auth(), &rt).await,
        "web app refresh",
    );
    let at2 = str_of(&r, "access_token");
    assert_eq!(
        admin_status(&s, at2, "/api/v1/tenants").await,
        StatusCode::UNAUTHORIZED
    );

    // The app's own password grant for the administrator: refused too.
    let r = rp::token(
        &http,
        &s.base,
        &[
            ("grant_type", "password"),
            ("username", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("scope", "openid"),
        ],
        &web.auth(),
        None,
    )
    .await;
    let pw = tokens(&r, "web app password grant");
    assert_eq!(
        admin_status(&s, str_of(&pw, "access_token"), "/api/v1/tenants").await,
        StatusCode::UNAUTHORIZED
    );

    // A fresh admin-cli password-grant token of the same administrator
    // still administers.
    let cli = s
        .password_token("", "admin-cli", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(
        admin_status(&s, &cli, "/api/v1/tenants").await,
        StatusCode::OK
    );

    // The app's service account (client_credentials) reaches the admin API:
    // without roles it is forbidden, not unauthenticated...
    let svc = service_token(&http, &s.base, &web).await;
    let (st, v) = s.get("/api/v1/tenants", &svc).await;
    assert_ne!(st, StatusCode::UNAUTHORIZED, "service token: {v}");
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "service token without roles: {v}"
    );
    // ...and with the master admin role it administers.
    let (st, c) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/clients/{}", web.uuid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let sa = str_of(&c, "service_account_user_id").to_string();
    let role = master_admin_role(&s, &admin).await;
    s.link(
        &format!("/api/v1/tenants/{MASTER}/users/{sa}/roles"),
        &admin,
        json!({"role_id": role}),
    )
    .await;
    assert_eq!(
        admin_status(&s, &svc, "/api/v1/tenants").await,
        StatusCode::OK
    );
    // The administrator's user token from the same client still is not.
    assert_eq!(
        admin_status(&s, &at, "/api/v1/tenants").await,
        StatusCode::UNAUTHORIZED
    );

    // A confidential client with client_credentials only: its service
    // account is not turned away either.
    let batch = client(
        &s,
        &admin,
        &m,
        json!({"name": "batch", "grant_types": ["client_credentials"], "redirect_uris": []}),
    )
    .await;
    let batch_token = service_token(&http, &s.base, &batch).await;
    let (st, v) = s.get("/api/v1/tenants", &batch_token).await;
    assert_ne!(st, StatusCode::UNAUTHORIZED, "batch service token: {v}");
    assert!(
        st == StatusCode::FORBIDDEN || st == StatusCode::OK,
        "batch service token: {st} {v}"
    );
}

#[tokio::test]
async fn admin_api_refuses_tokens_whose_client_is_disabled_or_gone() {
    let (s, admin) = Server::with_admin().await;
    let http = backchannel();
    let m = master(&s);
    let svc = client(
        &s,
        &admin,
        &m,
        json!({"client_id": "ops-bot", "name": "ops", "grant_types": ["client_credentials"], "redirect_uris": []}),
    )
    .await;
    let (_, c) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/clients/{}", svc.uuid),
            &admin,
        )
        .await;
    let sa = str_of(&c, "service_account_user_id").to_string();
    let role = master_admin_role(&s, &admin).await;
    s.link(
        &format!("/api/v1/tenants/{MASTER}/users/{sa}/roles"),
        &admin,
        json!({"role_id": role}),
    )
    .await;
    let bot = service_token(&http, &s.base, &svc).await;
    assert_eq!(
        admin_status(&s, &bot, "/api/v1/tenants").await,
        StatusCode::OK
    );

    // The service account disables admin-cli: the administrator's admin-cli
    // token stops working at once.
    let (st, list) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/clients?per_page=200"),
            &bot,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let cli_uuid = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "admin-cli")
        .unwrap_or_else(|| panic!("no admin-cli in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cli_path = format!("/api/v1/tenants/{MASTER}/clients/{cli_uuid}");
    let (st, v) = s.put(&cli_path, &bot, json!({"enabled": false})).await;
    assert_eq!(st, StatusCode::OK, "disable admin-cli: {v}");
    let (st, v) = s.get("/api/v1/tenants", &admin).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "admin-cli token after admin-cli was disabled: {v}"
    );
    let (st, v) = s.put(&cli_path, &bot, json!({"enabled": true})).await;
    assert_eq!(st, StatusCode::OK, "enable admin-cli: {v}");
    let cli = s
        .password_token("", "admin-cli", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(
        admin_status(&s, &cli, "/api/v1/tenants").await,
        StatusCode::OK
    );

    // The administrator disables the service account's client: its token
    // is refused.
    let svc_path = format!("/api/v1/tenants/{MASTER}/clients/{}", svc.uuid);
    let (st, v) = s.put(&svc_path, &cli, json!({"enabled": false})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s.get("/api/v1/tenants", &bot).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "service token of a disabled client: {v}"
    );
    let (st, v) = s.put(&svc_path, &cli, json!({"enabled": true})).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Deleted, then registered again under the same client_id at once: the
    // old token stays refused; the new client's own token is another
    // service account's (no roles: 403, not 401).
    start_of_a_second().await;
    let bot = service_token(&http, &s.base, &svc).await;
    assert_eq!(
        admin_status(&s, &bot, "/api/v1/tenants").await,
        StatusCode::OK
    );
    let (st, v) = s.delete(&svc_path, &cli).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let again = client(
        &s,
        &cli,
        &m,
        json!({"client_id": "ops-bot", "name": "ops again", "grant_types": ["client_credentials"], "redirect_uris": []}),
    )
    .await;
    let (st, v) = s.get("/api/v1/tenants", &bot).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "token of a deleted client, its client_id registered again: {v}"
    );
    let fresh = service_token(&http, &s.base, &again).await;
    let (st, v) = s.get("/api/v1/tenants", &fresh).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "new client's service token: {v}");
}

// ---------------------------------------------------------------- 2. client deletion

#[tokio::test]
async fn deleting_a_client_ends_its_grants_and_consents_also_for_a_client_id_reused() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "delclient").await;
    let http = backchannel();
    let doomed = client(
        &s,
        &admin,
        &t,
        json!({"client_id": "doomed-app", "require_consent": true}),
    )
    .await;
    // Another confidential client of the tenant introspects.
    let witness = client(&s, &admin, &t, json!({})).await;
    let w = witness.auth();

    // Alice signs in and consents; tokens with a refresh token.
    let browser = Browser::new();
    let req = AuthRequest::new(
        &t.issuer,
        &doomed.id,
        REDIRECT,
        "openid profile offline_access",
    );
    let page = browser.get(&req.url()).await;
    let consent = browser.login(&page, &t.email, PASSWORD).await;
    assert!(consent.is_consent_page(), "{}", consent.describe());
    let code = req.code_from(&browser.consent(&consent, true).await);
    let first = tokens(
        &req.redeem(&http, &code, &doomed.auth(), None).await,
        "doomed login",
    );
    let at = str_of(&first, "access_token").to_string();
    let rt0 = str_of(&first, "refresh_token").to_string();
    // The consent is remembered; a refresh gives a newer pair.
    sso_code(&browser, &req.fresh()).await;
    start_of_a_second().await;
    let second = tokens(
        &refresh(&http, &t.issuer, &doomed.auth(), &rt0).await,
        "refresh before deletion",
    );
    let at_late = str_of(&second, "access_token").to_string();
    let rt = str_of(&second, "refresh_token").to_string();
    for tok in [&at, &at_late, &rt] {
        assert!(active(&http, &t.issuer, &w, tok).await);
    }

    // Delete the client.
    let (st, v) = s
        .delete(
            &format!("/api/v1/tenants/{}/clients/{}", t.tid, doomed.uuid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    for (what, tok) in [("AT", &at), ("late AT", &at_late), ("RT", &rt)] {
        assert!(
            !active(&http, &t.issuer, &w, tok).await,
            "{what} of a deleted client"
        );
    }

    // Registered again under the same client_id (very likely within the
    // same second as `at_late` was issued): the old tokens stay dead.
    let reborn = client(
        &s,
        &admin,
        &t,
        json!({"client_id": "doomed-app", "require_consent": true}),
    )
    .await;
    assert_eq!(reborn.id, doomed.id);
    assert_ne!(reborn.uuid, doomed.uuid);
    for (what, tok) in [
        ("AT", &at),
        ("late AT", &at_late),
        ("RT", &rt),
        ("rotated RT", &rt0),
    ] {
        assert!(
            !active(&http, &t.issuer, &w, tok).await,
            "{what} of the deleted client after its client_id was registered again"
        );
        assert!(
            !active(&http, &t.issuer, &reborn.auth(), tok).await,
            "{what}, introspected by the new client"
        );
    }
    for tok in [&at, &at_late] {
        let ui = rp::userinfo(&http, &t.issuer, Some(&format!("Bearer {tok}")), None).await;
        assert_eq!(ui.status, StatusCode::UNAUTHORIZED, "{}", ui.describe());
    }
    // The old refresh token fails, with the new client's credentials too.
    refresh(&http, &t.issuer, &reborn.auth(), &rt)
        .await
        .assert_oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "old refresh token at the re-registered client",
        );
    refresh(&http, &t.issuer, &doomed.auth(), &rt)
        .await
        .assert_oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "old refresh token with the deleted client's secret",
        );

    // The consent did not carry over: the browser's session lives, yet the
    // consent page shows again, and prompt=none says consent_required.
    let rn =
        AuthRequest::new(&t.issuer, &reborn.id, REDIRECT, "openid profile").with("prompt", "none");
    let r = browser.get(&rn.url()).await;
    assert_eq!(rn.error_from(&r), "consent_required");
    let r2 = AuthRequest::new(
        &t.issuer,
        &reborn.id,
        REDIRECT,
        "openid profile offline_access",
    );
    let page = browser.get(&r2.url()).await;
    assert!(
        page.is_consent_page(),
        "consent for the re-registered client: {}",
        page.describe()
    );
    let code = r2.code_from(&browser.consent(&page, true).await);
    let fresh = tokens(
        &r2.redeem(&http, &code, &reborn.auth(), None).await,
        "new client",
    );
    assert!(active(&http, &t.issuer, &w, str_of(&fresh, "access_token")).await);
    assert!(active(&http, &t.issuer, &w, str_of(&fresh, "refresh_token")).await);
    // And the old tokens are still dead.
    assert!(!active(&http, &t.issuer, &w, &at_late).await);
    assert!(!active(&http, &t.issuer, &w, &rt).await);
}

/// Deleting a client also deletes its unredeemed codes: a client registered
/// again under the deleted one's `client_id` (same redirect URI) cannot
/// redeem a code the user approved for the deleted client.
#[tokio::test]
async fn a_code_of_a_deleted_client_is_not_redeemed_by_its_successor() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "delcode").await;
    let http = backchannel();
    let doomed = client(&s, &admin, &t, json!({"client_id": "doomed-code"})).await;
    let witness = client(&s, &admin, &t, json!({})).await;
    let (browser, req, _) = login_tokens(&http, &t, &doomed, "openid offline_access").await;
    // A code issued to the client, not redeemed yet.
    let pending = req.fresh();
    let code = sso_code(&browser, &pending).await;
    let (st, v) = s
        .delete(
            &format!("/api/v1/tenants/{}/clients/{}", t.tid, doomed.uuid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let reborn = client(&s, &admin, &t, json!({"client_id": "doomed-code"})).await;
    let r = pending.redeem(&http, &code, &reborn.auth(), None).await;
    if r.status == StatusCode::OK {
        let at = str_of(&r.body, "access_token");
        panic!(
            "a code issued to a deleted client was redeemed by the client registered again \
             under its client_id (AT active: {}): {}",
            active(&http, &t.issuer, &witness.auth(), at).await,
            r.describe()
        );
    }
    r.assert_oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "code of a deleted client",
    );
}

// ---------------------------------------------------------------- 3. form posts replayed as GET

#[tokio::test]
async fn a_logout_form_post_is_replayed_as_a_get_that_carries_the_session() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "postlogout").await;
    let c = client(
        &s,
        &admin,
        &t,
        json!({"post_logout_redirect_uris": [AFTER_LOGOUT]}),
    )
    .await;
    let http = backchannel();
    let (browser, req, first) = login_tokens(&http, &t, &c, "openid offline_access").await;
    let idt = str_of(&first, "id_token").to_string();
    let at = str_of(&first, "access_token").to_string();
    let rt = str_of(&first, "refresh_token").to_string();
    let state = "bye & good=night +é/?";
    let params = [
        ("id_token_hint", idt.as_str()),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
        ("state", state),
        ("client_id", c.id.as_str()),
    ];
    let endpoint = format!("{}/oauth/logout", t.issuer);

    // The relying party's cross-site form post carries no cookie: a 303 to
    // the same request as a GET, and nothing else.
    let posted = rp::post_form(&http, &endpoint, &params, &Auth::Nothing, None).await;
    let location = replayed_as_get(&posted, &t.issuer, "/oauth/logout", &params);
    assert!(
        posted.set_cookie("vx_session").is_none(),
        "{:?}",
        posted.set_cookies()
    );
    assert!(active(&http, &t.issuer, &c.auth(), &at).await);

    // Even with the session cookie, the POST itself ends nothing.
    let posted = browser.post(&endpoint, &owned(&params)).await;
    assert_eq!(
        replayed_as_get(&posted, &t.issuer, "/oauth/logout", &params),
        location
    );
    assert!(
        posted.set_cookie("vx_session").is_none(),
        "{:?}",
        posted.set_cookies()
    );
    assert!(active(&http, &t.issuer, &c.auth(), &at).await);
    assert!(active(&http, &t.issuer, &c.auth(), &rt).await);
    sso_code(&browser, &req.fresh()).await;

    // The browser follows the 303 with its cookie: signed out, back to the
    // registered URI with the state.
    let r = browser.get(&location).await;
    assert!(
        r.status == StatusCode::SEE_OTHER || r.status == StatusCode::FOUND,
        "{}",
        r.describe()
    );
    let loc = r.location().unwrap();
    let mut bare = loc.clone();
    bare.set_query(None);
    assert_eq!(bare.as_str(), AFTER_LOGOUT, "{}", r.describe());
    let got: Vec<(String, String)> = loc
        .query_pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, owned(&[("state", state)]), "{}", r.describe());
    let cleared = r.set_cookie("vx_session").expect("session cookie cleared");
    assert!(
        cleared.contains("Max-Age=0") || cleared.to_ascii_lowercase().contains("expires="),
        "{cleared}"
    );
    let page = browser.get(&req.fresh().url()).await;
    assert!(page.is_login_page(), "after logout: {}", page.describe());
    assert!(!active(&http, &t.issuer, &c.auth(), &at).await);
    assert!(!active(&http, &t.issuer, &c.auth(), &rt).await);

    // Without a hint: the replayed GET asks to confirm; confirming signs out.
    let code = login_for_code(&browser, &req.fresh(), &t.email, PASSWORD).await;
    assert!(!code.is_empty());
    let bare_params = [("client_id", c.id.as_str())];
    let posted = rp::post_form(&http, &endpoint, &bare_params, &Auth::Nothing, None).await;
    let location = replayed_as_get(&posted, &t.issuer, "/oauth/logout", &bare_params);
    let confirm = browser.get(&location).await;
    confirm.assert_page(StatusCode::OK, "logout confirmation");
    assert!(
        confirm.text.contains(r#"id="logout""#),
        "{}",
        confirm.describe()
    );
    sso_code(&browser, &req.fresh()).await;
    let done = browser.submit(&confirm, &[], Some("logout")).await;
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
}

#[tokio::test]
async fn an_authorization_form_post_is_replayed_as_a_get_that_carries_the_session() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "postauthz").await;
    let c = client(&s, &admin, &t, json!({})).await;
    let http = backchannel();
    let (browser, req, _) = login_tokens(&http, &t, &c, "openid").await;
    let endpoint = format!("{}/oauth/authorize", t.issuer);

    // Cross-site (no cookie): 303 to the same request as a GET.
    let r2 = req.fresh();
    let params = r2.params();
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let posted = rp::post_form(&http, &endpoint, &refs, &Auth::Nothing, None).await;
    let location = replayed_as_get(&posted, &t.issuer, "/oauth/authorize", &refs);
    // The browser follows it with its session: SSO, a code at once.
    let r = browser.get(&location).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.describe());
    let code = r2.code_from(&r);
    tokens(
        &r2.redeem(&http, &code, &c.auth(), None).await,
        "code after a posted request",
    );

    // A posted request for an unknown client: an error page, no redirect.
    let bad = AuthRequest::new(&t.issuer, "no-such-client", REDIRECT, "openid");
    let posted = browser.post(&endpoint, &bad.params()).await;
    posted.assert_error_page("posted request of an unknown client");
}

// ---------------------------------------------------------------- 4. prompt=consent

#[tokio::test]
async fn prompt_consent_shows_the_consent_page_for_clients_without_require_consent() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "promptconsent").await;
    let plain = client(&s, &admin, &t, json!({})).await;
    let (st, v) = s
        .get(
            &format!("/api/v1/tenants/{}/clients/{}", t.tid, plain.uuid),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["require_consent"], json!(false), "{v}");
    let http = backchannel();
    let browser = Browser::new();

    // Not signed in: the login page, then the consent page; allow -> code.
    let req = AuthRequest::new(&t.issuer, &plain.id, REDIRECT, "openid profile")
        .with("prompt", "consent");
    let page = browser.get(&req.url()).await;
    assert!(page.is_login_page(), "{}", page.describe());
    let consent = browser.login(&page, &t.email, PASSWORD).await;
    consent.assert_page(StatusCode::OK, "consent after login");
    assert!(consent.is_consent_page(), "{}", consent.describe());
    let code = req.code_from(&browser.consent(&consent, true).await);
    tokens(
        &req.redeem(&http, &code, &plain.auth(), None).await,
        "prompt=consent after login",
    );

    // Without prompt: no page (the client does not require consent).
    let quiet = AuthRequest::new(&t.issuer, &plain.id, REDIRECT, "openid profile email");
    sso_code(&browser, &quiet).await;

    // Signed in: prompt=consent shows the page again; deny -> access_denied.
    let rd = req.fresh();
    let consent = browser.get(&rd.url()).await;
    consent.assert_page(StatusCode::OK, "prompt=consent with a session");
    assert!(consent.is_consent_page(), "{}", consent.describe());
    assert_eq!(
        rd.error_from(&browser.consent(&consent, false).await),
        "access_denied"
    );
    // ...and allow -> a code that redeems.
    let ra = req.fresh();
    let consent = browser.get(&ra.url()).await;
    assert!(consent.is_consent_page(), "{}", consent.describe());
    let code = ra.code_from(&browser.consent(&consent, true).await);
    tokens(
        &ra.redeem(&http, &code, &plain.auth(), None).await,
        "prompt=consent with a session",
    );
}

// ---------------------------------------------------------------- 5. id_token_hint

#[tokio::test]
async fn an_access_token_is_no_id_token_hint() {
    let (s, admin) = Server::with_admin().await;
    let t = tenant(&s, &admin, "athint").await;
    let c = client(
        &s,
        &admin,
        &t,
        json!({"post_logout_redirect_uris": [AFTER_LOGOUT]}),
    )
    .await;
    let http = backchannel();
    let (browser, req, first) = login_tokens(&http, &t, &c, "openid offline_access").await;
    let at = str_of(&first, "access_token").to_string();
    let rt = str_of(&first, "refresh_token").to_string();
    let idt = str_of(&first, "id_token").to_string();
    let (h, claims) = rp::decode(&at);
    assert_eq!(h["typ"], json!("at+jwt"), "{h}");
    assert_eq!(claims["iss"], json!(t.issuer), "{claims}");

    // The access token where an ID token belongs: no silent sign-out, with
    // or without a post_logout_redirect_uri, as a GET or a replayed POST.
    let refused = |r: &rp::Reply, what: &str| {
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::OK,
            "{what}: {}",
            r.describe()
        );
        r.assert_page(r.status, what);
        assert!(
            r.text.contains(r#"id="error""#) || r.text.contains(r#"id="logout""#),
            "{what}: neither an error nor a confirmation page: {}",
            r.describe()
        );
        assert!(
            r.set_cookie("vx_session").is_none(),
            "{what}: the session cookie was touched: {:?}",
            r.set_cookies()
        );
    };
    let with_uri = [
        ("id_token_hint", at.as_str()),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
        ("state", "s1"),
    ];
    let r = browser.get(&logout_url(&t.issuer, &with_uri)).await;
    refused(&r, "AT hint with post_logout_redirect_uri");
    let r = browser
        .get(&logout_url(&t.issuer, &[("id_token_hint", at.as_str())]))
        .await;
    refused(&r, "AT hint alone");
    let r = browser
        .get(&logout_url(
            &t.issuer,
            &[("id_token_hint", at.as_str()), ("client_id", c.id.as_str())],
        ))
        .await;
    refused(&r, "AT hint with client_id");
    let endpoint = format!("{}/oauth/logout", t.issuer);
    let posted = browser.post(&endpoint, &owned(&with_uri)).await;
    let location = replayed_as_get(&posted, &t.issuer, "/oauth/logout", &with_uri);
    let r = browser.get(&location).await;
    refused(&r, "AT hint, posted");

    // The session and its tokens live on.
    sso_code(&browser, &req.fresh()).await;
    assert!(active(&http, &t.issuer, &c.auth(), &at).await);
    assert!(active(&http, &t.issuer, &c.auth(), &rt).await);

    // The ID token is a hint: signed out at once, back to the client.
    let r = browser
        .get(&logout_url(
            &t.issuer,
            &[
                ("id_token_hint", idt.as_str()),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
                ("state", "s2"),
            ],
        ))
        .await;
    assert!(r.status.is_redirection(), "{}", r.describe());
    assert_eq!(
        r.location().unwrap().as_str(),
        format!("{AFTER_LOGOUT}?state=s2")
    );
    let page = browser.get(&req.fresh().url()).await;
    assert!(page.is_login_page(), "after logout: {}", page.describe());
    assert!(!active(&http, &t.issuer, &c.auth(), &at).await);
}

/// OIDC Core §5.3.1: the master issuer's userinfo endpoint answers GET and
/// POST, like every tenant's (a missing token is 401 with a challenge, not
/// 405).
#[tokio::test]
async fn master_userinfo_accepts_get_and_post() {
    let (s, _) = Server::with_admin().await;
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let res = s
            .http
            .request(method.clone(), format!("{}/oauth/userinfo", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED, "{method}");
        assert!(
            res.headers().contains_key("www-authenticate"),
            "{method}: no challenge"
        );
    }
}
