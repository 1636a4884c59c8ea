//! JOSE verification: compact JWS checked against public JWKs (RFC 7515,
//! 7517, 7518, RFC 8037 and RFC 9864 for Ed25519), JWK thumbprints
//! (RFC 7638) and OpenID Connect half hashes (`at_hash`, `c_hash`).
//!
//! Security decisions:
//! - Only asymmetric algorithms are ever accepted: `EdDSA`/`Ed25519` (OKP
//!   Ed25519), `ES256` (EC P-256), `RS256` and `PS256` (RSA). `none` and
//!   every `HS*` are refused even when a caller lists them, so a public key
//!   can never be used as an HMAC secret.
//! - The header's `alg` must match the key type (no RS256 over an EC key, no
//!   ES256 over an RSA key); a JWK that declares `alg` must declare the
//!   header's `alg` (the two Ed25519 names are one algorithm on one key type),
//!   and a JWK whose `use`/`key_ops` excludes verification is not used.
//! - Keys are parsed fully before use: Ed25519 points must decompress and not
//!   be of small order, P-256 points must lie on the curve, RSA moduli must be
//!   2048 to 4096 bits (the upper bound caps the cost of attacker-supplied
//!   DPoP keys). JWKs carrying private members are refused outright.
//! - A header naming extensions in `crit` is refused (RFC 7515 §4.1.11: none
//!   are understood here), and header-embedded keys (`jwk`, `jku`, `x5c`) are
//!   ignored by `verify_jws`: only the caller's key set is trusted.
//! - ES256 signatures must be the raw 64-byte `r || s` form (RFC 7518
//!   §3.4); DER is refused. Ed25519 uses `verify_strict`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use super::signing::{JwtError, VerifiedJwt, decode_unverified};

/// Smallest accepted RSA modulus, bits (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// Largest accepted RSA modulus, bits.
pub const MAX_RSA_BITS: usize = 4096;

/// Every JWS algorithm this module can verify.
pub const SUPPORTED_ALGS: &[&str] = &["EdDSA", "Ed25519", "ES256", "RS256", "PS256"];

/// JWK members that only private (or symmetric) keys carry.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A parsed, validated public key.
#[derive(Debug, Clone)]
pub(crate) enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

fn member<'a>(jwk: &'a Value, name: &str) -> Result<&'a str, JwtError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(JwtError::InvalidKey("a required member is missing"))
}

fn b64_member(jwk: &Value, name: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(member(jwk, name)?)
        .map_err(|_| JwtError::InvalidKey("a member is not base64url"))
}

/// Parses a public JWK, refusing private members and unusable keys.
pub(crate) fn parse_public(jwk: &Value) -> Result<PublicKey, JwtError> {
    let obj = jwk
        .as_object()
        .ok_or(JwtError::InvalidKey("not a JSON object"))?;
    // Security: a private key must never be accepted (or stored, or
    // thumbprinted) where a public one is expected.
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err(JwtError::PrivateKey);
    }
    match member(jwk, "kty")? {
        "OKP" => {
            if member(jwk, "crv")? != "Ed25519" {
                return Err(JwtError::InvalidKey(
                    "only the Ed25519 OKP curve is supported",
                ));
            }
            let x: [u8; 32] = b64_member(jwk, "x")?
                .try_into()
                .map_err(|_| JwtError::InvalidKey("x must be 32 bytes"))?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| JwtError::InvalidKey("x is not an Ed25519 point"))?;
            if vk.is_weak() {
                return Err(JwtError::InvalidKey("x is a small-order point"));
            }
            Ok(PublicKey::Ed25519(vk))
        }
        "EC" => {
            if member(jwk, "crv")? != "P-256" {
                return Err(JwtError::InvalidKey("only the P-256 EC curve is supported"));
            }
            // RFC 7518 §6.2.1.2: coordinates are the full 32 bytes.
            let x = b64_member(jwk, "x")?;
            let y = b64_member(jwk, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(JwtError::InvalidKey("x and y must be 32 bytes"));
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .map_err(|_| JwtError::InvalidKey("the point is not on P-256"))?;
            Ok(PublicKey::P256(vk))
        }
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&b64_member(jwk, "n")?);
            let e = rsa::BigUint::from_bytes_be(&b64_member(jwk, "e")?);
            let bits = n.bits();
            if bits < MIN_RSA_BITS {
                return Err(JwtError::InvalidKey("RSA keys must be at least 2048 bits"));
            }
            if bits > MAX_RSA_BITS {
                return Err(JwtError::InvalidKey("RSA keys must be at most 4096 bits"));
            }
            let key = rsa::RsaPublicKey::new(n, e)
                .map_err(|_| JwtError::InvalidKey("not a valid RSA public key"))?;
            Ok(PublicKey::Rsa(key))
        }
        _ => Err(JwtError::InvalidKey("kty must be OKP, EC or RSA")),
    }
}

