//! Native plugins: trusted Rust dylibs built from the same source as a
//! WebAssembly plugin (`export_plugin!` emits both), loaded with
//! libloading through stabby's checked import, and called behind the same
//! hook facades, limits, failure policies and circuit breakers.
//!
//! Security decisions:
//! - Native code is not sandboxed: it runs in the server's process with the
//!   server's rights. The operator must opt in (`PLUGIN_ALLOW_NATIVE=true`);
//!   without it a `kind: native` plugin is refused at install, at start-up
//!   and on cluster sync, with an error saying why.
//! - The library's layout is verified by stabby's type report before any
//!   of its functions is called, and its own manifest (ABI version,
//!   contract, categories and version) must match `manifest.json`, and it
//!   must have been built with `panic = "unwind"` (with `abort` any panic
//!   in it would end the server); a mismatch is an install-time error,
//!   never a first-call surprise.
//! - What the operator reviewed is what runs: the library is written to
//!   the private cache directory under its SHA-256 and re-hashed before
//!   every `dlopen`.
//! - By default calls run on the blocking thread pool under the call's
//!   deadline. A call that overruns gets `deadline_exceeded` and its
//!   instance is discarded; the thread cannot be stopped (native code
//!   cannot be interrupted), so at most [`instance::MAX_RUNAWAY_CALLS`]
//!   overrunning calls per (tenant, plugin) — counted across
//!   reconfigurations — and [`instance::MAX_POOLED_CALLS`] native calls in
//!   all may hold a thread before further calls are refused as `busy`, so
//!   hanging plugins cannot starve the server's blocking pool. A call still
//!   queued when its deadline passed never runs (its side effects would
//!   land after the failure was reported). An operator who trusts the libraries'
//!   latency may run calls inline on the request's worker
//!   ([`NativeCallMode::Inline`]): no thread hand-off (the fastest path),
//!   but the deadline is then checked when the call returns, and a call
//!   that never returns holds a runtime worker.
//! - Panics are caught on the plugin's side and answered as errors (a
//!   trap); the host's capability bridge catches its own, so nothing
//!   unwinds across the boundary.
//! - Memory and fuel limits do not apply (there is no sandbox to meter);
//!   input and output sizes, deadlines, per-call capability budgets and
//!   the key-value quota do. A tenant-configured directory is confined to
//!   the activation's own by the SDK (`host::files::resolve`).
//! - Encrypt and decrypt buffers (plaintext) are wiped after the call.

pub mod capabilities;
pub mod instance;
pub mod library;

pub use instance::NativeInstance;

/// Where native plugin calls run (`PLUGIN_NATIVE_CALLS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NativeCallMode {
    /// On the blocking thread pool: the deadline answers for the request
    /// even if the plugin never returns (the default).
    #[default]
    Pool,
    /// On the request's own worker thread, without a hand-off: the deadline
    /// is checked when the call returns (a late result is discarded as
    /// `deadline_exceeded`), and a call that never returns holds the
    /// worker. Falls back to the pool on a single-threaded runtime.
    Inline,
}

impl std::str::FromStr for NativeCallMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pool" => Ok(NativeCallMode::Pool),
            "inline" => Ok(NativeCallMode::Inline),
            other => Err(format!("{other:?}: expected pool or inline")),
        }
    }
}
pub use library::{NativeLibrary, NativeLibraryCache};
