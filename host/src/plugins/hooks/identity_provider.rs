//! identity-provider: federated sign-in through an upstream (OpenID Connect,
//! SAML, a social login). The login page shows one button per active
//! provider (`describe`, cached per activation); pressing it asks the plugin
//! for the upstream authorization URL (`begin`); the upstream's answer at the
//! callback is turned into an external identity (`complete`). Fails closed:
//! a provider that cannot answer refuses that sign-in, never another's.
//!
//! Security decisions:
//! - The host, not the plugin, generates `state` and `nonce`, binds `state`
//!   to the browser and consumes it once (see `sessions/federation.rs`); the
//!   plugin only sees them.
//! - The authorization URL must be absolute https, or http to a loopback
//!   address or a host the operator allows the plugin to reach (local
//!   upstreams in development); anything else (a `javascript:` URL, a
//!   relative path) is a malformed output.
//! - An identity's issuer and subject are bounded and non-empty; its email
//!   counts as verified only when the plugin says so, and the core links an
//!   existing account by email only when the tenant trusts the provider for
//!   it (`sessions/federation.rs`).

use vaultaris_plugin_sdk::native::functions as native_fn;

use super::super::activation::PluginInstance;
use std::sync::OnceLock;

use serde_json::Value;
use uuid::Uuid;

use super::super::activation::{Activation, OutputSize};
use super::super::bindings::v0_1_0::caps::vaultaris::plugin::types as wit;
use super::super::bindings::v0_1_0::identity_provider::exports::vaultaris::plugin::identity_provider as api;
use super::super::error::PluginCallError;
use super::super::manifest::Category;
use super::super::runtime::PluginRuntime;
use super::super::{FailureMode, request_id};
use super::HookFailure;

/// Most bytes of an icon URL shown on the login page.
const MAX_ICON_URL: usize = 8 * 1024;
/// Most bytes of the flow state a plugin keeps between `begin` and `complete`.
pub const MAX_FLOW_STATE: usize = 4 * 1024;
/// Most bytes of the raw upstream claims kept.
const MAX_RAW_CLAIMS: usize = 16 * 1024;
/// Most attributes an identity carries.
const MAX_ATTRIBUTES: usize = 64;

/// How the login page shows a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderButton {
    /// The plugin (the value the button posts).
    pub plugin_id: String,
    /// The button's text.
    pub display_name: String,
    /// An https or `data:` URL of the icon.
    pub icon_url: Option<String>,
}

/// The answer of `describe`, kept for the life of the activation (a
/// configuration change builds a new activation, so it never goes stale).
#[derive(Debug, Default)]
pub struct DisplayCache(OnceLock<ProviderButton>);

/// What `begin` needs from the core.
#[derive(Debug, Clone)]
pub struct BeginFederation<'a> {
    /// The host's callback URL for this tenant.
    pub callback_url: &'a str,
    /// The host's `state`.
    pub state: &'a str,
    /// The host's `nonce`.
    pub nonce: &'a str,
    /// A login hint, if any.
    pub login_hint: Option<&'a str>,
    /// Preferred locales.
    pub locales: &'a [String],
    /// The relying party asked for a fresh authentication (`prompt=login`).
    pub force_authentication: bool,
    /// The relying party's `max_age`, seconds.
    pub max_age: Option<u64>,
}

/// Where to send the browser, and what to keep for `complete`.
#[derive(Debug, Clone)]
pub struct UpstreamRedirect {
    /// The upstream authorization URL.
    pub url: String,
    /// Kept server-side and handed back to `complete`.
    pub flow_state: String,
}

/// What came back to the callback.
#[derive(Debug, Clone)]
pub struct CompleteFederation<'a> {
    /// The callback URL given to `begin`.
    pub callback_url: &'a str,
    /// Query parameters.
    pub query: &'a [(String, String)],
    /// Form parameters (`form_post`).
    pub form: &'a [(String, String)],
    /// The flow state `begin` returned.
    pub flow_state: &'a str,
    /// The nonce sent in `begin`.
    pub nonce: &'a str,
}

