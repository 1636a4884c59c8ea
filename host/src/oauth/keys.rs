//! `KeyRing`: each tenant's signing keys, opened once and cached.
//!
//! Security decision: private keys are stored sealed (AES-256-GCM under the
//! master key, bound to the kid) and opened only into this cache. The cache
//! lives 60 seconds so a rotation on another node is picked up promptly.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::crypto::sealing::MasterKey;
use crate::crypto::signing::Ed25519Key;
use crate::model::SigningKeyRecord;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

const CACHE_TTL: Duration = Duration::from_secs(60);

/// A tenant's usable keys.
#[derive(Debug)]
pub struct TenantKeys {
    /// The key that signs new tokens.
    pub signing: Ed25519Key,
    /// Public JWKs of every key that still verifies.
    pub jwks: Vec<serde_json::Value>,
    loaded: Instant,
}

/// Errors loading keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The tenant has no active key.
    #[error("tenant has no active signing key")]
    NoActiveKey,
    /// A sealed key could not be opened (wrong master key?).
    #[error("signing key {0} cannot be opened with this master key")]
    Sealed(String),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Cache of per-tenant keys.
#[derive(Clone, Debug)]
pub struct KeyRing {
    store: Store,
    master: MasterKey,
    cache: Arc<RwLock<HashMap<Uuid, Arc<TenantKeys>>>>,
}

impl KeyRing {
    /// An empty ring over `store`.
    pub fn new(store: Store, master: MasterKey) -> Self {
        Self {
            store,
            master,
            cache: Arc::default(),
        }
    }

    /// Generates a new Ed25519 key record for `tenant_id`, sealed.
    pub fn new_key_record(&self, tenant_id: Uuid) -> SigningKeyRecord {
        let key = Ed25519Key::generate();
        SigningKeyRecord {
            kid: key.kid.clone(),
            tenant_id,
            algorithm: "EdDSA".into(),
            public_jwk: key.public_jwk(),
            private_key_enc: self.master.seal(&key.secret_bytes(), &key.kid),
            status: "active".into(),
            created_at: Timestamp::now(),
        }
    }

    /// The tenant's keys, from cache or freshly opened.
    pub async fn get(&self, tenant_id: Uuid) -> Result<Arc<TenantKeys>, KeyError> {
        if let Some(k) = self.cache.read().expect("key cache lock").get(&tenant_id)
            && k.loaded.elapsed() < CACHE_TTL
        {
            return Ok(k.clone());
        }
        let records = self.store.signing_keys(tenant_id).await?;
        let active = records
            .iter()
            .find(|r| r.status == "active")
            .ok_or(KeyError::NoActiveKey)?;
        let secret = self
            .master
            .open(&active.private_key_enc, &active.kid)
            .map_err(|_| KeyError::Sealed(active.kid.clone()))?;
        let signing = Ed25519Key::from_bytes(active.kid.clone(), &secret)
            .ok_or_else(|| KeyError::Sealed(active.kid.clone()))?;
        let keys = Arc::new(TenantKeys {
            signing,
            jwks: records.iter().map(|r| r.public_jwk.clone()).collect(),
            loaded: Instant::now(),
        });
        self.cache
            .write()
            .expect("key cache lock")
            .insert(tenant_id, keys.clone());
        Ok(keys)
    }
}
