//! Parsing OAuth requests: form bodies, client credentials, cookies.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::oauth::client_auth::{ClientCredentials, JWT_BEARER_ASSERTION};
use crate::oauth::error::OAuthError;

/// Parses an `application/x-www-form-urlencoded` body, refusing repeated
/// parameters (RFC 6749 §3.2) and NUL characters.
pub fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if k.contains('\0') || v.contains('\0') {
            return Err(OAuthError::invalid_request(
                "parameters must not contain NUL characters",
            ));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter '{k}' is repeated"
            )));
        }
    }
    Ok(out)
}

/// Query or form pairs as sent, for the authorization endpoint, which
/// needs to see repetitions itself.
pub fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1), the form, or a
/// client assertion (RFC 7523). Using more than one method is refused.
pub fn client_credentials(
    headers: &HeaderMap,
    form: &mut HashMap<String, String>,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let form_id = form.remove("client_id");
    let form_secret = form.remove("client_secret");
    let assertion_type = form.remove("client_assertion_type");
    let assertion = form.remove("client_assertion");
    let methods = [
        basic.is_some(),
        form_secret.is_some(),
        assertion.is_some() || assertion_type.is_some(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use only one client authentication method",
        ));
    }
    if let Some(b64) = basic {
        let decoded = STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        let (id, secret) = (decode(id), decode(secret));
        if form_id.as_ref().is_some_and(|f| *f != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Basic credentials",
            ));
        }
        return Ok(Some(ClientCredentials::Secret {
            client_id: id,
            secret,
        }));
    }
    if assertion.is_some() || assertion_type.is_some() {
        if assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        let assertion =
            assertion.ok_or_else(|| OAuthError::invalid_request("client_assertion is missing"))?;
        return Ok(Some(ClientCredentials::Assertion {
            client_id: form_id,
            assertion,
        }));
    }
    Ok(match (form_id, form_secret) {
        (Some(client_id), Some(secret)) => Some(ClientCredentials::Secret { client_id, secret }),
        (Some(client_id), None) => Some(ClientCredentials::None { client_id }),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request("client_secret needs client_id"));
        }
        (None, None) => None,
    })
}

/// The single `DPoP` header, if any (RFC 9449 §4.3: exactly one).
pub fn dpop_header(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::invalid_dpop_proof(
            "send exactly one DPoP header",
        ));
    }
    first
        .map(|v| {
            v.to_str()
                .map(String::from)
                .map_err(|_| OAuthError::invalid_dpop_proof("the DPoP header is not ASCII"))
        })
        .transpose()
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}
