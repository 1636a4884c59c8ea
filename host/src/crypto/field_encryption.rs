//! Fields encrypted at rest per tenant: by the tenant's encryption-provider
//! plugin when it has one active (BYOK / KMS), else by the instance master
//! key exactly as before plugins existed.
//!
//! Stored text, one of two formats, told apart by their alphabets:
//! - master-sealed: `base64(nonce || AES-256-GCM ciphertext)` (standard,
//!   padded alphabet: never contains `.`), bound to the column's historic
//!   context (`Field::master_context`, e.g. the kid for signing keys);
//! - plugin-encrypted: `xp1.<plugin_id>.<key_id>.<ciphertext>` where
//!   `plugin_id` is the manifest id (`[a-z0-9-]{1,64}`), and `key_id` and
//!   `ciphertext` are unpadded base64url of what the plugin's `encrypt`
//!   returned. `xp1` is the format version.
//!
//! Security decisions:
//! - Associated data binds every plugin ciphertext to its place: a domain
//!   label, then tenant id, table, column and row id, each length-prefixed
//!   (u32, big-endian) so no two places encode alike. A ciphertext copied
//!   to another row, column or tenant fails authentication in the plugin.
//! - The plugin id comes from the stored record, and `decrypt` only ever
//!   goes to that plugin's activation in the record's own tenant: a record
//!   cannot be steered to another provider or another tenant's keys.
//! - Fail closed: when a tenant has a provider, a failed `encrypt` refuses
//!   the write; nothing falls back to the master key or to plaintext.
//!   Reads dispatch on the stored format only, so master-sealed values stay
//!   readable after a provider is activated (until re-encrypted), and a
//!   plugin-encrypted value is never "opened" with the master key.
//! - Opened secrets are returned as `Zeroizing` buffers.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::sealing::MasterKey;
use crate::plugins::PluginRuntime;
use crate::plugins::hooks::encryption_provider::{
    EncryptionFailure, MAX_CIPHERTEXT_BYTES, MAX_KEY_ID_BYTES, PluginCiphertext, ProviderKey,
};

/// Prefix of a plugin-encrypted value (format version 1).
pub const PLUGIN_FORMAT_PREFIX: &str = "xp1.";

/// Domain label leading the associated data of every plugin-encrypted field.
const AAD_LABEL: &[u8] = b"vaultaris:field:v1";

/// Where an encrypted value lives.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The tenant owning the row.
    pub tenant_id: Uuid,
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
    /// The row's id within the tenant.
    pub row_id: &'a str,
    /// The context the master-key sealing of this column has always bound
    /// (kept as it was, so values sealed before plugins still open).
    pub master_context: &'a str,
}

impl<'a> Field<'a> {
    /// `signing_keys.private_key_enc` of key `kid` (master context: the kid).
    pub fn signing_key(tenant_id: Uuid, kid: &'a str) -> Self {
        Self {
            tenant_id,
            table: "signing_keys",
            column: "private_key_enc",
            row_id: kid,
            master_context: kid,
        }
    }

    /// The associated data given to the plugin: label, tenant, table,
    /// column, row — each length-prefixed.
    pub fn associated_data(&self) -> Vec<u8> {
        let tenant = self.tenant_id.to_string();
        let parts: [&[u8]; 4] = [
            tenant.as_bytes(),
            self.table.as_bytes(),
            self.column.as_bytes(),
            self.row_id.as_bytes(),
        ];
        let mut out = Vec::with_capacity(AAD_LABEL.len() + 64 + self.row_id.len());
        out.extend_from_slice(AAD_LABEL);
        for p in parts {
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }
}

/// A stored value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Sealed with the master key (the text as stored).
    Master(&'a str),
    /// Encrypted by a plugin.
    Plugin(PluginCiphertext),
}

impl Stored<'_> {
    /// The plugin that encrypted the value, if a plugin did.
    pub fn plugin_id(&self) -> Option<&str> {
        match self {
            Stored::Master(_) => None,
            Stored::Plugin(p) => Some(&p.plugin_id),
        }
    }

    /// Whether the value is encrypted under exactly `key` (plugin and key id).
    pub fn is_under(&self, key: &ProviderKey) -> bool {
        matches!(self, Stored::Plugin(p) if p.plugin_id == key.plugin_id && p.key_id == key.key_id)
    }

    /// A short description for audit records: `master`, or the plugin and
    /// key id (key ids name keys, they are not secret).
    pub fn describe(&self) -> serde_json::Value {
        match self {
            Stored::Master(_) => serde_json::json!({ "sealing": "master" }),
            Stored::Plugin(p) => serde_json::json!({
                "sealing": "plugin", "plugin_id": p.plugin_id, "key_id": p.key_id,
            }),
        }
    }
}

