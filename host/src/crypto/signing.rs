//! Signing keys (Ed25519, ECDSA P-256, RSA) and compact JWS.
//!
//! Tokens are signed by hand rather than through a JWT crate: the format is
//! three base64url parts, and owning it keeps one signature per token on the
//! hot path with no intermediate allocations beyond the output string.
//! Verification lives in `crypto::jose`.
//!
//! Secret-byte formats (what `JwsSigningKey::secret_bytes` returns and the
//! key ring seals under the master key):
//! - Ed25519: the 32-byte seed (RFC 8032), as keys have always been stored;
//! - ES256: the 32-byte big-endian P-256 scalar;
//! - RS256: PKCS#8 DER of the RSA private key.
//!
//! Security decisions:
//! - RSA keys are 2048 bits with e = 65537. The `rsa` crate generates them,
//!   but its big-integer arithmetic is not constant time (RUSTSEC-2023-0071),
//!   so signatures are made by ring (constant time, blinded), which is also
//!   about five times faster; `rsa` never touches the key during signing.
//! - Ed25519 JWKs carry no `alg`: RFC 9864 lets one Ed25519 key sign under
//!   the header names `EdDSA` and `Ed25519`, and strict libraries reject a
//!   JWK whose `alg` differs from the header.
//! - A key's `kid` is its RFC 7638 thumbprint, checked again when a sealed
//!   key is opened, so a stored key can never publish a JWK other than its own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::jose::thumbprint_of;

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
        let kid = thumbprint(&key);
        Self { kid, key }
    }

    /// Rebuilds a key from its 32 secret bytes.
    pub fn from_bytes(kid: String, bytes: &[u8]) -> Option<Self> {
        let arr: Zeroizing<[u8; 32]> = Zeroizing::new(bytes.try_into().ok()?);
        Some(Self {
            kid,
            key: SigningKey::from_bytes(&arr),
        })
    }

    /// The 32 secret bytes (to be sealed before storage).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public JWK (`kty` OKP, `crv` Ed25519, `use` sig, no `alg`).
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()),
        })
    }

    /// Signs `claims` as a compact JWS with header `alg: EdDSA` and `typ`.
    pub fn sign_jwt(&self, typ: &str, claims: &Value) -> String {
        self.sign_with_alg("EdDSA", typ, claims)
    }

    /// Signs under header `alg` (`EdDSA` or `Ed25519`; the signature is the same).
    fn sign_with_alg(&self, alg: &str, typ: &str, claims: &Value) -> String {
        encode_jws(alg, typ, &self.kid, claims, |input| {
            let sig: Signature = self.key.sign(input);
            sig.to_bytes().to_vec()
        })
    }
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key.
fn thumbprint(key: &SigningKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    thumbprint_of(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)])
}

/// Builds `header.claims.signature` with `sign` over the signing input.
fn encode_jws(
    alg: &str,
    typ: &str,
    kid: &str,
    claims: &Value,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let header = json!({ "alg": alg, "typ": typ, "kid": kid });
    let mut out = String::with_capacity(512);
    URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut out);
    let sig = sign(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    out
}

/// A private ECDSA P-256 key (`ES256`) with its id.
#[derive(Clone)]
pub struct EcdsaP256Key {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    key: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for EcdsaP256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EcdsaP256Key({})", self.kid)
    }
}

impl EcdsaP256Key {
    fn from_key(key: p256::ecdsa::SigningKey) -> Self {
        let (x, y) = Self::coordinates(&key);
        let kid = thumbprint_of(&[("crv", "P-256"), ("kty", "EC"), ("x", &x), ("y", &y)]);
        Self { kid, key }
    }

    /// base64url x and y of the public point (each the full 32 bytes).
    fn coordinates(key: &p256::ecdsa::SigningKey) -> (String, String) {
        let point = key.verifying_key().to_encoded_point(false);
        let x = point
            .x()
            .map(|c| URL_SAFE_NO_PAD.encode(c))
            .unwrap_or_default();
        let y = point
            .y()
            .map(|c| URL_SAFE_NO_PAD.encode(c))
            .unwrap_or_default();
        (x, y)
    }

