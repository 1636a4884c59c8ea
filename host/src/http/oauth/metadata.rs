//! Discovery, JWKS and UserInfo.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::IssuerOf;
use super::form::dpop_header;
use crate::context::Ctx;
use crate::oauth::discovery;
use crate::oauth::error::OAuthError;
use crate::oauth::userinfo::{PresentedToken, userinfo as userinfo_claims};

fn cacheable(mut res: Response, seconds: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// GET /.well-known/openid-configuration.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth", responses((status = 200, description = "OpenID Provider metadata; every tenant serves the same under /t/{slug}"), (status = 404, description = "unknown issuer")))]
pub async fn discovery(IssuerOf(issuer): IssuerOf) -> Response {
    cacheable(Json(discovery::metadata(&issuer)).into_response(), 300)
}

/// GET /.well-known/jwks.json: public keys that still verify.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth", responses((status = 200, description = "JSON Web Key Set: every key that still verifies")))]
pub async fn jwks(State(ctx): State<Ctx>, IssuerOf(issuer): IssuerOf) -> Response {
    match ctx.keys.get(issuer.tenant.id).await {
        Ok(keys) => cacheable(
            Json(serde_json::json!({ "keys": keys.jwks })).into_response(),
            60,
        ),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// GET or POST /oauth/userinfo with `Authorization: Bearer|DPoP <token>`.
#[utoipa::path(method(get, post), path = "/oauth/userinfo", tag = "oauth", responses((status = 200, description = "Claims of the token's user"), (status = 401, description = "invalid_token or invalid_dpop_proof, with WWW-Authenticate"), (status = 403, description = "insufficient_scope")))]
pub async fn userinfo(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (scheme, token) = auth.split_once(' ').unwrap_or(("", ""));
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else if scheme.eq_ignore_ascii_case("dpop") {
            "DPoP"
        } else {
            let mut e = OAuthError::invalid_request("an access token is required");
            e.status = 401;
            return Err(e.challenge("Bearer"));
        };
        let proof = dpop_header(&headers).map_err(|e| e.challenge("DPoP"))?;
        let presented = PresentedToken {
            scheme: scheme.into(),
            token: token.trim().to_string(),
            proof,
        };
        userinfo_claims(&ctx, &issuer, &presented, method.as_str()).await
    }
    .await;
    match result {
        Ok(v) => {
            let mut res = Json(v).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => e.into_response(),
    }
}
