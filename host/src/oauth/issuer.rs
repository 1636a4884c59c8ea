//! `Issuer`: one tenant seen as an OpenID Provider, with its URLs.

use std::sync::Arc;

use crate::context::Ctx;
use crate::model::{MASTER_TENANT_SLUG, Tenant};
use crate::store::StoreError;

/// A tenant and the issuer URL it answers as.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The tenant.
    pub tenant: Arc<Tenant>,
    /// Issuer identifier (`iss`), no trailing slash.
    pub url: String,
}

impl Issuer {
    /// The issuer for `slug` (`None` = the master tenant), cached briefly.
    pub async fn resolve(ctx: &Ctx, slug: Option<&str>) -> Result<Issuer, StoreError> {
        let slug = slug.unwrap_or(MASTER_TENANT_SLUG);
        let tenant = match ctx.cache.tenant(slug) {
            Some(t) => t,
            None => {
                let t = Arc::new(ctx.store.get_tenant_by_slug(slug).await?);
                ctx.cache.put_tenant(t.clone());
                t
            }
        };
        Ok(Issuer {
            url: ctx.config.issuer_for(&tenant.slug),
            tenant,
        })
    }

    /// The issuer whose URL is exactly `iss` (a token's `iss` claim), if it
    /// is one of this server's.
    pub async fn from_url(ctx: &Ctx, iss: &str) -> Result<Option<Issuer>, StoreError> {
        let base = &ctx.config.external_url;
        let slug = if iss == base {
            None
        } else {
            match iss
                .strip_prefix(base.as_str())
                .and_then(|rest| rest.strip_prefix("/t/"))
                .filter(|s| !s.is_empty() && !s.contains('/'))
            {
                Some(slug) => Some(slug),
                None => return Ok(None),
            }
        };
        match Self::resolve(ctx, slug).await {
            Ok(i) => Ok(Some(i)),
            Err(StoreError::NotFound | StoreError::InvalidText(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The absolute URL of an endpoint under this issuer, e.g. `/oauth/token`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// The path part of the issuer URL ("" for the master tenant, or
    /// `/t/{slug}`), used to scope cookies.
    pub fn path(&self) -> String {
        url::Url::parse(&self.url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// Whether the issuer is served over TLS (cookies then get `Secure`).
    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }
}
