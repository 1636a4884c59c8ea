//! Types shared by every category: the call context, the plugin error,
//! attributes, key-value pairs and JSON text.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::caps::vaultaris::plugin::types as raw;

/// A point in time: milliseconds since the Unix epoch, UTC, from the host's
/// clock (WIT `timestamp`).
pub type Timestamp = i64;

/// A length of time in milliseconds (WIT `duration-ms`).
pub type DurationMs = u64;

/// A JSON value as UTF-8 text (WIT `json`).
///
/// The contract carries JSON as text so that nothing is parsed unless a
/// plugin wants it: a jwt-customizer that only adds claims never pays for
/// parsing the claims it was given. The host parses every `Json` a plugin
/// returns and fails the call if it is not valid JSON, so build outputs with
/// [`Json::from_value`] / [`Json::encode`] (always valid) rather than
/// [`Json::from_raw`] (unchecked, e.g. to test how the host handles garbage).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Json(String);

impl Json {
    /// Wraps text without checking that it is valid JSON.
    pub fn from_raw(text: impl Into<String>) -> Self {
        Json(text.into())
    }

    /// Serialises a `serde_json::Value` (always valid JSON).
    pub fn from_value(value: &serde_json::Value) -> Self {
        Json(value.to_string())
    }

    /// Serialises any `Serialize` value; fails only if its `Serialize`
    /// implementation fails (e.g. a map with non-string keys).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Json)
    }

    /// The JSON `null`.
    pub fn null() -> Self {
        Json("null".to_owned())
    }

    /// A JSON string literal holding `text` (quoted and escaped).
    pub fn string(text: &str) -> Self {
        Json(serde_json::Value::from(text).to_string())
    }

    /// The empty JSON object `{}`.
    pub fn empty_object() -> Self {
        Json("{}".to_owned())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the wrapper and returns the JSON text.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Parses the text into a `serde_json::Value`.
    pub fn value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Parses the text into any `DeserializeOwned` type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Self {
        Json::from_value(&value)
    }
}

impl From<&serde_json::Value> for Json {
    fn from(value: &serde_json::Value) -> Self {
        Json::from_value(value)
    }
}

/// A name with a text value: HTTP headers, log fields, metric labels, query
/// parameters (WIT `key-value`). Order is preserved and names may repeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValue {
    /// The name; case is preserved.
    pub key: String,
    /// The value.
    pub value: String,
}

impl KeyValue {
    /// Builds a pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Looks up the first value of `name` in a list of pairs, comparing names
/// ASCII-case-insensitively (right for HTTP headers and query parameters).
pub fn find_key_value<'a>(pairs: &'a [KeyValue], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|kv| kv.key.eq_ignore_ascii_case(name))
        .map(|kv| kv.value.as_str())
}

/// The value of an attribute of a subject, resource, user or request (WIT
/// `attribute-value`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttributeValue {
    /// A single string, e.g. an email address.
    Text(String),
    /// A signed integer.
    Integer(i64),
    /// A boolean flag.
    Boolean(bool),
    /// A list of strings, e.g. roles or groups.
    TextList(Vec<String>),
    /// Any other JSON value (nested objects, fractional numbers, ...).
    Json(Json),
}

impl AttributeValue {
    /// The text, if this is a `Text` value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttributeValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an `Integer` value.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            AttributeValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The flag, if this is a `Boolean` value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttributeValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The list, if this is a `TextList` value.
    pub fn as_text_list(&self) -> Option<&[String]> {
        match self {
            AttributeValue::TextList(l) => Some(l),
            _ => None,
        }
    }

    /// The value as a `serde_json::Value`. A `Json` value that does not
    /// parse becomes a JSON string holding the raw text.
    pub fn to_json_value(&self) -> serde_json::Value {
        match self {
            AttributeValue::Text(s) => serde_json::Value::from(s.as_str()),
            AttributeValue::Integer(i) => serde_json::Value::from(*i),
            AttributeValue::Boolean(b) => serde_json::Value::from(*b),
            AttributeValue::TextList(l) => serde_json::Value::from(l.clone()),
            AttributeValue::Json(j) => j
                .value()
                .unwrap_or_else(|_| serde_json::Value::from(j.as_str())),
        }
    }
}

/// A named, typed attribute (WIT `attribute`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The name, `snake_case` by convention, e.g. `roles`.
    pub name: String,
    /// The value.
    pub value: AttributeValue,
}

