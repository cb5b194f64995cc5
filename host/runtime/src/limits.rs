//! Resource limits applied to every plugin instance.

use std::time::Duration;

/// How long one epoch tick lasts. 10 ms keeps the deadline check cheap (measured ~10 % of guest
/// time with async yields at this rate) while stopping a runaway loop within a few ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits of one plugin instance (one wasmtime store). Defaults are documented in the README.
///
/// Build it as `Limits { memory_bytes, ..Limits::default() }`: fields are added as the host
/// learns to bound more of what a plugin can cost it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory a plugin instance may grow to.
    pub memory_bytes: usize,
    /// CPU time one call may spend inside the guest before it is interrupted; also the longest
    /// one `sql` statement may run in the host.
    pub cpu_per_call: Duration,
    /// Wall-clock time one call may take, host calls included.
    pub wall_per_call: Duration,
    /// Most rows one `sql` `query` may return (default 100,000); past it the query fails with
    /// `bad-data` naming this limit instead of being collected.
    pub max_query_rows: usize,
    /// Most bytes one `sql` `query` result may hold in the host, values plus a per-value
    /// overhead (default 64 MiB).
    pub max_query_bytes: usize,
    /// Largest checkpoint a plugin may hand over (default 64 KiB): a checkpoint is stored,
    /// streamed and shown whole, so a larger one is `bad-data`.
    pub max_checkpoint_bytes: usize,
    /// Longest error message, reject reason or log line kept from a plugin (default 16 KiB);
    /// longer ones are cut with a visible `… (N bytes in all)` marker.
    pub max_message_bytes: usize,
    /// Longest `raw` text of a source reject kept (default 64 KiB), cut with the same marker.
    pub max_raw_bytes: usize,
    /// Most bytes the host copies out of a plugin for one control call (`describe`,
    /// `partitions`, `open`, `schema`, history calls, a loader's write plan), counted as the
    /// host holds them (default 16 MiB). Batches have their own cap, passed per call.
    pub max_result_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            cpu_per_call: Duration::from_secs(10),
            wall_per_call: Duration::from_secs(30),
            max_query_rows: 100_000,
            max_query_bytes: 64 << 20,
            max_checkpoint_bytes: 64 << 10,
            max_message_bytes: 16 << 10,
            max_raw_bytes: 64 << 10,
            max_result_bytes: 16 << 20,
        }
    }
}

/// Most `sql` connection handles one instance may hold open at once. A handle costs the host a
/// table entry; a guest that opens them in a loop would otherwise grow host memory.
pub const MAX_SQL_CONNECTIONS: usize = 64;

/// Most core instances one plugin store may create (componentize-py's Python plugins make 14;
/// see `limiter.rs` for what the example plugins use).
pub const MAX_INSTANCES: usize = 64;
/// Most tables one plugin store may create (the example plugins make 2).
pub const MAX_TABLES: usize = 32;
/// Most linear memories one plugin store may create (the example plugins make 1). Their sizes
/// together stay within [`Limits::memory_bytes`].
pub const MAX_MEMORIES: usize = 8;
/// Most elements all tables of one store may hold together (the example plugins use under
/// 8,000). Tables live in host memory (8 bytes or more per element), outside the linear-memory
/// cap, so an unbounded `table.grow` is a host-memory bomb; this caps it at a few MiB.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 18;
