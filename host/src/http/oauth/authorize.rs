//! `/oauth/authorize` (login and consent pages) and `/oauth/logout`.
//!
//! Security decisions: the CSRF token is a random value in a `SameSite=Lax`,
//! `HttpOnly` cookie that every form must echo (double submit, compared in
//! constant time); cookies are scoped to the issuer's `/oauth/` path and
//! marked `Secure` when the issuer is https.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::form::{cookie, pairs};
use crate::context::Ctx;
use crate::crypto::secrets::random_secret;
use crate::http::extract::Meta;
use crate::http::oauth::{IssuerOf, anonymous};
use crate::http::pages::{self, ConsentForm, LoginForm};
use crate::model::BrowserSession;
use crate::oauth::authorize::{self, AuthorizationRequest, AuthorizeError, Next};
use crate::oauth::issuer::Issuer;
use crate::oauth::logout;
use crate::plugins::Category;
use crate::sessions::{self, login::LoginError};

pub(super) const SESSION_COOKIE: &str = "vx_session";
pub(super) const CSRF_COOKIE: &str = "vx_csrf";

pub(super) fn set_cookie(
    res: &mut Response,
    issuer: &Issuer,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) {
    let mut c = format!(
        "{name}={value}; Path={}/oauth/; HttpOnly; SameSite=Lax",
        issuer.path()
    );
    if let Some(m) = max_age {
        c.push_str(&format!("; Max-Age={m}"));
    }
    if issuer.is_https() {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The browser's CSRF token, or a new one to set.
pub(super) fn csrf_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE).filter(|c| c.len() == 43) {
        Some(c) => (c, false),
        None => (random_secret(), true),
    }
}

pub(super) fn csrf_ok(headers: &HeaderMap, form_value: Option<&String>) -> bool {
    match (cookie(headers, CSRF_COOKIE), form_value) {
        (Some(c), Some(f)) if !c.is_empty() => c.as_bytes().ct_eq(f.as_bytes()).into(),
        _ => false,
    }
}

pub(super) async fn browser_session(
    ctx: &Ctx,
    issuer: &Issuer,
    headers: &HeaderMap,
) -> Option<BrowserSession> {
    let value = cookie(headers, SESSION_COOKIE)?;
    match sessions::from_cookie(ctx, &issuer.tenant, &value).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            None
        }
    }
}

pub(super) fn refused(issuer: &Issuer, e: AuthorizeError, get: bool) -> Response {
    match e {
        AuthorizeError::Page { detail } => {
            pages::error(&issuer.tenant, StatusCode::BAD_REQUEST, &detail)
        }
        // A GET answers 302 Found as RFC 6749 shows; after a form post, 303
        // turns the POST into a GET.
        AuthorizeError::Redirect(url) if get => found(&url),
        AuthorizeError::Redirect(url) => Redirect::to(&url).into_response(),
    }
}

/// `302 Found` to `url`.
fn found(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => Redirect::to(url).into_response(),
    }
}

/// Renders what `next` asks for.
pub(super) async fn render(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    next: Next,
    csrf: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let action = issuer.endpoint("/oauth/authorize");
    let flow = authorize::seal_flow(ctx, issuer, req);
    match next {
        Next::Login => {
            let providers = if ctx
                .plugins
                .has(issuer.tenant.id, Category::IdentityProvider)
            {
                ctx.plugins.identity_providers(issuer.tenant.id).await
            } else {
                vec![]
            };
            pages::login(
                &issuer.tenant,
                status,
                &LoginForm {
                    action: &action,
                    client_name: &req.client.name,
                    flow: &flow,
                    csrf,
                    login_hint: req.login_hint.as_deref(),
                    error,
                    providers: &providers,
                },
            )
        }
        Next::Consent { user } => pages::consent(
            &issuer.tenant,
            &ConsentForm {
                action: &action,
                client_name: &req.client.name,
                user_email: &user.email,
                scopes: &req.scopes,
                flow: &flow,
                csrf,
            },
        ),
        // After a form post, 303 turns the POST into a GET.
        Next::Redirect(url) => Redirect::to(&url).into_response(),
    }
}

/// GET /oauth/authorize.
#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth", responses((status = 200, description = "Sign-in or consent page (HTML)"), (status = 302, description = "Redirect to the client with code or error"), (status = 400, description = "Error page for an untrusted client or redirect URI")))]
pub async fn authorize_get(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = pairs(query.unwrap_or_default().as_bytes());
    authorization_request(&ctx, &issuer, raw, &headers).await
}

