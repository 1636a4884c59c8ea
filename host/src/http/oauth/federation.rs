//! Federated sign-in from the hosted login page: a provider button leaves
//! for the upstream (`start`), and `/oauth/federated/callback` brings the
//! browser back (`callback_get`, `callback_post`).
//!
//! Security decisions:
//! - `state` is 32 random bytes from the host; only its SHA-256 is stored,
//!   with the nonce, the plugin's flow state and the relying party's sealed
//!   request, for 10 minutes, and the callback consumes it (deleted before
//!   anything else happens), so a state works once.
//! - The stored state is bound to the browser: the SHA-256 of its CSRF
//!   cookie must match at the callback. A callback URL lured into another
//!   browser (login CSRF, session fixation) finds no binding and fails.
//! - The CSRF cookie is `SameSite=Lax`, sent on the upstream's top-level
//!   GET redirect back; a `form_post` callback (a cross-site POST, which
//!   carries no Lax cookie) is answered with a 303 to the same URL as a GET.
//! - The plugin's flow state (e.g. the PKCE verifier) never reaches the
//!   browser.
//! - At most `MAX_PENDING_PER_CLIENT` sign-ins wait per client address
//!   and `MAX_PENDING` per tenant, checked before the plugin is asked, so
//!   someone pressing the button in a loop neither fills the table for
//!   everyone nor makes the plugin call its upstream at will.
//! - The browser is sent to the URL as parsed and re-serialised (no control
//!   characters reach the `Location` header).
//! - Callback failures (unknown state, another browser, an upstream refusal,
//!   an answer that does not verify) are audited as `user.login_failed`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::authorize::{CSRF_COOKIE, as_get, csrf_token, refused, render, set_cookie, signed_in};
use super::form::{cookie, pairs};
use crate::context::Ctx;
use crate::crypto::secrets::{random_secret, sha256_hex};
use crate::http::extract::Meta;
use crate::http::oauth::{IssuerOf, anonymous};
use crate::http::pages;
use crate::model::{Actor, AuditEvent};
use crate::oauth::authorize::{self, AuthorizationRequest, Next};
use crate::oauth::issuer::Issuer;
use crate::plugins::hooks::identity_provider::{
    BeginFederation, CompleteFederation, FederationOutcome,
};
use crate::sessions::federation::{self, FederationError};
use crate::store::{FederationState, StoreError};
use crate::time::Timestamp;
use serde_json::json;

/// How long a browser may spend at the upstream.
const STATE_LIFETIME_SECONDS: i64 = 600;
/// Sign-ins waiting at upstreams per tenant.
pub const MAX_PENDING: i64 = 100_000;
/// Sign-ins waiting at upstreams per client address.
pub const MAX_PENDING_PER_CLIENT: i64 = 20;

fn callback_url(issuer: &Issuer) -> String {
    issuer.endpoint("/oauth/federated/callback")
}

async fn login_again(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    csrf: &str,
    message: &str,
    status: StatusCode,
) -> Response {
    render(ctx, issuer, req, Next::Login, csrf, Some(message), status).await
}