impl Attribute {
    /// Builds an attribute.
    pub fn new(name: impl Into<String>, value: AttributeValue) -> Self {
        Attribute {
            name: name.into(),
            value,
        }
    }

    /// A `Text` attribute.
    pub fn text(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute::new(name, AttributeValue::Text(value.into()))
    }

    /// An `Integer` attribute.
    pub fn integer(name: impl Into<String>, value: i64) -> Self {
        Attribute::new(name, AttributeValue::Integer(value))
    }

    /// A `Boolean` attribute.
    pub fn boolean(name: impl Into<String>, value: bool) -> Self {
        Attribute::new(name, AttributeValue::Boolean(value))
    }

    /// A `TextList` attribute.
    pub fn text_list<I, S>(name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Attribute::new(
            name,
            AttributeValue::TextList(values.into_iter().map(Into::into).collect()),
        )
    }

    /// A `Json` attribute.
    pub fn json(name: impl Into<String>, value: Json) -> Self {
        Attribute::new(name, AttributeValue::Json(value))
    }
}

/// Lookup helpers on a list of attributes.
pub trait AttributeList {
    /// The value of the attribute called `name` (the last one if the list
    /// has duplicates, which is how the host resolves them).
    fn attribute(&self, name: &str) -> Option<&AttributeValue>;
}

impl AttributeList for [Attribute] {
    fn attribute(&self, name: &str) -> Option<&AttributeValue> {
        self.iter().rev().find(|a| a.name == name).map(|a| &a.value)
    }
}

impl AttributeList for Vec<Attribute> {
    fn attribute(&self, name: &str) -> Option<&AttributeValue> {
        self.as_slice().attribute(name)
    }
}

/// The first argument of every plugin call (WIT `call-context`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The tenant the call is made for (opaque text). Always the tenant the
    /// instance was activated for.
    pub tenant: String,
    /// The plugin activation's id as the host knows it.
    pub plugin_id: String,
    /// The request id of the HTTP request or job that caused the call; pass
    /// it on to upstream services for correlation.
    pub request_id: String,
    /// The host's wall-clock time at the start of the call.
    pub now: Timestamp,
    /// When the host interrupts the call.
    pub deadline: Timestamp,
}

impl CallContext {
    /// A context for unit tests: tenant `test-tenant`, plugin id
    /// `test-plugin`, request id `test-request`, `now` = 1,700,000,000,000
    /// ms (2023-11-14) and a deadline 50 ms later.
    pub fn for_tests() -> Self {
        CallContext {
            tenant: "test-tenant".to_owned(),
            plugin_id: "test-plugin".to_owned(),
            request_id: "test-request".to_owned(),
            now: 1_700_000_000_000,
            deadline: 1_700_000_000_050,
        }
    }

    /// Milliseconds left before the deadline, measured against
    /// [`crate::host::clock::now`] (0 once it has passed). Use it to size
    /// outbound timeouts.
    pub fn time_left_ms(&self) -> u64 {
        let now = crate::host::clock::now();
        u64::try_from(self.deadline.saturating_sub(now)).unwrap_or(0)
    }
}

/// The detail of a [`PluginError`]: a stable `snake_case` code and an
/// operator-facing message (never shown to end users, must not contain
/// secrets).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `upstream_timeout`.
    pub code: String,
    /// Human-readable explanation for operators.
    pub message: String,
}

/// Why a plugin could not do what it was asked (WIT `plugin-error`).
///
/// The case decides what the host does: only `Unavailable` is retried
/// (where the category retries), `Unsupported` does not count towards the
/// circuit breaker, `Misconfigured` flags the activation in the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PluginError {
    /// The input is not something this plugin can process. Not retried.
    InvalidInput(ErrorDetail),
    /// The tenant's configuration of the plugin is missing or wrong.
    Misconfigured(ErrorDetail),
    /// A dependency is unavailable or timed out (transient).
    Unavailable(ErrorDetail),
    /// The operation is not implemented by this plugin.
    Unsupported(ErrorDetail),
    /// A bug or unexpected state inside the plugin.
    Internal(ErrorDetail),
}

impl PluginError {
    fn detail(code: impl Into<String>, message: impl Into<String>) -> ErrorDetail {
        ErrorDetail {
            code: code.into(),
            message: message.into(),
        }
    }

