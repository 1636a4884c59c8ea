//! End-to-end tests: each starts the real binary against a fresh database
//! and drives it over HTTP. Set `VAULTARIS_TEST_POSTGRES_URL` to run the
//! same suite on PostgreSQL.

mod support;

mod admin_flow;
mod audit_chain;
mod bad_input;
mod hardening;
mod independent_clients;
mod isolation;
mod lifecycle;
mod multi_node;
mod oauth_bad_input;
mod oidc_flows;
mod openidconnect_client;
#[macro_use]
mod plugin_support;
mod plugins_auth;
mod plugins_categories;
mod plugins_encryption;
mod plugins_federation;
mod plugins_feeds;
mod plugins_hostile;
mod plugins_jwt;
mod plugins_languages;
mod plugins_native;
mod plugins_notification;
mod plugins_outbound;
mod review_fixes;
mod rp;
mod sessions_admin;
mod signing_keys;
mod token_endpoint;
