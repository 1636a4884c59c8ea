//! Per-call limits: defaults per category (documented for plugin authors in
//! `wit/vaultaris-plugin-0.1.0/docs/README.md`), overrides from the manifest
//! and from the tenant's activation, and the operator's maxima that bound
//! both.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::manifest::Category;

/// The limits one call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Limits {
    /// Wasm fuel (about one unit per instruction), reset per call.
    pub fuel: u64,
    /// Maximum linear memory of the instance, in MiB.
    pub memory_mib: u32,
    /// Wall-clock time for the whole call, in milliseconds.
    pub deadline_ms: u64,
    /// Largest argument size, in KiB.
    pub max_input_kib: u32,
    /// Largest result size, in KiB.
    pub max_output_kib: u32,
}

impl Limits {
    /// The contract's default limits of a category.
    pub fn default_for(category: Category) -> Self {
        use Category::*;
        let (fuel, memory_mib, deadline_ms, max_input_kib, max_output_kib) = match category {
            AuthProvider => (50_000_000, 64, 5_000, 64, 64),
            IdentityProvider => (50_000_000, 64, 10_000, 256, 64),
            StorageBackend => (10_000_000, 64, 1_000, 1024, 1024),
            NotificationChannel => (20_000_000, 64, 10_000, 512, 8),
            EncryptionProvider => (20_000_000, 64, 2_000, 128, 128),
            PolicyEngine => (20_000_000, 64, 50, 256, 64),
            AuditSink => (100_000_000, 128, 30_000, 1024, 4),
            JwtCustomizer => (10_000_000, 64, 50, 64, 16),
            RateLimiter => (2_000_000, 32, 20, 8, 1),
            MetricsCollector => (100_000_000, 128, 30_000, 1024, 4),
            InputValidator => (20_000_000, 64, 2_000, 256, 64),
            LifecycleHook => (20_000_000, 64, 2_000, 64, 8),
        };
        Self {
            fuel,
            memory_mib,
            deadline_ms,
            max_input_kib,
            max_output_kib,
        }
    }

    /// Applies overrides (manifest first, then activation), each field
    /// capped at the operator's maxima.
    pub fn with(self, overrides: &LimitOverrides, max: &Limits) -> Self {
        Self {
            fuel: overrides.fuel.unwrap_or(self.fuel).min(max.fuel),
            memory_mib: overrides
                .memory_mib
                .unwrap_or(self.memory_mib)
                .min(max.memory_mib),
            deadline_ms: overrides
                .deadline_ms
                .unwrap_or(self.deadline_ms)
                .min(max.deadline_ms),
            max_input_kib: overrides
                .max_input_kib
                .unwrap_or(self.max_input_kib)
                .min(max.max_input_kib),
            max_output_kib: overrides
                .max_output_kib
                .unwrap_or(self.max_output_kib)
                .min(max.max_output_kib),
        }
    }

    /// The deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// Memory ceiling in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib as usize * 1024 * 1024
    }

    /// Input ceiling in bytes.
    pub fn max_input_bytes(&self) -> usize {
        self.max_input_kib as usize * 1024
    }

    /// Output ceiling in bytes.
    pub fn max_output_bytes(&self) -> usize {
        self.max_output_kib as usize * 1024
    }

    /// The largest of every field of both (the instance limits a plugin
    /// with several categories needs).
    pub fn max(self, other: Limits) -> Limits {
        Limits {
            fuel: self.fuel.max(other.fuel),
            memory_mib: self.memory_mib.max(other.memory_mib),
            deadline_ms: self.deadline_ms.max(other.deadline_ms),
            max_input_kib: self.max_input_kib.max(other.max_input_kib),
            max_output_kib: self.max_output_kib.max(other.max_output_kib),
        }
    }
}

/// Operator maxima when `PLUGIN_MAX_*` are not set: ten times the largest
/// default, so overrides have room, but a tenant administrator can never
/// give a plugin minutes of CPU or gigabytes of memory.
pub const OPERATOR_MAXIMA: Limits = Limits {
    fuel: 1_000_000_000,
    memory_mib: 256,
    deadline_ms: 60_000,
    max_input_kib: 4096,
    max_output_kib: 4096,
};

/// Partial limits: what a manifest or an activation overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Fuel per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Memory ceiling, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Deadline, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Input ceiling, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_kib: Option<u32>,
    /// Output ceiling, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_kib: Option<u32>,
}

impl LimitOverrides {
    /// Refuses zero values and values above the operator's maxima (an
    /// explicit over-the-maximum request is an error, not silently capped).
    pub fn check(&self, max: &Limits) -> Result<(), String> {
        let check = |name: &str, v: Option<u64>, max: u64| match v {
            Some(0) => Err(format!("limits.{name} must be positive")),
            Some(v) if v > max => Err(format!(
                "limits.{name} {v} exceeds the operator maximum {max}"
            )),
            _ => Ok(()),
        };
        check("fuel", self.fuel, max.fuel)?;
        check(
            "memory_mib",
            self.memory_mib.map(u64::from),
            max.memory_mib.into(),
        )?;
        check("deadline_ms", self.deadline_ms, max.deadline_ms)?;
        check(
            "max_input_kib",
            self.max_input_kib.map(u64::from),
            max.max_input_kib.into(),
        )?;
        check(
            "max_output_kib",
            self.max_output_kib.map(u64::from),
            max.max_output_kib.into(),
        )
    }

    /// `other`'s fields where set, else these.
    pub fn then(self, other: &LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            fuel: other.fuel.or(self.fuel),
            memory_mib: other.memory_mib.or(self.memory_mib),
            deadline_ms: other.deadline_ms.or(self.deadline_ms),
            max_input_kib: other.max_input_kib.or(self.max_input_kib),
            max_output_kib: other.max_output_kib.or(self.max_output_kib),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_capped_and_checked() {
        let max = Limits {
            fuel: 100,
            ..OPERATOR_MAXIMA
        };
        let l = Limits::default_for(Category::JwtCustomizer).with(
            &LimitOverrides {
                fuel: Some(1_000),
                deadline_ms: Some(10),
                ..Default::default()
            },
            &max,
        );
        assert_eq!(l.fuel, 100);
        assert_eq!(l.deadline_ms, 10);
        assert!(
            LimitOverrides {
                fuel: Some(1_000),
                ..Default::default()
            }
            .check(&max)
            .is_err()
        );
        assert!(
            LimitOverrides {
                memory_mib: Some(0),
                ..Default::default()
            }
            .check(&max)
            .is_err()
        );
    }
}
