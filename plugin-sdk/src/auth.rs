//! Category `auth-provider`: verifies credentials the core does not know
//! (LDAP bind, legacy password database, RADIUS, external one-time codes,
//! custom credentials). See `docs/auth-provider.md`. Fails closed, and the
//! host never falls through to a weaker check after a failure.

use std::marker::PhantomData;

use crate::bindings::auth_provider as raw;
use crate::types::{Attribute, CallContext, Json, PluginError, conv, json_in};

/// A username and password. Never log, store or forward the password
/// anywhere but to the verifying upstream.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordCredential {
    /// The login name as typed (trimmed).
    pub identifier: String,
    /// The password exactly as typed.
    pub password: String,
}

impl std::fmt::Debug for PasswordCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordCredential")
            .field("identifier", &self.identifier)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A one-time code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeCodeCredential {
    /// The login name the code belongs to.
    pub identifier: String,
    /// The code, whitespace removed.
    pub code: String,
}

/// A credential of a kind only the plugin understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomCredential {
    /// Namespaced kind, e.g. `acme:badge`.
    pub kind: String,
    /// The login name, if sent.
    pub identifier: Option<String>,
    /// The credential as JSON (at most 16 KiB).
    pub payload: Json,
}

/// The credential presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Username and password.
    Password(PasswordCredential),
    /// A one-time code.
    OneTimeCode(OneTimeCodeCredential),
    /// A plugin-specific credential.
    Custom(CustomCredential),
}

/// Everything the host knows about the login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyRequest {
    /// The credential to verify.
    pub credential: Credential,
    /// The OAuth client being signed in to, if any.
    pub client_id: Option<String>,
    /// The client's IP address, if known.
    pub ip_address: Option<String>,
    /// The `user-agent` header, if any.
    pub user_agent: Option<String>,
}

/// A successfully verified identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// Stable identifier in the verifying system.
    pub external_subject: String,
    /// Email address, if known.
    pub email: Option<String>,
    /// Whether the verifying system verified the email.
    pub email_verified: bool,
    /// Preferred username, if known.
    pub preferred_username: Option<String>,
    /// Display name, if known.
    pub name: Option<String>,
    /// Other attributes (at most 64).
    pub attributes: Vec<Attribute>,
    /// Authentication method references (RFC 8176), e.g. `pwd`.
    pub amr: Vec<String>,
}

/// Why a credential was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// Wrong identifier or secret.
    InvalidCredentials,
    /// The account is locked upstream.
    AccountLocked,
    /// The account is disabled upstream.
    AccountDisabled,
    /// The credential expired upstream.
    CredentialExpired,
}

/// The answer to `verify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The credential is valid.
    Verified(VerifiedIdentity),
    /// The credential is not valid (final for this attempt).
    Rejected(RejectionReason),
    /// Not this plugin's identifier or credential kind.
    NotApplicable,
}

/// An auth-provider plugin.
pub trait AuthProvider: crate::Plugin {
    /// Verifies one credential (never retried); should take constant time
    /// whether or not the identifier exists.
    fn verify(
        &self,
        ctx: &CallContext,
        request: VerifyRequest,
    ) -> Result<VerifyOutcome, PluginError>;
}

impl From<raw::Credential> for Credential {
    fn from(c: raw::Credential) -> Self {
        match c {
            raw::Credential::Password(p) => Credential::Password(PasswordCredential {
                identifier: p.identifier,
                password: p.password,
            }),
            raw::Credential::OneTimeCode(o) => Credential::OneTimeCode(OneTimeCodeCredential {
                identifier: o.identifier,
                code: o.code,
            }),
            raw::Credential::Custom(c) => Credential::Custom(CustomCredential {
                kind: c.kind,
                identifier: c.identifier,
                payload: json_in(c.payload),
            }),
        }
    }
}

impl From<raw::VerifyRequest> for VerifyRequest {
    fn from(r: raw::VerifyRequest) -> Self {
        VerifyRequest {
            credential: r.credential.into(),
            client_id: r.client_id,
            ip_address: r.ip_address,
            user_agent: r.user_agent,
        }
    }
}

impl From<VerifyOutcome> for raw::VerifyOutcome {
    fn from(o: VerifyOutcome) -> Self {
        match o {
            VerifyOutcome::Verified(v) => raw::VerifyOutcome::Verified(raw::VerifiedIdentity {
                external_subject: v.external_subject,
                email: v.email,
                email_verified: v.email_verified,
                preferred_username: v.preferred_username,
                name: v.name,
                attributes: conv(v.attributes),
                amr: v.amr,
            }),
            VerifyOutcome::Rejected(r) => raw::VerifyOutcome::Rejected(match r {
                RejectionReason::InvalidCredentials => raw::RejectionReason::InvalidCredentials,
                RejectionReason::AccountLocked => raw::RejectionReason::AccountLocked,
                RejectionReason::AccountDisabled => raw::RejectionReason::AccountDisabled,
                RejectionReason::CredentialExpired => raw::RejectionReason::CredentialExpired,
            }),
            VerifyOutcome::NotApplicable => raw::VerifyOutcome::NotApplicable,
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: AuthProvider> raw::Guest for Export<T> {
    fn verify(
        ctx: raw::CallContext,
        request: raw::VerifyRequest,
    ) -> Result<raw::VerifyOutcome, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.verify(&ctx.into(), request.into())?.into())
    }
}
