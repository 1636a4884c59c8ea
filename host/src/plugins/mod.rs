//! The plugin runtime: installed plugins, per-tenant activations, and the
//! sandbox every WebAssembly plugin call runs in.

pub mod activation;
pub mod bindings;
pub mod breaker;
pub mod capabilities;
pub mod engine;
pub mod error;
pub mod hooks;
pub mod kv;
pub mod limits;
pub mod loaded;
pub mod manifest;
pub mod native;
pub mod runtime;
pub mod state;

pub use manifest::{Category, FailureMode, PluginManifest};
pub use runtime::{ActivationSpec, PluginRuntime, RuntimeSettings};
pub mod dynamic;
pub mod request_id;
pub mod runner;
