//! Cryptographic building blocks: password hashing, token hashing, sealing
//! private keys at rest (master key or a tenant's encryption-provider
//! plugin), signing keys (Ed25519, ES256, RS256) and JOSE verification.

pub mod field_encryption;
pub mod jose;
pub mod password;
pub mod sealing;
pub mod secrets;
pub mod signing;
