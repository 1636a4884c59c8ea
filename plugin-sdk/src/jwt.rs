//! Category `jwt-customizer`: adds claims to, or removes claims from, the
//! access and ID tokens the server issues. See the WIT page
//! `docs/jwt-customizer.md`.
//!
//! This is the hottest plugin path (one call per token): parse your
//! configuration once in [`crate::Plugin::new`] and avoid outbound HTTP.
//! Protected claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`,
//! `auth_time`, `nonce`, `acr`, `amr`, `azp`, `sid`, `at_hash`, `c_hash`,
//! `s_hash`, `cnf`, `client_id`, `scope`; see [`PROTECTED_CLAIMS`]) are
//! dropped by the host if named in `add` or `remove`.

use std::marker::PhantomData;

use crate::bindings::jwt_customizer as raw;
use crate::types::{Attribute, CallContext, Json, PluginError, conv, json_in};

/// Claims the host never lets a customizer add or remove.
pub const PROTECTED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "c_hash",
    "s_hash",
    "cnf",
    "client_id",
    "scope",
];

/// Whether the host refuses changes to the claim `name`.
pub fn is_protected_claim(name: &str) -> bool {
    PROTECTED_CLAIMS.contains(&name)
}

/// Which token is being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An OAuth 2.0 access token (JWT, RFC 9068 profile).
    Access,
    /// An OpenID Connect ID token.
    Id,
}

/// One claim of a token: its name and its value as JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The claim name, e.g. `roles`.
    pub name: String,
    /// The value as JSON, e.g. `["admin","billing"]`.
    pub value: Json,
}

impl Claim {
    /// A claim from a `serde_json::Value` (always valid JSON).
    pub fn new(name: impl Into<String>, value: &serde_json::Value) -> Self {
        Claim {
            name: name.into(),
            value: Json::from_value(value),
        }
    }
}

/// The token being issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// Access token or ID token.
    pub kind: TokenKind,
    /// The subject (user id); `None` for client-credentials tokens.
    pub subject: Option<String>,
    /// The OAuth client the token is issued to.
    pub client_id: String,
    /// The grant type, e.g. `authorization_code`.
    pub grant_type: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The token's audiences, if any.
    pub audience: Vec<String>,
    /// The user's attributes (`roles`, `groups`, `email`, custom ones);
    /// empty without a user.
    pub subject_attributes: Vec<Attribute>,
    /// The claims as they stand (registered claims included, read-only).
    pub claims: Vec<Claim>,
}

/// The changes to make to the token's claims.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Customization {
    /// Claims to add (a present, unprotected claim is replaced).
    pub add: Vec<Claim>,
    /// Names of claims to remove.
    pub remove: Vec<String>,
}

impl Customization {
    /// No change.
    pub fn none() -> Self {
        Customization::default()
    }

    /// Adds a claim (builder style).
    pub fn with_claim(mut self, name: impl Into<String>, value: &serde_json::Value) -> Self {
        self.add.push(Claim::new(name, value));
        self
    }
}

/// A jwt-customizer plugin.
pub trait JwtCustomizer: crate::Plugin {
    /// Returns the changes to make to the token's claims; an empty
    /// [`Customization`] leaves the token as it is. Not retried. Fails
    /// closed by default (the token request fails).
    fn customize(
        &self,
        ctx: &CallContext,
        request: TokenRequest,
    ) -> Result<Customization, PluginError>;
}

impl From<raw::TokenKind> for TokenKind {
    fn from(k: raw::TokenKind) -> Self {
        match k {
            raw::TokenKind::Access => TokenKind::Access,
            raw::TokenKind::Id => TokenKind::Id,
        }
    }
}

impl From<raw::Claim> for Claim {
    fn from(c: raw::Claim) -> Self {
        Claim {
            name: c.name,
            value: json_in(c.value),
        }
    }
}

impl From<Claim> for raw::Claim {
    fn from(c: Claim) -> Self {
        raw::Claim {
            name: c.name,
            value: c.value.into_string(),
        }
    }
}

impl From<raw::TokenRequest> for TokenRequest {
    fn from(r: raw::TokenRequest) -> Self {
        TokenRequest {
            kind: r.kind.into(),
            subject: r.subject,
            client_id: r.client_id,
            grant_type: r.grant_type,
            scopes: r.scopes,
            audience: r.audience,
            subject_attributes: conv(r.subject_attributes),
            claims: conv(r.claims),
        }
    }
}

impl From<Customization> for raw::Customization {
    fn from(c: Customization) -> Self {
        raw::Customization {
            add: conv(c.add),
            remove: c.remove,
        }
    }
}

/// Glue between the generated `Guest` trait and [`JwtCustomizer`], named by
/// `export_plugin!`.
#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: JwtCustomizer> raw::Guest for Export<T> {
    fn customize(
        ctx: raw::CallContext,
        request: raw::TokenRequest,
    ) -> Result<raw::Customization, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.customize(&ctx.into(), request.into())?.into())
    }
}
