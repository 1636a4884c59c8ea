//! Category `encryption-provider`: encrypts and decrypts small secrets at
//! rest with keys the plugin controls. See `docs/encryption-provider.md`.
//! Fails closed, always; report tampering as `invalid_input` with code
//! `authentication_failed`.

use std::marker::PhantomData;

use crate::bindings::encryption_provider as raw;
use crate::types::{CallContext, PluginError};

/// Input to `encrypt`.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptRequest {
    /// The key to use; `None` means the current key.
    pub key_id: Option<String>,
    /// The secret to protect (at most 64 KiB).
    pub plaintext: Vec<u8>,
    /// Authenticated, not stored (tenant, table, column, row id).
    pub associated_data: Vec<u8>,
}

impl std::fmt::Debug for EncryptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("key_id", &self.key_id)
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("associated_data", &self.associated_data)
            .finish()
    }
}

/// Output of `encrypt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encrypted {
    /// The id of the key actually used (at most 256 bytes).
    pub key_id: String,
    /// The ciphertext with whatever nonce/tag is needed to decrypt.
    pub ciphertext: Vec<u8>,
}

/// Input to `decrypt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptRequest {
    /// The key id returned by `encrypt`.
    pub key_id: String,
    /// The ciphertext returned by `encrypt`.
    pub ciphertext: Vec<u8>,
    /// The same associated data as given to `encrypt`.
    pub associated_data: Vec<u8>,
}

/// An encryption-provider plugin.
pub trait EncryptionProvider: crate::Plugin {
    /// Encrypts (never deterministically). Not retried.
    fn encrypt(&self, ctx: &CallContext, request: EncryptRequest)
    -> Result<Encrypted, PluginError>;

    /// Decrypts and authenticates.
    fn decrypt(&self, ctx: &CallContext, request: DecryptRequest) -> Result<Vec<u8>, PluginError>;

    /// The id of the key `encrypt` uses now.
    fn current_key_id(&self, ctx: &CallContext) -> Result<String, PluginError>;
}

#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: EncryptionProvider> raw::Guest for Export<T> {
    fn encrypt(
        ctx: raw::CallContext,
        request: raw::EncryptRequest,
    ) -> Result<raw::Encrypted, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        let e = plugin.encrypt(
            &ctx.into(),
            EncryptRequest {
                key_id: request.key_id,
                plaintext: request.plaintext,
                associated_data: request.associated_data,
            },
        )?;
        Ok(raw::Encrypted {
            key_id: e.key_id,
            ciphertext: e.ciphertext,
        })
    }

    fn decrypt(
        ctx: raw::CallContext,
        request: raw::DecryptRequest,
    ) -> Result<Vec<u8>, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.decrypt(
            &ctx.into(),
            DecryptRequest {
                key_id: request.key_id,
                ciphertext: request.ciphertext,
                associated_data: request.associated_data,
            },
        )?)
    }

    fn current_key_id(ctx: raw::CallContext) -> Result<String, raw::PluginError> {
        let plugin = crate::runtime::instance::<T>()?;
        Ok(plugin.current_key_id(&ctx.into())?)
    }
}
