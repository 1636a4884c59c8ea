//! auth-provider: plugins verify credentials the core does not know — a
//! legacy user store during a migration, a directory reachable over HTTP.
//! Asked in order for a password login the built-in store cannot decide
//! (unknown user, or a user without a local password); the first plugin that
//! answers `verified` or `rejected` decides. Fails closed.

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use serde_json::Value;
use uuid::Uuid;

use super::super::activation::OutputSize;
use super::super::bindings::v0_1_0::auth_provider::exports::vaultaris::plugin::auth_provider as api;
use super::super::manifest::Category;
use super::super::runtime::PluginRuntime;
use super::HookFailure;

/// An identity a plugin verified.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    /// The plugin that verified it.
    pub plugin_id: String,
    /// The subject in the external system.
    pub external_subject: String,
    /// Email.
    pub email: Option<String>,
    /// Whether the external system verified the email.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// Attributes.
    pub attributes: Vec<(String, Value)>,
    /// Authentication methods.
    pub amr: Vec<String>,
}

/// The decision of the tenant's auth providers.
#[derive(Debug, Clone)]
pub enum ExternalVerdict {
    /// None applies.
    NotApplicable,
    /// Verified.
    Verified(ExternalIdentity),
    /// Rejected (wrong password, locked, disabled, expired).
    Rejected {
        /// The plugin.
        plugin_id: String,
        /// Why, as the contract names it.
        reason: &'static str,
    },
}

impl OutputSize for api::VerifyOutcome {
    fn output_size(&self) -> usize {
        match self {
            api::VerifyOutcome::Verified(v) => {
                v.external_subject.len()
                    + v.email.as_ref().map_or(0, |e| e.len())
                    + v.name.as_ref().map_or(0, |e| e.len())
                    + super::attributes_size(&v.attributes)
                    + v.amr.iter().map(|a| a.len()).sum::<usize>()
            }
            _ => 1,
        }
    }
}

impl PluginRuntime {
    /// Asks the tenant's auth providers to verify a password.
    pub async fn verify_external_password(
        &self,
        tenant: Uuid,
        identifier: &str,
        password: &str,
        client_id: Option<&str>,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<ExternalVerdict, HookFailure> {
        let Some(plugins) = self.tenant(tenant) else {
            return Ok(ExternalVerdict::NotApplicable);
        };
        let request = api::VerifyRequest {
            credential: api::Credential::Password(api::PasswordCredential {
                identifier: identifier.to_string(),
                password: password.to_string(),
            }),
            client_id: client_id.map(str::to_string),
            ip_address: ip.map(str::to_string),
            user_agent: user_agent.map(str::to_string),
        };
        for act in plugins.of(Category::AuthProvider) {
            let req = request.clone();
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::AuthProvider,
                    &super::super::request_id::current(),
                    identifier.len() + password.len() + 256,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call(native_fn::AUTH_PROVIDER_VERIFY, &(&cx, &req))
                                        .await;
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(e) = &inst.exports.auth_provider else {
                                return Err(wasmtime::format_err!("auth-provider export missing"));
                            };
                            e.vaultaris_plugin_auth_provider()
                                .call_verify(&mut inst.store, &cx, &req)
                                .await
                        })
                    },
                )
                .await;
            let plugin_id = act.context.plugin_id.clone();
            match result {
                Ok(api::VerifyOutcome::NotApplicable) => continue,
                Ok(api::VerifyOutcome::Rejected(r)) => {
                    return Ok(ExternalVerdict::Rejected {
                        plugin_id,
                        reason: match r {
                            api::RejectionReason::InvalidCredentials => "invalid_credentials",
                            api::RejectionReason::AccountLocked => "account_locked",
                            api::RejectionReason::AccountDisabled => "account_disabled",
                            api::RejectionReason::CredentialExpired => "credential_expired",
                        },
                    });
                }
                Ok(api::VerifyOutcome::Verified(v)) => {
                    if v.external_subject.is_empty() || v.external_subject.len() > 255 {
                        let error = super::super::error::PluginCallError::MalformedOutput(
                            "external-subject must be 1-255 bytes".into(),
                        );
                        self.report_failure(
                            act,
                            Category::AuthProvider,
                            &error,
                            super::super::FailureMode::Closed,
                        );
                        return Err(HookFailure {
                            plugin_id,
                            category: Category::AuthProvider,
                            error,
                        });
                    }
                    return Ok(ExternalVerdict::Verified(ExternalIdentity {
                        plugin_id,
                        external_subject: v.external_subject,
                        email: v.email,
                        email_verified: v.email_verified,
                        name: v.name,
                        attributes: v.attributes.iter().map(super::attribute_json).collect(),
                        amr: v.amr,
                    }));
                }
                Err(error) => {
                    self.report_failure(
                        act,
                        Category::AuthProvider,
                        &error,
                        super::super::FailureMode::Closed,
                    );
                    return Err(HookFailure {
                        plugin_id,
                        category: Category::AuthProvider,
                        error,
                    });
                }
            }
        }
        Ok(ExternalVerdict::NotApplicable)
    }
}
