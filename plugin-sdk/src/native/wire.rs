//! The encoding of arguments and results across the native ABI: postcard
//! (a compact, specified serde format) of the WIT-generated types. A call's
//! arguments are the tuple of the WIT function's parameters (the call
//! context first); its result is the WIT function's result type.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes a value.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serialising into a vector fails only for types serde cannot express
    // in postcard (maps with unknown length, which the WIT types never are).
    postcard::to_allocvec(value).expect("WIT types always encode")
}

/// Decodes a value, refusing trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| e.to_string())?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(format!("{} trailing bytes", rest.len()))
    }
}