/// A user as an upstream identifies them.
#[derive(Debug, Clone)]
pub struct FederatedIdentity {
    /// The plugin that federated.
    pub plugin_id: String,
    /// The upstream issuer.
    pub issuer: String,
    /// The user's stable id at the upstream.
    pub subject: String,
    /// Email, if released.
    pub email: Option<String>,
    /// Whether the upstream verified the email.
    pub email_verified: bool,
    /// Full name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Preferred username.
    pub preferred_username: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Locale.
    pub locale: Option<String>,
    /// When the upstream authenticated the user, ms since the epoch.
    pub auth_time: Option<i64>,
    /// Further attributes.
    pub attributes: Vec<(String, Value)>,
    /// The raw upstream claims, if kept.
    pub raw_claims: Option<Value>,
}

/// The result of a callback.
#[derive(Debug, Clone)]
pub enum FederationOutcome {
    /// The upstream authenticated the user.
    Authenticated(Box<FederatedIdentity>),
    /// The upstream refused or the user cancelled.
    Denied {
        /// The upstream error code.
        error_code: String,
        /// Its description, if any.
        description: Option<String>,
    },
}

impl OutputSize for api::ProviderDisplay {
    fn output_size(&self) -> usize {
        self.display_name.len() + self.icon_url.as_ref().map_or(0, String::len)
    }
}

impl OutputSize for api::AuthorizationRedirect {
    fn output_size(&self) -> usize {
        self.url.len() + self.flow_state.len()
    }
}

impl OutputSize for api::CallbackOutcome {
    fn output_size(&self) -> usize {
        let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
        match self {
            api::CallbackOutcome::Authenticated(i) => {
                i.issuer.len()
                    + i.subject.len()
                    + opt(&i.email)
                    + opt(&i.name)
                    + opt(&i.given_name)
                    + opt(&i.family_name)
                    + opt(&i.preferred_username)
                    + opt(&i.picture)
                    + opt(&i.locale)
                    + super::attributes_size(&i.attributes)
                    + opt(&i.raw_claims)
            }
            api::CallbackOutcome::Denied(d) => d.error_code.len() + opt(&d.description),
        }
    }
}

/// Whether `url` is a place the browser may be sent: absolute https, or
/// http to a loopback address or a host in `http_hosts`.
fn acceptable_redirect(url: &str, http_hosts: &[String]) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    match u.scheme() {
        "https" => true,
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            bare.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
                || bare == "localhost"
                || http_hosts.iter().any(|h| {
                    h.eq_ignore_ascii_case(bare)
                        || u.port()
                            .is_some_and(|p| h.eq_ignore_ascii_case(&format!("{bare}:{p}")))
                })
        }
        _ => false,
    }
}

fn malformed(detail: impl Into<String>) -> PluginCallError {
    PluginCallError::MalformedOutput(detail.into())
}

/// Checks and converts what `complete` returned.
fn identity_from(
    plugin_id: &str,
    i: api::ExternalIdentity,
) -> Result<FederatedIdentity, PluginCallError> {
    if i.issuer.is_empty() || i.issuer.len() > 255 {
        return Err(malformed("issuer must be 1-255 bytes"));
    }
    if i.subject.is_empty() || i.subject.len() > 255 {
        return Err(malformed("subject must be 1-255 bytes"));
    }
    if i.attributes.len() > MAX_ATTRIBUTES {
        return Err(malformed(format!(
            "at most {MAX_ATTRIBUTES} attributes are allowed"
        )));
    }
    let raw_claims = match i.raw_claims {
        Some(raw) if raw.len() > MAX_RAW_CLAIMS => {
            return Err(malformed("raw-claims exceed 16 KiB"));
        }
        Some(raw) => Some(
            serde_json::from_str::<Value>(&raw)
                .map_err(|e| malformed(format!("raw-claims is not JSON: {e}")))?,
        ),
        None => None,
    };
    let bounded = |o: Option<String>| o.filter(|s| !s.is_empty() && s.len() <= 1024);
    Ok(FederatedIdentity {
        plugin_id: plugin_id.to_string(),
        issuer: i.issuer,
        subject: i.subject,
        email: bounded(i.email).map(|e| e.trim().to_string()),
        email_verified: i.email_verified,
        name: bounded(i.name),
        given_name: bounded(i.given_name),
        family_name: bounded(i.family_name),
        preferred_username: bounded(i.preferred_username),
        picture: bounded(i.picture),
        locale: bounded(i.locale),
        auth_time: i.auth_time.filter(|t| *t > 0),
        attributes: i.attributes.iter().map(super::attribute_json).collect(),
        raw_claims,
    })
}

impl PluginRuntime {
    fn identity_provider(
        &self,
        tenant: Uuid,
        plugin_id: &str,
    ) -> Option<std::sync::Arc<Activation>> {
        self.tenant(tenant)?
            .of(Category::IdentityProvider)
            .iter()
            .find(|a| a.context.plugin_id == plugin_id)
            .cloned()
    }

