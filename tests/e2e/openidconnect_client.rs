//! The `openidconnect` crate (4.x) as an independent relying party: discovery,
//! authorization code + PKCE S256 through the hosted login page, ID token
//! validation for clients registered with RS256, ES256 and EdDSA, refresh
//! rotation, UserInfo, client credentials, introspection and revocation.
//!
//! The library's checks are never loosened: the only verifier setting changed
//! is the allowed signing algorithm, narrowed to the one the client registered
//! (what a real RP does with `id_token_signed_response_alg`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreSubjectIdentifierType,
    CoreTokenResponse,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalProviderMetadata, AuthType, AuthorizationCode,
    ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    ErrorResponse, IntrospectionUrl, IssuerUrl, JsonWebKey, LogoutProviderMetadata, LogoutRequest,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope,
    SubjectIdentifier, TokenIntrospectionResponse, TokenResponse,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_rustls::rustls;
use url::Url;

use crate::support::Server;

const SLUG: &str = "oidc-rs";
const USER_EMAIL: &str = "alice@oidc-rs.example";
const USER_PASSWORD: &str = "wonderland-rabbit-hole-42";
const REDIRECT_URI: &str = "https://rp.example.test/oidc/callback";
const POST_LOGOUT_URI: &str = "https://rp.example.test/oidc/logged-out";

/// Discovery fields the core metadata type does not model.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct ExtraMetadata {
    introspection_endpoint: Option<IntrospectionUrl>,
    revocation_endpoint: Option<RevocationUrl>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    LogoutProviderMetadata<ExtraMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client as `from_provider_metadata` builds it.
type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The same client with introspection and revocation endpoints set.
type FullRp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The back-channel HTTP client the library uses (redirects off, as the
/// crate's documentation requires against SSRF).
fn backchannel(f: &Fixture) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30));
    if let Some(root) = &f.tls_root {
        b = b.add_root_certificate(root.clone());
    }
    b.build().unwrap()
}

/// A "browser": cookie jar, no automatic redirects.
fn browser(f: &Fixture) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30));
    if let Some(root) = &f.tls_root {
        b = b.add_root_certificate(root.clone());
    }
    b.build().unwrap()
}

/// A TLS-terminating front on a loopback port, as a reverse proxy in front
/// of the server in production. Needed where the library insists on https
/// (oauth2's `revoke_token` refuses a non-https revocation URL, as RFC 7009
/// section 2 asks of clients). The certificate is self-signed for 127.0.0.1
/// and trusted by the RP's clients only.
struct TlsFront {
    listener: std::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    base: String,
    root: reqwest::Certificate,
}

fn tls_front() -> TlsFront {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    TlsFront {
        listener,
        config: Arc::new(config),
        base,
        root: reqwest::Certificate::from_der(cert.as_ref()).unwrap(),
    }
}