    /// An `InvalidInput` error.
    pub fn invalid_input(code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError::InvalidInput(Self::detail(code, message))
    }

    /// A `Misconfigured` error.
    pub fn misconfigured(code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError::Misconfigured(Self::detail(code, message))
    }

    /// An `Unavailable` error.
    pub fn unavailable(code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError::Unavailable(Self::detail(code, message))
    }

    /// An `Unsupported` error.
    pub fn unsupported(code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError::Unsupported(Self::detail(code, message))
    }

    /// An `Internal` error.
    pub fn internal(code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError::Internal(Self::detail(code, message))
    }

    /// The detail (code and message), whatever the case.
    pub fn error_detail(&self) -> &ErrorDetail {
        match self {
            PluginError::InvalidInput(d)
            | PluginError::Misconfigured(d)
            | PluginError::Unavailable(d)
            | PluginError::Unsupported(d)
            | PluginError::Internal(d) => d,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.error_detail().code
    }

    /// The operator-facing message.
    pub fn message(&self) -> &str {
        &self.error_detail().message
    }

    /// The case as the WIT names it (`invalid-input`, `misconfigured`,
    /// `unavailable`, `unsupported`, `internal`).
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::InvalidInput(_) => "invalid-input",
            PluginError::Misconfigured(_) => "misconfigured",
            PluginError::Unavailable(_) => "unavailable",
            PluginError::Unsupported(_) => "unsupported",
            PluginError::Internal(_) => "internal",
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.kind(), self.code(), self.message())
    }
}

impl std::error::Error for PluginError {}

/// Deserialises a plugin's configuration into a typed struct, mapping a
/// mismatch to `PluginError::Misconfigured` with code `invalid_config`.
///
/// ```
/// use vaultaris_plugin_sdk::{parse_config, PluginError};
/// #[derive(serde::Deserialize)]
/// struct Config { tier: String }
/// let c: Config = parse_config(serde_json::json!({"tier": "gold"}))?;
/// assert_eq!(c.tier, "gold");
/// # Ok::<(), PluginError>(())
/// ```
pub fn parse_config<T: DeserializeOwned>(config: serde_json::Value) -> Result<T, PluginError> {
    serde_json::from_value(config).map_err(|e| {
        PluginError::misconfigured("invalid_config", format!("invalid configuration: {e}"))
    })
}

// ---- conversions to and from the generated types -------------------------

impl From<raw::CallContext> for CallContext {
    fn from(c: raw::CallContext) -> Self {
        CallContext {
            tenant: c.tenant,
            plugin_id: c.plugin_id,
            request_id: c.request_id,
            now: c.now,
            deadline: c.deadline,
        }
    }
}

impl From<raw::ErrorDetail> for ErrorDetail {
    fn from(d: raw::ErrorDetail) -> Self {
        ErrorDetail {
            code: d.code,
            message: d.message,
        }
    }
}

impl From<ErrorDetail> for raw::ErrorDetail {
    fn from(d: ErrorDetail) -> Self {
        raw::ErrorDetail {
            code: d.code,
            message: d.message,
        }
    }
}

impl From<PluginError> for raw::PluginError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidInput(d) => raw::PluginError::InvalidInput(d.into()),
            PluginError::Misconfigured(d) => raw::PluginError::Misconfigured(d.into()),
            PluginError::Unavailable(d) => raw::PluginError::Unavailable(d.into()),
            PluginError::Unsupported(d) => raw::PluginError::Unsupported(d.into()),
            PluginError::Internal(d) => raw::PluginError::Internal(d.into()),
        }
    }
}

impl From<raw::PluginError> for PluginError {
    fn from(e: raw::PluginError) -> Self {
        match e {
            raw::PluginError::InvalidInput(d) => PluginError::InvalidInput(d.into()),
            raw::PluginError::Misconfigured(d) => PluginError::Misconfigured(d.into()),
            raw::PluginError::Unavailable(d) => PluginError::Unavailable(d.into()),
            raw::PluginError::Unsupported(d) => PluginError::Unsupported(d.into()),
            raw::PluginError::Internal(d) => PluginError::Internal(d.into()),
        }
    }
}

impl From<raw::KeyValue> for KeyValue {
    fn from(kv: raw::KeyValue) -> Self {
        KeyValue {
            key: kv.key,
            value: kv.value,
        }
    }
}

