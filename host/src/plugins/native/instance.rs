//! A native plugin instance: the library's instance object for one
//! activation, its capability state, and the call path (encode, run on the
//! blocking pool under the deadline, check the size, decode).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use vaultaris_plugin_sdk::native::abi::{InstanceAbiDynMut, InstanceHandle};
use vaultaris_plugin_sdk::native::functions as native_fn;
use vaultaris_plugin_sdk::native::wire::{decode, encode};

use super::capabilities::NativeHost;
use super::library::NativeLibrary;
use crate::plugins::bindings::v0_1_0::caps::vaultaris::plugin::types::PluginError;
use crate::plugins::state::PluginState;

/// Calls of one (tenant, plugin) that overran their deadline and still
/// hold a thread; past this many, further calls are refused as `busy`
/// until some return.
pub const MAX_RUNAWAY_CALLS: usize = 4;

/// Native calls on the blocking pool at once, across all tenants: well
/// below Tokio's 512 blocking threads, so overrunning plugins can never
/// starve what else needs one (file I/O, name lookups, compilations).
pub const MAX_POOLED_CALLS: usize = 256;

/// Calls running now: of one (tenant, plugin) — kept across its
/// activation's rebuilds, so reconfiguring does not reset the budget —
/// and of the whole process.
#[derive(Clone, Debug)]
pub struct RunningCalls {
    /// Of this (tenant, plugin).
    pub own: Arc<AtomicUsize>,
    /// Of every native plugin.
    pub all: Arc<AtomicUsize>,
}

/// Why a native call produced no usable result (carried in the
/// `wasmtime::Error` the hook closures return, classified by the
/// activation).
#[derive(Debug, thiserror::Error)]
pub enum NativeFailure {
    /// The plugin's glue reported no result: a panic, or a function it
    /// does not export.
    #[error("{0}")]
    Trap(String),
    /// The encoded result was larger than the output limit allows.
    #[error("output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge {
        /// Bytes of output.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The result did not decode as the contract's type.
    #[error("the result does not decode as the contract's type: {0}")]
    Malformed(String),
    /// Too many earlier calls are still running past their deadline.
    #[error("{0} earlier calls are still running past their deadline")]
    Runaway(usize),
    /// An inline call returned after its deadline (its result discarded).
    #[error("the call returned after its deadline")]
    Late,
}

/// The library's instance and the library itself, in drop order (the
/// instance's code lives in the library).
struct Live {
    handle: InstanceHandle,
    _library: Arc<NativeLibrary>,
}

// SAFETY: the handle is a `Box<dyn InstanceAbi + Send>` (stabby keeps the
// bound in the vtable, not in the Rust type); it is used behind a mutex.
unsafe impl Send for Live {}

/// One live native instance of an activation.
pub struct NativeInstance {
    live: Arc<Mutex<Live>>,
    /// Capability state: activation, grants, per-call counters, deadline.
    pub state: Arc<Mutex<PluginState>>,
    /// The output limit of the call in progress, in encoded bytes.
    pub max_output_bytes: usize,
    /// The deadline of the call in progress.
    pub deadline: Instant,
    /// Calls still running (of its (tenant, plugin), and of all).
    running: RunningCalls,
    /// Whether calls run inline on the caller's worker thread.
    inline: bool,
}

impl NativeInstance {
    /// Creates an instance of `library` whose capabilities use `state`.
    pub fn new(
        library: Arc<NativeLibrary>,
        state: PluginState,
        running: RunningCalls,
        mode: super::NativeCallMode,
    ) -> Self {
        let runtime = tokio::runtime::Handle::current();
        // Inline calls need `block_in_place` for their capability calls,
        // which a single-threaded runtime cannot offer.
        let inline = mode == super::NativeCallMode::Inline
            && runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread;
        let state = Arc::new(Mutex::new(state));
        let host = NativeHost {
            state: state.clone(),
            runtime,
        };
        let handle = library.create(stabby::sync::Arc::new(host).into());
        Self {
            live: Arc::new(Mutex::new(Live {
                handle,
                _library: library,
            })),
            state,
            max_output_bytes: usize::MAX,
            deadline: Instant::now(),
            running,
            inline,
        }
    }

