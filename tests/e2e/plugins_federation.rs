//! identity-provider: `oidc-upstream` federates tenant "fed-down"'s login
//! to tenant "fed-up" of the same server, acting as an independent OpenID
//! Provider over real HTTP (discovery, code exchange with PKCE and a client
//! secret, userinfo). The login page shows the provider's button only where
//! it is active; the first sign-in creates the user just in time and links
//! it; later ones reuse it; states work once and only in the browser that
//! started them; existing accounts are reached only through a trusted,
//! verified email or an administrator's link.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::plugin_support::{Build, activate, claims, install, rust_plugin};
use crate::rp::{
    AuthRequest, Browser, PASSWORD, REDIRECT, Reply, Tenant, client, tenant, update_client,
};
use crate::support::Server;

const BUTTON: &str = "provider-oidc-upstream";

struct Federation {
    up: Tenant,
    down: Tenant,
    up_client: crate::rp::Client,
    app: crate::rp::Client,
}

async fn federation(s: &Server, admin: &str) -> Federation {
    install(s, admin, &rust_plugin("oidc-upstream")).await;
    let up = tenant(s, admin, "fed-up").await;
    let down = tenant(s, admin, "fed-down").await;
    let callback = format!("{}/oauth/federated/callback", down.issuer);
    let up_client = client(s, admin, &up, json!({"redirect_uris": [callback]})).await;
    activate(
        s,
        admin,
        &down.tid,
        "oidc-upstream",
        json!({
            "issuer": up.issuer, "client_id": up_client.id,
            "client_secret": up_client.secret.clone().unwrap(),
            "display_name": "Sign in with Upstream Corp",
        }),
    )
    .await;
    let app = client(s, admin, &down, json!({})).await;
    Federation {
        up,
        down,
        up_client,
        app,
    }
}

fn request(f: &Federation) -> AuthRequest {
    AuthRequest::new(&f.down.issuer, &f.app.id, REDIRECT, "openid email profile")
}

/// From the downstream login page to the upstream's login page; answers
/// (the upstream login page, the callback's state).
async fn leave_for_upstream(browser: &Browser, f: &Federation, req: &AuthRequest) -> Reply {
    let page = browser.get(&req.url()).await;
    assert!(page.is_login_page(), "{}", page.describe());
    assert!(
        page.text.contains("Sign in with Upstream Corp"),
        "{}",
        page.describe()
    );
    let away = browser.submit(&page, &[], Some(BUTTON)).await;
    assert_eq!(away.status, StatusCode::SEE_OTHER, "{}", away.describe());
    let to = away.location().unwrap();
    assert!(
        to.as_str()
            .starts_with(&format!("{}/oauth/authorize?", f.up.issuer)),
        "{to}"
    );
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], f.up_client.id);
    assert_eq!(
        q["redirect_uri"],
        format!("{}/oauth/federated/callback", f.down.issuer)
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43, "{q:?}");
    browser.get(to.as_str()).await
}

/// Signs in at the upstream and follows the redirect back to the callback.
async fn through_upstream(
    browser: &Browser,
    f: &Federation,
    req: &AuthRequest,
    user: &str,
) -> Reply {
    let up_login = leave_for_upstream(browser, f, req).await;
    assert!(up_login.is_login_page(), "{}", up_login.describe());
    let back = browser.login(&up_login, user, PASSWORD).await;
    let to = back
        .location()
        .unwrap_or_else(|| panic!("{}", back.describe()));
    assert!(
        to.as_str()
            .starts_with(&format!("{}/oauth/federated/callback?", f.down.issuer)),
        "{}",
        back.describe()
    );
    browser.get(to.as_str()).await
}

async fn id_token_sub(s: &Server, f: &Federation, req: &AuthRequest, done: &Reply) -> String {
    let code = req.code_from(done);
    let http = crate::rp::backchannel();
    let auth = crate::rp::Auth::basic(&f.app.id, f.app.secret.as_deref().unwrap());
    let t = crate::rp::tokens(
        &req.redeem(&http, &code, &auth, None).await,
        "federated code",
    );
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], f.down.issuer);
    assert_eq!(id["amr"], json!(["fed"]), "{id}");
    let _ = s;
    id["sub"].as_str().unwrap().to_string()
}

