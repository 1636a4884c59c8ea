//! The host's capabilities as a native plugin sees them: the SDK's
//! [`HostCapabilities`] implemented over the ABI's [`HostAbi`] handle, so
//! `host::kv::get` and friends work unchanged in a native build.

use crate::bindings::caps::vaultaris::plugin as raw;
use crate::host::{HostCapabilities, http, kv, log};
use crate::types::{DurationMs, Json, KeyValue, Timestamp, json_in};

#[allow(unused_imports)]
use super::abi::*;
use super::functions::capability as c;
use super::wire::{decode, encode};

/// Capabilities of one activation, reached through the host's handle.
pub(crate) struct AbiHost {
    handle: HostHandle,
}

// SAFETY: the handle is an `Arc<dyn HostAbi + Send + Sync>` (stabby's
// `dynptr!` keeps the bounds in its vtable but not in the Rust type).
unsafe impl Send for AbiHost {}
// SAFETY: as above.
unsafe impl Sync for AbiHost {}

impl AbiHost {
    pub(crate) fn new(handle: HostHandle) -> Self {
        AbiHost { handle }
    }

    /// One capability call. The host answers every function it numbers;
    /// an answer that does not decode is a broken host, and the panic ends
    /// the call (caught by the instance glue).
    fn call<A: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        function: u32,
        args: &A,
    ) -> R {
        let input = encode(args);
        let out = self.handle.capability(function, input.as_slice().into());
        decode(&out).unwrap_or_else(|e| panic!("host capability {function} answered garbage: {e}"))
    }
}

impl HostCapabilities for AbiHost {
    fn log(&self, level: log::Level, message: &str, fields: &[KeyValue]) {
        use raw::logging::Level as L;
        let level = match level {
            log::Level::Trace => L::Trace,
            log::Level::Debug => L::Debug,
            log::Level::Info => L::Info,
            log::Level::Warn => L::Warn,
            log::Level::Error => L::Error,
        };
        let fields: Vec<raw::types::KeyValue> = fields.iter().cloned().map(Into::into).collect();
        self.call::<_, ()>(c::LOG, &(level, message, fields));
    }

    fn config_get_all(&self) -> Json {
        json_in(self.call(c::CONFIG_GET_ALL, &()))
    }

    fn config_get(&self, key: &str) -> Option<Json> {
        self.call::<_, Option<String>>(c::CONFIG_GET, &(key,))
            .map(json_in)
    }

    fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, kv::KvError> {
        self.call::<_, Result<_, raw::key_value::KvError>>(c::KV_GET, &(key,))
            .map_err(Into::into)
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl: Option<DurationMs>) -> Result<(), kv::KvError> {
        self.call::<_, Result<_, raw::key_value::KvError>>(c::KV_SET, &(key, value, ttl))
            .map_err(Into::into)
    }

    fn kv_delete(&self, key: &str) -> Result<bool, kv::KvError> {
        self.call::<_, Result<_, raw::key_value::KvError>>(c::KV_DELETE, &(key,))
            .map_err(Into::into)
    }

    fn kv_list_prefix(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<kv::KeyPage, kv::KvError> {
        self.call::<_, Result<raw::key_value::KeyPage, raw::key_value::KvError>>(
            c::KV_LIST_PREFIX,
            &(prefix, cursor, limit),
        )
        .map(|p| kv::KeyPage {
            keys: p.keys,
            next_cursor: p.next_cursor,
        })
        .map_err(Into::into)
    }

    fn kv_increment(
        &self,
        key: &str,
        delta: i64,
        ttl_if_created: Option<DurationMs>,
    ) -> Result<i64, kv::KvError> {
        self.call::<_, Result<_, raw::key_value::KvError>>(
            c::KV_INCREMENT,
            &(key, delta, ttl_if_created),
        )
        .map_err(Into::into)
    }

    fn http_send(&self, request: &http::Request) -> Result<http::Response, http::HttpError> {
        let r = http::to_raw(request);
        http::from_raw(self.call(c::HTTP_SEND, &(r,)))
    }

    fn clock_now(&self) -> Timestamp {
        self.call(c::CLOCK_NOW, &())
    }

    fn clock_monotonic_ns(&self) -> u64 {
        self.call(c::CLOCK_MONOTONIC_NS, &())
    }

    fn random_bytes(&self, len: u32) -> Vec<u8> {
        self.call(c::RANDOM_BYTES, &(len,))
    }

    fn files_root(&self) -> Option<String> {
        self.call(c::FILES_ROOT, &())
    }

    fn confines_files(&self) -> bool {
        true
    }
}
