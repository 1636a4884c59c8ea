//! The OAuth 2.0 authorization server and OpenID Provider: one issuer per
//! tenant, its keys, the authorization and token endpoints' logic, DPoP,
//! introspection, revocation, userinfo and logout.

pub mod authorize;
pub mod cache;
pub mod client_auth;
pub mod clients;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod introspection;
pub mod issuance;
pub mod issuer;
pub mod keys;
pub mod logout;
pub mod replay;
pub mod token;
pub mod userinfo;
pub mod verify;