    /// Calls contract function `function` (`vaultaris_plugin_sdk::native::functions`)
    /// with `args`, the WIT parameters after the call context, as a tuple
    /// with the context first. Runs on the blocking pool: the caller's
    /// deadline (a timeout around this future) answers for the request even
    /// if the plugin never returns.
    pub async fn call<A, R>(
        &mut self,
        function: u32,
        args: &A,
    ) -> wasmtime::Result<Result<R, PluginError>>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned + Send + 'static,
    {
        let input = encode(args);
        let limit = self.max_output_bytes;
        let deadline = self.deadline;
        // Encrypt and decrypt carry plaintext: their buffers are wiped.
        let secret = matches!(
            function,
            native_fn::ENCRYPTION_PROVIDER_ENCRYPT | native_fn::ENCRYPTION_PROVIDER_DECRYPT
        );
        if self.inline {
            let outcome = {
                let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                finish(
                    live.handle.call(function, input.as_slice().into()),
                    limit,
                    secret,
                )
            };
            wipe(input, secret);
            // The same slack as the pool path's timeout (see invoke).
            if Instant::now() > deadline + DEADLINE_SLACK {
                return Err(wasmtime::Error::new(NativeFailure::Late));
            }
            return outcome.map_err(wasmtime::Error::new);
        }
        let own = self.running.own.load(Ordering::Relaxed);
        if own >= MAX_RUNAWAY_CALLS + super::super::activation::MAX_CONCURRENT_CALLS {
            return Err(wasmtime::Error::new(NativeFailure::Runaway(own)));
        }
        let all = self.running.all.load(Ordering::Relaxed);
        if all >= MAX_POOLED_CALLS {
            return Err(wasmtime::Error::new(NativeFailure::Runaway(all)));
        }
        let live = self.live.clone();
        let running = self.running.clone();
        running.own.fetch_add(1, Ordering::Relaxed);
        running.all.fetch_add(1, Ordering::Relaxed);
        let task = tokio::task::spawn_blocking(move || {
            struct Done(RunningCalls);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.own.fetch_sub(1, Ordering::Relaxed);
                    self.0.all.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _done = Done(running);
            // A call still queued when its caller gave up never runs: its
            // side effects (a write, a delivery) must not land after the
            // host reported the call failed.
            if Instant::now() > deadline + DEADLINE_SLACK {
                wipe(input, secret);
                return Err(NativeFailure::Late);
            }
            let outcome = {
                let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
                finish(
                    live.handle.call(function, input.as_slice().into()),
                    limit,
                    secret,
                )
            };
            wipe(input, secret);
            outcome
        });
        match task.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(f)) => Err(wasmtime::Error::new(f)),
            Err(e) => Err(wasmtime::Error::new(NativeFailure::Trap(format!(
                "the call's thread failed: {e}"
            )))),
        }
    }
}

/// Past its deadline, a call's result is refused with this much slack:
/// the same the WebAssembly path's outer timeout gives capability calls.
pub const DEADLINE_SLACK: std::time::Duration = std::time::Duration::from_millis(100);

/// Checks the size of a call's encoded result and decodes it (wiping the
/// encoded bytes of a `secret` call).
fn finish<R: DeserializeOwned>(
    outcome: vaultaris_plugin_sdk::native::abi::CallOutcome,
    limit: usize,
    secret: bool,
) -> Result<Result<R, PluginError>, NativeFailure> {
    match outcome.match_owned(Ok, Err) {
        Ok(mut bytes) => {
            let result = if bytes.len() > limit {
                Err(NativeFailure::OutputTooLarge {
                    size: bytes.len(),
                    limit,
                })
            } else {
                decode::<Result<R, PluginError>>(&bytes).map_err(NativeFailure::Malformed)
            };
            if secret {
                zeroize::Zeroize::zeroize(bytes.as_slice_mut());
            }
            result
        }
        Err(why) => Err(NativeFailure::Trap(why.as_str().to_owned())),
    }
}

/// Wipes an encoded argument buffer that held plaintext.
fn wipe(mut input: Vec<u8>, secret: bool) {
    if secret {
        zeroize::Zeroize::zeroize(&mut input);
    }
}
