//! One dispatcher per category: decodes a native call's arguments, runs the
//! category's glue (the same `Guest` implementation the WebAssembly build
//! exports) and encodes its result. `export_plugin!` chains the
//! dispatchers of the categories it names.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::functions as f;
use super::wire::{decode, encode};

/// Decodes `A`, runs `call`, encodes its result.
fn run<A: DeserializeOwned, R: Serialize>(
    input: &[u8],
    call: impl FnOnce(A) -> R,
) -> Result<Vec<u8>, String> {
    let args = decode::<A>(input).map_err(|e| format!("undecodable arguments: {e}"))?;
    Ok(encode(&call(args)))
}

macro_rules! dispatcher {
    ($(#[$doc:meta])* $name:ident, $module:ident :: $trait:ident, $raw:ident,
     { $($id:path => $func:ident ( $($arg:ident : $ty:ty),* )),+ $(,)? }) => {
        $(#[$doc])*
        pub fn $name<T: crate::$module::$trait>(
            function: u32,
            input: &[u8],
        ) -> Option<Result<Vec<u8>, String>> {
            use crate::bindings::$raw as raw;
            #[allow(unused_imports)]
            use crate::Timestamp;
            match function {
                $( $id => Some(run(input, |($($arg,)*): ($($ty,)*)| {
                    <crate::$module::Export<T> as raw::Guest>::$func($($arg),*)
                })), )+
                _ => None,
            }
        }
    };
}

dispatcher!(
    /// auth-provider.
    auth_provider, auth::AuthProvider, auth_provider,
    { f::AUTH_PROVIDER_VERIFY => verify(ctx: raw::CallContext, request: raw::VerifyRequest) });
dispatcher!(
    /// identity-provider.
    identity_provider, identity::IdentityProvider, identity_provider, {
    f::IDENTITY_PROVIDER_DESCRIBE => describe(ctx: raw::CallContext),
    f::IDENTITY_PROVIDER_BEGIN => begin(ctx: raw::CallContext, request: raw::BeginRequest),
    f::IDENTITY_PROVIDER_COMPLETE => complete(ctx: raw::CallContext, request: raw::CallbackRequest),
});
dispatcher!(
    /// storage-backend.
    storage_backend, storage::StorageBackend, storage_backend, {
    f::STORAGE_BACKEND_GET => get(ctx: raw::CallContext, namespace: String, key: String),
    f::STORAGE_BACKEND_SET => set(ctx: raw::CallContext, namespace: String, key: String,
        value: Vec<u8>, expires_at: Option<Timestamp>),
    f::STORAGE_BACKEND_DELETE => delete(ctx: raw::CallContext, namespace: String, key: String),
    f::STORAGE_BACKEND_LIST_PREFIX => list_prefix(ctx: raw::CallContext, namespace: String,
        prefix: String, cursor: Option<String>, limit: u32),
    f::STORAGE_BACKEND_INCREMENT => increment(ctx: raw::CallContext, namespace: String,
        key: String, delta: i64, expires_at_if_created: Option<Timestamp>),
    f::STORAGE_BACKEND_USAGE => usage(ctx: raw::CallContext, namespace: String),
});
dispatcher!(
    /// notification-channel.
    notification_channel, notification::NotificationChannel, notification_channel, {
    f::NOTIFICATION_CHANNEL_SUPPORTED_KINDS => supported_kinds(ctx: raw::CallContext),
    f::NOTIFICATION_CHANNEL_DELIVER => deliver(ctx: raw::CallContext, message: raw::Message),
});
dispatcher!(
    /// encryption-provider.
    encryption_provider, encryption::EncryptionProvider, encryption_provider, {
    f::ENCRYPTION_PROVIDER_ENCRYPT => encrypt(ctx: raw::CallContext, request: raw::EncryptRequest),
    f::ENCRYPTION_PROVIDER_DECRYPT => decrypt(ctx: raw::CallContext, request: raw::DecryptRequest),
    f::ENCRYPTION_PROVIDER_CURRENT_KEY_ID => current_key_id(ctx: raw::CallContext),
});
dispatcher!(
    /// policy-engine.
    policy_engine, policy::PolicyEngine, policy_engine, {
    f::POLICY_ENGINE_EVALUATE => evaluate(ctx: raw::CallContext, request: raw::DecisionRequest),
    f::POLICY_ENGINE_EVALUATE_BATCH => evaluate_batch(ctx: raw::CallContext,
        requests: Vec<raw::DecisionRequest>),
});
dispatcher!(
    /// audit-sink.
    audit_sink, audit::AuditSink, audit_sink,
    { f::AUDIT_SINK_DELIVER => deliver(ctx: raw::CallContext, events: Vec<raw::AuditEvent>) });
dispatcher!(
    /// jwt-customizer.
    jwt_customizer, jwt::JwtCustomizer, jwt_customizer,
    { f::JWT_CUSTOMIZER_CUSTOMIZE => customize(ctx: raw::CallContext, request: raw::TokenRequest) });
dispatcher!(
    /// rate-limiter.
    rate_limiter, rate_limit::RateLimiter, rate_limiter,
    { f::RATE_LIMITER_CHECK => check(ctx: raw::CallContext, request: raw::RateLimitRequest) });
dispatcher!(
    /// metrics-collector.
    metrics_collector, metrics::MetricsCollector, metrics_collector,
    { f::METRICS_COLLECTOR_COLLECT => collect(ctx: raw::CallContext, points: Vec<raw::MetricPoint>) });
dispatcher!(
    /// input-validator.
    input_validator, validation::InputValidator, input_validator,
    { f::INPUT_VALIDATOR_VALIDATE => validate(ctx: raw::CallContext, request: raw::ValidationRequest) });
dispatcher!(
    /// lifecycle-hook.
    lifecycle_hook, lifecycle::LifecycleHook, lifecycle_hook, {
    f::LIFECYCLE_HOOK_BEFORE => before(ctx: raw::CallContext, event: raw::PreEvent),
    f::LIFECYCLE_HOOK_AFTER => after(ctx: raw::CallContext, event: raw::PostEvent),
});
