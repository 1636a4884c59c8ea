//! The native build of a plugin: the same source as the WebAssembly
//! component, compiled for the host's own target into a `cdylib` that the
//! server loads with `dlopen` (kind `native` in the manifest).
//!
//! What crosses the boundary, and how:
//!
//! - One versioned entry point, [`abi::ENTRY_SYMBOL`], exported with
//!   stabby's type report, so the host verifies the layout of everything
//!   below before it calls anything ([`abi::EntryFn`]).
//! - The entry point returns a factory ([`abi::FactoryAbi`]): the plugin's
//!   [`abi::NativeManifest`] (id, version, contract, categories, ABI
//!   version) and `create`, which makes one instance per tenant activation,
//!   bound to that activation's host capabilities ([`abi::HostAbi`]).
//! - An instance ([`abi::InstanceAbi`]) serves the functions of its
//!   categories, identified by [`functions`]. Arguments and results are the
//!   WIT records of the contract, encoded with postcard (the same
//!   WIT-generated types on both sides, so the encoding follows the WIT
//!   exactly, field by field and case by case).
//! - Each call runs the SDK's category glue — the very code behind the
//!   WebAssembly exports — so both builds of one source behave the same.
//!   Panics are caught in the glue and returned as errors: they never
//!   unwind into the host.
//!
//! Plugin authors never touch this module: [`crate::export_plugin!`]
//! generates the entry point.

pub mod abi;
pub mod functions;
pub mod wire;

mod bridge;
mod dispatch;
mod instance;
#[cfg(test)]
mod tests;

#[doc(hidden)]
pub use dispatch::*;
#[doc(hidden)]
pub use instance::{Dispatch, factory};
