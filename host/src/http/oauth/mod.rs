//! The OpenID Provider's HTTP face, mounted once per issuer: at the root for
//! the master tenant and under `/t/{slug}` for every other tenant.
//!
//! ```text
//! /.well-known/openid-configuration   metadata.rs
//! /.well-known/jwks.json              metadata.rs
//! /oauth/authorize  (GET, POST)       authorize.rs  login and consent pages
//! /oauth/logout     (GET, POST)       authorize.rs  RP-initiated logout
//! /oauth/federated/callback           federation.rs upstream sign-in returns
//! /oauth/token                        token.rs
//! /oauth/revoke, /oauth/introspect    token.rs
//! /oauth/userinfo   (GET, POST)       metadata.rs
//! ```

mod authorize;
mod federation;
mod form;
mod metadata;
mod token;

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::Ctx;
use crate::oauth::error::OAuthError;
use crate::oauth::issuer::Issuer;
use crate::store::StoreError;

/// The master tenant's endpoints at the root, documented in the OpenAPI
/// document; every other tenant serves the same under `/t/{slug}`.
pub fn documented_routes() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new()
        .routes(routes!(metadata::discovery))
        .routes(routes!(metadata::jwks))
        .routes(routes!(authorize::authorize_get, authorize::authorize_post))
        .routes(routes!(authorize::logout_get, authorize::logout_post))
        .routes(routes!(federation::callback_get, federation::callback_post))
        .routes(routes!(token::token))
        .routes(routes!(token::revoke))
        .routes(routes!(token::introspect))
        .routes(routes!(metadata::userinfo))
}

/// The endpoints of one issuer, mounted under `/t/{slug}`.
pub fn issuer_routes() -> Router<Ctx> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(metadata::discovery),
        )
        .route("/.well-known/jwks.json", get(metadata::jwks))
        .route(
            "/oauth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            "/oauth/logout",
            get(authorize::logout_get).post(authorize::logout_post),
        )
        .route(
            "/oauth/federated/callback",
            get(federation::callback_get).post(federation::callback_post),
        )
        .route(
            "/reset-password",
            get(super::password_reset::reset_page).post(super::password_reset::reset_submit),
        )
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .route("/oauth/introspect", post(token::introspect))
        .route(
            "/oauth/userinfo",
            get(metadata::userinfo).post(metadata::userinfo),
        )
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut res = (status, Json(&self)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(n) = self
            .dpop_nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            h.insert("dpop-nonce", n);
        }
        if let Some(c) = self
            .www_authenticate
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            h.insert(header::WWW_AUTHENTICATE, c);
        } else if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"vaultaris\""),
            );
        }
        res
    }
}

/// The caller of an OAuth endpoint, before anyone is authenticated.
pub fn anonymous(meta: crate::http::extract::Meta) -> crate::model::Actor {
    crate::model::Actor {
        actor_type: "anonymous".into(),
        actor_id: None,
        ip: meta.0.ip,
        user_agent: meta.0.user_agent,
    }
}

/// The issuer a request is addressed to, from the optional `{slug}` path
/// segment. An unknown issuer answers 404 with an OAuth error body.
pub struct IssuerOf(pub Issuer);

impl FromRequestParts<Ctx> for IssuerOf {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let slug = Path::<HashMap<String, String>>::from_request_parts(parts, ctx)
            .await
            .ok()
            .and_then(|p| p.0.get("slug").cloned());
        match Issuer::resolve(ctx, slug.as_deref()).await {
            Ok(i) => Ok(Self(i)),
            Err(StoreError::NotFound | StoreError::InvalidText(_)) => {
                let mut e = OAuthError::invalid_request("no issuer exists at this address");
                e.status = 404;
                Err(e.into_response())
            }
            Err(e) => Err(OAuthError::from(e).into_response()),
        }
    }
}
