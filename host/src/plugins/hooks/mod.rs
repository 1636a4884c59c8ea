//! The hook facades: one file per category, each a set of methods on
//! `PluginRuntime` that take the core's own types, call the tenant's active
//! plugins of that category in order, apply the category's failure policy,
//! and hand back the core's own types. A tenant with no plugin of a
//! category gets the built-in behaviour at the cost of one map lookup.

pub mod audit_sink;
pub mod auth_provider;
pub mod encryption_provider;
pub mod identity_provider;
pub mod input_validator;
pub mod jwt_customizer;
pub mod lifecycle_hook;
pub mod metrics_collector;
pub mod notification_channel;
pub mod policy_engine;
pub mod rate_limiter;
pub mod storage_backend;

use serde_json::Value;

use super::bindings::v0_1_0::caps::vaultaris::plugin::types as wit;
use super::error::PluginCallError;
use super::manifest::Category;

/// A plugin failed and its failure policy says the request fails.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin {plugin_id} ({category}) failed: {error}")]
pub struct HookFailure {
    /// The plugin.
    pub plugin_id: String,
    /// The category called.
    pub category: Category,
    /// What went wrong.
    pub error: PluginCallError,
}

/// Converts a JSON attribute value to the contract's typed attribute.
pub fn attribute(name: &str, value: &Value) -> wit::Attribute {
    let value = match value {
        Value::String(s) => wit::AttributeValue::Text(s.clone()),
        Value::Bool(b) => wit::AttributeValue::Boolean(*b),
        Value::Number(n) if n.is_i64() => {
            wit::AttributeValue::Integer(n.as_i64().unwrap_or_default())
        }
        Value::Array(items) if items.iter().all(Value::is_string) => wit::AttributeValue::TextList(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        other => wit::AttributeValue::Json(other.to_string()),
    };
    wit::Attribute {
        name: name.to_string(),
        value,
    }
}

/// Converts the contract's typed attribute back to JSON (JSON text that
/// does not parse becomes `null`).
pub fn attribute_json(a: &wit::Attribute) -> (String, Value) {
    let v = match &a.value {
        wit::AttributeValue::Text(s) => Value::from(s.clone()),
        wit::AttributeValue::Integer(i) => Value::from(*i),
        wit::AttributeValue::Boolean(b) => Value::from(*b),
        wit::AttributeValue::TextList(l) => Value::from(l.clone()),
        wit::AttributeValue::Json(j) => serde_json::from_str(j).unwrap_or(Value::Null),
    };
    (a.name.clone(), v)
}

/// Bytes of an attribute list (input size accounting).
pub fn attributes_size(attrs: &[wit::Attribute]) -> usize {
    attrs
        .iter()
        .map(|a| {
            a.name.len()
                + match &a.value {
                    wit::AttributeValue::Text(s) | wit::AttributeValue::Json(s) => s.len(),
                    wit::AttributeValue::TextList(l) => l.iter().map(|s| s.len() + 8).sum(),
                    _ => 8,
                }
        })
        .sum()
}
