//! Resource limits applied to every plugin instance.

use std::time::Duration;

/// How long one epoch tick lasts. 10 ms keeps the deadline check cheap (measured ~10 % of guest
/// time with async yields at this rate) while stopping a runaway loop within a few ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits of one plugin instance (one wasmtime store). Defaults are documented in the README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory a plugin instance may grow to.
    pub memory_bytes: usize,
    /// CPU time one call may spend inside the guest before it is interrupted.
    pub cpu_per_call: Duration,
    /// Wall-clock time one call may take, host calls included.
    pub wall_per_call: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            cpu_per_call: Duration::from_secs(10),
            wall_per_call: Duration::from_secs(30),
        }
    }
}
