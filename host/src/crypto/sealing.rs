//! Sealing secrets at rest with AES-256-GCM under the instance master key.
//!
//! The master key comes from `VAULTARIS_MASTER_KEY` (base64, 32 bytes) or,
//! when unset, from `master.key` in the data directory, created with mode
//! 0600 on first start. Every sealed value has its own random 96-bit nonce
//! and is bound to a context string (associated data) such as the key id, so
//! a sealed blob cannot be swapped onto another row.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::Digest;

/// Errors from sealing and opening.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The master key is malformed.
    #[error("master key must be 32 bytes of base64: {0}")]
    BadKey(String),
    /// The sealed value is corrupt, or was sealed under another key or context.
    #[error("sealed value cannot be opened")]
    Open,
}

/// The instance master key.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    derivation: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Parses a base64-encoded 32-byte key.
    pub fn from_base64(b64: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|e| SealError::BadKey(e.to_string()))?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey(format!("got {} bytes", bytes.len())));
        }
        let cipher =
            Aes256Gcm::new_from_slice(&bytes).map_err(|e| SealError::BadKey(e.to_string()))?;
        // A separate root for derived keys, so no derived key ever equals
        // the sealing key itself.
        let mut d = sha2::Sha256::new();
        d.update(b"vaultaris/derive/v1");
        d.update(&bytes);
        Ok(Self {
            cipher,
            derivation: d.finalize().into(),
        })
    }

    /// A 32-byte key for `label` derived from the master key
    /// (HMAC-SHA256), so every node of a cluster derives the same key — used
    /// for MACs such as DPoP nonces and login-flow state.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.derivation)
            .expect("HMAC accepts any key length");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A fresh random key, base64.
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    /// Seals `plaintext` bound to `context`: base64(nonce || ciphertext).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        STANDARD.encode(out)
    }

    /// Opens a value sealed by `seal` with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::Open)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = bytes.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_binds_to_context() {
        let key = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let sealed = key.seal(b"private", "kid-1");
        assert_eq!(key.open(&sealed, "kid-1").unwrap(), b"private");
        assert!(key.open(&sealed, "kid-2").is_err());
        let other = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        assert!(other.open(&sealed, "kid-1").is_err());
    }
}
