//! `fixed-window-limiter` (rate-limiter): fixed-window counting with one
//! atomic key-value `increment` per request.
//!
//! ```json
//! { "scopes": { "token": { "limit": 60, "window_ms": 60000 },
//!               "login": { "limit": 10, "window_ms": 300000, "key": "identifier" } },
//!   "default": { "limit": 300, "window_ms": 60000 } }
//! ```
//!
//! For a request in scope `s` counted by key `k` at time `now`, the window
//! starts at `now - now % window_ms`; the counter
//! `fw:{s}:{k}:{window start}` is incremented by the request's cost and
//! created with a TTL that ends with the window. The request is allowed
//! while the counter is at most `limit`; `remaining` is what is left of the
//! limit and `reset_after` the time until the window ends. Refused requests
//! count too. Keys longer than 256 bytes are replaced by a hash, so the
//! store's 512-byte key limit is never hit.

use std::collections::BTreeMap;

use serde::Deserialize;
use vaultaris_plugin_sdk::host::{kv, log};
use vaultaris_plugin_sdk::rate_limit::{RateLimitDecision, RateLimitRequest, RateLimiter};
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KeyBy {
    #[default]
    Host,
    Ip,
    Client,
    Identifier,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit {
    limit: u32,
    window_ms: u64,
    #[serde(default)]
    key: KeyBy,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OnStoreError {
    #[default]
    Error,
    Allow,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    scopes: BTreeMap<String, Limit>,
    #[serde(default)]
    default: Option<Limit>,
    #[serde(default)]
    on_store_error: OnStoreError,
}

/// The plugin.
pub struct FixedWindowLimiter {
    scopes: BTreeMap<String, Limit>,
    default: Option<Limit>,
    on_store_error: OnStoreError,
}

fn check_limit(scope: &str, l: &Limit) -> Result<(), PluginError> {
    if l.limit == 0 || l.window_ms < 1000 {
        return Err(PluginError::misconfigured(
            "invalid_limit",
            format!("scope `{scope}`: limit must be at least 1 and window_ms at least 1000"),
        ));
    }
    Ok(())
}

impl Plugin for FixedWindowLimiter {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        for (scope, limit) in &config.scopes {
            check_limit(scope, limit)?;
        }
        if let Some(d) = &config.default {
            check_limit("default", d)?;
        }
        Ok(FixedWindowLimiter {
            scopes: config.scopes,
            default: config.default,
            on_store_error: config.on_store_error,
        })
    }
}

/// FNV-1a, 64 bits: shortens over-long keys (a collision only merges two
/// keys' counts).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn shorten(part: &str) -> String {
    if part.len() <= 256 {
        part.to_owned()
    } else {
        format!("h{:016x}{:08x}", fnv1a(part), part.len())
    }
}

/// The counter's key for a request at `window_start`.
pub fn counter_key(scope: &str, key: &str, window_start: i64) -> String {
    format!("fw:{}:{}:{window_start}", shorten(scope), shorten(key))
}

impl FixedWindowLimiter {
    fn limit_for(&self, scope: &str) -> Option<&Limit> {
        self.scopes.get(scope).or(self.default.as_ref())
    }
}

