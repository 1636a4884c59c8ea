//! The UserInfo endpoint (OIDC Core §5.3), honouring DPoP binding.

use serde_json::{Value, json};

use super::dpop::{self, ProofTarget};
use super::error::OAuthError;
use super::introspection::active_access_token;
use super::issuance::user_claims;
use super::issuer::Issuer;
use crate::context::Ctx;

/// How the access token was presented.
#[derive(Debug, Clone)]
pub struct PresentedToken {
    /// `Bearer` or `DPoP`.
    pub scheme: String,
    /// The token.
    pub token: String,
    /// The `DPoP` proof header, if any.
    pub proof: Option<String>,
}

/// The claims of the token's user that its scopes release.
///
/// Security decision (RFC 9449 §7): a DPoP-bound token is accepted only
/// with the DPoP scheme and a proof by the bound key for this request; a
/// bearer token sent with the DPoP scheme is refused too, so a downgrade
/// is never possible.
pub async fn userinfo(
    ctx: &Ctx,
    issuer: &Issuer,
    presented: &PresentedToken,
    method: &str,
) -> Result<Value, OAuthError> {
    let scheme = presented.scheme.as_str();
    let active = match active_access_token(ctx, issuer, &presented.token).await? {
        Ok(a) => a,
        Err(reason) => return Err(OAuthError::invalid_token(reason).challenge(scheme)),
    };
    let url = issuer.endpoint("/oauth/userinfo");
    match (active.jkt(), scheme) {
        (Some(jkt), "DPoP") => {
            let proof = presented.proof.as_deref().ok_or_else(|| {
                OAuthError::invalid_dpop_proof("a DPoP proof is required").challenge("DPoP")
            })?;
            let key = dpop::validate(
                ctx,
                issuer,
                proof,
                ProofTarget {
                    method,
                    url: &url,
                    access_token: Some(&presented.token),
                },
            )
            .await
            .map_err(|e| e.challenge("DPoP"))?;
            if key.jkt != jkt {
                return Err(OAuthError::invalid_dpop_proof(
                    "the DPoP proof is signed by another key than the token is bound to",
                )
                .challenge("DPoP"));
            }
        }
        (Some(_), _) => {
            return Err(OAuthError::invalid_token(
                "this token is DPoP-bound and must be presented with the DPoP scheme",
            )
            .challenge("DPoP"));
        }
        (None, "DPoP") => {
            return Err(OAuthError::invalid_token("this token is not DPoP-bound").challenge("DPoP"));
        }
        (None, _) => {}
    }
    let scopes = active.scopes();
    if !scopes.contains(&"openid") {
        return Err(
            OAuthError::insufficient_scope("the token lacks the openid scope").challenge(scheme),
        );
    }
    let mut claims = user_claims(&active.user, &scopes);
    claims.insert("sub".into(), json!(active.user.id));
    Ok(Value::Object(claims))
}
