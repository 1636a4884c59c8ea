//! `oidc-upstream` (identity-provider): federated sign-in with an upstream
//! OpenID Provider (any OIDC provider; another Vaultaris tenant works) with
//! the authorization code flow, PKCE (S256) and a confidential client.
//!
//! ```json
//! { "issuer": "https://id.acme.example/t/staff", "client_id": "vaultaris-federation",
//!   "client_secret": "…", "scopes": ["openid", "profile", "email"],
//!   "display_name": "Sign in with Acme staff" }
//! ```
//!
//! # Flow
//!
//! - `describe` returns `display_name` (default `Sign in with <issuer host>`)
//!   and `icon_url`; no network.
//! - `begin` resolves the endpoints, generates a PKCE `code_verifier` (32
//!   bytes from the host's `random`, base64url) and returns the upstream
//!   authorization URL `{authorization_endpoint}?response_type=code&client_id=…
//!   &redirect_uri={callback_url}&scope=…&state={state}&nonce={nonce}
//!   &code_challenge=…&code_challenge_method=S256[&login_hint=…][&ui_locales=…]`
//!   (plus `extra_authorization_params`). `state` and `nonce` are the host's,
//!   sent unchanged: the host binds `state` to the browser and checks it
//!   before `complete`. The `flow_state` returned to the host (stored
//!   server-side, never seen by the browser) is `{"v":1,"code_verifier":"…"}`.
//! - `complete`:
//!   1. an `iss` callback parameter (RFC 9207), if present, must equal the
//!      issuer (mix-up defence);
//!   2. `error` in the callback → `denied(error, error_description)`;
//!   3. `POST {token_endpoint}` `grant_type=authorization_code&code&redirect_uri
//!      &code_verifier` with `authorization: Basic base64(client_id:client_secret)`
//!      (each form-urlencoded first, RFC 6749 §2.3.1), or the credentials in
//!      the body with `client_secret_post`;
//!   4. the ID token's claims are validated: `iss` = issuer, `aud` contains
//!      `client_id`, `azp` (required with several audiences) = `client_id`,
//!      `exp` not passed, `iat` / `nbf` not in the future (± `clock_skew_seconds`),
//!      `nonce` = the host's nonce, `sub` present, `alg` not `none`;
//!   5. `GET {userinfo_endpoint}` with `authorization: Bearer {access_token}`
//!      (when there is one and `fetch_userinfo`); its `sub` must equal the ID
//!      token's (OIDC Core 5.3.2); its claims are merged over the ID token's;
//!   6. the external identity: issuer, `sub`, `email`, `email_verified`,
//!      `name`, `given_name`, `family_name`, `preferred_username`,
//!      `picture`, `locale`, the `attribute_claims` as attributes, and all
//!      claims as `raw_claims` (dropped if over 16 KiB).
//!
//! # Endpoints
//!
//! From `{issuer}/.well-known/openid-configuration` (its `issuer` must equal
//! the configured one exactly, OIDC Discovery §4.3), kept in the instance
//! for `discovery_cache_seconds`; `authorization_endpoint`,
//! `token_endpoint` and `userinfo_endpoint` in the configuration override
//! the discovered ones, and with the first two configured no discovery
//! document is fetched. Every URL must be https, except on loopback hosts
//! (`localhost`, `127.0.0.0/8`, `[::1]`) for local testing.
//!
//! # ID token signatures
//!
//! The ID token's signature is deliberately not verified. OpenID Connect
//! Core 1.0 §3.1.3.7 (6): "If the ID Token is received via direct
//! communication between the Client and the Token Endpoint (which it is in
//! this flow), the TLS server validation MAY be used to validate the issuer
//! in place of checking the token signature." That is exactly this plugin's
//! situation: the ID token comes only from the token endpoint, over the
//! back channel, in the response to a request authenticated with the client
//! secret and bound to the PKCE verifier, and the plugin refuses non-TLS
//! endpoints except on loopback. It never accepts an ID token from the front
//! channel (`response_type` is always `code`), so no JWKS is needed (and no
//! RSA / ECDSA / EdDSA code weighs down the component). All other claim
//! checks of §3.1.3.7 are performed.
//!
//! # Errors
//!
//! Transport failures, timeouts, 5xx and 429 from the upstream →
//! `unavailable`; a refused client authentication (`invalid_client`, 401),
//! a discovery document for another issuer or an insecure endpoint →
//! `misconfigured`; a refused code (`invalid_grant`), an invalid ID token,
//! a userinfo subject mismatch, a missing `code` → `invalid-input`. The
//! host fails this login closed in every case.

use std::cell::RefCell;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use vaultaris_plugin_sdk::host::{http, log, random};
use vaultaris_plugin_sdk::identity::{
    AuthorizationRedirect, BeginRequest, CallbackOutcome, CallbackRequest, ExternalIdentity,
    IdentityProvider, ProviderDisplay,
};
use vaultaris_plugin_sdk::{
    Attribute, AttributeValue, CallContext, Json, Plugin, PluginError, Timestamp, export_plugin,
    parse_config,
};

/// Most attributes the host accepts.
const MAX_ATTRIBUTES: usize = 64;
/// Largest `raw_claims` the host accepts.
const MAX_RAW_CLAIMS: usize = 16 * 1024;
/// Longest subject the plugin passes on.
const MAX_SUBJECT_BYTES: usize = 255;
/// Authorization request parameters the plugin owns.
const RESERVED_PARAMS: [&str; 10] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "ui_locales",
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}
fn default_attribute_claims() -> Vec<String> {
    vec!["groups".into()]
}
fn yes() -> bool {
    true
}
fn default_discovery_cache() -> u32 {
    3600
}
fn default_skew() -> u32 {
    60
}
fn default_timeout() -> u32 {
    4000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    issuer: String,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    token_endpoint_auth_method: ClientAuth,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    icon_url: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default = "yes")]
    fetch_userinfo: bool,
    #[serde(default = "default_attribute_claims")]
    attribute_claims: Vec<String>,
    #[serde(default)]
    extra_authorization_params: BTreeMap<String, String>,
    #[serde(default = "default_discovery_cache")]
    discovery_cache_seconds: u32,
    #[serde(default = "default_skew")]
    clock_skew_seconds: u32,
    #[serde(default = "default_timeout")]
    timeout_ms: u32,
}