/// Forwards every TLS connection on `front` to the plain-HTTP `upstream`
/// (host:port); runs until the test's runtime ends.
fn spawn_tls_front(front: TlsFront, upstream: String) {
    front.listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(front.listener).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(front.config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
}

/// Renders a token-endpoint error with everything needed to diagnose it.
fn explain<RE: std::error::Error + 'static, T: ErrorResponse + 'static>(
    e: &RequestTokenError<RE, T>,
) -> String {
    match e {
        RequestTokenError::Parse(err, body) => format!(
            "library could not parse the response ({err}; at `{}`): {}",
            err.path(),
            String::from_utf8_lossy(body)
        ),
        RequestTokenError::ServerResponse(r) => format!("server error response: {r:?}"),
        RequestTokenError::Request(r) => {
            let mut msg = format!("request failed: {r}");
            let mut src = std::error::Error::source(r);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        }
        RequestTokenError::Other(o) => format!("other: {o}"),
    }
}

/// Provisioned tenant, user and clients.
struct Fixture {
    /// Kept alive for the test's duration.
    _server: Server,
    /// The base URL the RP sees (`s.base`, or the https front).
    external: String,
    /// The TLS front's certificate, when there is one.
    tls_root: Option<reqwest::Certificate>,
    issuer: String,
    tenant_id: String,
    admin: String,
    user_id: String,
    /// alg -> (client_id, client_secret)
    clients: HashMap<&'static str, (String, Option<String>)>,
    /// confidential client_credentials client
    service: (String, String),
}

/// Starts a server (behind a TLS front when `tls`) and provisions it.
async fn provision(tls: bool) -> Fixture {
    let (s, admin, external, tls_root) = if tls {
        let front = tls_front();
        let external = front.base.clone();
        let root = front.root.clone();
        let s = Server::start_with(&[("EXTERNAL_URL", &external)]).await;
        spawn_tls_front(front, s.base.trim_start_matches("http://").to_string());
        let admin = s.setup().await;
        (s, admin, external, Some(root))
    } else {
        let (s, admin) = Server::with_admin().await;
        let external = s.base.clone();
        (s, admin, external, None)
    };
    let tenant = s
        .create(
            "/api/v1/tenants",
            &admin,
            json!({"name": "OIDC RS", "slug": SLUG}),
        )
        .await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let issuer = format!("{external}/t/{SLUG}");
    assert_eq!(tenant["issuer"], issuer, "{tenant}");
    let user = s
        .create(
            &format!("/api/v1/tenants/{tid}/users"),
            &admin,
            json!({
                "email": USER_EMAIL, "password": USER_PASSWORD,
                "first_name": "Alice", "last_name": "Liddell", "email_verified": true
            }),
        )
        .await;
    let user_id = user["id"].as_str().unwrap().to_string();

    let mut clients = HashMap::new();
    // RS256 (the default, field omitted): confidential, client_secret_basic.
    let c = s
        .create(
            &format!("/api/v1/tenants/{tid}/clients"),
            &admin,
            json!({
                "client_id": "rp-rs256", "name": "RP RS256", "client_type": "confidential",
                "redirect_uris": [REDIRECT_URI], "post_logout_redirect_uris": [POST_LOGOUT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "scopes": ["openid", "profile", "email", "offline_access"]
            }),
        )
        .await;
    clients.insert(
        "RS256",
        (
            c["client_id"].as_str().unwrap().to_string(),
            Some(
                c["client_secret"]
                    .as_str()
                    .expect("secret shown once")
                    .to_string(),
            ),
        ),
    );
    // ES256: public client (PKCE only, no secret).
    let c = s
        .create(
            &format!("/api/v1/tenants/{tid}/clients"),
            &admin,
            json!({
                "client_id": "rp-es256", "name": "RP ES256", "client_type": "public",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "id_token_signed_response_alg": "ES256"
            }),
        )
        .await;
    assert!(c.get("client_secret").is_none_or(Value::is_null), "{c}");
    clients.insert(
        "ES256",
        (c["client_id"].as_str().unwrap().to_string(), None),
    );
    // EdDSA: confidential, client_secret_post.
    let c = s
        .create(
            &format!("/api/v1/tenants/{tid}/clients"),
            &admin,
            json!({
                "client_id": "rp-eddsa", "name": "RP EdDSA", "client_type": "confidential",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_post",
                "id_token_signed_response_alg": "EdDSA"
            }),
        )
        .await;
    clients.insert(
        "EdDSA",
        (
            c["client_id"].as_str().unwrap().to_string(),
            Some(
                c["client_secret"]
                    .as_str()
                    .expect("secret shown once")
                    .to_string(),
            ),
        ),
    );
    let c = s
        .create(
            &format!("/api/v1/tenants/{tid}/clients"),
            &admin,
            json!({
                "client_id": "rp-service", "name": "RP service", "client_type": "confidential",
                "redirect_uris": [],
                "grant_types": ["client_credentials"],
                "scopes": ["profile"]
            }),
        )
        .await;
    let service = (
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"]
            .as_str()
            .expect("secret shown once")
            .to_string(),
    );
    Fixture {
        _server: s,
        external,
        tls_root,
        issuer,
        tenant_id: tid,
        admin,
        user_id,
        clients,
        service,
    }
}

async fn discover(issuer: &str, http: &reqwest::Client) -> Metadata {
    Metadata::discover_async(IssuerUrl::new(issuer.to_string()).unwrap(), http)
        .await
        .unwrap_or_else(|e| {
            let mut msg = format!("discovery of {issuer} failed: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            if let openidconnect::DiscoveryError::Response(status, body, _) = &e {
                msg.push_str(&format!(" [{status}] {}", String::from_utf8_lossy(body)));
            }
            if let openidconnect::DiscoveryError::Parse(p) = &e {
                msg.push_str(&format!(" at `{}`", p.path()));
            }
            panic!("{msg}")
        })
}

fn alg_of(name: &str) -> CoreJwsSigningAlgorithm {
    match name {
        "RS256" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        "ES256" => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        "EdDSA" => CoreJwsSigningAlgorithm::EdDsa,
        other => panic!("no such alg {other}"),
    }
}

fn rp(meta: &Metadata, client_id: &str, secret: Option<&str>) -> Rp {
    CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(client_id.to_string()),
        secret.map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_string()).unwrap())
}

