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

/// Returns the instance's plugin object, building it from the tenant's
/// configuration on the first call.
pub(crate) fn instance<T: Plugin>() -> Result<&'static T, PluginError> {
    if let Some(any) = INSTANCE.with(Cell::get) {
        return any.downcast_ref::<T>().ok_or_else(|| {
            PluginError::internal(
                "plugin_type_mismatch",
                "two different plugin types were exported from one component",
            )
        });
    }
    let text = crate::host::config::get_all();
    let config: serde_json::Value = text.value().map_err(|e| {
        PluginError::misconfigured(
            "invalid_config",
            format!("the host's configuration is not valid JSON: {e}"),
        )
    })?;
    let plugin: &'static T = Box::leak(Box::new(T::new(config)?));
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
