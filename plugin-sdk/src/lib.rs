//! The Rust face of the Vaultaris plugin contract `vaultaris:plugin@0.1.0`.
//!
//! A plugin is a plain Rust type that
//!
//! 1. implements [`Plugin`]: how to build it from the tenant's configuration;
//! 2. implements one trait per category it serves: [`jwt::JwtCustomizer`],
//!    [`validation::InputValidator`], [`lifecycle::LifecycleHook`],
//!    [`policy::PolicyEngine`], [`rate_limit::RateLimiter`],
//!    [`audit::AuditSink`], [`auth::AuthProvider`],
//!    [`identity::IdentityProvider`], [`storage::StorageBackend`],
//!    [`notification::NotificationChannel`],
//!    [`encryption::EncryptionProvider`], [`metrics::MetricsCollector`];
//! 3. is exported with one [`export_plugin!`] line naming those categories.
//!
//! The SDK embeds the WIT package (`wit/vaultaris-plugin-0.1.0` of the
//! repository) and hides `wit-bindgen` entirely: every type in this crate's
//! public API is SDK-owned, and the conversions to and from the generated
//! types live inside the SDK.
//!
//! ```
//! use vaultaris_plugin_sdk::jwt::{Customization, JwtCustomizer, TokenKind, TokenRequest};
//! use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};
//!
//! #[derive(serde::Deserialize)]
//! struct TierClaim {
//!     tier: String,
//! }
//!
//! impl Plugin for TierClaim {
//!     fn new(config: serde_json::Value) -> Result<Self, PluginError> {
//!         parse_config(config)
//!     }
//! }
//!
//! impl JwtCustomizer for TierClaim {
//!     fn customize(&self, _ctx: &CallContext, request: TokenRequest) -> Result<Customization, PluginError> {
//!         if request.kind != TokenKind::Access {
//!             return Ok(Customization::none());
//!         }
//!         Ok(Customization::none().with_claim("tier", &self.tier.as_str().into()))
//!     }
//! }
//!
//! // Several categories: `export_plugin!(TierClaim: jwt_customizer, lifecycle_hook);`
//! export_plugin!(TierClaim: jwt_customizer);
//! ```
//!
//! # Instances and configuration
//!
//! The host runs each (tenant, plugin) activation in its own WebAssembly
//! instances and reuses a warm instance across calls of that one tenant; an
//! instance never serves two tenants, and the configuration never changes
//! during an instance's life. So the glue calls `config::get-all` on the
//! first call, builds the plugin with [`Plugin::new`] and keeps it for the
//! life of the instance: parse and pre-compute everything there. Keep
//! durable state in [`host::kv`], not in the plugin object (the host may
//! discard an instance at any time, and several nodes run several).
//!
//! # Errors and panics
//!
//! Return [`PluginError`] with a stable `snake_case` code. A panic is a
//! WebAssembly trap: the host discards the instance and applies the
//! category's failure policy (panics cannot be caught on `wasm32`).
//!
//! # JSON
//!
//! Where the WIT has `json`, the SDK uses [`Json`]: the text as the host
//! sent it, parsed only on demand ([`Json::value`], [`Json::parse`]);
//! outputs built with [`Json::from_value`] / [`Json::encode`] are always
//! valid. Plugin configuration is handed to [`Plugin::new`] as a
//! `serde_json::Value`; [`parse_config`] turns it into a typed struct.
//!
//! # Host capabilities
//!
//! [`host`] offers `log`, `config`, `kv`, `http`, `clock` and `random` as
//! safe functions: WIT imports on `wasm32`, a registered
//! [`host::HostCapabilities`] object elsewhere (native loader, unit tests
//! with [`testing::MockHost`]).
//!
//! # Native builds
//!
//! The same crate also compiles for the host's native target. There,
//! [`export_plugin!`] checks that the type implements every named category
//! trait, implements [`ExportedPlugin`], and emits the native entry point
//! (see [`native`]): the crate's `cdylib` is then a native plugin the
//! server loads with `dlopen` (`kind: native` in the manifest), running the
//! very glue the WebAssembly exports run. The plugin type must be `Send`.
//!
//! # Building
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p <crate>
//! ```
//!
//! produces `target/wasm32-wasip2/release/<crate>.wasm`, a component (the
//! crate must be `crate-type = ["cdylib", "rlib"]`), and
//! `cargo build --release -p <crate>` the native library
//! `target/release/lib<crate>.so`.
#![warn(missing_docs)]

