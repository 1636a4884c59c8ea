//! jwt-customizer: plugins add or remove claims of access and ID tokens
//! after the core built them and before they are signed.
//!
//! Security decision: registered and host-owned claims are protected.
//! Adding or removing one is dropped and counted (the rest of the
//! customization applies), so no plugin can change who a token is for, who
//! issued it, how long it lives, what it is bound to or what it grants.

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::super::activation::OutputSize;
use super::super::bindings::v0_1_0::jwt_customizer::exports::vaultaris::plugin::jwt_customizer as api;
use super::super::error::PluginCallError;
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;
use super::{HookFailure, attribute, attributes_size};

/// Claims no plugin may add, replace or remove.
pub const PROTECTED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "c_hash",
    "s_hash",
    "cnf",
    "client_id",
    "scope",
    "tenant",
    "sub_type",
];

/// Most claims one plugin may add to one token.
pub const MAX_ADDED_CLAIMS: usize = 64;
/// Most bytes of added claim JSON per plugin and token.
pub const MAX_ADDED_BYTES: usize = 8 * 1024;

/// Which token is being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Access token.
    Access,
    /// ID token.
    Id,
}

/// What the core tells customizers about a token.
#[derive(Debug, Clone)]
pub struct TokenContext<'a> {
    /// Access or ID token.
    pub kind: TokenKind,
    /// The user, if any.
    pub subject: Option<&'a str>,
    /// The client.
    pub client_id: &'a str,
    /// The grant type.
    pub grant_type: &'a str,
    /// Granted scopes.
    pub scopes: &'a [String],
    /// Audiences.
    pub audience: &'a [String],
    /// The user's attributes (roles, groups, email, custom attributes).
    pub subject_attributes: &'a [(String, Value)],
}

impl OutputSize for api::Customization {
    fn output_size(&self) -> usize {
        self.add
            .iter()
            .map(|c| c.name.len() + c.value.len())
            .sum::<usize>()
            + self.remove.iter().map(|r| r.len()).sum::<usize>()
    }
}

/// Applies one plugin's customization; the count of protected claims dropped.
fn apply(claims: &mut Map<String, Value>, c: api::Customization) -> Result<usize, PluginCallError> {
    if c.add.len() > MAX_ADDED_CLAIMS {
        return Err(PluginCallError::MalformedOutput(format!(
            "{} claims added; at most {MAX_ADDED_CLAIMS}",
            c.add.len()
        )));
    }
    let added: usize = c.add.iter().map(|a| a.name.len() + a.value.len()).sum();
    if added > MAX_ADDED_BYTES {
        return Err(PluginCallError::MalformedOutput(format!(
            "{added} bytes of claims added; at most {MAX_ADDED_BYTES}"
        )));
    }
    // Parse everything before changing anything: a malformed customization
    // leaves the token untouched.
    let mut parsed = Vec::with_capacity(c.add.len());
    for a in c.add {
        if a.name.is_empty() || a.name.len() > 256 {
            return Err(PluginCallError::MalformedOutput(
                "claim name empty or longer than 256 bytes".into(),
            ));
        }
        let v: Value = serde_json::from_str(&a.value).map_err(|e| {
            PluginCallError::MalformedOutput(format!("claim {:?} is not valid JSON: {e}", a.name))
        })?;
        parsed.push((a.name, v));
    }
    let mut dropped = 0;
    for name in c.remove {
        if PROTECTED_CLAIMS.contains(&name.as_str()) {
            dropped += 1;
        } else {
            claims.remove(&name);
        }
    }
    for (name, v) in parsed {
        if PROTECTED_CLAIMS.contains(&name.as_str()) {
            dropped += 1;
        } else {
            claims.insert(name, v);
        }
    }
    Ok(dropped)
}

impl PluginRuntime {
    /// Runs the tenant's jwt-customizers, in order, over `claims`.
    /// Fails only when a fail-closed customizer failed.
    pub async fn customize_jwt(
        &self,
        tenant: Uuid,
        request_id: &str,
        token: &TokenContext<'_>,
        claims: &mut Map<String, Value>,
    ) -> Result<(), HookFailure> {
        let Some(plugins) = self.tenant(tenant) else {
            return Ok(());
        };
        let attributes: Vec<_> = token
            .subject_attributes
            .iter()
            .map(|(k, v)| attribute(k, v))
            .collect();
        for act in plugins.of(Category::JwtCustomizer) {
            let request = api::TokenRequest {
                kind: match token.kind {
                    TokenKind::Access => api::TokenKind::Access,
                    TokenKind::Id => api::TokenKind::Id,
                },
                subject: token.subject.map(str::to_string),
                client_id: token.client_id.to_string(),
                grant_type: token.grant_type.to_string(),
                scopes: token.scopes.to_vec(),
                audience: token.audience.to_vec(),
                subject_attributes: attributes.clone(),
                claims: claims
                    .iter()
                    .map(|(k, v)| api::Claim {
                        name: k.clone(),
                        value: v.to_string(),
                    })
                    .collect(),
            };
            let size = request
                .claims
                .iter()
                .map(|c| c.name.len() + c.value.len())
                .sum::<usize>()
                + attributes_size(&request.subject_attributes)
                + request.scopes.iter().map(|s| s.len()).sum::<usize>()
                + request.client_id.len();
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::JwtCustomizer,
                    request_id,
                    size,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call(native_fn::JWT_CUSTOMIZER_CUSTOMIZE, &(&cx, &request))
                                        .await;
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(exports) = &inst.exports.jwt_customizer else {
                                return Err(wasmtime::format_err!("jwt-customizer export missing"));
                            };
                            exports
                                .vaultaris_plugin_jwt_customizer()
                                .call_customize(&mut inst.store, &cx, &request)
                                .await
                        })
                    },
                )
                .await;
            // `apply` checks and parses everything before it changes
            // anything, so a refused customization leaves `claims` as it was.
            let outcome = result.and_then(|c| {
                apply(claims, c).inspect_err(|e| act.record_failure(Category::JwtCustomizer, e))
            });
            match outcome {
                Ok(dropped) => {
                    if dropped > 0 {
                        tracing::warn!(%tenant, plugin = %act.context.plugin_id, dropped,
                            "jwt-customizer tried to change protected claims; dropped");
                    }
                }
                Err(error) => {
                    let mode = act.failure_mode(Category::JwtCustomizer);
                    self.report_failure(act, Category::JwtCustomizer, &error, mode);
                    if mode == FailureMode::Closed {
                        return Err(HookFailure {
                            plugin_id: act.context.plugin_id.clone(),
                            category: Category::JwtCustomizer,
                            error,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_claims_are_dropped_and_malformed_output_changes_nothing() {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("u1"));
        claims.insert("x".into(), Value::from(1));
        let dropped = apply(
            &mut claims,
            api::Customization {
                add: vec![
                    api::Claim {
                        name: "sub".into(),
                        value: "\"evil\"".into(),
                    },
                    api::Claim {
                        name: "roles".into(),
                        value: "[\"a\"]".into(),
                    },
                ],
                remove: vec!["exp".into(), "x".into()],
            },
        )
        .unwrap();
        assert_eq!(dropped, 2);
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["roles"], serde_json::json!(["a"]));
        assert!(!claims.contains_key("x"));
        let before = claims.clone();
        let err = apply(
            &mut claims,
            api::Customization {
                add: vec![api::Claim {
                    name: "y".into(),
                    value: "{not json".into(),
                }],
                remove: vec!["roles".into()],
            },
        );
        assert!(matches!(err, Err(PluginCallError::MalformedOutput(_))));
        assert_eq!(claims, before);
    }
}
