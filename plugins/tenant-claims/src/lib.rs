//! `tenant-claims` (jwt-customizer): adds the tenant's static claims to
//! tokens and maps subject attributes (roles, groups, any configured ones)
//! into claims, either top-level or nested under one namespaced claim.
//!
//! Configuration (see `manifest.json` for the JSON Schema):
//!
//! ```json
//! {
//!   "token_kinds": ["access", "id"],
//!   "static_claims": { "org": "acme", "tier": "gold" },
//!   "attribute_claims": { "roles": "roles", "groups": "groups", "department": "dept" },
//!   "namespace": "https://acme.example/claims",
//!   "include_empty_lists": false
//! }
//! ```
//!
//! Everything is parsed and serialised once per instance; a call only
//! clones pre-serialised claims and serialises the subject's attributes.
//! Protected registered claims (`sub`, `exp`, ...) are refused when the
//! plugin is configured, so the plugin never asks the host for a change it
//! would drop.

use std::collections::BTreeMap;

use serde::Deserialize;
use vaultaris_plugin_sdk::jwt::{
    Claim, Customization, JwtCustomizer, TokenKind, TokenRequest, is_protected_claim,
};
use vaultaris_plugin_sdk::{
    AttributeList, AttributeValue, CallContext, Json, Plugin, PluginError, export_plugin,
    parse_config,
};

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Access,
    Id,
}

fn default_kinds() -> Vec<Kind> {
    vec![Kind::Access]
}

fn default_attribute_claims() -> BTreeMap<String, String> {
    [("roles", "roles"), ("groups", "groups")]
        .into_iter()
        .map(|(a, c)| (a.to_owned(), c.to_owned()))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_kinds")]
    token_kinds: Vec<Kind>,
    #[serde(default)]
    static_claims: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "default_attribute_claims")]
    attribute_claims: BTreeMap<String, String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    include_empty_lists: bool,
}

/// The plugin: configuration compiled for the hot path.
pub struct TenantClaims {
    access: bool,
    id: bool,
    /// Static claims, serialised once.
    static_claims: Vec<Claim>,
    /// (attribute name, claim name), sorted by attribute name.
    attribute_claims: Vec<(String, String)>,
    namespace: Option<String>,
    include_empty_lists: bool,
}

fn check_claim_name(name: &str, what: &str) -> Result<(), PluginError> {
    if name.is_empty() {
        return Err(PluginError::misconfigured(
            "empty_claim_name",
            format!("{what}: empty claim name"),
        ));
    }
    if is_protected_claim(name) {
        return Err(PluginError::misconfigured(
            "protected_claim",
            format!("{what}: `{name}` is a protected claim and cannot be set by a plugin"),
        ));
    }
    Ok(())
}

impl Plugin for TenantClaims {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        for name in config.static_claims.keys() {
            check_claim_name(name, "static_claims")?;
        }
        for claim in config.attribute_claims.values() {
            check_claim_name(claim, "attribute_claims")?;
        }
        if let Some(ns) = &config.namespace {
            check_claim_name(ns, "namespace")?;
        }
        Ok(TenantClaims {
            access: config.token_kinds.iter().any(|k| matches!(k, Kind::Access)),
            id: config.token_kinds.iter().any(|k| matches!(k, Kind::Id)),
            static_claims: config
                .static_claims
                .iter()
                .map(|(name, value)| Claim::new(name.clone(), value))
                .collect(),
            attribute_claims: config.attribute_claims.into_iter().collect(),
            namespace: config.namespace,
            include_empty_lists: config.include_empty_lists,
        })
    }
}

impl TenantClaims {
    fn applies_to(&self, kind: TokenKind) -> bool {
        match kind {
            TokenKind::Access => self.access,
            TokenKind::Id => self.id,
        }
    }

    fn keep(&self, value: &AttributeValue) -> bool {
        match value {
            AttributeValue::TextList(list) => self.include_empty_lists || !list.is_empty(),
            _ => true,
        }
    }
}

impl JwtCustomizer for TenantClaims {
    fn customize(
        &self,
        _ctx: &CallContext,
        request: TokenRequest,
    ) -> Result<Customization, PluginError> {
        if !self.applies_to(request.kind) {
            return Ok(Customization::none());
        }
        let mut add = self.static_claims.clone();
        let mapped = self
            .attribute_claims
            .iter()
            .filter_map(|(attribute, claim)| {
                request
                    .subject_attributes
                    .attribute(attribute)
                    .filter(|v| self.keep(v))
                    .map(|v| (claim, v.to_json_value()))
            });
        match &self.namespace {
            None => add.extend(mapped.map(|(claim, value)| Claim::new(claim.clone(), &value))),
            Some(ns) => {
                let object: serde_json::Map<String, serde_json::Value> = mapped
                    .map(|(claim, value)| (claim.clone(), value))
                    .collect();
                if !object.is_empty() {
                    add.push(Claim {
                        name: ns.clone(),
                        value: Json::from_value(&serde_json::Value::Object(object)),
                    });
                }
            }
        }
        Ok(Customization {
            add,
            remove: Vec::new(),
        })
    }
}