/// The upstream's endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoints {
    authorization: String,
    token: String,
    userinfo: Option<String>,
    /// The upstream says it sends `iss` with every authorization response
    /// (RFC 9207 `authorization_response_iss_parameter_supported`).
    iss_parameter: bool,
}

/// What `begin` hands the host to keep until `complete`.
#[derive(Debug, Serialize, Deserialize)]
struct FlowState {
    v: u8,
    code_verifier: String,
}

/// The plugin.
pub struct OidcUpstream {
    config: Config,
    display: ProviderDisplay,
    /// The discovered endpoints and when they were fetched.
    discovered: RefCell<Option<(Endpoints, Timestamp)>>,
}

/// Whether the URL's host is a loopback name or address.
fn is_loopback(url: &str) -> bool {
    let authority = http::host_of(url);
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .strip_prefix("127.")
            .is_some_and(|r| r.split('.').count() == 3)
}

/// Refuses anything but https (or http on a loopback host).
fn check_url(what: &str, url: &str) -> Result<(), PluginError> {
    let ok = (url.starts_with("https://") && url.len() > 8)
        || (url.starts_with("http://") && is_loopback(url));
    if !ok || url.contains('#') || http::host_of(url).is_empty() {
        return Err(PluginError::misconfigured(
            "insecure_endpoint",
            format!(
                "{what} must be an https URL without a fragment (http only on loopback hosts): {url}"
            ),
        ));
    }
    Ok(())
}

/// Percent-encodes everything but the unreserved characters (RFC 3986),
/// which is valid both in a query and in an
/// `application/x-www-form-urlencoded` body.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k=v&k=v`, encoded.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The S256 PKCE challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn invalid_token(code: &str, message: impl Into<String>) -> PluginError {
    PluginError::invalid_input(code, message)
}

/// Decodes one base64url segment of a JWT (padding tolerated).
fn b64url_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A numeric date claim in milliseconds.
fn numeric_date_ms(v: &Value) -> Option<i64> {
    v.as_i64()
        .map(|s| s.saturating_mul(1000))
        .or_else(|| v.as_f64().map(|s| (s * 1000.0) as i64))
}

/// A JSON value as the closest attribute value.
fn attribute_value(v: &Value) -> AttributeValue {
    match v {
        Value::String(s) => AttributeValue::Text(s.clone()),
        Value::Bool(b) => AttributeValue::Boolean(*b),
        Value::Number(n) if n.is_i64() => AttributeValue::Integer(n.as_i64().unwrap_or_default()),
        Value::Array(items) if items.iter().all(Value::is_string) => AttributeValue::TextList(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        ),
        other => AttributeValue::Json(Json::from_value(other)),
    }
}

/// An upstream error answer's `error` code, if it has one.
fn oauth_error(body: &[u8]) -> Option<(String, Option<String>)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v.get("error")?.as_str()?.to_owned();
    let description = v
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| d.chars().take(300).collect());
    Some((code, description))
}

fn truncated(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Plugin for OidcUpstream {
    fn new(config: Value) -> Result<Self, PluginError> {
        let mut config: Config = parse_config(config)?;
        check_url("issuer", &config.issuer)?;
        for (what, url) in [
            ("authorization_endpoint", &config.authorization_endpoint),
            ("token_endpoint", &config.token_endpoint),
            ("userinfo_endpoint", &config.userinfo_endpoint),
        ] {
            if let Some(url) = url {
                check_url(what, url)?;
            }
        }
        if config.client_id.trim().is_empty() || config.client_secret.is_empty() {
            return Err(PluginError::misconfigured(
                "missing_client_credentials",
                "client_id and client_secret are required",
            ));
        }
        if !config.scopes.iter().any(|s| s == "openid") {
            return Err(PluginError::misconfigured(
                "openid_scope_required",
                "scopes must include openid",
            ));
        }
        if config
            .scopes
            .iter()
            .any(|s| s.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'"' || b == b'\\'))
        {
            return Err(PluginError::misconfigured(
                "invalid_scope",
                "scopes must be non-empty and contain no spaces, quotes or backslashes",
            ));
        }
        if let Some(p) = config
            .extra_authorization_params
            .keys()
            .find(|k| k.is_empty() || RESERVED_PARAMS.contains(&k.as_str()))
        {
            return Err(PluginError::misconfigured(
                "reserved_authorization_param",
                format!("extra_authorization_params cannot set `{p}`"),
            ));
        }
        if let Some(icon) = &config.icon_url
            && !(icon.starts_with("https://") || icon.starts_with("data:image/"))
        {
            return Err(PluginError::misconfigured(
                "invalid_icon_url",
                "icon_url must be an https or data:image/ URL",
            ));
        }
        config.attribute_claims.truncate(MAX_ATTRIBUTES);
        let display_name = config
            .display_name
            .clone()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("Sign in with {}", http::host_of(&config.issuer)));
        let display = ProviderDisplay {
            display_name,
            icon_url: config.icon_url.clone(),
        };
        Ok(OidcUpstream {
            config,
            display,
            discovered: RefCell::new(None),
        })
    }
}

impl OidcUpstream {
    fn timeout(&self, ctx: &CallContext) -> u32 {
        u32::try_from(ctx.time_left_ms())
            .unwrap_or(u32::MAX)
            .min(self.config.timeout_ms)
            .max(1)
    }

    /// The endpoints: configured, or discovered (cached per instance).
    fn endpoints(&self, ctx: &CallContext) -> Result<Endpoints, PluginError> {
        let c = &self.config;
        if let (Some(authorization), Some(token)) = (&c.authorization_endpoint, &c.token_endpoint) {
            return Ok(Endpoints {
                authorization: authorization.clone(),
                token: token.clone(),
                userinfo: c.userinfo_endpoint.clone(),
                iss_parameter: false,
            });
        }
        let max_age = i64::from(c.discovery_cache_seconds) * 1000;
        if let Some((endpoints, at)) = self.discovered.borrow().as_ref()
            && ctx.now.saturating_sub(*at) < max_age
            && ctx.now >= *at
        {
            return Ok(endpoints.clone());
        }
        let discovered = self.discover(ctx)?;
        let endpoints = Endpoints {
            authorization: c
                .authorization_endpoint
                .clone()
                .unwrap_or(discovered.authorization),
            token: c.token_endpoint.clone().unwrap_or(discovered.token),
            userinfo: c.userinfo_endpoint.clone().or(discovered.userinfo),
            iss_parameter: discovered.iss_parameter,
        };
        *self.discovered.borrow_mut() = Some((endpoints.clone(), ctx.now));
        Ok(endpoints)
    }