/// Handles an authorization request (from the query or a POSTed form).
async fn authorization_request(
    ctx: &Ctx,
    issuer: &Issuer,
    raw: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Response {
    let req = match authorize::parse(ctx, issuer, raw).await {
        Ok(r) => r,
        Err(e) => return refused(issuer, e, true),
    };
    let session = browser_session(ctx, issuer, headers).await;
    let next = match authorize::decide(ctx, issuer, &req, session.as_ref(), false).await {
        Ok(n) => n,
        Err(e) => return refused(issuer, e, true),
    };
    if let Next::Redirect(url) = next {
        return found(&url);
    }
    let (csrf, fresh) = csrf_token(headers);
    let mut res = render(ctx, issuer, &req, next, &csrf, None, StatusCode::OK).await;
    if fresh {
        set_cookie(&mut res, issuer, CSRF_COOKIE, &csrf, None);
    }
    res
}

/// POST /oauth/authorize: the login and consent forms come back here.
#[utoipa::path(post, path = "/oauth/authorize", tag = "oauth", request_body(content_type = "application/x-www-form-urlencoded", content = String), responses((status = 303, description = "Redirect to the client"), (status = 200, description = "Next page (consent)"), (status = 401, description = "Sign-in page again after a bad password")))]
pub async fn authorize_post(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    meta: Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw_pairs = pairs(&body);
    // OIDC Core §3.1.2.1: an authorization request may itself be POSTed.
    // A cross-site POST arrives without the SameSite=Lax session cookie, so
    // it is turned into the equivalent GET, which carries it.
    if !raw_pairs.iter().any(|(k, _)| k == "action") {
        return match authorize::parse(&ctx, &issuer, raw_pairs.clone()).await {
            Ok(_) => as_get(&issuer, "/oauth/authorize", &raw_pairs),
            Err(e) => refused(&issuer, e, false),
        };
    }
    let form: std::collections::HashMap<String, String> = raw_pairs.into_iter().collect();
    if !csrf_ok(&headers, form.get("csrf")) {
        return pages::error(
            &issuer.tenant,
            StatusCode::FORBIDDEN,
            "This form has expired or cookies are blocked. Go back to the application and sign in again.",
        );
    }
    let csrf = form.get("csrf").cloned().unwrap_or_default();
    let raw = match authorize::open_flow(
        &ctx,
        &issuer,
        form.get("flow").map(String::as_str).unwrap_or(""),
    ) {
        Ok(r) => r,
        Err(e) => return refused(&issuer, e, false),
    };
    let req = match authorize::parse(&ctx, &issuer, raw).await {
        Ok(r) => r,
        Err(e) => return refused(&issuer, e, false),
    };
    match form.get("action").map(String::as_str) {
        Some("login") => login(&ctx, &issuer, &req, &form, &csrf, &headers, meta).await,
        Some("consent") => {
            let Some(session) = browser_session(&ctx, &issuer, &headers).await else {
                return render(
                    &ctx,
                    &issuer,
                    &req,
                    Next::Login,
                    &csrf,
                    Some("Your session ended. Sign in again."),
                    StatusCode::OK,
                )
                .await;
            };
            let allow = form.get("decision").map(String::as_str) == Some("allow");
            match authorize::consent_and_issue(&ctx, &issuer, &req, &session, allow).await {
                Ok(url) => Redirect::to(&url).into_response(),
                Err(e) => refused(&issuer, e, false),
            }
        }
        _ => pages::error(
            &issuer.tenant,
            StatusCode::BAD_REQUEST,
            "The form is incomplete.",
        ),
    }
}

async fn login(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    form: &std::collections::HashMap<String, String>,
    csrf: &str,
    headers: &HeaderMap,
    meta: Meta,
) -> Response {
    if let Some(provider) = form.get("provider") {
        return super::federation::start(ctx, issuer, req, provider, csrf, headers, meta).await;
    }
    let username = form.get("username").map(|s| s.trim()).unwrap_or("");
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let actor = anonymous(meta);
    let (ip, ua) = (actor.ip.clone(), actor.user_agent.clone());
    let user_id = match sessions::login::verify_password(
        ctx,
        &issuer.tenant,
        &req.client.client_id,
        "login_page",
        username,
        password,
        actor,
    )
    .await
    {
        Ok(u) => u,
        Err(e) => {
            let (message, status) = match &e {
                LoginError::Invalid => ("Invalid email or password.".to_string(), StatusCode::UNAUTHORIZED),
                LoginError::Locked => (
                    "This account is temporarily locked after too many failed sign-ins. Try again later.".to_string(),
                    StatusCode::FORBIDDEN,
                ),
                LoginError::Vetoed(m) => (format!("Sign-in refused: {m}"), StatusCode::FORBIDDEN),
                LoginError::RateLimited(after) => (
                    format!("Too many sign-in attempts. Try again in {after} seconds."),
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                _ => {
                    tracing::error!(error = %e, "login failed");
                    (
                        "Sign-in is unavailable right now. Try again shortly.".to_string(),
                        StatusCode::SERVICE_UNAVAILABLE,
                    )
                }
            };
            let mut again = req.clone();
            again.login_hint = Some(username.to_string()).filter(|u| !u.is_empty());
            return render(
                ctx,
                issuer,
                &again,
                Next::Login,
                csrf,
                Some(&message),
                status,
            )
            .await;
        }
    };
    signed_in(
        ctx,
        issuer,
        req,
        user_id,
        ("pwd", None),
        csrf,
        headers,
        (ip, ua),
    )
    .await
}

/// After a successful sign-in (password or federated): a new session
/// replacing the browser's old one (authenticated now, or at the upstream's
/// `auth_time`), then consent or the redirect.
#[allow(clippy::too_many_arguments)]
pub(super) async fn signed_in(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    user_id: uuid::Uuid,
    (amr, auth_time): (&str, Option<crate::time::Timestamp>),
    csrf: &str,
    headers: &HeaderMap,
    (ip, ua): (Option<String>, Option<String>),
) -> Response {
    // A new sign-in replaces whatever session this browser had.
    if let Some(old) = browser_session(ctx, issuer, headers).await
        && let Err(e) = sessions::replace(ctx, &issuer.tenant, old.id).await
    {
        tracing::warn!(error = %e, "could not end the replaced session");
    }
    let (session, cookie_value) =
        match sessions::start(ctx, &issuer.tenant, user_id, amr, auth_time, ip, ua).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not start a session");
                return pages::error(
                    &issuer.tenant,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable right now.",
                );
            }
        };
    let next = authorize::decide(ctx, issuer, req, Some(&session), true).await;
    let mut res = match next {
        Ok(n) => render(ctx, issuer, req, n, csrf, None, StatusCode::OK).await,
        Err(e) => refused(issuer, e, false),
    };
    set_cookie(&mut res, issuer, SESSION_COOKIE, &cookie_value, None);
    res
}

