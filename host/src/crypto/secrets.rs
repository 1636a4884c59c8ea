//! High-entropy secrets (client secrets, token ids): generation, hashing,
//! constant-time comparison.
//!
//! Security decision: a client secret carries 256 random bits, so a fast
//! SHA-256 is enough to make a stolen database useless, and the token
//! endpoint never pays for a slow hash. Comparison is constant-time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh random secret: 32 bytes, base64url without padding.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `secret`, lowercase hex.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `expected_hex`, compared in constant time.
pub fn verify_secret(secret: &str, expected_hex: &str) -> bool {
    let actual = sha256_hex(secret);
    actual.as_bytes().ct_eq(expected_hex.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_verify_only_themselves() {
        let s = random_secret();
        assert_eq!(s.len(), 43);
        let h = sha256_hex(&s);
        assert!(verify_secret(&s, &h));
        assert!(!verify_secret("other", &h));
    }
}