    fn federation_failure(&self, act: &Activation, error: PluginCallError) -> HookFailure {
        self.report_failure(act, Category::IdentityProvider, &error, FailureMode::Closed);
        HookFailure {
            plugin_id: act.context.plugin_id.clone(),
            category: Category::IdentityProvider,
            error,
        }
    }

    /// The login page's provider buttons, in activation order. A provider
    /// whose `describe` fails is left off the page (and the failure
    /// recorded): one broken upstream never hides the password form.
    pub async fn identity_providers(&self, tenant: Uuid) -> Vec<ProviderButton> {
        let Some(plugins) = self.tenant(tenant) else {
            return vec![];
        };
        let mut buttons = Vec::new();
        for act in plugins.of(Category::IdentityProvider) {
            if let Some(b) = act.provider_display.0.get() {
                buttons.push(b.clone());
                continue;
            }
            let (result, _) = act
                .invoke(
                    self.engine(),
                    Category::IdentityProvider,
                    &request_id::current(),
                    64,
                    |inst, cx| {
                        Box::pin(async move {
                            let inst = match inst {
                                PluginInstance::Native(n) => {
                                    return n
                                        .call(native_fn::IDENTITY_PROVIDER_DESCRIBE, &(&cx,))
                                        .await;
                                }
                                PluginInstance::Wasm(w) => w,
                            };
                            let Some(e) = &inst.exports.identity_provider else {
                                return Err(wasmtime::format_err!(
                                    "identity-provider export missing"
                                ));
                            };
                            e.vaultaris_plugin_identity_provider()
                                .call_describe(&mut inst.store, &cx)
                                .await
                        })
                    },
                )
                .await;
            let checked = result.and_then(|d| {
                if d.display_name.trim().is_empty() || d.display_name.len() > 100 {
                    return Err(malformed("display-name must be 1-100 bytes"));
                }
                let icon = match d.icon_url {
                    Some(u) if u.len() > MAX_ICON_URL => {
                        return Err(malformed("icon-url exceeds 8 KiB"));
                    }
                    Some(u) if u.starts_with("https://") || u.starts_with("data:image/") => Some(u),
                    Some(_) => return Err(malformed("icon-url must be https or data:image/")),
                    None => None,
                };
                Ok(ProviderButton {
                    plugin_id: act.context.plugin_id.clone(),
                    display_name: d.display_name.trim().to_string(),
                    icon_url: icon,
                })
            });
            match checked {
                Ok(b) => {
                    let _ = act.provider_display.0.set(b.clone());
                    buttons.push(b);
                }
                Err(e) => {
                    let _ = self.federation_failure(act, e);
                }
            }
        }
        buttons
    }

    /// Whether `plugin_id` is one of the tenant's active identity providers.
    pub fn is_identity_provider(&self, tenant: Uuid, plugin_id: &str) -> bool {
        self.identity_provider(tenant, plugin_id).is_some()
    }

    /// Asks `plugin_id` for the upstream authorization URL. `Ok(None)` when
    /// the tenant has no such active provider.
    pub async fn begin_federation(
        &self,
        tenant: Uuid,
        plugin_id: &str,
        begin: &BeginFederation<'_>,
    ) -> Result<Option<UpstreamRedirect>, HookFailure> {
        let Some(act) = self.identity_provider(tenant, plugin_id) else {
            return Ok(None);
        };
        let request = api::BeginRequest {
            callback_url: begin.callback_url.to_string(),
            state: begin.state.to_string(),
            nonce: begin.nonce.to_string(),
            login_hint: begin.login_hint.map(str::to_string),
            locales: begin.locales.to_vec(),
            force_authentication: begin.force_authentication,
            max_age: begin.max_age,
        };
        let size = request.callback_url.len()
            + request.state.len()
            + request.nonce.len()
            + request.login_hint.as_ref().map_or(0, String::len)
            + request.locales.iter().map(String::len).sum::<usize>();
        let (result, _) = act
            .invoke(
                self.engine(),
                Category::IdentityProvider,
                &request_id::current(),
                size,
                |inst, cx| {
                    Box::pin(async move {
                        let inst = match inst {
                            PluginInstance::Native(n) => {
                                return n
                                    .call(native_fn::IDENTITY_PROVIDER_BEGIN, &(&cx, &request))
                                    .await;
                            }
                            PluginInstance::Wasm(w) => w,
                        };
                        let Some(e) = &inst.exports.identity_provider else {
                            return Err(wasmtime::format_err!("identity-provider export missing"));
                        };
                        e.vaultaris_plugin_identity_provider()
                            .call_begin(&mut inst.store, &cx, &request)
                            .await
                    })
                },
            )
            .await;
        let checked = result.and_then(|r| {
            if !acceptable_redirect(&r.url, &act.context.http_hosts) {
                return Err(malformed(
                    "the authorization URL must be absolute https (http only to loopback or an allowed host)",
                ));
            }
            if r.url.len() > 8 * 1024 {
                return Err(malformed("the authorization URL exceeds 8 KiB"));
            }
            if r.flow_state.len() > MAX_FLOW_STATE {
                return Err(malformed("flow-state exceeds 4 KiB"));
            }
            Ok(UpstreamRedirect {
                url: r.url,
                flow_state: r.flow_state,
            })
        });
        checked
            .map(Some)
            .map_err(|e| self.federation_failure(&act, e))
    }

