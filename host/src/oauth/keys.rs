//! `KeyRing`: each tenant's signing keys, opened once and cached; key
//! listing and rotation for the admin API.
//!
//! A tenant holds one active key per algorithm — EdDSA (Ed25519, signs
//! access tokens), ES256 and RS256 (ID tokens, by client choice) — plus the
//! retiring keys that still verify. A tenant lacking an active key of some
//! algorithm (tenant provisioning makes the Ed25519 key; older tenants have
//! only that one) gets one on first use (`KeyRing::get`). That completes
//! provisioning and is not audited; rotation is.
//!
//! Security decisions:
//! - Private keys are stored encrypted and opened only into this cache; a
//!   key whose opened secret does not match its kid is refused. A tenant
//!   without an encryption-provider plugin keeps the built-in sealing
//!   (AES-256-GCM under the master key, bound to the kid); a tenant with
//!   one has new keys encrypted by the plugin (BYOK / KMS), bound to
//!   (tenant, `signing_keys`, `private_key_enc`, kid) — see
//!   `crypto::field_encryption`. Reads follow the stored format, so keys
//!   sealed before the provider was activated stay usable until
//!   re-encrypted (`reencrypt_keys`).
//! - Fail closed: a provider that cannot encrypt refuses the rotation; one
//!   that cannot decrypt makes the tenant's signing and verification answer
//!   503 (`temporarily_unavailable` on OAuth endpoints) — never a fallback,
//!   never a 500 — and only that tenant is affected. A stored key that
//!   fails authentication (tampered with, or copied from another row) is
//!   audited as `key.tamper_detected` (at most once a minute per key).
//! - One load per tenant at a time: requests arriving while a tenant's keys
//!   are being opened wait for that load instead of each calling the
//!   provider.
//! - Changing how keys are stored (rotation, re-encryption, re-wrapping
//!   before a provider is disabled) is serialised on this node by one
//!   maintenance lock, and every re-wrap is a compare-and-set in one
//!   audited transaction: all keys change or none does.
//! - The cache lives at most 60 seconds (less when a retiring key's window
//!   ends sooner), so a rotation on another node is picked up promptly and a
//!   retired key leaves the JWKS on time.
//! - Rotation keeps the old key verifying for the longest lifetime of any
//!   token it may have signed (see `rotation_overlap`), so rotating never
//!   invalidates a token that is still within its lifetime.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::event;
use crate::context::Ctx;
use crate::crypto::field_encryption::{
    self, Field, FieldCrypto, FieldError, PLUGIN_FORMAT_PREFIX, Stored,
};
use crate::crypto::sealing::MasterKey;
use crate::crypto::signing::{Ed25519Key, JwsSigningKey, KeyAlgorithm};
use crate::error::Error;
use crate::model::{Actor, SigningKeyRecord, Tenant};
use crate::plugins::PluginRuntime;
use crate::plugins::hooks::encryption_provider::EncryptionFailure;
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

const CACHE_TTL: Duration = Duration::from_secs(60);

/// A kid unknown to the cache triggers a reload at most this often per
/// tenant, so tokens naming random kids cannot turn into database load.
const UNKNOWN_KID_RELOAD: Duration = Duration::from_secs(5);

/// ID tokens live 3600 s unless the tenant says otherwise; the overlap is
/// never shorter than that.
const ID_TOKEN_LIFETIME_FLOOR: i64 = 3600;

/// Added to the overlap: other nodes may sign with the old key until their
/// cache expires (`CACHE_TTL`), and clocks drift (60 s).
const ROTATION_MARGIN: i64 = CACHE_TTL.as_secs() as i64 + 60;

/// A key that failed authentication is audited at most this often.
const TAMPER_AUDIT_PERIOD: Duration = Duration::from_secs(60);

/// JWK members that may appear in a published public key.
const PUBLIC_MEMBERS: &[&str] = &["kty", "crv", "x", "y", "n", "e", "kid", "use", "alg"];