fn with_introspection_and_revocation(meta: &Metadata, issuer: &str, client: Rp) -> FullRp {
    let extra = &meta.additional_metadata().additional_metadata;
    let introspect = extra.introspection_endpoint.clone().unwrap_or_else(|| {
        eprintln!("note: discovery has no introspection_endpoint; using ISSUER/oauth/introspect");
        IntrospectionUrl::new(format!("{issuer}/oauth/introspect")).unwrap()
    });
    let revoke = extra.revocation_endpoint.clone().unwrap_or_else(|| {
        eprintln!("note: discovery has no revocation_endpoint; using ISSUER/oauth/revoke");
        RevocationUrl::new(format!("{issuer}/oauth/revoke")).unwrap()
    });
    assert_eq!(introspect.as_str(), format!("{issuer}/oauth/introspect"));
    assert_eq!(revoke.as_str(), format!("{issuer}/oauth/revoke"));
    client
        .set_introspection_url(introspect)
        .set_revocation_url(revoke)
}

// ---------------------------------------------------------------------------
// A minimal browser: one form, hidden inputs posted back, redirects followed
// only within the issuer.

/// An HTML form as a browser would submit it.
#[derive(Debug)]
struct Form {
    action: Option<String>,
    method: String,
    /// (name, type, value) of every input and named button.
    inputs: Vec<(String, String, Option<String>)>,
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let decoded = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Attributes of the tag starting at `html[start..]` (just after `<name`);
/// answers them and the index just past the closing `>`.
fn parse_attrs(html: &str, start: usize) -> (HashMap<String, String>, usize) {
    let b = html.as_bytes();
    let mut i = start;
    let mut attrs = HashMap::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (attrs, i);
        }
        if b[i] == b'>' {
            return (attrs, i + 1);
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = html[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = decode_entities(&html[vs..i.min(b.len())]);
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&html[vs..i]);
            }
        }
        if !name.is_empty() {
            attrs.entry(name).or_insert(value);
        }
    }
}

/// Start indices (just past `<tag`) of each `tag` element in `html`.
fn tag_starts(html: &str, tag: &str) -> Vec<usize> {
    let lower = html.to_ascii_lowercase();
    let needle = format!("<{tag}");
    let mut out = vec![];
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle) {
        let at = from + i + needle.len();
        if lower[at..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_whitespace() || c == '>' || c == '/')
        {
            out.push(at);
        }
        from = at;
    }
    out
}

fn parse_single_form(html: &str) -> Form {
    let forms = tag_starts(html, "form");
    assert_eq!(forms.len(), 1, "expected exactly one <form>:\n{html}");
    let (fattrs, body_start) = parse_attrs(html, forms[0]);
    let body_end = html.to_ascii_lowercase()[body_start..]
        .find("</form")
        .map(|i| body_start + i)
        .unwrap_or(html.len());
    let body = &html[body_start..body_end];
    let mut inputs = vec![];
    for at in tag_starts(body, "input") {
        let (a, _) = parse_attrs(body, at);
        if let Some(name) = a.get("name").filter(|n| !n.is_empty()) {
            if a.contains_key("disabled") {
                continue;
            }
            let ty = a
                .get("type")
                .map(|t| t.to_ascii_lowercase())
                .unwrap_or_else(|| "text".into());
            if matches!(ty.as_str(), "checkbox" | "radio") && !a.contains_key("checked") {
                continue;
            }
            inputs.push((name.clone(), ty, a.get("value").cloned()));
        }
    }
    for at in tag_starts(body, "button") {
        let (a, _) = parse_attrs(body, at);
        let ty = a.get("type").map(|t| t.to_ascii_lowercase());
        if ty.as_deref().unwrap_or("submit") == "submit"
            && let Some(name) = a.get("name").filter(|n| !n.is_empty())
        {
            inputs.push((name.clone(), "button".into(), a.get("value").cloned()));
        }
    }
    Form {
        action: fattrs.get("action").cloned(),
        method: fattrs
            .get("method")
            .map(|m| m.to_ascii_lowercase())
            .unwrap_or_else(|| "get".into()),
        inputs,
    }
}

fn under_issuer(url: &Url, issuer: &str) -> bool {
    let u = url.as_str();
    u == issuer
        || u.strip_prefix(issuer)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
}