    /// Fetches and checks the discovery document.
    fn discover(&self, ctx: &CallContext) -> Result<Endpoints, PluginError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let response = http::send(
            &http::Request::get(&url)
                .header("accept", "application/json")
                .timeout_ms(self.timeout(ctx)),
        )?;
        match response.status {
            200 => {}
            404 => {
                return Err(PluginError::misconfigured(
                    "discovery_not_found",
                    format!("no discovery document at {url} (HTTP 404)"),
                ));
            }
            s => {
                return Err(PluginError::unavailable(
                    "discovery_failed",
                    format!("the discovery document at {url} answered HTTP {s}"),
                ));
            }
        }
        let doc: Value = response.json().map_err(|e| {
            PluginError::unavailable(
                "discovery_malformed",
                format!("the discovery document is not JSON: {e}"),
            )
        })?;
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        if text("issuer").as_deref() != Some(self.config.issuer.as_str()) {
            return Err(PluginError::misconfigured(
                "discovery_issuer_mismatch",
                format!(
                    "the discovery document names issuer {:?}, not {:?}",
                    text("issuer"),
                    self.config.issuer
                ),
            ));
        }
        let required = |k: &str| {
            text(k).ok_or_else(|| {
                PluginError::misconfigured(
                    "discovery_incomplete",
                    format!("the discovery document has no {k}"),
                )
            })
        };
        let endpoints = Endpoints {
            authorization: required("authorization_endpoint")?,
            token: required("token_endpoint")?,
            userinfo: text("userinfo_endpoint"),
            iss_parameter: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        check_url("authorization_endpoint", &endpoints.authorization)?;
        check_url("token_endpoint", &endpoints.token)?;
        if let Some(u) = &endpoints.userinfo {
            check_url("userinfo_endpoint", u)?;
        }
        Ok(endpoints)
    }

    /// Exchanges the code; returns the token response.
    fn exchange(
        &self,
        ctx: &CallContext,
        endpoints: &Endpoints,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Value, PluginError> {
        let c = &self.config;
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = http::Request::post(&endpoints.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .timeout_ms(self.timeout(ctx));
        match c.token_endpoint_auth_method {
            ClientAuth::ClientSecretBasic => {
                let credentials = format!("{}:{}", encode(&c.client_id), encode(&c.client_secret));
                request = request.header(
                    "authorization",
                    format!("Basic {}", STANDARD.encode(credentials)),
                );
            }
            ClientAuth::ClientSecretPost => {
                params.push(("client_id", &c.client_id));
                params.push(("client_secret", &c.client_secret));
            }
        }
        let response = http::send(&request.body(form(&params)))?;
        let status = response.status;
        if status == 200 {
            return response.json::<Value>().map_err(|e| {
                PluginError::unavailable(
                    "token_response_malformed",
                    format!("the token endpoint answered 200 with invalid JSON: {e}"),
                )
            });
        }
        let error = oauth_error(&response.body);
        let detail = match &error {
            Some((code, Some(d))) => format!("{code}: {d}"),
            Some((code, None)) => code.clone(),
            None => truncated(&response.text(), 200),
        };
        Err(match (status, error.as_ref().map(|e| e.0.as_str())) {
            (401, _) | (_, Some("invalid_client" | "unauthorized_client")) => {
                PluginError::misconfigured(
                    "client_authentication_failed",
                    format!("the token endpoint refused the client (HTTP {status}): {detail}"),
                )
            }
            (429 | 500..=599, _) => PluginError::unavailable(
                "token_endpoint_unavailable",
                format!("the token endpoint answered HTTP {status}: {detail}"),
            ),
            _ => PluginError::invalid_input(
                "token_exchange_failed",
                format!("the token endpoint answered HTTP {status}: {detail}"),
            ),
        })
    }

    /// Checks the ID token's claims (OIDC Core §3.1.3.7; see the crate
    /// documentation for why the signature is not checked) and returns them.
    fn validate_id_token(
        &self,
        ctx: &CallContext,
        id_token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, PluginError> {
        let parts: Vec<&str> = id_token.split('.').collect();
        if parts.len() == 5 {
            return Err(PluginError::unsupported(
                "encrypted_id_token",
                "encrypted ID tokens are not supported",
            ));
        }
        if parts.len() != 3 {
            return Err(invalid_token(
                "id_token_malformed",
                "the ID token is not a compact JWS",
            ));
        }
        let header = b64url_json(parts[0])
            .ok_or_else(|| invalid_token("id_token_malformed", "undecodable ID token header"))?;
        match header.get("alg").and_then(Value::as_str) {
            Some(alg) if !alg.eq_ignore_ascii_case("none") => {}
            _ => {
                return Err(invalid_token(
                    "id_token_unsigned",
                    "the ID token has no signature algorithm",
                ));
            }
        }
        let Some(Value::Object(claims)) = b64url_json(parts[1]) else {
            return Err(invalid_token(
                "id_token_malformed",
                "the ID token's payload is not a JSON object",
            ));
        };
        let c = &self.config;
        if claims.get("iss").and_then(Value::as_str) != Some(c.issuer.as_str()) {
            return Err(invalid_token(
                "id_token_wrong_issuer",
                format!("ID token iss {:?} is not {:?}", claims.get("iss"), c.issuer),
            ));
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&c.client_id.as_str()) {
            return Err(invalid_token(
                "id_token_wrong_audience",
                "the ID token is not addressed to this client",
            ));
        }
        match claims.get("azp") {
            Some(azp) if azp.as_str() != Some(c.client_id.as_str()) => {
                return Err(invalid_token(
                    "id_token_wrong_azp",
                    "the ID token's azp is another client",
                ));
            }
            None if audiences.len() > 1 => {
                return Err(invalid_token(
                    "id_token_missing_azp",
                    "an ID token with several audiences must name azp",
                ));
            }
            _ => {}
        }
        let skew = i64::from(c.clock_skew_seconds) * 1000;
        let exp = claims
            .get("exp")
            .and_then(numeric_date_ms)
            .ok_or_else(|| invalid_token("id_token_missing_exp", "the ID token has no exp"))?;
        if exp.saturating_add(skew) <= ctx.now {
            return Err(invalid_token(
                "id_token_expired",
                "the ID token has expired",
            ));
        }
        for claim in ["iat", "nbf"] {
            if let Some(t) = claims.get(claim).and_then(numeric_date_ms)
                && t > ctx.now.saturating_add(skew)
            {
                return Err(invalid_token(
                    "id_token_not_yet_valid",
                    format!("the ID token's {claim} is in the future"),
                ));
            }
        }
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(invalid_token(
                "id_token_wrong_nonce",
                "the ID token's nonce is not the one sent",
            ));
        }
        match claims.get("sub").and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s.len() <= MAX_SUBJECT_BYTES => {}
            _ => {
                return Err(invalid_token(
                    "id_token_invalid_subject",
                    "the ID token's sub is missing, empty or longer than 255 bytes",
                ));
            }
        }
        Ok(claims)
    }

    /// The userinfo claims.
    fn userinfo(
        &self,
        ctx: &CallContext,
        url: &str,
        token_type: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, PluginError> {
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(PluginError::unsupported(
                "unsupported_token_type",
                format!("cannot call userinfo with a {token_type} access token"),
            ));
        }
        let response = http::send(
            &http::Request::get(url)
                .header("authorization", format!("Bearer {access_token}"))
                .header("accept", "application/json")
                .timeout_ms(self.timeout(ctx)),
        )?;
        match response.status {
            200 => {}
            s @ (429 | 500..=599) => {
                return Err(PluginError::unavailable(
                    "userinfo_unavailable",
                    format!("the userinfo endpoint answered HTTP {s}"),
                ));
            }
            s => {
                return Err(PluginError::invalid_input(
                    "userinfo_failed",
                    format!("the userinfo endpoint answered HTTP {s}"),
                ));
            }
        }
        if response
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/jwt"))
        {
            return Err(PluginError::unsupported(
                "signed_userinfo",
                "signed or encrypted userinfo responses are not supported",
            ));
        }
        match response.json::<Value>() {
            Ok(Value::Object(claims)) => Ok(claims),
            _ => Err(PluginError::invalid_input(
                "userinfo_malformed",
                "the userinfo response is not a JSON object",
            )),
        }
    }

    fn identity(&self, claims: Map<String, Value>) -> ExternalIdentity {
        let text = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let email = text("email");
        let email_verified = email.is_some()
            && match claims.get("email_verified") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            };
        let attributes = self
            .config
            .attribute_claims
            .iter()
            .filter_map(|name| {
                claims
                    .get(name)
                    .filter(|v| !v.is_null())
                    .map(|v| Attribute::new(name.clone(), attribute_value(v)))
            })
            .collect();
        let raw = Value::Object(claims.clone()).to_string();
        let raw_claims = if raw.len() > MAX_RAW_CLAIMS {
            log::warn(&format!(
                "upstream claims are {} bytes, over the 16 KiB raw_claims limit; omitted",
                raw.len()
            ));
            None
        } else {
            Some(Json::from_raw(raw))
        };
        ExternalIdentity {
            issuer: self.config.issuer.clone(),
            // `sub` exactly as issued (OIDC Core 2: case-sensitive, compared
            // as is); trimming could merge two upstream subjects.
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            email,
            email_verified,
            name: text("name"),
            given_name: text("given_name"),
            family_name: text("family_name"),
            preferred_username: text("preferred_username"),
            picture: text("picture"),
            locale: text("locale"),
            // OIDC `auth_time` is in seconds; the contract's timestamps are ms.
            auth_time: claims
                .get("auth_time")
                .and_then(Value::as_i64)
                .filter(|t| *t > 0)
                .and_then(|t| t.checked_mul(1000)),
            attributes,
            raw_claims,
        }
    }
}