impl RateLimiter for FixedWindowLimiter {
    fn check(
        &self,
        ctx: &CallContext,
        request: RateLimitRequest,
    ) -> Result<RateLimitDecision, PluginError> {
        let Some(limit) = self.limit_for(&request.scope) else {
            // Not limited by this plugin: the most permissive answer.
            return Ok(RateLimitDecision {
                allowed: true,
                limit: u32::MAX,
                remaining: u32::MAX,
                reset_after: 0,
            });
        };
        let key = match limit.key {
            KeyBy::Host => request.key.as_str(),
            KeyBy::Ip => request.ip_address.as_str(),
            KeyBy::Client => request.client_id.as_deref().unwrap_or(&request.key),
            KeyBy::Identifier => request.identifier.as_deref().unwrap_or(&request.key),
        };
        let window = i64::try_from(limit.window_ms).unwrap_or(i64::MAX);
        let now = ctx.now.max(0);
        let window_start = now - now % window;
        let reset_after = u64::try_from(window_start + window - now)
            .unwrap_or(limit.window_ms)
            .max(1);
        let counter = counter_key(&request.scope, key, window_start);
        let count = match kv::increment(&counter, i64::from(request.cost), Some(reset_after)) {
            Ok(c) => c,
            Err(e) if self.on_store_error == OnStoreError::Allow => {
                log::warn(&format!(
                    "rate limit not enforced, key-value store failed: {e}"
                ));
                return Ok(RateLimitDecision {
                    allowed: true,
                    limit: limit.limit,
                    remaining: limit.limit,
                    reset_after,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let limit_i = i64::from(limit.limit);
        Ok(RateLimitDecision {
            allowed: count <= limit_i,
            limit: limit.limit,
            remaining: u32::try_from((limit_i - count).max(0)).unwrap_or(0),
            reset_after,
        })
    }
}

export_plugin!(FixedWindowLimiter: rate_limiter);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use vaultaris_plugin_sdk::testing::{MockHost, with_host};

    fn request(scope: &str, ip: &str, identifier: Option<&str>) -> RateLimitRequest {
        RateLimitRequest {
            scope: scope.into(),
            key: format!("ip:{ip}"),
            ip_address: ip.into(),
            client_id: Some("app".into()),
            identifier: identifier.map(Into::into),
            cost: 1,
        }
    }

    fn ctx(now: i64) -> CallContext {
        CallContext {
            now,
            ..CallContext::for_tests()
        }
    }

    fn limiter() -> FixedWindowLimiter {
        FixedWindowLimiter::new(json!({
            "scopes": {
                "token": {"limit": 3, "window_ms": 60000},
                "login": {"limit": 2, "window_ms": 300000, "key": "identifier"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<FixedWindowLimiter>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn counts_within_a_window_and_resets() {
        let host = Arc::new(MockHost::new().grant_kv().at(120_000));
        let p = limiter();
        let decisions: Vec<RateLimitDecision> = with_host(host.clone(), || {
            (0..4)
                .map(|i| {
                    p.check(
                        &ctx(120_000 + i * 1000),
                        request("token", "203.0.113.7", None),
                    )
                    .unwrap()
                })
                .collect()
        });
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false]);
        let remaining: Vec<u32> = decisions.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [2, 1, 0, 0]);
        assert_eq!(decisions[0].reset_after, 60_000);
        assert_eq!(decisions[3].reset_after, 57_000);
        assert_eq!(decisions[3].limit, 3);
        // another key has its own counter
        let d = with_host(host.clone(), || {
            p.check(&ctx(125_000), request("token", "198.51.100.1", None))
                .unwrap()
        });
        assert!(d.allowed);
        // the next window starts afresh, and the old counter has expired
        host.advance_ms(60_000);
        let d = with_host(host.clone(), || {
            p.check(&ctx(180_000), request("token", "203.0.113.7", None))
                .unwrap()
        });
        assert_eq!((d.allowed, d.remaining, d.reset_after), (true, 2, 60_000));
        assert_eq!(
            host.kv_keys(),
            vec!["fw:token:ip:203.0.113.7:180000".to_owned()]
        );
    }

    #[test]
    fn key_by_identifier_and_cost() {
        let host = Arc::new(MockHost::new().grant_kv());
        let p = limiter();
        let now = 1_700_000_000_000;
        with_host(host, || {
            // two IPs, same identifier: one counter
            assert!(
                p.check(&ctx(now), request("login", "203.0.113.7", Some("alice")))
                    .unwrap()
                    .allowed
            );
            assert!(
                p.check(&ctx(now), request("login", "198.51.100.1", Some("alice")))
                    .unwrap()
                    .allowed
            );
            assert!(
                !p.check(&ctx(now), request("login", "192.0.2.1", Some("alice")))
                    .unwrap()
                    .allowed
            );
            assert!(
                p.check(&ctx(now), request("login", "192.0.2.1", Some("bob")))
                    .unwrap()
                    .allowed
            );
            let mut heavy = request("token", "192.0.2.9", None);
            heavy.cost = 5;
            let d = p.check(&ctx(now), heavy).unwrap();
            assert_eq!((d.allowed, d.remaining), (false, 0));
        });
    }

    #[test]
    fn unlisted_scopes_and_default() {
        let host = Arc::new(MockHost::new().grant_kv());
        let p = limiter();
        let d = with_host(host.clone(), || {
            p.check(&ctx(0), request("other", "1.2.3.4", None)).unwrap()
        });
        assert!(d.allowed && d.limit == u32::MAX);
        assert!(host.kv_keys().is_empty(), "nothing counted");
        let p =
            FixedWindowLimiter::new(json!({"default": {"limit": 1, "window_ms": 1000}})).unwrap();
        with_host(host, || {
            assert!(
                p.check(&ctx(0), request("other", "1.2.3.4", None))
                    .unwrap()
                    .allowed
            );
            assert!(
                !p.check(&ctx(10), request("other", "1.2.3.4", None))
                    .unwrap()
                    .allowed
            );
        });
    }

    #[test]
    fn store_errors() {
        let denied = Arc::new(MockHost::new());
        let p = limiter();
        let e = with_host(denied.clone(), || {
            p.check(&ctx(0), request("token", "1.2.3.4", None))
        })
        .unwrap_err();
        assert_eq!(e.code(), "kv_denied");
        let lenient = FixedWindowLimiter::new(json!({"scopes": {"token": {"limit": 3, "window_ms": 60000}}, "on_store_error": "allow"}))
            .unwrap();
        let d = with_host(denied.clone(), || {
            lenient.check(&ctx(0), request("token", "1.2.3.4", None))
        })
        .unwrap();
        assert!(d.allowed);
        assert!(denied.logs()[0].1.contains("not enforced"));
    }

    #[test]
    fn long_keys_are_hashed() {
        let long = "x".repeat(1000);
        let k = counter_key("login", &long, 0);
        assert!(k.len() < 64, "{k}");
        assert_ne!(counter_key("login", &"y".repeat(1000), 0), k);
    }

    #[test]
    fn invalid_configuration() {
        assert_eq!(
            FixedWindowLimiter::new(json!({"scopes": {"t": {"limit": 0, "window_ms": 1000}}}))
                .err()
                .unwrap()
                .code(),
            "invalid_limit"
        );
        assert_eq!(
            FixedWindowLimiter::new(json!({"scopes": {"t": {"limit": 1, "window_ms": 10}}}))
                .err()
                .unwrap()
                .code(),
            "invalid_limit"
        );
        assert_eq!(
            FixedWindowLimiter::new(json!({"scopes": {"t": {"limit": 1}}}))
                .err()
                .unwrap()
                .code(),
            "invalid_config"
        );
    }
}