/// Drives the hosted login from `start` until the server redirects to
/// `REDIRECT_URI`; answers that final URL. `expect_login` says whether the
/// login form must appear (false: an SSO session must redirect at once).
async fn run_browser(
    browser: &reqwest::Client,
    start: &Url,
    issuer: &str,
    expect_login: bool,
) -> Url {
    let mut next = Some((
        reqwest::Method::GET,
        start.clone(),
        None::<Vec<(String, String)>>,
    ));
    let mut saw_login = false;
    for _ in 0..12 {
        let (method, url, form) = next.take().unwrap();
        assert!(
            under_issuer(&url, issuer),
            "browser asked to leave the issuer {issuer} for {url}"
        );
        let mut req = browser.request(method.clone(), url.clone());
        if let Some(f) = &form {
            req = req.form(f);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        if status.is_redirection() {
            let loc = res
                .headers()
                .get("location")
                .unwrap_or_else(|| panic!("{method} {url}: {status} without Location"))
                .to_str()
                .unwrap()
                .to_string();
            let target = url.join(&loc).unwrap();
            if target.as_str().starts_with(REDIRECT_URI) {
                assert_eq!(
                    saw_login, expect_login,
                    "login page shown: {saw_login}, expected {expect_login}"
                );
                return target;
            }
            next = Some((reqwest::Method::GET, target, None));
            continue;
        }
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::OK,
            "{method} {url} answered {status}: {text}"
        );
        assert!(
            ct.starts_with("text/html"),
            "{method} {url}: content-type {ct}"
        );
        let page = parse_single_form(&text);
        assert_eq!(page.method, "post", "form method: {page:?}");
        let has_password = page.inputs.iter().any(|(n, _, _)| n == "password");
        assert!(
            has_password,
            "{method} {url}: not a login page (consent is off for these clients):\n{text}"
        );
        assert!(
            !saw_login,
            "login page shown twice (wrong credentials?):\n{text}"
        );
        saw_login = true;
        let mut fields = vec![];
        for (name, ty, value) in &page.inputs {
            match name.as_str() {
                "username" => fields.push((name.clone(), USER_EMAIL.to_string())),
                "password" => fields.push((name.clone(), USER_PASSWORD.to_string())),
                _ => {
                    if ty == "hidden" {
                        assert!(value.is_some(), "hidden input {name} without value");
                    }
                    fields.push((name.clone(), value.clone().unwrap_or_default()))
                }
            }
        }
        assert!(
            fields.iter().any(|(n, _)| n == "username"),
            "login form without a username input: {page:?}"
        );
        let action = match page.action.as_deref() {
            None | Some("") => url.clone(),
            Some(a) => url.join(a).unwrap(),
        };
        next = Some((reqwest::Method::POST, action, Some(fields)));
    }
    panic!("too many steps without reaching {REDIRECT_URI}");
}

/// Query parameters of the redirect back to the RP.
fn callback_params(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

struct Login {
    token: CoreTokenResponse,
    nonce: Nonce,
    subject: SubjectIdentifier,
    auth_time: Option<chrono::DateTime<chrono::Utc>>,
    code: String,
    pkce_verifier: String,
}

/// Authorization code + PKCE S256 through the browser, exchange, and full
/// ID token validation for a client registered with `alg`.
async fn code_flow(
    client: &Rp,
    http: &reqwest::Client,
    browser: &reqwest::Client,
    issuer: &str,
    alg: &CoreJwsSigningAlgorithm,
    expect_login: bool,
) -> Login {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = run_browser(browser, &auth_url, issuer, expect_login).await;
    let params = callback_params(&back);
    assert!(
        !params.contains_key("error"),
        "authorization error redirect: {back}"
    );
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(csrf.secret().as_str()),
        "state round trip: {back}"
    );
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(issuer),
        "RFC 9207 iss parameter: {back}"
    );
    let code = params.get("code").expect("code in redirect").clone();
    let pkce_verifier = verifier.secret().clone();

    let token = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .expect("token endpoint in discovery")
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .unwrap_or_else(|e| panic!("code exchange ({alg:?}): {}", explain(&e)));
    assert_eq!(
        *token.token_type(),
        openidconnect::core::CoreTokenType::Bearer
    );
    assert!(
        token.refresh_token().is_some(),
        "offline_access asked: refresh token expected"
    );

    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![alg.clone()]);
    let id_token = token.id_token().expect("id_token with openid scope");
    assert_eq!(id_token.signing_alg().unwrap(), alg);
    let claims = id_token
        .claims(&verifier, &nonce)
        .unwrap_or_else(|e| panic!("ID token ({alg:?}) rejected by the library: {e}"));
    assert_eq!(claims.issuer().as_str(), issuer);
    let at_hash = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims.access_token_hash(),
        Some(&at_hash),
        "at_hash ({alg:?}) missing or wrong"
    );
    Login {
        subject: claims.subject().clone(),
        auth_time: claims.auth_time(),
        nonce,
        token,
        code,
        pkce_verifier,
    }
}

