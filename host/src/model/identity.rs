//! Users and their credentials.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::time::Timestamp;

/// A user as rendered by the API (no credential material).
#[derive(Debug, Clone, Serialize, Deserialize, FromRow, ToSchema)]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Email address, as given.
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Phone number (E.164 recommended).
    pub phone: Option<String>,
    /// BCP 47 locale.
    pub locale: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Whether the email address has been verified.
    pub email_verified: bool,
    /// Disabled users cannot sign in.
    pub enabled: bool,
    /// A service account backs a confidential client's client_credentials grant.
    pub is_service_account: bool,
    /// Consecutive failed logins.
    pub failed_attempts: i64,
    /// Locked until this instant after too many failed logins.
    pub locked_until: Option<Timestamp>,
    /// Last successful login.
    pub last_login_at: Option<Timestamp>,
    /// Free-form attributes.
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    /// Optimistic version.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update time.
    pub updated_at: Timestamp,
}

/// What the login path needs to know about a user's credentials.
#[derive(Debug, Clone, FromRow)]
pub struct UserCredentials {
    /// User id.
    pub id: Uuid,
    /// Argon2id PHC string, absent for service accounts.
    pub password_hash: Option<String>,
    /// Disabled users cannot sign in.
    pub enabled: bool,
    /// Service accounts cannot sign in with a password.
    pub is_service_account: bool,
    /// Consecutive failed logins.
    pub failed_attempts: i64,
    /// Lock end.
    pub locked_until: Option<Timestamp>,
}

/// Profile fields shared by create and update requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UserProfile {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// BCP 47 locale.
    pub locale: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
}