    /// The public JWK (`kty` EC, `crv` P-256, `alg` ES256, `use` sig).
    pub fn public_jwk(&self) -> Value {
        let (x, y) = Self::coordinates(&self.key);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": self.kid,
            "x": x,
            "y": y,
        })
    }

    /// ECDSA P-256 / SHA-256 over `input`: the raw 64-byte `r || s` form
    /// JWS requires (RFC 7518 §3.4), with deterministic nonces (RFC 6979).
    pub(crate) fn sign_raw(&self, input: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.key.sign(input);
        sig.to_bytes().to_vec()
    }
}

/// A private RSA key (`RS256`, PKCS#1 v1.5 with SHA-256) with its id.
#[derive(Clone)]
pub struct RsaKey {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    signer: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
    /// The same key in ring, which signs about five times faster than the
    /// `rsa` crate and in constant time; `rsa` still generates, encodes and
    /// describes the key.
    fast: std::sync::Arc<ring::rsa::KeyPair>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({})", self.kid)
    }
}

/// Modulus size of generated RSA keys.
pub const RSA_BITS: usize = 2048;

impl RsaKey {
    fn from_key(key: rsa::RsaPrivateKey) -> Self {
        use rsa::pkcs8::EncodePrivateKey;
        let (n, e) = Self::public_parts(&key);
        let kid = thumbprint_of(&[("e", &e), ("kty", "RSA"), ("n", &n)]);
        let der = key
            .to_pkcs8_der()
            .expect("encoding an in-memory RSA key as PKCS#8 cannot fail");
        let fast = ring::rsa::KeyPair::from_pkcs8(der.as_bytes())
            .expect("a 2048-4096-bit RSA key from the rsa crate is a valid ring key");
        Self {
            kid,
            signer: rsa::pkcs1v15::SigningKey::new(key),
            fast: std::sync::Arc::new(fast),
        }
    }

    /// base64url modulus and exponent (unsigned big-endian, no leading zeros).
    fn public_parts(key: &rsa::RsaPrivateKey) -> (String, String) {
        use rsa::traits::PublicKeyParts;
        (
            URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        )
    }

    /// The public JWK (`kty` RSA, `alg` RS256, `use` sig).
    pub fn public_jwk(&self) -> Value {
        let (n, e) = Self::public_parts(self.signer.as_ref());
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": n,
            "e": e,
        })
    }

    fn sign_raw(&self, input: &[u8]) -> Vec<u8> {
        // Security: ring's RSA signing is constant time and blinded (see the
        // module comment on the `rsa` crate's timing weakness).
        let mut sig = vec![0u8; self.fast.public().modulus_len()];
        self.fast
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input,
                &mut sig,
            )
            .expect("RSA signing with a valid key and buffer cannot fail");
        sig
    }
}

/// The key algorithms a tenant holds one active key of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyAlgorithm {
    /// Ed25519 (header `alg` `EdDSA` or `Ed25519`); signs access tokens.
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSA PKCS#1 v1.5 with SHA-256 (the OpenID Connect default).
    Rs256,
}

impl KeyAlgorithm {
    /// Every algorithm, in JWKS order.
    pub const ALL: [KeyAlgorithm; 3] = [
        KeyAlgorithm::EdDSA,
        KeyAlgorithm::Es256,
        KeyAlgorithm::Rs256,
    ];