/// A code is single use: a second exchange (same verifier) is invalid_grant.
/// (The server may also revoke what the first exchange issued.)
async fn replay_code(client: &Rp, http: &reqwest::Client, login: &Login) {
    let again = client
        .exchange_code(AuthorizationCode::new(login.code.clone()))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
        .request_async(http)
        .await;
    match &again {
        Err(RequestTokenError::ServerResponse(e)) => assert_eq!(
            *e.error(),
            CoreErrorResponseType::InvalidGrant,
            "second use of a code: {e:?}"
        ),
        Err(e) => panic!("second use of a code: {}", explain(e)),
        Ok(t) => panic!("second use of a code issued tokens: {t:?}"),
    }
}

async fn user_info_subject(
    client: &Rp,
    http: &reqwest::Client,
    at: &AccessToken,
    sub: &SubjectIdentifier,
) {
    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(at.clone(), Some(sub.clone()))
        .expect("userinfo endpoint in discovery")
        .request_async(http)
        .await
        .unwrap_or_else(|e| {
            let mut msg = format!("userinfo rejected by the library: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            if let openidconnect::UserInfoError::Response(status, body, _) = &e {
                msg.push_str(&format!(" [{status}] {}", String::from_utf8_lossy(body)));
            }
            panic!("{msg}")
        });
    assert_eq!(info.subject(), sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some(USER_EMAIL));
    assert_eq!(info.email_verified(), Some(true));
    assert_eq!(
        info.given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Alice")
    );
}

async fn expect_invalid_grant(client: &Rp, http: &reqwest::Client, rt: &RefreshToken, what: &str) {
    let res = client
        .exchange_refresh_token(rt)
        .unwrap()
        .request_async(http)
        .await;
    match &res {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(
                *e.error(),
                CoreErrorResponseType::InvalidGrant,
                "{what}: {e:?}"
            )
        }
        Err(e) => panic!("{what}: expected invalid_grant, got {}", explain(e)),
        Ok(t) => panic!("{what}: expected invalid_grant, got tokens {t:?}"),
    }
}