#[doc(hidden)]
pub mod bindings;

mod runtime;
mod types;

pub mod audit;
pub mod auth;
pub mod encryption;
pub mod host;
pub mod identity;
pub mod jwt;
pub mod lifecycle;
pub mod metrics;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod notification;
pub mod policy;
pub mod rate_limit;
pub mod storage;
pub mod testing;
pub mod validation;

pub use serde_json;
pub use types::{
    Attribute, AttributeList, AttributeValue, CallContext, DurationMs, ErrorDetail, Json, KeyValue,
    PluginError, Timestamp, find_key_value, parse_config,
};

/// The version of the WIT contract this SDK embeds; a plugin's
/// `manifest.json` must declare it as `contract`.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The WIT package this SDK embeds.
pub const WIT_PACKAGE: &str = "vaultaris:plugin@0.1.0";

/// A plugin: built once per WebAssembly instance from the tenant's
/// configuration (the JSON object an administrator set, validated by the
/// host against the manifest's `config_schema`, secrets decrypted; `{}`
/// when there is none).
///
/// Return [`PluginError::Misconfigured`] when the configuration is
/// unusable ([`parse_config`] does that for serde types); the call fails
/// and the next call tries again.
pub trait Plugin: Sized + 'static {
    /// Builds the plugin from its per-tenant configuration.
    fn new(config: serde_json::Value) -> Result<Self, PluginError>;
}

/// Implemented by [`export_plugin!`] for the exported type: what it
/// exports. The hook a native loader builds on.
pub trait ExportedPlugin: Plugin {
    /// The categories named in `export_plugin!`, in that order.
    const CATEGORIES: &'static [Category];
}

/// The twelve plugin categories of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// `auth-provider`: verifies credentials ([`auth::AuthProvider`]).
    AuthProvider,
    /// `identity-provider`: federated login ([`identity::IdentityProvider`]).
    IdentityProvider,
    /// `storage-backend`: backs the key-value capability
    /// ([`storage::StorageBackend`]).
    StorageBackend,
    /// `notification-channel`: email and SMS delivery
    /// ([`notification::NotificationChannel`]).
    NotificationChannel,
    /// `encryption-provider`: encryption at rest
    /// ([`encryption::EncryptionProvider`]).
    EncryptionProvider,
    /// `policy-engine`: authorisation decisions ([`policy::PolicyEngine`]).
    PolicyEngine,
    /// `audit-sink`: ships audit events ([`audit::AuditSink`]).
    AuditSink,
    /// `jwt-customizer`: token claims ([`jwt::JwtCustomizer`]).
    JwtCustomizer,
    /// `rate-limiter`: rate limits ([`rate_limit::RateLimiter`]).
    RateLimiter,
    /// `metrics-collector`: forwards metrics ([`metrics::MetricsCollector`]).
    MetricsCollector,
    /// `input-validator`: validates user input
    /// ([`validation::InputValidator`]).
    InputValidator,
    /// `lifecycle-hook`: vetoes and observes user events
    /// ([`lifecycle::LifecycleHook`]).
    LifecycleHook,
}

impl Category {
    /// All twelve, in the order of the contract's documentation.
    pub const ALL: [Category; 12] = [
        Category::AuthProvider,
        Category::IdentityProvider,
        Category::StorageBackend,
        Category::NotificationChannel,
        Category::EncryptionProvider,
        Category::PolicyEngine,
        Category::AuditSink,
        Category::JwtCustomizer,
        Category::RateLimiter,
        Category::MetricsCollector,
        Category::InputValidator,
        Category::LifecycleHook,
    ];

