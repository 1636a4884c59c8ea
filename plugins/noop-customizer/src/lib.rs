//! `noop-customizer` (jwt-customizer): returns an empty customization for
//! every token, so benchmarks can measure the runtime's per-call overhead
//! with nothing else in the way. It ignores its configuration.

use vaultaris_plugin_sdk::jwt::{Customization, JwtCustomizer, TokenRequest};
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin};

/// The plugin (no state).
pub struct NoopCustomizer;

impl Plugin for NoopCustomizer {
    fn new(_config: serde_json::Value) -> Result<Self, PluginError> {
        Ok(NoopCustomizer)
    }
}

impl JwtCustomizer for NoopCustomizer {
    fn customize(
        &self,
        _ctx: &CallContext,
        _request: TokenRequest,
    ) -> Result<Customization, PluginError> {
        Ok(Customization::none())
    }
}

export_plugin!(NoopCustomizer: jwt_customizer);

#[cfg(test)]
mod tests {
    use super::*;
    use vaultaris_plugin_sdk::jwt::TokenKind;

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<NoopCustomizer>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn changes_nothing() {
        let p = NoopCustomizer::new(serde_json::json!({"anything": true})).unwrap();
        let request = TokenRequest {
            kind: TokenKind::Access,
            subject: None,
            client_id: "c".into(),
            grant_type: "client_credentials".into(),
            scopes: vec![],
            audience: vec![],
            subject_attributes: vec![],
            claims: vec![],
        };
        assert_eq!(
            p.customize(&CallContext::for_tests(), request).unwrap(),
            Customization::none()
        );
    }
}
