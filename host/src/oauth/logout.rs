//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! Security decisions: `post_logout_redirect_uri` must be registered for the
//! client named by `client_id` or by the hint's audience, matched exactly; a
//! logout without a valid `id_token_hint` asks the user to confirm, so a
//! cross-site link cannot sign anyone out silently.

use serde_json::Value;
use uuid::Uuid;

use super::client_auth::load_client;
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::jose::verify_jws;

/// A validated logout request.
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    /// Where to send the browser afterwards (registered), with `state`.
    pub redirect: Option<String>,
    /// Whether a valid `id_token_hint` came with the request.
    pub hinted: bool,
    /// The hint's subject, to check it matches the session's user.
    pub hint_subject: Option<Uuid>,
}

/// Validates logout parameters; `Err` is a message for an error page.
pub async fn validate(
    ctx: &Ctx,
    issuer: &Issuer,
    params: &[(String, String)],
) -> Result<LogoutRequest, String> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mut out = LogoutRequest::default();
    let mut client_id = get("client_id").map(String::from);
    if let Some(hint) = get("id_token_hint") {
        let keys = ctx
            .keys
            .for_token(issuer.tenant.id, hint)
            .await
            .map_err(|_| "the server cannot check the id_token_hint now".to_string())?;
        // Expired hints are fine (the session may have outlived the token);
        // the signature and issuer are what matter.
        let jwt = verify_jws(hint, &keys.jwks, &["RS256", "ES256", "EdDSA", "Ed25519"])
            .map_err(|_| "the id_token_hint is not an ID token of this issuer".to_string())?;
        // An access token (typ at+jwt) is not an ID token: holding one must
        // not let anyone sign the user out without confirmation.
        if jwt.header.get("typ").and_then(Value::as_str) == Some("at+jwt")
            || jwt.claims.get("iss").and_then(Value::as_str) != Some(issuer.url.as_str())
        {
            return Err("the id_token_hint is not an ID token of this issuer".into());
        }
        let aud = match jwt.claims.get("aud") {
            Some(Value::String(a)) => Some(a.clone()),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(String::from),
            _ => None,
        };
        if let (Some(c), Some(a)) = (&client_id, &aud)
            && c != a
        {
            return Err("client_id does not match the id_token_hint".into());
        }
        client_id = client_id.or(aud);
        out.hinted = true;
        out.hint_subject = jwt
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::try_parse(s).ok());
    }
    if let Some(uri) = get("post_logout_redirect_uri") {
        let Some(cid) = client_id else {
            return Err("post_logout_redirect_uri needs client_id or id_token_hint".into());
        };
        let client = load_client(ctx, issuer, &cid)
            .await
            .map_err(|e| e.error_description)?
            .ok_or_else(|| "the client is unknown".to_string())?;
        if !client
            .client
            .client
            .oidc_settings
            .post_logout_redirect_uris
            .iter()
            .any(|u| u == uri)
        {
            return Err("the post_logout_redirect_uri is not registered for this client".into());
        }
        let mut url =
            url::Url::parse(uri).map_err(|_| "bad post_logout_redirect_uri".to_string())?;
        if let Some(state) = get("state") {
            url.query_pairs_mut().append_pair("state", state);
        }
        out.redirect = Some(url.to_string());
    }
    Ok(out)
}
