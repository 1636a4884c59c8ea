//! The authorization endpoint's logic: validating an authorization request
//! (RFC 6749 §4.1.1, OIDC Core §3.1.2), deciding whether the user must log in
//! or consent, and issuing the code.
//!
//! Security decisions:
//! - Until the client and redirect URI are known good, errors are shown as a
//!   page and never redirected (RFC 6749 §4.1.2.1): no open redirector.
//! - Redirect URIs match exactly, character for character.
//! - PKCE: only `S256`; `plain` is refused; public clients must use it.
//! - Every redirect carries `iss` (RFC 9207) against mix-up attacks.
//! - The login page's state travels sealed (AES-GCM under the master key,
//!   bound to the tenant) with a 30-minute expiry, so it cannot be forged or
//!   replayed into another tenant, and the server stores nothing per visit.

use serde_json::json;
use uuid::Uuid;

use super::client_auth::load_client;
use super::error::OAuthError;
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::secrets::{random_secret, sha256_hex};
use crate::model::{AuthorizationCode, BrowserSession, OAuthClient, User};
use crate::time::Timestamp;

/// Authorization codes live this long (seconds).
pub const CODE_LIFETIME: i64 = 60;

/// Login-page state lives this long (seconds).
const FLOW_LIFETIME: i64 = 1800;