export_plugin!(TenantClaims: jwt_customizer);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vaultaris_plugin_sdk::Attribute;

    fn request(kind: TokenKind) -> TokenRequest {
        TokenRequest {
            kind,
            subject: Some("user-1".into()),
            client_id: "app".into(),
            grant_type: "authorization_code".into(),
            scopes: vec!["openid".into()],
            audience: vec![],
            subject_attributes: vec![
                Attribute::text_list("roles", ["admin", "billing"]),
                Attribute::text_list("groups", Vec::<String>::new()),
                Attribute::text("department", "finance"),
                Attribute::integer("level", 7),
            ],
            claims: vec![Claim::new("sub", &json!("user-1"))],
        }
    }

    fn claims(c: &Customization) -> serde_json::Map<String, serde_json::Value> {
        c.add
            .iter()
            .map(|c| (c.name.clone(), c.value.value().unwrap()))
            .collect()
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<TenantClaims>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn defaults_map_roles_and_groups_on_access_tokens_only() {
        let p = TenantClaims::new(json!({})).unwrap();
        let ctx = CallContext::for_tests();
        let c = p.customize(&ctx, request(TokenKind::Access)).unwrap();
        assert_eq!(
            claims(&c),
            json!({"roles": ["admin", "billing"]})
                .as_object()
                .unwrap()
                .clone()
        );
        assert!(c.remove.is_empty());
        assert_eq!(
            p.customize(&ctx, request(TokenKind::Id)).unwrap(),
            Customization::none()
        );
    }

    #[test]
    fn static_claims_and_namespaced_attributes() {
        let p = TenantClaims::new(json!({
            "token_kinds": ["access", "id"],
            "static_claims": {"org": "acme", "tier": "gold", "limits": {"seats": 5}},
            "attribute_claims": {"roles": "roles", "groups": "groups", "department": "dept", "level": "level", "missing": "x"},
            "namespace": "https://acme.example/claims",
            "include_empty_lists": true
        }))
        .unwrap();
        let c = p
            .customize(&CallContext::for_tests(), request(TokenKind::Id))
            .unwrap();
        assert_eq!(
            serde_json::Value::Object(claims(&c)),
            json!({
                "org": "acme",
                "tier": "gold",
                "limits": {"seats": 5},
                "https://acme.example/claims": {
                    "roles": ["admin", "billing"],
                    "groups": [],
                    "dept": "finance",
                    "level": 7
                }
            })
        );
    }

    #[test]
    fn client_credentials_tokens_get_static_claims_only() {
        let p = TenantClaims::new(json!({"static_claims": {"org": "acme"}, "namespace": "acme"}))
            .unwrap();
        let mut r = request(TokenKind::Access);
        r.subject = None;
        r.subject_attributes.clear();
        let c = p.customize(&CallContext::for_tests(), r).unwrap();
        assert_eq!(
            serde_json::Value::Object(claims(&c)),
            json!({"org": "acme"})
        );
    }

    #[test]
    fn protected_claims_are_refused_at_configuration() {
        for config in [
            json!({"static_claims": {"sub": "x"}}),
            json!({"attribute_claims": {"roles": "scope"}}),
            json!({"namespace": "iss"}),
            json!({"namespace": ""}),
        ] {
            let err = TenantClaims::new(config).err().unwrap();
            assert_eq!(err.kind(), "misconfigured");
        }
        let err = TenantClaims::new(json!({"token_kinds": ["refresh"]}))
            .err()
            .unwrap();
        assert_eq!(err.code(), "invalid_config");
        let err = TenantClaims::new(json!({"unknown": 1})).err().unwrap();
        assert_eq!(err.code(), "invalid_config");
    }

    #[test]
    fn never_emits_protected_or_invalid_claims() {
        let p = TenantClaims::new(json!({
            "token_kinds": ["access"],
            "static_claims": {"org": "a\"b"},
            "attribute_claims": {"roles": "roles", "blob": "blob"}
        }))
        .unwrap();
        let mut r = request(TokenKind::Access);
        r.subject_attributes
            .push(Attribute::json("blob", Json::from_raw("{not json")));
        let c = p.customize(&CallContext::for_tests(), r).unwrap();
        for claim in &c.add {
            assert!(!is_protected_claim(&claim.name));
            assert!(
                claim.value.value().is_ok(),
                "{} must be valid JSON",
                claim.name
            );
        }
        assert_eq!(claims(&c)["blob"], json!("{not json"));
    }
}