    /// The WIT interface name, as used in manifests (`jwt-customizer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::AuthProvider => "auth-provider",
            Category::IdentityProvider => "identity-provider",
            Category::StorageBackend => "storage-backend",
            Category::NotificationChannel => "notification-channel",
            Category::EncryptionProvider => "encryption-provider",
            Category::PolicyEngine => "policy-engine",
            Category::AuditSink => "audit-sink",
            Category::JwtCustomizer => "jwt-customizer",
            Category::RateLimiter => "rate-limiter",
            Category::MetricsCollector => "metrics-collector",
            Category::InputValidator => "input-validator",
            Category::LifecycleHook => "lifecycle-hook",
        }
    }

    /// The fully qualified name of the exported interface, e.g.
    /// `vaultaris:plugin/jwt-customizer@0.1.0`.
    pub fn interface(self) -> String {
        format!("vaultaris:plugin/{}@{}", self.as_str(), CONTRACT_VERSION)
    }

    /// Parses a manifest category name (`jwt-customizer`).
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exports a plugin type for the listed categories.
///
/// ```text
/// export_plugin!(MyPlugin: jwt_customizer);
/// export_plugin!(MyPlugin: jwt_customizer, lifecycle_hook, input_validator);
/// ```
///
/// Category names are the WIT interface names in `snake_case`:
/// `auth_provider`, `identity_provider`, `storage_backend`,
/// `notification_channel`, `encryption_provider`, `policy_engine`,
/// `audit_sink`, `jwt_customizer`, `rate_limiter`, `metrics_collector`,
/// `input_validator`, `lifecycle_hook`. The type must implement [`Plugin`]
/// and the trait of each listed category. Invoke it once per crate, at the
/// crate root.
///
/// On `wasm32` it expands to the `wit-bindgen` export of each category's
/// interface (the core-wasm functions and the component-type section that
/// `wasm-component-ld` turns into the component's exports) wired to the
/// SDK glue. On every target it implements [`ExportedPlugin`] for the type
/// and checks the trait bounds.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty : $($category:ident),+ $(,)?) => {
        $( $crate::__vaultaris_export_category!($category, $plugin); )+

        impl $crate::ExportedPlugin for $plugin {
            const CATEGORIES: &'static [$crate::Category] =
                &[$($crate::__vaultaris_export_category!(@variant $category)),+];
        }

        // The native build's entry point: the factory of instances, checked
        // by stabby's type report when the host loads the library.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            fn __vaultaris_assert_send<T: Send>() {}
            const _: fn() = __vaultaris_assert_send::<$plugin>;

            fn __vaultaris_dispatch(
                function: u32,
                input: &[u8],
            ) -> Option<Result<::std::vec::Vec<u8>, ::std::string::String>> {
                $(
                    if let Some(out) = $crate::__vaultaris_export_category!(@dispatch $category, $plugin)(function, input) {
                        return Some(out);
                    }
                )+
                None
            }

            /// The native entry point (`vaultaris_plugin_sdk::native::abi::ENTRY_SYMBOL`).
            #[unsafe(no_mangle)]
            pub extern "C" fn vaultaris_plugin_abi_v1() -> $crate::native::abi::FactoryHandle {
                $crate::native::factory(
                    env!("CARGO_PKG_NAME"),
                    env!("CARGO_PKG_VERSION"),
                    <$plugin as $crate::ExportedPlugin>::CATEGORIES,
                    __vaultaris_dispatch,
                )
            }

            /// stabby's checked import: the entry point if the loader's
            /// expectation matches its layout.
            #[unsafe(no_mangle)]
            pub extern "C" fn vaultaris_plugin_abi_v1_stabbied_v3(
                report: &$crate::native::abi::TypeReport,
            ) -> Option<$crate::native::abi::EntryFn> {
                $crate::native::abi::entry_compatible(report)
                    .then_some(vaultaris_plugin_abi_v1 as $crate::native::abi::EntryFn)
            }

            /// stabby's report of the entry point (for mismatch messages).
            #[unsafe(no_mangle)]
            pub extern "C" fn vaultaris_plugin_abi_v1_stabbied_v3_report()
                -> &'static $crate::native::abi::TypeReport {
                $crate::native::abi::entry_report()
            }
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vaultaris_export_category {
    (@emit $plugin:ty, $bindings:ident, $module:ident, $trait:ident, $export:ident) => {
        const _: fn() = || {
            fn __vaultaris_assert_category<T: $crate::$module::$trait>() {}
            __vaultaris_assert_category::<$plugin>();
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __VaultarisExport = $crate::$module::Export<$plugin>;
            $crate::bindings::$bindings::$export!(
                __VaultarisExport with_types_in $crate::bindings::$bindings
            );
        };
    };
    (@dispatch $category:ident, $plugin:ty) => { $crate::native::$category::<$plugin> };
    (@variant auth_provider) => { $crate::Category::AuthProvider };
    (@variant identity_provider) => { $crate::Category::IdentityProvider };
    (@variant storage_backend) => { $crate::Category::StorageBackend };
    (@variant notification_channel) => { $crate::Category::NotificationChannel };
    (@variant encryption_provider) => { $crate::Category::EncryptionProvider };
    (@variant policy_engine) => { $crate::Category::PolicyEngine };
    (@variant audit_sink) => { $crate::Category::AuditSink };
    (@variant jwt_customizer) => { $crate::Category::JwtCustomizer };
    (@variant rate_limiter) => { $crate::Category::RateLimiter };
    (@variant metrics_collector) => { $crate::Category::MetricsCollector };
    (@variant input_validator) => { $crate::Category::InputValidator };
    (@variant lifecycle_hook) => { $crate::Category::LifecycleHook };
    (@variant $other:ident) => { compile_error!("unknown plugin category") };
    (auth_provider, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, auth_provider, auth, AuthProvider, export_auth_provider);
    };
    (identity_provider, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, identity_provider, identity, IdentityProvider, export_identity_provider);
    };
    (storage_backend, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, storage_backend, storage, StorageBackend, export_storage_backend);
    };
    (notification_channel, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, notification_channel, notification, NotificationChannel, export_notification_channel);
    };
    (encryption_provider, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, encryption_provider, encryption, EncryptionProvider, export_encryption_provider);
    };
    (policy_engine, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, policy_engine, policy, PolicyEngine, export_policy_engine);
    };
    (audit_sink, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, audit_sink, audit, AuditSink, export_audit_sink);
    };
    (jwt_customizer, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, jwt_customizer, jwt, JwtCustomizer, export_jwt_customizer);
    };
    (rate_limiter, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, rate_limiter, rate_limit, RateLimiter, export_rate_limiter);
    };
    (metrics_collector, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, metrics_collector, metrics, MetricsCollector, export_metrics_collector);
    };
    (input_validator, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, input_validator, validation, InputValidator, export_input_validator);
    };
    (lifecycle_hook, $plugin:ty) => {
        $crate::__vaultaris_export_category!(@emit $plugin, lifecycle_hook, lifecycle, LifecycleHook, export_lifecycle_hook);
    };
    ($other:ident, $plugin:ty) => {
        compile_error!(concat!(
            "unknown plugin category `", stringify!($other), "`; expected one of: auth_provider, ",
            "identity_provider, storage_backend, notification_channel, encryption_provider, ",
            "policy_engine, audit_sink, jwt_customizer, rate_limiter, metrics_collector, ",
            "input_validator, lifecycle_hook"
        ));
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::from_name(c.as_str()), Some(c));
        }
        assert_eq!(
            Category::JwtCustomizer.interface(),
            "vaultaris:plugin/jwt-customizer@0.1.0"
        );
        assert_eq!(Category::from_name("nope"), None);
    }
}
