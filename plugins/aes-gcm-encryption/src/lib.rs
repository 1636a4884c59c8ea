//! `aes-gcm-encryption` (encryption-provider): AES-256-GCM under keys from
//! the tenant's secret configuration.
//!
//! ```json
//! { "keys": { "2025-01": "<base64 of 32 bytes>", "2024-07": "<base64>" }, "current_key_id": "2025-01" }
//! ```
//!
//! Ciphertext layout: `0x01` (format version) ‖ 12-byte nonce (from the
//! host's CSPRNG) ‖ AES-GCM ciphertext and 16-byte tag. The host's
//! associated data (tenant, table, column, row) is authenticated, so a
//! ciphertext moved to another row fails with `invalid_input` /
//! `authentication_failed`, which the host audits as tampering. The key id
//! returned by `encrypt` is the configuration's key id; `decrypt` accepts
//! any configured key, so keys can be rotated: add a key, make it current,
//! let the host re-encrypt, then remove the old one.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use serde::Deserialize;
use vaultaris_plugin_sdk::encryption::{
    DecryptRequest, EncryptRequest, Encrypted, EncryptionProvider,
};
use vaultaris_plugin_sdk::host::random;
use vaultaris_plugin_sdk::{CallContext, Plugin, PluginError, export_plugin, parse_config};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_PLAINTEXT: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    keys: BTreeMap<String, String>,
    current_key_id: String,
}

/// The plugin: the decoded keys.
pub struct AesGcmEncryption {
    keys: BTreeMap<String, Aes256Gcm>,
    current: String,
}

impl Plugin for AesGcmEncryption {
    fn new(config: serde_json::Value) -> Result<Self, PluginError> {
        let config: Config = parse_config(config)?;
        let mut keys = BTreeMap::new();
        for (id, b64) in &config.keys {
            if id.is_empty() || id.len() > 128 {
                return Err(PluginError::misconfigured(
                    "invalid_key_id",
                    "key ids must be 1 to 128 bytes",
                ));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| {
                    PluginError::misconfigured(
                        "invalid_key",
                        format!("key `{id}` is not valid base64"),
                    )
                })?;
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
                PluginError::misconfigured(
                    "invalid_key",
                    format!("key `{id}` must be 32 bytes, got {}", bytes.len()),
                )
            })?;
            keys.insert(id.clone(), cipher);
        }
        if !keys.contains_key(&config.current_key_id) {
            return Err(PluginError::misconfigured(
                "unknown_current_key",
                format!(
                    "current_key_id `{}` is not one of the configured keys",
                    config.current_key_id
                ),
            ));
        }
        Ok(AesGcmEncryption {
            keys,
            current: config.current_key_id,
        })
    }
}

impl AesGcmEncryption {
    fn key(&self, id: &str) -> Result<&Aes256Gcm, PluginError> {
        self.keys.get(id).ok_or_else(|| {
            PluginError::misconfigured(
                "unknown_key_id",
                format!("key `{id}` is not configured (removed too early?)"),
            )
        })
    }
}

impl EncryptionProvider for AesGcmEncryption {
    fn encrypt(
        &self,
        _ctx: &CallContext,
        request: EncryptRequest,
    ) -> Result<Encrypted, PluginError> {
        if request.plaintext.len() > MAX_PLAINTEXT {
            return Err(PluginError::invalid_input(
                "plaintext_too_large",
                "plaintext is over 64 KiB",
            ));
        }
        let key_id = request.key_id.unwrap_or_else(|| self.current.clone());
        let cipher = self.key(&key_id)?;
        let mut nonce = [0u8; NONCE_LEN];
        random::fill(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &request.plaintext,
                    aad: &request.associated_data,
                },
            )
            .map_err(|_| PluginError::internal("encryption_failed", "AES-GCM encryption failed"))?;
        let mut ciphertext = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        ciphertext.push(FORMAT_V1);
        ciphertext.extend_from_slice(&nonce);
        ciphertext.extend_from_slice(&sealed);
        Ok(Encrypted { key_id, ciphertext })
    }

    fn decrypt(&self, _ctx: &CallContext, request: DecryptRequest) -> Result<Vec<u8>, PluginError> {
        let cipher = self.key(&request.key_id)?;
        let c = &request.ciphertext;
        if c.len() < 1 + NONCE_LEN + TAG_LEN || c[0] != FORMAT_V1 {
            return Err(PluginError::invalid_input(
                "malformed_ciphertext",
                "not a ciphertext of this plugin",
            ));
        }
        cipher
            .decrypt(
                Nonce::from_slice(&c[1..1 + NONCE_LEN]),
                Payload {
                    msg: &c[1 + NONCE_LEN..],
                    aad: &request.associated_data,
                },
            )
            .map_err(|_| {
                PluginError::invalid_input(
                    "authentication_failed",
                    "ciphertext or associated data failed authentication",
                )
            })
    }

    fn current_key_id(&self, _ctx: &CallContext) -> Result<String, PluginError> {
        Ok(self.current.clone())
    }
}