    /// Turns the callback into an identity with `plugin_id`. Never retried:
    /// authorization codes are single use. `Ok(None)` when the tenant has no
    /// such active provider (it was disabled mid-flow).
    pub async fn complete_federation(
        &self,
        tenant: Uuid,
        plugin_id: &str,
        callback: &CompleteFederation<'_>,
    ) -> Result<Option<FederationOutcome>, HookFailure> {
        let Some(act) = self.identity_provider(tenant, plugin_id) else {
            return Ok(None);
        };
        let kv = |pairs: &[(String, String)]| -> Vec<wit::KeyValue> {
            pairs
                .iter()
                .map(|(k, v)| wit::KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect()
        };
        let request = api::CallbackRequest {
            callback_url: callback.callback_url.to_string(),
            query: kv(callback.query),
            form: kv(callback.form),
            flow_state: callback.flow_state.to_string(),
            nonce: callback.nonce.to_string(),
        };
        let size = request.callback_url.len()
            + request.flow_state.len()
            + request.nonce.len()
            + callback
                .query
                .iter()
                .chain(callback.form)
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>();
        let (result, _) = act
            .invoke(
                self.engine(),
                Category::IdentityProvider,
                &request_id::current(),
                size,
                |inst, cx| {
                    Box::pin(async move {
                        let inst = match inst {
                            PluginInstance::Native(n) => {
                                return n
                                    .call(native_fn::IDENTITY_PROVIDER_COMPLETE, &(&cx, &request))
                                    .await;
                            }
                            PluginInstance::Wasm(w) => w,
                        };
                        let Some(e) = &inst.exports.identity_provider else {
                            return Err(wasmtime::format_err!("identity-provider export missing"));
                        };
                        e.vaultaris_plugin_identity_provider()
                            .call_complete(&mut inst.store, &cx, &request)
                            .await
                    })
                },
            )
            .await;
        let checked = result.and_then(|outcome| match outcome {
            api::CallbackOutcome::Authenticated(i) => Ok(FederationOutcome::Authenticated(
                Box::new(identity_from(plugin_id, i)?),
            )),
            api::CallbackOutcome::Denied(d) => Ok(FederationOutcome::Denied {
                error_code: d.error_code.chars().take(64).collect(),
                description: d.description.map(|s| s.chars().take(300).collect()),
            }),
        });
        checked
            .map(Some)
            .map_err(|e| self.federation_failure(&act, e))
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable_redirect;

    #[test]
    fn only_https_or_local_http_redirects_are_accepted() {
        let none: Vec<String> = vec![];
        assert!(acceptable_redirect(
            "https://id.example/authorize?x=1",
            &none
        ));
        assert!(acceptable_redirect(
            "http://127.0.0.1:8080/t/up/oauth/authorize",
            &none
        ));
        assert!(acceptable_redirect("http://[::1]:8080/a", &none));
        assert!(acceptable_redirect("http://localhost:8080/a", &none));
        assert!(!acceptable_redirect("http://id.example/a", &none));
        assert!(acceptable_redirect(
            "http://id.example/a",
            &["id.example".to_string()]
        ));
        assert!(!acceptable_redirect("javascript:alert(1)", &none));
        assert!(!acceptable_redirect("/relative", &none));
        assert!(!acceptable_redirect("data:text/html,hi", &none));
    }
}
