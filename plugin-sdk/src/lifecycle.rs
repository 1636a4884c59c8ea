//! Category `lifecycle-hook`: vetoes user and session changes before they
//! happen (pre-events) and observes them after (post-events). See
//! `docs/lifecycle-hook.md`. Pre-events fail closed by default; post-events
//! fail open and `unavailable` errors are retried (de-duplicate by
//! `event_id`).

use std::marker::PhantomData;

use crate::bindings::lifecycle_hook as raw;
use crate::types::{Attribute, CallContext, Json, PluginError, Timestamp, conv, json_in};

/// Events that can be vetoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PreEventKind {
    /// Before a user is created (self registration, admin API, just-in-time
    /// provisioning).
    PreRegistration,
    /// Before a session is created for an authenticated user.
    PreLogin,
    /// Before a user's profile, status or roles change.
    PreUserUpdate,
    /// Before a user is deleted.
    PreUserDelete,
}

/// Events that are only observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PostEventKind {
    /// A user was created.
    UserRegistered,
    /// A user signed in.
    UserLoggedIn,
    /// A user signed out or a session ended.
    UserLoggedOut,
    /// A user's profile, status or roles changed.
    UserUpdated,
    /// A user was deleted.
    UserDeleted,
    /// A password was changed or reset.
    PasswordChanged,
    /// An email address was verified.
    EmailVerified,
    /// An MFA factor was enrolled or removed.
    MfaChanged,
    /// A session was revoked.
    SessionRevoked,
}

/// The user an event is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserSnapshot {
    /// The user id; `None` in pre-registration.
    pub id: Option<String>,
    /// Email address, if any.
    pub email: Option<String>,
    /// Whether the email address is verified.
    pub email_verified: bool,
    /// Username, if any.
    pub username: Option<String>,
    /// Whether the account is enabled.
    pub enabled: bool,
    /// Profile and custom attributes, `roles` and `groups` included.
    pub attributes: Vec<Attribute>,
}

/// A change about to happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreEvent {
    /// What is about to happen.
    pub kind: PreEventKind,
    /// The user as they would be after the change.
    pub user: UserSnapshot,
    /// For `PreUserUpdate`, the names of the fields that change.
    pub changed: Vec<String>,
    /// The OAuth client involved, if any.
    pub client_id: Option<String>,
    /// How the user authenticated or registered (`password`,
    /// `federated:<plugin-id>`, `admin-api`, ...).
    pub method: String,
    /// The client's IP address, if known.
    pub ip_address: Option<String>,
    /// The `user-agent` header, if any.
    pub user_agent: Option<String>,
}

/// The answer to a pre-event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the operation proceed.
    Proceed,
    /// Stop the operation; the user sees `message`, `code` is audited.
    Veto {
        /// Machine-readable code, e.g. `disposable_email`.
        code: String,
        /// Message for the end user, shown as-is.
        message: String,
    },
}

impl Verdict {
    /// A veto.
    pub fn veto(code: impl Into<String>, message: impl Into<String>) -> Self {
        Verdict::Veto {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A change that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostEvent {
    /// Unique id, stable across retries.
    pub event_id: String,
    /// What happened.
    pub kind: PostEventKind,
    /// When it was committed.
    pub occurred_at: Timestamp,
    /// The user after the change (before it, for deletions).
    pub user: UserSnapshot,
    /// The session involved, if any.
    pub session_id: Option<String>,
    /// The OAuth client involved, if any.
    pub client_id: Option<String>,
    /// The IP address of the request, if any.
    pub ip_address: Option<String>,
    /// Event-specific details as a JSON object.
    pub details: Json,
}

/// A lifecycle-hook plugin.
pub trait LifecycleHook: crate::Plugin {
    /// Decides whether a pre-event may proceed. Never retried.
    fn before(&self, ctx: &CallContext, event: PreEvent) -> Result<Verdict, PluginError>;

    /// Observes a post-event; only `unavailable` errors are retried. The
    /// default does nothing.
    fn after(&self, ctx: &CallContext, event: PostEvent) -> Result<(), PluginError> {
        let _ = (ctx, event);
        Ok(())
    }
}

impl From<raw::PreEventKind> for PreEventKind {
    fn from(k: raw::PreEventKind) -> Self {
        match k {
            raw::PreEventKind::PreRegistration => PreEventKind::PreRegistration,
            raw::PreEventKind::PreLogin => PreEventKind::PreLogin,
            raw::PreEventKind::PreUserUpdate => PreEventKind::PreUserUpdate,
            raw::PreEventKind::PreUserDelete => PreEventKind::PreUserDelete,
        }
    }
}

impl From<raw::PostEventKind> for PostEventKind {
    fn from(k: raw::PostEventKind) -> Self {
        match k {
            raw::PostEventKind::UserRegistered => PostEventKind::UserRegistered,
            raw::PostEventKind::UserLoggedIn => PostEventKind::UserLoggedIn,
            raw::PostEventKind::UserLoggedOut => PostEventKind::UserLoggedOut,
            raw::PostEventKind::UserUpdated => PostEventKind::UserUpdated,
            raw::PostEventKind::UserDeleted => PostEventKind::UserDeleted,
            raw::PostEventKind::PasswordChanged => PostEventKind::PasswordChanged,
            raw::PostEventKind::EmailVerified => PostEventKind::EmailVerified,
            raw::PostEventKind::MfaChanged => PostEventKind::MfaChanged,
            raw::PostEventKind::SessionRevoked => PostEventKind::SessionRevoked,
        }
    }
}

impl From<raw::UserSnapshot> for UserSnapshot {
    fn from(u: raw::UserSnapshot) -> Self {
        UserSnapshot {
            id: u.id,
            email: u.email,
            email_verified: u.email_verified,
            username: u.username,
            enabled: u.enabled,
            attributes: conv(u.attributes),
        }
    }
}

impl From<raw::PreEvent> for PreEvent {
    fn from(e: raw::PreEvent) -> Self {
        PreEvent {
            kind: e.kind.into(),
            user: e.user.into(),
            changed: e.changed,
            client_id: e.client_id,
            method: e.method,
            ip_address: e.ip_address,
            user_agent: e.user_agent,
        }
    }
}

impl From<raw::PostEvent> for PostEvent {
    fn from(e: raw::PostEvent) -> Self {
        PostEvent {
            event_id: e.event_id,
            kind: e.kind.into(),
            occurred_at: e.occurred_at,
            user: e.user.into(),
            session_id: e.session_id,
            client_id: e.client_id,
            ip_address: e.ip_address,
            details: json_in(e.details),
        }
    }
}

impl From<Verdict> for raw::Verdict {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Proceed => raw::Verdict::Proceed,
            Verdict::Veto { code, message } => {
                raw::Verdict::Veto(raw::VetoReason { code, message })
            }
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: LifecycleHook> raw::Guest for Export<T> {
    fn before(
        ctx: raw::CallContext,
        event: raw::PreEvent,
    ) -> Result<raw::Verdict, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.before(&ctx.into(), event.into())?.into())
    }

    fn after(ctx: raw::CallContext, event: raw::PostEvent) -> Result<(), raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.after(&ctx.into(), event.into())?)
    }
}
