//! encryption-provider: a plugin holds the keys that protect a tenant's
//! secrets at rest (envelope encryption through a KMS, a Vault transit
//! engine, an HSM gateway), in place of the instance master key.
//!
//! Three calls: `encrypt` with the tenant's first active provider (`None`
//! when the tenant has none: the caller uses the master key), `decrypt`
//! addressed to the plugin named in the stored record, and
//! `current_key_id` for re-encryption.
//!
//! Security decisions:
//! - Fail closed, always: a failed `encrypt` refuses the write (never a
//!   fallback to the master key or to plaintext once a provider is active),
//!   a failed `decrypt` fails the read. The contract allows one retry of
//!   `decrypt` on `unavailable`; nothing else is retried.
//! - A record is decrypted only by the plugin that encrypted it, and only
//!   while that plugin is active for the record's tenant: the plugin id is
//!   never taken from anywhere but the stored record, and the activation is
//!   looked up in that tenant's own activations, so one tenant's record can
//!   never be decrypted with another tenant's keys.
//! - Plugin output is untrusted: a key id must be 1-256 bytes, a ciphertext
//!   non-empty and at most 65 KiB, and a ciphertext that equals (or, for
//!   inputs of 16 bytes or more, contains) the plaintext is refused as
//!   malformed — a broken provider must not silently store secrets in the
//!   clear. Decrypted plaintext is capped at 64 KiB and zeroized on drop.
//! - Every failure is reported through `report_failure` (logged, counted,
//!   audited as `plugin.failure`); an `authentication_failed` answer to
//!   `decrypt` is how a tampered or moved ciphertext shows up, and the
//!   caller audits it as tampering (`is_tamper`).

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::super::activation::{Activation, OutputSize};
use super::super::bindings::v0_1_0::encryption_provider::exports::vaultaris::plugin::encryption_provider as api;
use super::super::error::PluginCallError;
use super::super::manifest::{Category, FailureMode};
use super::super::runtime::PluginRuntime;
use super::HookFailure;

/// Longest key id a provider may return (the contract's bound).
pub const MAX_KEY_ID_BYTES: usize = 256;
/// Largest plaintext the host encrypts or accepts back from `decrypt`.
pub const MAX_PLAINTEXT_BYTES: usize = 64 * 1024;
/// Largest ciphertext a provider may return (plaintext plus 1 KiB of
/// nonce, tag or wrapped data key).
pub const MAX_CIPHERTEXT_BYTES: usize = MAX_PLAINTEXT_BYTES + 1024;

/// What `encrypt` produced, and which plugin produced it.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginCiphertext {
    /// The plugin that encrypted (and alone can decrypt).
    pub plugin_id: String,
    /// The plugin's key id, including any version.
    pub key_id: String,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for PluginCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCiphertext")
            .field("plugin_id", &self.plugin_id)
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// The key a tenant's provider encrypts with now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    /// The provider plugin.
    pub plugin_id: String,
    /// Its current key id.
    pub key_id: String,
}

/// Why an encryption-provider call gave no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EncryptionFailure {
    /// The record names a plugin that is not an active encryption-provider
    /// of the tenant (disabled, removed, or not loaded on this node). It
    /// was not called.
    #[error("encryption provider {plugin_id} is not active for this tenant")]
    NotActive {
        /// The plugin the record names.
        plugin_id: String,
    },
    /// The plugin was called and failed (already reported).
    #[error(transparent)]
    Plugin(#[from] HookFailure),
}

impl EncryptionFailure {
    /// Whether retrying later may help: the plugin was unavailable, slow,
    /// broken or its breaker open — as opposed to refusing this input.
    pub fn is_transient(&self) -> bool {
        match self {
            EncryptionFailure::NotActive { .. } => false,
            EncryptionFailure::Plugin(h) => match &h.error {
                PluginCallError::Reported(r) => r.kind == "unavailable" || r.kind == "internal",
                PluginCallError::InputTooLarge { .. } => false,
                _ => true,
            },
        }
    }

    /// Whether `decrypt` said the ciphertext or its associated data failed
    /// authentication (tampered with, or moved from another row).
    pub fn is_tamper(&self) -> bool {
        matches!(self, EncryptionFailure::Plugin(h) if is_tamper(&h.error))
    }

