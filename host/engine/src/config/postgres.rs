//! `grants.databases.NAME = { url = "postgres://…", … }`: a PostgreSQL database, its password
//! (`${VAR}` interpolated, a secret), TLS, schema and limits, each problem at its grant's line.
//!
//! ```toml
//! grants.databases.ledger = { url = "postgres://weir@db.internal:5432/ledger", password = "${PGPASSWORD}", sslmode = "verify-full", sslrootcert = "ca.pem" }
//! ```
//!
//! Keys, with defaults: `url` (required; a password in it is refused), `password` (none),
//! `read_only = false`, `statement_timeout` (none; `"30s"`, `"500ms"`, `"5m"`),
//! `sslmode = "prefer"` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`),
//! `sslrootcert` (none: the web PKI roots; relative to the config file), `schema = "public"`.

use std::ops::Range;
use std::time::Duration;

use weir_runtime::{PgGrant, PgSpec};

use super::Reader;
use super::raw::RawDatabaseOptions;

impl Reader<'_> {
    /// The PostgreSQL grant `name`, or `None` with its problems recorded.
    pub(super) fn postgres_grant(
        &mut self,
        name: &str,
        raw: &RawDatabaseOptions,
        span: &Range<usize>,
    ) -> Option<PgGrant> {
        let what = format!("database \"{name}\"");
        let Some(url) = &raw.url else {
            self.problem(
                span,
                format!("{what}: give `path` (a SQLite file) or `url` (postgres://user@host:5432/dbname)"),
            );
            return None;
        };
        if raw.path.is_some() {
            self.problem(
                span,
                format!("{what}: give `path` (SQLite) or `url` (PostgreSQL), not both"),
            );
            return None;
        }
        if raw.max_size_mb.is_some() {
            self.problem(
                span,
                format!("{what}: `max_size_mb` applies to SQLite files; cap a PostgreSQL database with the server's own quotas"),
            );
        }
        let url = self.interpolate(url, span)?;
        let mut spec = PgSpec::new(url);
        spec.read_only = raw.read_only;
        if let Some(password) = &raw.password {
            // The interpolated value is never part of a message: only the variable's name is.
            spec.password = Some(weir_postgres_password(self.interpolate(password, span)?));
        }
        if let Some(timeout) = &raw.statement_timeout {
            match parse_duration(timeout) {
                Some(d) => spec.statement_timeout = Some(d),
                None => {
                    self.problem(
                        span,
                        format!("{what}: statement_timeout = {timeout:?} is not a duration (\"30s\", \"500ms\", \"5m\")"),
                    );
                    return None;
                }
            }
        }
        if let Some(mode) = &raw.sslmode {
            match weir_runtime::SslMode::parse(mode) {
                Some(m) => spec.sslmode = m,
                None => {
                    self.problem(
                        span,
                        format!("{what}: sslmode = {mode:?} is not one of disable, prefer, require, verify-ca, verify-full"),
                    );
                    return None;
                }
            }
        }
        if let Some(file) = &raw.sslrootcert {
            let file = self.interpolate(file, span)?;
            spec.sslrootcert = Some(self.resolve(&file));
        }
        if let Some(schema) = &raw.schema {
            spec.schema = schema.clone();
        }
        match PgGrant::new(name, spec) {
            Ok(grant) => Some(grant),
            Err(m) => {
                self.problem(span, format!("{what}: {m}"));
                None
            }
        }
    }
}

fn weir_postgres_password(value: String) -> weir_runtime::Password {
    weir_runtime::Password::new(value)
}

/// `"30s"`, `"500ms"`, `"5m"`, `"1h"`: a whole number and a unit.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    Some(match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("1.5s"), None);
    }
}
