//! Where user changes meet plugins: input validators before a change,
//! lifecycle pre-events that may veto it, post-events after it committed.
//!
//! Security decisions:
//! - Plugin checks run after the built-in validation (a plugin can only
//!   refuse more, never accept what the core refuses) and before anything
//!   is written, so a refusal loses nothing.
//! - A validator or fail-closed hook that cannot answer refuses the change
//!   with 503: an identity system must not create accounts its operator's
//!   policy could not check.
//! - Passwords reach input-validators only for operations that set one
//!   (that is their job: policy and breach checks), never lifecycle hooks.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::{Error, FieldError, Result};
use crate::model::{Actor, User};
use crate::plugins::Category;
use crate::plugins::hooks::input_validator::{Operation, ValidationInput};
use crate::plugins::hooks::lifecycle_hook::{EventContext, PostEvent, PreEvent, UserSnapshot};

/// Runs the tenant's input validators; violations become a 422.
pub async fn validate(
    ctx: &Ctx,
    tenant: Uuid,
    operation: Operation,
    user_id: Option<Uuid>,
    fields: Vec<(String, Value)>,
    changed: Vec<String>,
) -> Result<()> {
    if !ctx.plugins.has(tenant, Category::InputValidator) {
        return Ok(());
    }
    let input = ValidationInput {
        operation,
        user_id,
        fields: &fields,
        changed: &changed,
        locales: &[],
    };
    let violations = ctx
        .plugins
        .validate_input(tenant, &input)
        .await
        .map_err(|f| {
            Error::Unavailable(format!(
                "the input validation plugin {} failed",
                f.plugin_id
            ))
        })?;
    if violations.is_empty() {
        return Ok(());
    }
    Err(Error::Validation(
        violations
            .into_iter()
            .map(|v| FieldError {
                field: v.field,
                message: format!("{} ({})", v.message, v.code),
            })
            .collect(),
    ))
}

/// The snapshot hooks see of an existing user.
pub fn snapshot(user: &User) -> UserSnapshot {
    UserSnapshot {
        id: Some(user.id),
        email: Some(user.email.clone()),
        email_verified: user.email_verified,
        username: None,
        enabled: user.enabled,
        attributes: crate::identity::attributes::profile(user),
    }
}

fn event_context(actor: &Actor, method: &str, changed: Vec<String>) -> EventContext {
    EventContext {
        changed,
        client_id: None,
        method: method.to_string(),
        ip: actor.ip.clone(),
        user_agent: actor.user_agent.clone(),
        session_id: None,
        details: json!({}),
    }
}

/// Asks the tenant's lifecycle hooks about a pre-event; a veto is a 403
/// naming the plugin and its reason.
pub async fn before(
    ctx: &Ctx,
    tenant: Uuid,
    kind: PreEvent,
    user: &UserSnapshot,
    actor: &Actor,
    method: &str,
    changed: Vec<String>,
) -> Result<()> {
    if !ctx.plugins.has(tenant, Category::LifecycleHook) {
        return Ok(());
    }
    let ev = event_context(actor, method, changed);
    match ctx.plugins.before_event(tenant, kind, user, &ev).await {
        Ok(None) => Ok(()),
        Ok(Some(veto)) => Err(Error::Forbidden(format!(
            "refused by plugin {}: {} ({})",
            veto.plugin_id, veto.message, veto.code
        ))),
        Err(f) => Err(Error::Unavailable(format!(
            "the lifecycle plugin {} failed",
            f.plugin_id
        ))),
    }
}

/// Tells the tenant's lifecycle hooks about a post-event (background).
pub fn after(
    ctx: &Ctx,
    tenant: Uuid,
    kind: PostEvent,
    user: &User,
    actor: &Actor,
    method: &str,
    details: Value,
) {
    let mut ev = event_context(actor, method, vec![]);
    ev.details = details;
    ctx.plugins.after_event(tenant, kind, snapshot(user), ev);
}
