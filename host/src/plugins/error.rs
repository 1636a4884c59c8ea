//! Typed failures of a plugin call. Every one is logged, counted, audited
//! and fed to the activation's circuit breaker; the category's failure
//! policy decides what happens to the request.

use serde::Serialize;

/// A plugin-reported error (the contract's `plugin-error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginReported {
    /// `invalid-input`, `misconfigured`, `unavailable`, `unsupported` or `internal`.
    pub kind: &'static str,
    /// The plugin's machine-readable code.
    pub code: String,
    /// The plugin's explanation (truncated to 1 KiB, for operators only).
    pub message: String,
}

/// Why a plugin call did not produce a usable result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginCallError {
    /// The plugin returned a `plugin-error`.
    #[error("plugin error {}: {} ({})", .0.kind, .0.code, .0.message)]
    Reported(PluginReported),
    /// The call used all its fuel.
    #[error("fuel exhausted (limit {0})")]
    FuelExhausted(u64),
    /// The call ran past its wall-clock deadline.
    #[error("deadline of {0} ms exceeded")]
    DeadlineExceeded(u64),
    /// The instance tried to grow its memory beyond the limit.
    #[error("memory limit of {0} MiB exceeded")]
    MemoryLimit(u32),
    /// The guest overflowed its stack.
    #[error("stack overflow")]
    StackOverflow,
    /// Any other trap (panic, unreachable, out-of-bounds access, ...).
    #[error("trap: {0}")]
    Trap(String),
    /// The arguments were larger than the input limit; the plugin was not called.
    #[error("input of {size} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge {
        /// Bytes of input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The result was larger than the output limit.
    #[error("output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge {
        /// Bytes of output.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The result did not make sense (invalid JSON, impossible values).
    #[error("malformed output: {0}")]
    MalformedOutput(String),
    /// The activation's circuit breaker is open; the plugin was not called.
    #[error("circuit breaker open")]
    CircuitOpen,
    /// The plugin could not be instantiated.
    #[error("instantiation failed: {0}")]
    Instantiation(String),
    /// No call slot came free before the deadline (the activation or its
    /// tenant had the most calls in flight); the plugin was not called.
    #[error("busy: no call slot within {0} ms")]
    Busy(u64),
}

impl PluginCallError {
    /// A short stable code for metrics and audit records.
    pub fn code(&self) -> &'static str {
        match self {
            PluginCallError::Reported(_) => "plugin_error",
            PluginCallError::FuelExhausted(_) => "fuel_exhausted",
            PluginCallError::DeadlineExceeded(_) => "deadline_exceeded",
            PluginCallError::MemoryLimit(_) => "memory_limit",
            PluginCallError::StackOverflow => "stack_overflow",
            PluginCallError::Trap(_) => "trap",
            PluginCallError::InputTooLarge { .. } => "input_too_large",
            PluginCallError::OutputTooLarge { .. } => "output_too_large",
            PluginCallError::MalformedOutput(_) => "malformed_output",
            PluginCallError::CircuitOpen => "circuit_open",
            PluginCallError::Instantiation(_) => "instantiation_failed",
            PluginCallError::Busy(_) => "busy",
        }
    }

    /// Whether this failure counts towards the circuit breaker (an
    /// `unsupported` answer is a plugin declining, not failing; `busy`
    /// means other calls of the tenant were slow, not this plugin).
    pub fn counts_as_failure(&self) -> bool {
        !matches!(
            self,
            PluginCallError::CircuitOpen
                | PluginCallError::InputTooLarge { .. }
                | PluginCallError::Busy(_)
        ) && !matches!(self, PluginCallError::Reported(r) if r.kind == "unsupported")
    }
}