/// Refresh: rotation, the new ID token validates (same sub, aud, auth_time),
/// UserInfo with the new access token, reuse of the old refresh token fails
/// and revokes the family.
async fn refresh_flow(
    client: &Rp,
    http: &reqwest::Client,
    alg: &CoreJwsSigningAlgorithm,
    login: &Login,
) {
    let old = login.token.refresh_token().unwrap().clone();
    let new = client
        .exchange_refresh_token(&old)
        .expect("token endpoint")
        .request_async(http)
        .await
        .unwrap_or_else(|e| panic!("refresh ({alg:?}): {}", explain(&e)));
    let rotated = new
        .refresh_token()
        .expect("rotation issues a new refresh token");
    assert_ne!(rotated.secret(), old.secret());
    assert_ne!(
        new.access_token().secret(),
        login.token.access_token().secret()
    );
    if let Some(id_token) = new.id_token() {
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(vec![alg.clone()]);
        let original_nonce = login.nonce.secret().clone();
        // OIDC Core 12.2: a refreshed ID token need not carry a nonce; if it
        // does, it is the original one.
        let claims = id_token
            .claims(&verifier, |n: Option<&Nonce>| match n {
                None => Ok(()),
                Some(n) if *n.secret() == original_nonce => Ok(()),
                Some(_) => Err("nonce differs from the original".to_string()),
            })
            .unwrap_or_else(|e| panic!("refreshed ID token ({alg:?}) rejected: {e}"));
        assert_eq!(claims.subject(), &login.subject);
        assert_eq!(
            claims.audiences(),
            &vec![openidconnect::Audience::new(
                client.client_id().as_str().to_string()
            )]
        );
        if login.auth_time.is_some() {
            assert_eq!(
                claims.auth_time(),
                login.auth_time,
                "auth_time is the original one"
            );
        }
        let at_hash = AccessTokenHash::from_token(
            new.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        if let Some(h) = claims.access_token_hash() {
            assert_eq!(h, &at_hash, "refreshed at_hash");
        }
    } else {
        eprintln!("note: refresh response ({alg:?}) carries no ID token");
    }
    user_info_subject(client, http, new.access_token(), &login.subject).await;
    expect_invalid_grant(client, http, &old, "reuse of a rotated refresh token").await;
    expect_invalid_grant(
        client,
        http,
        rotated,
        "refresh token of a family revoked by reuse",
    )
    .await;
}

#[tokio::test]
async fn openidconnect_rp_discovers_the_issuer() {
    let f = provision(false).await;
    let http = backchannel(&f);
    let meta = discover(&f.issuer, &http).await;
    assert_eq!(meta.issuer().as_str(), f.issuer);
    assert_eq!(
        meta.authorization_endpoint().as_str(),
        format!("{}/oauth/authorize", f.issuer)
    );
    assert_eq!(
        meta.token_endpoint().unwrap().as_str(),
        format!("{}/oauth/token", f.issuer)
    );
    assert_eq!(
        meta.userinfo_endpoint().unwrap().as_str(),
        format!("{}/oauth/userinfo", f.issuer)
    );
    assert_eq!(
        meta.jwks_uri().as_str(),
        format!("{}/.well-known/jwks.json", f.issuer)
    );
    assert!(
        !meta.jwks().keys().is_empty(),
        "JWKS parsed by the library is empty"
    );
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(
            meta.id_token_signing_alg_values_supported()
                .contains(&alg_of(alg)),
            "{alg} not advertised: {:?}",
            meta.id_token_signing_alg_values_supported()
        );
    }
    assert!(
        meta.response_types_supported()
            .iter()
            .any(|r| r.as_slice() == [CoreResponseType::Code])
    );
    // The master issuer has no path: the crate must still accept it.
    let master = discover(&f.external, &http).await;
    assert_eq!(master.issuer().as_str(), f.external);
}

