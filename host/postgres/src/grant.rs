//! A PostgreSQL database a pipeline grants (`grants.databases.NAME = { url = … }`): what the
//! operator wrote, checked, and the pool every worker of the loaded config shares through it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::pool::Pool;

/// A password from `weir.toml`: never shown by `Debug`, never part of a message.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself, for the connection's authentication only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// `sslmode`, with libpq's meanings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked (libpq's
    /// default, which only protects against passive eavesdropping).
    #[default]
    Prefer,
    /// TLS or fail; the certificate is checked against `sslrootcert` when one is given
    /// (libpq behaves like `verify-ca` then), else not at all.
    Require,
    /// TLS, and the server's certificate must chain to `sslrootcert` (or the web PKI roots);
    /// the host name is not compared.
    VerifyCa,
    /// TLS, a certificate chaining to the roots, issued for the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The value as written in `weir.toml` and libpq connection strings.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// What the operator granted, before any connection is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSpec {
    /// `postgres://user@host:port/dbname`, without a password (one in the URL is refused).
    pub url: String,
    pub password: Option<Password>,
    /// Every transaction on it is read-only (`default_transaction_read_only`), and plugin
    /// statements other than queries are refused before they reach the server.
    pub read_only: bool,
    /// The server stops any statement running longer (`statement_timeout`); none by default.
    pub statement_timeout: Option<Duration>,
    pub sslmode: SslMode,
    /// PEM file of the certificate authorities to trust (instead of the web PKI roots).
    pub sslrootcert: Option<PathBuf>,
    /// The schema tables are created and found in (`search_path`); plugin statements may not
    /// name another. `public` by default.
    pub schema: String,
}

impl PgSpec {
    /// A spec with the defaults, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            read_only: false,
            statement_timeout: None,
            sslmode: SslMode::default(),
            sslrootcert: None,
            schema: "public".to_owned(),
        }
    }
}

/// Why a spec cannot be used.
pub(crate) fn check(spec: &PgSpec) -> Result<tokio_postgres::Config, String> {
    let url = spec.url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "url must start with postgres:// (as in postgres://user@host:5432/dbname), not {:?}",
            redact_url(url)
        ));
    }
    let config: tokio_postgres::Config = url.parse().map_err(|e| {
        // The parser's message may quote the URL, and with it a password: do not pass it on.
        let _ = e;
        format!(
            "url {:?} is not a PostgreSQL connection URL (postgres://user@host:5432/dbname)",
            redact_url(url)
        )
    })?;
    if config.get_password().is_some() {
        return Err(
            "url contains a password: remove it from the url and write password = \"${PGPASSWORD}\" (an environment variable) instead, so it stays out of the config file and of every message"
                .to_owned(),
        );
    }
    if config.get_user().is_none() {
        return Err("url names no user (postgres://USER@host:5432/dbname)".to_owned());
    }
    if config.get_dbname().is_none() {
        return Err("url names no database (postgres://user@host:5432/DBNAME)".to_owned());
    }
    if config.get_hosts().is_empty() {
        return Err("url names no host (postgres://user@HOST:5432/dbname)".to_owned());
    }
    if !is_plain_identifier(&spec.schema) {
        return Err(format!(
            "schema {:?} must be a plain identifier (letters, digits, _; not starting with a digit)",
            spec.schema
        ));
    }
    if matches!(spec.sslmode, SslMode::VerifyCa | SslMode::VerifyFull)
        && let Some(file) = &spec.sslrootcert
        && !file.is_file()
    {
        return Err(format!("sslrootcert {} does not exist", file.display()));
    }
    Ok(config)
}

/// A name PostgreSQL takes unquoted and the same quoted: no case folding surprises, nothing to
/// escape in `search_path` or connection options.
pub(crate) fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
        && name == name.to_ascii_lowercase()
}

/// `url` with anything between `://` and `@` after a `:` replaced by `***`, for messages about
/// a URL that may hold a password.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or_default();
    let shown = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    format!(
        "{}{shown}{}",
        &url[..scheme_end + 3],
        &rest[at..] // from the `@` on
    )
}

/// A granted PostgreSQL database: its spec and the pool of connections every worker of the
/// loaded config shares. Clones share the pool; equality is the spec's.
#[derive(Clone)]
pub struct PgGrant {
    /// The grant's name in `grants.databases`.
    pub name: String,
    pub spec: Arc<PgSpec>,
    pub(crate) pool: Arc<Pool>,
}

impl PgGrant {
    /// Check `spec` and make its (empty) pool; no connection is made yet.
    pub fn new(name: &str, spec: PgSpec) -> Result<Self, String> {
        let config = check(&spec)?;
        let spec = Arc::new(spec);
        let pool = Pool::new(name, spec.clone(), config)?;
        Ok(Self {
            name: name.to_owned(),
            spec,
            pool: Arc::new(pool),
        })
    }

    /// Where it is, for messages: the URL (no password), e.g. `postgres://weir@db:5432/ledger`.
    pub fn describe(&self) -> &str {
        &self.spec.url
    }
}

impl PartialEq for PgGrant {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.spec == other.spec
    }
}

impl Eq for PgGrant {}

impl std::fmt::Debug for PgGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgGrant")
            .field("name", &self.name)
            .field("spec", &self.spec)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        let err = check(&PgSpec::new(
            "postgres://weir:hunter2@127.0.0.1:5432/ledger",
        ))
        .unwrap_err();
        assert!(err.contains("url contains a password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = check(&PgSpec::new("postgres://weir:hunter2@[::1")).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let err = check(&PgSpec::new("mysql://weir:hunter2@h/db")).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn urls_need_user_host_and_database() {
        assert!(check(&PgSpec::new("postgres://weir@127.0.0.1:5432/ledger")).is_ok());
        assert!(
            check(&PgSpec::new("postgres://127.0.0.1:5432/ledger"))
                .unwrap_err()
                .contains("no user")
        );
        assert!(
            check(&PgSpec::new("postgres://weir@127.0.0.1:5432"))
                .unwrap_err()
                .contains("no database")
        );
    }

    #[test]
    fn schemas_are_plain_identifiers() {
        let mut spec = PgSpec::new("postgres://weir@127.0.0.1/ledger");
        for bad in ["", "1x", "a b", "Upper", "x;drop", "a\"b"] {
            spec.schema = bad.to_owned();
            assert!(check(&spec).is_err(), "{bad}");
        }
        spec.schema = "ledger_2".to_owned();
        assert!(check(&spec).is_ok());
    }

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://weir:pw@h:5432/db"),
            "postgres://weir:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://weir@h/db"), "postgres://weir@h/db");
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn passwords_do_not_debug() {
        let mut spec = PgSpec::new("postgres://weir@h/db");
        spec.password = Some(Password::new("hunter2"));
        assert!(!format!("{spec:?}").contains("hunter2"));
    }
}