impl IdentityProvider for OidcUpstream {
    fn describe(&self, _ctx: &CallContext) -> Result<ProviderDisplay, PluginError> {
        Ok(self.display.clone())
    }

    fn begin(
        &self,
        ctx: &CallContext,
        request: BeginRequest,
    ) -> Result<AuthorizationRedirect, PluginError> {
        let endpoints = self.endpoints(ctx)?;
        let verifier = URL_SAFE_NO_PAD.encode(random::bytes(32));
        if verifier.len() < 43 {
            return Err(PluginError::internal(
                "random_unavailable",
                "the host returned too few random bytes",
            ));
        }
        let challenge = pkce_challenge(&verifier);
        let scope = self.config.scopes.join(" ");
        let locales = request.locales.join(" ");
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.config.client_id),
            ("redirect_uri", &request.callback_url),
            ("scope", &scope),
            ("state", &request.state),
            ("nonce", &request.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(hint) = request.login_hint.as_deref().filter(|h| !h.is_empty()) {
            params.push(("login_hint", hint));
        }
        if !locales.is_empty() {
            params.push(("ui_locales", &locales));
        }
        let max_age = request.max_age.map(|m| m.to_string());
        if request.force_authentication {
            params.push(("prompt", "login"));
        }
        if let Some(m) = &max_age {
            params.push(("max_age", m));
        }
        for (k, v) in &self.config.extra_authorization_params {
            // The relying party's demands win over configured defaults.
            if (request.force_authentication && k == "prompt")
                || (max_age.is_some() && k == "max_age")
            {
                continue;
            }
            params.push((k, v));
        }
        let separator = if endpoints.authorization.contains('?') {
            '&'
        } else {
            '?'
        };
        let flow_state = serde_json::to_string(&FlowState {
            v: 1,
            code_verifier: verifier,
        })
        .map_err(|e| PluginError::internal("flow_state_encoding", e.to_string()))?;
        Ok(AuthorizationRedirect {
            url: format!("{}{separator}{}", endpoints.authorization, form(&params)),
            flow_state,
        })
    }

