//! policy-engine: plugins answer allow / deny / not-applicable for
//! (subject, action, resource, context). The host combines answers
//! deny-overrides; every failure counts as `deny` (fail closed, never
//! configurable).

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use serde_json::Value;
use uuid::Uuid;

use super::super::activation::OutputSize;
use super::super::bindings::v0_1_0::policy_engine::exports::vaultaris::plugin::policy_engine as api;
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;
use super::{attribute, attributes_size};

/// A question for the policy engines.
#[derive(Debug, Clone)]
pub struct PolicyQuestion<'a> {
    /// `user` or `client` subject.
    pub subject_is_client: bool,
    /// Subject id.
    pub subject_id: String,
    /// Subject attributes.
    pub subject_attributes: &'a [(String, Value)],
    /// The action, e.g. `read` or `users:write`.
    pub action: &'a str,
    /// Resource kind.
    pub resource_kind: &'a str,
    /// Resource id.
    pub resource_id: Option<&'a str>,
    /// Resource attributes.
    pub resource_attributes: &'a [(String, Value)],
    /// Request context (ip, time, ...).
    pub context: &'a [(String, Value)],
}

/// The combined answer of a tenant's policy engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// No engine is active, or all answered not-applicable.
    NotApplicable,
    /// At least one allow and no deny.
    Allow {
        /// Reasons given (`plugin: code: message`).
        reasons: Vec<String>,
    },
    /// At least one deny (or a failure).
    Deny {
        /// Reasons given.
        reasons: Vec<String>,
    },
}

impl OutputSize for api::Decision {
    fn output_size(&self) -> usize {
        self.reasons
            .iter()
            .map(|r| r.code.len() + r.message.len())
            .sum()
    }
}

impl PluginRuntime {
    /// Asks every policy engine of the tenant; deny-overrides.
    pub async fn evaluate_policy(&self, tenant: Uuid, q: &PolicyQuestion<'_>) -> PolicyAnswer {
        let Some(plugins) = self.tenant(tenant) else {
            return PolicyAnswer::NotApplicable;
        };
        let engines = plugins.of(Category::PolicyEngine);
        if engines.is_empty() {
            return PolicyAnswer::NotApplicable;
        }
        let request = api::DecisionRequest {
            subject: api::Subject {
                kind: if q.subject_is_client {
                    api::SubjectKind::Client
                } else {
                    api::SubjectKind::User
                },
                id: q.subject_id.clone(),
                attributes: q
                    .subject_attributes
                    .iter()
                    .map(|(k, v)| attribute(k, v))
                    .collect(),
            },
            action: q.action.to_string(),
            target: api::ResourceRef {
                kind: q.resource_kind.to_string(),
                id: q.resource_id.map(str::to_string),
                attributes: q
                    .resource_attributes
                    .iter()
                    .map(|(k, v)| attribute(k, v))
                    .collect(),
            },
            context: q.context.iter().map(|(k, v)| attribute(k, v)).collect(),
        };
        let size = attributes_size(&request.subject.attributes)
            + attributes_size(&request.target.attributes)
            + attributes_size(&request.context)
            + request.action.len()
            + request.subject.id.len();
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        for act in engines {
            let req = request.clone();
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::PolicyEngine,
                    &super::super::request_id::current(),
                    size,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call(native_fn::POLICY_ENGINE_EVALUATE, &(&cx, &req))
                                        .await;
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(e) = &inst.exports.policy_engine else {
                                return Err(wasmtime::format_err!("policy-engine export missing"));
                            };
                            e.vaultaris_plugin_policy_engine()
                                .call_evaluate(&mut inst.store, &cx, &req)
                                .await
                        })
                    },
                )
                .await;
            let id = &act.context.plugin_id;
            let reasons = |d: &api::Decision| -> Vec<String> {
                d.reasons
                    .iter()
                    .take(16)
                    .map(|r| {
                        format!(
                            "{id}: {}: {}",
                            r.code,
                            r.message.chars().take(200).collect::<String>()
                        )
                    })
                    .collect()
            };
            match result {
                Ok(d) => match d.effect {
                    api::Effect::Allow => allows.extend(reasons(&d)),
                    api::Effect::Deny => {
                        let mut r = reasons(&d);
                        if r.is_empty() {
                            r.push(format!("{id}: denied"));
                        }
                        denies.extend(r);
                    }
                    api::Effect::NotApplicable => {}
                },
                Err(error) => {
                    self.report_failure(act, Category::PolicyEngine, &error, FailureMode::Closed);
                    denies.push(format!("{id}: policy_engine_failure: {}", error.code()));
                }
            }
        }
        if !denies.is_empty() {
            PolicyAnswer::Deny { reasons: denies }
        } else if !allows.is_empty() {
            PolicyAnswer::Allow { reasons: allows }
        } else {
            PolicyAnswer::NotApplicable
        }
    }
}