    /// The stored (and API) name: `EdDSA`, `ES256` or `RS256`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDSA => "EdDSA",
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::Rs256 => "RS256",
        }
    }

    /// Parses a stored or API name (exactly `EdDSA`, `ES256` or `RS256`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The key algorithm that signs under JWS header `alg` (`EdDSA` and
    /// `Ed25519` both need the Ed25519 key).
    pub fn for_header_alg(alg: &str) -> Option<Self> {
        match alg {
            "EdDSA" | "Ed25519" => Some(KeyAlgorithm::EdDSA),
            "ES256" => Some(KeyAlgorithm::Es256),
            "RS256" => Some(KeyAlgorithm::Rs256),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private JWS signing key of any supported algorithm.
#[derive(Debug, Clone)]
pub enum JwsSigningKey {
    /// Ed25519.
    Ed25519(Ed25519Key),
    /// ECDSA P-256.
    Es256(EcdsaP256Key),
    /// RSA 2048.
    Rs256(RsaKey),
}

impl JwsSigningKey {
    /// A fresh key of `alg`. RSA generation takes tens to hundreds of
    /// milliseconds: call it off the async runtime (`spawn_blocking`).
    pub fn generate(alg: KeyAlgorithm) -> Self {
        let mut rng = rand::rngs::OsRng;
        match alg {
            KeyAlgorithm::EdDSA => JwsSigningKey::Ed25519(Ed25519Key::generate()),
            KeyAlgorithm::Es256 => JwsSigningKey::Es256(EcdsaP256Key::from_key(
                p256::ecdsa::SigningKey::random(&mut rng),
            )),
            KeyAlgorithm::Rs256 => JwsSigningKey::Rs256(RsaKey::from_key(
                rsa::RsaPrivateKey::new(&mut rng, RSA_BITS)
                    .expect("RSA key generation with the OS RNG cannot fail"),
            )),
        }
    }

    /// Rebuilds a key from `secret_bytes` output; `kid` must be the key's
    /// thumbprint (else `InvalidKey`: the wrong bytes were stored or opened).
    pub fn from_secret_bytes(alg: KeyAlgorithm, kid: &str, bytes: &[u8]) -> Result<Self, JwtError> {
        let key = match alg {
            KeyAlgorithm::EdDSA => {
                let k = Ed25519Key::from_bytes(String::new(), bytes)
                    .ok_or(JwtError::InvalidKey("an Ed25519 seed is 32 bytes"))?;
                JwsSigningKey::Ed25519(Ed25519Key {
                    kid: thumbprint(&k.key),
                    key: k.key,
                })
            }
            KeyAlgorithm::Es256 => JwsSigningKey::Es256(EcdsaP256Key::from_key(
                p256::ecdsa::SigningKey::from_slice(bytes)
                    .map_err(|_| JwtError::InvalidKey("not a P-256 scalar"))?,
            )),
            KeyAlgorithm::Rs256 => {
                use rsa::pkcs8::DecodePrivateKey;
                let key = rsa::RsaPrivateKey::from_pkcs8_der(bytes)
                    .map_err(|_| JwtError::InvalidKey("not a PKCS#8 RSA key"))?;
                use rsa::traits::PublicKeyParts;
                if key.n().bits() < RSA_BITS {
                    return Err(JwtError::InvalidKey("RSA keys must be at least 2048 bits"));
                }
                JwsSigningKey::Rs256(RsaKey::from_key(key))
            }
        };
        if key.kid() != kid {
            return Err(JwtError::InvalidKey("the kid is not this key's thumbprint"));
        }
        Ok(key)
    }

    /// The secret to seal at rest (see the module comment for the formats).
    pub fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            JwsSigningKey::Ed25519(k) => Zeroizing::new(k.secret_bytes().to_vec()),
            JwsSigningKey::Es256(k) => Zeroizing::new(k.key.to_bytes().to_vec()),
            JwsSigningKey::Rs256(k) => {
                use rsa::pkcs8::EncodePrivateKey;
                let der = k
                    .signer
                    .as_ref()
                    .to_pkcs8_der()
                    .expect("encoding an in-memory RSA key as PKCS#8 cannot fail");
                Zeroizing::new(der.as_bytes().to_vec())
            }
        }
    }

    /// Key id (RFC 7638 thumbprint of the public JWK).
    pub fn kid(&self) -> &str {
        match self {
            JwsSigningKey::Ed25519(k) => &k.kid,
            JwsSigningKey::Es256(k) => &k.kid,
            JwsSigningKey::Rs256(k) => &k.kid,
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            JwsSigningKey::Ed25519(_) => KeyAlgorithm::EdDSA,
            JwsSigningKey::Es256(_) => KeyAlgorithm::Es256,
            JwsSigningKey::Rs256(_) => KeyAlgorithm::Rs256,
        }
    }

    /// The public JWK, with `kid` and `use: sig`; `alg` for ES256 and RS256
    /// only (see the module comment).
    pub fn public_jwk(&self) -> Value {
        match self {
            JwsSigningKey::Ed25519(k) => k.public_jwk(),
            JwsSigningKey::Es256(k) => k.public_jwk(),
            JwsSigningKey::Rs256(k) => k.public_jwk(),
        }
    }

    /// Signs `claims` as a compact JWS with header `alg`, `typ` and `kid`.
    /// `header_alg` must suit the key: `EdDSA` or `Ed25519` for Ed25519,
    /// `ES256`, `RS256`; anything else is `JwtError::KeyMismatch`.
    pub fn sign_jwt(
        &self,
        header_alg: &str,
        typ: &str,
        claims: &Value,
    ) -> Result<String, JwtError> {
        match (self, header_alg) {
            (JwsSigningKey::Ed25519(k), "EdDSA" | "Ed25519") => {
                Ok(k.sign_with_alg(header_alg, typ, claims))
            }
            (JwsSigningKey::Es256(k), "ES256") => {
                Ok(encode_jws(header_alg, typ, &k.kid, claims, |i| {
                    k.sign_raw(i)
                }))
            }
            (JwsSigningKey::Rs256(k), "RS256") => {
                Ok(encode_jws(header_alg, typ, &k.kid, claims, |i| {
                    k.sign_raw(i)
                }))
            }
            _ => Err(JwtError::KeyMismatch),
        }
    }
}

