//! Tenants: the unit of isolation.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::time::Timestamp;

/// The reserved master tenant, which administers the whole instance.
pub const MASTER_TENANT_ID: Uuid = Uuid::from_u128(1);

/// Slug of the master tenant.
pub const MASTER_TENANT_SLUG: &str = "master";

/// A tenant as stored.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Tenant {
    /// Tenant id.
    pub id: Uuid,
    /// Human name.
    pub name: String,
    /// URL-safe identifier; part of the tenant's issuer URL.
    pub slug: String,
    /// Optional name shown on login pages.
    pub display_name: Option<String>,
    /// Disabled tenants issue no tokens.
    pub enabled: bool,
    /// Branding and token lifetimes.
    #[sqlx(json)]
    pub settings: TenantSettings,
    /// Optimistic version, incremented on every update.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

impl Tenant {
    /// Whether this is the instance's master tenant.
    pub fn is_master(&self) -> bool {
        self.id == MASTER_TENANT_ID
    }
}

/// Per-tenant settings; every field has a default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSettings {
    /// Access token lifetime in seconds (overrides ACCESS_TOKEN_LIFETIME).
    pub access_token_lifetime: Option<i64>,
    /// Refresh token lifetime in seconds (overrides REFRESH_TOKEN_LIFETIME).
    pub refresh_token_lifetime: Option<i64>,
    /// Primary colour of the hosted login page, `#rrggbb`.
    pub primary_color: Option<String>,
    /// Logo URL for the hosted login page.
    pub logo_url: Option<String>,
    /// Failed logins before the account locks (default from configuration).
    pub lockout_threshold: Option<i64>,
    /// Lock duration in seconds.
    pub lockout_duration: Option<i64>,
    /// Background colour of the hosted login page, `#rrggbb`.
    pub background_color: Option<String>,
    /// Absolute browser session lifetime in seconds (default 36000).
    pub session_lifetime: Option<i64>,
    /// ID token lifetime in seconds (default 3600).
    pub id_token_lifetime: Option<i64>,
    /// Require a server-issued `DPoP-Nonce` in every DPoP proof (RFC 9449 §8).
    pub dpop_nonce_required: Option<bool>,
    /// Upstreams (identity-provider plugin and issuer) whose verified
    /// emails are trusted: a first sign-in may link the account with that
    /// email, and users they create keep `email_verified`. Only list
    /// upstreams that verify email ownership themselves.
    pub trusted_email_providers: Option<Vec<TrustedEmailProvider>>,
}

/// An upstream whose `email_verified` the tenant believes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedEmailProvider {
    /// The identity-provider plugin.
    pub plugin_id: String,
    /// The upstream issuer, exactly as the plugin reports it. Trust is per
    /// issuer: re-pointing a trusted plugin at another upstream does not
    /// carry the trust over.
    pub issuer: String,
}

impl TenantSettings {
    /// Whether the tenant trusts `issuer`'s verified emails via `plugin_id`.
    pub fn trusts_email_from(&self, plugin_id: &str, issuer: &str) -> bool {
        self.trusted_email_providers.as_ref().is_some_and(|t| {
            t.iter()
                .any(|p| p.plugin_id == plugin_id && p.issuer == issuer)
        })
    }
}

/// A tenant as answered by the API, with its issuer URL.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantView {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// The tenant's OIDC issuer.
    pub issuer: String,
}
