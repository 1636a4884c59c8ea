//! Plugin administration: installing plugins (from the plugins directory at
//! start-up and through the admin API), tenants' activations with validated
//! and partly secret configuration, loading all of it into the runtime, and
//! auditing plugin failures.

pub mod activation;
pub mod audit_feed;
pub mod cluster_sync;
pub mod failures;
pub mod install;
pub mod metrics_feed;
pub mod startup;

pub use activation::{ActivationView, PutActivation};
pub use install::{PluginView, UploadedPlugin};
