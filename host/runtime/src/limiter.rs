//! The store limiter of a plugin instance: what its component may create and grow.
//!
//! Linear memory is not the only host memory a guest controls: tables (8 bytes or more per
//! element), core instances and memories all live in the host. So the limiter caps their
//! counts, and caps memory and table elements as totals across the store: wasmtime's
//! `StoreLimits` caps each memory separately, which would let a component with several
//! memories use the memory cap once per memory.
//!
//! Measured on the largest plugins we know (the examples in `plugins/examples`, the bundled
//! Rust plugins): componentize-py's Python transform instantiates 14 core modules, 1 memory,
//! 2 tables of at most 7,696 elements; componentize-js's 4 modules, 1 memory, 2 tables; a Rust
//! plugin 3 modules, 1 memory. The caps in [`crate::limits`] leave several times that.

use wasmtime::ResourceLimiter;

use crate::limits::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};

/// Caps and running totals of one store.
#[derive(Debug)]
pub(crate) struct PluginLimiter {
    memory_cap: usize,
    memory_used: usize,
    elements_used: usize,
}

impl PluginLimiter {
    /// A limiter for an instance whose memories may total `memory_cap` bytes.
    pub(crate) fn new(memory_cap: usize) -> Self {
        Self {
            memory_cap,
            memory_used: 0,
            elements_used: 0,
        }
    }
}

impl ResourceLimiter for PluginLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        if self.memory_used.saturating_add(grow) > self.memory_cap {
            // A trap rather than a failed `memory.grow` (-1), so a runaway allocation ends the
            // call with a clear cause instead of a guest-side abort. The wording is wasmtime's,
            // which `PluginError::from_host` classifies as the memory limit.
            wasmtime::bail!(
                "forcing trap when growing memory to {desired} bytes: the instance's memories may total {} bytes",
                self.memory_cap
            );
        }
        self.memory_used += grow;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        if self.elements_used.saturating_add(grow) > MAX_TABLE_ELEMENTS {
            wasmtime::bail!(
                "forcing trap when growing a table to {desired} elements: the instance's tables may total {MAX_TABLE_ELEMENTS} elements"
            );
        }
        self.elements_used += grow;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_table_elements_are_capped_across_the_store() {
        let mut limiter = PluginLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        // A second memory shares the cap with the first.
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        let err = limiter.memory_growing(40, 41, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("forcing trap when growing memory to 41 bytes"),
            "{err}"
        );
        assert!(limiter.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(limiter.table_growing(0, 1, None).is_err());
    }
}
