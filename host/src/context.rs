//! `Ctx`: the explicit state every domain operation receives.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::password::PasswordHasherPool;
use crate::crypto::sealing::MasterKey;
use crate::oauth::cache::OAuthCache;
use crate::oauth::keys::KeyRing;
use crate::oauth::replay::ReplayCache;
use crate::store::Store;

/// Shared services; cheap to clone.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Configuration.
    pub config: Arc<Config>,
    /// Persistence.
    pub store: Store,
    /// Password hashing with bounded concurrency.
    pub passwords: PasswordHasherPool,
    /// Per-tenant signing keys, cached.
    pub keys: KeyRing,
    /// The instance master key (sealing login-flow state, deriving MAC keys).
    pub master: MasterKey,
    /// Tenants and clients the OAuth endpoints read on every request.
    pub cache: OAuthCache,
    /// One-time identifiers already used (DPoP proofs, client assertions).
    pub replay: ReplayCache,
}

impl Ctx {
    /// Builds the context.
    pub fn new(config: Config, store: Store, master_key: MasterKey) -> Self {
        let passwords = PasswordHasherPool::new(config.password_hash_concurrency);
        let keys = KeyRing::new(store.clone(), master_key.clone());
        Self {
            config: Arc::new(config),
            store,
            passwords,
            keys,
            master: master_key,
            cache: OAuthCache::default(),
            replay: ReplayCache::default(),
        }
    }
}
