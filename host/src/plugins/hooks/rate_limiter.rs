//! rate-limiter: plugins decide whether a request on the token or login
//! endpoint is within its limit. The strictest answer wins. Fails closed: a
//! limiter that cannot answer refuses the request (429 would lie about the
//! cause, so the endpoint answers 503).

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use uuid::Uuid;

use super::super::activation::OutputSize;
use super::super::bindings::v0_1_0::rate_limiter::exports::vaultaris::plugin::rate_limiter as api;
use super::super::manifest::Category;
use super::super::runtime::PluginRuntime;
use super::HookFailure;

/// What is being counted.
#[derive(Debug, Clone)]
pub struct RateLimitQuery<'a> {
    /// `token` or `login`.
    pub scope: &'a str,
    /// The host's default key.
    pub key: String,
    /// Caller IP.
    pub ip: &'a str,
    /// Client id, when known.
    pub client_id: Option<&'a str>,
    /// Username or email, when known.
    pub identifier: Option<&'a str>,
}

/// The combined decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The limit (smallest of the answers).
    pub limit: u32,
    /// Requests left (smallest).
    pub remaining: u32,
    /// Milliseconds until the window resets (largest when refused).
    pub reset_after_ms: u64,
}

impl OutputSize for api::RateLimitDecision {
    fn output_size(&self) -> usize {
        16
    }
}

impl PluginRuntime {
    /// Asks the tenant's rate limiters; `None` when it has none.
    pub async fn check_rate_limit(
        &self,
        tenant: Uuid,
        q: &RateLimitQuery<'_>,
    ) -> Result<Option<RateLimitDecision>, HookFailure> {
        let Some(plugins) = self.tenant(tenant) else {
            return Ok(None);
        };
        let limiters = plugins.of(Category::RateLimiter);
        if limiters.is_empty() {
            return Ok(None);
        }
        let request = api::RateLimitRequest {
            scope: q.scope.to_string(),
            key: q.key.clone(),
            ip_address: q.ip.to_string(),
            client_id: q.client_id.map(str::to_string),
            identifier: q.identifier.map(str::to_string),
            cost: 1,
        };
        let size = request.key.len() + request.ip_address.len() + 64;
        let mut combined: Option<RateLimitDecision> = None;
        for act in limiters {
            let req = request.clone();
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::RateLimiter,
                    &super::super::request_id::current(),
                    size,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call(native_fn::RATE_LIMITER_CHECK, &(&cx, &req))
                                        .await;
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(e) = &inst.exports.rate_limiter else {
                                return Err(wasmtime::format_err!("rate-limiter export missing"));
                            };
                            e.vaultaris_plugin_rate_limiter()
                                .call_check(&mut inst.store, &cx, &req)
                                .await
                        })
                    },
                )
                .await;
            match result {
                Ok(d) => {
                    let d = RateLimitDecision {
                        allowed: d.allowed,
                        limit: d.limit,
                        remaining: d.remaining.min(d.limit),
                        reset_after_ms: d.reset_after,
                    };
                    combined = Some(match combined {
                        None => d,
                        Some(c) => RateLimitDecision {
                            allowed: c.allowed && d.allowed,
                            limit: c.limit.min(d.limit),
                            remaining: c.remaining.min(d.remaining),
                            reset_after_ms: c.reset_after_ms.max(d.reset_after_ms),
                        },
                    });
                }
                Err(error) => {
                    let mode = act.failure_mode(Category::RateLimiter);
                    self.report_failure(act, Category::RateLimiter, &error, mode);
                    return Err(HookFailure {
                        plugin_id: act.context.plugin_id.clone(),
                        category: Category::RateLimiter,
                        error,
                    });
                }
            }
        }
        Ok(combined)
    }
}