/// A decoded, signature-checked JWT.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
}

/// Why a JWT was refused (or a key could not be used).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    /// Not three base64url parts of JSON objects.
    #[error("malformed token")]
    Malformed,
    /// The header's algorithm is unsupported or not allowed here.
    #[error("unsupported algorithm")]
    Algorithm,
    /// The key's type does not suit the header's algorithm.
    #[error("the key cannot be used with this algorithm")]
    KeyMismatch,
    /// No known key has this kid (or, without a kid, none suits the algorithm).
    #[error("unknown signing key")]
    UnknownKey,
    /// Without a kid, several keys suit the algorithm.
    #[error("several keys match; a kid is needed")]
    AmbiguousKey,
    /// A JWK or key is unusable.
    #[error("unusable key: {0}")]
    InvalidKey(&'static str),
    /// A JWK with private members was given where a public key is expected.
    #[error("a private key was given where a public key is expected")]
    PrivateKey,
    /// The header names critical extensions, none of which are understood.
    #[error("unsupported critical header parameters")]
    CriticalHeader,
    /// Signature does not verify.
    #[error("bad signature")]
    Signature,
}

/// Splits and decodes a compact JWS without checking the signature; returns
/// the header, claims, signing input and signature bytes. Header and claims
/// must be JSON objects.
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
    if !header.is_object() || !claims.is_object() {
        return Err(JwtError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    Ok((header, claims, signing_input, sig))
}

/// The algorithms this server signs with, and so accepts on its own tokens.
pub const OWN_ALGS: &[&str] = &["EdDSA", "Ed25519", "ES256", "RS256"];

/// Verifies a compact JWS issued by this server against its public JWKs
/// (`EdDSA`, `Ed25519`, `ES256` or `RS256`); the header's `kid` picks the key.
/// A thin wrapper over `jose::verify_jws`.
pub fn verify_jwt(token: &str, jwks: &[Value]) -> Result<VerifiedJwt, JwtError> {
    super::jose::verify_jws(token, jwks, OWN_ALGS)
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
        assert_eq!(ok.header["alg"], "EdDSA");

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

    #[test]
    fn secret_bytes_round_trip_for_every_algorithm() {
        for alg in KeyAlgorithm::ALL {
            let key = JwsSigningKey::generate(alg);
            assert_eq!(key.algorithm(), alg);
            let bytes = key.secret_bytes();
            let back = JwsSigningKey::from_secret_bytes(alg, key.kid(), &bytes).unwrap();
            assert_eq!(back.kid(), key.kid());
            assert_eq!(back.public_jwk(), key.public_jwk());
            // A token signed by the reopened key verifies with the original JWK.
            let header_alg = match alg {
                KeyAlgorithm::EdDSA => "Ed25519",
                other => other.as_str(),
            };
            let t = back.sign_jwt(header_alg, "JWT", &json!({"x": 1})).unwrap();
            verify_jwt(&t, &[key.public_jwk()]).unwrap();
            // The kid is checked against the key.
            assert!(JwsSigningKey::from_secret_bytes(alg, "not-the-kid", &bytes).is_err());
            // Garbage is refused, not panicked on.
            assert!(JwsSigningKey::from_secret_bytes(alg, key.kid(), b"junk").is_err());
        }
        let ed = JwsSigningKey::generate(KeyAlgorithm::EdDSA);
        assert_eq!(ed.secret_bytes().len(), 32);
        let ec = JwsSigningKey::generate(KeyAlgorithm::Es256);
        assert_eq!(ec.secret_bytes().len(), 32);
    }

    #[test]
    fn public_jwks_carry_no_private_material() {
        for alg in KeyAlgorithm::ALL {
            let jwk = JwsSigningKey::generate(alg).public_jwk();
            for m in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(jwk.get(m).is_none(), "{alg} JWK has {m}");
            }
            assert_eq!(jwk["use"], "sig");
            match alg {
                KeyAlgorithm::EdDSA => {
                    assert_eq!(jwk["kty"], "OKP");
                    assert!(jwk.get("alg").is_none());
                }
                KeyAlgorithm::Es256 => {
                    assert_eq!(jwk["kty"], "EC");
                    assert_eq!(jwk["alg"], "ES256");
                }
                KeyAlgorithm::Rs256 => {
                    assert_eq!(jwk["kty"], "RSA");
                    assert_eq!(jwk["alg"], "RS256");
                    assert_eq!(jwk["e"], "AQAB");
                    assert_eq!(
                        URL_SAFE_NO_PAD
                            .decode(jwk["n"].as_str().unwrap())
                            .unwrap()
                            .len(),
                        256
                    );
                }
            }
        }
    }

    #[test]
    fn keys_sign_only_under_their_own_algorithm() {
        let ed = JwsSigningKey::generate(KeyAlgorithm::EdDSA);
        let ec = JwsSigningKey::generate(KeyAlgorithm::Es256);
        let claims = json!({});
        assert_eq!(
            ed.sign_jwt("ES256", "JWT", &claims).unwrap_err(),
            JwtError::KeyMismatch
        );
        assert_eq!(
            ec.sign_jwt("RS256", "JWT", &claims).unwrap_err(),
            JwtError::KeyMismatch
        );
        assert_eq!(
            ec.sign_jwt("none", "JWT", &claims).unwrap_err(),
            JwtError::KeyMismatch
        );
        assert_eq!(
            KeyAlgorithm::for_header_alg("Ed25519"),
            Some(KeyAlgorithm::EdDSA)
        );
        assert_eq!(KeyAlgorithm::parse("Ed25519"), None);
        assert_eq!(KeyAlgorithm::parse("RS256"), Some(KeyAlgorithm::Rs256));
    }

    #[test]
    fn non_object_parts_are_malformed() {
        let h = URL_SAFE_NO_PAD.encode(b"[1]");
        let c = URL_SAFE_NO_PAD.encode(b"{}");
        assert_eq!(
            decode_unverified(&format!("{h}.{c}.")).unwrap_err(),
            JwtError::Malformed
        );
    }
}
