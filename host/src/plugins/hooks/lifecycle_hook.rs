//! lifecycle-hook: plugins may veto pre-events (registration, login, user
//! update and delete) and observe post-events.
//!
//! Pre-events fail closed by default (a hook that cannot answer blocks the
//! action; an administrator may set the activation to fail open). Post-
//! events are delivered after the change committed, in the background, and
//! never affect the request.

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use serde_json::Value;
use uuid::Uuid;

use super::super::activation::OutputSize;
use super::super::bindings::v0_1_0::lifecycle_hook::exports::vaultaris::plugin::lifecycle_hook as api;
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;
use super::{HookFailure, attribute};

/// A pre-event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreEvent {
    /// Before a user is created (self-registration or by an administrator).
    Registration,
    /// Before a login succeeds.
    Login,
    /// Before a user is updated.
    UserUpdate,
    /// Before a user is deleted.
    UserDelete,
}

/// A post-event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostEvent {
    /// A user was created.
    UserRegistered,
    /// A user logged in.
    UserLoggedIn,
    /// A user logged out.
    UserLoggedOut,
    /// A user was updated.
    UserUpdated,
    /// A user was deleted.
    UserDeleted,
    /// A password was changed.
    PasswordChanged,
    /// A session was revoked.
    SessionRevoked,
}

/// The user as hooks see it.
#[derive(Debug, Clone, Default)]
pub struct UserSnapshot {
    /// Id, once it exists.
    pub id: Option<Uuid>,
    /// Email.
    pub email: Option<String>,
    /// Whether verified.
    pub email_verified: bool,
    /// Username, if distinct from email.
    pub username: Option<String>,
    /// Enabled.
    pub enabled: bool,
    /// Attributes.
    pub attributes: Vec<(String, Value)>,
}

/// Context of an event.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    /// Fields that change (pre-user-update).
    pub changed: Vec<String>,
    /// The OAuth client involved.
    pub client_id: Option<String>,
    /// How: `password`, `admin-api`, `federated`, ...
    pub method: String,
    /// Caller IP.
    pub ip: Option<String>,
    /// Caller user agent.
    pub user_agent: Option<String>,
    /// Browser session (post-events).
    pub session_id: Option<Uuid>,
    /// Free-form details (post-events).
    pub details: Value,
}

/// A veto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veto {
    /// The plugin.
    pub plugin_id: String,
    /// Its code, e.g. `disposable_email`.
    pub code: String,
    /// Its message for the user.
    pub message: String,
}

impl OutputSize for api::Verdict {
    fn output_size(&self) -> usize {
        match self {
            api::Verdict::Proceed => 0,
            api::Verdict::Veto(r) => r.code.len() + r.message.len(),
        }
    }
}

fn snapshot(u: &UserSnapshot) -> api::UserSnapshot {
    api::UserSnapshot {
        id: u.id.map(|i| i.to_string()),
        email: u.email.clone(),
        email_verified: u.email_verified,
        username: u.username.clone(),
        enabled: u.enabled,
        attributes: u.attributes.iter().map(|(k, v)| attribute(k, v)).collect(),
    }
}

