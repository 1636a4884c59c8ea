//! Cryptographic building blocks: password hashing, token hashing, sealing
//! private keys at rest, and EdDSA signing keys.

pub mod password;
pub mod sealing;
pub mod secrets;
pub mod signing;