#[tokio::test]
async fn openidconnect_rp_code_flow_with_pkce_for_each_id_token_alg() {
    let f = provision(false).await;
    let http = backchannel(&f);
    let meta = discover(&f.issuer, &http).await;
    for alg_name in ["RS256", "ES256", "EdDSA"] {
        let alg = alg_of(alg_name);
        let (client_id, secret) = &f.clients[alg_name];
        let mut client = rp(&meta, client_id, secret.as_deref());
        if alg_name == "EdDSA" {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        let browser = browser(&f);
        let login = code_flow(&client, &http, &browser, &f.issuer, &alg, true).await;
        assert_eq!(login.subject.as_str(), f.user_id, "sub is the user id");
        user_info_subject(&client, &http, login.token.access_token(), &login.subject).await;
        // UserInfo refuses a wrong expected subject (token substitution check).
        let wrong: Result<openidconnect::core::CoreUserInfoClaims, _> = client
            .user_info(
                login.token.access_token().clone(),
                Some(SubjectIdentifier::new("someone-else".into())),
            )
            .unwrap()
            .request_async(&http)
            .await;
        assert!(
            matches!(
                wrong,
                Err(openidconnect::UserInfoError::ClaimsVerification(_))
            ),
            "library accepted a mismatched subject: {wrong:?}"
        );
        // A second authorization in the same browser rides the SSO session.
        let sso = code_flow(&client, &http, &browser, &f.issuer, &alg, false).await;
        assert_eq!(sso.subject, login.subject);
        if login.auth_time.is_some() {
            assert_eq!(
                sso.auth_time, login.auth_time,
                "SSO keeps the original auth_time"
            );
        }
        replay_code(&client, &http, &sso).await;
        refresh_flow(&client, &http, &alg, &login).await;
    }
}

#[tokio::test]
async fn openidconnect_rp_client_credentials_introspection_and_revocation() {
    let f = provision(true).await;
    let http = backchannel(&f);
    let meta = discover(&f.issuer, &http).await;

    // Client credentials with a confidential client (client_secret_basic).
    let service = rp(&meta, &f.service.0, Some(&f.service.1));
    let cc = service
        .exchange_client_credentials()
        .expect("token endpoint")
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("client_credentials: {}", explain(&e)));
    assert_eq!(*cc.token_type(), openidconnect::core::CoreTokenType::Bearer);
    assert!(
        cc.refresh_token().is_none(),
        "no refresh token for client_credentials"
    );
    assert!(
        cc.id_token().is_none(),
        "no ID token for client_credentials"
    );
    let service = with_introspection_and_revocation(&meta, &f.issuer, service);
    let intro = service
        .introspect(cc.access_token())
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("introspection: {}", explain(&e)));
    assert!(intro.active(), "{intro:?}");
    assert_eq!(
        intro.client_id().map(|c| c.as_str()),
        Some(f.service.0.as_str())
    );
    if let Some(iss) = intro.iss() {
        assert_eq!(iss, f.issuer);
    }
    if let Some(exp) = intro.exp() {
        assert!(exp > chrono::Utc::now(), "{intro:?}");
    }

    // A user's tokens from the code flow (RS256 confidential client).
    let (client_id, secret) = &f.clients["RS256"];
    let client = rp(&meta, client_id, secret.as_deref());
    let browser = browser(&f);
    let login = code_flow(
        &client,
        &http,
        &browser,
        &f.issuer,
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        true,
    )
    .await;
    let client = with_introspection_and_revocation(&meta, &f.issuer, client);
    let at = login.token.access_token();
    let intro = client
        .introspect(at)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("introspection: {}", explain(&e)));
    assert!(intro.active(), "{intro:?}");
    assert_eq!(intro.sub(), Some(login.subject.as_str()));
    assert_eq!(
        intro.client_id().map(|c| c.as_str()),
        Some(client_id.as_str())
    );
    let scopes: Vec<String> = intro
        .scopes()
        .map(|s| s.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    assert!(scopes.contains(&"openid".to_string()), "{intro:?}");

    // Revoke the access token: introspection turns inactive.
    client
        .revoke_token(CoreRevocableToken::from(at))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("revocation: {}", explain(&e)));
    let intro = client
        .introspect(at)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("introspection after revocation: {}", explain(&e)));
    assert!(!intro.active(), "revoked token still active: {intro:?}");
    // UserInfo refuses it.
    let ui: Result<openidconnect::core::CoreUserInfoClaims, _> = client
        .user_info(at.clone(), Some(login.subject.clone()))
        .unwrap()
        .request_async(&http)
        .await;
    assert!(ui.is_err(), "userinfo accepted a revoked token");

    // Revoke the refresh token: refresh fails with invalid_grant.
    let rt = login.token.refresh_token().unwrap();
    client
        .revoke_token(CoreRevocableToken::from(rt))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("refresh token revocation: {}", explain(&e)));
    let plain = rp(&meta, client_id, secret.as_deref());
    expect_invalid_grant(&plain, &http, rt, "refresh after revocation").await;
    // Revoking an unknown token is not an error (RFC 7009 2.2).
    client
        .revoke_token(CoreRevocableToken::from(&AccessToken::new(
            "not-a-token".into(),
        )))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("revocation of an unknown token: {}", explain(&e)));
}

#[test]
fn openidconnect_rp_browser_form_parser() {
    let html = r#"<!doctype html><html><body>
      <FORM method="POST" action='/t/x/login?flow=a&amp;b=c'>
        <input type=hidden name="csrf" value="a&quot;b&#39;c&#x2F;">
        <input type="hidden" name=flow value=f1 />
        <input name="username" id="username" autocomplete="username">
        <input name="password" id="password" type="password">
        <input type="checkbox" name="remember" value="1">
        <input type="checkbox" name="agree" value="yes" checked>
        <input name="off" value="x" disabled>
        <button type="submit" id="submit">Sign in</button>
        <button name="decision" value="allow" id="allow">Allow</button>
      </form></body></html>"#;
    let f = parse_single_form(html);
    assert_eq!(f.method, "post");
    assert_eq!(f.action.as_deref(), Some("/t/x/login?flow=a&b=c"));
    let got: Vec<(&str, &str, Option<&str>)> = f
        .inputs
        .iter()
        .map(|(n, t, v)| (n.as_str(), t.as_str(), v.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("csrf", "hidden", Some("a\"b'c/")),
            ("flow", "hidden", Some("f1")),
            ("username", "text", None),
            ("password", "password", None),
            ("agree", "checkbox", Some("yes")),
            ("decision", "button", Some("allow")),
        ]
    );
    let base = Url::parse("http://127.0.0.1:1/t/x/oauth/authorize?a=1").unwrap();
    assert!(under_issuer(&base, "http://127.0.0.1:1/t/x"));
    assert!(!under_issuer(&base, "http://127.0.0.1:1/t/xy"));
    assert!(!under_issuer(
        &Url::parse("http://127.0.0.1:1/t/xy/oauth").unwrap(),
        "http://127.0.0.1:1/t/x"
    ));
}

