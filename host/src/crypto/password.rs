//! Argon2id password hashing, off the async runtime, with bounded concurrency.
//!
//! Security decision: OWASP's Argon2id parameters (m = 19456 KiB, t = 2,
//! p = 1). Each hash takes ~19 MiB and tens of milliseconds of one core, so
//! hashes run on the blocking pool behind a semaphore sized to the cores: a
//! burst of logins queues instead of exhausting memory or starving the
//! runtime. Unknown users are verified against a dummy hash so that timing
//! does not reveal which emails exist.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use tokio::sync::Semaphore;

/// Errors from hashing.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The hasher failed (bad parameters, corrupt PHC string).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task was cancelled.
    #[error("password hashing task failed")]
    Join,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"vaultaris-dummy-password", &salt)
        .expect("hashing a constant succeeds")
        .to_string()
});

/// Hashes and verifies passwords with bounded parallelism.
#[derive(Clone, Debug)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
}

impl PasswordHasherPool {
    /// A pool allowing `concurrency` simultaneous hashes.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Join)?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
        .map_err(|_| PasswordError::Join)?
    }

    /// Verifies `password` against `hash`; with no hash, burns the same time
    /// on a dummy hash and answers false.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Join)?;
        tokio::task::spawn_blocking(move || {
            let (phc, real) = match hash {
                Some(h) => (h, true),
                None => (DUMMY_HASH.clone(), false),
            };
            let parsed = PasswordHash::new(&phc).map_err(|e| PasswordError::Hash(e.to_string()))?;
            let ok = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(ok && real)
        })
        .await
        .map_err(|_| PasswordError::Join)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let pool = PasswordHasherPool::new(2);
        let hash = pool.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            pool.verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!pool.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!pool.verify("anything".into(), None).await.unwrap());
    }
}