impl From<KeyValue> for raw::KeyValue {
    fn from(kv: KeyValue) -> Self {
        raw::KeyValue {
            key: kv.key,
            value: kv.value,
        }
    }
}

impl From<raw::AttributeValue> for AttributeValue {
    fn from(v: raw::AttributeValue) -> Self {
        match v {
            raw::AttributeValue::Text(s) => AttributeValue::Text(s),
            raw::AttributeValue::Integer(i) => AttributeValue::Integer(i),
            raw::AttributeValue::Boolean(b) => AttributeValue::Boolean(b),
            raw::AttributeValue::TextList(l) => AttributeValue::TextList(l),
            raw::AttributeValue::Json(j) => AttributeValue::Json(Json(j)),
        }
    }
}

impl From<AttributeValue> for raw::AttributeValue {
    fn from(v: AttributeValue) -> Self {
        match v {
            AttributeValue::Text(s) => raw::AttributeValue::Text(s),
            AttributeValue::Integer(i) => raw::AttributeValue::Integer(i),
            AttributeValue::Boolean(b) => raw::AttributeValue::Boolean(b),
            AttributeValue::TextList(l) => raw::AttributeValue::TextList(l),
            AttributeValue::Json(j) => raw::AttributeValue::Json(j.0),
        }
    }
}

impl From<raw::Attribute> for Attribute {
    fn from(a: raw::Attribute) -> Self {
        Attribute {
            name: a.name,
            value: a.value.into(),
        }
    }
}

impl From<Attribute> for raw::Attribute {
    fn from(a: Attribute) -> Self {
        raw::Attribute {
            name: a.name,
            value: a.value.into(),
        }
    }
}

/// Converts every element of a vector.
pub(crate) fn conv<A, B: From<A>>(v: Vec<A>) -> Vec<B> {
    v.into_iter().map(B::from).collect()
}

/// Converts a JSON text coming from the host.
pub(crate) fn json_in(s: String) -> Json {
    Json(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_error_round_trips_through_raw() {
        for e in [
            PluginError::invalid_input("a", "b"),
            PluginError::misconfigured("c", "d"),
            PluginError::unavailable("e", "f"),
            PluginError::unsupported("g", "h"),
            PluginError::internal("i", "j"),
        ] {
            let raw: raw::PluginError = e.clone().into();
            assert_eq!(PluginError::from(raw), e);
        }
        assert_eq!(
            PluginError::unavailable("upstream_timeout", "x").to_string(),
            "unavailable (upstream_timeout): x"
        );
    }

    #[test]
    fn attributes_round_trip_and_lookup() {
        let attrs = vec![
            Attribute::text("email", "a@example.com"),
            Attribute::integer("level", 3),
            Attribute::boolean("mfa", true),
            Attribute::text_list("roles", ["admin", "dev"]),
            Attribute::json("address", Json::from_raw(r#"{"city":"Oslo"}"#)),
            Attribute::integer("level", 4),
        ];
        let raw: Vec<raw::Attribute> = conv(attrs.clone());
        let back: Vec<Attribute> = conv(raw);
        assert_eq!(back, attrs);
        assert_eq!(attrs.attribute("level"), Some(&AttributeValue::Integer(4)));
        assert_eq!(
            attrs.attribute("roles").and_then(|v| v.as_text_list()),
            Some(&["admin".to_owned(), "dev".to_owned()][..])
        );
        assert_eq!(
            attrs.attribute("address").unwrap().to_json_value(),
            serde_json::json!({"city": "Oslo"})
        );
        assert!(attrs.attribute("missing").is_none());
    }

    #[test]
    fn json_helpers() {
        assert_eq!(Json::string("a\"b").as_str(), r#""a\"b""#);
        assert_eq!(Json::from(serde_json::json!([1, 2])).as_str(), "[1,2]");
        assert!(
            Json::from_raw("{").value().is_err(),
            "raw text is not validated"
        );
        let n: u32 = Json::from_raw("7").parse().unwrap();
        assert_eq!(n, 7);
    }

    #[test]
    fn parse_config_maps_errors_to_misconfigured() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct C {
            n: u32,
        }
        let err = parse_config::<C>(serde_json::json!({"n": "x"})).unwrap_err();
        assert_eq!(err.kind(), "misconfigured");
        assert_eq!(err.code(), "invalid_config");
    }
}