#[tokio::test]
async fn openidconnect_rp_initiated_logout_ends_the_session() {
    let f = provision(false).await;
    let http = backchannel(&f);
    let meta = discover(&f.issuer, &http).await;
    let end_session = meta
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("end_session_endpoint in discovery");
    assert_eq!(end_session.as_str(), format!("{}/oauth/logout", f.issuer));
    let (client_id, secret) = &f.clients["RS256"];
    let client = rp(&meta, client_id, secret.as_deref());
    let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let browser = browser(&f);
    let login = code_flow(&client, &http, &browser, &f.issuer, &alg, true).await;

    let state = CsrfToken::new_random();
    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(login.token.id_token().unwrap())
        .set_client_id(ClientId::new(client_id.clone()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(POST_LOGOUT_URI.into()).unwrap())
        .set_state(state.clone())
        .http_get_url();
    let res = browser.get(logout_url.clone()).send().await.unwrap();
    assert!(
        res.status().is_redirection(),
        "GET {logout_url}: {} {}",
        res.status(),
        res.text().await.unwrap_or_default()
    );
    let location = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location.as_str().starts_with(POST_LOGOUT_URI),
        "logout redirected to {location}"
    );
    assert_eq!(
        callback_params(&location).get("state").map(String::as_str),
        Some(state.secret().as_str()),
        "{location}"
    );
    // The session is gone: prompt=none answers login_required (RFC 9207 iss
    // and state included), and a normal authorization shows the login page.
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let (silent, csrf, _nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_prompt(CoreAuthPrompt::None)
        .set_pkce_challenge(challenge)
        .url();
    let back = run_browser(&browser, &silent, &f.issuer, false).await;
    let params = callback_params(&back);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("login_required"),
        "{back}"
    );
    assert_eq!(
        params.get("state").map(String::as_str),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(f.issuer.as_str())
    );
    assert!(!params.contains_key("code"), "{back}");

    // The next authorization shows the login page.
    let again = code_flow(&client, &http, &browser, &f.issuer, &alg, true).await;
    assert_eq!(again.subject, login.subject);
    // And the session's grant is revoked.
    expect_invalid_grant(
        &client,
        &http,
        login.token.refresh_token().unwrap(),
        "refresh token of a logged-out session",
    )
    .await;
}

#[tokio::test]
async fn openidconnect_rp_survives_signing_key_rotation() {
    let f = provision(false).await;
    let http = backchannel(&f);
    for alg_name in ["RS256", "ES256", "EdDSA"] {
        let alg = alg_of(alg_name);
        let (client_id, secret) = &f.clients[alg_name];
        let meta = discover(&f.issuer, &http).await;
        let mut client = rp(&meta, client_id, secret.as_deref());
        if alg_name == "EdDSA" {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        let before = code_flow(&client, &http, &browser(&f), &f.issuer, &alg, true).await;
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(vec![alg.clone()]);
        let old_kid = before
            .token
            .id_token()
            .unwrap()
            .signing_key(&verifier)
            .unwrap()
            .key_id()
            .cloned();

        let (status, body) = f
            ._server
            .post(
                &format!("/api/v1/tenants/{}/keys/rotate", f.tenant_id),
                &f.admin,
                json!({"algorithm": alg_name}),
            )
            .await;
        assert!(status.is_success(), "rotate {alg_name}: {status} {body}");

        // A fresh RP (new discovery, new JWKS) verifies new and old ID tokens.
        let meta = discover(&f.issuer, &http).await;
        let mut client = rp(&meta, client_id, secret.as_deref());
        if alg_name == "EdDSA" {
            client = client.set_auth_type(AuthType::RequestBody);
        }
        let after = code_flow(&client, &http, &browser(&f), &f.issuer, &alg, true).await;
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(vec![alg.clone()]);
        let new_kid = after
            .token
            .id_token()
            .unwrap()
            .signing_key(&verifier)
            .unwrap()
            .key_id()
            .cloned();
        assert!(new_kid.is_some(), "ID tokens carry a kid");
        assert_ne!(
            new_kid, old_kid,
            "{alg_name}: rotation changed the signing key"
        );
        before
            .token
            .id_token()
            .unwrap()
            .claims(&verifier, &before.nonce)
            .unwrap_or_else(|e| {
                panic!("{alg_name}: ID token signed before rotation no longer verifies: {e}")
            });
        refresh_flow(&client, &http, &alg, &before).await;
    }
}
