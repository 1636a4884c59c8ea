//! Host bindings of the plugin contract, one module per supported contract
//! version (`v0_1_0`), generated from the frozen WIT folder.
//!
//! The capability imports are generated once (world `host-capabilities`)
//! and shared by every category world through `with`, so the host
//! implements each capability once per version.

/// Bindings of `vaultaris:plugin@0.1.0` (generated code carries the WIT
/// documentation where the contract has it, not on every item).
#[allow(missing_docs)]
pub mod v0_1_0 {
    /// The shared types and the host capability interfaces.
    pub mod caps {
        wasmtime::component::bindgen!({
            path: "../wit/vaultaris-plugin-0.1.0",
            world: "host-capabilities",
            imports: { default: async },
            // Native plugins receive and return the same records, encoded
            // with postcard (plugins/native).
            additional_derives: [serde::Serialize, serde::Deserialize],
        });
    }

    macro_rules! category_world {
        ($(#[$doc:meta])* $module:ident, $world:literal) => {
            $(#[$doc])*
            pub mod $module {
                wasmtime::component::bindgen!({
                    path: "../wit/vaultaris-plugin-0.1.0",
                    world: $world,
                    imports: { default: async },
                    exports: { default: async },
                    additional_derives: [serde::Serialize, serde::Deserialize],
                    with: {
                        "vaultaris:plugin/types": super::caps::vaultaris::plugin::types,
                        "vaultaris:plugin/logging": super::caps::vaultaris::plugin::logging,
                        "vaultaris:plugin/config": super::caps::vaultaris::plugin::config,
                        "vaultaris:plugin/key-value": super::caps::vaultaris::plugin::key_value,
                        "vaultaris:plugin/outbound-http": super::caps::vaultaris::plugin::outbound_http,
                        "vaultaris:plugin/clock": super::caps::vaultaris::plugin::clock,
                        "vaultaris:plugin/random": super::caps::vaultaris::plugin::random,
                    },
                });
            }
        };
    }

    category_world!(
        /// World `jwt-customizer-plugin`.
        jwt_customizer, "jwt-customizer-plugin");
    category_world!(
        /// World `policy-engine-plugin`.
        policy_engine, "policy-engine-plugin");
    category_world!(
        /// World `input-validator-plugin`.
        input_validator, "input-validator-plugin");
    category_world!(
        /// World `lifecycle-hook-plugin`.
        lifecycle_hook, "lifecycle-hook-plugin");
    category_world!(
        /// World `rate-limiter-plugin`.
        rate_limiter, "rate-limiter-plugin");
    category_world!(
        /// World `audit-sink-plugin`.
        audit_sink, "audit-sink-plugin");
    category_world!(
        /// World `metrics-collector-plugin`.
        metrics_collector, "metrics-collector-plugin");
    category_world!(
        /// World `notification-channel-plugin`.
        notification_channel, "notification-channel-plugin");
    category_world!(
        /// World `encryption-provider-plugin`.
        encryption_provider, "encryption-provider-plugin");
    category_world!(
        /// World `auth-provider-plugin`.
        auth_provider, "auth-provider-plugin");
    category_world!(
        /// World `identity-provider-plugin`.
        identity_provider, "identity-provider-plugin");
    category_world!(
        /// World `storage-backend-plugin`.
        storage_backend, "storage-backend-plugin");
}