async fn user_count(s: &Server, admin: &str, t: &Tenant) -> i64 {
    s.get(&format!("/api/v1/tenants/{}/users", t.tid), admin)
        .await
        .1["total"]
        .as_i64()
        .unwrap()
}

both_builds!(another_tenant_is_an_upstream_openid_provider => another_tenant_is_an_upstream_openid_provider_wasm, another_tenant_is_an_upstream_openid_provider_native);

async fn another_tenant_is_an_upstream_openid_provider(build: Build) {
    let s = build
        .server(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "127.0.0.1")])
        .await;
    let admin = s.setup().await;
    let f = federation(&s, &admin).await;
    let other = tenant(&s, &admin, "fed-other").await;
    let other_app = client(&s, &admin, &other, json!({})).await;

    // A tenant without the plugin shows no provider button.
    let page = Browser::new()
        .get(&AuthRequest::new(&other.issuer, &other_app.id, REDIRECT, "openid").url())
        .await;
    assert!(page.is_login_page(), "{}", page.describe());
    assert!(!page.text.contains(BUTTON), "{}", page.describe());

    // First federated sign-in: a new local user, linked to the upstream subject.
    let before = user_count(&s, &admin, &f.down).await;
    let browser = Browser::new();
    let req = request(&f);
    let done = through_upstream(&browser, &f, &req, &f.up.email).await;
    let sub = id_token_sub(&s, &f, &req, &done).await;
    assert_ne!(
        sub, f.down.user_id,
        "never the local alice with the same email"
    );
    assert_eq!(user_count(&s, &admin, &f.down).await, before + 1);
    let users = format!("/api/v1/tenants/{}/users", f.down.tid);
    let (st, user) = s.get(&format!("{users}/{sub}"), &admin).await;
    assert_eq!(st, StatusCode::OK, "{user}");
    // The email exists locally (rp::tenant creates alice@fed-down.example,
    // the upstream's is alice@fed-up.example): distinct accounts.
    assert_eq!(user["email"], f.up.email);
    // The upstream says verified, but the tenant does not trust it for that.
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["first_name"], "Alice");
    assert_eq!(user["last_name"], "Liddell");
    assert_eq!(
        user["attributes"]["federation"],
        json!({"plugin": "oidc-upstream", "issuer": f.up.issuer})
    );
    let (st, links) = s
        .get(&format!("{users}/{sub}/federated-identities"), &admin)
        .await;
    assert_eq!(st, StatusCode::OK, "{links}");
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links[0]["issuer"], f.up.issuer);
    assert_eq!(links[0]["subject"], f.up.user_id);
    assert_eq!(links[0]["plugin_id"], "oidc-upstream");

    // The callback URL again (a replay): the state was consumed.
    let replay = browser.get(done.url.as_str()).await;
    assert_eq!(
        replay.status,
        StatusCode::BAD_REQUEST,
        "{}",
        replay.describe()
    );
    assert!(replay.text.contains("expired or was already completed"));

    // A second sign-in in a new browser reuses the same user.
    let b2 = Browser::new();
    let req2 = request(&f);
    let done2 = through_upstream(&b2, &f, &req2, &f.up.email).await;
    assert_eq!(id_token_sub(&s, &f, &req2, &done2).await, sub);
    assert_eq!(user_count(&s, &admin, &f.down).await, before + 1);
    // ... and the downstream session means SSO afterwards.
    let req3 = request(&f);
    let sso = b2.get(&req3.url()).await;
    assert_eq!(sso.status, StatusCode::FOUND, "{}", sso.describe());

    // prompt=login: the upstream is asked to authenticate again (its own
    // session in this browser does not answer silently), and the session's
    // auth_time is the upstream's fresh one.
    let req4 = request(&f).with("prompt", "login");
    let page = b2.get(&req4.url()).await;
    assert!(page.is_login_page(), "{}", page.describe());
    let away = b2.submit(&page, &[], Some(BUTTON)).await;
    let to = away.location().unwrap();
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q.get("prompt").map(String::as_str), Some("login"), "{to}");
    let up_login = b2.get(to.as_str()).await;
    assert!(
        up_login.is_login_page(),
        "the upstream must ask again: {}",
        up_login.describe()
    );
    let back = b2.login(&up_login, &f.up.email, PASSWORD).await;
    let done4 = b2.get(back.location().unwrap().as_str()).await;
    let code = req4.code_from(&done4);
    let http = crate::rp::backchannel();
    let auth = crate::rp::Auth::basic(&f.app.id, f.app.secret.as_deref().unwrap());
    let t = crate::rp::tokens(
        &req4.redeem(&http, &code, &auth, None).await,
        "prompt=login",
    );
    let id = claims(t["id_token"].as_str().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - id["auth_time"].as_i64().unwrap()).abs() <= 5, "{id}");
    assert_eq!(id["sub"], sub.as_str());

    // The audit log names the federated sign-in.
    let (_, audit) = s
        .get(
            &format!(
                "/api/v1/tenants/{}/audit-logs?action=user.login",
                f.down.tid
            ),
            &admin,
        )
        .await;
    assert!(
        audit.to_string().contains("federated:oidc-upstream"),
        "{audit}"
    );
}

