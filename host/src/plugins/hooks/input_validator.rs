//! input-validator: plugins return field-level violations for user input
//! (user create/update, self-registration, password change). Fails closed:
//! when a validator cannot answer, the change is refused.

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use serde_json::Value;
use uuid::Uuid;

use super::super::activation::OutputSize;
use super::super::bindings::v0_1_0::input_validator::exports::vaultaris::plugin::input_validator as api;
use super::super::manifest::Category;
use super::super::runtime::PluginRuntime;
use super::HookFailure;

/// Which operation the input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// An administrator creates a user.
    UserCreate,
    /// A user signs up.
    SelfRegistration,
    /// A user's profile changes.
    UserUpdate,
    /// A password is set or changed.
    PasswordChange,
}

/// One violation a plugin found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field (as the core named it).
    pub field: String,
    /// A stable code, e.g. `breached`.
    pub code: String,
    /// A message for the user.
    pub message: String,
    /// The plugin that found it.
    pub plugin_id: String,
}

/// The input to validate.
#[derive(Debug, Clone)]
pub struct ValidationInput<'a> {
    /// The operation.
    pub operation: Operation,
    /// The user, when it exists.
    pub user_id: Option<Uuid>,
    /// Fields and values (passwords included for password changes).
    pub fields: &'a [(String, Value)],
    /// Which fields changed.
    pub changed: &'a [String],
    /// Preferred locales for messages.
    pub locales: &'a [String],
}

impl OutputSize for Vec<api::Violation> {
    fn output_size(&self) -> usize {
        self.iter()
            .map(|v| v.field.len() + v.code.len() + v.message.len())
            .sum()
    }
}

impl PluginRuntime {
    /// Runs every input-validator of the tenant and collects violations.
    /// A failing validator fails the whole validation (fail closed).
    pub async fn validate_input(
        &self,
        tenant: Uuid,
        input: &ValidationInput<'_>,
    ) -> Result<Vec<Violation>, HookFailure> {
        let Some(plugins) = self.tenant(tenant) else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for act in plugins.of(Category::InputValidator) {
            let request = api::ValidationRequest {
                operation: match input.operation {
                    Operation::UserCreate => api::Operation::UserCreate,
                    Operation::SelfRegistration => api::Operation::SelfRegistration,
                    Operation::UserUpdate => api::Operation::UserUpdate,
                    Operation::PasswordChange => api::Operation::PasswordChange,
                },
                user_id: input.user_id.map(|u| u.to_string()),
                fields: input
                    .fields
                    .iter()
                    .map(|(k, v)| api::Field {
                        name: k.clone(),
                        value: v.to_string(),
                    })
                    .collect(),
                changed: input.changed.to_vec(),
                locales: input.locales.to_vec(),
            };
            let size = request
                .fields
                .iter()
                .map(|f| f.name.len() + f.value.len())
                .sum::<usize>();
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::InputValidator,
                    &super::super::request_id::current(),
                    size,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call(native_fn::INPUT_VALIDATOR_VALIDATE, &(&cx, &request))
                                        .await;
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(e) = &inst.exports.input_validator else {
                                return Err(wasmtime::format_err!(
                                    "input-validator export missing"
                                ));
                            };
                            e.vaultaris_plugin_input_validator()
                                .call_validate(&mut inst.store, &cx, &request)
                                .await
                        })
                    },
                )
                .await;
            match result {
                Ok(violations) => out.extend(violations.into_iter().take(100).map(|v| Violation {
                    field: v.field,
                    code: v.code,
                    message: v.message,
                    plugin_id: act.context.plugin_id.clone(),
                })),
                Err(error) => {
                    let mode = act.failure_mode(Category::InputValidator);
                    self.report_failure(act, Category::InputValidator, &error, mode);
                    return Err(HookFailure {
                        plugin_id: act.context.plugin_id.clone(),
                        category: Category::InputValidator,
                        error,
                    });
                }
            }
        }
        Ok(out)
    }
}
