//! Users: accounts, credentials, lockout counters.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::history::record_history;
use super::{Store, StoreError, StoreResult, audited_tx, on_pool};
use crate::model::{AuditEvent, Page, PageRequest, User, UserCredentials, UserProfile};
use crate::time::Timestamp;

pub(crate) const USER_COLUMNS: &str = "id, tenant_id, email, first_name, last_name, display_name, phone, \
    locale, timezone, avatar_url, email_verified, enabled, is_service_account, failed_attempts, \
    locked_until, last_login_at, attributes, version, created_at, updated_at";

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Id to use.
    pub id: Uuid,
    /// Tenant.
    pub tenant_id: Uuid,
    /// Email as given.
    pub email: String,
    /// Argon2id PHC string, if the user has a password.
    pub password_hash: Option<String>,
    /// Profile.
    pub profile: UserProfile,
    /// Verified already.
    pub email_verified: bool,
    /// Enabled.
    pub enabled: bool,
    /// Service account flag.
    pub is_service_account: bool,
    /// Attributes.
    pub attributes: serde_json::Value,
}

/// Fields an update may change; `None` leaves a field alone and
/// `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserUpdate {
    /// New email.
    pub email: Option<String>,
    /// Profile fields.
    pub first_name: Option<Option<String>>,
    /// Family name.
    pub last_name: Option<Option<String>>,
    /// Display name.
    pub display_name: Option<Option<String>>,
    /// Phone.
    pub phone: Option<Option<String>>,
    /// Locale.
    pub locale: Option<Option<String>>,
    /// Time zone.
    pub timezone: Option<Option<String>>,
    /// Avatar.
    pub avatar_url: Option<Option<String>>,
    /// Verified flag.
    pub email_verified: Option<bool>,
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Replace attributes.
    pub attributes: Option<serde_json::Value>,
    /// Clear the lockout state.
    pub unlock: bool,
}

/// Listing filter.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of the email.
    pub email: Option<String>,
}

/// The normalised form used for uniqueness and look-up.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Inserts a `NewUser` through `$exec`.
macro_rules! insert_user {
    ($exec:expr, $u:expr) => {{
        let u: &$crate::store::NewUser = $u;
        let now = $crate::time::Timestamp::now();
        sqlx::query(
            "INSERT INTO users (id, tenant_id, email, email_normalized, password_hash, first_name, last_name, \
             display_name, phone, locale, timezone, avatar_url, email_verified, enabled, is_service_account, \
             failed_attempts, attributes, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, 1, $17, $17)",
        )
        .bind(u.id)
        .bind(u.tenant_id)
        .bind(&u.email)
        .bind($crate::store::users::normalize_email(&u.email))
        .bind(&u.password_hash)
        .bind(&u.profile.first_name)
        .bind(&u.profile.last_name)
        .bind(&u.profile.display_name)
        .bind(&u.profile.phone)
        .bind(&u.profile.locale)
        .bind(&u.profile.timezone)
        .bind(&u.profile.avatar_url)
        .bind(u.email_verified)
        .bind(u.enabled)
        .bind(u.is_service_account)
        .bind(sqlx::types::Json(&u.attributes))
        .bind(now)
        .execute($exec)
        .await
        .map_err(|e| match $crate::store::StoreError::from(e) {
            $crate::store::StoreError::Conflict(_) => {
                $crate::store::StoreError::Conflict("a user with this email already exists".into())
            }
            other => other,
        })?;
    }};
}
pub(crate) use insert_user;

impl Store {
    /// Creates a user.
    pub async fn create_user(&self, user: &NewUser, event: &AuditEvent) -> StoreResult<User> {
        audited_tx!(self, event, |tx| {
            insert_user!(&mut *tx, user);
        });
        self.get_user(user.tenant_id, user.id).await
    }