    fn complete(
        &self,
        ctx: &CallContext,
        request: CallbackRequest,
    ) -> Result<CallbackOutcome, PluginError> {
        // RFC 9207: an authorization response naming another issuer is a
        // mix-up attempt, whatever else it says.
        if let Some(iss) = request.param("iss")
            && iss != self.config.issuer
        {
            return Err(PluginError::invalid_input(
                "issuer_mismatch",
                format!("the callback's iss {iss:?} is not the configured issuer"),
            ));
        }
        if let Some(error) = request.param("error") {
            return Ok(CallbackOutcome::Denied {
                error_code: truncated(error, 64),
                description: request
                    .param("error_description")
                    .map(|d| truncated(d, 300)),
            });
        }
        let code = request
            .param("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                PluginError::invalid_input("missing_code", "the callback carries no code")
            })?;
        let flow: FlowState = serde_json::from_str(&request.flow_state).map_err(|e| {
            PluginError::internal("invalid_flow_state", format!("unreadable flow state: {e}"))
        })?;
        if flow.v != 1 || !(43..=128).contains(&flow.code_verifier.len()) {
            return Err(PluginError::internal(
                "invalid_flow_state",
                "unknown flow state version or bad code verifier",
            ));
        }
        let endpoints = self.endpoints(ctx)?;
        // RFC 9207 §2.4: an upstream that promises `iss` and whose response
        // lacks it is treated as a mix-up attempt.
        if endpoints.iss_parameter && request.param("iss").is_none() {
            return Err(PluginError::invalid_input(
                "missing_iss",
                "the upstream sends iss with its authorization responses, and this one has none",
            ));
        }
        let tokens = self.exchange(
            ctx,
            &endpoints,
            code,
            &request.callback_url,
            &flow.code_verifier,
        )?;
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                PluginError::invalid_input(
                    "missing_id_token",
                    "the token response has no id_token (is openid among the scopes?)",
                )
            })?;
        let mut claims = self.validate_id_token(ctx, id_token, &request.nonce)?;
        if let (Some(url), true) = (&endpoints.userinfo, self.config.fetch_userinfo) {
            let access_token = tokens
                .get("access_token")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    PluginError::invalid_input(
                        "missing_access_token",
                        "the token response has no access_token",
                    )
                })?;
            let token_type = tokens
                .get("token_type")
                .and_then(Value::as_str)
                .unwrap_or("Bearer");
            let info = self.userinfo(ctx, url, token_type, access_token)?;
            if info.get("sub") != claims.get("sub") {
                return Err(PluginError::invalid_input(
                    "userinfo_subject_mismatch",
                    "the userinfo sub differs from the ID token's",
                ));
            }
            for (k, v) in info {
                if !v.is_null() {
                    claims.insert(k, v);
                }
            }
        }
        Ok(CallbackOutcome::Authenticated(Box::new(
            self.identity(claims),
        )))
    }
}

