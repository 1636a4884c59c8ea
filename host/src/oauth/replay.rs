//! `ReplayCache`: one-time identifiers (DPoP proof `jti`s, client assertion
//! `jti`s) remembered until they could no longer be accepted anyway.
//!
//! Security decision: the cache is per process. Behind a load balancer each
//! node keeps its own, so a proof replayed to a *different* node within its
//! short acceptance window is not caught; DPoP nonces (per-tenant setting)
//! close that gap, and a shared Redis cache is the multi-node follow-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Remembers identifiers until their expiry (unix seconds).
#[derive(Debug, Clone, Default)]
pub struct ReplayCache {
    seen: Arc<Mutex<HashMap<String, i64>>>,
}

/// Upper bound on remembered identifiers; past it, new ones are refused
/// rather than letting memory grow without bound under a flood.
const CAPACITY: usize = 1_000_000;

impl ReplayCache {
    /// Records `key` until `expires_at`; `false` when it was already seen
    /// (a replay) or the cache is full of live entries.
    pub fn first_use(&self, key: String, expires_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().expect("replay cache lock");
        if seen.len() >= CAPACITY / 2 {
            seen.retain(|_, exp| *exp > now);
        }
        if seen.len() >= CAPACITY {
            return false;
        }
        match seen.get(&key) {
            Some(exp) if *exp > now => false,
            _ => {
                seen.insert(key, expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_once_until_it_expires() {
        let c = ReplayCache::default();
        assert!(c.first_use("a".into(), 100, 0));
        assert!(!c.first_use("a".into(), 100, 50));
        assert!(c.first_use("a".into(), 200, 101));
        assert!(c.first_use("b".into(), 100, 50));
    }
}
