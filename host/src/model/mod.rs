//! Entities: plain data shared by the domain modules and the store.
//!
//! Nothing here talks to a database or to HTTP; the types derive `FromRow` so
//! the store can read them and `Serialize`/`ToSchema` so handlers can render
//! them. Secrets (password hashes, client secret hashes, private keys) are
//! never fields of these types, so they cannot leak through a response.

pub mod audit;
pub mod client;
pub mod identity;
pub mod oidc;
pub mod rbac;
pub mod tenant;

pub use audit::*;
pub use client::*;
pub use identity::*;
pub use oidc::*;
pub use rbac::*;
pub use tenant::*;

use serde::Serialize;
use utoipa::ToSchema;

/// One page of a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items on this page.
    pub data: Vec<T>,
    /// 1-based page number.
    pub page: i64,
    /// Page size used.
    pub per_page: i64,
    /// Number of items across all pages.
    pub total: i64,
}

/// Page request, validated: `page >= 1`, `1 <= per_page <= 200`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: i64,
    /// Items per page.
    pub per_page: i64,
}

impl PageRequest {
    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }
}
