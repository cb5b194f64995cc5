//! Why a worker stopped, and whether trying again may help.

use weir_runtime::PluginError;

/// Why a worker stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The host failed (a database, the commit); `retryable` says whether the same work may
    /// succeed later (a locked database) or not (a read-only file, a missing table).
    #[error("{message}")]
    Host { message: String, retryable: bool },
    /// The partition's checkpoint changed under this run: another run committed to it, or an
    /// operator reset it. This run's batch was rolled back; going on would load rows twice.
    #[error("{0}")]
    Conflict(String),
    /// A clustered worker's lease epoch is no longer its partition's newest: another host
    /// claimed the partition (this one was paused or cut off past its lease). The batch was
    /// rolled back; the partition is the other host's now.
    #[error("{0}")]
    Fenced(String),
    #[error("run cancelled")]
    Cancelled,
}

impl WorkerError {
    /// A host failure worth retrying (a busy database, an I/O hiccup).
    pub fn host(message: impl Into<String>) -> Self {
        Self::Host {
            message: message.into(),
            retryable: true,
        }
    }

    /// A host failure from SQLite, classified: errors another attempt cannot fix (a read-only
    /// or unopenable file, a full database, a statement that does not prepare because a table
    /// or column is missing) are not retried.
    pub fn sqlite(context: &str, err: &rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        let retryable = match err.sqlite_error_code() {
            Some(ReadOnly | CannotOpen | PermissionDenied | NotADatabase | DiskFull) => false,
            Some(Unknown) => {
                !matches!(err, rusqlite::Error::SqlInputError { .. })
                    && !err.to_string().starts_with("no such ")
            }
            _ => !matches!(err, rusqlite::Error::SqlInputError { .. }),
        };
        Self::Host {
            message: format!("{context}: {err}"),
            retryable,
        }
    }

    /// A host failure from PostgreSQL, classified: a broken connection, a server shutting
    /// down, a deadlock or lock timeout is retried; syntax, a missing table, a privilege not.
    pub fn postgres(context: &str, err: &weir_postgres::tokio_postgres::Error) -> Self {
        Self::Host {
            message: format!("{context}: {}", weir_postgres::explain(err)),
            retryable: weir_postgres::is_retryable(err),
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Plugin(e) => e.kind.is_retryable(),
            Self::Host { retryable, .. } => *retryable,
            Self::Conflict(_) | Self::Fenced(_) | Self::Cancelled => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_sqlite_failures_are_not_retried() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let missing = conn.execute("INSERT INTO nope VALUES (1)", []).unwrap_err();
        assert!(
            !WorkerError::sqlite("load", &missing).is_retryable(),
            "{missing}"
        );
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(WorkerError::sqlite("load", &busy).is_retryable());
        let read_only = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            None,
        );
        assert!(!WorkerError::sqlite("load", &read_only).is_retryable());
    }
}
