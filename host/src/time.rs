//! `Timestamp`: the one instant type stored and serialised everywhere.
//!
//! Instants are truncated to whole microseconds at creation so that the value
//! read back from either database is bit-identical to the value written; the
//! audit chain hashes timestamps and would break on any rounding.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current instant, truncated to microseconds.
    pub fn now() -> Self {
        Self(Utc::now().trunc_subsecs(6))
    }

    /// This instant plus `seconds` (negative moves backwards).
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0 + chrono::Duration::seconds(seconds))
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.timestamp()
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// The instant `ms` milliseconds after the Unix epoch (microsecond
    /// precision like `now`), if representable.
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        chrono::DateTime::from_timestamp_millis(ms).map(Self)
    }

    /// Fixed-width RFC 3339 form (`2026-11-25T11:06:27.123456Z`): sorts
    /// lexicographically in time order, which SQLite text columns rely on.
    pub fn to_fixed_string(self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    /// Parses any RFC 3339 instant.
    pub fn parse(s: &str) -> Result<Self, chrono::ParseError> {
        Ok(Self(
            DateTime::parse_from_rfc3339(s)?
                .with_timezone(&Utc)
                .trunc_subsecs(6),
        ))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_string_round_trips_and_sorts() {
        let a = Timestamp::now();
        let b = a.plus_seconds(1);
        assert_eq!(Timestamp::parse(&a.to_fixed_string()).unwrap(), a);
        assert!(a.to_fixed_string() < b.to_fixed_string());
        assert_eq!(a.to_fixed_string().len(), 27);
    }
}