/// Why a field could not be sealed or opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FieldError {
    /// The stored text is in no known format (corrupt, or written by a
    /// newer version).
    #[error("the stored value is in no known format")]
    Malformed,
    /// A master-sealed value failed to open: tampered with, moved from
    /// another row, or sealed under another master key.
    #[error("the sealed value cannot be opened with this master key")]
    MasterOpen,
    /// The encryption-provider plugin failed, refused, or is not active.
    #[error(transparent)]
    Provider(#[from] EncryptionFailure),
}

impl FieldError {
    /// Whether the value failed authentication (tampering or a value moved
    /// from elsewhere), as opposed to a provider being unreachable.
    pub fn is_tamper(&self) -> bool {
        match self {
            FieldError::MasterOpen => true,
            FieldError::Provider(p) => p.is_tamper(),
            FieldError::Malformed => false,
        }
    }

    /// Whether trying again later may succeed (the provider was down, slow
    /// or broken), as opposed to a refusal that needs an administrator.
    pub fn is_transient(&self) -> bool {
        matches!(self, FieldError::Provider(p) if p.is_transient())
    }
}

fn valid_plugin_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses stored text; see the module documentation for the formats.
pub fn parse(stored: &str) -> Result<Stored<'_>, FieldError> {
    let Some(rest) = stored.strip_prefix(PLUGIN_FORMAT_PREFIX) else {
        // The master format is standard base64: never a `.` in it.
        return if stored.is_empty() || stored.contains('.') {
            Err(FieldError::Malformed)
        } else {
            Ok(Stored::Master(stored))
        };
    };
    let mut parts = rest.split('.');
    let (Some(plugin_id), Some(key_id), Some(ciphertext), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FieldError::Malformed);
    };
    if !valid_plugin_id(plugin_id) {
        return Err(FieldError::Malformed);
    }
    let key_id = URL_SAFE_NO_PAD
        .decode(key_id)
        .ok()
        .and_then(|k| String::from_utf8(k).ok())
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_ID_BYTES)
        .ok_or(FieldError::Malformed)?;
    let ciphertext = URL_SAFE_NO_PAD
        .decode(ciphertext)
        .ok()
        .filter(|c| !c.is_empty() && c.len() <= MAX_CIPHERTEXT_BYTES)
        .ok_or(FieldError::Malformed)?;
    Ok(Stored::Plugin(PluginCiphertext {
        plugin_id: plugin_id.to_string(),
        key_id,
        ciphertext,
    }))
}

/// The stored text of a plugin ciphertext.
pub fn format(c: &PluginCiphertext) -> String {
    format!(
        "{PLUGIN_FORMAT_PREFIX}{}.{}.{}",
        c.plugin_id,
        URL_SAFE_NO_PAD.encode(c.key_id.as_bytes()),
        URL_SAFE_NO_PAD.encode(&c.ciphertext)
    )
}

/// Seals and opens fields: the master key plus the plugin runtime.
#[derive(Clone, Debug)]
pub struct FieldCrypto {
    master: MasterKey,
    plugins: Arc<PluginRuntime>,
}

impl FieldCrypto {
    /// Over the instance master key and the plugin runtime.
    pub fn new(master: MasterKey, plugins: Arc<PluginRuntime>) -> Self {
        Self { master, plugins }
    }

    /// Seals `plaintext` for `field`: with the tenant's encryption provider
    /// (its current key) when it has one — refusing if the provider fails
    /// — else with the master key.
    pub async fn seal(&self, field: Field<'_>, plaintext: &[u8]) -> Result<String, FieldError> {
        let aad = field.associated_data();
        match self
            .plugins
            .encrypt_secret(field.tenant_id, None, plaintext, &aad)
            .await
            .map_err(EncryptionFailure::from)?
        {
            Some(c) => Ok(format(&c)),
            None => Ok(self.seal_with_master(field, plaintext)),
        }
    }

    /// Seals `plaintext` for `field` with the master key, whatever the
    /// tenant's provider (re-wrapping before a provider is disabled).
    pub fn seal_with_master(&self, field: Field<'_>, plaintext: &[u8]) -> String {
        self.master.seal(plaintext, field.master_context)
    }

