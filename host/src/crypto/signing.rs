//! EdDSA (Ed25519) signing keys and compact JWS.
//!
//! Tokens are signed by hand rather than through a JWT crate: the format is
//! three base64url parts, and owning it keeps one signature per token on the
//! hot path with no intermediate allocations beyond the output string.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{Value, json};

/// A private Ed25519 key with its id.
#[derive(Clone)]
pub struct Ed25519Key {
    /// Key id.
    pub kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Key({})", self.kid)
    }
}

impl Ed25519Key {
    /// A fresh key; the kid is the RFC 7638 thumbprint of the public JWK.
    pub fn generate() -> Self {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = thumbprint(&key.verifying_key());
        Self { kid, key }
    }

    /// Rebuilds a key from its 32 secret bytes.
    pub fn from_bytes(kid: String, bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self {
            kid,
            key: SigningKey::from_bytes(&arr),
        })
    }

    /// The 32 secret bytes (to be sealed before storage).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public JWK.
    pub fn public_jwk(&self) -> Value {
        public_jwk(&self.kid, &self.key.verifying_key())
    }

    /// Signs `claims` as a compact JWS with header `typ`.
    pub fn sign_jwt(&self, typ: &str, claims: &Value) -> String {
        let header = json!({ "alg": "EdDSA", "typ": typ, "kid": self.kid });
        let mut out = String::with_capacity(512);
        URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut out);
        let sig: Signature = self.key.sign(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.to_bytes(), &mut out);
        out
    }
}

fn public_jwk(kid: &str, vk: &VerifyingKey) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(vk.as_bytes()),
    })
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key.
fn thumbprint(vk: &VerifyingKey) -> String {
    use sha2::{Digest, Sha256};
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(vk.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A decoded, signature-checked JWT.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
}

/// Why a JWT was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// Header algorithm is not EdDSA.
    #[error("unsupported algorithm")]
    Algorithm,
    /// No known key has this kid.
    #[error("unknown signing key")]
    UnknownKey,
    /// Signature does not verify.
    #[error("bad signature")]
    Signature,
}

/// Splits and decodes a compact JWS without checking the signature; returns
/// the header, claims, signing input and signature bytes.
pub fn decode_unverified(token: &str) -> Result<(Value, Value, &str, Vec<u8>), JwtError> {
    let mut parts = token.splitn(3, '.');
    let (h, c, s) = match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(c), Some(s)) if !s.contains('.') => (h, c, s),
        _ => return Err(JwtError::Malformed),
    };
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    Ok((header, claims, signing_input, sig))
}

/// Verifies a compact JWS against public JWKs; the header's `kid` picks the key.
pub fn verify_jwt(token: &str, jwks: &[Value]) -> Result<VerifiedJwt, JwtError> {
    let (header, claims, signing_input, sig) = decode_unverified(token)?;
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err(JwtError::Algorithm);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::UnknownKey)?;
    let jwk = jwks
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or(JwtError::UnknownKey)?;
    let x = jwk
        .get("x")
        .and_then(Value::as_str)
        .ok_or(JwtError::UnknownKey)?;
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(x)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(JwtError::UnknownKey)?;
    let vk = VerifyingKey::from_bytes(&x).map_err(|_| JwtError::UnknownKey)?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| JwtError::Signature)?;
    vk.verify(signing_input.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| JwtError::Signature)?;
    Ok(VerifiedJwt { header, claims })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_detects_tampering() {
        let key = Ed25519Key::generate();
        let token = key.sign_jwt("at+jwt", &json!({"sub": "a"}));
        let jwks = vec![key.public_jwk()];
        let ok = verify_jwt(&token, &jwks).unwrap();
        assert_eq!(ok.claims["sub"], "a");
        assert_eq!(ok.header["typ"], "at+jwt");

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"b"}"#);
        parts[1] = &forged;
        assert_eq!(
            verify_jwt(&parts.join("."), &jwks).unwrap_err(),
            JwtError::Signature
        );
        let other = Ed25519Key::generate();
        assert_eq!(
            verify_jwt(&token, &[other.public_jwk()]).unwrap_err(),
            JwtError::UnknownKey
        );
        assert_eq!(verify_jwt("a.b", &jwks).unwrap_err(), JwtError::Malformed);
    }
}