/// RFC 7638 thumbprint over already-ordered `(name, value)` members.
pub(crate) fn thumbprint_of(members: &[(&str, &str)]) -> String {
    let mut canonical = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        // Names are fixed ASCII; values are serialised as JSON strings so
        // any character is escaped exactly as RFC 7638 §3 requires.
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&Value::String((*value).to_string()).to_string());
    }
    canonical.push('}');
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of a public OKP (Ed25519),
/// EC (P-256) or RSA JWK. The key is validated first; a JWK with private
/// members (`d`, `p`, ...) is refused.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, JwtError> {
    let key = parse_public(jwk)?;
    let m = |name| member(jwk, name);
    Ok(match key {
        PublicKey::Ed25519(_) => {
            thumbprint_of(&[("crv", m("crv")?), ("kty", "OKP"), ("x", m("x")?)])
        }
        PublicKey::P256(_) => thumbprint_of(&[
            ("crv", m("crv")?),
            ("kty", "EC"),
            ("x", m("x")?),
            ("y", m("y")?),
        ]),
        PublicKey::Rsa(_) => thumbprint_of(&[("e", m("e")?), ("kty", "RSA"), ("n", m("n")?)]),
    })
}

/// `at_hash` / `c_hash` (OpenID Connect Core §3.1.3.6, §3.3.2.11): base64url
/// of the left half of the hash of `value`, using the hash of the ID token's
/// `alg` — SHA-256 for `RS256`/`ES256`/`PS256`, SHA-512 for `EdDSA`/`Ed25519`
/// (the hash Ed25519 itself uses, as OpenID Connect specifies for it).
/// Unknown algorithms fall back to SHA-256.
pub fn oidc_half_hash(alg: &str, value: &str) -> String {
    let digest: Vec<u8> = match alg {
        "EdDSA" | "Ed25519" => Sha512::digest(value.as_bytes()).to_vec(),
        _ => Sha256::digest(value.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Checks the header's `alg` against `allowed` and the supported set, and
/// refuses critical extensions. Returns the `alg`.
fn checked_alg<'a>(header: &'a Value, allowed: &[&str]) -> Result<&'a str, JwtError> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    // Security: `none` and HMAC are not in SUPPORTED_ALGS, so even a caller
    // that lists them cannot get them accepted.
    if !SUPPORTED_ALGS.contains(&alg) || !allowed.contains(&alg) {
        return Err(JwtError::Algorithm);
    }
    if header.get("crit").is_some() {
        return Err(JwtError::CriticalHeader);
    }
    Ok(alg)
}

/// Whether the key type (and the JWK's own `alg`, `use`, `key_ops`) allows
/// verifying `alg` with it.
fn usable_with(alg: &str, key: &PublicKey, jwk: &Value) -> bool {
    let type_ok = matches!(
        (alg, key),
        ("EdDSA" | "Ed25519", PublicKey::Ed25519(_))
            | ("ES256", PublicKey::P256(_))
            | ("RS256" | "PS256", PublicKey::Rsa(_))
    );
    let alg_ok = match jwk.get("alg") {
        None => true,
        // RFC 9864: `EdDSA` on an Ed25519 key is the same algorithm as `Ed25519`.
        Some(Value::String(a)) => {
            a == alg
                || (matches!(key, PublicKey::Ed25519(_))
                    && matches!(a.as_str(), "EdDSA" | "Ed25519"))
        }
        Some(_) => false,
    };
    let use_ok = match jwk.get("use") {
        None => true,
        Some(u) => u == "sig",
    };
    let ops_ok = match jwk.get("key_ops") {
        None => true,
        Some(Value::Array(ops)) => ops.iter().any(|o| o == "verify"),
        Some(_) => false,
    };
    type_ok && alg_ok && use_ok && ops_ok
}

/// Verifies `sig` over `input` with `key` under `alg` (already matched).
fn verify_signature(alg: &str, key: &PublicKey, input: &[u8], sig: &[u8]) -> Result<(), JwtError> {
    use rsa::signature::Verifier;
    match key {
        PublicKey::Ed25519(vk) => {
            let sig: [u8; 64] = sig.try_into().map_err(|_| JwtError::Signature)?;
            vk.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&sig))
                .map_err(|_| JwtError::Signature)
        }
        PublicKey::P256(vk) => {
            if sig.len() != 64 {
                return Err(JwtError::Signature);
            }
            let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| JwtError::Signature)?;
            vk.verify(input, &sig).map_err(|_| JwtError::Signature)
        }
        PublicKey::Rsa(pk) => {
            use rsa::traits::PublicKeyParts;
            if sig.len() != pk.size() {
                return Err(JwtError::Signature);
            }
            if alg == "PS256" {
                let sig = rsa::pss::Signature::try_from(sig).map_err(|_| JwtError::Signature)?;
                rsa::pss::VerifyingKey::<Sha256>::new(pk.clone())
                    .verify(input, &sig)
                    .map_err(|_| JwtError::Signature)
            } else {
                let sig =
                    rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| JwtError::Signature)?;
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk.clone())
                    .verify(input, &sig)
                    .map_err(|_| JwtError::Signature)
            }
        }
    }
}