    /// Encrypts `plaintext` for `field` under exactly `key` (re-encryption).
    /// Fails if `key`'s plugin is no longer the tenant's provider.
    pub async fn seal_under(
        &self,
        field: Field<'_>,
        key: &ProviderKey,
        plaintext: &[u8],
    ) -> Result<String, FieldError> {
        let aad = field.associated_data();
        let sealed = self
            .plugins
            .encrypt_secret(field.tenant_id, Some(&key.key_id), plaintext, &aad)
            .await
            .map_err(EncryptionFailure::from)?;
        match sealed {
            Some(c) if c.plugin_id == key.plugin_id => Ok(format(&c)),
            _ => Err(FieldError::Provider(EncryptionFailure::NotActive {
                plugin_id: key.plugin_id.clone(),
            })),
        }
    }

    /// Opens a stored value of `field`, dispatching on its format.
    pub async fn open(
        &self,
        field: Field<'_>,
        stored: &str,
    ) -> Result<Zeroizing<Vec<u8>>, FieldError> {
        match parse(stored)? {
            Stored::Master(text) => self
                .master
                .open(text, field.master_context)
                .map(Zeroizing::new)
                .map_err(|_| FieldError::MasterOpen),
            Stored::Plugin(c) => Ok(self
                .plugins
                .decrypt_secret(
                    field.tenant_id,
                    &c.plugin_id,
                    &c.key_id,
                    &c.ciphertext,
                    &field.associated_data(),
                )
                .await?),
        }
    }

    /// The key the tenant's provider encrypts with now (`None` without a
    /// provider).
    pub async fn current_key(&self, tenant_id: Uuid) -> Result<Option<ProviderKey>, FieldError> {
        Ok(self
            .plugins
            .current_encryption_key(tenant_id)
            .await
            .map_err(EncryptionFailure::from)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_and_are_told_apart() {
        let c = PluginCiphertext {
            plugin_id: "aes-gcm-encryption".into(),
            key_id: "projects/p/keys/k/versions/3".into(),
            ciphertext: vec![1, 2, 3, 250, 251, 252],
        };
        let text = format(&c);
        assert!(text.starts_with("xp1.aes-gcm-encryption."), "{text}");
        assert_eq!(text.matches('.').count(), 3, "{text}");
        assert_eq!(parse(&text).unwrap(), Stored::Plugin(c.clone()));
        let key = ProviderKey {
            plugin_id: c.plugin_id.clone(),
            key_id: c.key_id.clone(),
        };
        assert!(parse(&text).unwrap().is_under(&key));
        let other = ProviderKey {
            key_id: "k2".into(),
            ..key
        };
        assert!(!parse(&text).unwrap().is_under(&other));

        let master = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let sealed = master.seal(b"secret", "kid");
        assert_eq!(parse(&sealed).unwrap(), Stored::Master(sealed.as_str()));
        assert_eq!(parse(&sealed).unwrap().plugin_id(), None);

        for bad in [
            "",
            "xp1.",
            "xp1.p.a2V5",
            "xp1.p.a2V5.AQI.x",
            "xp1.P.a2V5.AQI",
            "xp1..a2V5.AQI",
            "xp1.p..AQI",
            "xp1.p.a2V5.",
            "xp1.p.a2V5.AQI=",
            "xp1.p.//8.AQI",
            "xp2.p.a2V5.AQI",
            "a.b",
        ] {
            assert!(matches!(parse(bad), Err(FieldError::Malformed)), "{bad:?}");
        }
        let long_key = format!("xp1.p.{}.AQI", URL_SAFE_NO_PAD.encode("k".repeat(257)));
        assert!(parse(&long_key).is_err());
    }

    #[test]
    fn associated_data_binds_tenant_table_column_and_row() {
        let t1 = Uuid::from_u128(1);
        let t2 = Uuid::from_u128(2);
        let a = Field::signing_key(t1, "kid-a").associated_data();
        assert_ne!(a, Field::signing_key(t1, "kid-b").associated_data());
        assert_ne!(a, Field::signing_key(t2, "kid-a").associated_data());
        let other_column = Field {
            column: "other",
            ..Field::signing_key(t1, "kid-a")
        };
        assert_ne!(a, other_column.associated_data());
        // Length prefixes: moving bytes between parts changes the encoding.
        let x = Field {
            table: "ab",
            column: "c",
            ..Field::signing_key(t1, "r")
        };
        let y = Field {
            table: "a",
            column: "bc",
            ..Field::signing_key(t1, "r")
        };
        assert_ne!(x.associated_data(), y.associated_data());
        assert!(a.starts_with(AAD_LABEL));
        // The master context of signing keys stays the kid.
        assert_eq!(Field::signing_key(t1, "kid-a").master_context, "kid-a");
    }
}
