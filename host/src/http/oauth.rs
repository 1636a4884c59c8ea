//! OAuth endpoints under each issuer: `/oauth/token` and the JWKS. The root
//! paths serve the master tenant; `/t/{slug}/...` serves every other tenant.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{ApiPath, Meta};
use super::problem::{ApiResult, Problem};
use crate::context::Ctx;
use crate::error::Error;
use crate::model::{Actor, MASTER_TENANT_SLUG, Tenant};
use crate::oauth::error::OAuthError;
use crate::oauth::token::{self, ClientAuthentication, TokenParams, TokenResponse};
use crate::store::StoreError;

/// Routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(token_master))
        .routes(routes!(token_tenant))
        .routes(routes!(jwks_master))
        .routes(routes!(jwks_tenant))
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut res = (status, Json(&self)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"vaultaris\""),
            );
        }
        res
    }
}

async fn tenant_by_slug(ctx: &Ctx, slug: &str) -> Result<Tenant, StoreError> {
    ctx.store.get_tenant_by_slug(slug).await
}

/// Parses the form body, refusing repeated parameters (RFC 6749 §3.2).
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
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

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form.
fn client_auth(
    headers: &HeaderMap,
    form: &mut HashMap<String, String>,
) -> Result<Option<ClientAuthentication>, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let form_id = form.remove("client_id");
    let form_secret = form.remove("client_secret");
    match basic {
        Some(b64) => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use only one client authentication method",
                ));
            }
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
            Ok(Some(ClientAuthentication {
                client_id: id,
                secret: Some(secret),
            }))
        }
        None => Ok(form_id.map(|client_id| ClientAuthentication {
            client_id,
            secret: form_secret,
        })),
    }
}

async fn token_response(
    ctx: &Ctx,
    tenant: Result<Tenant, StoreError>,
    meta: Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let tenant = match tenant {
            Ok(t) => t,
            Err(StoreError::NotFound) => return Err(OAuthError::invalid_request("unknown tenant")),
            Err(e) => return Err(e.into()),
        };
        let mut form = parse_form(&headers, &body)?;
        let auth = client_auth(&headers, &mut form)?;
        let params = TokenParams {
            grant_type: form.remove("grant_type"),
            username: form.remove("username"),
            password: form.remove("password"),
            scope: form.remove("scope"),
        };
        let issuer = ctx.config.issuer_for(&tenant.slug);
        let actor = Actor {
            actor_type: "anonymous".into(),
            actor_id: None,
            ip: meta.0.ip,
            user_agent: meta.0.user_agent,
        };
        token::issue(ctx, &tenant, &issuer, auth, params, actor).await
    }
    .await;
    match result {
        Ok(t) => {
            let mut res = Json(t).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            res
        }
        Err(e) => e.into_response(),
    }
}

/// Token endpoint of the master tenant (`password`, `client_credentials`).
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded", content = String),
    responses((status = 200, body = TokenResponse), (status = 400, description = "OAuth error"), (status = 401, description = "invalid_client")))]
async fn token_master(
    State(ctx): State<Ctx>,
    meta: Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = tenant_by_slug(&ctx, MASTER_TENANT_SLUG).await;
    token_response(&ctx, tenant, meta, headers, body).await
}

/// Token endpoint of a tenant.
#[utoipa::path(post, path = "/t/{slug}/oauth/token", tag = "oauth", params(("slug" = String, Path)),
    request_body(content_type = "application/x-www-form-urlencoded", content = String),
    responses((status = 200, body = TokenResponse), (status = 400, description = "OAuth error"), (status = 401, description = "invalid_client")))]
async fn token_tenant(
    State(ctx): State<Ctx>,
    axum::extract::Path(slug): axum::extract::Path<String>,
    meta: Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = tenant_by_slug(&ctx, &slug).await;
    token_response(&ctx, tenant, meta, headers, body).await
}

async fn jwks_for(ctx: &Ctx, slug: &str) -> ApiResult<Response> {
    let tenant = ctx
        .store
        .get_tenant_by_slug(slug)
        .await
        .map_err(Error::from_store("tenant"))?;
    let keys = ctx
        .keys
        .get(tenant.id)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut res = Json(serde_json::json!({ "keys": keys.jwks })).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(res)
}

/// JWKS of the master tenant.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "oauth", responses((status = 200, description = "JSON Web Key Set"), (status = 404, body = Problem)))]
async fn jwks_master(State(ctx): State<Ctx>) -> ApiResult<Response> {
    jwks_for(&ctx, MASTER_TENANT_SLUG).await
}

/// JWKS of a tenant.
#[utoipa::path(get, path = "/t/{slug}/.well-known/jwks.json", tag = "oauth", params(("slug" = String, Path)), responses((status = 200, description = "JSON Web Key Set"), (status = 404, body = Problem)))]
async fn jwks_tenant(
    State(ctx): State<Ctx>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Response> {
    jwks_for(&ctx, &slug).await
}
