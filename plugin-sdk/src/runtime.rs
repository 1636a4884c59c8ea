//! The per-instance plugin object behind the WebAssembly exports.
//!
//! A WebAssembly instance serves exactly one (tenant, plugin) activation and
//! its configuration never changes during its life, so the glue builds the
//! plugin once, on the first call, from `config::get-all`, and keeps it for
//! the life of the instance (leaked into a `'static`, which the instance's
//! teardown reclaims). A failed construction is not cached: the call fails
//! with the error `Plugin::new` returned, and the next call tries again.

use std::any::Any;
use std::cell::Cell;

use crate::{Plugin, PluginError};

thread_local! {
    // WebAssembly components are single-threaded: this is one slot per
    // instance. (On native targets it is one per thread, which only unit
    // tests of the glue ever see; the native loader keeps its own
    // per-tenant instances.)
    static INSTANCE: Cell<Option<&'static (dyn Any + 'static)>> = const { Cell::new(None) };
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    // Native builds: the plugin slot of the instance whose call is running
    // on this thread (set by the native glue for the length of one call).
    static NATIVE_SLOT: Cell<*mut Option<Box<dyn Any>>> = const { Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` with `slot` as this thread's plugin slot (native builds: one
/// slot per instance, so one process holds many tenants' plugin objects).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn with_native_slot<R>(slot: &mut Option<Box<dyn Any>>, f: impl FnOnce() -> R) -> R {
    struct Restore(*mut Option<Box<dyn Any>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            NATIVE_SLOT.with(|s| s.set(self.0));
        }
    }
    let previous = NATIVE_SLOT.with(|s| s.replace(slot as *mut _));
    let _restore = Restore(previous);
    f()
}

/// Builds the plugin from the configuration the host gives.
fn build<T: Plugin>() -> Result<T, PluginError> {
    let text = crate::host::config::get_all();
    let config: serde_json::Value = text.value().map_err(|e| {
        PluginError::misconfigured(
            "invalid_config",
            format!("the host's configuration is not valid JSON: {e}"),
        )
    })?;
    T::new(config)
}

fn type_mismatch() -> PluginError {
    PluginError::internal(
        "plugin_type_mismatch",
        "two different plugin types were exported from one component",
    )
}

/// Returns the instance's plugin object, building it from the tenant's
/// configuration on the first call.
pub(crate) fn instance<T: Plugin>() -> Result<&'static T, PluginError> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let slot = NATIVE_SLOT.with(Cell::get);
        if !slot.is_null() {
            // SAFETY: `with_native_slot` set the pointer from a `&mut` to
            // the instance's slot that outlives the call, and clears it when
            // the call ends; the instance serves one call at a time, so
            // nothing else touches the slot meanwhile. The reference handed
            // out is used only inside the glue function that asked for it
            // (every `Guest` function returns owned values), so it never
            // outlives the slot, though its type says `'static`.
            let slot = unsafe { &mut *slot };
            if slot.is_none() {
                *slot = Some(Box::new(build::<T>()?));
            }
            let plugin = slot
                .as_deref()
                .and_then(|any| any.downcast_ref::<T>())
                .ok_or_else(type_mismatch)?;
            // SAFETY: see above.
            return Ok(unsafe { &*(plugin as *const T) });
        }
    }
    if let Some(any) = INSTANCE.with(Cell::get) {
        return any.downcast_ref::<T>().ok_or_else(type_mismatch);
    }
    let plugin: &'static T = Box::leak(Box::new(build::<T>()?));
    INSTANCE.with(|slot| slot.set(Some(plugin)));
    Ok(plugin)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::host::{HostCapabilities, with_native_host};
    use crate::types::Json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    struct Counter(u64);
    impl Plugin for Counter {
        fn new(config: serde_json::Value) -> Result<Self, PluginError> {
            BUILT.fetch_add(1, Ordering::SeqCst);
            config["n"]
                .as_u64()
                .map(Counter)
                .ok_or_else(|| PluginError::misconfigured("missing_n", "n is required"))
        }
    }

    struct Config(&'static str);
    impl HostCapabilities for Config {
        fn config_get_all(&self) -> Json {
            Json::from_raw(self.0)
        }
    }

    #[test]
    fn builds_once_and_does_not_cache_failures() {
        std::thread::spawn(|| {
            let err = with_native_host(Arc::new(Config("{}")), instance::<Counter>).err();
            assert_eq!(err.unwrap().code(), "missing_n");
            let err = with_native_host(Arc::new(Config("{")), instance::<Counter>).err();
            assert_eq!(err.unwrap().code(), "invalid_config");
            let before = BUILT.load(Ordering::SeqCst);
            let a = with_native_host(Arc::new(Config(r#"{"n":3}"#)), instance::<Counter>);
            assert_eq!(a.unwrap().0, 3);
            let b = with_native_host(Arc::new(Config(r#"{"n":4}"#)), instance::<Counter>);
            assert_eq!(b.unwrap().0, 3, "kept for the life of the instance");
            assert_eq!(BUILT.load(Ordering::SeqCst), before + 1);
        })
        .join()
        .unwrap();
    }
}