#[tokio::test]
async fn federation_states_are_single_use_bound_to_the_browser_and_refusals_are_clear() {
    let s = Server::start_with(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "127.0.0.1")]).await;
    let admin = s.setup().await;
    let f = federation(&s, &admin).await;

    // A callback completed in another browser (a lured link) is refused, and
    // the state is gone for the original browser too.
    let browser = Browser::new();
    let req = request(&f);
    let up_login = leave_for_upstream(&browser, &f, &req).await;
    let back = browser.login(&up_login, &f.up.email, PASSWORD).await;
    let callback = back.location().unwrap();
    // The same state at another tenant's callback: unknown there (and not
    // consumed).
    let cross = browser
        .get(&callback.as_str().replacen(&f.down.issuer, &f.up.issuer, 1))
        .await;
    assert_eq!(
        cross.status,
        StatusCode::BAD_REQUEST,
        "{}",
        cross.describe()
    );
    let victim = Browser::new();
    let lured = victim.get(callback.as_str()).await;
    assert_eq!(lured.status, StatusCode::FORBIDDEN, "{}", lured.describe());
    assert!(
        lured.text.contains("another browser"),
        "{}",
        lured.describe()
    );
    let late = browser.get(callback.as_str()).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.describe());

    // Unknown or missing state.
    for q in ["", "?state=forged&code=x"] {
        let r = browser
            .get(&format!("{}/oauth/federated/callback{q}", f.down.issuer))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.describe());
    }

    // The user refuses consent at the upstream: back on the login page with
    // a message, nobody created.
    update_client(
        &s,
        &admin,
        &f.up,
        &f.up_client,
        json!({"require_consent": true}),
    )
    .await;
    let before = user_count(&s, &admin, &f.down).await;
    let b = Browser::new();
    let req = request(&f);
    let up_login = leave_for_upstream(&b, &f, &req).await;
    let consent = b.login(&up_login, &f.up.email, PASSWORD).await;
    let denied = b.consent(&consent, false).await;
    let to = denied.location().unwrap();
    assert!(to.as_str().contains("error=access_denied"), "{to}");
    let page = b.get(to.as_str()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.describe());
    assert!(
        page.text.contains("cancelled or refused") && page.text.contains(r#"id="password""#),
        "{}",
        page.describe()
    );
    assert_eq!(user_count(&s, &admin, &f.down).await, before);
    update_client(
        &s,
        &admin,
        &f.up,
        &f.up_client,
        json!({"require_consent": false}),
    )
    .await;

    // The upstream's token endpoint refuses the client (wrong secret): the
    // answer cannot be verified, the user is told so, nobody is created.
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/oidc-upstream", f.down.tid),
            &admin,
            json!({"config": {"issuer": f.up.issuer, "client_id": f.up_client.id,
                              "client_secret": "wrong-secret",
                              "display_name": "Sign in with Upstream Corp"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let b = Browser::new();
    let req = request(&f);
    let r = through_upstream(&b, &f, &req, &f.up.email).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert!(r.text.contains("could not be verified"), "{}", r.describe());
    assert_eq!(user_count(&s, &admin, &f.down).await, before);

    // Pressing the button in a loop: at most 20 sign-ins wait per address,
    // then the login page says so (and the plugin is not asked).
    let b = Browser::new();
    let page = b.get(&request(&f).url()).await;
    let mut refused_after = None;
    for i in 0..25 {
        let r = b.submit(&page, &[], Some(BUTTON)).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(r.text.contains("Too many sign-ins"), "{}", r.describe());
            refused_after = Some(i);
            break;
        }
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.describe());
    }
    assert!(refused_after.is_some_and(|n| n <= 20), "{refused_after:?}");
}

#[tokio::test]
async fn existing_accounts_are_reached_only_by_trusted_email_or_an_admin_link() {
    let s = Server::start_with(&[("PLUGIN_HTTP_ALLOWED_HOSTS", "127.0.0.1")]).await;
    let admin = s.setup().await;
    let f = federation(&s, &admin).await;
    // bob exists in both tenants with the same email; downstream with a
    // password of his own.
    let mk = |t: &Tenant| {
        json!({"email": "bob@shared.example", "password": format!("{PASSWORD}-{}", t.slug),
               "email_verified": true})
    };
    let up_bob: Value = s
        .create(&format!("/api/v1/tenants/{}/users", f.up.tid), &admin, {
            let mut b = mk(&f.up);
            b["password"] = json!(PASSWORD);
            b
        })
        .await;
    let down_bob: Value = s
        .create(
            &format!("/api/v1/tenants/{}/users", f.down.tid),
            &admin,
            mk(&f.down),
        )
        .await;
    let down_bob_id = down_bob["id"].as_str().unwrap().to_string();

    // Not trusted: refused, the local account untouched and unlinked.
    let before = user_count(&s, &admin, &f.down).await;
    let b = Browser::new();
    let req = request(&f);
    let r = through_upstream(&b, &f, &req, "bob@shared.example").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.describe());
    assert!(
        r.text.contains("cannot be used to sign in here"),
        "{}",
        r.describe()
    );
    assert_eq!(user_count(&s, &admin, &f.down).await, before);
    let links = format!(
        "/api/v1/tenants/{}/users/{down_bob_id}/federated-identities",
        f.down.tid
    );
    assert_eq!(s.get(&links, &admin).await.1, json!([]));

    // An administrator links the identity: bob signs in to his own account.
    let up_sub = up_bob["id"].as_str().unwrap();
    let (st, v) = s
        .post(
            &links,
            &admin,
            json!({"plugin_id": "oidc-upstream", "issuer": f.up.issuer, "subject": up_sub}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s
        .post(
            &links,
            &admin,
            json!({"plugin_id": "oidc-upstream", "issuer": f.up.issuer, "subject": up_sub}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let b = Browser::new();
    let req = request(&f);
    let done = through_upstream(&b, &f, &req, "bob@shared.example").await;
    assert_eq!(id_token_sub(&s, &f, &req, &done).await, down_bob_id);

    // Unlinked again, then the tenant trusts the provider's verified emails:
    // the first sign-in links by email.
    let (st, _) = s
        .delete(
            &format!(
                "{links}?plugin_id=oidc-upstream&issuer={}&subject={up_sub}",
                url::form_urlencoded::byte_serialize(f.up.issuer.as_bytes()).collect::<String>()
            ),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}", f.down.tid),
            &admin,
            json!({"settings": {"trusted_email_providers": [
                // Trust is per issuer: another upstream's does not count.
                {"plugin_id": "oidc-upstream", "issuer": "https://elsewhere.example"},
            ]}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let b = Browser::new();
    let req = request(&f);
    let r = through_upstream(&b, &f, &req, "bob@shared.example").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.describe());
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}", f.down.tid),
            &admin,
            json!({"settings": {"trusted_email_providers": [
                {"plugin_id": "oidc-upstream", "issuer": f.up.issuer},
            ]}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let b = Browser::new();
    let req = request(&f);
    let done = through_upstream(&b, &f, &req, "bob@shared.example").await;
    assert_eq!(id_token_sub(&s, &f, &req, &done).await, down_bob_id);
    assert_eq!(s.get(&links, &admin).await.1.as_array().unwrap().len(), 1);

    // A disabled account does not sign in through its link either.
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/users/{down_bob_id}", f.down.tid),
            &admin,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let b = Browser::new();
    let req = request(&f);
    let r = through_upstream(&b, &f, &req, "bob@shared.example").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.describe());
    assert!(r.text.contains("cannot sign in"), "{}", r.describe());

    // Disabling the plugin removes the button.
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/oidc-upstream", f.down.tid),
            &admin,
            json!({"enabled": false, "config": {"issuer": f.up.issuer, "client_id": f.up_client.id}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let page = Browser::new().get(&request(&f).url()).await;
    assert!(page.is_login_page(), "{}", page.describe());
    assert!(!page.text.contains(BUTTON));
}