/// Scopes the provider knows; clients may register more (API scopes).
pub const STANDARD_SCOPES: &[&str] = &["openid", "profile", "email", "phone", "offline_access"];

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: OAuthClient,
    /// The redirect URI (registered, exact).
    pub redirect_uri: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Opaque client state.
    pub state: Option<String>,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt` values.
    pub prompt: Vec<String>,
    /// `max_age` seconds.
    pub max_age: Option<i64>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10): binds the code to a DPoP key.
    pub dpop_jkt: Option<String>,
    /// The raw parameters, re-validated when the login form comes back.
    pub raw: Vec<(String, String)>,
}

/// A refused authorization request.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// Shown to the user as an error page.
    Page {
        /// What went wrong, for the user.
        detail: String,
    },
    /// Sent to the client's redirect URI.
    Redirect(String),
}

impl From<OAuthError> for AuthorizeError {
    fn from(e: OAuthError) -> Self {
        AuthorizeError::Page {
            detail: e.error_description,
        }
    }
}

/// What the browser must see next.
#[derive(Debug, Clone)]
pub enum Next {
    /// The login form.
    Login,
    /// The consent screen for `scopes`.
    Consent {
        /// The signed-in user.
        user: Box<User>,
    },
    /// A redirect to the client (code or error).
    Redirect(String),
}

/// The URL of a redirect to the client with `params` plus `state` and `iss`.
pub fn client_redirect(
    issuer: &Issuer,
    redirect_uri: &str,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(redirect_uri).expect("registered redirect URIs are valid URLs");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &issuer.url);
    }
    url.to_string()
}

fn redirect_error(
    issuer: &Issuer,
    req: &AuthorizationRequest,
    error: &str,
    description: &str,
) -> AuthorizeError {
    AuthorizeError::Redirect(client_redirect(
        issuer,
        &req.redirect_uri,
        req.state.as_deref(),
        &[("error", error), ("error_description", description)],
    ))
}

fn page(detail: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Page {
        detail: detail.into(),
    }
}

/// Validates an authorization request's parameters.
pub async fn parse(
    ctx: &Ctx,
    issuer: &Issuer,
    raw: Vec<(String, String)>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let mut seen = std::collections::HashSet::new();
    let mut repeated = None;
    for (k, v) in &raw {
        if !seen.insert(k.as_str()) {
            repeated = Some(k.clone());
        }
        if v.contains('\0') || v.len() > 4096 {
            return Err(page(format!("the parameter '{k}' is malformed")));
        }
    }
    let get = |k: &str| {
        raw.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    if matches!(repeated.as_deref(), Some("client_id" | "redirect_uri")) {
        return Err(page("client_id and redirect_uri must appear once"));
    }
    if !issuer.tenant.enabled {
        return Err(page("this tenant is disabled"));
    }
    let client_id = get("client_id").ok_or_else(|| page("the request has no client_id"))?;
    let client = load_client(ctx, issuer, &client_id)
        .await?
        .filter(|c| c.client.client.enabled)
        .ok_or_else(|| page("the client is unknown or disabled"))?
        .client
        .client
        .clone();
    let redirect_uri = match get("redirect_uri") {
        Some(u) if client.redirect_uris.contains(&u) => u,
        Some(_) => return Err(page("the redirect_uri is not registered for this client")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("the request has no redirect_uri")),
    };
    let mut req = AuthorizationRequest {
        client,
        redirect_uri,
        scopes: vec![],
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        prompt: get("prompt")
            .map(|p| p.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        max_age: None,
        login_hint: get("login_hint"),
        dpop_jkt: get("dpop_jkt"),
        raw: raw.clone(),
    };
    // From here on the redirect URI is trusted: errors go to the client.
    if let Some(k) = repeated {
        return Err(redirect_error(
            issuer,
            &req,
            "invalid_request",
            &format!("parameter '{k}' is repeated"),
        ));
    }
    if get("request").is_some() {
        return Err(redirect_error(
            issuer,
            &req,
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if get("request_uri").is_some() {
        return Err(redirect_error(
            issuer,
            &req,
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match get("response_type").as_deref() {
        Some("code") => {}
        None => {
            return Err(redirect_error(
                issuer,
                &req,
                "invalid_request",
                "response_type is required",
            ));
        }
        Some(_) => {
            return Err(redirect_error(
                issuer,
                &req,
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if get("response_mode").is_some_and(|m| m != "query") {
        return Err(redirect_error(
            issuer,
            &req,
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if !req.client.allows_grant("authorization_code") {
        return Err(redirect_error(
            issuer,
            &req,
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let requested: Vec<String> = match get("scope") {
        Some(s) => s.split_whitespace().map(String::from).collect(),
        None => vec![],
    };
    for s in &requested {
        if !req.client.scopes.contains(s) {
            return Err(redirect_error(
                issuer,
                &req,
                "invalid_scope",
                &format!("scope '{s}' is not allowed for this client"),
            ));
        }
        if !req.scopes.contains(s) {
            req.scopes.push(s.clone());
        }
    }
    match (get("code_challenge_method").as_deref(), &req.code_challenge) {
        (Some("S256"), Some(c)) => {
            let ok = (43..=128).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok {
                return Err(redirect_error(
                    issuer,
                    &req,
                    "invalid_request",
                    "code_challenge must be 43-128 characters",
                ));
            }
        }
        (Some("S256"), None) => {
            return Err(redirect_error(
                issuer,
                &req,
                "invalid_request",
                "code_challenge is missing",
            ));
        }
        (Some(_), _) => {
            return Err(redirect_error(
                issuer,
                &req,
                "invalid_request",
                "only code_challenge_method=S256 is supported",
            ));
        }
        (None, Some(_)) => {
            // RFC 7636 defaults to plain, which is refused.
            return Err(redirect_error(
                issuer,
                &req,
                "invalid_request",
                "code_challenge_method=S256 is required",
            ));
        }
        (None, None) if req.client.require_pkce || !req.client.is_confidential() => {
            return Err(redirect_error(
                issuer,
                &req,
                "invalid_request",
                "PKCE (code_challenge with S256) is required for this client",
            ));
        }
        (None, None) => {}
    }
    for p in &req.prompt {
        if !matches!(p.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(redirect_error(
                issuer,
                &req,
                "invalid_request",
                &format!("unknown prompt value '{p}'"),
            ));
        }
    }
    if req.prompt.iter().any(|p| p == "none") && req.prompt.len() > 1 {
        return Err(redirect_error(
            issuer,
            &req,
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    if let Some(m) = get("max_age") {
        match m.parse::<i64>() {
            Ok(v) if v >= 0 => req.max_age = Some(v),
            _ => {
                return Err(redirect_error(
                    issuer,
                    &req,
                    "invalid_request",
                    "max_age must be a non-negative integer",
                ));
            }
        }
    }
    if let Some(j) = &req.dpop_jkt
        && (j.len() != 43
            || !j
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(redirect_error(
            issuer,
            &req,
            "invalid_request",
            "dpop_jkt must be a base64url SHA-256 thumbprint",
        ));
    }
    if req.login_hint.as_ref().is_some_and(|h| h.len() > 254) {
        req.login_hint = None;
    }
    Ok(req)
}

/// Seals the request parameters for the login form.
pub fn seal_flow(ctx: &Ctx, issuer: &Issuer, req: &AuthorizationRequest) -> String {
    let body = json!({ "p": req.raw, "t": Timestamp::now().unix() }).to_string();
    ctx.master.seal(
        body.as_bytes(),
        &format!("authorize-flow:{}", issuer.tenant.id),
    )
}

/// Opens sealed login-form state back into parameters.
pub fn open_flow(
    ctx: &Ctx,
    issuer: &Issuer,
    sealed: &str,
) -> Result<Vec<(String, String)>, AuthorizeError> {
    let expired = || page("this sign-in page has expired; start again from the application");
    let plain = ctx
        .master
        .open(sealed, &format!("authorize-flow:{}", issuer.tenant.id))
        .map_err(|_| expired())?;
    let v: serde_json::Value = serde_json::from_slice(&plain).map_err(|_| expired())?;
    let t = v["t"].as_i64().ok_or_else(expired)?;
    if Timestamp::now().unix() - t > FLOW_LIFETIME {
        return Err(expired());
    }
    serde_json::from_value(v["p"].clone()).map_err(|_| expired())
}

/// Decides what comes next for `req` given the browser's session.
/// `fresh_login` is set right after the user typed the password.
pub async fn decide(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    session: Option<&BrowserSession>,
    fresh_login: bool,
) -> Result<Next, AuthorizeError> {
    let prompt = |p: &str| req.prompt.iter().any(|x| x == p);
    let now = Timestamp::now().unix();
    let user = match session {
        Some(s) => match ctx.store.get_user(issuer.tenant.id, s.user_id).await {
            Ok(u) if u.enabled => Some(u),
            Ok(_) | Err(crate::store::StoreError::NotFound) => None,
            Err(e) => return Err(OAuthError::from(e).into()),
        },
        None => None,
    };
    let too_old =
        session.is_some_and(|s| req.max_age.is_some_and(|m| now - s.auth_time.unix() > m));
    let needs_login = user.is_none() || (!fresh_login && (prompt("login") || too_old));
    if needs_login {
        if prompt("none") {
            return Err(redirect_error(
                issuer,
                req,
                "login_required",
                "the user is not signed in",
            ));
        }
        return Ok(Next::Login);
    }
    let (user, session) = (user.expect("checked"), session.expect("checked"));
    // `prompt=consent` asks for the consent screen even for clients that
    // do not require one (OIDC Core §3.1.2.1).
    if req.client.require_consent || prompt("consent") {
        let consented = ctx
            .store
            .consented_scopes(issuer.tenant.id, user.id, &req.client.client_id)
            .await
            .map_err(OAuthError::from)?;
        let missing = req.scopes.iter().any(|s| !consented.contains(s));
        if missing || prompt("consent") {
            if prompt("none") {
                return Err(redirect_error(
                    issuer,
                    req,
                    "consent_required",
                    "the user has not consented to these scopes",
                ));
            }
            return Ok(Next::Consent {
                user: Box::new(user),
            });
        }
    }
    Ok(Next::Redirect(issue_code(ctx, issuer, req, session).await?))
}

/// Records consent for the request's scopes and issues the code.
pub async fn consent_and_issue(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    session: &BrowserSession,
    allow: bool,
) -> Result<String, AuthorizeError> {
    if !allow {
        return Err(redirect_error(
            issuer,
            req,
            "access_denied",
            "the user denied the request",
        ));
    }
    ctx.store
        .save_consent(
            issuer.tenant.id,
            session.user_id,
            &req.client.client_id,
            &req.scopes,
        )
        .await
        .map_err(OAuthError::from)?;
    issue_code(ctx, issuer, req, session).await
}

/// Stores a one-time code and answers the redirect URL carrying it.
async fn issue_code(
    ctx: &Ctx,
    issuer: &Issuer,
    req: &AuthorizationRequest,
    session: &BrowserSession,
) -> Result<String, AuthorizeError> {
    let code = random_secret();
    let now = Timestamp::now();
    let record = AuthorizationCode {
        code_hash: sha256_hex(&code),
        tenant_id: issuer.tenant.id,
        client_id: req.client.client_id.clone(),
        user_id: session.user_id,
        session_id: Some(session.id),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scopes.join(" "),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: session.auth_time,
        dpop_jkt: req.dpop_jkt.clone(),
        created_at: now,
        expires_at: now.plus_seconds(CODE_LIFETIME),
        consumed_at: None,
        grant_id: None::<Uuid>,
    };
    ctx.store
        .insert_authorization_code(&record)
        .await
        .map_err(OAuthError::from)?;
    Ok(client_redirect(
        issuer,
        &req.redirect_uri,
        req.state.as_deref(),
        &[("code", &code)],
    ))
}
