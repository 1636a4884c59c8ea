//! The OAuth 2.0 authorization server: signing keys, the token endpoint's
//! grants, and access-token verification for the admin API.
//!
//! This issue implements the `password` grant (for first-party clients such
//! as `admin-cli`) and `client_credentials` (confidential clients acting as
//! their service account). The full OpenID Connect provider extends these
//! modules.

pub mod clients;
pub mod error;
pub mod keys;
pub mod token;
pub mod verify;