/// Verifies a compact JWS against a set of public JWKs.
///
/// The header's `alg` must be in `allowed_algs` (and supported: `EdDSA`,
/// `Ed25519`, `ES256`, `RS256`, `PS256`). With a `kid` the key with that id
/// is used; without one, the single key usable with `alg` (several answer
/// `AmbiguousKey`). Keys in the set that do not parse are skipped.
pub fn verify_jws(
    token: &str,
    jwks: &[Value],
    allowed_algs: &[&str],
) -> Result<VerifiedJwt, JwtError> {
    let (header, claims, signing_input, sig) = decode_unverified(token)?;
    let alg = checked_alg(&header, allowed_algs)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(JwtError::Malformed),
    };
    let named: Vec<&Value> = jwks
        .iter()
        .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .collect();
    if named.is_empty() {
        return Err(JwtError::UnknownKey);
    }
    let parsed: Vec<(PublicKey, &Value)> = named
        .into_iter()
        .filter_map(|jwk| parse_public(jwk).ok().map(|k| (k, jwk)))
        .collect();
    let mut usable = parsed.iter().filter(|(k, jwk)| usable_with(alg, k, jwk));
    let (key, _) = match (usable.next(), usable.next()) {
        (Some(one), None) => one,
        (Some(_), Some(_)) => return Err(JwtError::AmbiguousKey),
        // A key with this kid exists but is of another type: alg confusion.
        (None, _) if kid.is_some() && !parsed.is_empty() => return Err(JwtError::KeyMismatch),
        (None, _) => return Err(JwtError::UnknownKey),
    };
    verify_signature(alg, key, signing_input.as_bytes(), &sig)?;
    Ok(VerifiedJwt { header, claims })
}

