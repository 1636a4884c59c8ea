//! Category `audit-sink`: ships batches of audit events to an external
//! system or a preopened directory. See `docs/audit-sink.md`. Fails open;
//! delivery is at least once (de-duplicate by `event_id`).

use std::marker::PhantomData;

use crate::bindings::audit_sink as raw;
use crate::types::{CallContext, Json, PluginError, Timestamp, conv, json_in};

/// Who performed the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A user of the tenant.
    User,
    /// An OAuth client acting on its own behalf.
    Client,
    /// An administrator using the admin API.
    Admin,
    /// The server itself.
    System,
    /// A plugin.
    Plugin,
}

impl ActorKind {
    /// The WIT case name (`user`, `client`, `admin`, `system`, `plugin`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Client => "client",
            ActorKind::Admin => "admin",
            ActorKind::System => "system",
            ActorKind::Plugin => "plugin",
        }
    }
}

/// Whether the action succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Performed.
    Success,
    /// Attempted and failed.
    Failure,
    /// Refused by policy.
    Denied,
}

impl Outcome {
    /// The WIT case name (`success`, `failure`, `denied`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One audit event, as stored in the tenant's hash-chained audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unique id (UUID text), stable across re-deliveries.
    pub event_id: String,
    /// Position in the tenant's chain, increasing by 1.
    pub sequence: u64,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The kind of actor.
    pub actor_kind: ActorKind,
    /// The actor's id, if any.
    pub actor_id: Option<String>,
    /// The request's IP address, if any.
    pub ip_address: Option<String>,
    /// The request id, if any.
    pub request_id: Option<String>,
    /// Dotted action name, e.g. `user.created`.
    pub action: String,
    /// The kind of object acted upon, if any.
    pub target_kind: Option<String>,
    /// The id of the object acted upon, if any.
    pub target_id: Option<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// Action-specific details (JSON object, secrets redacted).
    pub details: Json,
    /// Hex SHA-256 of the previous event of the chain.
    pub previous_hash: String,
    /// Hex SHA-256 chain hash of this event.
    pub hash: String,
}

/// An audit-sink plugin.
pub trait AuditSink: crate::Plugin {
    /// Delivers 1 to 100 events in sequence order; succeed only once the
    /// whole batch is durably handed off.
    fn deliver(&self, ctx: &CallContext, events: Vec<AuditEvent>) -> Result<(), PluginError>;
}

impl From<raw::AuditEvent> for AuditEvent {
    fn from(e: raw::AuditEvent) -> Self {
        AuditEvent {
            event_id: e.event_id,
            sequence: e.sequence,
            occurred_at: e.occurred_at,
            actor_kind: match e.actor_kind {
                raw::ActorKind::User => ActorKind::User,
                raw::ActorKind::Client => ActorKind::Client,
                raw::ActorKind::Admin => ActorKind::Admin,
                raw::ActorKind::System => ActorKind::System,
                raw::ActorKind::Plugin => ActorKind::Plugin,
            },
            actor_id: e.actor_id,
            ip_address: e.ip_address,
            request_id: e.request_id,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            outcome: match e.outcome {
                raw::Outcome::Success => Outcome::Success,
                raw::Outcome::Failure => Outcome::Failure,
                raw::Outcome::Denied => Outcome::Denied,
            },
            details: json_in(e.details),
            previous_hash: e.previous_hash,
            hash: e.hash,
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: AuditSink> raw::Guest for Export<T> {
    fn deliver(
        ctx: raw::CallContext,
        events: Vec<raw::AuditEvent>,
    ) -> Result<(), raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.deliver(&ctx.into(), conv(events))?)
    }
}
