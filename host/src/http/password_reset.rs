//! Password reset by email: the admin API sends a link through the tenant's
//! notification-channel plugin; the hosted page behind the link sets the
//! new password. Logic in `sessions::password_reset`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{ApiPath, Auth, Meta};
use super::oauth::IssuerOf;
use super::pages::{self, escape};
use super::problem::{ApiResult, Problem};
use crate::authz;
use crate::context::Ctx;
use crate::error::Error;
use crate::model::Actor;
use crate::sessions::password_reset::{self, ResetEmailSent};

/// Admin routes of this module.
pub fn router() -> OpenApiRouter<Ctx> {
    OpenApiRouter::new().routes(routes!(send_reset_email))
}

/// Emails the user a password-reset link (valid once, for 30 minutes)
/// through the tenant's notification-channel plugin; 409 when the tenant
/// has none.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant_id}/users/{user_id}/password-reset-email", tag = "users",
    params(("tenant_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 202, body = ResetEmailSent), (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
async fn send_reset_email(
    State(ctx): State<Ctx>,
    auth: Auth,
    ApiPath((tid, uid)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<ResetEmailSent>)> {
    authz::authorize(&ctx, &auth.principal, tid, "users", "write").await?;
    let tenant = ctx
        .store
        .get_tenant(tid)
        .await
        .map_err(Error::from_store("tenant"))?;
    let sent = password_reset::send(&ctx, &auth.actor(), &tenant, uid).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// Query of the reset page.
#[derive(Debug, Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
}

/// Body of the reset form.
#[derive(Debug, Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
    confirm: String,
}

fn form(
    tenant: &crate::model::Tenant,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!(r#"<div class="error" role="alert">{}</div>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"{error}<form method="post">
<input type="hidden" name="token" value="{token}">
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required autofocus>
<label for="confirm">Repeat it</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required>
<button id="submit" type="submit">Set password</button>
</form>"#,
        token = escape(token)
    );
    pages::page(tenant, status, "Choose a new password", &body)
}

/// GET /reset-password?token=…: the form, or an error page for a bad link.
pub async fn reset_page(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    Query(q): Query<ResetQuery>,
) -> Response {
    let token = q.token.unwrap_or_default();
    match password_reset::check(&ctx, &issuer.tenant, &token).await {
        Ok(_) => form(&issuer.tenant, StatusCode::OK, &token, None),
        Err(_) => pages::error(
            &issuer.tenant,
            StatusCode::BAD_REQUEST,
            "This reset link is invalid, already used or expired. Ask for a new one.",
        ),
    }
}

/// POST /reset-password: sets the password.
pub async fn reset_submit(
    State(ctx): State<Ctx>,
    IssuerOf(issuer): IssuerOf,
    Meta(meta): Meta,
    axum::Form(f): axum::Form<ResetForm>,
) -> Response {
    if f.password != f.confirm {
        return form(
            &issuer.tenant,
            StatusCode::UNPROCESSABLE_ENTITY,
            &f.token,
            Some("The two passwords differ."),
        );
    }
    let actor = Actor {
        actor_type: "anonymous".into(),
        actor_id: None,
        ip: meta.ip,
        user_agent: meta.user_agent,
    };
    match password_reset::complete(&ctx, &actor, &issuer.tenant, &f.token, f.password).await {
        Ok(()) => pages::page(
            &issuer.tenant,
            StatusCode::OK,
            "Password changed",
            "<p>Your password is changed. You can sign in with it now.</p>",
        ),
        Err(Error::Validation(errors)) if errors.iter().any(|e| e.field == "token") => {
            pages::error(
                &issuer.tenant,
                StatusCode::BAD_REQUEST,
                "This reset link is invalid, already used or expired. Ask for a new one.",
            )
        }
        Err(Error::Validation(errors)) => {
            let msg = errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join(" ");
            form(
                &issuer.tenant,
                StatusCode::UNPROCESSABLE_ENTITY,
                &f.token,
                Some(&msg),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "password reset failed");
            pages::error(
                &issuer.tenant,
                StatusCode::SERVICE_UNAVAILABLE,
                "The password could not be changed right now. Try again shortly.",
            )
        }
    }
}
