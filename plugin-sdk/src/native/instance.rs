//! The factory and instances behind a native library's entry point.

use std::any::Any;
use std::cell::Cell;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::Once;

use stabby::slice::Slice;
use stabby::string::String as AbiString;
use stabby::vec::Vec as AbiVec;

use super::abi::{
    ABI_VERSION, CallOutcome, FactoryAbi, FactoryHandle, HostHandle, InstanceAbi, InstanceHandle,
    NativeManifest,
};
use super::bridge::AbiHost;
use crate::host::HostCapabilities;
use crate::{CONTRACT_VERSION, Category};

/// The chained dispatchers of the categories a plugin exports: `None` when
/// no exported category has `function`.
pub type Dispatch = fn(function: u32, input: &[u8]) -> Option<Result<Vec<u8>, String>>;

thread_local! {
    // Where the last panic inside a plugin call on this thread happened
    // (`file:line`, truncated): plain bytes, so the thread-local has no
    // destructor (one would keep the library mapped until the thread ends).
    static PANIC_AT: Cell<([u8; 160], usize)> = const { Cell::new(([0; 160], 0)) };
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Makes panics inside plugin calls quiet: the host reports them (message
/// and location) as the call's failure, logged, counted and audited, so the
/// library's own default hook does not also print a backtrace to the
/// server's stderr. Panics outside calls keep the default hook.
fn quiet_panics_in_calls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CALL.with(Cell::get) {
                return default(info);
            }
            let mut buf = [0u8; 160];
            let len = match info.location() {
                Some(l) => {
                    let mut w = &mut buf[..];
                    let _ = write!(w, "{}:{}", l.file(), l.line());
                    160 - w.len()
                }
                None => 0,
            };
            PANIC_AT.with(|p| p.set((buf, len)));
        }));
    });
}

/// The factory `export_plugin!` hands out from the entry point.
struct Factory {
    id: &'static str,
    version: &'static str,
    categories: u32,
    dispatch: Dispatch,
}

/// Builds the entry point's factory (called by `export_plugin!`).
/// `crate_name` and `version` are the plugin crate's `CARGO_PKG_NAME` and
/// `CARGO_PKG_VERSION`; the id is the crate name without a
/// `vaultaris-plugin-` prefix.
#[doc(hidden)]
pub fn factory(
    crate_name: &'static str,
    version: &'static str,
    categories: &'static [Category],
    dispatch: Dispatch,
) -> FactoryHandle {
    quiet_panics_in_calls();
    let bits = categories.iter().fold(0u32, |acc, c| {
        let i = Category::ALL.iter().position(|x| x == c).unwrap_or(0);
        acc | (1 << i)
    });
    stabby::boxed::Box::new(Factory {
        id: crate_name
            .strip_prefix("vaultaris-plugin-")
            .unwrap_or(crate_name),
        version,
        categories: bits,
        dispatch,
    })
    .into()
}

impl FactoryAbi for Factory {
    extern "C" fn manifest(&self) -> NativeManifest {
        NativeManifest {
            abi_version: ABI_VERSION,
            flags: if cfg!(panic = "unwind") {
                super::abi::FLAG_PANIC_UNWIND
            } else {
                0
            },
            categories: self.categories,
            id: self.id.into(),
            version: self.version.into(),
            contract: CONTRACT_VERSION.into(),
            sdk_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    extern "C" fn create(&self, host: HostHandle) -> InstanceHandle {
        stabby::boxed::Box::new(Instance {
            plugin: None,
            host: Arc::new(AbiHost::new(host)),
            dispatch: self.dispatch,
        })
        .into()
    }
}

/// One instance: the plugin object (built on the first call, like a
/// WebAssembly instance builds it) and the capabilities of its activation.
struct Instance {
    plugin: Option<Box<dyn Any>>,
    host: Arc<AbiHost>,
    dispatch: Dispatch,
}

// SAFETY: `export_plugin!` asserts that the plugin type is `Send`, and the
// plugin object is the only field that is not `Send` by its type
// (`Box<dyn Any>`). The host calls an instance from one thread at a time
// (`call` takes `&mut self`).
unsafe impl Send for Instance {}

impl Drop for Instance {
    fn drop(&mut self) {
        // The host drops instances from its own threads: a plugin whose
        // `Drop` panics must not unwind through the ABI's drop function.
        let plugin = self.plugin.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(plugin)));
    }
}

impl InstanceAbi for Instance {
    extern "C" fn call<'a>(&'a mut self, function: u32, input: Slice<'a, u8>) -> CallOutcome {
        let host: Arc<dyn HostCapabilities> = self.host.clone();
        let dispatch = self.dispatch;
        let slot = &mut self.plugin;
        // Security decision: nothing unwinds into the host. A panic becomes
        // an error the host treats like a WebAssembly trap (the instance is
        // discarded, the failure policy applies).
        let outer = IN_CALL.with(|c| c.replace(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            crate::host::with_native_host(host, || {
                crate::runtime::with_native_slot(slot, || dispatch(function, &input))
            })
        }));
        IN_CALL.with(|c| c.set(outer));
        match outcome {
            Ok(Some(Ok(bytes))) => stabby::result::Result::Ok(AbiVec::from(bytes.as_slice())),
            Ok(Some(Err(e))) => stabby::result::Result::Err(AbiString::from(e.as_str())),
            Ok(None) => stabby::result::Result::Err(AbiString::from(
                format!("function {function:#06x} is not exported by this plugin").as_str(),
            )),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string payload".to_owned());
                let (buf, len) = PANIC_AT.with(|p| p.replace(([0; 160], 0)));
                let at = String::from_utf8_lossy(&buf[..len]).into_owned();
                let text = if at.is_empty() {
                    format!("panic: {what}")
                } else {
                    format!("panic at {at}: {what}")
                };
                stabby::result::Result::Err(AbiString::from(text.as_str()))
            }
        }
    }
}