/// A tenant's usable keys.
#[derive(Debug)]
pub struct TenantKeys {
    /// The active Ed25519 key (signs access tokens, header `alg: EdDSA`).
    pub signing: Ed25519Key,
    /// The active key of each algorithm, in `KeyAlgorithm::ALL` order.
    active: Vec<JwsSigningKey>,
    /// Public JWKs of every key that still verifies: active keys (EdDSA,
    /// ES256, RS256), then retiring keys, newest first.
    pub jwks: Vec<Value>,
    loaded: Instant,
    expires: Instant,
}

impl TenantKeys {
    /// The active key of `alg`.
    pub fn active(&self, alg: KeyAlgorithm) -> Option<&JwsSigningKey> {
        self.active.iter().find(|k| k.algorithm() == alg)
    }

    /// Signs `claims` as a compact JWS under header `alg` (`EdDSA`,
    /// `Ed25519`, `ES256` or `RS256`) with the matching active key.
    pub fn sign(&self, alg: &str, typ: &str, claims: &Value) -> Result<String, KeyError> {
        let key = KeyAlgorithm::for_header_alg(alg)
            .and_then(|a| self.active(a))
            .ok_or_else(|| KeyError::UnsupportedAlgorithm(alg.to_string()))?;
        key.sign_jwt(alg, typ, claims)
            .map_err(|e| KeyError::Crypto(e.to_string()))
    }

    /// Whether a key with this kid is in the JWKS.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.jwks
            .iter()
            .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
    }
}