export_plugin!(OidcUpstream: identity_provider);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    use vaultaris_plugin_sdk::KeyValue;
    use vaultaris_plugin_sdk::host::http::{HttpError, Request, Response};
    use vaultaris_plugin_sdk::testing::{MockHost, response, with_host};

    const ISSUER: &str = "https://id.upstream.example/t/acme";
    const CALLBACK: &str =
        "https://vaultaris.example/t/shop/login/federation/oidc-upstream/callback";
    const NOW_S: i64 = 1_700_000_000;

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn parse_form(s: &str) -> BTreeMap<String, String> {
        s.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    fn jwt(claims: Value) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn id_claims() -> Value {
        json!({"iss": ISSUER, "sub": "user-42", "aud": "shop-federation", "azp": "shop-federation",
               "exp": NOW_S + 300, "iat": NOW_S - 1, "auth_time": NOW_S - 5, "nonce": "n-123",
               "email": "ann@acme.example", "email_verified": true, "amr": ["pwd"]})
    }

    /// A scripted upstream that behaves like a Vaultaris tenant: discovery,
    /// token endpoint with client_secret_basic and PKCE, userinfo.
    struct Upstream {
        challenge: Mutex<Option<String>>,
        id_claims: Mutex<Value>,
        userinfo: Mutex<Value>,
        token_status: Mutex<(u16, String)>,
    }

    impl Upstream {
        fn new() -> Arc<Upstream> {
            Arc::new(Upstream {
                challenge: Mutex::new(None),
                id_claims: Mutex::new(id_claims()),
                userinfo: Mutex::new(json!({"sub": "user-42", "name": "Ann Lee",
                    "given_name": "Ann", "family_name": "Lee", "preferred_username": "ann",
                    "email": "ann@acme.example", "email_verified": true, "locale": "en-GB",
                    "groups": ["staff", "admins"]})),
                token_status: Mutex::new((200, String::new())),
            })
        }

        fn handle(&self, req: &Request) -> Result<Response, HttpError> {
            let header = |n: &str| vaultaris_plugin_sdk::find_key_value(&req.headers, n);
            if req.url == format!("{ISSUER}/.well-known/openid-configuration") {
                return Ok(response(
                    200,
                    json!({
                        "issuer": ISSUER,
                        "authorization_endpoint": format!("{ISSUER}/oauth/authorize"),
                        "token_endpoint": format!("{ISSUER}/oauth/token"),
                        "userinfo_endpoint": format!("{ISSUER}/oauth/userinfo"),
                        "jwks_uri": format!("{ISSUER}/.well-known/jwks.json"),
                        "code_challenge_methods_supported": ["S256"],
                    })
                    .to_string(),
                ));
            }
            if req.url == format!("{ISSUER}/oauth/token") {
                let (status, body) = self.token_status.lock().unwrap().clone();
                if status != 200 {
                    return Ok(response(status, body));
                }
                assert_eq!(req.method, http::Method::Post);
                assert_eq!(
                    header("content-type"),
                    Some("application/x-www-form-urlencoded")
                );
                let expected = format!(
                    "Basic {}",
                    STANDARD.encode("shop-federation:s%3Acr%C3%A9t%2Bkey")
                );
                if header("authorization") != Some(expected.as_str()) {
                    return Ok(response(401, r#"{"error":"invalid_client"}"#));
                }
                let form = parse_form(std::str::from_utf8(req.body.as_ref().unwrap()).unwrap());
                assert_eq!(form["grant_type"], "authorization_code");
                assert_eq!(form["redirect_uri"], CALLBACK);
                assert!(!form.contains_key("client_secret"));
                let challenge = self.challenge.lock().unwrap().clone();
                if form["code"] != "code-1"
                    || challenge.as_deref() != Some(pkce_challenge(&form["code_verifier"]).as_str())
                {
                    return Ok(response(400, r#"{"error":"invalid_grant"}"#));
                }
                let id_token = jwt(self.id_claims.lock().unwrap().clone());
                return Ok(response(
                    200,
                    json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
                           "id_token": id_token, "scope": "openid profile email"})
                    .to_string(),
                ));
            }
            if req.url == format!("{ISSUER}/oauth/userinfo") {
                if header("authorization") != Some("Bearer at-1") {
                    return Ok(response(401, ""));
                }
                return Ok(response(200, self.userinfo.lock().unwrap().to_string()));
            }
            Ok(response(404, "not found"))
        }
    }

    fn host(upstream: &Arc<Upstream>) -> Arc<MockHost> {
        let u = upstream.clone();
        Arc::new(MockHost::new().http(&["id.upstream.example"], move |r| u.handle(r)))
    }

    fn config(extra: Value) -> Value {
        let mut c = json!({"issuer": ISSUER, "client_id": "shop-federation",
            "client_secret": "s:crét+key", "display_name": "Sign in with Acme"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    fn plugin(extra: Value) -> OidcUpstream {
        OidcUpstream::new(config(extra)).unwrap()
    }

    fn begin_request() -> BeginRequest {
        BeginRequest {
            callback_url: CALLBACK.into(),
            state: "st-1".into(),
            nonce: "n-123".into(),
            login_hint: Some("ann@acme.example".into()),
            locales: vec!["de-CH".into(), "en".into()],
            force_authentication: false,
            max_age: None,
        }
    }

    fn callback(query: &[(&str, &str)], flow_state: &str) -> CallbackRequest {
        CallbackRequest {
            callback_url: CALLBACK.into(),
            query: query.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect(),
            form: Vec::new(),
            flow_state: flow_state.into(),
            nonce: "n-123".into(),
        }
    }

    /// Runs `begin`, records the challenge upstream, returns the parsed
    /// authorization URL parameters and the flow state.
    fn begin(
        p: &OidcUpstream,
        h: &Arc<MockHost>,
        u: &Arc<Upstream>,
    ) -> (String, BTreeMap<String, String>, String) {
        let redirect = with_host(h.clone(), || {
            p.begin(&CallContext::for_tests(), begin_request())
        })
        .unwrap();
        let (base, query) = redirect.url.split_once('?').unwrap();
        let params = parse_form(query);
        *u.challenge.lock().unwrap() = Some(params["code_challenge"].clone());
        (base.to_owned(), params, redirect.flow_state)
    }

    #[test]
    fn manifest_matches_exports() {
        let m = vaultaris_plugin_sdk::testing::check_manifest::<OidcUpstream>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
        assert_eq!(
            m["config_schema"]["properties"]["client_secret"]["writeOnly"],
            true
        );
    }

    #[test]
    fn describe() {
        let ctx = CallContext::for_tests();
        assert_eq!(
            plugin(json!({"icon_url": "https://acme.example/icon.svg"}))
                .describe(&ctx)
                .unwrap(),
            ProviderDisplay {
                display_name: "Sign in with Acme".into(),
                icon_url: Some("https://acme.example/icon.svg".into())
            }
        );
        let mut c = config(json!({}));
        c.as_object_mut().unwrap().remove("display_name");
        assert_eq!(
            OidcUpstream::new(c)
                .unwrap()
                .describe(&ctx)
                .unwrap()
                .display_name,
            "Sign in with id.upstream.example"
        );
    }

    #[test]
    fn begin_builds_the_authorization_url_from_discovery() {
        let u = Upstream::new();
        let h = host(&u);
        let p = plugin(json!({"extra_authorization_params": {"prompt": "login"}}));
        let (base, params, flow_state) = begin(&p, &h, &u);
        assert_eq!(base, format!("{ISSUER}/oauth/authorize"));
        assert_eq!(params["response_type"], "code");
        assert_eq!(params["client_id"], "shop-federation");
        assert_eq!(params["redirect_uri"], CALLBACK);
        assert_eq!(params["scope"], "openid profile email");
        assert_eq!(params["state"], "st-1");
        assert_eq!(params["nonce"], "n-123");
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["login_hint"], "ann@acme.example");
        assert_eq!(params["ui_locales"], "de-CH en");
        assert_eq!(params["prompt"], "login");
        let flow: FlowState = serde_json::from_str(&flow_state).unwrap();
        assert_eq!(flow.code_verifier.len(), 43);
        assert_eq!(
            pkce_challenge(&flow.code_verifier),
            params["code_challenge"]
        );
        assert!(flow_state.len() < 4096);

        // The discovery document is cached in the instance...
        let (_, again, flow2) = begin(&p, &h, &u);
        assert_eq!(h.requests().len(), 1, "one discovery request");
        assert_ne!(again["code_challenge"], params["code_challenge"]);
        assert_ne!(flow2, flow_state);
        // ... until it is older than discovery_cache_seconds.
        let later = CallContext {
            now: CallContext::for_tests().now + 3_600_000,
            ..CallContext::for_tests()
        };
        with_host(h.clone(), || p.begin(&later, begin_request())).unwrap();
        assert_eq!(h.requests().len(), 2);
    }

    #[test]
    fn full_login_against_a_vaultaris_like_upstream() {
        let u = Upstream::new();
        let h = host(&u);
        let p = plugin(json!({"attribute_claims": ["groups", "missing"]}));
        let (_, params, flow_state) = begin(&p, &h, &u);
        let outcome = with_host(h.clone(), || {
            p.complete(
                &CallContext::for_tests(),
                callback(
                    &[
                        ("code", "code-1"),
                        ("state", &params["state"]),
                        ("iss", ISSUER),
                    ],
                    &flow_state,
                ),
            )
        })
        .unwrap();
        let CallbackOutcome::Authenticated(identity) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(identity.issuer, ISSUER);
        assert_eq!(identity.subject, "user-42");
        assert_eq!(identity.email.as_deref(), Some("ann@acme.example"));
        assert!(identity.email_verified);
        assert_eq!(identity.name.as_deref(), Some("Ann Lee"));
        assert_eq!(identity.given_name.as_deref(), Some("Ann"));
        assert_eq!(identity.family_name.as_deref(), Some("Lee"));
        assert_eq!(identity.preferred_username.as_deref(), Some("ann"));
        assert_eq!(identity.locale.as_deref(), Some("en-GB"));
        assert_eq!(identity.picture, None);
        assert_eq!(
            identity.attributes,
            vec![Attribute::text_list("groups", ["staff", "admins"])]
        );
        let raw = identity.raw_claims.unwrap().value().unwrap();
        assert_eq!(raw["amr"], json!(["pwd"]));
        assert_eq!(raw["name"], "Ann Lee");
        let urls: Vec<String> = h.requests().iter().map(|r| r.url.clone()).collect();
        assert_eq!(
            urls,
            [
                format!("{ISSUER}/.well-known/openid-configuration"),
                format!("{ISSUER}/oauth/token"),
                format!("{ISSUER}/oauth/userinfo"),
            ]
        );
    }

    #[test]
    fn complete_in_a_fresh_instance_rediscovers() {
        let u = Upstream::new();
        let h = host(&u);
        let (_, _, flow_state) = begin(&plugin(json!({})), &h, &u);
        // Another instance (or node) finishes the login.
        let outcome = with_host(h.clone(), || {
            plugin(json!({})).complete(
                &CallContext::for_tests(),
                callback(&[("code", "code-1")], &flow_state),
            )
        })
        .unwrap();
        assert!(matches!(outcome, CallbackOutcome::Authenticated(_)));
        assert_eq!(h.requests().len(), 4);
    }

    #[test]
    fn upstream_errors_are_denials() {
        let p = plugin(json!({}));
        let outcome = p
            .complete(
                &CallContext::for_tests(),
                callback(
                    &[
                        ("error", "access_denied"),
                        ("error_description", "The user cancelled"),
                        ("state", "st-1"),
                    ],
                    "{}",
                ),
            )
            .unwrap();
        assert_eq!(
            outcome,
            CallbackOutcome::Denied {
                error_code: "access_denied".into(),
                description: Some("The user cancelled".into())
            }
        );
        // A response from another issuer is refused even as an error.
        let e = p
            .complete(
                &CallContext::for_tests(),
                callback(
                    &[("error", "access_denied"), ("iss", "https://evil.example")],
                    "{}",
                ),
            )
            .unwrap_err();
        assert_eq!(e.code(), "issuer_mismatch");
        let e = p
            .complete(&CallContext::for_tests(), callback(&[], "{}"))
            .unwrap_err();
        assert_eq!(e.code(), "missing_code");
    }

    #[test]
    fn pkce_and_code_are_bound() {
        let u = Upstream::new();
        let h = host(&u);
        let p = plugin(json!({}));
        let (_, _, flow_state) = begin(&p, &h, &u);
        // A verifier from another login is refused upstream.
        let other = serde_json::to_string(&FlowState {
            v: 1,
            code_verifier: "x".repeat(43),
        })
        .unwrap();
        let complete = |code: &str, flow: &str| {
            with_host(h.clone(), || {
                p.complete(&CallContext::for_tests(), callback(&[("code", code)], flow))
            })
        };
        let e = complete("code-1", &other).unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            ("invalid-input", "token_exchange_failed")
        );
        assert!(e.message().contains("invalid_grant"));
        let e = complete("code-2", &flow_state).unwrap_err();
        assert_eq!(e.code(), "token_exchange_failed");
        let e = complete("code-1", "garbage").unwrap_err();
        assert_eq!((e.kind(), e.code()), ("internal", "invalid_flow_state"));
        assert!(complete("code-1", &flow_state).is_ok());
    }

    #[test]
    fn id_token_checks() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"iss": "https://evil.example"}),
                "id_token_wrong_issuer",
            ),
            (json!({"aud": "other-client"}), "id_token_wrong_audience"),
            (
                json!({"aud": ["shop-federation", "other"], "azp": null}),
                "id_token_missing_azp",
            ),
            (json!({"azp": "other"}), "id_token_wrong_azp"),
            (json!({"exp": NOW_S - 61}), "id_token_expired"),
            (json!({"exp": null}), "id_token_missing_exp"),
            (json!({"iat": NOW_S + 120}), "id_token_not_yet_valid"),
            (json!({"nonce": "n-other"}), "id_token_wrong_nonce"),
            (json!({"nonce": null}), "id_token_wrong_nonce"),
            (json!({"sub": ""}), "id_token_invalid_subject"),
        ];
        for (patch, code) in cases {
            let u = Upstream::new();
            {
                let mut claims = u.id_claims.lock().unwrap();
                for (k, v) in patch.as_object().unwrap() {
                    if v.is_null() {
                        claims.as_object_mut().unwrap().remove(k);
                    } else {
                        claims[k] = v.clone();
                    }
                }
            }
            let h = host(&u);
            let p = plugin(json!({}));
            let (_, _, flow_state) = begin(&p, &h, &u);
            let e = with_host(h, || {
                p.complete(
                    &CallContext::for_tests(),
                    callback(&[("code", "code-1")], &flow_state),
                )
            })
            .unwrap_err();
            assert_eq!(e.code(), code, "{patch}");
        }
        // Several audiences are fine with the right azp; a small skew too.
        let u = Upstream::new();
        {
            let mut claims = u.id_claims.lock().unwrap();
            claims["aud"] = json!(["shop-federation", "other"]);
            claims["exp"] = json!(NOW_S - 30);
        }
        let h = host(&u);
        let p = plugin(json!({}));
        let (_, _, flow_state) = begin(&p, &h, &u);
        assert!(
            with_host(h, || p.complete(
                &CallContext::for_tests(),
                callback(&[("code", "code-1")], &flow_state)
            ))
            .is_ok()
        );
        // Unsigned and malformed tokens.
        let p = plugin(json!({}));
        let ctx = CallContext::for_tests();
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(id_claims().to_string())
        );
        assert_eq!(
            p.validate_id_token(&ctx, &unsigned, "n-123")
                .unwrap_err()
                .code(),
            "id_token_unsigned"
        );
        assert_eq!(
            p.validate_id_token(&ctx, "a.b", "n-123")
                .unwrap_err()
                .code(),
            "id_token_malformed"
        );
        assert_eq!(
            p.validate_id_token(&ctx, "a.b.c.d.e", "n-123")
                .unwrap_err()
                .kind(),
            "unsupported"
        );
        assert!(
            p.validate_id_token(&ctx, &jwt(id_claims()), "n-123")
                .is_ok()
        );
    }

    #[test]
    fn userinfo_subject_must_match() {
        let u = Upstream::new();
        u.userinfo.lock().unwrap()["sub"] = json!("someone-else");
        let h = host(&u);
        let p = plugin(json!({}));
        let (_, _, flow_state) = begin(&p, &h, &u);
        let e = with_host(h, || {
            p.complete(
                &CallContext::for_tests(),
                callback(&[("code", "code-1")], &flow_state),
            )
        })
        .unwrap_err();
        assert_eq!(e.code(), "userinfo_subject_mismatch");
    }

    #[test]
    fn token_endpoint_failures() {
        for (status, body, kind, code) in [
            (
                401,
                r#"{"error":"invalid_client"}"#,
                "misconfigured",
                "client_authentication_failed",
            ),
            (
                400,
                r#"{"error":"invalid_client"}"#,
                "misconfigured",
                "client_authentication_failed",
            ),
            (503, "", "unavailable", "token_endpoint_unavailable"),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"code expired"}"#,
                "invalid-input",
                "token_exchange_failed",
            ),
        ] {
            let u = Upstream::new();
            *u.token_status.lock().unwrap() = (status, body.to_owned());
            let h = host(&u);
            let p = plugin(json!({}));
            let (_, _, flow_state) = begin(&p, &h, &u);
            let e = with_host(h, || {
                p.complete(
                    &CallContext::for_tests(),
                    callback(&[("code", "code-1")], &flow_state),
                )
            })
            .unwrap_err();
            assert_eq!((e.kind(), e.code()), (kind, code), "{status} {body}");
        }
        // A wrong secret is refused by the upstream's client authentication.
        let u = Upstream::new();
        let h = host(&u);
        let p = plugin(json!({"client_secret": "wrong"}));
        let (_, _, flow_state) = begin(&p, &h, &u);
        let e = with_host(h, || {
            p.complete(
                &CallContext::for_tests(),
                callback(&[("code", "code-1")], &flow_state),
            )
        })
        .unwrap_err();
        assert_eq!(e.code(), "client_authentication_failed");
        // The upstream down.
        let down =
            Arc::new(MockHost::new().http(&["id.upstream.example"], |_| Err(HttpError::Timeout)));
        let e = with_host(down, || {
            plugin(json!({})).begin(&CallContext::for_tests(), begin_request())
        })
        .unwrap_err();
        assert_eq!(e.kind(), "unavailable");
    }

    #[test]
    fn configured_endpoints_skip_discovery_and_post_auth() {
        let requests = Arc::new(Mutex::new(Vec::<Request>::new()));
        let seen = requests.clone();
        let id_token = jwt(id_claims());
        let h = Arc::new(MockHost::new().http(&["127.0.0.1:8080"], move |r| {
            seen.lock().unwrap().push(r.clone());
            Ok(response(
                200,
                json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token})
                    .to_string(),
            ))
        }));
        let p = OidcUpstream::new(json!({
            "issuer": ISSUER, "client_id": "shop-federation", "client_secret": "pw",
            "token_endpoint_auth_method": "client_secret_post",
            "authorization_endpoint": "http://127.0.0.1:8080/authorize?tenant=acme",
            "token_endpoint": "http://127.0.0.1:8080/token",
            "scopes": ["openid"],
        }))
        .unwrap();
        let redirect = with_host(h.clone(), || {
            p.begin(&CallContext::for_tests(), begin_request())
        })
        .unwrap();
        assert!(
            redirect
                .url
                .starts_with("http://127.0.0.1:8080/authorize?tenant=acme&response_type=code&")
        );
        let outcome = with_host(h.clone(), || {
            p.complete(
                &CallContext::for_tests(),
                callback(&[("code", "c")], &redirect.flow_state),
            )
        })
        .unwrap();
        let CallbackOutcome::Authenticated(identity) = outcome else {
            panic!()
        };
        // No userinfo endpoint: the ID token's claims are the identity.
        assert_eq!(identity.subject, "user-42");
        assert_eq!(identity.email.as_deref(), Some("ann@acme.example"));
        assert!(identity.email_verified);
        let sent = requests.lock().unwrap();
        assert_eq!(sent.len(), 1, "token request only");
        let form = parse_form(std::str::from_utf8(sent[0].body.as_ref().unwrap()).unwrap());
        assert_eq!(form["client_id"], "shop-federation");
        assert_eq!(form["client_secret"], "pw");
        assert_eq!(
            vaultaris_plugin_sdk::find_key_value(&sent[0].headers, "authorization"),
            None
        );
    }

    #[test]
    fn discovery_must_name_the_same_issuer() {
        let h = Arc::new(MockHost::new().http(&["id.upstream.example"], |_| {
            Ok(response(
                200,
                json!({"issuer": "https://id.upstream.example/t/other",
                       "authorization_endpoint": "https://id.upstream.example/a",
                       "token_endpoint": "https://id.upstream.example/t"})
                .to_string(),
            ))
        }));
        let e = with_host(h, || {
            plugin(json!({})).begin(&CallContext::for_tests(), begin_request())
        })
        .unwrap_err();
        assert_eq!(
            (e.kind(), e.code()),
            ("misconfigured", "discovery_issuer_mismatch")
        );
        let h = Arc::new(MockHost::new().http(&["id.upstream.example"], |_| {
            Ok(response(
                200,
                json!({"issuer": ISSUER,
                       "authorization_endpoint": "http://id.upstream.example/a",
                       "token_endpoint": "https://id.upstream.example/t"})
                .to_string(),
            ))
        }));
        let e = with_host(h, || {
            plugin(json!({})).begin(&CallContext::for_tests(), begin_request())
        })
        .unwrap_err();
        assert_eq!(e.code(), "insecure_endpoint");
    }

    #[test]
    fn configuration() {
        let err = |extra: Value| {
            OidcUpstream::new(config(extra))
                .err()
                .unwrap()
                .code()
                .to_owned()
        };
        assert_eq!(
            err(json!({"issuer": "http://id.example"})),
            "insecure_endpoint"
        );
        assert_eq!(err(json!({"scopes": ["profile"]})), "openid_scope_required");
        assert_eq!(err(json!({"scopes": ["openid", "a b"]})), "invalid_scope");
        assert_eq!(
            err(json!({"extra_authorization_params": {"state": "x"}})),
            "reserved_authorization_param"
        );
        assert_eq!(
            err(json!({"icon_url": "javascript:alert(1)"})),
            "invalid_icon_url"
        );
        assert_eq!(
            err(json!({"client_secret": ""})),
            "missing_client_credentials"
        );
        assert_eq!(err(json!({"bogus": true})), "invalid_config");
        assert!(
            OidcUpstream::new(config(json!({"issuer": "http://localhost:8080/t/acme"}))).is_ok()
        );
        assert!(OidcUpstream::new(config(json!({"issuer": "http://127.0.0.1:8080"}))).is_ok());
        assert!(!is_loopback("http://127.0.0.1.evil.example/"));
        assert!(is_loopback("http://[::1]:8080/"));
        assert_eq!(encode("a b/é~"), "a%20b%2F%C3%A9~");
    }
}
