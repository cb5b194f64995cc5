//! PostgreSQL as a database weir's pipelines are granted (docs/design.md, "PostgreSQL").
//!
//! - `grant`: what `grants.databases.NAME = { url = … }` holds, checked; the password a secret;
//! - `tls`: `sslmode` and `sslrootcert` as libpq users expect, on rustls;
//! - `pool`: one pool per grant, shared by the workers of a loaded config;
//! - `session`: the one connection a worker attempt holds (plugins and commit share it), its
//!   transaction, the partition lock, and plugin statements under savepoints and budgets;
//! - `guard` + `placeholders`: the rules plugin SQL runs under, and `?N` → `$N`;
//! - `values`, `codec`, `copy`: values across the `sql` import, binary forms, binary `COPY`.

pub mod codec;
pub mod copy;
mod grant;
pub mod guard;
pub mod placeholders;
mod pool;
mod session;
mod tls;
pub mod values;

pub use grant::{Password, PgGrant, PgSpec, SslMode, redact_url};
pub use session::{Budget, Output, PgSession, PluginSqlError, SessionMode, SessionState, Work};
pub use tokio_postgres;

/// A connection or statement failure, named with its grant (never with the password).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to database \"{grant}\" ({url}): {reason}")]
    Connect {
        grant: String,
        url: String,
        reason: String,
    },
    #[error("database \"{grant}\": {context}: {reason}")]
    Query {
        grant: String,
        context: String,
        reason: String,
        retryable: bool,
    },
}

impl PgError {
    pub fn query(grant: &str, context: &str, e: &tokio_postgres::Error) -> Self {
        Self::Query {
            grant: grant.to_owned(),
            context: context.to_owned(),
            reason: explain(e),
            retryable: is_retryable(e),
        }
    }

    /// Whether another attempt may succeed: connecting always may (the server restarts, the
    /// network comes back).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Query { retryable, .. } => *retryable,
        }
    }
}

/// Whether a statement that failed may succeed when tried again: the connection broke, the
/// server is shutting down or out of resources, a deadlock or serialization failure, a lock
/// not available. Syntax, a missing table, a privilege, bad data: no.
pub fn is_retryable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => matches!(&code.code()[..2], "08" | "40" | "53" | "57" | "55" | "58"),
    }
}

/// A failure as one line: the server's message with its detail, hint and column when it
/// gave them, or the client's reason.
pub fn explain(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut out = db.message().to_owned();
            if let Some(column) = db.column() {
                out.push_str(&format!(" (column {column})"));
            }
            if let Some(detail) = db.detail() {
                out.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                out.push_str(&format!("; hint: {hint}"));
            }
            out.push_str(&format!(" [SQLSTATE {}]", db.code().code()));
            out
        }
        None => {
            let mut out = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                out.push_str(&format!(": {s}"));
                source = s.source();
            }
            out
        }
    }
}
