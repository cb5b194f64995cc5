//! Errors of plugin calls, classified so the engine can decide whether to retry.

use weir_bindings::types::Error as GuestError;

/// What went wrong in a plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The plugin returned `invalid-config`.
    InvalidConfig,
    /// The plugin returned `unavailable`.
    Unavailable,
    /// The plugin returned `access-denied`.
    AccessDenied,
    /// The plugin returned `bad-data`.
    BadData,
    /// The plugin returned `other`.
    Other,
    /// The guest trapped (panic, unreachable, host fault).
    Trap,
    /// The call ran past its wall-clock timeout.
    Timeout,
    /// The call spent more than its CPU deadline inside the guest.
    CpuLimit,
    /// The guest tried to grow its memory past the cap.
    MemoryLimit,
    /// The guest handed the host more data in one call than the call's cap (a result, or the
    /// arguments of a host call): the host stopped copying at the cap.
    DataLimit,
}

impl FaultKind {
    /// Whether running the same work again may succeed. Configuration and permission problems
    /// will not fix themselves.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            Self::InvalidConfig | Self::AccessDenied | Self::BadData | Self::DataLimit
        )
    }

    /// Whether the instance must be discarded: after a trap or a cancelled call its state is
    /// undefined (wasmtime refuses to re-enter it).
    pub fn poisons_instance(self) -> bool {
        matches!(
            self,
            Self::Trap | Self::Timeout | Self::CpuLimit | Self::MemoryLimit | Self::DataLimit
        )
    }

    fn label(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid config",
            Self::Unavailable => "unavailable",
            Self::AccessDenied => "access denied",
            Self::BadData => "bad data",
            Self::Other => "error",
            Self::Trap => "trapped",
            Self::Timeout => "timed out",
            Self::CpuLimit => "exceeded its CPU time limit",
            Self::MemoryLimit => "exceeded its memory limit",
            Self::DataLimit => "exceeded a data limit",
        }
    }
}

/// A failed plugin call, naming the plugin and the call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin {plugin}: {call}: {}: {message}", kind.label())]
pub struct PluginError {
    /// Plugin name and version (`"csv-extract" 0.1.0`).
    pub plugin: String,
    /// The WIT function that failed (`next-batch`).
    pub call: &'static str,
    /// The classification.
    pub kind: FaultKind,
    /// Details for humans.
    pub message: String,
    /// How long the server asked to be left alone: the `Retry-After` of a 429 or 503 the
    /// plugin received over a granted HTTP connection in the call that ended `unavailable`.
    /// The supervisor waits at least this long before the next attempt.
    pub retry_after: Option<std::time::Duration>,
}

/// A plugin's message often starts with its own name (`sqlite-load: no column …`), which the
/// error already gives in front (`plugin "sqlite-load" 0.1.0: open: invalid config: …`): drop
/// it rather than say it twice. `label` is `"name" version`.
fn without_own_name(label: &str, message: String) -> String {
    let name = label.split('"').nth(1).unwrap_or(label);
    match message
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(": "))
    {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => message,
    }
}

/// A limit the host enforces inside one of its own functions (an `sql` statement past its
/// time, too many connections): raised as a trap so the guest cannot carry on past it, and
/// classified by kind when the call fails.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HostLimit {
    pub kind: FaultKind,
    pub message: String,
}

impl HostLimit {
    pub(crate) fn trap(kind: FaultKind, message: impl Into<String>) -> wasmtime::Error {
        wasmtime::Error::new(Self {
            kind,
            message: message.into(),
        })
    }
}

/// What wasmtime says when a call copies more than the store's hostcall fuel allows.
pub(crate) const FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

impl PluginError {
    /// A guest's error value; its message is capped at `max_message` bytes.
    pub(crate) fn from_guest(
        plugin: &str,
        call: &'static str,
        error: GuestError,
        max_message: usize,
    ) -> Self {
        let (kind, message) = match error {
            GuestError::InvalidConfig(m) => (FaultKind::InvalidConfig, m),
            GuestError::Unavailable(m) => (FaultKind::Unavailable, m),
            GuestError::AccessDenied(m) => (FaultKind::AccessDenied, m),
            GuestError::BadData(m) => (FaultKind::BadData, m),
            GuestError::Other(m) => (FaultKind::Other, m),
        };
        Self {
            plugin: plugin.to_owned(),
            call,
            kind,
            message: crate::caps::truncate_text(without_own_name(plugin, message), max_message),
            retry_after: None,
        }
    }

    pub(crate) fn from_host(plugin: &str, call: &'static str, error: wasmtime::Error) -> Self {
        if let Some(limit) = error.downcast_ref::<HostLimit>() {
            return Self {
                plugin: plugin.to_owned(),
                call,
                kind: limit.kind,
                message: limit.message.clone(),
                retry_after: None,
            };
        }
        let text = format!("{error:#}");
        let kind = if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            FaultKind::CpuLimit
        } else if text.contains("forcing trap when growing memory") {
            FaultKind::MemoryLimit
        } else if text.contains(FUEL_EXHAUSTED) {
            FaultKind::DataLimit
        } else {
            FaultKind::Trap
        };
        Self {
            plugin: plugin.to_owned(),
            call,
            kind,
            message: text,
            retry_after: None,
        }
    }

    /// An error the host raises about a plugin's output (e.g. a batch that breaks the contract).
    pub fn contract(plugin: &str, call: &'static str, message: impl Into<String>) -> Self {
        Self {
            plugin: plugin.to_owned(),
            call,
            kind: FaultKind::Other,
            message: message.into(),
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_own_name;

    #[test]
    fn a_message_that_starts_with_the_plugin_name_loses_it() {
        let label = "\"sqlite-load\" 0.1.0";
        assert_eq!(
            without_own_name(label, "sqlite-load: no column `x`".into()),
            "no column `x`"
        );
        // Another plugin's name, a longer name, or nothing after the name: kept as it is.
        for kept in [
            "csv-extract: x",
            "sqlite-loader: x",
            "sqlite-load: ",
            "sqlite-load",
        ] {
            assert_eq!(without_own_name(label, kept.into()), kept);
        }
    }
}