    /// The plugin concerned.
    pub fn plugin_id(&self) -> &str {
        match self {
            EncryptionFailure::NotActive { plugin_id } => plugin_id,
            EncryptionFailure::Plugin(h) => &h.plugin_id,
        }
    }
}

/// Whether a plugin error is the contract's tamper signal
/// (`invalid-input` / `authentication_failed`).
pub fn is_tamper(e: &PluginCallError) -> bool {
    matches!(e, PluginCallError::Reported(r) if r.kind == "invalid-input" && r.code == "authentication_failed")
}

impl OutputSize for api::Encrypted {
    fn output_size(&self) -> usize {
        self.key_id.len() + self.ciphertext.len()
    }
}

/// Decrypted bytes (zeroized on drop).
struct Plaintext(Zeroizing<Vec<u8>>);

impl OutputSize for Plaintext {
    fn output_size(&self) -> usize {
        self.0.len()
    }
}

/// An encrypt request whose plaintext copy is wiped on drop.
struct WipeOnDrop(api::EncryptRequest);

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0.plaintext);
    }
}

/// A key id answered by `current-key-id`.
struct KeyId(String);

impl OutputSize for KeyId {
    fn output_size(&self) -> usize {
        self.0.len()
    }
}

fn check_key_id(key_id: &str) -> Result<(), PluginCallError> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_BYTES {
        return Err(PluginCallError::MalformedOutput(format!(
            "key-id must be 1-{MAX_KEY_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Checks what `encrypt` returned; see the module documentation.
fn check_encrypted(e: &api::Encrypted, plaintext: &[u8]) -> Result<(), PluginCallError> {
    check_key_id(&e.key_id)?;
    let c = &e.ciphertext;
    if c.is_empty() || c.len() > MAX_CIPHERTEXT_BYTES {
        return Err(PluginCallError::MalformedOutput(format!(
            "ciphertext must be 1-{MAX_CIPHERTEXT_BYTES} bytes, got {}",
            c.len()
        )));
    }
    // Security: never store what is visibly the plaintext. Shorter inputs
    // are only compared for equality (a short plaintext may occur in a
    // random ciphertext by chance).
    let leaks = c.as_slice() == plaintext
        || (plaintext.len() >= 16 && c.windows(plaintext.len()).any(|w| w == plaintext));
    if leaks {
        return Err(PluginCallError::MalformedOutput(
            "the ciphertext contains the plaintext".into(),
        ));
    }
    Ok(())
}

impl PluginRuntime {
    /// The tenant's encryption provider: the first enabled activation of
    /// the category, in order (the contract allows one).
    fn encryption_activation(&self, tenant: Uuid) -> Option<std::sync::Arc<Activation>> {
        self.active(tenant, Category::EncryptionProvider)
            .into_iter()
            .next()
    }

    /// The plugin id of the tenant's encryption provider, if it has one.
    pub fn encryption_provider(&self, tenant: Uuid) -> Option<String> {
        self.encryption_activation(tenant)
            .map(|a| a.context.plugin_id.clone())
    }

    /// Fails a call whose answer came back but is unusable: counted, fed
    /// to the breaker and reported like any failure.
    fn unusable(&self, act: &Activation, error: PluginCallError) -> HookFailure {
        act.record_failure(Category::EncryptionProvider, &error);
        self.failed(act, error)
    }

    fn failed(&self, act: &Activation, error: PluginCallError) -> HookFailure {
        self.report_failure(
            act,
            Category::EncryptionProvider,
            &error,
            FailureMode::Closed,
        );
        HookFailure {
            plugin_id: act.context.plugin_id.clone(),
            category: Category::EncryptionProvider,
            error,
        }
    }

    /// Encrypts `plaintext` with the tenant's encryption provider, binding
    /// `associated_data`. `key_id` is `None` for the provider's current key
    /// (the normal case) or an explicit id when re-encrypting. Answers
    /// `Ok(None)` when the tenant has no provider: the caller seals with
    /// the master key. Not retried.
    pub async fn encrypt_secret(
        &self,
        tenant: Uuid,
        key_id: Option<&str>,
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> Result<Option<PluginCiphertext>, HookFailure> {
        let Some(act) = self.encryption_activation(tenant) else {
            return Ok(None);
        };
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            let error = PluginCallError::InputTooLarge {
                size: plaintext.len(),
                limit: MAX_PLAINTEXT_BYTES,
            };
            return Err(self.failed(&act, error));
        }
        // The request holds a copy of the secret: wiped when dropped,
        // whether the call finished or was abandoned.
        let req = WipeOnDrop(api::EncryptRequest {
            key_id: key_id.map(str::to_string),
            plaintext: plaintext.to_vec(),
            associated_data: associated_data.to_vec(),
        });
        let size = plaintext.len() + associated_data.len() + key_id.map_or(0, str::len);
        let (result, _) = act
            .invoke(
                self.engine(),
                Category::EncryptionProvider,
                &super::super::request_id::current(),
                size,
                |inst, cx| {
                    Box::pin(async move {
                        let inst = match inst {
                            PluginInstance::Native(n) => {
                                return n
                                    .call(native_fn::ENCRYPTION_PROVIDER_ENCRYPT, &(&cx, &req.0))
                                    .await;
                            }
                            PluginInstance::Wasm(w) => w,
                        };
                        let Some(e) = &inst.exports.encryption_provider else {
                            return Err(wasmtime::format_err!(
                                "encryption-provider export missing"
                            ));
                        };
                        e.vaultaris_plugin_encryption_provider()
                            .call_encrypt(&mut inst.store, &cx, &req.0)
                            .await
                    })
                },
            )
            .await;
        let encrypted = result.map_err(|e| self.failed(&act, e))?;
        if let Err(e) = check_encrypted(&encrypted, plaintext) {
            return Err(self.unusable(&act, e));
        }
        if let Some(wanted) = key_id
            && encrypted.key_id != wanted
        {
            return Err(self.unusable(
                &act,
                PluginCallError::MalformedOutput(
                    "encrypt used another key than the one asked for".into(),
                ),
            ));
        }
        Ok(Some(PluginCiphertext {
            plugin_id: act.context.plugin_id.clone(),
            key_id: encrypted.key_id,
            ciphertext: encrypted.ciphertext,
        }))
    }

    /// Decrypts a record the tenant's plugin `plugin_id` encrypted, with
    /// the same associated data. Retried once when the plugin answers
    /// `unavailable`.
    pub async fn decrypt_secret(
        &self,
        tenant: Uuid,
        plugin_id: &str,
        key_id: &str,
        ciphertext: &[u8],
        associated_data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EncryptionFailure> {
        let Some(act) = self
            .active(tenant, Category::EncryptionProvider)
            .into_iter()
            .find(|a| a.context.plugin_id == plugin_id)
        else {
            return Err(EncryptionFailure::NotActive {
                plugin_id: plugin_id.to_string(),
            });
        };
        let request = api::DecryptRequest {
            key_id: key_id.to_string(),
            ciphertext: ciphertext.to_vec(),
            associated_data: associated_data.to_vec(),
        };
        let size = key_id.len() + ciphertext.len() + associated_data.len();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let req = request.clone();
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::EncryptionProvider,
                    &super::super::request_id::current(),
                    size,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call::<_, Vec<u8>>(
                                            native_fn::ENCRYPTION_PROVIDER_DECRYPT,
                                            &(&cx, &req),
                                        )
                                        .await
                                        .map(|r| r.map(|p| Plaintext(Zeroizing::new(p))));
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(e) = &inst.exports.encryption_provider else {
                                return Err(wasmtime::format_err!(
                                    "encryption-provider export missing"
                                ));
                            };
                            e.vaultaris_plugin_encryption_provider()
                                .call_decrypt(&mut inst.store, &cx, &req)
                                .await
                                .map(|r| r.map(|p| Plaintext(Zeroizing::new(p))))
                        })
                    },
                )
                .await;
            match result {
                Ok(Plaintext(p)) if p.len() > MAX_PLAINTEXT_BYTES => {
                    return Err(self
                        .unusable(
                            &act,
                            PluginCallError::OutputTooLarge {
                                size: p.len(),
                                limit: MAX_PLAINTEXT_BYTES,
                            },
                        )
                        .into());
                }
                Ok(Plaintext(p)) => return Ok(p),
                Err(PluginCallError::Reported(r)) if r.kind == "unavailable" && attempt == 1 => {
                    let error = PluginCallError::Reported(r);
                    self.report_failure(
                        &act,
                        Category::EncryptionProvider,
                        &error,
                        FailureMode::Closed,
                    );
                    continue;
                }
                Err(error) => return Err(self.failed(&act, error).into()),
            }
        }
    }

    /// The key the tenant's encryption provider encrypts with now, or
    /// `None` when the tenant has no provider.
    pub async fn current_encryption_key(
        &self,
        tenant: Uuid,
    ) -> Result<Option<ProviderKey>, HookFailure> {
        let Some(act) = self.encryption_activation(tenant) else {
            return Ok(None);
        };
        let (result, _) = act
            .invoke(
                self.engine(),
                Category::EncryptionProvider,
                &super::super::request_id::current(),
                0,
                |inst, cx| {
                    Box::pin(async move {
                        let inst = match inst {
                            PluginInstance::Native(n) => {
                                return n
                                    .call::<_, String>(
                                        native_fn::ENCRYPTION_PROVIDER_CURRENT_KEY_ID,
                                        &(&cx,),
                                    )
                                    .await
                                    .map(|r| r.map(KeyId));
                            }
                            PluginInstance::Wasm(w) => w,
                        };
                        let Some(e) = &inst.exports.encryption_provider else {
                            return Err(wasmtime::format_err!(
                                "encryption-provider export missing"
                            ));
                        };
                        e.vaultaris_plugin_encryption_provider()
                            .call_current_key_id(&mut inst.store, &cx)
                            .await
                            .map(|r| r.map(KeyId))
                    })
                },
            )
            .await;
        let KeyId(key_id) = result.map_err(|e| self.failed(&act, e))?;
        if let Err(e) = check_key_id(&key_id) {
            return Err(self.unusable(&act, e));
        }
        Ok(Some(ProviderKey {
            plugin_id: act.context.plugin_id.clone(),
            key_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(key_id: &str, ciphertext: &[u8]) -> api::Encrypted {
        api::Encrypted {
            key_id: key_id.into(),
            ciphertext: ciphertext.to_vec(),
        }
    }

    #[test]
    fn encrypt_output_is_checked() {
        let pt = b"a private key of some length, 48 bytes or so...";
        let mut good = vec![1u8];
        good.extend_from_slice(&[7u8; 60]);
        assert!(check_encrypted(&enc("k1", &good), pt).is_ok());
        for (e, why) in [
            (enc("", &good), "empty key id"),
            (enc(&"k".repeat(257), &good), "long key id"),
            (enc("k1", b""), "empty ciphertext"),
            (
                enc("k1", &vec![0u8; MAX_CIPHERTEXT_BYTES + 1]),
                "huge ciphertext",
            ),
            (enc("k1", pt), "the plaintext itself"),
            (
                enc("k1", &[b"\x01nonce".as_slice(), pt].concat()),
                "prefixed plaintext",
            ),
        ] {
            assert!(
                matches!(
                    check_encrypted(&e, pt),
                    Err(PluginCallError::MalformedOutput(_))
                ),
                "{why}"
            );
        }
        assert!(check_encrypted(&enc(&"k".repeat(256), &good), pt).is_ok());
        // A short plaintext is only compared for equality.
        assert!(check_encrypted(&enc("k1", b"\x01ab\x02"), b"ab").is_ok());
        assert!(check_encrypted(&enc("k1", b"ab"), b"ab").is_err());
    }

    #[test]
    fn tamper_and_transient_failures_are_told_apart() {
        let reported = |kind: &'static str, code: &str| {
            EncryptionFailure::Plugin(HookFailure {
                plugin_id: "p".into(),
                category: Category::EncryptionProvider,
                error: PluginCallError::Reported(super::super::super::error::PluginReported {
                    kind,
                    code: code.into(),
                    message: String::new(),
                }),
            })
        };
        assert!(reported("invalid-input", "authentication_failed").is_tamper());
        assert!(!reported("invalid-input", "authentication_failed").is_transient());
        assert!(!reported("invalid-input", "malformed_ciphertext").is_tamper());
        assert!(reported("unavailable", "kms_down").is_transient());
        assert!(!reported("misconfigured", "unknown_key_id").is_transient());
        let not_active = EncryptionFailure::NotActive {
            plugin_id: "p".into(),
        };
        assert!(!not_active.is_transient() && !not_active.is_tamper());
        let deadline = EncryptionFailure::Plugin(HookFailure {
            plugin_id: "p".into(),
            category: Category::EncryptionProvider,
            error: PluginCallError::DeadlineExceeded(2000),
        });
        assert!(deadline.is_transient());
    }
}