    /// A live user of `tenant_id`.
    pub async fn get_user(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<User> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, User>(&sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// Lists live users of a tenant, oldest first, optionally filtered by email.
    pub async fn list_users(
        &self,
        tenant_id: Uuid,
        filter: &UserFilter,
        page: PageRequest,
    ) -> StoreResult<Page<User>> {
        let pattern = filter.email.as_ref().map(|e| {
            let escaped = normalize_email(e)
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let where_clause = "tenant_id = $1 AND deleted_at IS NULL AND ($2 IS NULL OR email_normalized LIKE $2 ESCAPE '\\')";
        let list_sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {where_clause} ORDER BY created_at, id LIMIT $3 OFFSET $4"
        );
        let count_sql = format!("SELECT COUNT(*) FROM users WHERE {where_clause}");
        on_pool!(&self.db, |pool| {
            let data = sqlx::query_as::<_, User>(&list_sql)
                .bind(tenant_id)
                .bind(&pattern)
                .bind(page.per_page)
                .bind(page.offset())
                .fetch_all(pool)
                .await?;
            let (total,): (i64,) = sqlx::query_as(&count_sql)
                .bind(tenant_id)
                .bind(&pattern)
                .fetch_one(pool)
                .await?;
            Ok(Page {
                data,
                page: page.page,
                per_page: page.per_page,
                total,
            })
        })
    }

    /// Applies `update` to a live user, keeping the previous version.
    pub async fn update_user(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        update: &UserUpdate,
        event: &AuditEvent,
    ) -> StoreResult<User> {
        let select = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, User>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                tenant_id,
                "user",
                id,
                current.version,
                "update",
                &current,
                event.actor.actor_id
            );
            let mut next = current.clone();
            if let Some(email) = &update.email {
                next.email = email.clone();
            }
            macro_rules! patch {
                ($($f:ident),*) => { $( if let Some(v) = &update.$f { next.$f = v.clone(); } )* };
            }
            patch!(
                first_name,
                last_name,
                display_name,
                phone,
                locale,
                timezone,
                avatar_url,
                email_verified,
                enabled,
                attributes
            );
            if update.unlock {
                next.failed_attempts = 0;
                next.locked_until = None;
            }
            sqlx::query(
                "UPDATE users SET email = $3, email_normalized = $4, first_name = $5, last_name = $6, display_name = $7, \
                 phone = $8, locale = $9, timezone = $10, avatar_url = $11, email_verified = $12, enabled = $13, \
                 attributes = $14, failed_attempts = $15, locked_until = $16, version = version + 1, updated_at = $17 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(&next.email)
            .bind(normalize_email(&next.email))
            .bind(&next.first_name)
            .bind(&next.last_name)
            .bind(&next.display_name)
            .bind(&next.phone)
            .bind(&next.locale)
            .bind(&next.timezone)
            .bind(&next.avatar_url)
            .bind(next.email_verified)
            .bind(next.enabled)
            .bind(sqlx::types::Json(&next.attributes))
            .bind(next.failed_attempts)
            .bind(next.locked_until)
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("a user with this email already exists".into()),
                other => other,
            })?;
        });
        self.get_user(tenant_id, id).await
    }

    /// Replaces a user's password hash and clears the lockout.
    ///
    /// With `expected`, only if the current hash is still that one (`None`
    /// inside: no password); `Conflict` when it changed meanwhile.
    pub async fn set_password(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        password_hash: &str,
        expected: Option<Option<&str>>,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            let done = sqlx::query(
                "UPDATE users SET password_hash = $3, failed_attempts = 0, locked_until = NULL, updated_at = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL \
                 AND ($5 = 0 OR password_hash = $6 OR (password_hash IS NULL AND $6 IS NULL))",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(password_hash)
            .bind(Timestamp::now())
            .bind(i64::from(expected.is_some()))
            .bind(expected.flatten())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                if expected.is_some() {
                    let live: Option<(i64,)> = sqlx::query_as(
                        "SELECT CAST(1 AS BIGINT) FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                    )
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if live.is_some() {
                        return Err(StoreError::Conflict(
                            "the password changed meanwhile".into(),
                        ));
                    }
                }
                return Err(StoreError::NotFound);
            }
        });
        Ok(())
    }

    /// Soft-deletes a user (the email becomes free again), keeping the last version.
    pub async fn delete_user(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let select = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        );
        audited_tx!(self, event, |tx| {
            let current = sqlx::query_as::<_, User>(&select)
                .bind(tenant_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            record_history!(
                &mut *tx,
                tenant_id,
                "user",
                id,
                current.version,
                "delete",
                &current,
                event.actor.actor_id
            );
            sqlx::query(
                "UPDATE users SET deleted_at = $3, enabled = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(Timestamp::now())
            .bind(false)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Credentials of a live user by email, for the login path.
    pub async fn user_credentials_by_email(
        &self,
        tenant_id: Uuid,
        email: &str,
    ) -> StoreResult<Option<UserCredentials>> {
        on_pool!(&self.db, |pool| {
            Ok(sqlx::query_as::<_, UserCredentials>(
                "SELECT id, password_hash, enabled, is_service_account, failed_attempts, locked_until FROM users \
                 WHERE tenant_id = $1 AND email_normalized = $2 AND deleted_at IS NULL",
            )
            .bind(tenant_id)
            .bind(normalize_email(email))
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Counts a failed login; locks the account once `threshold` is reached.
    /// One statement, so concurrent failures cannot lose a count. A lock that
    /// has expired starts a fresh count, so one wrong password after a lock
    /// ends does not lock the account again.
    pub async fn record_login_failure(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        threshold: i64,
        lock_until: Timestamp,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE users SET \
                 failed_attempts = CASE WHEN locked_until IS NOT NULL AND locked_until <= $5 THEN 1 \
                                        ELSE failed_attempts + 1 END, \
                 locked_until = CASE \
                     WHEN (CASE WHEN locked_until IS NOT NULL AND locked_until <= $5 THEN 1 \
                                ELSE failed_attempts + 1 END) >= $3 THEN $4 \
                     WHEN locked_until IS NOT NULL AND locked_until <= $5 THEN NULL \
                     ELSE locked_until END \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(threshold)
            .bind(lock_until)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Resets the failure counter after a successful login and records the
    /// login, in one transaction.
    pub async fn record_login_success(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        audited_tx!(self, event, |tx| {
            sqlx::query(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_login_at = $3 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(Timestamp::now())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// The password hash of a live user (`None`: no password).
    pub async fn password_hash_of(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<Option<String>> {
        let row: Option<(Option<String>,)> = on_pool!(&self.db, |pool| {
            sqlx::query_as("SELECT password_hash FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(h,)| h).ok_or(StoreError::NotFound)
    }
}
