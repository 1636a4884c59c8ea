//! `ReplayCache`: one-time identifiers (DPoP proof `jti`s, client assertion
//! `jti`s) remembered until they could no longer be accepted anyway.
//!
//! Security decision: with `REDIS_URL` set, the identifiers live in Redis
//! (`SET key NX EXAT expiry`), so a proof used at one node is refused at
//! every other node behind the same load balancer. Without it they live in
//! this process only — right for a single node (the default), and a cluster
//! without Redis should turn on `settings.dpop_nonce_required`. When Redis
//! cannot be reached, proofs are refused (fail closed), never accepted
//! unchecked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Upper bound on identifiers remembered in memory; past it, new ones are
/// refused rather than letting memory grow without bound under a flood.
const CAPACITY: usize = 1_000_000;

/// Why an identifier could not be checked.
#[derive(Debug, thiserror::Error)]
#[error("the replay cache is unavailable: {0}")]
pub struct ReplayCacheUnavailable(String);

/// Where identifiers are remembered.
#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<HashMap<String, i64>>>),
    Redis(redis::aio::ConnectionManager),
}

/// Remembers identifiers until their expiry (unix seconds).
#[derive(Clone)]
pub struct ReplayCache {
    backend: Backend,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.backend {
            Backend::Memory(_) => f.write_str("ReplayCache(memory)"),
            Backend::Redis(_) => f.write_str("ReplayCache(redis)"),
        }
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self {
            backend: Backend::Memory(Arc::default()),
        }
    }
}

impl ReplayCache {
    /// A cache shared through Redis at `url`.
    pub async fn redis(url: &str) -> Result<Self, ReplayCacheUnavailable> {
        let client = redis::Client::open(url).map_err(|e| ReplayCacheUnavailable(e.to_string()))?;
        let manager = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| ReplayCacheUnavailable(e.to_string()))?;
        Ok(Self {
            backend: Backend::Redis(manager),
        })
    }

    /// Records `key` until `expires_at`; `Ok(false)` when it was already
    /// seen (a replay) or the in-memory cache is full of live entries.
    pub async fn first_use(
        &self,
        key: String,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, ReplayCacheUnavailable> {
        match &self.backend {
            Backend::Memory(seen) => Ok(remember(seen, key, expires_at, now)),
            Backend::Redis(conn) => {
                let mut conn = conn.clone();
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("vaultaris:replay:{key}"))
                    .arg(1)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(expires_at.max(now + 1))
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| ReplayCacheUnavailable(e.to_string()))?;
                Ok(set.is_some())
            }
        }
    }
}

fn remember(seen: &Mutex<HashMap<String, i64>>, key: String, expires_at: i64, now: i64) -> bool {
    let mut seen = seen.lock().expect("replay cache lock");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_accepted_once_until_it_expires() {
        let c = ReplayCache::default();
        assert!(c.first_use("a".into(), 100, 0).await.unwrap());
        assert!(!c.first_use("a".into(), 100, 50).await.unwrap());
        assert!(c.first_use("a".into(), 200, 101).await.unwrap());
        assert!(c.first_use("b".into(), 100, 50).await.unwrap());
    }
}
