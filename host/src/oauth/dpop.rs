//! DPoP (RFC 9449): proof validation, key binding and server nonces.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::OAuthError;
use super::issuer::Issuer;
use crate::context::Ctx;
use crate::crypto::jose::{jwk_thumbprint, verify_with_jwk};
use crate::crypto::signing::decode_unverified;
use crate::time::Timestamp;

/// Algorithms accepted for DPoP proofs (asymmetric only, RFC 9449 §4.2).
pub const DPOP_ALGS: &[&str] = &["ES256", "EdDSA", "Ed25519", "RS256", "PS256"];

/// How far a proof's `iat` may be from now, seconds.
const IAT_WINDOW: i64 = 60;

/// Nonces rotate every `NONCE_WINDOW` seconds; the current and the previous
/// one are accepted.
const NONCE_WINDOW: i64 = 300;

/// A validated proof: the thumbprint of the key that signed it.
#[derive(Debug, Clone)]
pub struct DpopKey {
    /// RFC 7638 thumbprint (`cnf.jkt`).
    pub jkt: String,
}

/// What the proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// HTTP method (`htm`).
    pub method: &'a str,
    /// The endpoint URL without query or fragment (`htu`).
    pub url: &'a str,
    /// The access token presented with the proof (`ath`), at resource endpoints.
    pub access_token: Option<&'a str>,
}

fn nonce_mac(ctx: &Ctx, issuer: &Issuer, window: i64) -> [u8; 16] {
    let key = ctx.master.derive("dpop-nonce");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(issuer.tenant.id.as_bytes());
    mac.update(&window.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// A fresh nonce for this issuer. Nonces are stateless (a time window and
/// its MAC under a key derived from the master key), so every node of a
/// cluster issues and accepts the same ones.
pub fn current_nonce(ctx: &Ctx, issuer: &Issuer) -> String {
    let window = Timestamp::now().unix() / NONCE_WINDOW;
    let mut raw = window.to_be_bytes().to_vec();
    raw.extend_from_slice(&nonce_mac(ctx, issuer, window));
    URL_SAFE_NO_PAD.encode(raw)
}

fn nonce_valid(ctx: &Ctx, issuer: &Issuer, nonce: &str) -> bool {
    let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
        return false;
    };
    if raw.len() != 24 {
        return false;
    }
    let window = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
    let now = Timestamp::now().unix() / NONCE_WINDOW;
    if window != now && window != now - 1 {
        return false;
    }
    use subtle::ConstantTimeEq;
    nonce_mac(ctx, issuer, window).ct_eq(&raw[8..]).into()
}

/// Strips query and fragment and lowercases scheme and host, for `htu`
/// comparison (RFC 9449 §4.3 point 9).
fn normalize_htu(u: &str) -> Option<String> {
    let mut url = url::Url::parse(u).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

/// Validates the `DPoP` header `proof` for `target` (RFC 9449 §4.3).
pub async fn validate(
    ctx: &Ctx,
    issuer: &Issuer,
    proof: &str,
    target: ProofTarget<'_>,
) -> Result<DpopKey, OAuthError> {
    let bad = |m: &str| OAuthError::invalid_dpop_proof(m.to_string());
    if proof.len() > 8192 {
        return Err(bad("the DPoP proof is too large"));
    }
    let (header, _, _, _) =
        decode_unverified(proof).map_err(|_| bad("the DPoP proof is not a JWT"))?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(bad("the DPoP proof must have typ dpop+jwt"));
    }
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !DPOP_ALGS.contains(&alg) {
        return Err(bad("the DPoP proof's algorithm is not supported"));
    }
    let jwk = header
        .get("jwk")
        .ok_or_else(|| bad("the DPoP proof has no jwk header"))?;
    let jkt = jwk_thumbprint(jwk).map_err(|_| bad("the DPoP proof's jwk is not a public key"))?;
    let jwt = verify_with_jwk(proof, jwk, DPOP_ALGS)
        .map_err(|_| bad("the DPoP proof's signature does not verify"))?;
    let c = &jwt.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| bad("the DPoP proof needs a jti"))?;
    if s("htm") != Some(target.method) {
        return Err(bad(
            "the DPoP proof's htm does not match the request method",
        ));
    }
    let htu_ok = s("htu").and_then(normalize_htu) == normalize_htu(target.url);
    if !htu_ok {
        return Err(bad("the DPoP proof's htu does not match the request URL"));
    }
    let now = Timestamp::now().unix();
    let iat = c
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("the DPoP proof needs an iat"))?;
    if (iat - now).abs() > IAT_WINDOW {
        return Err(bad("the DPoP proof's iat is outside the accepted window"));
    }
    if let Some(at) = target.access_token {
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(at.as_bytes()));
        if s("ath") != Some(expected.as_str()) {
            return Err(bad("the DPoP proof's ath does not match the access token"));
        }
    }
    match s("nonce") {
        Some(n) if nonce_valid(ctx, issuer, n) => {}
        Some(_) => return Err(OAuthError::use_dpop_nonce(current_nonce(ctx, issuer))),
        None if issuer.tenant.settings.dpop_nonce_required.unwrap_or(false) => {
            return Err(OAuthError::use_dpop_nonce(current_nonce(ctx, issuer)));
        }
        None => {}
    }
    let key = format!("dpop:{}:{jkt}:{jti}", issuer.tenant.id);
    let first = ctx
        .replay
        .first_use(key, iat + 2 * IAT_WINDOW, now)
        .await
        .map_err(|e| {
            // Fail closed: an unchecked proof could be a replay.
            tracing::error!(error = %e, "replay cache unavailable");
            OAuthError::unavailable()
        })?;
    if !first {
        return Err(bad("the DPoP proof was already used"));
    }
    Ok(DpopKey { jkt })
}