export_plugin!(AesGcmEncryption: encryption_provider);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    fn plugin(current: &str) -> AesGcmEncryption {
        AesGcmEncryption::new(
            json!({"keys": {"k1": b64(1), "k2": b64(2)}, "current_key_id": current}),
        )
        .unwrap()
    }

    fn enc(p: &AesGcmEncryption, key_id: Option<&str>, pt: &[u8], aad: &[u8]) -> Encrypted {
        p.encrypt(
            &CallContext::for_tests(),
            EncryptRequest {
                key_id: key_id.map(Into::into),
                plaintext: pt.to_vec(),
                associated_data: aad.to_vec(),
            },
        )
        .unwrap()
    }

    fn dec(p: &AesGcmEncryption, e: &Encrypted, aad: &[u8]) -> Result<Vec<u8>, PluginError> {
        p.decrypt(
            &CallContext::for_tests(),
            DecryptRequest {
                key_id: e.key_id.clone(),
                ciphertext: e.ciphertext.clone(),
                associated_data: aad.to_vec(),
            },
        )
    }

    #[test]
    fn manifest_matches_exports() {
        vaultaris_plugin_sdk::testing::check_manifest::<AesGcmEncryption>(include_str!(
            "../manifest.json"
        ))
        .unwrap();
    }

    #[test]
    fn round_trip_with_associated_data() {
        let p = plugin("k2");
        let e = enc(&p, None, b"totp-secret", b"t1/users/totp/u1");
        assert_eq!(e.key_id, "k2");
        assert_eq!(e.ciphertext.len(), 1 + 12 + 11 + 16);
        assert_ne!(&e.ciphertext[13..24], b"totp-secret");
        assert_eq!(dec(&p, &e, b"t1/users/totp/u1").unwrap(), b"totp-secret");
        // non-deterministic: a second encryption differs
        assert_ne!(
            enc(&p, None, b"totp-secret", b"t1/users/totp/u1").ciphertext,
            e.ciphertext
        );
    }

    #[test]
    fn tampering_is_detected() {
        let p = plugin("k1");
        let e = enc(&p, None, b"secret", b"row-1");
        let err = dec(&p, &e, b"row-2").unwrap_err();
        assert_eq!(
            (err.kind(), err.code()),
            ("invalid-input", "authentication_failed")
        );
        let mut flipped = e.clone();
        let last = flipped.ciphertext.len() - 1;
        flipped.ciphertext[last] ^= 1;
        assert_eq!(
            dec(&p, &flipped, b"row-1").unwrap_err().code(),
            "authentication_failed"
        );
        let mut other_key = e.clone();
        other_key.key_id = "k2".into();
        assert_eq!(
            dec(&p, &other_key, b"row-1").unwrap_err().code(),
            "authentication_failed"
        );
        let short = Encrypted {
            key_id: "k1".into(),
            ciphertext: vec![1, 2, 3],
        };
        assert_eq!(
            dec(&p, &short, b"").unwrap_err().code(),
            "malformed_ciphertext"
        );
    }

    #[test]
    fn rotation() {
        let old = plugin("k1");
        let e = enc(&old, None, b"s", b"a");
        let new = plugin("k2");
        assert_eq!(new.current_key_id(&CallContext::for_tests()).unwrap(), "k2");
        assert_eq!(
            dec(&new, &e, b"a").unwrap(),
            b"s",
            "old ciphertexts still decrypt"
        );
        assert_eq!(
            enc(&new, Some("k1"), b"s", b"a").key_id,
            "k1",
            "explicit key id is honoured"
        );
        let only_new =
            AesGcmEncryption::new(json!({"keys": {"k2": b64(2)}, "current_key_id": "k2"})).unwrap();
        assert_eq!(
            dec(&only_new, &e, b"a").unwrap_err().code(),
            "unknown_key_id"
        );
    }

    #[test]
    fn invalid_configurations() {
        for (c, code) in [
            (
                json!({"keys": {"k1": "not base64!"}, "current_key_id": "k1"}),
                "invalid_key",
            ),
            (
                json!({"keys": {"k1": base64::engine::general_purpose::STANDARD.encode([0u8; 16])}, "current_key_id": "k1"}),
                "invalid_key",
            ),
            (
                json!({"keys": {"k1": b64(1)}, "current_key_id": "k9"}),
                "unknown_current_key",
            ),
            (json!({"keys": {"k1": b64(1)}}), "invalid_config"),
        ] {
            assert_eq!(AesGcmEncryption::new(c).err().unwrap().code(), code);
        }
    }
}
