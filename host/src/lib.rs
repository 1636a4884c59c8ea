//! Vaultaris: a self-hosted identity and access management server.
//!
//! A request flows downward only:
//! `http` (routers, extractors, problem+json) → domain modules (`tenancy`,
//! `identity`, `authz`, `oauth`, `audit`) → `store` (SQLite or PostgreSQL).
//! `model` holds the plain entities every layer shares.

#![warn(missing_docs)]

pub mod audit;
pub mod authz;
pub mod config;
pub mod context;
pub mod crypto;
pub mod error;
pub mod extensions;
pub mod http;
pub mod identity;
pub mod model;
pub mod oauth;
pub mod plugins;
pub mod server;
pub mod sessions;
pub mod store;
pub mod tenancy;
pub mod time;
