//! Category `policy-engine`: decides whether a subject may perform an
//! action on a resource. See `docs/policy-engine.md`. The host combines
//! engines deny-overrides and fails closed (a failure counts as `deny`).

use std::marker::PhantomData;

use crate::bindings::policy_engine as raw;
use crate::types::{Attribute, CallContext, PluginError, conv};

/// What kind of principal is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// A human user of the tenant.
    User,
    /// An OAuth client acting on its own behalf.
    Client,
}

/// The principal the decision is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// User or client.
    pub kind: SubjectKind,
    /// The user id or client id.
    pub id: String,
    /// At least `roles` and `groups` for users, `scopes` for clients.
    pub attributes: Vec<Attribute>,
}

/// The object acted upon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRef {
    /// The resource type, e.g. `document` or `vaultaris:user`.
    pub kind: String,
    /// The resource id; `None` for collection-level actions.
    pub id: Option<String>,
    /// Resource attributes, e.g. `owner`.
    pub attributes: Vec<Attribute>,
}

/// One question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRequest {
    /// Who.
    pub subject: Subject,
    /// Does what, e.g. `read`, `vaultaris:users:delete`.
    pub action: String,
    /// On what.
    pub target: ResourceRef,
    /// Circumstances: `ip_address`, `time`, `acr`, `amr`, `mfa`, ...
    pub context: Vec<Attribute>,
}

/// The verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Permitted.
    Allow,
    /// Forbidden.
    Deny,
    /// No policy of this plugin applies.
    NotApplicable,
}

/// Why the verdict was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// Machine-readable id, e.g. the matching policy's id.
    pub code: String,
    /// Explanation (returned to the check-access caller and audited).
    pub message: String,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allow, deny or not applicable.
    pub effect: Effect,
    /// The rules that determined the effect (the host keeps 16).
    pub reasons: Vec<Reason>,
}

impl Decision {
    /// `NotApplicable` with no reasons.
    pub fn not_applicable() -> Self {
        Decision {
            effect: Effect::NotApplicable,
            reasons: Vec::new(),
        }
    }
}

/// A policy-engine plugin.
pub trait PolicyEngine: crate::Plugin {
    /// Evaluates one request.
    fn evaluate(
        &self,
        ctx: &CallContext,
        request: DecisionRequest,
    ) -> Result<Decision, PluginError>;

    /// Evaluates up to 100 requests; must return one decision per request,
    /// in order. The default calls [`PolicyEngine::evaluate`] for each.
    fn evaluate_batch(
        &self,
        ctx: &CallContext,
        requests: Vec<DecisionRequest>,
    ) -> Result<Vec<Decision>, PluginError> {
        requests
            .into_iter()
            .map(|r| self.evaluate(ctx, r))
            .collect()
    }
}

impl From<raw::SubjectKind> for SubjectKind {
    fn from(k: raw::SubjectKind) -> Self {
        match k {
            raw::SubjectKind::User => SubjectKind::User,
            raw::SubjectKind::Client => SubjectKind::Client,
        }
    }
}

impl From<raw::Subject> for Subject {
    fn from(s: raw::Subject) -> Self {
        Subject {
            kind: s.kind.into(),
            id: s.id,
            attributes: conv(s.attributes),
        }
    }
}

impl From<raw::ResourceRef> for ResourceRef {
    fn from(r: raw::ResourceRef) -> Self {
        ResourceRef {
            kind: r.kind,
            id: r.id,
            attributes: conv(r.attributes),
        }
    }
}

impl From<raw::DecisionRequest> for DecisionRequest {
    fn from(r: raw::DecisionRequest) -> Self {
        DecisionRequest {
            subject: r.subject.into(),
            action: r.action,
            target: r.target.into(),
            context: conv(r.context),
        }
    }
}

impl From<Decision> for raw::Decision {
    fn from(d: Decision) -> Self {
        raw::Decision {
            effect: match d.effect {
                Effect::Allow => raw::Effect::Allow,
                Effect::Deny => raw::Effect::Deny,
                Effect::NotApplicable => raw::Effect::NotApplicable,
            },
            reasons: d
                .reasons
                .into_iter()
                .map(|r| raw::Reason {
                    code: r.code,
                    message: r.message,
                })
                .collect(),
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: PolicyEngine> raw::Guest for Export<T> {
    fn evaluate(
        ctx: raw::CallContext,
        request: raw::DecisionRequest,
    ) -> Result<raw::Decision, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.evaluate(&ctx.into(), request.into())?.into())
    }

    fn evaluate_batch(
        ctx: raw::CallContext,
        requests: Vec<raw::DecisionRequest>,
    ) -> Result<Vec<raw::Decision>, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(conv(plugin.evaluate_batch(&ctx.into(), conv(requests))?))
    }
}
