//! A small relying party for the OIDC e2e suites, written from the specs
//! rather than from the server's code: PKCE (RFC 7636), authorization URLs,
//! a cookie-keeping "browser" that never follows redirects by itself, the
//! hosted login and consent forms, JWT decoding and signature checks against
//! a JWKS (RS256, ES256, EdDSA/Ed25519), DPoP proofs (RFC 9449), client
//! assertions (RFC 7523) and JWK thumbprints (RFC 7638).

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use url::Url;

// ---------------------------------------------------------------- basics

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` random bytes, base64url.
pub fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b64(b)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// SHA-256 hex, as the server stores codes and refresh tokens.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A PKCE pair (RFC 7636 §4.1–4.2, S256).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = random(32); // 43 characters of [A-Za-z0-9-_]
    let challenge = b64(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// `ath` / `at_hash`-style SHA-256 of an access token (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    b64(Sha256::digest(access_token.as_bytes()))
}

/// OIDC Core §3.1.3.6 `at_hash`: left half of the hash the ID token's `alg`
/// uses (SHA-256 for RS256/ES256; SHA-512 for EdDSA over Ed25519).
pub fn at_hash(alg: &str, access_token: &str) -> String {
    let d: Vec<u8> = match alg {
        "EdDSA" | "Ed25519" => Sha512::digest(access_token.as_bytes()).to_vec(),
        "RS256" | "ES256" | "PS256" => Sha256::digest(access_token.as_bytes()).to_vec(),
        other => panic!("no at_hash rule for {other}"),
    };
    b64(&d[..d.len() / 2])
}

/// RFC 7638 thumbprint of a public JWK, computed here independently.
pub fn thumbprint(jwk: &Value) -> String {
    let m = |k: &str| {
        jwk[k]
            .as_str()
            .unwrap_or_else(|| panic!("jwk without {k}: {jwk}"))
            .to_string()
    };
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            m("crv"),
            m("x"),
            m("y")
        ),
        Some("OKP") => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, m("crv"), m("x")),
        Some("RSA") => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m("e"), m("n")),
        _ => panic!("unknown kty: {jwk}"),
    };
    b64(Sha256::digest(canonical.as_bytes()))
}

// ---------------------------------------------------------------- JWTs

/// Header and claims of a compact JWT, unverified.
pub fn decode(jwt: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {jwt}");
    let part = |p: &str| -> Value {
        let raw = URL_SAFE_NO_PAD
            .decode(p)
            .unwrap_or_else(|e| panic!("bad base64url in {jwt}: {e}"));
        serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("bad JSON in {jwt}: {e}"))
    };
    (part(parts[0]), part(parts[1]))
}

/// The kty/crv a JWS `alg` needs.
fn key_type_for(alg: &str) -> (&'static str, Option<&'static str>) {
    match alg {
        "RS256" | "PS256" => ("RSA", None),
        "ES256" => ("EC", Some("P-256")),
        "EdDSA" | "Ed25519" => ("OKP", Some("Ed25519")),
        other => panic!("unexpected alg {other}"),
    }
}

fn verify_with(alg: &str, jwk: &Value, input: &[u8], sig: &[u8]) -> Result<(), String> {
    let b = |k: &str| -> Result<Vec<u8>, String> {
        URL_SAFE_NO_PAD
            .decode(jwk[k].as_str().ok_or(format!("jwk has no {k}"))?)
            .map_err(|e| e.to_string())
    };
    match alg {
        "RS256" => {
            use rsa::signature::Verifier;
            let n = rsa::BigUint::from_bytes_be(&b("n")?);
            let e = rsa::BigUint::from_bytes_be(&b("e")?);
            let pk = rsa::RsaPublicKey::new(n, e).map_err(|e| e.to_string())?;
            let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk);
            let s = rsa::pkcs1v15::Signature::try_from(sig).map_err(|e| e.to_string())?;
            vk.verify(input, &s).map_err(|e| e.to_string())
        }
        "PS256" => {
            use rsa::signature::Verifier;
            let n = rsa::BigUint::from_bytes_be(&b("n")?);
            let e = rsa::BigUint::from_bytes_be(&b("e")?);
            let pk = rsa::RsaPublicKey::new(n, e).map_err(|e| e.to_string())?;
            let vk = rsa::pss::VerifyingKey::<Sha256>::new(pk);
            let s = rsa::pss::Signature::try_from(sig).map_err(|e| e.to_string())?;
            vk.verify(input, &s).map_err(|e| e.to_string())
        }
        "ES256" => {
            use p256::ecdsa::signature::Verifier;
            let (x, y) = (b("x")?, b("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            let vk =
                p256::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(|e| e.to_string())?;
            let s = p256::ecdsa::Signature::from_slice(sig).map_err(|e| e.to_string())?;
            vk.verify(input, &s).map_err(|e| e.to_string())
        }
        "EdDSA" | "Ed25519" => {
            use ed25519_dalek::Verifier;
            let x: [u8; 32] = b("x")?
                .try_into()
                .map_err(|_| "Ed25519 x must be 32 bytes".to_string())?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|e| e.to_string())?;
            let s = ed25519_dalek::Signature::from_slice(sig).map_err(|e| e.to_string())?;
            vk.verify(input, &s).map_err(|e| e.to_string())
        }
        other => Err(format!("unsupported alg {other}")),
    }
}

/// Verifies `jwt` against the JWK Set `jwks` ({"keys":[...]}): the header's
/// `kid` must name a key whose kty (and crv) suit the header's `alg`, and the
/// signature must verify. Answers header and claims.
pub fn try_verify(jwt: &str, jwks: &Value) -> Result<(Value, Value), String> {
    let (header, claims) = decode(jwt);
    let alg = header["alg"].as_str().ok_or("no alg")?;
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let keys = jwks["keys"].as_array().ok_or("JWKS without keys")?;
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or_else(|| format!("no JWKS key with kid {kid}"))?;
    let (kty, crv) = key_type_for(alg);
    if jwk["kty"] != kty || crv.is_some_and(|c| jwk["crv"] != c) {
        return Err(format!("key {jwk} does not suit alg {alg}"));
    }
    if let Some(a) = jwk["alg"].as_str()
        && a != alg
        && !(matches!(a, "EdDSA" | "Ed25519") && matches!(alg, "EdDSA" | "Ed25519"))
    {
        return Err(format!("key {kid} is for {a}, token says {alg}"));
    }
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|e| e.to_string())?;
    verify_with(alg, jwk, input.as_bytes(), &sig)?;
    Ok((header, claims))
}

/// `try_verify` that panics with the reason.
pub fn verify(jwt: &str, jwks: &Value) -> (Value, Value) {
    try_verify(jwt, jwks).unwrap_or_else(|e| panic!("JWT does not verify: {e}\n{jwt}"))
}

// ---------------------------------------------------------------- keys

enum Secret {
    Es256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// A key pair held by the test (DPoP or client authentication).
pub struct TestKey {
    secret: Secret,
    pub kid: String,
}

impl TestKey {
    pub fn es256() -> TestKey {
        TestKey {
            secret: Secret::Es256(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)),
            kid: random(8),
        }
    }

    pub fn ed25519() -> TestKey {
        TestKey {
            secret: Secret::Ed25519(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)),
            kid: random(8),
        }
    }

    pub fn rsa() -> TestKey {
        let k = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        TestKey {
            secret: Secret::Rsa(Box::new(k)),
            kid: random(8),
        }
    }

    /// The public JWK (no kid, no alg).
    pub fn public_jwk(&self) -> Value {
        match &self.secret {
            Secret::Es256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256", "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())})
            }
            Secret::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.verifying_key().to_bytes())})
            }
            Secret::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                json!({"kty": "RSA", "n": b64(k.n().to_bytes_be()), "e": b64(k.e().to_bytes_be())})
            }
        }
    }

    /// The public JWK with `kid`, `use` and `alg`, for registration.
    pub fn registered_jwk(&self) -> Value {
        let mut j = self.public_jwk();
        j["kid"] = json!(self.kid);
        j["use"] = json!("sig");
        if let Some(a) = self.default_alg() {
            j["alg"] = json!(a);
        }
        j
    }

    fn default_alg(&self) -> Option<&'static str> {
        match &self.secret {
            Secret::Es256(_) => Some("ES256"),
            Secret::Rsa(_) => Some("RS256"),
            Secret::Ed25519(_) => None,
        }
    }

    /// RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.public_jwk())
    }

    fn sign_raw(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        match (&self.secret, alg) {
            (Secret::Es256(k), "ES256") => {
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            (Secret::Ed25519(k), "EdDSA" | "Ed25519") => {
                use ed25519_dalek::Signer;
                k.sign(input).to_bytes().to_vec()
            }
            (Secret::Rsa(k), "RS256") => {
                use rsa::signature::{SignatureEncoding, Signer};
                let sk = rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone());
                sk.sign(input).to_vec()
            }
            (Secret::Rsa(k), "PS256") => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                let sk = rsa::pss::BlindedSigningKey::<Sha256>::new((**k).clone());
                sk.sign_with_rng(&mut rand::rngs::OsRng, input).to_vec()
            }
            (_, alg) => panic!("this key cannot sign {alg}"),
        }
    }

    /// A compact JWS of `claims` with `header` (alg is set here).
    pub fn sign(&self, alg: &str, header: Value, claims: &Value) -> String {
        let mut h = header;
        h["alg"] = json!(alg);
        let input = format!(
            "{}.{}",
            b64(serde_json::to_vec(&h).unwrap()),
            b64(serde_json::to_vec(claims).unwrap())
        );
        let sig = self.sign_raw(alg, input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// The algorithm this key signs DPoP proofs with by default.
    pub fn alg(&self) -> &'static str {
        self.default_alg().unwrap_or("EdDSA")
    }

    /// A DPoP proof (RFC 9449 §4.2) for `htm` `htu`, with `ath` when
    /// `access_token` is given and `nonce` when given.
    pub fn dpop(
        &self,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let mut claims = json!({"jti": random(16), "htm": htm, "htu": htu, "iat": now()});
        if let Some(at) = access_token {
            claims["ath"] = json!(ath(at));
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        self.dpop_with(self.alg(), &claims)
    }

    /// A DPoP proof with arbitrary claims and `alg`.
    pub fn dpop_with(&self, alg: &str, claims: &Value) -> String {
        self.sign(
            alg,
            json!({"typ": "dpop+jwt", "jwk": self.public_jwk()}),
            claims,
        )
    }

    /// A `private_key_jwt` client assertion (RFC 7523 §3).
    pub fn client_assertion(&self, client_id: &str, aud: &str) -> String {
        let t = now();
        self.client_assertion_with(&json!({
            "iss": client_id, "sub": client_id, "aud": aud,
            "iat": t, "exp": t + 60, "jti": random(16)
        }))
    }

    /// A client assertion with arbitrary claims.
    pub fn client_assertion_with(&self, claims: &Value) -> String {
        self.sign(self.alg(), json!({"typ": "JWT", "kid": self.kid}), claims)
    }
}

// ---------------------------------------------------------------- HTTP

/// A back-channel HTTP client (no redirects, no cookies).
pub fn backchannel() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An HTTP answer with everything a test may look at.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The JSON body, or the text as a JSON string.
    pub body: Value,
    /// The URL requested.
    pub url: Url,
}

impl Reply {
    async fn from(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let url = res.url().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Reply {
            status,
            headers,
            text,
            body,
            url,
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// All values of `Set-Cookie`.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// The `Set-Cookie` for cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The absolute `Location` of a redirect.
    pub fn location(&self) -> Option<Url> {
        self.header("location").map(|l| self.url.join(&l).unwrap())
    }

    /// `error` of an OAuth JSON error body.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// A one-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} (location: {:?}, www-authenticate: {:?}): {}",
            self.status,
            self.url,
            self.header("location"),
            self.header("www-authenticate"),
            &self.text[..self.text.len().min(1500)]
        )
    }

    /// Asserts an HTML page (not a redirect) with `status`.
    pub fn assert_page(&self, status: StatusCode, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.describe());
        assert!(
            self.header("location").is_none(),
            "{what}: a page must not redirect: {}",
            self.describe()
        );
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("text/html"),
            "{what}: content-type {ct}: {}",
            self.describe()
        );
    }

    /// Asserts the error page of the authorization endpoint: 400, HTML with
    /// `id="error"`, no redirect.
    pub fn assert_error_page(&self, what: &str) {
        self.assert_page(StatusCode::BAD_REQUEST, what);
        assert!(
            self.text.contains(r#"id="error""#),
            "{what}: no id=\"error\": {}",
            self.describe()
        );
    }

    /// Asserts an OAuth JSON error with `status` and `error`.
    pub fn assert_oauth_error(&self, status: StatusCode, error: &str, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.describe());
        assert_eq!(self.error(), error, "{what}: {}", self.describe());
        assert!(
            self.body["error_description"].is_string() || self.body["error_description"].is_null(),
            "{what}: {}",
            self.describe()
        );
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "{what}: content-type {ct}: {}",
            self.describe()
        );
    }

    /// The only `<form>` of an HTML page.
    pub fn form(&self) -> Form {
        parse_form(&self.text)
    }

    /// Whether this is the hosted login page.
    pub fn is_login_page(&self) -> bool {
        self.status.is_success()
            && self.text.contains(r#"id="password""#)
            && self.text.contains(r#"id="username""#)
    }

    /// Whether this is the consent page.
    pub fn is_consent_page(&self) -> bool {
        self.status.is_success()
            && self.text.contains(r#"id="allow""#)
            && self.text.contains(r#"id="deny""#)
            && !self.text.contains(r#"id="password""#)
    }
}

/// How a client authenticates at the token, introspection and revocation
/// endpoints.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Nothing at all.
    Nothing,
    /// `client_id` in the form (public clients).
    Public(String),
    /// HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1, form-encoded).
    Basic(String, String),
    /// `client_id` and `client_secret` in the form.
    Post(String, String),
    /// `private_key_jwt` assertion.
    Assertion(String),
}

impl Auth {
    pub fn basic(id: &str, secret: &str) -> Auth {
        Auth::Basic(id.into(), secret.into())
    }
    pub fn public(id: &str) -> Auth {
        Auth::Public(id.into())
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// POSTs a form to `url` with client authentication and an optional DPoP
/// header.
pub async fn post_form(
    http: &reqwest::Client,
    url: &str,
    params: &[(&str, &str)],
    auth: &Auth,
    dpop: Option<&str>,
) -> Reply {
    let mut fields: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut req = http.post(url);
    match auth {
        Auth::Nothing => {}
        Auth::Public(id) => fields.push(("client_id".into(), id.clone())),
        Auth::Basic(id, secret) => {
            let creds = format!("{}:{}", form_encode(id), form_encode(secret));
            req = req.header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(creds)
                ),
            );
        }
        Auth::Post(id, secret) => {
            fields.push(("client_id".into(), id.clone()));
            fields.push(("client_secret".into(), secret.clone()));
        }
        Auth::Assertion(a) => {
            fields.push((
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ));
            fields.push(("client_assertion".into(), a.clone()));
        }
    }
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    Reply::from(req.form(&fields).send().await.unwrap()).await
}

/// POST `{issuer}/oauth/token`.
pub async fn token(
    http: &reqwest::Client,
    issuer: &str,
    params: &[(&str, &str)],
    auth: &Auth,
    dpop: Option<&str>,
) -> Reply {
    post_form(http, &format!("{issuer}/oauth/token"), params, auth, dpop).await
}

/// POST `{issuer}/oauth/introspect`; answers the reply.
pub async fn introspect(http: &reqwest::Client, issuer: &str, auth: &Auth, tok: &str) -> Reply {
    post_form(
        http,
        &format!("{issuer}/oauth/introspect"),
        &[("token", tok)],
        auth,
        None,
    )
    .await
}

/// Introspects and answers `active`, asserting 200.
pub async fn active(http: &reqwest::Client, issuer: &str, auth: &Auth, tok: &str) -> bool {
    let r = introspect(http, issuer, auth, tok).await;
    assert_eq!(r.status, StatusCode::OK, "introspect: {}", r.describe());
    r.body["active"]
        .as_bool()
        .unwrap_or_else(|| panic!("introspection without active: {}", r.describe()))
}

/// POST `{issuer}/oauth/revoke`.
pub async fn revoke(http: &reqwest::Client, issuer: &str, auth: &Auth, tok: &str) -> Reply {
    post_form(
        http,
        &format!("{issuer}/oauth/revoke"),
        &[("token", tok)],
        auth,
        None,
    )
    .await
}

/// GET `{issuer}/oauth/userinfo` with an `Authorization` header value and an
/// optional DPoP proof.
pub async fn userinfo(
    http: &reqwest::Client,
    issuer: &str,
    authorization: Option<&str>,
    dpop: Option<&str>,
) -> Reply {
    let mut req = http.get(format!("{issuer}/oauth/userinfo"));
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    Reply::from(req.send().await.unwrap()).await
}

// ---------------------------------------------------------------- HTML forms

/// A parsed `<form>`.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub method: String,
    /// (name, type, value) of each named input.
    pub inputs: Vec<(String, String, String)>,
    /// (name, value, id) of each named submit button.
    pub buttons: Vec<(String, String, String)>,
}

impl Form {
    pub fn hidden(&self, name: &str) -> Option<&str> {
        self.inputs
            .iter()
            .find(|(n, t, _)| n == name && t == "hidden")
            .map(|(_, _, v)| v.as_str())
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Attributes of the tag whose name ends at `html[at..]`.
fn attrs(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = tag.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let name = tag[ns..i].to_ascii_lowercase();
        if name.is_empty() {
            i += 1;
            continue;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = unescape(&tag[vs..i]);
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&tag[vs..i]);
            }
        }
        out.entry(name).or_insert(value);
    }
    out
}

/// Each `<tag ...>` in `html`: its attributes.
fn tags(html: &str, tag: &str) -> Vec<HashMap<String, String>> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let mut out = vec![];
    let mut from = 0;
    while let Some(i) = lower[from..].find(&open) {
        let start = from + i + open.len();
        let next = lower[start..].chars().next();
        if next.is_some_and(|c| c.is_ascii_whitespace() || c == '>') {
            let end = start + html[start..].find('>').expect("unterminated tag");
            out.push(attrs(&html[start..end]));
            from = end;
        } else {
            from = start;
        }
    }
    out
}

/// Parses the single `<form>` of `html`.
pub fn parse_form(html: &str) -> Form {
    let lower = html.to_ascii_lowercase();
    assert_eq!(
        lower.matches("<form").count(),
        1,
        "expected exactly one <form>:\n{html}"
    );
    let start = lower.find("<form").unwrap();
    let end = lower.find("</form>").expect("unterminated form");
    let f = &tags(&html[start..end], "form")[0];
    let body = &html[start..end];
    let inputs = tags(body, "input")
        .into_iter()
        .filter(|a| a.get("name").is_some_and(|n| !n.is_empty()))
        .map(|a| {
            (
                a["name"].clone(),
                a.get("type")
                    .map(|t| t.to_ascii_lowercase())
                    .unwrap_or_else(|| "text".into()),
                a.get("value").cloned().unwrap_or_default(),
            )
        })
        .collect();
    let buttons = tags(body, "button")
        .into_iter()
        .filter(|a| a.get("type").is_none_or(|t| t == "submit"))
        .map(|a| {
            (
                a.get("name").cloned().unwrap_or_default(),
                a.get("value").cloned().unwrap_or_default(),
                a.get("id").cloned().unwrap_or_default(),
            )
        })
        .collect();
    Form {
        action: f.get("action").cloned().unwrap_or_default(),
        method: f
            .get("method")
            .map(|m| m.to_ascii_lowercase())
            .unwrap_or_else(|| "get".into()),
        inputs,
        buttons,
    }
}

// ---------------------------------------------------------------- browser

/// A browser: a cookie jar, redirects not followed.
pub struct Browser {
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub async fn get(&self, url: &str) -> Reply {
        Reply::from(self.http.get(url).send().await.unwrap()).await
    }

    pub async fn post(&self, url: &str, fields: &[(String, String)]) -> Reply {
        Reply::from(self.http.post(url).form(fields).send().await.unwrap()).await
    }

    /// Submits the page's form: every input as it is, `fill` overriding or
    /// adding fields; `button` names the submit button (by id) to press.
    pub async fn submit(&self, page: &Reply, fill: &[(&str, &str)], button: Option<&str>) -> Reply {
        let form = page.form();
        assert_eq!(form.method, "post", "{form:?}");
        let mut fields: Vec<(String, String)> = form
            .inputs
            .iter()
            .filter(|(n, _, _)| !fill.iter().any(|(f, _)| f == n))
            .map(|(n, _, v)| (n.clone(), v.clone()))
            .collect();
        for (k, v) in fill {
            fields.push((k.to_string(), v.to_string()));
        }
        if let Some(id) = button {
            let (name, value, _) = form
                .buttons
                .iter()
                .find(|(_, _, i)| i == id)
                .unwrap_or_else(|| panic!("no button #{id} in {form:?}"));
            if !name.is_empty() {
                fields.push((name.clone(), value.clone()));
            }
        }
        let action = if form.action.is_empty() {
            page.url.clone()
        } else {
            page.url.join(&form.action).unwrap()
        };
        self.post(action.as_str(), &fields).await
    }

    /// Fills and submits the login page.
    pub async fn login(&self, page: &Reply, user: &str, password: &str) -> Reply {
        assert!(
            page.is_login_page(),
            "not a login page: {}",
            page.describe()
        );
        let form = page.form();
        for hidden in ["csrf", "flow"] {
            assert!(
                form.hidden(hidden).is_some_and(|v| !v.is_empty()),
                "login form without hidden {hidden}: {form:?}"
            );
        }
        self.submit(
            page,
            &[("username", user), ("password", password)],
            Some("submit"),
        )
        .await
    }

    /// Presses allow or deny on the consent page.
    pub async fn consent(&self, page: &Reply, allow: bool) -> Reply {
        assert!(
            page.is_consent_page(),
            "not a consent page: {}",
            page.describe()
        );
        self.submit(page, &[], Some(if allow { "allow" } else { "deny" }))
            .await
    }
}

/// Query parameters of a redirect to `redirect_uri`; asserts the reply is a
/// 302/303 whose Location is exactly `redirect_uri` plus a query.
pub fn callback(reply: &Reply, redirect_uri: &str) -> HashMap<String, String> {
    assert!(
        reply.status == StatusCode::FOUND || reply.status == StatusCode::SEE_OTHER,
        "expected a redirect to {redirect_uri}: {}",
        reply.describe()
    );
    let loc = reply.location().expect("Location");
    let mut bare = loc.clone();
    bare.set_query(None);
    assert_eq!(
        bare.as_str(),
        Url::parse(redirect_uri).unwrap().as_str(),
        "redirected elsewhere: {}",
        reply.describe()
    );
    let mut out = HashMap::new();
    for (k, v) in loc.query_pairs() {
        assert!(
            out.insert(k.to_string(), v.to_string()).is_none(),
            "parameter {k} repeated in {loc}"
        );
    }
    out
}

// ---------------------------------------------------------------- requests

/// An authorization request being built.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub issuer: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub nonce: String,
    pub pkce: Pkce,
    pub extra: Vec<(String, String)>,
}

impl AuthRequest {
    pub fn new(issuer: &str, client_id: &str, redirect_uri: &str, scope: &str) -> AuthRequest {
        AuthRequest {
            issuer: issuer.into(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scope: scope.into(),
            state: random(12),
            nonce: random(12),
            pkce: pkce(),
            extra: vec![],
        }
    }

    /// Adds a parameter.
    pub fn with(mut self, k: &str, v: &str) -> AuthRequest {
        self.extra.push((k.into(), v.into()));
        self
    }

    /// The same request with fresh state, nonce and PKCE.
    pub fn fresh(&self) -> AuthRequest {
        AuthRequest {
            state: random(12),
            nonce: random(12),
            pkce: pkce(),
            ..self.clone()
        }
    }

    pub fn params(&self) -> Vec<(String, String)> {
        let mut p = vec![
            ("response_type".to_string(), "code".to_string()),
            ("client_id".into(), self.client_id.clone()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("scope".into(), self.scope.clone()),
            ("state".into(), self.state.clone()),
            ("nonce".into(), self.nonce.clone()),
            ("code_challenge".into(), self.pkce.challenge.clone()),
            ("code_challenge_method".into(), "S256".into()),
        ];
        p.extend(self.extra.iter().cloned());
        p
    }

    pub fn url(&self) -> String {
        authorize_url(&self.issuer, &self.params())
    }

    /// Checks a redirect carrying a code: state and iss echo, no error.
    /// Answers the code.
    pub fn code_from(&self, reply: &Reply) -> String {
        let p = callback(reply, &self.redirect_uri);
        assert!(!p.contains_key("error"), "error redirect: {p:?}");
        assert_eq!(p.get("state"), Some(&self.state), "{p:?}");
        assert_eq!(p.get("iss"), Some(&self.issuer), "{p:?}");
        p.get("code")
            .unwrap_or_else(|| panic!("no code in {p:?}"))
            .clone()
    }

    /// Checks an error redirect (state and iss echo); answers `error`.
    pub fn error_from(&self, reply: &Reply) -> String {
        let p = callback(reply, &self.redirect_uri);
        assert!(!p.contains_key("code"), "code with an error: {p:?}");
        assert_eq!(p.get("state"), Some(&self.state), "{p:?}");
        assert_eq!(p.get("iss"), Some(&self.issuer), "{p:?}");
        p.get("error")
            .unwrap_or_else(|| panic!("no error in {p:?}"))
            .clone()
    }

    /// Redeems `code` at the token endpoint.
    pub async fn redeem(
        &self,
        http: &reqwest::Client,
        code: &str,
        auth: &Auth,
        dpop: Option<&str>,
    ) -> Reply {
        token(
            http,
            &self.issuer,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", &self.pkce.verifier),
            ],
            auth,
            dpop,
        )
        .await
    }
}

/// `{issuer}/oauth/authorize?` with `params` form-encoded, as given.
pub fn authorize_url(issuer: &str, params: &[(String, String)]) -> String {
    let mut u = Url::parse(&format!("{issuer}/oauth/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

/// Runs `req` in `browser` through the login page (which must appear) and
/// answers the code.
pub async fn login_for_code(
    browser: &Browser,
    req: &AuthRequest,
    user: &str,
    password: &str,
) -> String {
    let page = browser.get(&req.url()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.describe());
    assert!(
        page.is_login_page(),
        "expected the login page: {}",
        page.describe()
    );
    let done = browser.login(&page, user, password).await;
    req.code_from(&done)
}

/// Runs `req` in a browser that already has a session: the code comes at
/// once, without any page.
pub async fn sso_code(browser: &Browser, req: &AuthRequest) -> String {
    let r = browser.get(&req.url()).await;
    assert_eq!(
        r.status,
        StatusCode::FOUND,
        "SSO must redirect at once: {}",
        r.describe()
    );
    req.code_from(&r)
}

/// Asserts a successful token response and answers its body.
pub fn tokens(reply: &Reply, what: &str) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.describe());
    assert!(
        reply.body["access_token"].is_string(),
        "{what}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("cache-control").as_deref(),
        Some("no-store"),
        "{what}: token responses must not be cached"
    );
    reply.body.clone()
}

/// The issuer's JWKS.
pub async fn jwks(http: &reqwest::Client, issuer: &str) -> Value {
    let r = Reply::from(
        http.get(format!("{issuer}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    r.body
}

/// The issuer's discovery document.
pub async fn discovery(http: &reqwest::Client, issuer: &str) -> Reply {
    Reply::from(
        http.get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

// ---------------------------------------------------------------- provisioning

/// Redirect URI the test clients register.
pub const REDIRECT: &str = "https://rp.example.test/cb";
/// Password of the test users.
pub const PASSWORD: &str = "correct-horse-staple-42";

/// A tenant with one user.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub tid: String,
    pub slug: String,
    pub issuer: String,
    pub email: String,
    pub user_id: String,
}

/// Creates tenant `slug` (issuer `{base}/t/{slug}`) and user
/// `alice@{slug}.example` with profile, email and phone.
pub async fn tenant(s: &crate::support::Server, admin: &str, slug: &str) -> Tenant {
    let t = s
        .create(
            "/api/v1/tenants",
            admin,
            json!({"name": format!("Tenant {slug}"), "slug": slug}),
        )
        .await;
    let tid = t["id"].as_str().unwrap().to_string();
    let issuer = format!("{}/t/{slug}", s.base);
    assert_eq!(t["issuer"], json!(issuer), "{t}");
    let email = format!("alice@{slug}.example");
    let u = s
        .create(
            &format!("/api/v1/tenants/{tid}/users"),
            admin,
            json!({
                "email": email, "password": PASSWORD, "first_name": "Alice",
                "last_name": "Liddell", "email_verified": true, "phone": "+441234567890"
            }),
        )
        .await;
    Tenant {
        tid,
        slug: slug.into(),
        issuer,
        email,
        user_id: u["id"].as_str().unwrap().to_string(),
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// The OAuth `client_id`.
    pub id: String,
    pub secret: Option<String>,
    /// The admin API's id of the client.
    pub uuid: String,
}

impl Client {
    /// Its default authentication (Basic with the secret, or client_id only).
    pub fn auth(&self) -> Auth {
        match &self.secret {
            Some(s) => Auth::basic(&self.id, s),
            None => Auth::public(&self.id),
        }
    }
}

/// Registers a client; `body` fields override the defaults (confidential,
/// redirect URI `REDIRECT`, a generated name).
pub async fn client(s: &crate::support::Server, admin: &str, t: &Tenant, body: Value) -> Client {
    let mut b = json!({
        "name": format!("client {}", random(4)),
        "client_type": "confidential",
        "redirect_uris": [REDIRECT],
    });
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    let c = s
        .create(&format!("/api/v1/tenants/{}/clients", t.tid), admin, b)
        .await;
    Client {
        id: c["client_id"].as_str().unwrap().to_string(),
        secret: c["client_secret"].as_str().map(String::from),
        uuid: c["id"].as_str().unwrap().to_string(),
    }
}

/// Updates a client through the admin API, asserting 200.
pub async fn update_client(
    s: &crate::support::Server,
    admin: &str,
    t: &Tenant,
    c: &Client,
    body: Value,
) {
    let (status, v) = s
        .put(
            &format!("/api/v1/tenants/{}/clients/{}", t.tid, c.uuid),
            admin,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// Audit records of `action` in tenant `tid`.
pub async fn audit_total(s: &crate::support::Server, admin: &str, tid: &str, action: &str) -> i64 {
    let (status, v) = s
        .get(
            &format!("/api/v1/tenants/{tid}/audit-logs?action={action}"),
            admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["total"].as_i64().unwrap()
}
