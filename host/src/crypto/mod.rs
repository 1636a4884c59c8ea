//! Cryptographic building blocks: password hashing, token hashing, sealing
//! private keys at rest, signing keys (Ed25519, ES256, RS256) and JOSE
//! verification.

pub mod jose;
pub mod password;
pub mod sealing;
pub mod secrets;
pub mod signing;