/// A provider button was pressed on the login page (CSRF already checked):
/// ask the plugin for the upstream URL, remember the sign-in, send the
/// browser there.
pub(super) async fn start(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    plugin_id: &str,
    csrf: &str,
    headers: &HeaderMap,
    meta: Meta,
) -> Response {
    let tenant = issuer.tenant.id;
    let client_ip = meta.0.ip.clone().unwrap_or_default();
    if !ctx.plugins.is_identity_provider(tenant, plugin_id) {
        return login_again(
            ctx,
            issuer,
            req,
            csrf,
            "This sign-in option is no longer available.",
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let Some(browser) = cookie(headers, CSRF_COOKIE).filter(|c| !c.is_empty()) else {
        return pages::error(
            &issuer.tenant,
            StatusCode::FORBIDDEN,
            "Cookies are blocked. Allow cookies for this site and sign in again.",
        );
    };
    let too_many = match ctx
        .store
        .pending_federations(tenant, &client_ip, Timestamp::now())
        .await
    {
        Ok((all, mine)) => all >= MAX_PENDING || mine >= MAX_PENDING_PER_CLIENT,
        Err(e) => {
            tracing::error!(error = %e, "could not count federated sign-ins");
            true
        }
    };
    if too_many {
        return login_again(
            ctx,
            issuer,
            req,
            csrf,
            "Too many sign-ins are in progress. Try again in a few minutes.",
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    }
    let (state, nonce) = (random_secret(), random_secret());
    let callback = callback_url(issuer);
    let locales: Vec<String> = req
        .raw
        .iter()
        .find(|(k, _)| k == "ui_locales")
        .map(|(_, v)| v.split_whitespace().take(8).map(str::to_string).collect())
        .unwrap_or_default();
    let begin = BeginFederation {
        callback_url: &callback,
        state: &state,
        nonce: &nonce,
        login_hint: req.login_hint.as_deref(),
        locales: &locales,
        force_authentication: req.prompt.iter().any(|p| p == "login"),
        max_age: req.max_age.and_then(|m| u64::try_from(m).ok()),
    };
    let redirect = match ctx
        .plugins
        .begin_federation(tenant, plugin_id, &begin)
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => {
            return login_again(
                ctx,
                issuer,
                req,
                csrf,
                "This sign-in option is no longer available.",
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Err(f) => {
            tracing::warn!(plugin = %f.plugin_id, error = %f.error, "identity provider could not begin");
            return login_again(
                ctx,
                issuer,
                req,
                csrf,
                "This sign-in option is unavailable right now. Try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await;
        }
    };
    let now = Timestamp::now();
    let pending = FederationState {
        state_hash: sha256_hex(&state),
        tenant_id: tenant,
        plugin_id: plugin_id.to_string(),
        nonce,
        flow_state: redirect.flow_state,
        authorization_request: authorize::seal_flow(ctx, issuer, req),
        browser_binding: sha256_hex(&browser),
        client_ip,
        created_at: now,
        expires_at: now.plus_seconds(STATE_LIFETIME_SECONDS),
    };
    // The hook checked that it parses; send the normalised form.
    let Ok(location) = url::Url::parse(&redirect.url) else {
        return pages::error(
            &issuer.tenant,
            StatusCode::BAD_GATEWAY,
            "This sign-in option is misconfigured.",
        );
    };
    match ctx
        .store
        .put_federation_state(&pending, MAX_PENDING, MAX_PENDING_PER_CLIENT)
        .await
    {
        Ok(()) => Redirect::to(location.as_str()).into_response(),
        Err(StoreError::Conflict(_)) => {
            login_again(
                ctx,
                issuer,
                req,
                csrf,
                "Too many sign-ins are in progress. Try again in a few minutes.",
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record a federated sign-in");
            pages::error(
                &issuer.tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now.",
            )
        }
    }
}

/// GET /oauth/federated/callback: the upstream sends the browser back.
#[utoipa::path(get, path = "/oauth/federated/callback", tag = "oauth", responses((status = 302, description = "Signed in: to the client, or on to consent"), (status = 200, description = "Consent page"), (status = 400, description = "Unknown, used or expired sign-in"), (status = 403, description = "Refused, or started in another browser")))]
pub async fn callback_get(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    meta: Meta,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = pairs(query.unwrap_or_default().as_bytes());
    callback(&ctx, &issuer, meta, params, &headers).await
}

/// POST /oauth/federated/callback: a `form_post` response. It arrives
/// cross-site without the browser's Lax cookies, so it is replayed as a GET.
#[utoipa::path(post, path = "/oauth/federated/callback", tag = "oauth", request_body(content_type = "application/x-www-form-urlencoded", content = String), responses((status = 303, description = "The same callback as a GET")))]
pub async fn callback_post(IssuerOf(issuer): IssuerOf, body: Bytes) -> Response {
    as_get(&issuer, "/oauth/federated/callback", &pairs(&body))
}

/// Allowed difference between our clock and the upstream's.
const CLOCK_SKEW_MS: i64 = 60_000;

/// Whether the upstream's authentication satisfies the relying party's
/// `max_age` and `prompt=login`: with either, the upstream must say when
/// it authenticated the user (`auth_time`); with `max_age`, no longer ago
/// than that; with `prompt=login`, not before this sign-in started.
fn fresh_enough(req: &AuthorizationRequest, auth_time: Option<i64>, started: Timestamp) -> bool {
    let force = req.prompt.iter().any(|p| p == "login");
    if req.max_age.is_none() && !force {
        return true;
    }
    let Some(at) = auth_time else {
        return false;
    };
    let now = Timestamp::now().unix_millis();
    let within_max_age = req
        .max_age
        .is_none_or(|m| now - at <= m.saturating_mul(1000) + CLOCK_SKEW_MS);
    let since_start = !force || at + CLOCK_SKEW_MS >= started.unix_millis();
    within_max_age && since_start
}

/// Records a federated sign-in that went nowhere.
async fn audit_failure(ctx: &Ctx, issuer: &Issuer, actor: &Actor, plugin: &str, reason: &str) {
    let ev = AuditEvent {
        tenant_id: issuer.tenant.id,
        actor: actor.clone(),
        action: "user.login_failed".into(),
        target_type: "user".into(),
        target_id: None,
        changes: json!({ "via": format!("federated:{plugin}"), "reason": reason }),
    };
    if let Err(e) = ctx.store.append_audit(&ev).await {
        tracing::error!(error = %e, "could not audit a failed federated sign-in");
    }
}

async fn callback(
    ctx: &Ctx,
    issuer: &Issuer,
    meta: Meta,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Response {
    let actor = anonymous(meta);
    let expired = || {
        pages::error(
            &issuer.tenant,
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was already completed. Go back to the application and sign in again.",
        )
    };
    let Some(state) = params
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone())
        .filter(|s| !s.is_empty() && s.len() <= 512)
    else {
        return expired();
    };
    let pending = match ctx
        .store
        .take_federation_state(issuer.tenant.id, &sha256_hex(&state), Timestamp::now())
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            audit_failure(ctx, issuer, &actor, "-", "unknown, used or expired state").await;
            return expired();
        }
        Err(e) => {
            tracing::error!(error = %e, "could not read a federated sign-in");
            return pages::error(
                &issuer.tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now.",
            );
        }
    };
    let bound = cookie(headers, CSRF_COOKIE).is_some_and(|c| {
        sha256_hex(&c)
            .as_bytes()
            .ct_eq(pending.browser_binding.as_bytes())
            .into()
    });
    if !bound {
        audit_failure(
            ctx,
            issuer,
            &actor,
            &pending.plugin_id,
            "the callback came to another browser than the one that started the sign-in",
        )
        .await;
        return pages::error(
            &issuer.tenant,
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser, or cookies are blocked. Go back to the application and sign in again.",
        );
    }
    let req = match authorize::open_flow(ctx, issuer, &pending.authorization_request) {
        Ok(raw) => match authorize::parse(ctx, issuer, raw).await {
            Ok(r) => r,
            Err(e) => return refused(issuer, e, true),
        },
        Err(e) => return refused(issuer, e, true),
    };
    let (csrf, fresh) = csrf_token(headers);
    let callback = callback_url(issuer);
    let complete = CompleteFederation {
        callback_url: &callback,
        query: &params,
        form: &[],
        flow_state: &pending.flow_state,
        nonce: &pending.nonce,
    };
    let outcome = ctx
        .plugins
        .complete_federation(issuer.tenant.id, &pending.plugin_id, &complete)
        .await;
    let mut res = match outcome {
        Ok(Some(FederationOutcome::Authenticated(identity)))
            if !fresh_enough(&req, identity.auth_time, pending.created_at) =>
        {
            audit_failure(
                ctx,
                issuer,
                &actor,
                &pending.plugin_id,
                "the upstream did not authenticate the user recently enough (prompt=login or max_age)",
            )
            .await;
            login_again(
                ctx,
                issuer,
                &req,
                &csrf,
                "The identity provider did not confirm a fresh sign-in, which this application asks for. Try again.",
                StatusCode::FORBIDDEN,
            )
            .await
        }
        Ok(Some(FederationOutcome::Authenticated(identity))) => {
            let (ip, ua) = (actor.ip.clone(), actor.user_agent.clone());
            match federation::sign_in(
                ctx,
                &issuer.tenant,
                &identity,
                &req.client.client_id,
                actor.clone(),
            )
            .await
            {
                Ok(user_id) => {
                    // The session's authentication time is the upstream's,
                    // when it says (never in the future).
                    let auth_time = identity
                        .auth_time
                        .and_then(Timestamp::from_unix_millis)
                        .filter(|t| *t <= Timestamp::now());
                    signed_in(
                        ctx,
                        issuer,
                        &req,
                        user_id,
                        ("fed", auth_time),
                        &csrf,
                        headers,
                        (ip, ua),
                    )
                    .await
                }
                Err(FederationError::Refused(m)) => {
                    login_again(ctx, issuer, &req, &csrf, &m, StatusCode::FORBIDDEN).await
                }
                Err(e) => {
                    tracing::error!(error = %e, "federated sign-in failed");
                    login_again(
                        ctx,
                        issuer,
                        &req,
                        &csrf,
                        "Sign-in is unavailable right now. Try again shortly.",
                        StatusCode::SERVICE_UNAVAILABLE,
                    )
                    .await
                }
            }
        }
        Ok(Some(FederationOutcome::Denied { error_code, .. })) => {
            audit_failure(
                ctx,
                issuer,
                &actor,
                &pending.plugin_id,
                &format!("the upstream refused: {error_code}"),
            )
            .await;
            let message = if error_code == "access_denied" {
                "Sign-in at the identity provider was cancelled or refused.".to_string()
            } else {
                format!("The identity provider did not sign you in ({error_code}).")
            };
            login_again(ctx, issuer, &req, &csrf, &message, StatusCode::FORBIDDEN).await
        }
        Ok(None) => {
            login_again(
                ctx,
                issuer,
                &req,
                &csrf,
                "This sign-in option is no longer available.",
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(f) => {
            tracing::warn!(plugin = %f.plugin_id, error = %f.error, "identity provider could not complete");
            audit_failure(
                ctx,
                issuer,
                &actor,
                &pending.plugin_id,
                &format!("the plugin failed: {}", f.error.code()),
            )
            .await;
            login_again(
                ctx,
                issuer,
                &req,
                &csrf,
                "The identity provider's answer could not be verified. Try again.",
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
    };
    if fresh {
        set_cookie(&mut res, issuer, CSRF_COOKIE, &csrf, None);
    }
    res
}
