//! The local runner for plugin authors (`vaultaris plugin run`): loads a
//! component with its manifest into a private runtime, calls one function
//! with a JSON input under the same limits production enforces, and reports
//! the output, fuel used, peak memory and time, cold (first call, including
//! instantiation) and warm (the mean of the repeated calls).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;
use wasmtime::component::Val;

use super::activation::{OutputSize, PluginInstance};
use super::bindings::v0_1_0::caps::vaultaris::plugin::types as wit;
use super::dynamic::{to_json, to_val};
use super::limits::LimitOverrides;
use super::manifest::{Category, PluginManifest};
use super::runtime::{ActivationSpec, PluginRuntime};

/// What one run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The function's result (or the typed error).
    pub output: Value,
    /// Whether the call succeeded.
    pub ok: bool,
    /// Error code, when it failed.
    pub error: Option<String>,
    /// Fuel the first call used.
    pub fuel_used: u64,
    /// Peak linear memory, bytes.
    pub peak_memory_bytes: usize,
    /// First call, instantiation included, microseconds.
    pub cold_us: f64,
    /// Mean of the warm calls, microseconds (when repeated).
    pub warm_mean_us: Option<f64>,
    /// Warm calls made.
    pub warm_calls: u32,
    /// The limits applied.
    pub limits: super::limits::Limits,
}

impl OutputSize for Value {
    fn output_size(&self) -> usize {
        self.to_string().len()
    }
}

/// The options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Category whose interface holds the function.
    pub category: Category,
    /// Function name (kebab-case), e.g. `customize`.
    pub function: String,
    /// The request argument (after the call-context).
    pub input: Value,
    /// The plugin's configuration.
    pub config: Value,
    /// Limit overrides (within the runner's maxima, the production defaults).
    pub limits: LimitOverrides,
    /// Warm calls after the first.
    pub repeat: u32,
}

async fn call_dynamic(
    inst: &mut PluginInstance,
    interface: String,
    function: String,
    input: Value,
    cx: wit::CallContext,
) -> wasmtime::Result<Result<Value, wit::PluginError>> {
    let inst = match inst {
        PluginInstance::Wasm(w) => w,
        PluginInstance::Native(_) => {
            return Err(wasmtime::format_err!(
                "the local runner calls WebAssembly components by name; test a native build \
                 with cargo test and the SDK's testing module"
            ));
        }
    };
    let iface = inst
        .instance
        .get_export_index(&mut inst.store, None, &interface)
        .ok_or_else(|| wasmtime::format_err!("the component does not export {interface}"))?;
    let fidx = inst
        .instance
        .get_export_index(&mut inst.store, Some(&iface), &function)
        .ok_or_else(|| wasmtime::format_err!("{interface} has no function {function}"))?;
    let func = inst
        .instance
        .get_func(&mut inst.store, fidx)
        .ok_or_else(|| wasmtime::format_err!("{function} is not a function"))?;
    let ty = func.ty(&inst.store);
    let params: Vec<_> = ty.params().map(|(_, t)| t).collect();
    if params.is_empty() {
        return Err(wasmtime::format_err!(
            "{function} does not take a call-context"
        ));
    }
    let cx_val = Val::Record(vec![
        ("tenant".into(), Val::String(cx.tenant)),
        ("plugin-id".into(), Val::String(cx.plugin_id)),
        ("request-id".into(), Val::String(cx.request_id)),
        ("now".into(), Val::S64(cx.now)),
        ("deadline".into(), Val::S64(cx.deadline)),
    ]);
    // One argument after the context: the input is that argument; several:
    // the input is an array of them.
    let mut args = vec![cx_val];
    match params.len() {
        1 => {}
        2 => args
            .push(to_val(&params[1], &input).map_err(|e| wasmtime::format_err!("input: {e:#}"))?),
        n => {
            let items = input
                .as_array()
                .filter(|a| a.len() == n - 1)
                .ok_or_else(|| {
                    wasmtime::format_err!("input: expected an array of {} arguments", n - 1)
                })?;
            for (t, v) in params[1..].iter().zip(items) {
                args.push(to_val(t, v).map_err(|e| wasmtime::format_err!("input: {e:#}"))?);
            }
        }
    }
    let mut results = vec![Val::Bool(false); ty.results().len()];
    func.call_async(&mut inst.store, &args, &mut results)
        .await?;
    let out = results.first().map(to_json).unwrap_or(Value::Null);
    Ok(Ok(out))
}