async fn logout_flow(
    ctx: &Ctx,
    issuer: &Issuer,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
    confirmed: bool,
) -> Response {
    let req = match logout::validate(ctx, issuer, &params).await {
        Ok(r) => r,
        Err(detail) => return pages::error(&issuer.tenant, StatusCode::BAD_REQUEST, &detail),
    };
    let session = browser_session(ctx, issuer, headers).await;
    if let Some(s) = &session {
        let same_user = req.hint_subject.is_none_or(|u| u == s.user_id);
        if !(confirmed || req.hinted && same_user) {
            let (csrf, fresh) = csrf_token(headers);
            let fields: Vec<(String, String)> = params
                .into_iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "post_logout_redirect_uri" | "state" | "client_id" | "id_token_hint"
                    )
                })
                .collect();
            let mut res = pages::logout_confirm(
                &issuer.tenant,
                &issuer.endpoint("/oauth/logout"),
                &fields,
                &csrf,
            );
            if fresh {
                set_cookie(&mut res, issuer, CSRF_COOKIE, &csrf, None);
            }
            return res;
        }
        if let Err(e) = sessions::end(ctx, &issuer.tenant, s.id).await {
            tracing::error!(error = %e, "could not end a session");
            return pages::error(
                &issuer.tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-out is unavailable right now.",
            );
        }
    }
    let mut res = match req.redirect {
        Some(url) => Redirect::to(&url).into_response(),
        None => pages::signed_out(&issuer.tenant),
    };
    set_cookie(&mut res, issuer, SESSION_COOKIE, "", Some(0));
    res
}

/// GET /oauth/logout.
#[utoipa::path(get, path = "/oauth/logout", tag = "oauth", responses((status = 200, description = "Confirmation or signed-out page"), (status = 303, description = "Redirect to the registered post-logout URI")))]
pub async fn logout_get(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = pairs(query.unwrap_or_default().as_bytes());
    logout_flow(&ctx, &issuer, params, &headers, false).await
}

/// POST /oauth/logout: a relying party's form post, or the confirmation.
#[utoipa::path(post, path = "/oauth/logout", tag = "oauth", request_body(content_type = "application/x-www-form-urlencoded", content = String), responses((status = 200, description = "Signed-out page"), (status = 303, description = "Redirect to the registered post-logout URI")))]
pub async fn logout_post(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = pairs(&body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let confirmed = get("confirm").as_deref() == Some("yes");
    if confirmed && !csrf_ok(&headers, get("csrf").as_ref()) {
        return pages::error(
            &issuer.tenant,
            StatusCode::FORBIDDEN,
            "This form has expired. Try signing out again.",
        );
    }
    if !confirmed {
        // A relying party's cross-site form post carries no SameSite=Lax
        // cookie: replay it as a GET, which does.
        return as_get(&issuer, "/oauth/logout", &params);
    }
    logout_flow(&ctx, &issuer, params, &headers, confirmed).await
}

/// `303 See Other` to the same endpoint with `params` as its query.
pub(super) fn as_get(issuer: &Issuer, path: &str, params: &[(String, String)]) -> Response {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    if query.len() > 16 * 1024 {
        return pages::error(
            &issuer.tenant,
            StatusCode::BAD_REQUEST,
            "The request is too large.",
        );
    }
    Redirect::to(&format!("{}?{query}", issuer.endpoint(path))).into_response()
}