/// Verifies a compact JWS with one given public JWK — for DPoP proofs, whose
/// key travels in the header (the caller extracts it, and binds to its
/// thumbprint). `kid` is not consulted. The JWK must be public and usable
/// with the header's `alg`, which must be in `allowed_algs`.
pub fn verify_with_jwk(
    token: &str,
    jwk: &Value,
    allowed_algs: &[&str],
) -> Result<VerifiedJwt, JwtError> {
    let (header, claims, signing_input, sig) = decode_unverified(token)?;
    let alg = checked_alg(&header, allowed_algs)?;
    let key = parse_public(jwk)?;
    if !usable_with(alg, &key, jwk) {
        return Err(JwtError::KeyMismatch);
    }
    verify_signature(alg, &key, signing_input.as_bytes(), &sig)?;
    Ok(VerifiedJwt { header, claims })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crypto::signing::{JwsSigningKey, KeyAlgorithm};

    const ALL: &[&str] = SUPPORTED_ALGS;

    /// RFC 7638 §3.1.
    #[test]
    fn thumbprint_matches_rfc7638_example() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 8037 Appendix A.3 (Ed25519 thumbprint).
    #[test]
    fn thumbprint_matches_rfc8037_example() {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn thumbprint_refuses_private_and_unusable_keys() {
        let key = JwsSigningKey::generate(KeyAlgorithm::Es256);
        let mut private = key.public_jwk();
        private["d"] = json!("AAAA");
        assert_eq!(jwk_thumbprint(&private).unwrap_err(), JwtError::PrivateKey);
        assert!(jwk_thumbprint(&json!({"kty": "oct", "k": "c2VjcmV0"})).is_err());
        assert!(
            jwk_thumbprint(&json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"})).is_err()
        );
        // A 1024-bit RSA key is refused.
        let small = json!({"kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 128])});
        assert!(matches!(
            jwk_thumbprint(&small),
            Err(JwtError::InvalidKey(_))
        ));
        // Off-curve P-256 point.
        let mut off = key.public_jwk();
        off["y"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert!(jwk_thumbprint(&off).is_err());
        assert!(jwk_thumbprint(&json!("not an object")).is_err());
    }

    #[test]
    fn own_keys_are_named_by_their_thumbprint() {
        for alg in KeyAlgorithm::ALL {
            let key = JwsSigningKey::generate(alg);
            assert_eq!(jwk_thumbprint(&key.public_jwk()).unwrap(), key.kid());
        }
    }

    #[test]
    fn half_hash_uses_the_algorithms_hash() {
        // OpenID Connect Core example: at_hash of this token under RS256.
        assert_eq!(
            oidc_half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(oidc_half_hash("ES256", "x").len(), 22);
        let ed = oidc_half_hash("EdDSA", "x");
        assert_eq!(ed, oidc_half_hash("Ed25519", "x"));
        assert_eq!(URL_SAFE_NO_PAD.decode(&ed).unwrap().len(), 32);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&ed).unwrap(),
            Sha512::digest(b"x")[..32].to_vec()
        );
    }

    fn tamper(token: &str) -> String {
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory"}"#);
        parts.join(".")
    }

    fn header_of(token: &str) -> Value {
        decode_unverified(token).unwrap().0
    }

    #[test]
    fn every_algorithm_round_trips_and_detects_tampering_and_wrong_keys() {
        let cases = [
            (KeyAlgorithm::EdDSA, "EdDSA"),
            (KeyAlgorithm::EdDSA, "Ed25519"),
            (KeyAlgorithm::Es256, "ES256"),
            (KeyAlgorithm::Rs256, "RS256"),
        ];
        for (kalg, header_alg) in cases {
            let key = JwsSigningKey::generate(kalg);
            let other = JwsSigningKey::generate(kalg);
            let token = key
                .sign_jwt(header_alg, "JWT", &json!({"sub": "alice"}))
                .unwrap();
            let h = header_of(&token);
            assert_eq!(h["alg"], header_alg);
            assert_eq!(h["kid"], key.kid());
            let jwks = vec![other.public_jwk(), key.public_jwk()];
            let ok = verify_jws(&token, &jwks, ALL).unwrap();
            assert_eq!(ok.claims["sub"], "alice", "{header_alg}");
            // By the embedded-key path too.
            verify_with_jwk(&token, &key.public_jwk(), ALL).unwrap();
            // Tampered claims.
            assert_eq!(
                verify_jws(&tamper(&token), &jwks, ALL).unwrap_err(),
                JwtError::Signature,
                "{header_alg}"
            );
            // Wrong key: by kid it is unknown; forced, the signature fails.
            assert_eq!(
                verify_jws(&token, &[other.public_jwk()], ALL).unwrap_err(),
                JwtError::UnknownKey
            );
            assert_eq!(
                verify_with_jwk(&token, &other.public_jwk(), ALL).unwrap_err(),
                JwtError::Signature
            );
            // Not allowed by the caller.
            assert_eq!(
                verify_jws(&token, &jwks, &["PS256"]).unwrap_err(),
                JwtError::Algorithm
            );
        }
    }

    #[test]
    fn kid_less_tokens_use_the_only_compatible_key() {
        let ec = JwsSigningKey::generate(KeyAlgorithm::Es256);
        let ed = JwsSigningKey::generate(KeyAlgorithm::EdDSA);
        let token = ec.sign_jwt("ES256", "JWT", &json!({"a": 1})).unwrap();
        // Strip the kid from the header and re-sign by hand.
        let (_, _, input, _) = decode_unverified(&token).unwrap();
        let claims_part = input.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        let signing_input = format!("{header}.{claims_part}");
        let JwsSigningKey::Es256(inner) = &ec else {
            unreachable!()
        };
        let sig = inner.sign_raw(signing_input.as_bytes());
        let no_kid = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
        let mut ec_nokid = ec.public_jwk();
        ec_nokid.as_object_mut().unwrap().remove("kid");
        verify_jws(&no_kid, &[ed.public_jwk(), ec_nokid.clone()], ALL).unwrap();
        // Two EC keys and no kid: ambiguous.
        let ec2 = JwsSigningKey::generate(KeyAlgorithm::Es256);
        assert_eq!(
            verify_jws(&no_kid, &[ec_nokid, ec2.public_jwk()], ALL).unwrap_err(),
            JwtError::AmbiguousKey
        );
        assert_eq!(
            verify_jws(&no_kid, &[ed.public_jwk()], ALL).unwrap_err(),
            JwtError::UnknownKey
        );
    }

    /// Re-labels a token's header `alg` (keeping kid and signature).
    fn relabel(token: &str, alg: &str) -> String {
        let mut h = header_of(token);
        h["alg"] = json!(alg);
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(h.to_string());
        parts.join(".")
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        let ec = JwsSigningKey::generate(KeyAlgorithm::Es256);
        let rsa = JwsSigningKey::generate(KeyAlgorithm::Rs256);
        let ed = JwsSigningKey::generate(KeyAlgorithm::EdDSA);
        let jwks = vec![ec.public_jwk(), rsa.public_jwk(), ed.public_jwk()];
        let es = ec.sign_jwt("ES256", "JWT", &json!({})).unwrap();
        // RS256 header naming the EC key.
        assert_eq!(
            verify_jws(&relabel(&es, "RS256"), &jwks, ALL).unwrap_err(),
            JwtError::KeyMismatch
        );
        assert_eq!(
            verify_with_jwk(&relabel(&es, "RS256"), &ec.public_jwk(), ALL).unwrap_err(),
            JwtError::KeyMismatch
        );
        // ES256 header naming the RSA key; EdDSA header naming the EC key.
        let rs = rsa.sign_jwt("RS256", "JWT", &json!({})).unwrap();
        assert_eq!(
            verify_jws(&relabel(&rs, "ES256"), &jwks, ALL).unwrap_err(),
            JwtError::KeyMismatch
        );
        assert_eq!(
            verify_jws(&relabel(&es, "EdDSA"), &jwks, ALL).unwrap_err(),
            JwtError::KeyMismatch
        );
        // PS256 header over a PKCS#1 v1.5 signature: same key type, wrong padding.
        assert_eq!(
            verify_jws(&relabel(&rs, "PS256"), &[rsa.public_jwk()], &["PS256"]).unwrap_err(),
            JwtError::KeyMismatch,
            "the JWK declares alg RS256"
        );
        let mut no_alg = rsa.public_jwk();
        no_alg.as_object_mut().unwrap().remove("alg");
        assert_eq!(
            verify_jws(&relabel(&rs, "PS256"), &[no_alg], &["PS256"]).unwrap_err(),
            JwtError::Signature
        );
        // none and HMAC never pass, even when "allowed".
        for bad in ["none", "HS256", "HS512", "RS512"] {
            assert_eq!(
                verify_jws(&relabel(&rs, bad), &jwks, &[bad]).unwrap_err(),
                JwtError::Algorithm,
                "{bad}"
            );
        }
        // HS256 with the RSA public key as secret: refused before any MAC.
        assert_eq!(
            verify_with_jwk(&relabel(&rs, "HS256"), &rsa.public_jwk(), &["HS256"]).unwrap_err(),
            JwtError::Algorithm
        );
    }

    #[test]
    fn ed25519_jwk_without_alg_serves_both_header_names() {
        let ed = JwsSigningKey::generate(KeyAlgorithm::EdDSA);
        let jwk = ed.public_jwk();
        assert!(jwk.get("alg").is_none());
        assert_eq!(jwk["use"], "sig");
        for name in ["EdDSA", "Ed25519"] {
            let t = ed.sign_jwt(name, "JWT", &json!({})).unwrap();
            verify_jws(&t, std::slice::from_ref(&jwk), ALL).unwrap();
            // A legacy JWK declaring alg EdDSA verifies both names too.
            let mut legacy = jwk.clone();
            legacy["alg"] = json!("EdDSA");
            verify_jws(&t, &[legacy], ALL).unwrap();
        }
    }

    #[test]
    fn private_jwks_and_critical_headers_are_refused() {
        let ec = JwsSigningKey::generate(KeyAlgorithm::Es256);
        let t = ec.sign_jwt("ES256", "JWT", &json!({})).unwrap();
        let mut private = ec.public_jwk();
        private["d"] = json!("AAAA");
        assert_eq!(
            verify_with_jwk(&t, &private, ALL).unwrap_err(),
            JwtError::PrivateKey
        );
        // A kid-named private key is skipped (unusable), so the kid is unknown to usable keys.
        assert!(verify_jws(&t, &[private], ALL).is_err());
        let mut h = header_of(&t);
        h["crit"] = json!(["exp"]);
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(h.to_string());
        assert_eq!(
            verify_jws(&parts.join("."), &[ec.public_jwk()], ALL).unwrap_err(),
            JwtError::CriticalHeader
        );
        // A JWK for encryption only is not used to verify.
        let mut enc = ec.public_jwk();
        enc["use"] = json!("enc");
        assert!(verify_jws(&t, &[enc], ALL).is_err());
    }

    #[test]
    fn es256_refuses_der_and_wrong_length_signatures() {
        let ec = JwsSigningKey::generate(KeyAlgorithm::Es256);
        let t = ec.sign_jwt("ES256", "JWT", &json!({})).unwrap();
        let (input, sig) = t.rsplit_once('.').unwrap();
        let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        assert_eq!(raw.len(), 64);
        let der = p256::ecdsa::Signature::from_slice(&raw).unwrap().to_der();
        let with_der = format!("{input}.{}", URL_SAFE_NO_PAD.encode(der.as_bytes()));
        assert_eq!(
            verify_jws(&with_der, &[ec.public_jwk()], ALL).unwrap_err(),
            JwtError::Signature
        );
        let zero = format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
        assert_eq!(
            verify_jws(&zero, &[ec.public_jwk()], ALL).unwrap_err(),
            JwtError::Signature
        );
    }

    #[test]
    fn ps256_signatures_verify() {
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let jwk = {
            use rsa::traits::PublicKeyParts;
            json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                   "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())})
        };
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"PS256","typ":"dpop+jwt"}"#);
        let claims = URL_SAFE_NO_PAD.encode(br#"{"htm":"POST"}"#);
        let input = format!("{header}.{claims}");
        let signer = rsa::pss::BlindedSigningKey::<Sha256>::new(key);
        let sig = signer.sign_with_rng(&mut rand::rngs::OsRng, input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        let ok = verify_with_jwk(&token, &jwk, ALL).unwrap();
        assert_eq!(ok.claims["htm"], "POST");
        assert_eq!(
            verify_with_jwk(&tamper(&token), &jwk, ALL).unwrap_err(),
            JwtError::Signature
        );
        // The same signature labelled RS256 fails (padding differs).
        assert_eq!(
            verify_with_jwk(&relabel(&token, "RS256"), &jwk, ALL).unwrap_err(),
            JwtError::Signature
        );
    }
}
