//! `/oauth/token`, `/oauth/revoke` (RFC 7009) and `/oauth/introspect`
//! (RFC 7662).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::form::{client_credentials, dpop_header, parse_form};
use super::{IssuerOf, anonymous};
use crate::context::Ctx;
use crate::http::extract::Meta;
use std::collections::HashMap;

use crate::oauth::cache::CachedClient;
use crate::oauth::client_auth::authenticate;
use crate::oauth::dpop::current_nonce;
use crate::oauth::error::OAuthError;
use crate::oauth::introspection;
use crate::oauth::token::{self, TokenRequest};

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// POST /oauth/token.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth", request_body(content_type = "application/x-www-form-urlencoded", content = String), responses((status = 200, body = crate::oauth::issuance::TokenResponse), (status = 400, description = "OAuth error"), (status = 401, description = "invalid_client")))]
pub async fn token(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    meta: Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let mut form = parse_form(&headers, &body)?;
        let credentials = client_credentials(&headers, &mut form)?;
        let dpop = dpop_header(&headers)?;
        let req = TokenRequest {
            form,
            credentials,
            dpop,
            actor: anonymous(meta),
        };
        token::issue(&ctx, &issuer, req).await
    }
    .await;
    let with_dpop = headers.contains_key("dpop");
    let mut res = match result {
        Ok(t) => no_store(Json(t).into_response()),
        Err(e) => e.into_response(),
    };
    if with_dpop
        && !res.headers().contains_key("dpop-nonce")
        && let Ok(v) = HeaderValue::from_str(&current_nonce(&ctx, &issuer))
    {
        res.headers_mut().insert("dpop-nonce", v);
    }
    res
}

/// Parses a request about a `token` (revocation, introspection) and
/// authenticates its client at `path`.
async fn token_request(
    ctx: &Ctx,
    issuer: &crate::oauth::issuer::Issuer,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(std::sync::Arc<CachedClient>, HashMap<String, String>), OAuthError> {
    let mut form = parse_form(headers, body)?;
    let creds = client_credentials(headers, &mut form)?;
    let client = authenticate(ctx, issuer, &issuer.endpoint(path), creds).await?;
    if form.get("token").is_none_or(|t| t.is_empty()) {
        return Err(OAuthError::invalid_request("token is required"));
    }
    Ok((client, form))
}

/// POST /oauth/revoke: always 200 for a well-formed request by an
/// authenticated client, whether or not the token existed.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth", request_body(content_type = "application/x-www-form-urlencoded", content = String), responses((status = 200, description = "Revoked, or nothing to revoke (RFC 7009)"), (status = 401, description = "invalid_client")))]
pub async fn revoke(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (client, form) = token_request(&ctx, &issuer, "/oauth/revoke", &headers, &body).await?;
        introspection::revoke(
            &ctx,
            &issuer,
            &client.client.client.client_id,
            &form["token"],
        )
        .await
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

/// POST /oauth/introspect: confidential clients only.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth", request_body(content_type = "application/x-www-form-urlencoded", content = String), responses((status = 200, description = "RFC 7662 token state"), (status = 401, description = "invalid_client")))]
pub async fn introspect(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (client, form) =
            token_request(&ctx, &issuer, "/oauth/introspect", &headers, &body).await?;
        if !client.client.client.is_confidential() {
            return Err(OAuthError::invalid_client(
                "only confidential clients may introspect tokens",
            ));
        }
        introspection::introspect(&ctx, &issuer, &form["token"]).await
    }
    .await;
    match result {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}
