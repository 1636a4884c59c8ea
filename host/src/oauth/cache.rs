//! Short-lived caches of what the token endpoint reads on every request:
//! tenants by slug, clients by `client_id`, and (when a jwt-customizer is
//! active) the subject attributes plugins receive.
//!
//! Security decision: entries live `TTL` at most, and every write this node
//! makes to a tenant, client or user clears that tenant's entries at once, so
//! on one node a disabled client or rotated secret takes effect immediately
//! and on a cluster within `TTL`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::model::{ClientWithSecret, Tenant};

const TTL: Duration = Duration::from_secs(5);

/// A client as the token endpoint needs it.
#[derive(Debug, Clone)]
pub struct CachedClient {
    /// The client and its secret hash.
    pub client: ClientWithSecret,
    /// Whether its service account (if any) is enabled.
    pub service_account_enabled: bool,
}

type Entries<K, V> = Arc<RwLock<HashMap<K, (Instant, V)>>>;

/// A user's attributes as plugins receive them.
pub type Attributes = Arc<Vec<(String, serde_json::Value)>>;

/// Tenant and client caches.
#[derive(Debug, Clone, Default)]
pub struct OAuthCache {
    tenants: Entries<String, Arc<Tenant>>,
    clients: Entries<(Uuid, String), Arc<CachedClient>>,
    attributes: Entries<(Uuid, Uuid), Attributes>,
}

fn get<K: std::hash::Hash + Eq, V: Clone>(e: &Entries<K, V>, k: &K) -> Option<V> {
    let map = e.read().expect("cache lock");
    map.get(k)
        .filter(|(at, _)| at.elapsed() < TTL)
        .map(|(_, v)| v.clone())
}

fn put<K: std::hash::Hash + Eq, V>(e: &Entries<K, V>, k: K, v: V) {
    let mut map = e.write().expect("cache lock");
    if map.len() > 10_000 {
        map.retain(|_, (at, _)| at.elapsed() < TTL);
    }
    map.insert(k, (Instant::now(), v));
}

impl OAuthCache {
    /// A tenant by slug.
    pub fn tenant(&self, slug: &str) -> Option<Arc<Tenant>> {
        get(&self.tenants, &slug.to_string())
    }

    /// Remembers a tenant.
    pub fn put_tenant(&self, t: Arc<Tenant>) {
        put(&self.tenants, t.slug.clone(), t);
    }

    /// A client by tenant and `client_id`.
    pub fn client(&self, tenant_id: Uuid, client_id: &str) -> Option<Arc<CachedClient>> {
        get(&self.clients, &(tenant_id, client_id.to_string()))
    }

    /// Remembers a client.
    pub fn put_client(&self, tenant_id: Uuid, c: Arc<CachedClient>) {
        put(
            &self.clients,
            (tenant_id, c.client.client.client_id.clone()),
            c,
        );
    }

    /// A user's attributes (roles, groups, permissions, profile).
    pub fn attributes(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Option<Arc<Vec<(String, serde_json::Value)>>> {
        get(&self.attributes, &(tenant_id, user_id))
    }

    /// Remembers a user's attributes.
    pub fn put_attributes(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        a: Arc<Vec<(String, serde_json::Value)>>,
    ) {
        put(&self.attributes, (tenant_id, user_id), a);
    }

    /// Forgets everything cached for `tenant_id` (after any write to it).
    pub fn invalidate_tenant(&self, tenant_id: Uuid) {
        self.tenants
            .write()
            .expect("cache lock")
            .retain(|_, (_, t)| t.id != tenant_id);
        self.clients
            .write()
            .expect("cache lock")
            .retain(|(t, _), _| *t != tenant_id);
        self.attributes
            .write()
            .expect("cache lock")
            .retain(|(t, _), _| *t != tenant_id);
    }
}
