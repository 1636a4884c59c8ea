//! Category `rate-limiter`: decides whether a request may proceed under a
//! rate limit, with counters in the key-value store. See
//! `docs/rate-limiter.md`. Fails closed (503).

use std::marker::PhantomData;

use crate::bindings::rate_limiter as raw;
use crate::types::{CallContext, DurationMs, PluginError};

/// One request to be counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitRequest {
    /// Which limit is asked about, e.g. `token`, `login`.
    pub scope: String,
    /// The host's default key for the scope, e.g. `ip:203.0.113.7`.
    pub key: String,
    /// The client's IP address.
    pub ip_address: String,
    /// The OAuth client id, when known.
    pub client_id: Option<String>,
    /// The login identifier, for logins.
    pub identifier: Option<String>,
    /// Units this request costs (usually 1).
    pub cost: u32,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Units per window for this key (`ratelimit-limit`).
    pub limit: u32,
    /// Units left in the window after this request (`ratelimit-remaining`).
    pub remaining: u32,
    /// Time until the window resets (`ratelimit-reset`, `retry-after`).
    pub reset_after: DurationMs,
}

/// A rate-limiter plugin.
pub trait RateLimiter: crate::Plugin {
    /// Counts the request and decides. Not retried.
    fn check(
        &self,
        ctx: &CallContext,
        request: RateLimitRequest,
    ) -> Result<RateLimitDecision, PluginError>;
}

impl From<raw::RateLimitRequest> for RateLimitRequest {
    fn from(r: raw::RateLimitRequest) -> Self {
        RateLimitRequest {
            scope: r.scope,
            key: r.key,
            ip_address: r.ip_address,
            client_id: r.client_id,
            identifier: r.identifier,
            cost: r.cost,
        }
    }
}

impl From<RateLimitDecision> for raw::RateLimitDecision {
    fn from(d: RateLimitDecision) -> Self {
        raw::RateLimitDecision {
            allowed: d.allowed,
            limit: d.limit,
            remaining: d.remaining,
            reset_after: d.reset_after,
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: RateLimiter> raw::Guest for Export<T> {
    fn check(
        ctx: raw::CallContext,
        request: raw::RateLimitRequest,
    ) -> Result<raw::RateLimitDecision, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.check(&ctx.into(), request.into())?.into())
    }
}
