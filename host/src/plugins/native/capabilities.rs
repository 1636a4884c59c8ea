//! The host's capabilities for native plugins: the ABI's `HostAbi` served
//! by the very implementations WebAssembly plugins reach through their WIT
//! imports (`plugins/capabilities.rs` on `PluginState`), so grants, budgets,
//! quotas, the SSRF rules and the deadline apply to both kinds alike.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use stabby::slice::Slice;
use stabby::vec::Vec as AbiVec;
use vaultaris_plugin_sdk::native::abi::HostAbi;
use vaultaris_plugin_sdk::native::functions::capability as c;
use vaultaris_plugin_sdk::native::wire::{decode, encode};

use crate::plugins::bindings::v0_1_0::caps::vaultaris::plugin::{
    clock, config, key_value, logging, outbound_http, random, types,
};
use crate::plugins::state::PluginState;

/// One native instance's capabilities: its `PluginState` (activation,
/// grants, per-call counters and deadline) and the runtime that drives the
/// asynchronous ones from the plugin's (blocking) thread.
pub struct NativeHost {
    /// The instance's state, reset by the activation before every call.
    pub state: Arc<Mutex<PluginState>>,
    /// The server's runtime.
    pub runtime: tokio::runtime::Handle,
}

/// Runs a capability's future to completion from the plugin's thread: a
/// blocking-pool thread, or (inline calls) a runtime worker, which
/// `block_in_place` first turns into a blocking thread so the others keep
/// being served.
struct Blocking<'a>(&'a tokio::runtime::Handle);

impl Blocking<'_> {
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        match self.0.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => self.0.block_on(f),
            _ => tokio::task::block_in_place(|| self.0.block_on(f)),
        }
    }
}

impl NativeHost {
    fn serve(&self, function: u32, input: &[u8]) -> Result<Vec<u8>, String> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st: &mut PluginState = &mut guard;
        let rt = &Blocking(&self.runtime);
        Ok(match function {
            c::LOG => {
                let (level, message, fields): (logging::Level, String, Vec<types::KeyValue>) =
                    decode(input)?;
                rt.block_on(logging::Host::log(st, level, message, fields));
                encode(&())
            }
            c::CONFIG_GET_ALL => {
                decode::<()>(input)?;
                encode(&rt.block_on(config::Host::get_all(st)))
            }
            c::CONFIG_GET => {
                let (key,): (String,) = decode(input)?;
                encode(&rt.block_on(config::Host::get(st, key)))
            }
            c::KV_GET => {
                let (key,): (String,) = decode(input)?;
                encode(&rt.block_on(key_value::Host::get(st, key)))
            }
            c::KV_SET => {
                let (key, value, ttl): (String, Vec<u8>, Option<u64>) = decode(input)?;
                encode(&rt.block_on(key_value::Host::set(st, key, value, ttl)))
            }
            c::KV_DELETE => {
                let (key,): (String,) = decode(input)?;
                encode(&rt.block_on(key_value::Host::delete(st, key)))
            }
            c::KV_LIST_PREFIX => {
                let (prefix, cursor, limit): (String, Option<String>, u32) = decode(input)?;
                encode(&rt.block_on(key_value::Host::list_prefix(st, prefix, cursor, limit)))
            }
            c::KV_INCREMENT => {
                let (key, delta, ttl): (String, i64, Option<u64>) = decode(input)?;
                encode(&rt.block_on(key_value::Host::increment(st, key, delta, ttl)))
            }
            c::HTTP_SEND => {
                let (request,): (outbound_http::Request,) = decode(input)?;
                encode(&rt.block_on(outbound_http::Host::send(st, request)))
            }
            c::CLOCK_NOW => {
                decode::<()>(input)?;
                encode(&rt.block_on(clock::Host::now(st)))
            }
            c::CLOCK_MONOTONIC_NS => {
                decode::<()>(input)?;
                encode(&rt.block_on(clock::Host::monotonic_ns(st)))
            }
            c::RANDOM_BYTES => {
                let (len,): (u32,) = decode(input)?;
                encode(&rt.block_on(random::Host::bytes(st, len)))
            }
            c::FILES_ROOT => {
                decode::<()>(input)?;
                let dir = st.activation.files_dir.as_ref();
                encode(&dir.map(|d| d.display().to_string()))
            }
            other => return Err(format!("unknown capability function {other}")),
        })
    }
}

impl HostAbi for NativeHost {
    extern "C" fn capability<'a>(&'a self, function: u32, input: Slice<'a, u8>) -> AbiVec<u8> {
        // Nothing unwinds into the plugin: a failure (or a panic) answers
        // with no bytes, which the plugin's glue cannot decode, so its call
        // ends as a trap.
        match catch_unwind(AssertUnwindSafe(|| self.serve(function, &input))) {
            Ok(Ok(bytes)) => AbiVec::from(bytes.as_slice()),
            Ok(Err(why)) => {
                tracing::warn!(function, "native plugin capability call refused: {why}");
                AbiVec::new()
            }
            Err(_) => {
                tracing::error!(function, "native plugin capability call panicked");
                AbiVec::new()
            }
        }
    }
}
