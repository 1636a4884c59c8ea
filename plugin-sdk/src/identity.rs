//! Category `identity-provider`: federates login to an upstream OpenID
//! Connect / OAuth 2.0 provider. See `docs/identity-provider.md`. Fails
//! closed for that login.

use std::marker::PhantomData;

use crate::bindings::identity_provider as raw;
use crate::types::{Attribute, CallContext, Json, KeyValue, PluginError, conv};

/// How the login page presents this provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderDisplay {
    /// Button text, e.g. `Sign in with Acme SSO`.
    pub display_name: String,
    /// An https or `data:` URL of an icon (at most 8 KiB), if any.
    pub icon_url: Option<String>,
}

/// Input to `begin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeginRequest {
    /// The host's callback URL: the upstream `redirect_uri`.
    pub callback_url: String,
    /// Send upstream unchanged as `state`.
    pub state: String,
    /// Send as the OIDC `nonce` and check it in `complete`.
    pub nonce: String,
    /// A login hint, if any.
    pub login_hint: Option<String>,
    /// The end user's preferred locales, for `ui_locales`.
    pub locales: Vec<String>,
    /// The relying party asked for a fresh authentication: make the
    /// upstream authenticate again (OIDC `prompt=login`).
    pub force_authentication: bool,
    /// The relying party's `max_age` in seconds: send it upstream and
    /// report the upstream's `auth_time`.
    pub max_age: Option<u64>,
}

/// Where to send the browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRedirect {
    /// The full upstream authorization URL.
    pub url: String,
    /// Data needed again in `complete` (e.g. the PKCE verifier), stored
    /// server-side by the host; at most 4 KiB.
    pub flow_state: String,
}

/// What came back to the callback URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackRequest {
    /// The callback URL, as given to `begin`.
    pub callback_url: String,
    /// Query parameters received.
    pub query: Vec<KeyValue>,
    /// Form parameters (`form_post`), otherwise empty.
    pub form: Vec<KeyValue>,
    /// The `flow_state` returned by `begin`.
    pub flow_state: String,
    /// The nonce sent in `begin`.
    pub nonce: String,
}

impl CallbackRequest {
    /// A parameter from the query, or else from the form.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.form.iter())
            .find(|kv| kv.key == name)
            .map(|kv| kv.value.as_str())
    }
}

/// A user as the upstream identifies them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The upstream issuer.
    pub issuer: String,
    /// The upstream's stable subject (never an email address).
    pub subject: String,
    /// Email, if released.
    pub email: Option<String>,
    /// Whether the upstream asserts the email is verified.
    pub email_verified: bool,
    /// Full name, if released.
    pub name: Option<String>,
    /// Given name, if released.
    pub given_name: Option<String>,
    /// Family name, if released.
    pub family_name: Option<String>,
    /// Preferred username, if released.
    pub preferred_username: Option<String>,
    /// Picture URL, if released.
    pub picture: Option<String>,
    /// Locale, if released.
    pub locale: Option<String>,
    /// When the upstream authenticated the user (ms since the epoch), if it
    /// says (OIDC `auth_time`).
    pub auth_time: Option<i64>,
    /// Further mapped attributes (at most 64).
    pub attributes: Vec<Attribute>,
    /// All upstream claims as one JSON object (at most 16 KiB), or `None`.
    pub raw_claims: Option<Json>,
}

/// The result of a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The upstream authenticated the user and the plugin verified it.
    Authenticated(Box<ExternalIdentity>),
    /// The upstream refused or the user cancelled.
    Denied {
        /// The upstream error code, e.g. `access_denied`.
        error_code: String,
        /// The upstream's description, if any.
        description: Option<String>,
    },
}

/// An identity-provider plugin.
pub trait IdentityProvider: crate::Plugin {
    /// How the login page shows this provider (cached per instance).
    fn describe(&self, ctx: &CallContext) -> Result<ProviderDisplay, PluginError>;

    /// Builds the upstream authorization URL.
    fn begin(
        &self,
        ctx: &CallContext,
        request: BeginRequest,
    ) -> Result<AuthorizationRedirect, PluginError>;

    /// Turns the callback into an external identity (at most once per
    /// `state`; not retried).
    fn complete(
        &self,
        ctx: &CallContext,
        request: CallbackRequest,
    ) -> Result<CallbackOutcome, PluginError>;
}

impl From<raw::BeginRequest> for BeginRequest {
    fn from(r: raw::BeginRequest) -> Self {
        BeginRequest {
            callback_url: r.callback_url,
            state: r.state,
            nonce: r.nonce,
            login_hint: r.login_hint,
            locales: r.locales,
            force_authentication: r.force_authentication,
            max_age: r.max_age,
        }
    }
}

impl From<raw::CallbackRequest> for CallbackRequest {
    fn from(r: raw::CallbackRequest) -> Self {
        CallbackRequest {
            callback_url: r.callback_url,
            query: conv(r.query),
            form: conv(r.form),
            flow_state: r.flow_state,
            nonce: r.nonce,
        }
    }
}

impl From<CallbackOutcome> for raw::CallbackOutcome {
    fn from(o: CallbackOutcome) -> Self {
        match o {
            CallbackOutcome::Authenticated(i) => {
                raw::CallbackOutcome::Authenticated(raw::ExternalIdentity {
                    issuer: i.issuer,
                    subject: i.subject,
                    email: i.email,
                    email_verified: i.email_verified,
                    name: i.name,
                    given_name: i.given_name,
                    family_name: i.family_name,
                    preferred_username: i.preferred_username,
                    picture: i.picture,
                    locale: i.locale,
                    auth_time: i.auth_time,
                    attributes: conv(i.attributes),
                    raw_claims: i.raw_claims.map(Json::into_string),
                })
            }
            CallbackOutcome::Denied {
                error_code,
                description,
            } => raw::CallbackOutcome::Denied(raw::UpstreamDenial {
                error_code,
                description,
            }),
        }
    }
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: IdentityProvider> raw::Guest for Export<T> {
    fn describe(ctx: raw::CallContext) -> Result<raw::ProviderDisplay, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        let d = plugin.describe(&ctx.into())?;
        Ok(raw::ProviderDisplay {
            display_name: d.display_name,
            icon_url: d.icon_url,
        })
    }

    fn begin(
        ctx: raw::CallContext,
        request: raw::BeginRequest,
    ) -> Result<raw::AuthorizationRedirect, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        let r = plugin.begin(&ctx.into(), request.into())?;
        Ok(raw::AuthorizationRedirect {
            url: r.url,
            flow_state: r.flow_state,
        })
    }

    fn complete(
        ctx: raw::CallContext,
        request: raw::CallbackRequest,
    ) -> Result<raw::CallbackOutcome, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.complete(&ctx.into(), request.into())?.into())
    }
}