type DynamicCall<'a> = std::pin::Pin<
    Box<dyn Future<Output = wasmtime::Result<Result<Value, wit::PluginError>>> + Send + 'a>,
>;

/// Pins a closure to the higher-ranked signature `invoke` expects.
fn higher_ranked<F>(f: F) -> F
where
    F: for<'a> FnOnce(&'a mut PluginInstance, wit::CallContext) -> DynamicCall<'a>,
{
    f
}

/// Runs a plugin locally; see the module documentation.
pub async fn run(
    manifest: PluginManifest,
    component: Vec<u8>,
    opts: RunOptions,
) -> anyhow::Result<RunReport> {
    if !manifest.categories.contains(&opts.category) {
        bail!("the manifest does not declare {}", opts.category);
    }
    // A private per-user cache: compiled code loaded from it runs natively,
    // so it must not live in a shared, world-writable directory.
    let cache = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/vaultaris/plugin-cache");
    std::fs::create_dir_all(&cache)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700))?;
    }
    let settings = super::runtime::RuntimeSettings {
        maxima: super::limits::OPERATOR_MAXIMA,
        http_allowed_hosts: vec!["*".into()],
        // A plugin author's own machine: stand-ins on localhost are the
        // point (the server's default refuses private networks).
        http_allow_private_networks: true,
        files_root: Some(std::env::temp_dir().join("vaultaris-plugin-runner-files")),
        warm_instances: 1,
        breaker_threshold: u32::MAX,
        breaker_cooldown: Duration::from_secs(1),
        cache_dir: cache,
        // The author's own library on the author's own machine.
        allow_native: true,
        native_calls: Default::default(),
        native_allowed_sha256: Vec::new(),
    };
    let rt = PluginRuntime::new(settings, Arc::new(super::kv::MemoryKv::default()))?;
    let sha = super::super::extensions::install::sha256_hex(&component);
    let loaded = rt
        .prepare(manifest.clone(), sha, Arc::new(component))
        .await
        .context("loading the component")?;
    rt.install(loaded);
    let tenant = Uuid::nil();
    rt.set_tenant(
        tenant,
        vec![ActivationSpec {
            plugin_id: manifest.id.clone(),
            enabled: true,
            config: opts.config.clone(),
            limits: opts.limits,
            failure_mode: None,
            position: 0,
        }],
    );
    let act = rt
        .active(tenant, opts.category)
        .into_iter()
        .next()
        .context("activation missing")?;
    let interface = format!("vaultaris:plugin/{}@{}", opts.category, manifest.contract);
    let input_size = opts.input.to_string().len();
    let call = |input: Value| {
        let interface = interface.clone();
        let function = opts.function.clone();
        higher_ranked(move |inst, cx| Box::pin(call_dynamic(inst, interface, function, input, cx)))
    };
    let (first, m) = act
        .invoke(
            rt.engine(),
            opts.category,
            "local-run",
            input_size,
            call(opts.input.clone()),
        )
        .await;
    let mut warm = Duration::ZERO;
    let mut warm_calls = 0;
    if first.is_ok() {
        for _ in 0..opts.repeat {
            let (r, wm) = act
                .invoke(
                    rt.engine(),
                    opts.category,
                    "local-run",
                    input_size,
                    call(opts.input.clone()),
                )
                .await;
            if r.is_err() {
                break;
            }
            warm += wm.elapsed;
            warm_calls += 1;
        }
    }
    let (output, ok, error) = match first {
        Ok(v) => (v, true, None),
        Err(e) => (
            Value::from(e.to_string()),
            false,
            Some(e.code().to_string()),
        ),
    };
    Ok(RunReport {
        output,
        ok,
        error,
        fuel_used: m.fuel_used,
        peak_memory_bytes: m.peak_memory,
        cold_us: m.elapsed.as_secs_f64() * 1e6,
        warm_mean_us: (warm_calls > 0).then(|| warm.as_secs_f64() * 1e6 / f64::from(warm_calls)),
        warm_calls,
        limits: act.limits_for(opts.category),
    })
}