impl PluginRuntime {
    /// Asks every lifecycle hook of the tenant; the first veto wins.
    /// `Err` when a fail-closed hook could not answer.
    pub async fn before_event(
        &self,
        tenant: Uuid,
        kind: PreEvent,
        user: &UserSnapshot,
        ev: &EventContext,
    ) -> Result<Option<Veto>, HookFailure> {
        let Some(plugins) = self.tenant(tenant) else {
            return Ok(None);
        };
        for act in plugins.of(Category::LifecycleHook) {
            let event = api::PreEvent {
                kind: match kind {
                    PreEvent::Registration => api::PreEventKind::PreRegistration,
                    PreEvent::Login => api::PreEventKind::PreLogin,
                    PreEvent::UserUpdate => api::PreEventKind::PreUserUpdate,
                    PreEvent::UserDelete => api::PreEventKind::PreUserDelete,
                },
                user: snapshot(user),
                changed: ev.changed.clone(),
                client_id: ev.client_id.clone(),
                method: ev.method.clone(),
                ip_address: ev.ip.clone(),
                user_agent: ev.user_agent.clone(),
            };
            let size = super::attributes_size(&event.user.attributes) + 256;
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::LifecycleHook,
                    &super::super::request_id::current(),
                    size,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call(native_fn::LIFECYCLE_HOOK_BEFORE, &(&cx, &event))
                                        .await;
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(e) = &inst.exports.lifecycle_hook else {
                                return Err(wasmtime::format_err!("lifecycle-hook export missing"));
                            };
                            e.vaultaris_plugin_lifecycle_hook()
                                .call_before(&mut inst.store, &cx, &event)
                                .await
                        })
                    },
                )
                .await;
            match result {
                Ok(api::Verdict::Proceed) => {}
                Ok(api::Verdict::Veto(r)) => {
                    return Ok(Some(Veto {
                        plugin_id: act.context.plugin_id.clone(),
                        code: r.code.chars().take(64).collect(),
                        message: r.message.chars().take(500).collect(),
                    }));
                }
                Err(error) => {
                    let mode = act.failure_mode(Category::LifecycleHook);
                    self.report_failure(act, Category::LifecycleHook, &error, mode);
                    if mode == FailureMode::Closed {
                        return Err(HookFailure {
                            plugin_id: act.context.plugin_id.clone(),
                            category: Category::LifecycleHook,
                            error,
                        });
                    }
                }
            }
        }
        Ok(None)
    }

    /// Delivers a post-event to every lifecycle hook of the tenant, in the
    /// background (failures are logged, counted and audited; `unavailable`
    /// is retried twice).
    pub fn after_event(
        self: &std::sync::Arc<Self>,
        tenant: Uuid,
        kind: PostEvent,
        user: UserSnapshot,
        ev: EventContext,
    ) {
        if !self.has(tenant, Category::LifecycleHook) {
            return;
        }
        let me = self.clone();
        let request_id = super::super::request_id::current();
        tokio::spawn(async move {
            let event = api::PostEvent {
                event_id: Uuid::now_v7().to_string(),
                kind: match kind {
                    PostEvent::UserRegistered => api::PostEventKind::UserRegistered,
                    PostEvent::UserLoggedIn => api::PostEventKind::UserLoggedIn,
                    PostEvent::UserLoggedOut => api::PostEventKind::UserLoggedOut,
                    PostEvent::UserUpdated => api::PostEventKind::UserUpdated,
                    PostEvent::UserDeleted => api::PostEventKind::UserDeleted,
                    PostEvent::PasswordChanged => api::PostEventKind::PasswordChanged,
                    PostEvent::SessionRevoked => api::PostEventKind::SessionRevoked,
                },
                occurred_at: chrono::Utc::now().timestamp_millis(),
                user: snapshot(&user),
                session_id: ev.session_id.map(|s| s.to_string()),
                client_id: ev.client_id.clone(),
                ip_address: ev.ip.clone(),
                details: ev.details.to_string(),
            };
            for act in me.active(tenant, Category::LifecycleHook) {
                for attempt in 0..3 {
                    let event = event.clone();
                    let (result, _) = act
                        .invoke(
                            me.engine(),
                            Category::LifecycleHook,
                            &request_id,
                            1024,
                            |inst, cx| {
                                Box::pin(async move {
                                    let inst = match inst {
                                        PluginInstance::Native(n) => {
                                            return n
                                                .call(
                                                    native_fn::LIFECYCLE_HOOK_AFTER,
                                                    &(&cx, &event),
                                                )
                                                .await;
                                        }
                                        PluginInstance::Wasm(w) => w,
                                    };
                                    let Some(e) = &inst.exports.lifecycle_hook else {
                                        return Err(wasmtime::format_err!(
                                            "lifecycle-hook export missing"
                                        ));
                                    };
                                    e.vaultaris_plugin_lifecycle_hook()
                                        .call_after(&mut inst.store, &cx, &event)
                                        .await
                                })
                            },
                        )
                        .await;
                    match result {
                        Ok(()) => break,
                        Err(error) => {
                            let transient = matches!(&error,
                                super::super::error::PluginCallError::Reported(r) if r.kind == "unavailable");
                            if transient && attempt < 2 {
                                tokio::time::sleep(std::time::Duration::from_millis(
                                    200 << attempt,
                                ))
                                .await;
                                continue;
                            }
                            me.report_failure(
                                &act,
                                Category::LifecycleHook,
                                &error,
                                FailureMode::Open,
                            );
                            break;
                        }
                    }
                }
            }
        });
    }
}