/// Errors loading or using keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The tenant has no active key (of some algorithm) and none could be made.
    #[error("tenant has no active signing key")]
    NoActiveKey,
    /// A stored key failed authentication or does not match its kid:
    /// tampered with, copied from another row, or sealed under another
    /// master key.
    #[error("signing key {0} cannot be opened: it failed authentication")]
    Sealed(String),
    /// The tenant's encryption provider could not encrypt or decrypt a key.
    #[error("signing key {kid}: {error}")]
    Encryption {
        /// The key.
        kid: String,
        /// What failed.
        error: FieldError,
    },
    /// No key signs under this JWS algorithm.
    #[error("unsupported signing algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// Generating or using a key failed.
    #[error("signing key failure: {0}")]
    Crypto(String),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KeyError {
    /// Whether the tenant's keys cannot be used right now (a key cannot be
    /// opened, or its provider failed): the request answers 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyError::Sealed(_) | KeyError::Encryption { .. })
    }

    /// The error an administrative change (re-encryption, disabling a
    /// provider) answers: 503 when trying again may help, 409 when an
    /// administrator must act first (a provider refusing, a key failing
    /// authentication, a provider that is not active).
    pub fn for_admin(self) -> Error {
        match self {
            KeyError::Encryption { kid, error } if error.is_transient() => {
                Error::Unavailable(format!("signing key {kid}: {error}"))
            }
            KeyError::Encryption {
                kid,
                error: FieldError::Provider(EncryptionFailure::NotActive { plugin_id }),
            } => Error::Conflict(format!(
                "signing key {kid} is encrypted by plugin {plugin_id}, which is not an active \
                 encryption-provider of this tenant on this node (disabled, or it failed to \
                 load); enable it first; nothing was changed"
            )),
            e @ (KeyError::Encryption { .. } | KeyError::Sealed(_)) => {
                Error::Conflict(format!("{e}; nothing was changed"))
            }
            other => Error::from(other),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => Error::from(s),
            e if e.is_unavailable() => Error::Unavailable(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Proof that the caller holds the key ring's maintenance lock (see
/// `KeyRing::maintenance`).
pub struct MaintenanceGuard(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

impl std::fmt::Debug for MaintenanceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaintenanceGuard")
    }
}

/// Cache of per-tenant keys.
#[derive(Clone, Debug)]
pub struct KeyRing {
    store: Store,
    fields: FieldCrypto,
    cache: Arc<RwLock<HashMap<Uuid, Arc<TenantKeys>>>>,
    /// One load per tenant at a time (see the module documentation).
    loading: Arc<std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>,
    /// Serialises changes to how keys are stored on this node: creating
    /// missing keys (a burst of first requests generates one RSA key, not
    /// one per request), rotation, re-encryption, and re-wrapping before a
    /// provider is disabled (so no key gets sealed by a provider that is
    /// being disabled).
    maintenance: Arc<tokio::sync::Mutex<()>>,
    /// When each (tenant, kid) failing authentication was last audited.
    tamper_audited: Arc<std::sync::Mutex<HashMap<(Uuid, String), Instant>>>,
}

impl KeyRing {
    /// An empty ring over `store`; private keys are sealed with `master`,
    /// or by a tenant's encryption-provider plugin in `plugins`.
    pub fn new(store: Store, master: MasterKey, plugins: Arc<PluginRuntime>) -> Self {
        Self {
            store,
            fields: FieldCrypto::new(master, plugins),
            cache: Arc::default(),
            loading: Arc::default(),
            maintenance: Arc::default(),
            tamper_audited: Arc::default(),
        }
    }

    /// Takes the maintenance lock (held across a change to how a tenant's
    /// keys are stored, e.g. while disabling an encryption provider).
    pub async fn maintenance(&self) -> MaintenanceGuard {
        MaintenanceGuard(self.maintenance.clone().lock_owned().await)
    }

    /// Generates a new active key record of `alg` for `tenant_id`, its
    /// private half encrypted by the tenant's encryption provider if it has
    /// one (failing, never falling back, if the provider fails), else
    /// sealed with the master key. Generation runs off the async runtime
    /// (RSA takes a while).
    pub async fn generate_key_record(
        &self,
        tenant_id: Uuid,
        alg: KeyAlgorithm,
    ) -> Result<SigningKeyRecord, KeyError> {
        let key = tokio::task::spawn_blocking(move || JwsSigningKey::generate(alg))
            .await
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let private_key_enc = self
            .fields
            .seal(
                Field::signing_key(tenant_id, key.kid()),
                &key.secret_bytes(),
            )
            .await
            .map_err(|error| KeyError::Encryption {
                kid: key.kid().to_string(),
                error,
            })?;
        Ok(SigningKeyRecord {
            kid: key.kid().to_string(),
            tenant_id,
            algorithm: key.algorithm().as_str().into(),
            public_jwk: key.public_jwk(),
            private_key_enc,
            status: "active".into(),
            created_at: Timestamp::now(),
        })
    }

    /// Opens a stored key of `tenant_id`: decrypts its private half (master
    /// key or plugin, by format) and checks it is the key its kid names.
    async fn open_record(
        &self,
        tenant_id: Uuid,
        record: &SigningKeyRecord,
    ) -> Result<JwsSigningKey, KeyError> {
        let kid = &record.kid;
        let alg = KeyAlgorithm::parse(&record.algorithm)
            .ok_or_else(|| KeyError::UnsupportedAlgorithm(record.algorithm.clone()))?;
        let field = Field::signing_key(tenant_id, kid);
        let secret = match self.fields.open(field, &record.private_key_enc).await {
            Ok(s) => s,
            Err(error) => {
                if error.is_tamper() || matches!(error, FieldError::Malformed) {
                    self.audit_tamper(tenant_id, record, &error.to_string())
                        .await;
                    return Err(KeyError::Sealed(kid.clone()));
                }
                return Err(KeyError::Encryption {
                    kid: kid.clone(),
                    error,
                });
            }
        };
        // Security: even an authentic ciphertext must hold this very key
        // (a provider ignoring the associated data cannot swap keys).
        match JwsSigningKey::from_secret_bytes(alg, kid, &secret) {
            Ok(key) => Ok(key),
            Err(_) => {
                self.audit_tamper(
                    tenant_id,
                    record,
                    "the decrypted key is not the key its kid names",
                )
                .await;
                Err(KeyError::Sealed(kid.clone()))
            }
        }
    }

    /// Audits a stored key failing authentication (throttled per key).
    async fn audit_tamper(&self, tenant_id: Uuid, record: &SigningKeyRecord, detail: &str) {
        tracing::error!(%tenant_id, kid = %record.kid, error = %detail,
            "a stored signing key failed authentication (tampered with or moved?)");
        {
            let mut seen = self.tamper_audited.lock().expect("tamper lock");
            let now = Instant::now();
            if seen.len() > 10_000 {
                seen.retain(|_, at| now.duration_since(*at) < TAMPER_AUDIT_PERIOD);
            }
            let key = (tenant_id, record.kid.clone());
            if seen
                .get(&key)
                .is_some_and(|at| now.duration_since(*at) < TAMPER_AUDIT_PERIOD)
            {
                return;
            }
            seen.insert(key, now);
        }
        let sealing = field_encryption::parse(&record.private_key_enc)
            .map(|s| s.describe())
            .unwrap_or_else(|_| json!({ "sealing": "unknown" }));
        let ev = event(
            tenant_id,
            &Actor::system(),
            "key.tamper_detected",
            "signing_key",
            &record.kid,
            json!({ "algorithm": record.algorithm, "stored": sealing, "error": detail }),
        );
        if let Err(e) = self.store.append_audit(&ev).await {
            tracing::warn!(error = %e, "auditing a tampered signing key failed");
        }
    }

    /// Drops the tenant's cached keys (after a rotation).
    pub fn invalidate(&self, tenant_id: Uuid) {
        self.cache
            .write()
            .expect("key cache lock")
            .remove(&tenant_id);
    }

    fn cached(&self, tenant_id: Uuid) -> Option<Arc<TenantKeys>> {
        self.cache
            .read()
            .expect("key cache lock")
            .get(&tenant_id)
            .filter(|k| Instant::now() < k.expires)
            .cloned()
    }

    /// The tenant's keys, from cache or freshly opened. A tenant lacking an
    /// active key of some algorithm gets one generated and stored here.
    pub async fn get(&self, tenant_id: Uuid) -> Result<Arc<TenantKeys>, KeyError> {
        if let Some(k) = self.cached(tenant_id) {
            return Ok(k);
        }
        let lock = self.load_lock(tenant_id);
        let _loading = lock.lock().await;
        // Another request may have loaded them while this one waited.
        if let Some(k) = self.cached(tenant_id) {
            return Ok(k);
        }
        let keys = Arc::new(self.load(tenant_id).await?);
        self.cache
            .write()
            .expect("key cache lock")
            .insert(tenant_id, keys.clone());
        Ok(keys)
    }

    /// The keys to verify `token` with: `get_for_kid` with the token's
    /// (unverified) header `kid`.
    pub async fn for_token(
        &self,
        tenant_id: Uuid,
        token: &str,
    ) -> Result<Arc<TenantKeys>, KeyError> {
        let kid = crate::crypto::signing::decode_unverified(token)
            .ok()
            .and_then(|(h, ..)| h.get("kid").and_then(|k| k.as_str()).map(String::from));
        self.get_for_kid(tenant_id, kid.as_deref()).await
    }

    /// Like `get`, but reloads (at most every 5 seconds) when `kid` is not in
    /// the cached JWKS — a key rotated in on another node is then usable for
    /// verification at once rather than after the cache expires.
    pub async fn get_for_kid(
        &self,
        tenant_id: Uuid,
        kid: Option<&str>,
    ) -> Result<Arc<TenantKeys>, KeyError> {
        let keys = self.get(tenant_id).await?;
        match kid {
            Some(kid) if !keys.has_kid(kid) && keys.loaded.elapsed() >= UNKNOWN_KID_RELOAD => {
                self.invalidate(tenant_id);
                self.get(tenant_id).await
            }
            _ => Ok(keys),
        }
    }

    /// The tenant's load lock (entries nobody holds are dropped once many
    /// tenants have loaded keys).
    fn load_lock(&self, tenant_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.loading.lock().expect("load lock map");
        if locks.len() > 1024 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(tenant_id).or_default().clone()
    }

    fn missing(rows: &[(SigningKeyRecord, Option<Timestamp>)]) -> Vec<KeyAlgorithm> {
        KeyAlgorithm::ALL
            .into_iter()
            .filter(|a| {
                !rows
                    .iter()
                    .any(|(r, _)| r.status == "active" && r.algorithm == a.as_str())
            })
            .collect()
    }

    async fn load(&self, tenant_id: Uuid) -> Result<TenantKeys, KeyError> {
        let mut rows = self
            .store
            .verifying_signing_keys(tenant_id, Timestamp::now())
            .await?;
        if !Self::missing(&rows).is_empty() {
            let _guard = self.maintenance().await;
            rows = self
                .store
                .verifying_signing_keys(tenant_id, Timestamp::now())
                .await?;
            for alg in Self::missing(&rows) {
                let record = self.generate_key_record(tenant_id, alg).await?;
                // `false`: another node added one first; the re-read below finds it.
                if self.store.add_missing_signing_key(&record).await? {
                    tracing::info!(%tenant_id, kid = %record.kid, algorithm = alg.as_str(), "created missing signing key");
                }
            }
            rows = self
                .store
                .verifying_signing_keys(tenant_id, Timestamp::now())
                .await?;
        }
        self.open(tenant_id, rows).await
    }

    /// Opens the active keys and builds the JWKS.
    async fn open(
        &self,
        tenant_id: Uuid,
        rows: Vec<(SigningKeyRecord, Option<Timestamp>)>,
    ) -> Result<TenantKeys, KeyError> {
        let mut active = Vec::with_capacity(3);
        for alg in KeyAlgorithm::ALL {
            let (record, _) = rows
                .iter()
                .find(|(r, _)| r.status == "active" && r.algorithm == alg.as_str())
                .ok_or(KeyError::NoActiveKey)?;
            active.push(self.open_record(tenant_id, record).await?);
        }
        let signing = match &active[0] {
            JwsSigningKey::Ed25519(k) => k.clone(),
            _ => return Err(KeyError::NoActiveKey),
        };
        // Active keys in algorithm order, then retiring keys newest first.
        let mut jwks: Vec<Value> = active.iter().map(JwsSigningKey::public_jwk).collect();
        jwks.extend(
            rows.iter()
                .filter(|(r, _)| r.status != "active")
                .map(|(r, _)| published_jwk(&r.public_jwk)),
        );
        let now = Timestamp::now();
        let loaded = Instant::now();
        // Expire the cache entry when the first retiring key's window ends.
        let until_retire = rows
            .iter()
            .filter_map(|(_, after)| *after)
            .map(|after| Duration::from_secs((after.unix() - now.unix()).max(0) as u64 + 1))
            .min();
        let ttl = until_retire.map_or(CACHE_TTL, |d| d.min(CACHE_TTL));
        Ok(TenantKeys {
            signing,
            active,
            jwks,
            loaded,
            expires: loaded + ttl,
        })
    }
}

/// A stored public JWK as published: only public members, and no `alg` on
/// Ed25519 keys (older records carried `alg: EdDSA`, which strict libraries
/// reject for tokens whose header says `Ed25519`).
fn published_jwk(stored: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(obj) = stored.as_object() {
        for (k, v) in obj {
            // Security: whatever is stored, nothing but public members leaves.
            if PUBLIC_MEMBERS.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    if out.get("kty").and_then(Value::as_str) == Some("OKP") {
        out.remove("alg");
    }
    Value::Object(out)
}

/// A signing key as the admin API shows it: public half only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SigningKeyView {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    pub algorithm: String,
    /// `active` (signs), `retiring` (verifies until `retire_after`) or
    /// `retired`.
    pub status: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// When a retiring key leaves the JWKS.
    pub retire_after: Option<Timestamp>,
    /// The public JWK.
    #[schema(value_type = Object)]
    pub public_jwk: Value,
}

fn view(
    record: &SigningKeyRecord,
    retire_after: Option<Timestamp>,
    now: Timestamp,
) -> SigningKeyView {
    let status = match (record.status.as_str(), retire_after) {
        ("retiring", Some(after)) if after <= now => "retired".to_string(),
        (s, _) => s.to_string(),
    };
    SigningKeyView {
        kid: record.kid.clone(),
        algorithm: record.algorithm.clone(),
        status,
        created_at: record.created_at,
        retire_after,
        public_jwk: published_jwk(&record.public_jwk),
    }
}

/// Body of a rotation: one algorithm, or (absent) all three.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeys {
    /// `EdDSA`, `ES256` or `RS256`; absent rotates every algorithm.
    pub algorithm: Option<String>,
}

/// Every key of the tenant (active, retiring, retired), active first.
pub async fn list_keys(ctx: &Ctx, tenant_id: Uuid) -> crate::error::Result<Vec<SigningKeyView>> {
    // Makes sure the tenant has an active key of every algorithm.
    ctx.keys.get(tenant_id).await?;
    let now = Timestamp::now();
    Ok(ctx
        .store
        .all_signing_keys(tenant_id)
        .await?
        .iter()
        .map(|(r, after)| view(r, *after, now))
        .collect())
}

/// How long a key keeps verifying after rotation, seconds: the longest
/// lifetime of a token it may have signed — access and refresh token
/// lifetimes from the configuration, the tenant's overrides and any client's
/// overrides, and the ID token lifetime (at least 3600 s) — plus
/// `ROTATION_MARGIN` for caches on other nodes and clock skew. Refresh
/// lifetimes count although refresh tokens are opaque: an ID token may be
/// presented as `id_token_hint` after it expires, for as long as the
/// client's grant lives.
pub async fn rotation_overlap(ctx: &Ctx, tenant: &Tenant) -> crate::error::Result<i64> {
    let s = &tenant.settings;
    let clients = ctx.store.longest_client_token_lifetime(tenant.id).await?;
    let longest = [
        Some(ctx.config.access_token_lifetime),
        Some(ctx.config.refresh_token_lifetime),
        s.access_token_lifetime,
        s.refresh_token_lifetime,
        s.id_token_lifetime,
        clients,
        Some(ID_TOKEN_LIFETIME_FLOOR),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(ID_TOKEN_LIFETIME_FLOOR);
    Ok(longest + ROTATION_MARGIN)
}

/// Rotates the tenant's keys of one algorithm (or all three): new keys
/// become active, the old active keys retire after `rotation_overlap`. The
/// change and its `key.rotated` audit record land in one transaction.
pub async fn rotate_keys(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
    req: RotateKeys,
) -> crate::error::Result<Vec<SigningKeyView>> {
    let algorithms = match req.algorithm.as_deref() {
        None => KeyAlgorithm::ALL.to_vec(),
        Some(name) => vec![
            KeyAlgorithm::parse(name)
                .ok_or_else(|| Error::field("algorithm", "must be one of EdDSA, ES256, RS256"))?,
        ],
    };
    let tenant = ctx
        .store
        .get_tenant(tenant_id)
        .await
        .map_err(Error::from_store("tenant"))?;
    let overlap = rotation_overlap(ctx, &tenant).await?;
    // Not while a provider is being disabled: the new keys would be sealed
    // by it.
    let _maintenance = ctx.keys.maintenance().await;
    let mut records = Vec::with_capacity(algorithms.len());
    for alg in algorithms {
        records.push(
            ctx.keys
                .generate_key_record(tenant_id, alg)
                .await
                .map_err(KeyError::for_admin)?,
        );
    }
    let now = Timestamp::now();
    let retire_after = now.plus_seconds(overlap);
    let ev = event(
        tenant_id,
        actor,
        "key.rotated",
        "signing_keys",
        tenant_id,
        json!({
            "keys": records.iter().map(|r| json!({ "algorithm": r.algorithm, "kid": r.kid })).collect::<Vec<_>>(),
            "previous_keys_retire_after": retire_after,
        }),
    );
    ctx.store
        .rotate_signing_keys(tenant_id, &records, now, retire_after, &ev)
        .await?;
    ctx.keys.invalidate(tenant_id);
    Ok(records.iter().map(|r| view(r, None, now)).collect())
}

/// Answer of a re-encryption.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReencryptReport {
    /// The tenant's encryption provider.
    pub plugin_id: String,
    /// The key every live private key is now encrypted under.
    pub key_id: String,
    /// Keys examined: every key that still verifies (active, and retiring
    /// within its window). Retired keys are never opened again and are left
    /// as they are.
    pub keys: usize,
    /// Keys re-encrypted now (from the master key, another key id or
    /// another provider).
    pub reencrypted: usize,
    /// Keys already under the current key, left untouched.
    pub already_current: usize,
}

/// Re-encrypts every live signing key of the tenant under its encryption
/// provider's current key (`current-key-id`): each key not already under it
/// is decrypted (master key or plugin, by its stored format) and encrypted
/// with that key id. Nothing is written unless every key succeeded; the
/// change and its `key.reencrypted` audit record land in one transaction.
/// 409 when the tenant has no active encryption provider.
pub async fn reencrypt_keys(
    ctx: &Ctx,
    actor: &Actor,
    tenant_id: Uuid,
) -> crate::error::Result<ReencryptReport> {
    ctx.store
        .get_tenant(tenant_id)
        .await
        .map_err(Error::from_store("tenant"))?;
    let _maintenance = ctx.keys.maintenance().await;
    let current = ctx
        .keys
        .fields
        .current_key(tenant_id)
        .await
        .map_err(|error| {
            KeyError::Encryption {
                kid: "(current key id)".into(),
                error,
            }
            .for_admin()
        })?
        .ok_or_else(|| {
            Error::Conflict("no encryption-provider plugin is active for this tenant".into())
        })?;
    let now = Timestamp::now();
    let rows = ctx.store.verifying_signing_keys(tenant_id, now).await?;
    let mut changes = Vec::new();
    let mut details = Vec::new();
    let mut already_current = 0;
    for (record, _) in &rows {
        let stored = field_encryption::parse(&record.private_key_enc);
        if stored.as_ref().is_ok_and(|s| s.is_under(&current)) {
            already_current += 1;
            continue;
        }
        let key = ctx
            .keys
            .open_record(tenant_id, record)
            .await
            .map_err(KeyError::for_admin)?;
        let to = ctx
            .keys
            .fields
            .seal_under(
                Field::signing_key(tenant_id, &record.kid),
                &current,
                &key.secret_bytes(),
            )
            .await
            .map_err(|error| {
                KeyError::Encryption {
                    kid: record.kid.clone(),
                    error,
                }
                .for_admin()
            })?;
        details.push(json!({
            "kid": record.kid,
            "algorithm": record.algorithm,
            "from": stored.map(|s| s.describe()).unwrap_or_default(),
        }));
        changes.push((record.kid.clone(), record.private_key_enc.clone(), to));
    }
    if !changes.is_empty() {
        let ev = event(
            tenant_id,
            actor,
            "key.reencrypted",
            "signing_keys",
            tenant_id,
            json!({
                "to": { "sealing": "plugin", "plugin_id": current.plugin_id, "key_id": current.key_id },
                "keys": details,
            }),
        );
        ctx.store
            .rewrap_signing_keys(tenant_id, &changes, None, now, &ev)
            .await?;
        ctx.keys.invalidate(tenant_id);
    }
    Ok(ReencryptReport {
        plugin_id: current.plugin_id,
        key_id: current.key_id,
        keys: rows.len(),
        reencrypted: changes.len(),
        already_current,
    })
}

/// Re-wraps under the master key every live signing key of the tenant that
/// plugin `plugin_id` encrypted: called (with the maintenance lock held,
/// until the activation has changed) before that plugin stops being the
/// tenant's encryption provider. Answers how many keys changed.
///
/// All or nothing, in one audited transaction (`key.reencrypted`), which
/// also fails if a key sealed by the plugin appeared meanwhile. Fails when
/// the plugin cannot decrypt a key — 503 if that may pass, 409 if an
/// administrator must act (see `KeyError::for_admin`) — and then nothing
/// changed, so the caller must leave the activation as it is.
pub async fn unwrap_from_provider(
    ctx: &Ctx,
    _held: &MaintenanceGuard,
    actor: &Actor,
    tenant_id: Uuid,
    plugin_id: &str,
    reason: &str,
) -> crate::error::Result<usize> {
    let now = Timestamp::now();
    let rows = ctx.store.verifying_signing_keys(tenant_id, now).await?;
    let mut changes = Vec::new();
    let mut kids = Vec::new();
    for (record, _) in &rows {
        let stored = field_encryption::parse(&record.private_key_enc);
        let Ok(Stored::Plugin(sealed)) = &stored else {
            continue;
        };
        if sealed.plugin_id != plugin_id {
            continue;
        }
        let key = ctx
            .keys
            .open_record(tenant_id, record)
            .await
            .map_err(KeyError::for_admin)?;
        let to = ctx.keys.fields.seal_with_master(
            Field::signing_key(tenant_id, &record.kid),
            &key.secret_bytes(),
        );
        kids.push(
            json!({ "kid": record.kid, "algorithm": record.algorithm, "key_id": sealed.key_id }),
        );
        changes.push((record.kid.clone(), record.private_key_enc.clone(), to));
    }
    if changes.is_empty() {
        return Ok(0);
    }
    let ev = event(
        tenant_id,
        actor,
        "key.reencrypted",
        "signing_keys",
        tenant_id,
        json!({
            "to": { "sealing": "master" },
            "from_plugin": plugin_id,
            "reason": reason,
            "keys": kids,
        }),
    );
    let prefix = format!("{PLUGIN_FORMAT_PREFIX}{plugin_id}.");
    ctx.store
        .rewrap_signing_keys(tenant_id, &changes, Some(&prefix), now, &ev)
        .await?;
    ctx.keys.invalidate(tenant_id);
    Ok(changes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_jwks_keep_only_public_members_and_drop_ed25519_alg() {
        let legacy = json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": "k", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "secret"});
        assert_eq!(
            published_jwk(&legacy),
            json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": "k",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
        );
        let rsa = json!({"kty": "RSA", "alg": "RS256", "n": "n", "e": "AQAB", "p": "x", "qi": "y"});
        assert_eq!(
            published_jwk(&rsa),
            json!({"kty": "RSA", "alg": "RS256", "n": "n", "e": "AQAB"})
        );
    }

    #[test]
    fn views_report_an_expired_window_as_retired() {
        let now = Timestamp::now();
        let record = SigningKeyRecord {
            kid: "k".into(),
            tenant_id: Uuid::nil(),
            algorithm: "ES256".into(),
            public_jwk: json!({"kty": "EC"}),
            private_key_enc: "sealed".into(),
            status: "retiring".into(),
            created_at: now,
        };
        assert_eq!(
            view(&record, Some(now.plus_seconds(10)), now).status,
            "retiring"
        );
        assert_eq!(view(&record, Some(now), now).status, "retired");
        let shown = serde_json::to_value(view(&record, None, now)).unwrap();
        assert!(!shown.to_string().contains("sealed"), "{shown}");
    }
}
