//! The ABI-stable surface between the server and a native plugin: the
//! entry point, the factory, an instance, and the host's capabilities.
//! Every type here is checked by stabby's type reports when the host loads
//! the library; a library built against another layout is refused before
//! any of its code runs (beyond its initialisers).

use stabby::slice::Slice;
use stabby::string::String as AbiString;
use stabby::vec::Vec as AbiVec;

/// The version of this ABI. It changes when the shape of anything in this
/// module changes, or the encoding of [`super::wire`]; the entry point's
/// symbol carries it, so an old library is refused by name.
pub const ABI_VERSION: u32 = 1;

/// The symbol of the entry point ([`EntryFn`]), exported by
/// `export_plugin!` with stabby's report (`<symbol>_stabbied_v3`).
pub const ENTRY_SYMBOL: &str = "vaultaris_plugin_abi_v1";

/// What a native library says it is; the host compares it with the
/// plugin's `manifest.json` at install time.
#[stabby::stabby]
pub struct NativeManifest {
    /// [`ABI_VERSION`] of the SDK the library was built with.
    pub abi_version: u32,
    /// Build properties the host checks: [`FLAG_PANIC_UNWIND`].
    pub flags: u32,
    /// The categories exported: bit `i` is `Category::ALL[i]`.
    pub categories: u32,
    /// The plugin id (the crate name without a `vaultaris-plugin-` prefix).
    pub id: AbiString,
    /// The crate version.
    pub version: AbiString,
    /// The WIT contract version the SDK embeds (`0.1.0`).
    pub contract: AbiString,
    /// The SDK version.
    pub sdk_version: AbiString,
}

/// [`NativeManifest::flags`]: the library was built with `panic =
/// "unwind"`, so the glue can catch a plugin's panic (with `panic =
/// "abort"` every panic would end the server's process; the host refuses
/// such a library).
pub const FLAG_PANIC_UNWIND: u32 = 1;

/// The outcome of one call: the encoded result, or why the call produced
/// none (a panic, an unknown function, undecodable arguments).
pub type CallOutcome = stabby::result::Result<AbiVec<u8>, AbiString>;

/// The host's capabilities, bound to one activation (tenant and plugin):
/// logging, configuration, key-value, outbound HTTP, clock and randomness.
/// Arguments and results are encoded as [`super::wire`] describes.
#[stabby::stabby(checked)]
pub trait HostAbi {
    /// Runs the capability function `function` ([`super::functions::capability`]).
    extern "C" fn capability<'a>(&'a self, function: u32, input: Slice<'a, u8>) -> AbiVec<u8>;
}

/// A shared handle to the host's capabilities.
pub type HostHandle = stabby::dynptr!(stabby::sync::Arc<dyn HostAbi + Send + Sync>);

/// One instance of a plugin, serving one tenant's activation. The host
/// calls it from one thread at a time.
#[stabby::stabby(checked)]
pub trait InstanceAbi {
    /// Runs the contract function `function` ([`super::functions`]) on
    /// encoded arguments.
    extern "C" fn call<'a>(&'a mut self, function: u32, input: Slice<'a, u8>) -> CallOutcome;
}

/// An owned instance.
pub type InstanceHandle = stabby::dynptr!(stabby::boxed::Box<dyn InstanceAbi + Send>);

/// What the entry point returns: the manifest and the instance factory.
#[stabby::stabby(checked)]
pub trait FactoryAbi {
    /// The library's manifest.
    extern "C" fn manifest(&self) -> NativeManifest;
    /// A new instance whose capabilities go to `host`. The plugin object
    /// is built on the first call, from the configuration `host` gives.
    extern "C" fn create(&self, host: HostHandle) -> InstanceHandle;
}

/// An owned factory.
pub type FactoryHandle = stabby::dynptr!(stabby::boxed::Box<dyn FactoryAbi + Send + Sync>);

/// The entry point's type.
pub type EntryFn = extern "C" fn() -> FactoryHandle;

/// stabby's description of a type's layout.
pub use stabby::abi::report::TypeReport;

/// The report of [`EntryFn`]: what the host checks the library's against.
pub fn entry_report() -> &'static TypeReport {
    <EntryFn as stabby::abi::IStable>::REPORT
}

/// Whether `report` (the host's expectation) matches [`EntryFn`] as this
/// crate lays it out; the `<symbol>_stabbied_v3` export answers with it.
pub fn entry_compatible(report: &TypeReport) -> bool {
    entry_report().is_compatible(report)
}
