//! Numbers for the contract's functions across the native ABI.
//!
//! A plugin function is `(category index << 8) | position`: the category's
//! index in [`crate::Category::ALL`] and the function's position in its WIT
//! interface. The numbers of a released contract never change; a new
//! contract version adds functions with new numbers.

/// auth-provider `verify`.
pub const AUTH_PROVIDER_VERIFY: u32 = 0x0000;
/// identity-provider `describe`.
pub const IDENTITY_PROVIDER_DESCRIBE: u32 = 0x0100;
/// identity-provider `begin`.
pub const IDENTITY_PROVIDER_BEGIN: u32 = 0x0101;
/// identity-provider `complete`.
pub const IDENTITY_PROVIDER_COMPLETE: u32 = 0x0102;
/// storage-backend `get`.
pub const STORAGE_BACKEND_GET: u32 = 0x0200;
/// storage-backend `set`.
pub const STORAGE_BACKEND_SET: u32 = 0x0201;
/// storage-backend `delete`.
pub const STORAGE_BACKEND_DELETE: u32 = 0x0202;
/// storage-backend `list-prefix`.
pub const STORAGE_BACKEND_LIST_PREFIX: u32 = 0x0203;
/// storage-backend `increment`.
pub const STORAGE_BACKEND_INCREMENT: u32 = 0x0204;
/// storage-backend `usage`.
pub const STORAGE_BACKEND_USAGE: u32 = 0x0205;
/// notification-channel `supported-kinds`.
pub const NOTIFICATION_CHANNEL_SUPPORTED_KINDS: u32 = 0x0300;
/// notification-channel `deliver`.
pub const NOTIFICATION_CHANNEL_DELIVER: u32 = 0x0301;
/// encryption-provider `encrypt`.
pub const ENCRYPTION_PROVIDER_ENCRYPT: u32 = 0x0400;
/// encryption-provider `decrypt`.
pub const ENCRYPTION_PROVIDER_DECRYPT: u32 = 0x0401;
/// encryption-provider `current-key-id`.
pub const ENCRYPTION_PROVIDER_CURRENT_KEY_ID: u32 = 0x0402;
/// policy-engine `evaluate`.
pub const POLICY_ENGINE_EVALUATE: u32 = 0x0500;
/// policy-engine `evaluate-batch`.
pub const POLICY_ENGINE_EVALUATE_BATCH: u32 = 0x0501;
/// audit-sink `deliver`.
pub const AUDIT_SINK_DELIVER: u32 = 0x0600;
/// jwt-customizer `customize`.
pub const JWT_CUSTOMIZER_CUSTOMIZE: u32 = 0x0700;
/// rate-limiter `check`.
pub const RATE_LIMITER_CHECK: u32 = 0x0800;
/// metrics-collector `collect`.
pub const METRICS_COLLECTOR_COLLECT: u32 = 0x0900;
/// input-validator `validate`.
pub const INPUT_VALIDATOR_VALIDATE: u32 = 0x0A00;
/// lifecycle-hook `before`.
pub const LIFECYCLE_HOOK_BEFORE: u32 = 0x0B00;
/// lifecycle-hook `after`.
pub const LIFECYCLE_HOOK_AFTER: u32 = 0x0B01;

/// Numbers of the host's capability functions ([`super::abi::HostAbi`]),
/// with the arguments and result each one carries (WIT types of the
/// `logging`, `config`, `key-value`, `outbound-http`, `clock` and `random`
/// interfaces, as tuples).
pub mod capability {
    /// `logging.log`: `(level, string, list<key-value>)` → `()`.
    pub const LOG: u32 = 1;
    /// `config.get-all`: `()` → `json`.
    pub const CONFIG_GET_ALL: u32 = 2;
    /// `config.get`: `(string,)` → `option<json>`.
    pub const CONFIG_GET: u32 = 3;
    /// `key-value.get`: `(string,)` → `result<option<list<u8>>, kv-error>`.
    pub const KV_GET: u32 = 4;
    /// `key-value.set`: `(string, list<u8>, option<duration-ms>)` → `result<_, kv-error>`.
    pub const KV_SET: u32 = 5;
    /// `key-value.delete`: `(string,)` → `result<bool, kv-error>`.
    pub const KV_DELETE: u32 = 6;
    /// `key-value.list-prefix`: `(string, option<string>, u32)` → `result<key-page, kv-error>`.
    pub const KV_LIST_PREFIX: u32 = 7;
    /// `key-value.increment`: `(string, s64, option<duration-ms>)` → `result<s64, kv-error>`.
    pub const KV_INCREMENT: u32 = 8;
    /// `outbound-http.send`: `(request,)` → `result<response, http-error>`.
    pub const HTTP_SEND: u32 = 9;
    /// `clock.now`: `()` → `timestamp`.
    pub const CLOCK_NOW: u32 = 10;
    /// `clock.monotonic-ns`: `()` → `u64`.
    pub const CLOCK_MONOTONIC_NS: u32 = 11;
    /// `random.bytes`: `(u32,)` → `list<u8>`.
    pub const RANDOM_BYTES: u32 = 12;
    /// Native only: the activation's private directory, the one a
    /// WebAssembly build sees preopened at `/data`: `()` → `option<string>`.
    pub const FILES_ROOT: u32 = 13;
}
